//! An agent's checkpoint directory as af-checkpoint changes it: under its lock, with leftovers of
//! interrupted runs (hidden directories and the git refs they had made) removed first.

use super::gittree;
use af_spool::checkpoint::{Checkpoint, CheckpointId, TreeSnapshot};
use af_spool::lock::Lock;
use af_spool::message::{Kind, Message, Priority};
use af_spool::record::Event;
use af_spool::{AgentId, Error, Result, Spool, atomic, eventlog};
use std::path::{Path, PathBuf};

/// The file, inside a checkpoint being built or removed, naming the git ref it made: a leftover
/// of a killed run is found by it and its ref deleted.
pub const PENDING_REF: &str = "ref.pending";

thread_local! {
    /// The descriptor of the checkpoint lock this thread holds (-1: none), which the git and tar
    /// it starts inherit. Per thread, and forgotten when the lock is released: af-api lives on
    /// after a checkpoint, and runs several at once.
    static LOCK_FD: std::cell::Cell<i32> = const { std::cell::Cell::new(-1) };
}

/// The descriptor of the checkpoint lock this thread holds, if any.
pub fn lock_fd() -> Option<i32> {
    Some(LOCK_FD.with(std::cell::Cell::get)).filter(|fd| *fd >= 0)
}

/// An agent's checkpoint lock, held until dropped.
pub struct Held {
    lock: Lock,
}

impl Drop for Held {
    fn drop(&mut self) {
        let fd = self.lock.raw_fd();
        LOCK_FD.with(|c| {
            if c.get() == fd {
                c.set(-1);
            }
        });
    }
}

/// Takes the agent's checkpoint lock and clears what interrupted runs left behind.
pub fn lock(spool: &Spool, id: &AgentId) -> Result<Held> {
    spool.require(id)?;
    let lock = hold(Lock::exclusive(&spool.checkpoints_lock_path(id))?);
    clean(spool, id);
    Ok(lock)
}

/// Names the lock as the one git and tar inherit (see gittree::output_as_user): killed with us,
/// they may outlive us by a moment, and the next run must not clean up before they are gone (or
/// a late ref would survive).
fn hold(lock: Lock) -> Held {
    LOCK_FD.with(|c| c.set(lock.raw_fd()));
    Held { lock }
}

/// Removes hidden leftovers (half-built or half-removed checkpoints, scratch files), deleting the
/// git refs they name. Only called under the lock, so nothing hidden is in use.
fn clean(spool: &Spool, id: &AgentId) {
    let dir = spool.checkpoints_dir(id);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            if let Ok(text) = std::fs::read_to_string(path.join(PENDING_REF)) {
                if let Some((top, reference)) = text.split_once('\n') {
                    gittree::forget_ref(Path::new(top), reference.trim_end());
                }
            }
            let _ = std::fs::remove_dir_all(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A fresh hidden directory (or file name) in the agent's checkpoint directory.
pub fn scratch(spool: &Spool, id: &AgentId, prefix: &str) -> PathBuf {
    spool.checkpoints_dir(id).join(atomic::unique_name(prefix))
}

/// Looks up a checkpoint named on the command line.
pub fn find(spool: &Spool, id: &AgentId, ckpt: &str) -> Result<Checkpoint> {
    spool.require(id)?;
    let ckpt = CheckpointId::new(ckpt)?;
    spool.read_checkpoint(id, &ckpt)
}

/// Removes one checkpoint: renamed out of sight (so it is no longer listed), its ref deleted, its
/// files deleted. Call under the lock.
pub fn remove(spool: &Spool, id: &AgentId, ckpt: &Checkpoint) -> Result<()> {
    let dir = spool.checkpoint_dir(id, &ckpt.id);
    let trash = scratch(spool, id, "trash");
    std::fs::rename(&dir, &trash).map_err(|e| Error::io("move aside", &dir, e))?;
    atomic::sync_dir(&spool.checkpoints_dir(id))?;
    if let Some(TreeSnapshot::Git { repo, reference, .. }) = &ckpt.tree {
        gittree::forget_ref(repo, reference);
    }
    std::fs::remove_dir_all(&trash).map_err(|e| Error::io("delete", &trash, e))?;
    Ok(())
}

/// Records an event in the spool's log and publishes it on the bus topic `checkpoints` (best
/// effort: the log is the record).
pub fn announce(spool: &Spool, kind: &str, id: &AgentId, detail: serde_json::Value) {
    let event = Event::new(kind, Some(id), detail);
    let mut m =
        Message::new("af-checkpoint", Kind::Event, Priority::Normal, serde_json::to_value(&event).unwrap_or_default());
    m.topic = Some("checkpoints".into());
    eventlog::record(spool, event);
    if let Err(e) = crate::bus::post(spool, m, &crate::bus::Target::Topic, true) {
        tracing::info!("checkpoint event not published on the bus ({e}); it is in the log only");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_started_after_the_lock_is_released_start() {
        // af-api lives on after a checkpoint: its later git and tar must not be handed the
        // descriptor of a lock long closed (EBADF, or another file that took its number).
        let dir = std::env::temp_dir().join(atomic::unique_name("store-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let held = hold(Lock::exclusive(&dir.join("lock")).unwrap());
        let out = gittree::output_as_user(&mut std::process::Command::new("true")).unwrap();
        assert!(out.status.success());
        let number = held.lock.raw_fd();
        drop(held);
        // Another file takes the lock's old number; the next child must not inherit it.
        let occupant = std::fs::File::open(&dir).unwrap();
        use std::os::fd::AsRawFd;
        nix::unistd::dup2(occupant.as_raw_fd(), number).unwrap();
        nix::fcntl::fcntl(number, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
        {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", &format!("test ! -e /proc/$$/fd/{number}")]);
            let out = gittree::output_as_user(&mut c).unwrap();
            assert!(out.status.success(), "a child started after the lock was released inherits {number}");
        }
        let _ = nix::unistd::close(number);
        let out = gittree::output_as_user(&mut std::process::Command::new("true"));
        assert!(out.is_ok_and(|o| o.status.success()), "a child after the lock was released");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
