//! Size-based rotation of log files: `name` → `name.1` → `name.2` … up to a number of generations.

use std::path::{Path, PathBuf};

/// How many rotated generations are kept.
pub const KEEP: usize = 3;

fn generation(path: &Path, n: usize) -> PathBuf {
    crate::atomic::sibling(path, &format!(".{n}"))
}

/// Rotates `path` by renaming when it is larger than `max_bytes`: for files the writer reopens.
pub fn rotate_if_larger(path: &Path, max_bytes: u64, keep: usize) -> bool {
    if std::fs::symlink_metadata(path).map_or(true, |m| !m.is_file() || m.len() <= max_bytes) {
        return false;
    }
    for n in (1..keep).rev() {
        let _ = std::fs::rename(generation(path, n), generation(path, n + 1));
    }
    std::fs::rename(path, generation(path, 1)).is_ok()
}

/// Rotates `path` by copying it to `path.1` and truncating it, for a file another process keeps
/// appending to (O_APPEND writers go on at the new end). Lines written between the copy and the
/// truncation are lost; that is the price of not restarting the writer.
pub fn copy_truncate_if_larger(path: &Path, max_bytes: u64) -> bool {
    // Never through a symlink: the file is opened once, without following one, and copied from
    // and truncated through that descriptor.
    let Ok(Some(mut from)) = crate::beneath::open_read(path) else { return false };
    if from.metadata().map_or(true, |m| !m.is_file() || m.len() <= max_bytes) {
        return false;
    }
    let mut copy = || -> crate::Result<()> {
        let to = generation(path, 1);
        let tmp = crate::atomic::sibling(&to, ".tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = crate::beneath::open(
            &tmp,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL,
            0o600,
            "create",
        )?;
        std::io::copy(&mut from, &mut out).map_err(|e| crate::Error::io("copy", path, e))?;
        std::fs::rename(&tmp, &to).map_err(|e| crate::Error::io("rename", &to, e))
    };
    let truncate = || crate::beneath::open(path, nix::fcntl::OFlag::O_WRONLY, 0, "open").map(|f| f.set_len(0).is_ok());
    copy().is_ok() && truncate().is_ok_and(|t| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_generations() {
        let dir = std::env::temp_dir().join(crate::atomic::unique_name("logfile-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("x.log");
        for round in 0..5 {
            std::fs::write(&log, vec![b'a' + round; 100]).unwrap();
            assert!(rotate_if_larger(&log, 50, KEEP));
        }
        assert!(!log.exists());
        assert_eq!(std::fs::read(generation(&log, 1)).unwrap()[0], b'e');
        assert_eq!(std::fs::read(generation(&log, 3)).unwrap()[0], b'c');
        assert!(!generation(&log, 4).exists());
        std::fs::write(&log, b"small").unwrap();
        assert!(!rotate_if_larger(&log, 50, KEEP));
        std::fs::write(&log, vec![b'z'; 100]).unwrap();
        assert!(copy_truncate_if_larger(&log, 50));
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        assert_eq!(std::fs::read(generation(&log, 1)).unwrap().len(), 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
