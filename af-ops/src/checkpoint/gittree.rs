//! Working-tree snapshots in git, with plumbing and a private index: the user's index is copied
//! (so its stat cache spares hashing unchanged files), `git add --all` records the tree as it is
//! on disk, and the commit is held by a private ref. HEAD, the branch, the user's index, the stash
//! and the files are never touched by a snapshot.

use af_spool::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A git working tree.
pub struct Repo {
    /// Its top-level directory.
    pub top: PathBuf,
    /// The user's index file.
    index: PathBuf,
    /// HEAD's commit, if the repository has one.
    head: Option<String>,
    /// af-checkpoint's own index for this repository, kept between runs as a stat cache.
    cache: Option<PathBuf>,
    /// A pathspec keeping the spool out of snapshots, when the spool lives inside the tree.
    exclude: Option<String>,
}

/// What a snapshot made.
pub struct Snapshot {
    /// The commit.
    pub commit: String,
    /// Its tree.
    pub tree: String,
    /// HEAD at the time, if any.
    pub head: Option<String>,
}

fn git(dir: &Path, index: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_AUTHOR_NAME", "AgentFlow")
        .env("GIT_AUTHOR_EMAIL", "agentflow@localhost")
        .env("GIT_COMMITTER_NAME", "AgentFlow")
        .env("GIT_COMMITTER_EMAIL", "agentflow@localhost")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    if let Some(i) = index {
        c.env("GIT_INDEX_FILE", i);
    }
    c
}

/// Runs a command that writes the user's files with the user's umask (not the spool's 077), so
/// restored files get the modes git or tar would give them at the user's prompt.
/// The child is killed when we are, and holds the checkpoint lock until it is gone: a git or tar
/// left running by a killed af-checkpoint would race with the rerun that is meant to finish its job.
pub fn output_as_user(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    use nix::sys::stat::{Mode, umask};
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let parent = std::process::id() as nix::libc::pid_t;
    let lock_fd = super::store::lock_fd().unwrap_or(-1);
    // SAFETY: prctl, getppid and fcntl are async-signal-safe system calls; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            // The child holds the checkpoint lock with us until it exits (see store::lock).
            if lock_fd >= 0 && nix::libc::fcntl(lock_fd, nix::libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL as nix::libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if nix::libc::getppid() != parent {
                return Err(std::io::Error::other("af-checkpoint died before its child started"));
            }
            Ok(())
        });
    }
    let ours = umask(Mode::from_bits_truncate(crate::process::user_umask() as nix::libc::mode_t));
    let child = cmd.spawn();
    umask(ours);
    child?.wait_with_output()
}

