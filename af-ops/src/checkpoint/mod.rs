//! Checkpoints of an agent: its config, state, pending messages, conversation and working tree
//! (a git tree under a private ref, or an archive outside git); listed, removed and pruned.
//! Rolling back to one is above both this and the lifecycle (`crate::rollback`).

pub mod archive;
mod create;
pub mod gittree;
pub mod inbox;
pub mod store;

pub use create::{create, take};

use af_spool::checkpoint::{Checkpoint, CheckpointId};
use af_spool::{AgentId, Result, Spool};

/// Removes one checkpoint (its files and its git ref) and announces it.
pub fn remove(spool: &Spool, id: &AgentId, ckpt: &str) -> Result<CheckpointId> {
    let _lock = store::lock(spool, id)?;
    let c = store::find(spool, id, ckpt)?;
    store::remove(spool, id, &c)?;
    store::announce(spool, "checkpoint.removed", id, serde_json::json!({"checkpoint": c.id}));
    Ok(c.id)
}

/// Removes all but the newest `keep` checkpoints; returns the ids removed.
pub fn prune(spool: &Spool, id: &AgentId, keep: usize) -> Result<Vec<CheckpointId>> {
    let _lock = store::lock(spool, id)?;
    let all = spool.checkpoints(id)?;
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for c in &all[..excess] {
        store::remove(spool, id, c)?;
        removed.push(c.id.clone());
    }
    if !removed.is_empty() {
        store::announce(spool, "checkpoint.pruned", id, serde_json::json!({"removed": removed, "kept": keep}));
    }
    Ok(removed)
}

/// The agent's checkpoints, oldest first.
pub fn list(spool: &Spool, id: &AgentId) -> Result<Vec<Checkpoint>> {
    spool.require(id)?;
    spool.checkpoints(id)
}
