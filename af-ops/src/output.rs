//! What an agent printed: its tmux pane as captured into `output.log` (ANSI sequences kept), its
//! tail, and what was appended after a place in it. The log is rotated by copy and truncation
//! (af-wrap), so a place beyond its end means it started over.

use af_spool::{AgentId, Error, Result, Spool};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most bytes one read hands back (a tail of many long lines, a burst after a pause).
pub const MAX_CHUNK: u64 = 1 << 20;

/// The last `n` lines of `text` (a last line without its newline counts as one).
pub fn tail(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &text[text.len()..];
    }
    let mut seen = 0;
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// The number of lines in `text` (a last line without its newline counts as one).
fn count_lines(text: &[u8]) -> usize {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() { 0 } else { body.iter().filter(|b| **b == b'\n').count() + 1 }
}

/// The last `n` lines of the log at `path` reaching into its older generations (`path.1`,
/// `path.2.gz`, … as rotation and `af-spawn gc` leave them) when the live file holds fewer, at
/// most [`MAX_CHUNK`] bytes; and the live file's length (where a follower goes on).
pub fn tail_of_log(path: &Path, n: usize) -> Result<(Vec<u8>, u64)> {
    let (live, len) = match open(path)? {
        Some(mut f) => {
            let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
            let start = len.saturating_sub(MAX_CHUNK);
            f.seek(SeekFrom::Start(start)).map_err(|e| Error::io("seek", path, e))?;
            let mut buf = Vec::new();
            f.take(len - start).read_to_end(&mut buf).map_err(|e| Error::io("read", path, e))?;
            let end = start + buf.len() as u64;
            (buf, end)
        }
        None => (Vec::new(), 0),
    };
    let mut text = live;
    for g in af_spool::logfile::generations(path) {
        if count_lines(&text) >= n || text.len() as u64 >= MAX_CHUNK {
            break;
        }
        let mut older = match af_spool::logfile::read_generation(&g) {
            Ok(b) => b,
            Err(Error::NotFound(_)) => continue, // removed by gc as we read
            Err(e) => return Err(e),
        };
        if !older.is_empty() && !older.ends_with(b"\n") {
            older.push(b'\n');
        }
        older.extend_from_slice(&text);
        text = older;
    }
    let cut = tail(&text, n);
    let cut = &cut[cut.len().saturating_sub(MAX_CHUNK as usize)..];
    Ok((cut.to_vec(), len))
}

/// A piece of an agent's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes, as the pane printed them.
    pub bytes: Vec<u8>,
    /// The place in the log just after them (where the next read starts).
    pub offset: u64,
    /// Whether the log started over (rotated or truncated) since the place asked for.
    pub restarted: bool,
}

/// The last `lines` lines of what agent `id` printed (at most [`MAX_CHUNK`] bytes of them), and
/// the place after them in the live log. Lines from before a rotation are read from the older
/// generations.
pub fn last_lines(spool: &Spool, id: &AgentId, lines: usize) -> Result<Chunk> {
    spool.require(id)?;
    let (bytes, offset) = tail_of_log(&spool.output_log_path(id), lines)?;
    Ok(Chunk { bytes, offset, restarted: false })
}

/// What was appended to `path` after `offset` (at most [`MAX_CHUNK`] bytes); from its beginning
/// when the file is now shorter than `offset` (it was rotated). A missing file reads as empty.
pub fn read_after(path: &Path, offset: u64) -> Result<Chunk> {
    let Some(mut f) = open(path)? else {
        return Ok(Chunk { bytes: Vec::new(), offset: 0, restarted: offset > 0 });
    };
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    let restarted = len < offset;
    let start = if restarted { 0 } else { offset };
    if len == start {
        return Ok(Chunk { bytes: Vec::new(), offset: start, restarted });
    }
    f.seek(SeekFrom::Start(start)).map_err(|e| Error::io("seek", path, e))?;
    let mut buf = Vec::new();
    f.take((len - start).min(MAX_CHUNK)).read_to_end(&mut buf).map_err(|e| Error::io("read", path, e))?;
    Ok(Chunk { offset: start + buf.len() as u64, bytes: buf, restarted })
}

fn open(path: &Path) -> Result<Option<std::fs::File>> {
    af_spool::beneath::open_read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\n", 5), b"a\n");
        assert_eq!(tail(b"", 5), b"");
        assert_eq!(tail(b"a\nb\n", 0), b"");
    }

    #[test]
    fn reads_what_was_appended_and_starts_over_after_a_truncation() {
        let dir = std::env::temp_dir().join(af_spool::atomic::unique_name("output-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("output.log");
        assert_eq!(read_after(&log, 0).unwrap(), Chunk { bytes: vec![], offset: 0, restarted: false });
        std::fs::write(&log, b"one\n\x1b[31mtwo\x1b[0m\n").unwrap();
        let c = read_after(&log, 4).unwrap();
        assert_eq!(c.bytes, b"\x1b[31mtwo\x1b[0m\n");
        assert!(!c.restarted);
        std::fs::write(&log, b"x\n").unwrap();
        let again = read_after(&log, c.offset).unwrap();
        assert_eq!((again.bytes.as_slice(), again.offset, again.restarted), (&b"x\n"[..], 2, true));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tail_reaches_into_older_generations_plain_and_compressed() {
        let dir = std::env::temp_dir().join(af_spool::atomic::unique_name("output-gen-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("output.log");
        std::fs::write(dir.join("output.log.2"), b"one\ntwo\n").unwrap();
        assert!(af_spool::logfile::compress(&dir.join("output.log.2"), None).unwrap());
        assert!(dir.join("output.log.2.gz").exists());
        std::fs::write(dir.join("output.log.1"), b"three\nfour").unwrap(); // cut mid-line by a rotation
        std::fs::write(&log, b"five\n").unwrap();
        assert_eq!(tail_of_log(&log, 1).unwrap(), (b"five\n".to_vec(), 5));
        assert_eq!(tail_of_log(&log, 2).unwrap().0, b"four\nfive\n");
        assert_eq!(tail_of_log(&log, 4).unwrap().0, b"two\nthree\nfour\nfive\n");
        assert_eq!(tail_of_log(&log, 100).unwrap().0, b"one\ntwo\nthree\nfour\nfive\n");
        assert_eq!(tail_of_log(&log, 0).unwrap().0, b"");
        // No live file yet: the generations alone.
        std::fs::remove_file(&log).unwrap();
        assert_eq!(tail_of_log(&log, 2).unwrap(), (b"three\nfour\n".to_vec(), 0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
