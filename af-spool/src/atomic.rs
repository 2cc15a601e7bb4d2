//! Atomic record writes: a temporary file in the same directory, fsync, rename into place, and
//! (for durable writes) fsync of the directory. No reader ever sees half a record.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// Writes `bytes` to `path` atomically, mode 0600.
pub fn write(path: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Invalid(format!("{} has no directory", path.display())))?;
    let tmp = dir.join(unique_name("tmp"));
    let result = write_tmp(&tmp, bytes, durability)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if durability == Durability::Durable {
        sync_dir(dir)?;
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

fn write_tmp(tmp: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| Error::io("create", tmp, e))?;
    // The mode given to open is filtered by the umask; make it exact.
    f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("chmod", tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", tmp, e))?;
    if durability != Durability::Volatile {
        f.sync_all().map_err(|e| Error::io("fsync", tmp, e))?;
    }
    Ok(())
}

/// fsyncs a directory, so that renames and creations in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates a directory (and its parents) with mode 0700, whatever the umask.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            create_dir(parent)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io("chmod", dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create directory", dir, e)),
    }
}

/// Reads a JSON record. `Ok(None)` when the file does not exist; [`Error::Corrupt`] (a system
/// failure, not the caller's input) when it does not parse.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt { path: path.to_path_buf(), detail: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
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
