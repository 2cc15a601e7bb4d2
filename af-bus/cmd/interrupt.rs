//! `interrupt`: asks a claude-code agent's af-wrap, through its control pipe, to interrupt the
//! running turn; the turn's task is answered with the error `interrupted`.

use super::{Ctx, say};
use af_spool::control::{self, Request};
use af_spool::{AgentId, Error, ExitCode};
use std::time::Duration;

/// `interrupt`: exit 0 when a turn was interrupted, 1 when none was running, 3 for an unknown
/// agent, 4 when no af-wrap runs it, 5 when af-wrap did not answer within `timeout`.
pub fn interrupt(ctx: &Ctx, id: &str, timeout: Duration) -> anyhow::Result<ExitCode> {
    let agent = AgentId::new(id)?;
    ctx.spool.require(&agent)?;
    let reply = control::ask(&ctx.spool, &agent, Request::Interrupt, timeout)?;
    if ctx.json {
        say(&af_cli::json_text(&reply)?)?;
    }
    if reply.ok {
        if !ctx.json {
            say(&format!("interrupted the running turn of {agent}"))?;
        }
        return Ok(ExitCode::Ok);
    }
    let why = reply.error.unwrap_or_else(|| "refused".into());
    if why.starts_with("only claude-code") {
        return Err(Error::Conflict(format!("agent '{agent}': {why}")).into());
    }
    eprintln!("af-bus: agent '{agent}': {why}");
    Ok(ExitCode::Negative)
}
