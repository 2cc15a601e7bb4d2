//! Opening files and directories beneath the spool's root, never through a symbolic link.
//!
//! Anyone who can plant a symlink in the spool (a bug, a careless script, an agent with write
//! access to its own directory) must not be able to make an AgentFlow program write outside it.
//! So every file and directory under the root is reached by a walk from the root's descriptor:
//! each directory component is opened with `openat(…, O_NOFOLLOW | O_DIRECTORY)`, and the last
//! one with `O_NOFOLLOW`. A symlink anywhere below the root then fails with ELOOP (or ENOTDIR)
//! at the component that is one, and nothing is opened or created through it. Unlike an `lstat`
//! of each component before a path-based open, the walk holds each directory open while it goes
//! on, so a component swapped for a symlink between the check and the use is still refused.
//!
//! The root itself may be a symlink the user chose (`AF_HOME=/some/link`): [`crate::Spool::open`]
//! resolves it once, checks its ownership and mode, and registers the resolved path here. Paths
//! outside every registered root (an agent's workdir, `~/.claude`, a test's scratch directory)
//! are opened as before, their directories as the path says, with only the file itself refused
//! when it is a symlink.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The resolved roots of the spools this process opened.
static ROOTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a resolved spool root: paths below it are reached only by a walk from it.
pub fn register_root(root: &Path) {
    let mut roots = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    if !roots.iter().any(|r| r == root) {
        roots.push(root.to_path_buf());
    }
}

/// The registered root `path` lies beneath (the longest one), and the rest of the path.
fn split(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let roots = ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    roots
        .iter()
        .filter_map(|r| path.strip_prefix(r).ok().map(|rest| (r.clone(), rest.to_path_buf())))
        .max_by_key(|(r, _)| r.as_os_str().len())
}

/// The error for a symlink (or a non-directory where a directory belongs) at `path`.
pub fn refuse_link(path: &Path) -> Error {
    Error::System(format!("refusing to follow a symbolic link at {}", path.display()))
}

/// Maps an open's error at `path`: a symlink (ELOOP, or ENOTDIR where `dirfd` holds a symlink
/// named `name`) gets the refusal; anything else is an I/O error with `action`.
fn open_error(action: &'static str, path: &Path, dirfd: Option<(&OwnedFd, &Path)>, errno: Errno) -> Error {
    let is_link = match (errno, dirfd) {
        (Errno::ELOOP, _) => true,
        (Errno::ENOTDIR, Some((fd, name))) => {
            nix::sys::stat::fstatat(Some(fd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFLNK)
        }
        _ => false,
    };
    if is_link { refuse_link(path) } else { Error::io(action, path, errno.into()) }
}

fn openat(dir: &OwnedFd, name: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, mode)?;
    // SAFETY: openat just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_plain(path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, mode)?;
    // SAFETY: open just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY);

/// Walks from `root` down `rest`, each component a real directory (created mode 0700 when
/// missing and `create`); returns the last directory's descriptor.
fn walk(root: &Path, rest: &Path, create: bool) -> Result<OwnedFd> {
    let mut fd = open_plain(root, DIR_FLAGS, Mode::empty()).map_err(|e| Error::io("open directory", root, e.into()))?;
    let mut at = root.to_path_buf();
    for comp in rest.components() {
        let Component::Normal(name) = comp else {
            return Err(Error::Invalid(format!("{} is not a plain path beneath the spool", root.join(rest).display())));
        };
        let name = Path::new(name);
        at.push(name);
        let next = match openat(&fd, name, DIR_FLAGS, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                match nix::sys::stat::mkdirat(Some(fd.as_raw_fd()), name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Error::io("create directory", &at, e.into())),
                }
                let made = openat(&fd, name, DIR_FLAGS, Mode::empty())
                    .map_err(|e| open_error("open directory", &at, Some((&fd, name)), e))?;
                // mkdir's mode is filtered by the umask; make it exact.
                nix::sys::stat::fchmod(made.as_raw_fd(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| Error::io("chmod", &at, e.into()))?;
                made
            }
            Err(e) => return Err(open_error("open directory", &at, Some((&fd, name)), e)),
            Ok(next) => next,
        };
        fd = next;
    }
    Ok(fd)
}

