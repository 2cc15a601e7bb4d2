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
/// the place after them.
pub fn last_lines(spool: &Spool, id: &AgentId, lines: usize) -> Result<Chunk> {
    spool.require(id)?;
    let path = spool.output_log_path(id);
    let Some(mut f) = open(&path)? else { return Ok(Chunk { bytes: Vec::new(), offset: 0, restarted: false }) };
    let len = f.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
    let start = len.saturating_sub(MAX_CHUNK);
    f.seek(SeekFrom::Start(start)).map_err(|e| Error::io("seek", &path, e))?;
    let mut buf = Vec::new();
    f.take(len - start).read_to_end(&mut buf).map_err(|e| Error::io("read", &path, e))?;
    let end = start + buf.len() as u64;
    Ok(Chunk { bytes: tail(&buf, lines).to_vec(), offset: end, restarted: false })
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
}
