//! Reading the log's history: its generations, oldest first, as they were at one instant, line
//! by line.

use super::lines::LineReader;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::record::Event;
use crate::spool::Spool;
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// A place in the log that survives rotation: a file (by inode, which a rename keeps) and a byte
/// offset in it. Written `INODE:OFFSET`, as af-api's event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The inode of the generation.
    pub file: u64,
    /// The offset just after a line.
    pub offset: u64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cursor> {
        let parsed =
            s.split_once(':').and_then(|(f, o)| Some(Cursor { file: f.parse().ok()?, offset: o.parse().ok()? }));
        parsed.ok_or_else(|| Error::Invalid(format!("'{s}' is not an event log position (INODE:OFFSET)")))
    }
}

/// One line of the log, without its newline, and the position just after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes (normally one event's JSON).
    pub bytes: Vec<u8>,
    /// Where the next line starts: resuming there reads what came after this one.
    pub cursor: Cursor,
}

impl Line {
    /// The event on the line, if it holds one. A writer that died mid-line (a full disk) leaves a
    /// line without its end, and the next event is appended to it: that event is found whole
    /// after the unfinished one.
    pub fn event(&self) -> Option<Event> {
        serde_json::from_slice(&self.bytes).ok().or_else(|| {
            const START: &[u8] = b"{\"time\":";
            (1..self.bytes.len().saturating_sub(START.len()))
                .filter(|&i| self.bytes[i..].starts_with(START))
                .find_map(|i| serde_json::from_slice(&self.bytes[i..]).ok())
        })
    }
}

/// Opens a file of the log for reading, never through a symlink; `None` if it does not exist.
pub(super) fn open(path: &Path) -> Result<Option<LineReader>> {
    let opened = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path);
    match opened {
        Ok(f) => LineReader::new(f, path.to_path_buf()).map(Some).map_err(|e| Error::io("stat", path, e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

/// Opens generation `n`: `events.log.N`, or its compressed form `events.log.N.gz` decompressed
/// into an unnamed file that keeps the plain file's inode for positions; `None` if neither is
/// there.
pub(super) fn open_generation(spool: &Spool, n: usize) -> Result<Option<LineReader>> {
    let plain = spool.events_generation_path(n);
    if let Some(r) = open(&plain)? {
        return Ok(Some(r));
    }
    let gz = crate::logfile::compressed(&spool.events_path(), n);
    let Some((file, ino)) = crate::logfile::decompressed(&gz)? else { return Ok(None) };
    LineReader::with_ino(file, gz.clone(), ino).map(Some).map_err(|e| Error::io("stat", &gz, e))
}

/// Opens every generation, oldest first (the live file last). The rotation lock is held shared
/// while they are opened, so no rotation shifts them half-way; once open, a rename changes nothing
/// for the reader.
pub(super) fn open_generations(spool: &Spool) -> Result<VecDeque<LineReader>> {
    let _lock = Lock::shared(&spool.events_lock_path())?;
    let mut files = VecDeque::new();
    files.extend(open(&spool.events_path())?);
    for n in 1.. {
        match open_generation(spool, n)? {
            Some(f) => files.push_front(f),
            None => break,
        }
    }
    Ok(files)
}

/// The generations newer than the one named `ino`, oldest first, the live file last, if `ino`
/// names one of them (`None` if not): found from the newest on, so that a follower that read to
/// the end of the generation just rotated opens only what came after it, never decompressing the
/// older, compressed ones.
pub(super) fn open_newer_than(spool: &Spool, ino: u64) -> Result<Option<VecDeque<LineReader>>> {
    let _lock = Lock::shared(&spool.events_lock_path())?;
    let mut files = VecDeque::new();
    files.extend(open(&spool.events_path())?);
    for n in 1.. {
        let plain = std::fs::symlink_metadata(spool.events_generation_path(n)).ok().map(|m| m.ino());
        let named =
            plain.or_else(|| crate::logfile::compressed_ino(&crate::logfile::compressed(&spool.events_path(), n)));
        match named {
            None => return Ok(None),
            Some(i) if i == ino => return Ok(Some(files)),
            Some(_) => {
                if let Some(f) = open_generation(spool, n)? {
                    files.push_front(f);
                }
            }
        }
    }
    Ok(None)
}

/// The log's lines, oldest generation first, streamed (see [`lines`]).
#[derive(Debug)]
pub struct Lines {
    files: VecDeque<LineReader>,
}

impl Iterator for Lines {
    type Item = Result<Line>;

    fn next(&mut self) -> Option<Result<Line>> {
        loop {
            let file = self.files.front_mut()?;
            match file.next_line() {
                Ok(Some((bytes, offset))) => {
                    return Some(Ok(Line { bytes, cursor: Cursor { file: file.ino, offset } }));
                }
                Ok(None) => {}
                Err(e) => {
                    let err = Error::io("read", &file.path, e);
                    self.files.pop_front();
                    return Some(Err(err));
                }
            }
            self.files.pop_front();
        }
    }
}

/// Every line the log holds, from the oldest generation to the end of the live file, read as the
/// iterator goes. The files are the ones there when this is called; lines appended to the live
/// file meanwhile are read too, up to where the iterator gets to.
pub fn lines(spool: &Spool) -> Result<Lines> {
    Ok(Lines { files: open_generations(spool)? })
}

/// The log's events, oldest first (see [`history`]).
#[derive(Debug)]
pub struct Events {
    lines: Lines,
}

impl Iterator for Events {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            match self.lines.next()? {
                // A line that does not parse (cut by a full disk, garbage) must not hide the rest.
                Ok(line) => match line.event() {
                    Some(e) => return Some(Ok(e)),
                    None => continue,
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Every event the log holds, oldest first, streamed from the files (see [`lines`]): use it as an
/// iterator, and `collect()` only where the whole history is small enough (tests).
pub fn history(spool: &Spool) -> Result<Events> {
    Ok(Events { lines: lines(spool)? })
}

/// The last `n` events for which `keep` holds, oldest first: the log is streamed, and only `n`
/// events are held at once.
pub fn last(spool: &Spool, n: usize, mut keep: impl FnMut(&Event) -> bool) -> Result<Vec<Event>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut out = VecDeque::with_capacity(n.min(1024));
    for event in history(spool)? {
        let event = event?;
        if keep(&event) {
            if out.len() == n {
                out.pop_front();
            }
            out.push_back(event);
        }
    }
    Ok(out.into())
}

/// What tells whether the live file changed: its inode and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// The live file's inode (0 when there is none).
    pub file: u64,
    /// Its size.
    pub len: u64,
}

/// The live file's [`Stamp`] now: it changes with every append and every rotation.
pub fn stamp(spool: &Spool) -> Stamp {
    std::fs::symlink_metadata(spool.events_path()).map_or(Stamp::default(), |m| Stamp { file: m.ino(), len: m.len() })
}

/// The bytes the log takes on disk, every generation together (compressed ones as they are).
pub fn disk_bytes(spool: &Spool) -> u64 {
    let size = |p: &Path| std::fs::symlink_metadata(p).map(|m| m.len()).ok();
    let older = crate::logfile::generations(&spool.events_path()).into_iter().map(|g| g.len);
    size(&spool.events_path()).unwrap_or(0) + older.sum::<u64>()
}
