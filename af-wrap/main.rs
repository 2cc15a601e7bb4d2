//! af-wrap: the supervisor inside an agent's tmux window. It runs the agent's process in its own
//! process group under the config's environment and resource limits, forwards signals, writes
//! heartbeats, answers the control pipe (ping, stop, pause, resume) and leaves a final state.

mod cadence;
mod claude;
mod codex;
mod driver;
mod hold;
mod hook;
mod limits;
mod secrets;
mod setup;
mod supervise;
mod tasks;
mod tree;

use af_cli as cli;
use af_spool::{AgentId, ExitCode, Spool, human};
use clap::Parser;

/// Supervise one AgentFlow agent (normally started by `af-spawn start` inside the agent's tmux
/// session).
#[derive(Parser)]
#[command(
    name = "af-wrap",
    version,
    about = "Supervise one AgentFlow agent inside its tmux window",
    long_about = "Supervise one AgentFlow agent inside its tmux window.\n\n\
af-wrap runs the agent's process (the config's `command`; `claude` for claude-code agents, `codex exec` per task for \
codex agents) in its own \
process group, with the config's environment and resource limits (a cgroup where one is writable, \
else RLIMIT_AS and CPU affinity). It writes a heartbeat every few seconds while the agent is busy \
or watched and ever more rarely while it idles, answers requests on the agent's control pipe \
(ping, stop, pause, resume), stops the whole group on SIGTERM, SIGINT or SIGHUP (SIGKILL after the \
grace period, so nothing survives), and records the exit code or signal in the agent's state. Only one af-wrap runs per agent (it holds the agent's wrap.lock).",
    after_help = ExitCode::TABLE
)]
struct Cli {
    /// The agent to supervise.
    id: String,
    /// How often to write a heartbeat while the agent is busy or watched.
    #[arg(long, env = "AF_HEARTBEAT_INTERVAL", default_value = "2s", value_name = "DURATION")]
    heartbeat: String,
    /// The longest interval between heartbeats while the agent idles: it doubles at each idle beat
    /// from --heartbeat up to this, and every beat says when the next is due.
    #[arg(long, env = "AF_HEARTBEAT_IDLE_MAX", default_value = "30s", value_name = "DURATION")]
    heartbeat_idle_max: String,
    /// Handle one Claude Code hook event for the agent (JSON on stdin) instead of supervising: the
    /// settings file af-wrap gives a claude-code agent's CLI runs this. Plumbing, so hidden.
    #[arg(long, hide = true)]
    hook: bool,
}

fn main() -> std::process::ExitCode {
    cli::main::<Cli>(cli::Logs::Own, |cli| {
        if cli.hook {
            return hook::run(&cli.id);
        }
        // First: the starter holds the pipe only until this supervisor reports in.
        secrets::take_handed();
        let id = AgentId::new(&cli.id)?;
        let interval = human::parse_duration(&cli.heartbeat)?.max(std::time::Duration::from_millis(50));
        let idle_max = human::parse_duration(&cli.heartbeat_idle_max)?;
        let spool = Spool::open_default()?;
        spool.require(&id)?;
        cli::init_logging(Some(&spool.wrap_log_path(&id)));
        supervise::run(&spool, &id, cadence::Cadence::new(interval, idle_max))
    })
}
