//! af-health's command line.

use clap::{Args, Parser, Subcommand};

/// Check AgentFlow agents, climb the recovery ladder, raise alerts, keep history and trends.
#[derive(Parser)]
#[command(
    name = "af-health",
    version,
    about = "Agent health: checks, the recovery ladder, alerts, history and trends",
    long_about = "Agent health: checks, the recovery ladder, alerts, history and trends.\n\n\
Checks per running agent: process (af-wrap and the agent process alive; a zombie counts as dead), \
tmux (session and its `main' window), heartbeat (fresh), response (a ping through the control pipe, \
answered by af-wrap, timed), memory (RSS of the process tree against resourceLimits.memory) and cpu \
(against resourceLimits.cpu; warning at 80 %, critical above 100 %), timeout (an agent with a taskId \
running longer than resourceLimits.timeout).\n\n\
The recovery ladder (check --recover, and watch): a failed agent is started again after a delay that \
starts at 1 s and doubles up to 60 s, while it failed fewer than 3 times in a row; at the 3rd failure \
it is rolled back to its last checkpoint (af-checkpoint) and started; after that, or after more than \
10 restarts in 15 minutes, or on an exit code listed in the config's permanentExitCodes, it is marked \
failed and left alone until a person runs `af-spawn start' or `af-spawn reset'. 30 s healthy resets \
the count. A worker that exits 0 is done, not failed. The ladder's state lives in the spool \
(agents/<id>/health.json), so killing af-health at any moment loses nothing.\n\n\
Rules ($AF_HOME/rules.json, see af-spool(5) and docs/observability.md) set thresholds per project, \
agent type or agent: memory and cpu levels, heartbeat and ping limits, restart-rate limits, the \
ladder's limits, and the checks cost (per hour), silence (no output while busy) and dead-letters; \
`af-health rules check' validates the file, and a pass refuses one that does not validate. Without \
configuration, anomaly checks (anomaly.<figure>) warn when an agent's restart rate, cost rate, output \
rate, memory growth or task duration leaves the band learned from its own history.\n\n\
Alerts (warning, critical, recovery): one open alert per agent and check; a warning that persists \
becomes critical; recovery closes it. Each is appended to alerts.log, published on the bus topic \
health.<agent> (and agent.unhealthy / agent.recovered), and piped as JSON to every executable in \
$AF_HOME/alert.d/ and $AF_HOME/alert.d/<level>/.",
    after_help = af_spool::ExitCode::TABLE
)]
pub struct Cli {
    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Subcommand)]
pub enum Command {
    /// One check pass (for cron and systemd timers); exit 1 when any agent is degraded or
    /// unhealthy, 111 when there were agents and none could be checked (a read-only spool).
    Check {
        /// Only these agents (default: every agent).
        ids: Vec<String>,
        /// Only this project's agents.
        #[arg(long, short)]
        project: Option<String>,
        /// Climb the recovery ladder for failed agents (restart, rollback, mark failed).
        #[arg(long)]
        recover: bool,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Check and recover in a loop, also woken at once by every event in the spool (agent exits).
    Watch {
        /// Seconds between passes.
        #[arg(long, default_value_t = 30.0, value_name = "SECS")]
        interval: f64,
        /// Only this project's agents.
        #[arg(long, short)]
        project: Option<String>,
        /// Stop after this many passes (default: never).
        #[arg(long, value_name = "N")]
        passes: Option<u64>,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// An agent's check history, oldest first.
    History {
        /// The agent.
        id: String,
        /// Only entries newer than this: a duration ago ("10m") or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many entries (the newest).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The open alerts (with --all, every alert in the log).
    Alerts {
        /// Every alert raised, escalated, recovered or acknowledged, oldest first.
        #[arg(long)]
        all: bool,
    },
    /// Acknowledge an open alert.
    Ack {
        /// The alert's id (see af-health alerts); ALERT@HOST acknowledges an alert of another host,
        /// through the bridges.
        alert_id: String,
    },
    /// The spool's figures in the Prometheus text format: agents by status, health and type, each
    /// agent's memory, CPU, heartbeat age, restarts and spending, queue depths, open alerts. With
    /// --output, written to a file atomically (for node_exporter's textfile collector).
    Metrics {
        /// Write them to this file (replaced atomically), not to stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Alert rules ($AF_HOME/rules.json): thresholds per project, agent type or agent.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Min, median and max of RSS, CPU and response time, and failure counts, over a window.
    Trends {
        /// Only this agent (default: every agent).
        id: Option<String>,
        /// The window: a duration back from now.
        #[arg(long, default_value = "1h", value_name = "DURATION")]
        window: String,
    },
}

/// What `af-health rules` does.
#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate a rules file (default: $AF_HOME/rules.json): exit 0 with a summary, or exit 2
    /// naming the bad field by its path (e.g. agents.w1.memory.warning); with --json, stdout says
    /// {"ok": false, "path", "message"} too.
    Check {
        /// The file (default: the spool's rules.json).
        file: Option<std::path::PathBuf>,
    },
}

/// Thresholds and the recovery policy (flags or environment).
#[derive(Args, Clone, Debug)]
pub struct Tuning {
    /// A heartbeat older than this is critical (half of it warns).
    #[arg(long, env = "AF_HEALTH_STALE", default_value = "10s", value_name = "DURATION")]
    pub stale: String,
    /// How long to wait for a ping's answer.
    #[arg(long, env = "AF_HEALTH_PING_TIMEOUT", default_value = "1s", value_name = "DURATION")]
    pub ping_timeout: String,
    /// An open warning still failing after this long becomes critical.
    #[arg(long, env = "AF_HEALTH_ESCALATE", default_value = "5m", value_name = "DURATION")]
    pub escalate_after: String,
    /// How long an agent must have run before its alerts recover.
    #[arg(long, env = "AF_HEALTH_SETTLE", default_value = "2s", value_name = "DURATION")]
    pub settle: String,
    /// The ladder's first delay before a restart (doubles each time).
    #[arg(long, env = "AF_HEALTH_BACKOFF", default_value = "1s", value_name = "DURATION")]
    pub backoff: String,
    /// The ladder's longest delay.
    #[arg(long, env = "AF_HEALTH_BACKOFF_MAX", default_value = "60s", value_name = "DURATION")]
    pub backoff_max: String,
    /// Healthy this long resets the failure count and the delay.
    #[arg(long, env = "AF_HEALTH_RESET_AFTER", default_value = "30s", value_name = "DURATION")]
    pub reset_after: String,
    /// Consecutive failures before rollback (restarts happen below it; failed above it).
    #[arg(long, env = "AF_HEALTH_MAX_FAILURES", default_value_t = 3, value_name = "N")]
    pub max_failures: u32,
    /// More restarts than this within --rate-window mark the agent failed.
    #[arg(long, env = "AF_HEALTH_MAX_RESTARTS", default_value_t = 10, value_name = "N")]
    pub max_restarts: usize,
    /// Skip the response check (no ping through the control pipe).
    #[arg(long, env = "AF_HEALTH_NO_PING")]
    pub no_ping: bool,
    /// The window of --max-restarts.
    #[arg(long, env = "AF_HEALTH_RATE_WINDOW", default_value = "15m", value_name = "DURATION")]
    pub rate_window: String,
}
