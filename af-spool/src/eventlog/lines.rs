//! Whole lines of one open file of the log, read in chunks from an offset, for the history
//! readers and the follower alike. A line still being written (no newline yet) stays unread
//! until it is complete, and no line is held past [`MAX_READ_LINE`]: a file with a giant line (a
//! log written before events were capped, or garbage) is still read in bounded memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

/// The longest line a reader holds; longer ones are skipped.
pub const MAX_READ_LINE: usize = 8 << 20;

/// How much is read at once.
const CHUNK: usize = 64 << 10;

/// One open generation of the log and where its reader stands.
#[derive(Debug)]
pub struct LineReader {
    file: File,
    /// Where the file was opened (for error messages).
    pub path: PathBuf,
    /// Its inode: what names the file across renames.
    pub ino: u64,
    /// Bytes read from the file, starting at offset `base`.
    buf: Vec<u8>,
    /// The first byte of `buf` not yet returned.
    head: usize,
    /// How many bytes from `head` on are known to hold no newline.
    scanned: usize,
    base: u64,
    /// Inside a line that is dropped (over-long, or begun before where we started): skip to its
    /// newline.
    skipping: bool,
}

impl LineReader {
    /// A reader of `file` from its start.
    pub fn new(file: File, path: PathBuf) -> io::Result<LineReader> {
        let ino = file.metadata()?.ino();
        Ok(LineReader { file, path, ino, buf: Vec::new(), head: 0, scanned: 0, base: 0, skipping: false })
    }

    /// A reader of `file` from its start, named by `ino` (a decompressed generation, named by the
    /// inode its plain file had).
    pub fn with_ino(file: File, path: PathBuf, ino: u64) -> io::Result<LineReader> {
        let mut r = LineReader::new(file, path)?;
        r.ino = ino;
        Ok(r)
    }

    /// The file's size now.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// When the file was last written.
    pub fn modified(&self) -> io::Result<std::time::SystemTime> {
        self.file.metadata()?.modified()
    }

    /// Where the last `n` whole lines of the file start, and how many whole lines that is: fewer
    /// than `n` (and offset 0) when the file holds fewer. Read backwards, a chunk at a time.
    pub fn start_of_last(&self, n: usize) -> io::Result<(u64, usize)> {
        let mut end = self.len()?;
        let mut chunk = vec![0u8; CHUNK];
        let mut newlines = 0;
        while end > 0 {
            let start = end.saturating_sub(CHUNK as u64);
            let buf = &mut chunk[..(end - start) as usize];
            self.file.read_exact_at(buf, start)?;
            for (i, _) in buf.iter().enumerate().rev().filter(|(_, b)| **b == b'\n') {
                // The newline ending the last line is not the start of one: n lines start after
                // the (n+1)th newline from the end.
                newlines += 1;
                if newlines == n + 1 {
                    return Ok((start + i as u64 + 1, n));
                }
            }
            end = start;
        }
        Ok((0, newlines))
    }

    /// Starts reading at `offset`; if that is inside a line, from the next line on.
    pub fn seek(&mut self, offset: u64) -> io::Result<()> {
        let mut before = [0u8];
        let aligned = offset == 0 || (self.file.read_at(&mut before, offset - 1)? == 1 && before[0] == b'\n');
        self.buf.clear();
        (self.head, self.scanned, self.base, self.skipping) = (0, 0, offset, !aligned);
        Ok(())
    }

    /// Where the next unread line starts: the offset a reader resuming here would seek to.
    pub fn position(&self) -> u64 {
        self.base + self.head as u64
    }

    /// How far the file has been read (complete lines and the start of an incomplete one).
    pub fn read_to(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The next whole line (without its newline) and the offset just after it; `None` at the end
    /// of what the file holds now (call again later for what is appended).
    pub fn next_line(&mut self) -> io::Result<Option<(Vec<u8>, u64)>> {
        loop {
            let from = self.head + self.scanned;
            if let Some(i) = self.buf[from..].iter().position(|&b| b == b'\n') {
                let (start, end) = (self.head, from + i);
                self.head = end + 1;
                self.scanned = 0;
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                return Ok(Some((self.buf[start..end].to_vec(), self.position())));
            }
            self.scanned = self.buf.len() - self.head;
            if self.scanned > MAX_READ_LINE {
                self.skipping = true;
                self.head = self.buf.len();
                self.scanned = 0;
            }
            // Keep only the unreturned bytes, then read more after them.
            self.buf.drain(..self.head);
            self.base += self.head as u64;
            self.head = 0;
            let at = self.buf.len();
            self.buf.resize(at + CHUNK, 0);
            let n = loop {
                match self.file.read_at(&mut self.buf[at..], self.base + at as u64) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.buf.truncate(at);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(at + n);
            if n == 0 {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> (LineReader, PathBuf) {
        let dir = std::env::temp_dir().join(crate::atomic::unique_name("lines-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, bytes).unwrap();
        (LineReader::new(File::open(&path).unwrap(), path.clone()).unwrap(), dir)
    }

    fn all(r: &mut LineReader) -> Vec<(String, u64)> {
        std::iter::from_fn(|| r.next_line().unwrap()).map(|(l, at)| (String::from_utf8(l).unwrap(), at)).collect()
    }

    #[test]
    fn whole_lines_with_their_ends_and_an_unfinished_one_later() {
        let (mut r, dir) = reader(b"a\n\nbcd\nunfini");
        assert_eq!(all(&mut r), [("a".into(), 2), ("".into(), 3), ("bcd".into(), 7)]);
        assert_eq!(r.position(), 7);
        std::fs::OpenOptions::new().append(true).open(dir.join("f")).unwrap().write_all(b"shed\nx").unwrap();
        assert_eq!(all(&mut r), [("unfinished".into(), 18)]);
        // Started inside a line: from the next one on.
        r.seek(4).unwrap();
        assert_eq!(all(&mut r), [("unfinished".into(), 18)]);
        r.seek(3).unwrap();
        assert_eq!(all(&mut r).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_where_the_last_lines_start() {
        let (r, dir) = reader(b"a\nbb\nccc\npartial");
        assert_eq!(r.start_of_last(1).unwrap(), (5, 1));
        assert_eq!(r.start_of_last(2).unwrap(), (2, 2));
        assert_eq!(r.start_of_last(3).unwrap(), (0, 3));
        assert_eq!(r.start_of_last(7).unwrap(), (0, 3));
        let mut long = Vec::new();
        for i in 0..20_000 {
            long.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let (mut r, dir2) = reader(&long);
        let (at, found) = r.start_of_last(15_000).unwrap();
        assert_eq!(found, 15_000);
        r.seek(at).unwrap();
        let lines = all(&mut r);
        assert_eq!(lines.len(), 15_000);
        assert_eq!(lines[0].0, "line 5000");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&dir2).unwrap();
    }

    #[test]
    fn a_giant_line_is_skipped_in_bounded_memory() {
        let mut bytes = b"first\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 3 * MAX_READ_LINE));
        bytes.extend_from_slice(b"\nlast\n");
        let (mut r, dir) = reader(&bytes);
        let lines: Vec<String> = all(&mut r).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, ["first", "last"]);
        assert!(r.buf.capacity() < 2 * (MAX_READ_LINE + CHUNK), "held {} bytes", r.buf.capacity());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use std::io::Write;
}
