//! `af-spawn attach`: into the agent's tmux session (switching client when already inside tmux).

use super::Ctx;
use af_ops::tmux;
use af_spool::{AgentId, Error, ExitCode};
use std::os::unix::process::CommandExt;

pub fn run(ctx: &Ctx, id: &AgentId) -> anyhow::Result<ExitCode> {
    ctx.spool.require(id)?;
    let name = id.session();
    if !ctx.tmux.has_session(&name) {
        return Err(
            Error::Conflict(format!("agent '{id}' has no tmux session (is it running? af-spawn start {id})")).into()
        );
    }
    let inside = std::env::var_os("TMUX").is_some() && ctx.tmux.socket().is_none();
    let verb = if inside { "switch-client" } else { "attach-session" };
    let err = ctx.tmux.command().args([verb, "-t", &tmux::exact(&name)]).stdin(std::process::Stdio::inherit()).exec();
    Err(Error::System(format!("cannot run tmux: {err}")).into())
}
