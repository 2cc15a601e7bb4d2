//! An agent's heartbeat record, rewritten in place. af-wrap writes one every few seconds for as
//! long as the agent runs; a write-to-temporary-and-rename would create and free an inode each
//! time (and on ext4 freed inodes slow every later file creation), so the writer keeps the file
//! open and overwrites it from offset 0 with one `pwrite`, padded with spaces (JSON whitespace) to
//! at least the length it had, so no bytes of a longer earlier record survive.
//!
//! A reader may meet a write half done. The record carries the writer's count of beats twice,
//! first (`seq`) and last (`seqEnd`): a read that mixes two writes does not parse, or has them
//! differ, and is read again.

use crate::beneath;
use crate::error::{Error, Result};
use crate::record::Heartbeat;
use nix::fcntl::OFlag;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The least a record is padded to, so a slightly longer next record still overwrites it whole.
const SLOT: usize = 512;

/// How many times a reader reads again a record it met half written.
const READ_TRIES: usize = 5;

/// The writer's open heartbeat file.
pub struct Writer {
    path: PathBuf,
    file: File,
    seq: u64,
    /// How long the file is: each write covers at least this much.
    len: usize,
}

impl Writer {
    /// Opens (creating it 0600, never through a link) the heartbeat file at `path`.
    pub fn open(path: &Path) -> Result<Writer> {
        let file = beneath::open(path, OFlag::O_WRONLY | OFlag::O_CREAT, 0o600, "open heartbeat")?;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        if !meta.is_file() {
            return Err(Error::System(format!(
                "refusing to write a heartbeat to {}: not a regular file",
                path.display()
            )));
        }
        Ok(Writer { path: path.to_path_buf(), file, seq: 0, len: meta.len() as usize })
    }

    /// Writes `beat` over the previous one (its `seq` and `seq_end` are set here).
    pub fn write(&mut self, beat: &mut Heartbeat) -> Result<()> {
        self.seq += 1;
        beat.seq = self.seq;
        beat.seq_end = self.seq;
        let mut bytes = serde_json::to_vec(beat).map_err(|e| Error::System(format!("encode heartbeat: {e}")))?;
        let len = bytes.len().max(SLOT).max(self.len);
        bytes.resize(len - 1, b' ');
        bytes.push(b'\n');
        self.file.write_all_at(&bytes, 0).map_err(|e| Error::io("write", &self.path, e))?;
        self.len = len;
        Ok(())
    }
}

/// Reads the heartbeat at `path`; `Ok(None)` when there is none. A record met half written is
/// read again; one that stays unreadable is corrupt.
pub fn read(path: &Path) -> Result<Option<Heartbeat>> {
    let mut last = String::new();
    for _ in 0..READ_TRIES {
        let Some(mut f) = beneath::open_read(path)? else { return Ok(None) };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| Error::io("read", path, e))?;
        match serde_json::from_slice::<Heartbeat>(&bytes) {
            Ok(beat) if beat.seq == beat.seq_end => return Ok(Some(beat)),
            Ok(beat) => last = format!("torn: seq {} but seqEnd {}", beat.seq, beat.seq_end),
            // An empty file: a writer that made it and has not written yet.
            Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => return Ok(None),
            Err(e) => last = e.to_string(),
        }
        std::thread::yield_now();
    }
    Err(Error::Corrupt { path: path.to_path_buf(), detail: last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::AgentId;
    use crate::time::Timestamp;
    use std::os::unix::fs::MetadataExt;

    fn beat(rss: u64) -> Heartbeat {
        Heartbeat {
            seq: 0,
            agent: AgentId::new("w1").unwrap(),
            time: Timestamp(1),
            wrap_pid: 1,
            pid: Some(2),
            uptime_ms: 3,
            rss_bytes: rss,
            cpu_percent: 0.5,
            processes: 1,
            tasks_running: 0,
            tasks_done: 0,
            interval_ms: Some(2000),
            seq_end: 0,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(crate::atomic::unique_name(name));
        crate::atomic::create_dir(&dir).unwrap();
        dir.join("heartbeat.json")
    }

    #[test]
    fn a_beat_is_rewritten_in_place_and_read_back() {
        let path = temp("hb-inplace");
        let mut w = Writer::open(&path).unwrap();
        assert_eq!(read(&path).unwrap(), None, "a file not yet written holds no beat");
        w.write(&mut beat(u64::MAX)).unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        let long = std::fs::metadata(&path).unwrap().len();
        w.write(&mut beat(1)).unwrap();
        let got = read(&path).unwrap().unwrap();
        assert_eq!((got.rss_bytes, got.seq, got.seq_end), (1, 2, 2));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.ino(), meta.len()), (ino, long), "the same file, its length kept");
        // A new writer (af-wrap restarted) over a longer old record covers it whole.
        std::fs::write(&path, format!("{}\n", " ".repeat(2000))).unwrap();
        Writer::open(&path).unwrap().write(&mut beat(7)).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().rss_bytes, 7);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_torn_read_is_never_taken_for_a_beat() {
        let path = temp("hb-torn");
        let mut w = Writer::open(&path).unwrap();
        w.write(&mut beat(1)).unwrap();
        let old = std::fs::read(&path).unwrap();
        w.write(&mut beat(22222)).unwrap();
        let new = std::fs::read(&path).unwrap();
        // Every mix of the old record's head with the new one's tail (and the other way round).
        for cut in 1..old.len().min(new.len()) {
            for mixed in [[&old[..cut], &new[cut..]].concat(), [&new[..cut], &old[cut..]].concat()] {
                std::fs::write(&path, &mixed).unwrap();
                if let Ok(Some(b)) = read(&path) {
                    assert!(b.rss_bytes == 1 || b.rss_bytes == 22222, "a mix was read as a beat: {b:?}");
                    assert!(
                        mixed == old
                            || mixed == new
                            || b == serde_json::from_slice(&old).unwrap()
                            || b == serde_json::from_slice(&new).unwrap(),
                        "cut {cut}: {b:?}"
                    );
                }
            }
        }
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
