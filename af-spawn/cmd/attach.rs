//! `af-spawn attach`: into the agent's tmux session, on the tmux server it was started on
//! (switching client when already inside tmux on that server; a client of its own otherwise).

use super::Ctx;
use af_ops::tmux;
use af_spool::{AgentId, Error, ExitCode};
use std::os::unix::process::CommandExt;

pub fn run(ctx: &Ctx, id: &AgentId) -> anyhow::Result<ExitCode> {
    ctx.spool.require(id)?;
    let name = id.session();
    let server = ctx.server_of(id);
    if !server.has_session(&name) {
        return Err(
            Error::Conflict(format!("agent '{id}' has no tmux session (is it running? af-spawn start {id})")).into()
        );
    }
    let mut cmd = server.command();
    match std::env::var_os("TMUX").filter(|v| inside(v, server.name())) {
        // tmux finds the client to switch through the variable.
        Some(var) => cmd.env("TMUX", var).args(["switch-client", "-t", &tmux::exact(&name)]),
        // Outside tmux, or in a pane of another server: a client of the agent's server (nested).
        None => cmd.args(["attach-session", "-t", &tmux::exact(&name)]),
    };
    let err = cmd.stdin(std::process::Stdio::inherit()).exec();
    Err(Error::System(format!("cannot run tmux: {err}")).into())
}

/// Whether `TMUX` (`SOCKET_PATH,PID,SESSION`, set in a tmux pane) names the server `name`.
fn inside(tmux_var: &std::ffi::OsStr, name: &str) -> bool {
    let tmux_var = tmux_var.to_string_lossy();
    let path = tmux_var.split(',').next().unwrap_or_default();
    std::path::Path::new(path) == tmux::socket_path(name)
}