/// Opens `rest` beneath `root` in one `openat2` that resolves no symlink and stays beneath the
/// root (Linux 5.6): the walk's guarantee in three system calls instead of two per component
/// (a health pass opens about ten files per agent). `None` when it cannot say: the kernel or a
/// seccomp filter has no openat2, the path is not plain, or the open failed; the caller then
/// walks, which also gives a failure its precise error (the component that is a link).
fn open_beneath(root: &Path, rest: &Path, flags: OFlag, mode: Mode) -> Option<OwnedFd> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    if rest.as_os_str().is_empty() || !rest.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let rootfd = open_plain(root, DIR_FLAGS, Mode::empty()).ok()?;
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = nix::fcntl::openat2(rootfd.as_raw_fd(), rest, how).ok()?;
    // SAFETY: openat2 just returned this descriptor, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `dir`: beneath a spool root by a walk that follows no symlink; elsewhere
/// (the user's own directories, such as a workdir or `~/.claude`, where links are the user's
/// choice) as the path says.
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    match split(dir) {
        Some((root, rest)) => match open_beneath(&root, &rest, DIR_FLAGS, Mode::empty()) {
            Some(fd) => Ok(fd),
            None => walk(&root, &rest, false),
        },
        None => open_plain(dir, DIR_FLAGS, Mode::empty()).map_err(|e| open_error("open directory", dir, None, e)),
    }
}

/// Creates `dir` and its missing parents, mode 0700 whatever the umask. Beneath a spool root no
/// component may be a symlink.
pub fn create_dir(dir: &Path) -> Result<()> {
    match split(dir) {
        Some((root, rest)) => walk(&root, &rest, true).map(drop),
        None => create_dir_outside(dir),
    }
}

fn create_dir_outside(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            create_dir_outside(parent)?;
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("chmod", dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create directory", dir, e)),
    }
}

/// Opens the file at `path` with `flags` (and `mode` when it creates it), never through a
/// symlink: `O_NOFOLLOW` on the file, and beneath a spool root a walk to its directory.
/// `action` names what failed in the error ("open lock", "open log"…).
pub fn open(path: &Path, flags: OFlag, mode: u32, action: &'static str) -> Result<File> {
    let name =
        path.file_name().map(Path::new).ok_or_else(|| Error::Invalid(format!("{} names no file", path.display())))?;
    if let Some((root, rest)) = split(path) {
        if let Some(fd) = open_beneath(&root, &rest, flags, Mode::from_bits_truncate(mode)) {
            return Ok(File::from(fd));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dirfd = open_dir(dir)?;
    let fd = openat(&dirfd, name, flags, Mode::from_bits_truncate(mode))
        .map_err(|e| open_error(action, path, Some((&dirfd, name)), e))?;
    Ok(File::from(fd))
}

/// Opens `path` for appending (a log, JSON lines), creating it 0600, never through a symlink,
/// and only a regular file: opened without blocking, so that a named pipe planted there cannot
/// hang us waiting for a reader, and refused when `fstat` says it is anything else.
pub fn open_append(path: &Path) -> Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_NONBLOCK;
    let not_regular = || Error::System(format!("refusing to append to {}: not a regular file", path.display()));
    let file = match open(path, flags, 0o600, "open for appending") {
        // A named pipe nobody reads.
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(nix::libc::ENXIO) => return Err(not_regular()),
        other => other?,
    };
    let st = nix::sys::stat::fstat(file.as_raw_fd()).map_err(|e| Error::io("stat", path, e.into()))?;
    if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
        return Err(not_regular());
    }
    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_APPEND))
        .map_err(|e| Error::io("set flags of", path, e.into()))?;
    Ok(file)
}

