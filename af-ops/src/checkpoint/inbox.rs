//! An agent's messages in a checkpoint: the files of its inbox's `new/` (pending) and `cur/` (in
//! flight), copied as they are. A rollback makes every one of them pending again (Maildir
//! delivery: into `tmp/`, then renamed into `new/`); messages that arrived since the checkpoint
//! are kept, pending, since other agents sent them and nobody has seen them yet.

use af_spool::{AgentId, Error, Result, Spool, atomic};
use std::path::Path;

fn messages(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(b".") && entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Copies the inbox's pending and in-flight messages into `dest`; returns how many.
pub fn capture(spool: &Spool, id: &AgentId, dest: &Path) -> Result<u32> {
    let inbox = spool.inbox_dir(id);
    let mut n = 0;
    for sub in ["new", "cur"] {
        let dir = inbox.join(sub);
        for name in messages(&dir)? {
            if n == 0 {
                atomic::create_dir(dest)?;
            }
            let from = dir.join(&name);
            match std::fs::copy(&from, dest.join(&name)) {
                Ok(_) => n += 1,
                // Acknowledged while we copied: it is no longer pending.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("copy message", &from, e)),
            }
        }
    }
    Ok(n)
}

/// Puts the checkpoint's messages in `src` back as pending, and makes in-flight ones pending.
pub fn restore(spool: &Spool, id: &AgentId, src: &Path) -> Result<()> {
    let inbox = spool.inbox_dir(id);
    let saved = messages(src)?;
    let (tmp, new, cur) = (inbox.join("tmp"), inbox.join("new"), inbox.join("cur"));
    if saved.is_empty() && !cur.is_dir() {
        return Ok(());
    }
    for d in [&tmp, &new, &cur] {
        atomic::create_dir(d)?;
    }
    for name in &saved {
        let target = new.join(name);
        if target.exists() {
            continue;
        }
        let claimed = cur.join(name);
        if std::fs::rename(&claimed, &target).is_ok() {
            continue;
        }
        let staged = tmp.join(name);
        let from = src.join(name);
        std::fs::copy(&from, &staged).map_err(|e| Error::io("copy message", &from, e))?;
        std::fs::rename(&staged, &target).map_err(|e| Error::io("deliver message", &target, e))?;
    }
    // The agent is stopped: whatever it had claimed is pending again.
    for name in messages(&cur)? {
        let target = new.join(&name);
        std::fs::rename(cur.join(&name), &target).map_err(|e| Error::io("requeue message", &target, e))?;
    }
    atomic::sync_dir(&new)?;
    Ok(())
}
