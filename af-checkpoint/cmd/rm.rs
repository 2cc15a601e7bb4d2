//! `af-checkpoint rm` and `prune`.

use super::{print_json, print_line};
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, ckpt: &str, json: bool) -> anyhow::Result<ExitCode> {
    let removed = af_ops::checkpoint::remove(spool, id, ckpt)?;
    if json {
        print_json(&serde_json::json!([removed]))?
    } else {
        print_line(&format!("{removed} removed"))?
    }
    Ok(ExitCode::Ok)
}

pub fn prune(spool: &Spool, id: &AgentId, keep: usize, json: bool) -> anyhow::Result<ExitCode> {
    let removed = af_ops::checkpoint::prune(spool, id, keep)?;
    if json {
        print_json(&serde_json::json!(removed))?;
    } else {
        for r in &removed {
            print_line(&format!("{r} removed"))?;
        }
    }
    Ok(ExitCode::Ok)
}
