//! af-spawn's verbs, one module each, and what they share: the spool, the tmux server, waiting for
//! an agent's state to change, and cleaning up after a dead supervisor.

mod attach;
mod create;
mod gc;
mod logs;
mod ls;
mod reset;
mod rm;
mod script;
mod show;
mod start;
mod stop;
mod top;

use crate::cli::{Cli, Command};
use af_spool::fifodir::Listener;
use af_spool::record::Status;
use af_spool::tmux::Tmux;
use af_spool::{AgentId, Error, ExitCode, Observed, Spool, procfs};
use std::time::{Duration, Instant};

/// What every verb works with.
pub struct Ctx {
    /// The spool.
    pub spool: Spool,
    /// The tmux server.
    pub tmux: Tmux,
    /// Whether to print JSON.
    pub json: bool,
}

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // SIGINT or SIGTERM during a wait (start, stop, restart, logs -f, top) ends it with exit 130 and one line.
    af_spool::fifodir::interrupt_waits()?;
    let ctx = Ctx { spool: Spool::open_default()?, tmux: Tmux::from_env(), json: cli.json };
    match cli.command {
        Command::Create { config, start, worktree } => create::run(&ctx, &config, start, worktree),
        Command::Start { ids, no_wait, timeout } => start::run(&ctx, &ids, !no_wait, seconds(timeout)?),
        Command::Stop { ids, force, timeout } => stop::run(&ctx, &ids, force, seconds(timeout)?),
        Command::Pause { id } => stop::pause(&ctx, &agent_id(&id)?, true),
        Command::Resume { id } => stop::pause(&ctx, &agent_id(&id)?, false),
        Command::Restart { id, timeout } => start::restart(&ctx, &agent_id(&id)?, seconds(timeout)?),
        Command::Rm { ids, force } => rm::run(&ctx, &ids, force),
        Command::Reset { id } => reset::run(&ctx, &agent_id(&id)?),
        Command::Ls { project, summary } => ls::run(&ctx, project.as_deref(), summary),
        Command::Show { id } => show::run(&ctx, &agent_id(&id)?),
        Command::Attach { id } => attach::run(&ctx, &agent_id(&id)?),
        Command::Logs { id, follow, lines, supervisor } => logs::run(&ctx, &agent_id(&id)?, follow, lines, supervisor),
        Command::Gc => gc::run(&ctx),
        Command::Script { id } => script::run(&ctx, &agent_id(&id)?),
        Command::Top { id, once, interval } => top::run(&ctx, &agent_id(&id)?, once, seconds(interval)?),
    }
}

/// Validates an agent id from the command line.
pub fn agent_id(s: &str) -> anyhow::Result<AgentId> {
    Ok(AgentId::new(s)?)
}

/// Validates a number of seconds from the command line.
pub fn seconds(s: f64) -> anyhow::Result<Duration> {
    if !s.is_finite() || !(0.0..=1e9).contains(&s) {
        return Err(Error::Invalid(format!("{s} is not a number of seconds")).into());
    }
    Ok(Duration::from_secs_f64(s))
}

pub use af_spool::cli::{print_json, print_line};

/// Waits until `done` holds for the agent, woken by its fifodir (and rescanning every 100 ms,
/// since the spool, not the pipe, is the truth).
pub fn wait_until(
    ctx: &Ctx,
    id: &AgentId,
    listener: &mut Listener,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Observed) -> bool,
) -> anyhow::Result<Observed> {
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
            ))
            .into());
        }
        listener.wait(left.min(Duration::from_millis(100)))?;
    }
}

/// Cleans up after an agent whose supervisor is gone: kills the processes that still carry its
/// identity (AF_AGENT_ID and AF_HOME in their environment), removes its cgroups and kills its tmux
/// session if it is ours. Returns how many processes were killed.
pub fn reap_orphans(ctx: &Ctx, id: &AgentId, obs: &Observed) -> usize {
    let me = std::process::id();
    let agent = format!("AF_AGENT_ID={id}");
    let home = format!("AF_HOME={}", ctx.spool.root().display());
    let mut killed = 0;
    for p in procfs::all() {
        if p.pid != me && p.state != 'Z' && procfs::environ_has(p.pid, &agent) && procfs::environ_has(p.pid, &home) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), nix::sys::signal::Signal::SIGKILL);
            killed += 1;
        }
    }
    procfs::remove_cgroups(&obs.state.limits.cgroups);
    kill_our_session(ctx, id);
    killed
}

/// Kills the agent's tmux session if it exists and belongs to this spool.
pub fn kill_our_session(ctx: &Ctx, id: &AgentId) -> bool {
    let name = id.session();
    let ours = ctx
        .tmux
        .sessions()
        .unwrap_or_default()
        .into_iter()
        .any(|s| s.name == name && s.af_home.as_deref() == Some(&*ctx.spool.root().display().to_string()));
    ours && ctx.tmux.kill_session(&name).is_ok()
}

/// Whether a status means the agent is running (or on its way in or out).
pub fn is_live(status: Status) -> bool {
    status.is_live()
}
