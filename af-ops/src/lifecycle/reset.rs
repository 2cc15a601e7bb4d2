//! Resetting an agent: forget its failures, so that af-health's recovery ladder (which gave up and
//! marked it failed) acts on it again from the first rung.

use super::Lifecycle;
use af_spool::record::{AgentState, Event, Status};
use af_spool::{AgentId, Result, eventlog};

/// Clears the agent's failure counts and ladder; returns its state after.
pub fn reset(ctx: &Lifecycle, id: &AgentId) -> Result<AgentState> {
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
    Ok(state)
}
