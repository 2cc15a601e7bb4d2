//! Checkpoints of an agent: its config, state, pending messages, conversation and working tree
//! (a git tree under a private ref, or an archive outside git); listed, removed and pruned.
//! Rolling back to one is above both this and the lifecycle (`crate::rollback`).

pub mod archive;
mod create;
pub mod gittree;
pub mod inbox;
pub mod store;

pub use create::{create, take};

use af_spool::checkpoint::{Checkpoint, CheckpointId, TreeSnapshot};
use af_spool::{AgentId, Error, Result, Spool};

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

/// What changed in the agent's working tree since checkpoint `ckpt`: (status letter, tab, path)
/// lines (A added, D deleted, M modified), or with `patch` the unified diff.
pub fn diff(spool: &Spool, id: &AgentId, ckpt: &str, patch: bool) -> Result<String> {
    let c = store::find(spool, id, ckpt)?;
    match &c.tree {
        Some(TreeSnapshot::Git { repo, tree, .. }) => {
            let repo = gittree::Repo::at(repo)?.with_cache(spool.index_cache_path(id, repo)).excluding(spool.root());
            repo.diff(&store::scratch(spool, id, "diff-index"), tree, patch)
        }
        Some(TreeSnapshot::Archive { file, .. }) => {
            let dir = c.workdir.as_deref().ok_or_else(|| Error::Invalid("the checkpoint names no workdir".into()))?;
            let archive = spool.checkpoint_dir(id, &c.id).join(file);
            archive::diff(dir, &archive, &store::scratch(spool, id, "diff"), spool.root(), patch)
        }
        None => Err(Error::NotFound(format!("checkpoint '{}' holds no working tree", c.id))),
    }
}

/// The agent's checkpoints, oldest first.
pub fn list(spool: &Spool, id: &AgentId) -> Result<Vec<Checkpoint>> {
    spool.require(id)?;
    spool.checkpoints(id)
}
