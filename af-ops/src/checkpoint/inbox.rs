//! An agent's messages in a checkpoint: the files of its inbox's `new/` (pending) and `cur/` (in
//! flight), copied as they are. A rollback makes every one of them pending again, delivered
//! through the queue; messages that arrived since the checkpoint are kept, pending, since other
//! agents sent them and nobody has seen them yet.

use af_spool::message::Message;
use af_spool::queue::{Entry, Queue};
use af_spool::{AgentId, Error, Result, Spool, atomic};
use std::collections::HashSet;
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

/// Puts the checkpoint's messages in `src` back as pending, through the queue: what the agent
/// had claimed is given back first, a message already pending (by id, whatever its attempts) is
/// not delivered twice, and the inbox's listeners are woken.
pub fn restore(spool: &Spool, id: &AgentId, src: &Path) -> Result<()> {
    let saved = messages(src)?;
    let queue = Queue::new(spool.inbox_dir(id));
    if saved.is_empty() && !queue.exists() {
        return Ok(());
    }
    queue.create()?;
    // The agent is stopped: whatever it had claimed is pending again.
    for claim in queue.entries("cur")? {
        queue.release(&claim.name)?;
    }
    let pending: HashSet<String> = queue.entries("new")?.into_iter().map(|e| e.id).collect();
    for name in &saved {
        let Some(entry) = Entry::parse(&name.to_string_lossy()) else { continue };
        if pending.contains(&entry.id) {
            continue;
        }
        let from = src.join(name);
        let bytes = std::fs::read(&from).map_err(|e| Error::io("read", &from, e))?;
        let message: Message =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { path: from.clone(), detail: e.to_string() })?;
        queue.deliver_file(&message, &bytes)?;
    }
    queue.sync()?;
    queue.notify("restored");
    Ok(())
}
