//! `af-spawn stop`, `pause` and `resume`: the lifecycle operations, then one line (or JSON) each.

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::{AgentId, ExitCode};
use std::time::Duration;

pub fn run(ctx: &Ctx, ids: &[String], force: bool, grace: Duration) -> anyhow::Result<ExitCode> {
    let ids: Vec<AgentId> = ids.iter().map(|s| super::agent_id(s)).collect::<Result<_, _>>()?;
    let mut shown = Vec::new();
    let mut progress = af_cli::progress::Progress::new("stopping", ids.len());
    for id in &ids {
        let obs = lifecycle::stop(ctx, id, force, grace)?;
        shown.push(lifecycle::stopped_report(id, &obs));
        progress.step();
    }
    drop(progress);
    if ctx.json {
        print_json(&serde_json::Value::Array(shown))?;
    } else {
        for s in shown {
            print_line(&format!("{} {}", s["id"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))?;
        }
    }
    Ok(ExitCode::Ok)
}

/// Pauses (`pause` true) or resumes an agent.
pub fn pause(ctx: &Ctx, id: &AgentId, pause: bool) -> anyhow::Result<ExitCode> {
    let status = lifecycle::pause(ctx, id, pause)?;
    if ctx.json {
        print_json(&serde_json::json!({"id": id, "status": status}))?;
    } else {
        print_line(&format!("{id} {}", status.as_str()))?;
    }
    Ok(ExitCode::Ok)
}
