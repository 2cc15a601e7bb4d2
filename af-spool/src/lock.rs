//! Exclusive locks on files (flock through fs2). A lock is released when its holder exits, however
//! it exits, so a SIGKILL never leaves a stale lock behind.

use crate::atomic;
use crate::error::{Error, Result};
use fs2::FileExt;
use std::fs::File;
use std::path::Path;

/// A held exclusive lock; released on drop or at process exit.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        atomic::create_dir(dir)?;
    }
    // Never through a symlink: a planted link must not make us create or lock a file elsewhere.
    crate::beneath::open(path, nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CREAT, 0o600, "open lock")
}

impl Lock {
    /// Waits for and takes the lock at `path`.
    pub fn exclusive(path: &Path) -> Result<Lock> {
        let file = open(path)?;
        FileExt::lock_exclusive(&file).map_err(|e| Error::io("lock", path, e))?;
        Ok(Lock { file })
    }

    /// Waits for and takes the lock at `path` shared: any number of shared holders at once, none
    /// while someone holds it exclusively.
    pub fn shared(path: &Path) -> Result<Lock> {
        let file = open(path)?;
        FileExt::lock_shared(&file).map_err(|e| Error::io("lock", path, e))?;
        Ok(Lock { file })
    }

    /// Takes the lock at `path` if it is free; `Ok(None)` if someone holds it.
    pub fn try_exclusive(path: &Path) -> Result<Option<Lock>> {
        let file = open(path)?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(()) => Ok(Some(Lock { file })),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.raw_os_error() == Some(nix::libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io("lock", path, e)),
        }
    }

    /// Takes the lock at `path` unless someone really holds it. [`Lock::is_held`] probes take the
    /// lock shared for an instant, so a refusal is retried for up to `patience` before it counts:
    /// a supervisor starting while `af-spawn ls` or a health check looks must not give up.
    pub fn try_exclusive_patiently(path: &Path, patience: std::time::Duration) -> Result<Option<Lock>> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Some(lock) = Lock::try_exclusive(path)? {
                return Ok(Some(lock));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Whether someone holds the lock at `path` (a missing file means nobody does). It takes the
    /// lock shared for an instant to find out.
    pub fn is_held(path: &Path) -> bool {
        let Ok(Some(file)) = crate::beneath::open_read(path) else { return false };
        match FileExt::try_lock_shared(&file) {
            Ok(()) => {
                let _ = FileExt::unlock(&file);
                false
            }
            Err(_) => true,
        }
    }

    /// The locked descriptor, for a child that must hold the lock with us (a holder killed with
    /// SIGKILL must not free the lock while a child it started still runs): clear its close-on-exec
    /// flag in that child only (`pre_exec`), never in ours, or every later child would keep it.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }

    /// The locked file (for writing the holder's pid into it, say).
    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn probes_never_make_a_patient_taker_give_up() {
        let dir = std::env::temp_dir().join(atomic::unique_name("locktest"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wrap.lock");
        Lock::exclusive(&path).map(drop).unwrap();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let probers: Vec<_> = (0..2)
            .map(|_| {
                let (path, done) = (path.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        std::hint::black_box(Lock::is_held(&path));
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            let lock = Lock::try_exclusive_patiently(&path, Duration::from_secs(1)).unwrap();
            assert!(lock.is_some(), "a probe made the taker give up");
        }
        // Someone who really holds it is still refused, after the patience.
        let held = Lock::exclusive(&path).unwrap();
        let t = std::time::Instant::now();
        assert!(Lock::try_exclusive_patiently(&path, Duration::from_millis(50)).unwrap().is_none());
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(held);
        done.store(true, Ordering::Relaxed);
        for p in probers {
            p.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
