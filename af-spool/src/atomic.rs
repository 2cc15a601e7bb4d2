//! Atomic record writes: a temporary file in the same directory, fsync, rename into place, and
//! (for durable writes) fsync of the directory. No reader ever sees half a record.

use crate::beneath;
use crate::error::{Error, Result};
use nix::fcntl::OFlag;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How hard a write tries to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory: survives a crash of the machine.
    Durable,
    /// fsync the file but not its directory: for a file in a directory that is synced afterwards
    /// (one directory fsync for many files).
    Contents,
    /// rename only: atomic for every reader and survives any process being killed, but may be lost
    /// on a power cut (heartbeats, caches).
    Volatile,
}

/// A name no other writer on this machine uses at this moment: `.<prefix>.<pid>.<nanos>.<n>`.
/// Hidden (leading dot), so listings skip it.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!(".{prefix}.{}.{nanos}.{n}", std::process::id())
}

/// Writes `bytes` to `path` atomically, mode 0600. The temporary file is created and renamed
/// within the directory's descriptor, reached without following a symlink (see
/// [`crate::beneath`]), so a planted link can neither redirect the write nor be written through.
pub fn write(path: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Invalid(format!("{} has no directory", path.display())))?;
    let name = path.file_name().ok_or_else(|| Error::Invalid(format!("{} names no file", path.display())))?;
    let dirfd = beneath::open_dir(dir)?;
    let tmp_name = unique_name("tmp");
    let tmp = dir.join(&tmp_name);
    let result = write_tmp(&dirfd, &tmp, bytes, durability).and_then(|()| {
        nix::fcntl::renameat(Some(dirfd.as_raw_fd()), tmp_name.as_str(), Some(dirfd.as_raw_fd()), name)
            .map_err(|e| Error::io("rename into", path, e.into()))
    });
    if result.is_err() {
        let _ =
            nix::unistd::unlinkat(Some(dirfd.as_raw_fd()), tmp_name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    result?;
    if durability == Durability::Durable {
        nix::unistd::fsync(dirfd.as_raw_fd()).map_err(|e| Error::io("fsync directory", dir, e.into()))?;
    }
    Ok(())
}

/// Serializes `value` as pretty JSON (with a final newline) and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T, durability: Durability) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Invalid(format!("cannot serialize {}: {e}", path.display())))?;
    bytes.push(b'\n');
    write(path, &bytes, durability)
}

fn write_tmp(dirfd: &std::os::fd::OwnedFd, tmp: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let name = tmp.file_name().map(Path::new).unwrap_or(tmp);
    let fd = nix::fcntl::openat(
        Some(dirfd.as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| Error::io("create", tmp, e.into()))?;
    // SAFETY: openat just returned this descriptor, and nothing else owns it.
    let mut f = unsafe { File::from_raw_fd(fd) };
    // The mode given to open is filtered by the umask; make it exact.
    f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("chmod", tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", tmp, e))?;
    if durability != Durability::Volatile {
        f.sync_all().map_err(|e| Error::io("fsync", tmp, e))?;
    }
    Ok(())
}

/// Creates the file `name` in the directory open as `dirfd` (at `dir`, for errors), mode 0600,
/// never through a symlink, and writes `bytes` into it, unsynced. The file is returned open.
pub fn create_in(dirfd: &std::os::fd::OwnedFd, dir: &Path, name: &str, bytes: &[u8]) -> Result<File> {
    let path = dir.join(name);
    let fd = nix::fcntl::openat(
        Some(dirfd.as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| Error::io("create", &path, e.into()))?;
    // SAFETY: openat just returned this descriptor, and nothing else owns it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    if let Err(e) = file.write_all(bytes) {
        let _ = nix::unistd::unlinkat(Some(dirfd.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(Error::io("write", &path, e));
    }
    Ok(file)
}

/// fsyncs a directory, so that renames and creations in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let fd = beneath::open_dir(dir)?;
    nix::unistd::fsync(fd.as_raw_fd()).map_err(|e| Error::io("fsync directory", dir, e.into()))
}

/// Creates a directory (and its parents) with mode 0700, whatever the umask; beneath the spool's
/// root, never through a symlink (see [`crate::beneath`]).
pub fn create_dir(dir: &Path) -> Result<()> {
    beneath::create_dir(dir)
}

/// Reads a JSON record, never through a symlink. `Ok(None)` when the file does not exist;
/// [`Error::Corrupt`] (a system failure, not the caller's input) when it does not parse.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(mut f) = beneath::open_read(path)? else { return Ok(None) };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), detail: e.to_string() })
}

/// A path beside `path` with `suffix` appended to the file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_is_0600_and_replaces() {
        let dir = std::env::temp_dir().join(unique_name("atomic-test"));
        create_dir(&dir).unwrap();
        let p = dir.join("rec.json");
        write(&p, b"one", Durability::Durable).unwrap();
        write(&p, b"two", Durability::Volatile).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        fs::remove_dir_all(&dir).unwrap();
    }
}
