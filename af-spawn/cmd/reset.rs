//! `af-spawn reset`: forget an agent's failures, so that af-health's recovery ladder (which gave
//! up and marked it failed) acts on it again from the first rung.

use super::{Ctx, print_json, print_line};
use af_spool::record::{Event, Status};
use af_spool::{AgentId, ExitCode, eventlog};

pub fn run(ctx: &Ctx, id: &AgentId) -> anyhow::Result<ExitCode> {
    let spool = &ctx.spool;
    spool.require(id)?;
    let state = spool.update_state(id, |s| {
        s.consecutive_failures = 0;
        if s.status == Status::Failed {
            s.reason = Some("reset by request: af-health will start it again".into());
        }
    })?;
    spool.clear_ladder(id)?;
    eventlog::record(spool, Event::new("agent.reset", Some(id), serde_json::Value::Null));
    if ctx.json {
        print_json(&serde_json::json!({"id": id, "status": state.status, "consecutiveFailures": 0}))?;
    } else {
        print_line(&format!("{id} reset ({})", state.status.as_str()))?;
    }
    Ok(ExitCode::Ok)
}
