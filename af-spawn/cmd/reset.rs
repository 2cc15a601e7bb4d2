//! `af-spawn reset`: forget an agent's failures, so that af-health's recovery ladder acts on it
//! again from the first rung.

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::{AgentId, ExitCode};

pub fn run(ctx: &Ctx, id: &AgentId) -> anyhow::Result<ExitCode> {
    let state = lifecycle::reset(ctx, id)?;
    if ctx.json {
        print_json(&serde_json::json!({"id": id, "status": state.status, "consecutiveFailures": 0}))?;
    } else {
        print_line(&format!("{id} reset ({})", state.status.as_str()))?;
    }
    Ok(ExitCode::Ok)
}
