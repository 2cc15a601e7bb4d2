//! `af-checkpoint diff`: what changed in the agent's working tree since a checkpoint.

use super::{print_json, print_line};
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, ckpt: &str, patch: bool, json: bool) -> anyhow::Result<ExitCode> {
    let text = af_ops::checkpoint::diff(spool, id, ckpt, patch && !json)?;
    if json {
        let rows: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, p)| serde_json::json!({"status": s, "path": p}))
            .collect();
        print_json(&serde_json::Value::Array(rows))?;
    } else if !text.is_empty() {
        print_line(&text)?;
    }
    Ok(ExitCode::Ok)
}
