//! The agent lifecycle: create, start, stop, pause, resume, restart, reset, rm and gc, over the
//! spool and a tmux server. Every state change is made under the agent's lock.

mod create;
mod gc;
pub mod layout;
mod reset;
mod rm;
mod start;
mod stop;
pub mod worktree;

pub use create::{create, create_started, parse_configs};
pub use gc::{GcReport, gc, gc_with};
pub use reset::reset;
pub use rm::rm;
pub use start::{restart, start_each, start_many, start_one};
pub use stop::{pause, stop, stop_one};

use crate::procfs;
use crate::tmux::Tmux;
use af_spool::fifodir::Listener;
use af_spool::{AgentId, Error, Observed, Result, Spool};
use std::time::{Duration, Instant};

/// What the lifecycle works on: a spool and the tmux server new agents go on (the first of its
/// family, see [`crate::shard`]); an agent already started is found on the server its state
/// records ([`Lifecycle::server_of`]).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// The spool.
    pub spool: Spool,
    /// The tmux server (`AF_TMUX_SOCKET`).
    pub tmux: Tmux,
}

impl Lifecycle {
    /// The default spool (`AF_HOME`) and tmux server (`AF_TMUX_SOCKET`).
    pub fn from_env() -> Result<Self> {
        Ok(Lifecycle { spool: Spool::open_default()?, tmux: Tmux::from_env() })
    }

    /// The lifecycle of `spool`'s agents on the tmux server named by `AF_TMUX_SOCKET`.
    pub fn of(spool: Spool) -> Self {
        Lifecycle { spool, tmux: Tmux::from_env() }
    }

    /// The tmux server the agent was started on, as its state records it (this one when the
    /// state cannot be read).
    pub fn server_of(&self, id: &AgentId) -> Tmux {
        match self.spool.read_state(id) {
            Ok(state) => crate::shard::of(&self.tmux, &state),
            Err(_) => self.tmux.clone(),
        }
    }
}

/// How long a graceful stop waits between SIGTERM and SIGKILL unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// How long a start waits for af-wrap to report in unless told otherwise.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// What `start` and `restart` report of one agent (`af-spawn start --json`, and af-api).
pub fn started_report(id: &AgentId, obs: &Observed) -> serde_json::Value {
    serde_json::json!({"id": id, "status": obs.status(), "pid": obs.state.pid, "tmuxSession": obs.state.tmux_session})
}

/// What `stop` reports of one agent (`af-spawn stop --json`, and af-api).
pub fn stopped_report(id: &AgentId, obs: &Observed) -> serde_json::Value {
    serde_json::json!({"id": id, "status": obs.status(), "reason": obs.reason()})
}

/// Waits until `done` holds for the agent, woken by its fifodir (and rescanning every 100 ms,
/// since the spool, not the pipe, is the truth).
pub fn wait_until(
    ctx: &Lifecycle,
    id: &AgentId,
    listener: &mut Listener,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Observed) -> bool,
) -> Result<Observed> {
    let deadline = Instant::now() + timeout;
    loop {
        let obs = ctx.spool.observe(id)?;
        if done(&obs) {
            return Ok(obs);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(format!(
                "agent '{id}' did not {what} within {:.1}s (status {}; see af-spawn show {id})",
                timeout.as_secs_f64(),
                obs.status().as_str()
            )));
        }
        listener.wait(left.min(Duration::from_millis(100)))?;
    }
}

/// Cleans up after an agent whose supervisor is gone: kills the processes that still carry its
/// identity (AF_AGENT_ID and AF_HOME in their environment), removes its cgroups and kills its tmux
/// session if it is ours. Returns how many processes were killed.
pub fn reap_orphans(ctx: &Lifecycle, id: &AgentId, obs: &Observed) -> usize {
    let orphans = orphans(ctx, id);
    for &pid in &orphans {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    procfs::remove_cgroups(&obs.state.limits.cgroups);
    kill_our_session(ctx, id);
    orphans.len()
}

/// The live processes that carry the agent's identity (AF_AGENT_ID and AF_HOME in their
/// environment), this one excepted.
pub fn orphans(ctx: &Lifecycle, id: &AgentId) -> Vec<u32> {
    let me = std::process::id();
    let agent = format!("AF_AGENT_ID={id}");
    let home = format!("AF_HOME={}", ctx.spool.root().display());
    procfs::all()
        .into_iter()
        .filter(|p| {
            p.pid != me && p.state != 'Z' && procfs::environ_has(p.pid, &agent) && procfs::environ_has(p.pid, &home)
        })
        .map(|p| p.pid)
        .collect()
}

/// Kills the agent's tmux session (on the server it was started on) if it exists and belongs to
/// this spool.
pub fn kill_our_session(ctx: &Lifecycle, id: &AgentId) -> bool {
    kill_our_session_on(ctx, &ctx.server_of(id), id)
}

/// Kills the agent's tmux session on `server` if it exists there and belongs to this spool.
pub fn kill_our_session_on(ctx: &Lifecycle, server: &Tmux, id: &AgentId) -> bool {
    let name = id.session();
    let ours = server
        .sessions()
        .unwrap_or_default()
        .into_iter()
        .any(|s| s.name == name && s.af_home.as_deref() == Some(&*ctx.spool.root().display().to_string()));
    ours && server.kill_session(&name).is_ok()
}
