//! Working-tree snapshots outside git: a gzip-compressed tar archive in the checkpoint, restored
//! by emptying the directory and extracting it (so a rerun after an interruption finishes it).

use af_spool::{Error, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The spool, relative to `dir`, when the spool lives inside it (it is never archived or removed).
fn spool_inside(dir: &Path, spool: &Path) -> Option<PathBuf> {
    spool.strip_prefix(dir).ok().and_then(|rel| rel.components().next()).map(|c| PathBuf::from(c.as_os_str()))
}

fn tar(args: &[&std::ffi::OsStr], what: &str) -> Result<()> {
    let mut cmd = Command::new("tar");
    cmd.args(args).stdin(Stdio::null());
    let out = super::gittree::output_as_user(&mut cmd)
        .map_err(|e| Error::System(format!("cannot run tar to {what} (is tar installed?): {e}")))?;
    // GNU tar exits 1 when a file changed while it was read: the archive is still whole.
    if !(out.status.success() || out.status.code() == Some(1) && what == "archive the working tree") {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().next().unwrap_or("").trim();
        return Err(Error::System(format!("tar failed to {what}: {line}")));
    }
    Ok(())
}

/// The most files a working tree outside git may hold: rollback empties and refills the whole
/// directory, which is no way to treat a home directory.
pub const MAX_FILES: usize = 100_000;

/// Refuses directories that must never be emptied by a rollback.
fn precious(dir: &Path) -> Result<()> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if dir == Path::new("/") || home.is_some_and(|h| h == dir) {
        return Err(Error::Invalid(format!(
            "the agent's workdir {} is not in a git repository and is too precious to archive and restore \
             (give the agent a project directory as workdir)",
            dir.display()
        )));
    }
    Ok(())
}

/// Refuses those, and trees too big to archive.
fn check(dir: &Path, spool: &Path) -> Result<()> {
    precious(dir)?;
    let skip = spool_inside(dir, spool);
    let mut count = 0usize;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            if d == dir && skip.as_deref().is_some_and(|s| s.as_os_str() == e.file_name()) {
                continue;
            }
            count += 1;
            if count > MAX_FILES {
                return Err(Error::Invalid(format!(
                    "the agent's workdir {} holds more than {MAX_FILES} files outside git; put it in a git repository",
                    dir.display()
                )));
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    Ok(())
}

/// Archives `dir` into `file`, mode 0600 whatever the umask (tar runs with the user's umask, for
/// the files it extracts); returns the archive's size.
pub fn create(dir: &Path, file: &Path, spool: &Path) -> Result<u64> {
    check(dir, spool)?;
    // Made by us first, 0600 and never through a symlink: tar then writes into the file that is
    // there, whose mode an open does not change.
    let made = af_spool::beneath::open(
        file,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_TRUNC,
        0o600,
        "create",
    )?;
    made.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("chmod", file, e))?;
    let mut args: Vec<std::ffi::OsString> = vec!["-C".into(), dir.into(), "-czf".into(), file.into()];
    if let Some(rel) = spool_inside(dir, spool) {
        let mut ex = std::ffi::OsString::from("--exclude=./");
        ex.push(rel);
        args.push(ex);
    }
    args.push(".".into());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    tar(&refs, "archive the working tree")?;
    // Whatever tar did with the file, it ends up 0600.
    made.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("chmod", file, e))?;
    let meta = std::fs::symlink_metadata(file).map_err(|e| Error::io("stat", file, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        let again = af_spool::beneath::open(file, nix::fcntl::OFlag::O_RDONLY, 0, "open")?;
        again.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("chmod", file, e))?;
    }
    Ok(meta.len())
}

/// Makes `dir` exactly the archive's tree: everything in it is removed, then the archive is
/// extracted with its modes.
pub fn restore(dir: &Path, file: &Path, spool: &Path) -> Result<()> {
    if !file.is_file() {
        return Err(Error::NotFound(format!("the checkpoint's archive {} is missing", file.display())));
    }
    precious(dir)?;
    af_spool::atomic::create_dir(dir)?;
    let keep = spool_inside(dir, spool);
    empty(dir, keep.as_deref())?;
    let args: Vec<&std::ffi::OsStr> =
        vec!["-C".as_ref(), dir.as_os_str(), "--no-same-owner".as_ref(), "-xzpf".as_ref(), file.as_os_str()];
    tar(&args, "extract the working tree")
}

