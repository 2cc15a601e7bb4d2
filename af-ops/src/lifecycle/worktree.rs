//! An agent's own git worktree (`create --worktree`): made at create time on branch `af/<id>`,
//! seeded with the untracked files `.worktreeinclude` lists, removed by `rm` only when nothing
//! would be lost (or, with `--force`, after a checkpoint that keeps it).

use af_spool::record::AgentConfig;
use af_spool::{AgentId, Error, Result, Spool, worktree};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::System(format!("cannot run git (is it installed?): {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
        return Err(Error::System(format!("git {} failed: {line}", args.first().unwrap_or(&""))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

/// Checks, before anything is created, that the agent can have a worktree.
pub fn check(spool: &Spool, config: &AgentConfig) -> Result<()> {
    let id = &config.id;
    let dir = config.workdir.clone().unwrap_or_else(|| PathBuf::from("."));
    if git(&dir, &["rev-parse", "--show-toplevel"]).is_err() {
        return Err(Error::Invalid(format!(
            "agent '{id}': --worktree needs a workdir inside a git repository ({} is not)",
            dir.display()
        )));
    }
    if git(&dir, &["rev-parse", "-q", "--verify", "HEAD^{commit}"]).is_err() {
        return Err(Error::Invalid(format!("agent '{id}': the repository has no commit to branch from")));
    }
    let branch = worktree::branch(id);
    if git(&dir, &["rev-parse", "-q", "--verify", &format!("refs/heads/{branch}")]).is_ok() {
        return Err(Error::Conflict(format!(
            "branch {branch} exists already; delete it (git branch -D {branch}) or pick another agent id"
        )));
    }
    let path = spool.worktree_dir(id);
    if path.exists() {
        return Err(Error::Conflict(format!(
            "{} exists already (left by an interrupted create?); remove it: git worktree remove --force {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Makes the agent's worktree on its own branch from HEAD, copies the files `.worktreeinclude`
/// lists, and points the config's workdir into it (at the same place relative to the top).
pub fn make(spool: &Spool, config: &mut AgentConfig) -> Result<()> {
    let id = config.id.clone();
    let dir = config.workdir.clone().unwrap_or_else(|| PathBuf::from("."));
    let top = PathBuf::from(git(&dir, &["rev-parse", "--show-toplevel"])?);
    let rel =
        dir.canonicalize().ok().and_then(|d| d.strip_prefix(&top).ok().map(Path::to_path_buf)).unwrap_or_default();
    let path = spool.worktree_dir(&id);
    if let Some(parent) = path.parent() {
        af_spool::atomic::create_dir(parent)?;
    }
    let shown = path.display().to_string();
    git(&top, &["worktree", "add", "-q", "-b", &worktree::branch(&id), &shown, "HEAD"])?;
    if let Err(e) = copy_included(&top, &path) {
        let _ = remove(spool, &id);
        return Err(e);
    }
    config.workdir = Some(if rel.as_os_str().is_empty() { path } else { path.join(rel) });
    config.worktree = true;
    Ok(())
}

/// Copies the untracked files of `top` that `.worktreeinclude` matches into the worktree.
fn copy_included(top: &Path, to: &Path) -> Result<()> {
    if !top.join(worktree::INCLUDE_FILE).is_file() {
        return Ok(());
    }
    let listed =
        git(top, &["ls-files", "-z", "--others", "--ignored", &format!("--exclude-from={}", worktree::INCLUDE_FILE)])?;
    for rel in listed.split('\0').filter(|r| !r.is_empty()) {
        let (from, dest) = (top.join(rel), to.join(rel));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
        }
        std::fs::copy(&from, &dest).map_err(|e| Error::io("copy into the worktree", &from, e))?;
    }
    Ok(())
}

/// What removing the agent's worktree would lose: uncommitted changes, commits on no other
/// branch or remote. None when nothing (or when it has no worktree).
pub fn at_risk(spool: &Spool, id: &AgentId) -> Result<Option<String>> {
    let path = spool.worktree_dir(id);
    if !path.is_dir() {
        return Ok(None);
    }
    let branch = worktree::branch(id);
    let dirty = !git(&path, &["status", "--porcelain"])?.is_empty();
    let unpushed = git(
        &path,
        &["rev-list", "--count", "HEAD", "--not", &format!("--exclude={branch}"), "--branches", "--remotes"],
    )?
    .parse::<u64>()
    .unwrap_or(0);
    let mut what = Vec::new();
    if dirty {
        what.push("uncommitted changes".to_owned());
    }
    if unpushed > 0 {
        what.push(format!("{unpushed} commit(s) on no other branch or remote"));
    }
    Ok((!what.is_empty()).then(|| format!("{} in {} (branch {branch})", what.join(" and "), path.display())))
}

/// Removes the agent's worktree and its branch (fine if they are gone already).
pub fn remove(spool: &Spool, id: &AgentId) -> Result<()> {
    let path = spool.worktree_dir(id);
    if !path.exists() {
        return Ok(());
    }
    let common = PathBuf::from(git(&path, &["rev-parse", "--path-format=absolute", "--git-common-dir"])?);
    git(&common, &["worktree", "remove", "--force", &path.display().to_string()])?;
    let branch = worktree::branch(id);
    if git(&common, &["rev-parse", "-q", "--verify", &format!("refs/heads/{branch}")]).is_ok() {
        git(&common, &["branch", "-q", "-D", &branch])?;
    }
    Ok(())
}
