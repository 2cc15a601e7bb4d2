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
    if inside(server.socket()) {
        cmd.args(["switch-client", "-t", &tmux::exact(&name)]);
    } else {
        // From a pane of another server, a client of the agent's server runs in that pane.
        cmd.env_remove("TMUX").args(["attach-session", "-t", &tmux::exact(&name)]);
    }
    let err = cmd.stdin(std::process::Stdio::inherit()).exec();
    Err(Error::System(format!("cannot run tmux: {err}")).into())
}

/// Whether we run inside tmux on the server `socket` (None: the default server, which a tmux
/// command run in a pane takes to be the pane's own).
fn inside(socket: Option<&str>) -> bool {
    let Some(tmux_var) = std::env::var_os("TMUX") else { return false };
    let Some(socket) = socket else { return true };
    let tmux_var = tmux_var.to_string_lossy();
    let path = tmux_var.split(',').next().unwrap_or_default();
    std::path::Path::new(path) == tmux::socket_path(socket)
}
