//! `af-checkpoint rm` and `prune`.

use super::{print_json, print_line};
use crate::store;
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, ckpt: &str, json: bool) -> anyhow::Result<ExitCode> {
    let _lock = store::lock(spool, id)?;
    let c = store::find(spool, id, ckpt)?;
    store::remove(spool, id, &c)?;
    store::announce(spool, "checkpoint.removed", id, serde_json::json!({"checkpoint": c.id}));
    if json {
        print_json(&serde_json::json!([c.id]))?
    } else {
        print_line(&format!("{} removed", c.id))?
    }
    Ok(ExitCode::Ok)
}

pub fn prune(spool: &Spool, id: &AgentId, keep: usize, json: bool) -> anyhow::Result<ExitCode> {
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
    if json {
        print_json(&serde_json::json!(removed))?;
    } else {
        for r in &removed {
            print_line(&format!("{r} removed"))?;
        }
    }
    Ok(ExitCode::Ok)
}