/// Runs git; returns its stdout (trimmed) or a System error with its stderr.
fn run(mut cmd: Command, what: &str) -> Result<String> {
    let out = output_as_user(&mut cmd)
        .map_err(|e| Error::System(format!("cannot run git to {what} (is git installed?): {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(Error::System(format!("git failed to {what}: {line}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

impl Repo {
    /// The git working tree holding `dir`, or None when `dir` is not inside one.
    pub fn discover(dir: &Path) -> Result<Option<Repo>> {
        // One git run in the usual case (a repository with commits); a second without HEAD
        // for a repository that has none yet.
        for with_head in [true, false] {
            let mut cmd = git(dir, None);
            cmd.args(["rev-parse", "--show-toplevel", "--git-path", "index"]);
            if with_head {
                cmd.arg("HEAD");
            }
            let out = cmd
                .output()
                .map_err(|e| Error::System(format!("cannot run git rev-parse (is git installed?): {e}")))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                if err.contains("not a git repository") {
                    return Ok(None);
                }
                if with_head {
                    continue;
                }
                let line = err.lines().next().unwrap_or("").trim().to_owned();
                return Err(Error::System(format!("git cannot read the repository at {}: {line}", dir.display())));
            }
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut lines = text.lines();
            let (Some(top), Some(index)) = (lines.next(), lines.next()) else {
                return Err(Error::System(format!("git rev-parse gave no top-level for {}", dir.display())));
            };
            let head = lines.next().filter(|h| h.len() >= 40 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            return Ok(Some(Repo {
                top: PathBuf::from(top),
                index: dir.join(index),
                head: head.map(str::to_owned),
                cache: None,
                exclude: None,
            }));
        }
        Ok(None)
    }

    /// Reopens the repository recorded in a checkpoint.
    pub fn at(top: &Path) -> Result<Repo> {
        if !top.is_dir() {
            return Err(Error::NotFound(format!("the repository {} is gone", top.display())));
        }
        match Repo::discover(top)? {
            Some(r) => Ok(r),
            None => Err(Error::NotFound(format!("{} is no longer a git repository", top.display()))),
        }
    }

    /// Keeps the private index between runs at `cache` (in the spool): starting from it, `git
    /// add --all` rehashes only what changed since, even when the user's index is stale.
    pub fn with_cache(mut self, cache: PathBuf) -> Repo {
        self.cache = Some(cache);
        self
    }

    /// Keeps the spool at `spool` out of snapshots and rollbacks when it lives inside the tree.
    pub fn excluding(mut self, spool: &Path) -> Repo {
        if let Ok(rel) = spool.strip_prefix(&self.top) {
            if !rel.as_os_str().is_empty() {
                self.exclude = Some(format!(":(exclude,literal){}", rel.display()));
            }
        }
        self
    }

    /// Fills the private index `tmp` with the tree as it is on disk now (tracked and untracked,
    /// not ignored), starting from the fresher of our cache and the user's index (their stat
    /// data spares hashing unchanged files; git's racy-entry checks keep that safe).
    fn index_disk(&self, tmp: &Path) -> Result<()> {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let source = match &self.cache {
            Some(c) if mtime(c).is_some_and(|t| mtime(&self.index).is_none_or(|u| t > u)) => c,
            _ => &self.index,
        };
        match std::fs::copy(source, tmp) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("copy the git index to", tmp, e)),
        }
        let mut add = git(&self.top, Some(tmp));
        add.args(["add", "--all", "--", "."]);
        if let Some(x) = &self.exclude {
            add.arg(x);
        }
        run(add, "record the working tree").map(|_| ())
    }

    /// Done with the private index: kept as the cache after a success, else removed.
    fn release(&self, tmp: &Path, ok: bool) {
        let kept = ok && self.cache.as_ref().is_some_and(|c| std::fs::rename(tmp, c).is_ok());
        if !kept {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// The id of the tree on disk now, recorded through the private index `tmp`.
    fn tree_on_disk(&self, tmp: &Path) -> Result<String> {
        self.index_disk(tmp)?;
        let mut wt = git(&self.top, Some(tmp));
        wt.arg("write-tree");
        run(wt, "write the tree")
    }

    /// Snapshots the tree on disk as a commit held by `reference`, using `tmp` as the index.
    pub fn snapshot(&self, tmp: &Path, reference: &str, message: &str) -> Result<Snapshot> {
        let tree = self.tree_on_disk(tmp);
        self.release(tmp, tree.is_ok());
        let tree = tree?;
        let head = self.head.clone();
        let mut ct = git(&self.top, None);
        ct.args(["commit-tree", &tree, "-m", message]);
        if let Some(h) = &head {
            ct.args(["-p", h]);
        }
        let commit = run(ct, "commit the snapshot")?;
        let mut ur = git(&self.top, None);
        ur.args(["update-ref", reference, &commit]);
        run(ur, "hold the snapshot under a ref")?;
        Ok(Snapshot { commit, tree, head })
    }

    /// Makes the tree on disk exactly `tree`: changed files rewritten, added ones removed,
    /// deleted ones restored, modes set; ignored files untouched. With `reset_index`, the user's
    /// index is set to `tree` too. Running it again after an interruption finishes it.
    pub fn restore(&self, tmp: &Path, tree: &str, reset_index: bool) -> Result<()> {
        // A two-way merge from "what is on disk" to the snapshot: every difference is written.
        let result = self.index_disk(tmp).and_then(|()| {
            let mut rt = git(&self.top, Some(tmp));
            rt.args(["read-tree", "--reset", "-u", tree]);
            run(rt, "restore the working tree")
        });
        self.release(tmp, result.is_ok());
        if result.is_err() && !self.has(tree) {
            return Err(Error::NotFound(format!("the snapshot {tree} is gone from {}", self.top.display())));
        }
        result?;
        if reset_index {
            let mut ri = git(&self.top, None);
            ri.args(["read-tree", "--reset", tree]);
            run(ri, "set the index")?;
        }
        Ok(())
    }

    /// What changed on disk since `tree`: (status letter, path) pairs, or the patch.
    pub fn diff(&self, tmp: &Path, tree: &str, patch: bool) -> Result<String> {
        let now = self.tree_on_disk(tmp);
        self.release(tmp, now.is_ok());
        let now = now?;
        let mut d = git(&self.top, None);
        if patch {
            d.args(["diff-tree", "-r", "-p", "--no-color", tree, &now]);
        } else {
            d.args(["-c", "core.quotePath=false", "diff-tree", "-r", "--name-status", "--no-renames", tree, &now]);
        }
        run(d, "compare the trees")
    }

    /// Whether the repository has the object (a snapshot commit survives as long as its ref).
    pub fn has(&self, object: &str) -> bool {
        let mut c = git(&self.top, None);
        c.args(["cat-file", "-e", object]).stdout(Stdio::null()).stderr(Stdio::null());
        c.status().is_ok_and(|s| s.success())
    }

    /// Deletes a private ref (fine if it is already gone).
    pub fn delete_ref(&self, reference: &str) -> Result<()> {
        let mut c = git(&self.top, None);
        c.args(["update-ref", "-d", reference]);
        run(c, "delete the checkpoint ref").map(|_| ())
    }
}

/// Deletes a ref in the repository at `top`, ignoring a repository that is gone.
pub fn forget_ref(top: &Path, reference: &str) {
    if let Ok(Some(repo)) = Repo::discover(top) {
        if let Err(e) = repo.delete_ref(reference) {
            tracing::warn!("{e:#}");
        }
    }
}
