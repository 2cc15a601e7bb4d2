//! Following the log as it grows (`tail -F`), across rotations: the follower keeps the file it
//! reads open, and when that file is no longer the live one it reads what a late writer added to
//! it, then goes on to the newer generations and the new live file. A file cut short under it is
//! read again from its start.

use super::lines::LineReader;
use super::read::{self, Cursor, Line};
use crate::error::{Error, Result};
use crate::record::Event;
use crate::spool::Spool;
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;

/// Where a [`Follower`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the end: only what is appended from now on.
    End,
    /// With the last N lines the log holds, over the generations if need be.
    Last(usize),
    /// Just after a line read before. If its generation has been dropped since, at the oldest
    /// generation kept: what was between is gone.
    At(Cursor),
    /// At a byte offset of the live file, clamped to its end (how positions were given before the
    /// log rotated).
    LiveOffset(u64),
}

/// A reader that follows the log as it grows and rotates.
#[derive(Debug)]
pub struct Follower {
    spool: Spool,
    /// The file being read: the live one, or an older generation still to finish.
    current: Option<LineReader>,
    /// Generations newer than `current`, oldest first, to read after it.
    queue: VecDeque<LineReader>,
}

impl Follower {
    /// A follower of the spool's log from `start`.
    pub fn open(spool: &Spool, start: Start) -> Result<Follower> {
        let mut queue = match start {
            Start::End | Start::Last(0) => live_at(spool, u64::MAX)?,
            Start::LiveOffset(offset) => live_at(spool, offset)?,
            Start::Last(n) => last(spool, n)?,
            Start::At(cursor) => at(spool, cursor)?,
        };
        let current = queue.pop_front();
        Ok(Follower { spool: spool.clone(), current, queue })
    }

    /// The whole lines appended since the last call, in order, about `max_bytes` of them at most
    /// (at least one line); empty when there is nothing new.
    pub fn poll(&mut self, max_bytes: usize) -> Result<Vec<Line>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        loop {
            if self.current.is_none() {
                // No log yet: the first one is read from its start.
                self.current = read::open(&self.spool.events_path())?;
            }
            let Some(cur) = self.current.as_mut() else { return Ok(out) };
            while bytes < max_bytes {
                let Some((line, offset)) = cur.next_line().map_err(|e| Error::io("read", &cur.path, e))? else {
                    break;
                };
                bytes += line.len() + 1;
                out.push(Line { bytes: line, cursor: Cursor { file: cur.ino, offset } });
            }
            if bytes >= max_bytes {
                return Ok(out);
            }
            if let Some(next) = self.queue.pop_front() {
                self.current = Some(next);
                continue;
            }
            if !self.look_for_newer()? {
                return Ok(out);
            }
        }
    }

    /// The events appended since the last call (lines that do not parse are skipped).
    pub fn events(&mut self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        loop {
            let lines = self.poll(1 << 20)?;
            if lines.is_empty() {
                return Ok(out);
            }
            out.extend(lines.iter().filter_map(Line::event));
        }
    }

    /// Called at the end of the newest file known: whether there is more to read after all,
    /// because the file was rotated (the newer generations are queued, to be read once what a
    /// late writer added to it is) or cut short (it is read again from its start).
    fn look_for_newer(&mut self) -> Result<bool> {
        let Some(cur) = self.current.as_mut() else { return Ok(false) };
        let live = self.spool.events_path();
        let meta = match std::fs::symlink_metadata(&live) {
            Ok(m) => m,
            // Between a removal and the next append: nothing newer yet.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("stat", &live, e)),
        };
        if meta.ino() == cur.ino {
            if meta.len() < cur.read_to() {
                cur.seek(0).map_err(|e| Error::io("read", &cur.path, e))?;
                return Ok(true);
            }
            return Ok(false);
        }
        let newer: VecDeque<LineReader> = match read::open_newer_than(&self.spool, cur.ino)? {
            Some(newer) => newer,
            None => {
                let mut gens = read::open_generations(&self.spool)?;
                // Ours is gone: dropped after more rotations than are kept (every generation
                // left is newer), or removed by hand (the older ones are not). The newer ones
                // were written after ours.
                let ours = cur.modified().ok();
                let newest = gens.pop_back();
                let mut newer: VecDeque<_> =
                    gens.into_iter().filter(|g| g.modified().ok().is_some_and(|m| Some(m) > ours)).collect();
                newer.extend(newest);
                newer
            }
        };
        if newer.is_empty() {
            return Ok(false);
        }
        self.queue = newer;
        Ok(true)
    }
}

/// The live file alone, positioned at `offset` (or its end, if sooner).
fn live_at(spool: &Spool, offset: u64) -> Result<VecDeque<LineReader>> {
    let Some(mut live) = read::open(&spool.events_path())? else { return Ok(VecDeque::new()) };
    let at = live.len().map_err(|e| Error::io("stat", &live.path, e))?.min(offset);
    live.seek(at).map_err(|e| Error::io("read", &live.path, e))?;
    Ok(VecDeque::from([live]))
}

/// The generations from the one holding the `n`th line from the end, positioned at it.
fn last(spool: &Spool, n: usize) -> Result<VecDeque<LineReader>> {
    let mut gens = read::open_generations(spool)?;
    let mut need = n;
    let mut from = (0, 0);
    for (i, g) in gens.iter().enumerate().rev() {
        let (offset, found) = g.start_of_last(need).map_err(|e| Error::io("read", &g.path, e))?;
        from = (i, offset);
        if found >= need {
            break;
        }
        need -= found;
    }
    position(&mut gens, from)?;
    Ok(gens)
}

/// The generations from the one `cursor` names, positioned there; all of them when it names none
/// of them (dropped since, or unknown).
fn at(spool: &Spool, cursor: Cursor) -> Result<VecDeque<LineReader>> {
    let mut gens = read::open_generations(spool)?;
    // An inode can be used again once its file is dropped: a position past the end of the file
    // is not in it.
    let found = gens.iter().position(|g| g.ino == cursor.file && g.len().is_ok_and(|len| len >= cursor.offset));
    position(&mut gens, found.map_or((0, 0), |i| (i, cursor.offset)))?;
    Ok(gens)
}

fn position(gens: &mut VecDeque<LineReader>, (index, offset): (usize, u64)) -> Result<()> {
    gens.drain(..index.min(gens.len()));
    if let Some(first) = gens.front_mut() {
        first.seek(offset).map_err(|e| Error::io("read", &first.path, e))?;
    }
    Ok(())
}
