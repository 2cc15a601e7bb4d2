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

/// The descriptor of the checkpoint lock this process holds (-1: none), which git and tar inherit.
pub static LOCK_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Takes the agent's checkpoint lock and clears what interrupted runs left behind.
pub fn lock(spool: &Spool, id: &AgentId) -> Result<Lock> {
    spool.require(id)?;
    let lock = Lock::exclusive(&spool.checkpoints_lock_path(id))?;
    // git and tar hold the lock with us (see gittree::output_as_user): killed with us, they may
    // outlive us by a moment, and the next run must not clean up before they are gone (or a late
    // ref would survive).
    LOCK_FD.store(lock.raw_fd(), std::sync::atomic::Ordering::Relaxed);
    clean(spool, id);
    Ok(lock)
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