fn empty(dir: &Path, keep: Option<&Path>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if keep.is_some_and(|k| k.as_os_str() == entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let removed = if is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    Ok(())
}

/// The unified diff of one path between two trees (`diff -u`, labelled `a/PATH` and `b/PATH`).
fn unified(rel: &Path, then: Option<&Entry>, old: &Path, now: Option<&Entry>, new: &Path) -> Result<String> {
    let shown = |e: Option<&Entry>, p: &Path| match e {
        Some(Entry::File { .. }) => p.to_path_buf(),
        _ => PathBuf::from("/dev/null"),
    };
    let mut out = String::new();
    for (side, e) in [("a", then), ("b", now)] {
        if let Some(Entry::Link(to)) = e {
            out.push_str(&format!("# {side}/{} is a symbolic link to {}\n", rel.display(), to.display()));
        }
    }
    let (a, b) = (shown(then, old), shown(now, new));
    if a == b {
        return Ok(out);
    }
    let mut cmd = Command::new("diff");
    cmd.arg("-u")
        .arg(format!("--label=a/{}", rel.display()))
        .arg(format!("--label=b/{}", rel.display()))
        .arg(&a)
        .arg(&b)
        .stdin(Stdio::null());
    let done = cmd.output().map_err(|e| Error::System(format!("cannot run diff (is diffutils installed?): {e}")))?;
    if done.status.code().is_some_and(|c| c > 1) || done.status.code().is_none() {
        let err = String::from_utf8_lossy(&done.stderr);
        return Err(Error::System(format!("diff failed on {}: {}", rel.display(), err.lines().next().unwrap_or(""))));
    }
    out.push_str(&String::from_utf8_lossy(&done.stdout));
    Ok(out)
}

/// One entry of a tree, for comparing.
#[derive(PartialEq)]
enum Entry {
    File { mode: u32, bytes: Vec<u8> },
    Link(PathBuf),
}

fn walk(root: &Path, rel: &Path, skip: Option<&Path>, out: &mut BTreeMap<PathBuf, Entry>) -> Result<()> {
    let dir = root.join(rel);
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
        let rel = rel.join(entry.file_name());
        if skip.is_some_and(|s| s == rel) {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
        if meta.is_dir() {
            walk(root, &rel, skip, out)?;
        } else if meta.file_type().is_symlink() {
            out.insert(rel, Entry::Link(std::fs::read_link(&path).map_err(|e| Error::io("read", &path, e))?));
        } else {
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            out.insert(rel, Entry::File { mode: meta.permissions().mode() & 0o111, bytes });
        }
    }
    Ok(())
}

/// What changed in `dir` since the archive: (status letter, path) lines, or with `patch` a
/// unified diff (`diff -u` of each changed file), `scratch` being an empty directory to extract
/// into.
pub fn diff(dir: &Path, file: &Path, scratch: &Path, spool: &Path, patch: bool) -> Result<String> {
    af_spool::atomic::create_dir(scratch)?;
    let result = (|| {
        let args: Vec<&std::ffi::OsStr> =
            vec!["-C".as_ref(), scratch.as_os_str(), "--no-same-owner".as_ref(), "-xzpf".as_ref(), file.as_os_str()];
        tar(&args, "read the archive")?;
        let (mut then, mut now) = (BTreeMap::new(), BTreeMap::new());
        walk(scratch, Path::new(""), None, &mut then)?;
        walk(dir, Path::new(""), spool_inside(dir, spool).as_deref(), &mut now)?;
        let mut lines = Vec::new();
        for (path, e) in &then {
            match now.get(path) {
                None => lines.push(format!("D\t{}", path.display())),
                Some(n) if n != e => lines.push(format!("M\t{}", path.display())),
                Some(_) => {}
            }
        }
        for path in now.keys().filter(|p| !then.contains_key(*p)) {
            lines.push(format!("A\t{}", path.display()));
        }
        lines.sort_by(|a, b| a[2..].cmp(&b[2..]));
        if !patch {
            return Ok(lines.join("\n"));
        }
        let mut out = String::new();
        for l in &lines {
            let rel = Path::new(&l[2..]);
            out.push_str(&unified(rel, then.get(rel), &scratch.join(rel), now.get(rel), &dir.join(rel))?);
        }
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(scratch);
    result
}