/// Opens `path` for reading, never through a symlink; `Ok(None)` when it does not exist.
pub fn open_read(path: &Path) -> Result<Option<File>> {
    match open(path, OFlag::O_RDONLY, 0, "open") {
        Ok(f) => Ok(Some(f)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the named pipe at `path` without blocking (for writing: ENXIO when nobody reads), and
/// only if it is one: a symlink or a regular file planted there is refused unwritten, since a
/// notifier would otherwise overwrite whatever it points at.
pub fn open_fifo(path: &Path, write: bool) -> std::io::Result<File> {
    let access = if write { OFlag::O_WRONLY } else { OFlag::O_RDONLY };
    let file = open(path, access | OFlag::O_NONBLOCK, 0, "open named pipe").map_err(into_io)?;
    let st = nix::sys::stat::fstat(file.as_fd().as_raw_fd()).map_err(std::io::Error::from)?;
    if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFIFO {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing {}: not a named pipe", path.display()),
        ));
    }
    Ok(file)
}

/// An error as the `std::io::Error` it carries (for callers that branch on errno).
pub fn into_io(e: Error) -> std::io::Error {
    match e {
        Error::Io { source, .. } => source,
        Error::System(m) if m.starts_with("refusing to follow") => std::io::Error::from_raw_os_error(nix::libc::ELOOP),
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn refuses_symlinks_below_a_root_and_creates_dirs_0700() {
        let base = std::env::temp_dir().join(crate::atomic::unique_name("beneath-test"));
        std::fs::create_dir_all(&base).unwrap();
        let root = base.canonicalize().unwrap().join("root");
        let outside = base.canonicalize().unwrap().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        register_root(&root);
        create_dir(&root.join("a/b")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(root.join("a/b")).unwrap().permissions().mode() & 0o777, 0o700);
        symlink(&outside, root.join("link")).unwrap();
        let e = create_dir(&root.join("link/x")).unwrap_err();
        assert!(e.to_string().contains("refusing to follow a symbolic link at"), "{e}");
        assert!(open_append(&root.join("link/f.log")).is_err());
        symlink(outside.join("canary"), root.join("a/f.log")).unwrap();
        let e = open_append(&root.join("a/f.log")).unwrap_err();
        assert!(e.to_string().contains("refusing to follow a symbolic link at"), "{e}");
        assert!(!outside.join("canary").exists() && !outside.join("x").exists() && !outside.join("f.log").exists());
        std::fs::write(root.join("a/regular"), b"keep").unwrap();
        assert!(open_fifo(&root.join("a/regular"), true).is_err());
        assert_eq!(std::fs::read(root.join("a/regular")).unwrap(), b"keep");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_one_call_open_refuses_what_the_walk_refuses_and_names_the_link() {
        let base = std::env::temp_dir().join(crate::atomic::unique_name("beneath-fast"));
        std::fs::create_dir_all(base.join("root/a/b")).unwrap();
        std::fs::create_dir_all(base.join("outside/b")).unwrap();
        let base = base.canonicalize().unwrap();
        let root = base.join("root");
        register_root(&root);
        std::fs::write(root.join("a/b/f.json"), b"in").unwrap();
        std::fs::write(base.join("outside/b/f.json"), b"out").unwrap();
        // The plain path opens, file and directory alike.
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut open(&root.join("a/b/f.json"), OFlag::O_RDONLY, 0, "open").unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "in");
        assert!(open_dir(&root.join("a/b")).is_ok());
        // A link in the middle: refused, naming the component that is the link.
        symlink(base.join("outside"), root.join("l")).unwrap();
        let at = root.join("l");
        for e in [
            open(&root.join("l/b/f.json"), OFlag::O_RDONLY, 0, "open").unwrap_err(),
            open_dir(&root.join("l/b")).unwrap_err(),
            open(&root.join("l/b/new"), OFlag::O_WRONLY | OFlag::O_CREAT, 0o600, "create").unwrap_err(),
        ] {
            assert_eq!(e.to_string(), refuse_link(&at).to_string());
        }
        assert!(!base.join("outside/b/new").exists());
        // A path that climbs out is no plain path beneath the spool.
        assert!(matches!(open_dir(&root.join("a/../../outside")), Err(Error::Invalid(_))));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
