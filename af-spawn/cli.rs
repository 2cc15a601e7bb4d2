//! af-spawn's command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Create, start, stop, pause, resume, restart, remove, list and inspect AgentFlow agents, each in
/// its own tmux session.
#[derive(Parser)]
#[command(
    name = "af-spawn",
    version,
    about = "Agent lifecycle in tmux: create, start, stop, pause, resume, restart, reset, rm, ls, show, logs, attach, gc, script, top",
    long_about = "Agent lifecycle in tmux.\n\n\
Each agent lives in the tmux session agent-<id>: window `main' runs af-wrap (the supervisor), window \
`monitor' shows the agent's processes, CPU and memory. Records live in the spool ($AF_HOME). \
AF_TMUX_SOCKET=NAME makes af-spawn use the private tmux server `tmux -L NAME'. Past \
AF_TMUX_SESSIONS_PER_SERVER sessions on a server (default 400) a start uses the next one, NAME-2, NAME-3, ...; \
every verb finds an agent on the server it was started on (ls shows it).\n\n\
Agent configs are the seed's AgentConfig JSON (camelCase): {\"id\", \"type\": \"claude-code\"|\"codex\"|\"worker\"|\"monitor\", \
\"projectId\", \"taskId\", \"capabilities\", \"maxConcurrentTasks\", \"resourceLimits\": {\"memory\": \"2GB\", \
\"cpu\": \"2\", \"timeout\": ms}, \"environment\": {}} plus AgentFlow's \"workdir\", \"command\" (argv array), \"worktree\" (true: the agent's own git worktree \
on branch af/<id>), \"setup\" (a shell command af-wrap runs once in the workdir before the first start) and \
\"permanentExitCodes\" (exit codes af-health never restarts) and \"tmuxSocket\" (the tmux server of its session, \
e.g. one per project, instead of AF_TMUX_SOCKET's). \
Defaults: projectId \"default\", capabilities [], maxConcurrentTasks 1, no memory or cpu limit, timeout 30 minutes, \
environment {}, workdir the directory create runs in. Unknown fields are refused.",
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
    /// Create agents from AgentConfig JSON: one object, an array, or JSON lines.
    Create {
        /// The config file, or - for standard input (the default).
        #[arg(long, short, value_name = "FILE|-", default_value = "-")]
        config: PathBuf,
        /// Start each agent once created, all or nothing: if any fails to start, every agent
        /// this create made is removed again (its id free, its files gone).
        #[arg(long)]
        start: bool,
        /// With --start, keep agents that fail to start (as `failed', to look at) instead of
        /// removing them.
        #[arg(long, requires = "start")]
        keep_failed: bool,
        /// Give each agent its own git worktree on branch af/<id> (as the config field
        /// `worktree: true` does), seeded with the untracked files `.worktreeinclude` lists.
        #[arg(long)]
        worktree: bool,
    },
    /// Start agents in their tmux sessions; waits until each runs.
    Start {
        /// The agents (ID@HOST: an agent of another host, through the bridges).
        #[arg(value_name = "AGENT", required = true)]
        ids: Vec<String>,
        /// Return once tmux has the session, without waiting for af-wrap.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for each agent to run, in seconds.
        #[arg(long, default_value_t = 10.0, value_name = "SECS")]
        timeout: f64,
        /// Start every agent that can be, past those that cannot: each failure is one line on
        /// stderr (a JSON error document with --json), the rest keep running, and the exit code is
        /// the first failure's. Without it a batch stops at its first failure.
        #[arg(long)]
        keep_going: bool,
    },
    /// Stop agents: SIGTERM to the process group, SIGKILL after the timeout.
    Stop {
        /// The agents (ID@HOST: an agent of another host, through the bridges).
        #[arg(value_name = "AGENT", required = true)]
        ids: Vec<String>,
        /// SIGKILL at once.
        #[arg(long)]
        force: bool,
        /// Grace period between SIGTERM and SIGKILL, in seconds.
        #[arg(long, default_value_t = 10.0, value_name = "SECS")]
        timeout: f64,
    },
    /// Pause an agent (SIGSTOP to its process group).
    Pause {
        /// The agent (ID@HOST: an agent of another host, through the bridges).
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Resume a paused agent (SIGCONT).
    Resume {
        /// The agent (ID@HOST: an agent of another host, through the bridges).
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Stop an agent if it runs, then start it again.
    Restart {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// Grace period of the stop, in seconds.
        #[arg(long, default_value_t = 10.0, value_name = "SECS")]
        timeout: f64,
    },
    /// Clear an agent's failure counts and af-health's verdict (`failed' after the recovery
    /// ladder gave up), so that the ladder starts it again.
    Reset {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Remove an agent and its records (and its worktree, refusing when that holds uncommitted or
    /// unpushed work).
    Rm {
        /// The agents.
        #[arg(value_name = "AGENT", required = true)]
        ids: Vec<String>,
        /// Stop it first if it runs (SIGKILL); remove a worktree holding work, after taking a
        /// checkpoint that keeps it (refs/agentflow/checkpoints/<id>/...).
        #[arg(long)]
        force: bool,
    },
    /// List agents (with a SERVER column when any is on another tmux server than AF_TMUX_SOCKET's;
    /// `tmuxSocket` in --json).
    Ls {
        /// Only this project's agents.
        #[arg(long, short)]
        project: Option<String>,
        /// One line of counts by status (for tmux status lines and cron mail).
        #[arg(long)]
        summary: bool,
        /// Every bridged host's agents, as their af-bus bridge last published them to Redis
        /// (AF_REDIS_URL), with a HOST column; a host whose heartbeat expired is marked
        /// unreachable (JSON: each record has host and hostReachable).
        #[arg(long, conflicts_with = "summary")]
        cluster: bool,
        #[command(flatten)]
        redis: af_cli::Redis,
    },
    /// Show an agent's config, state and last heartbeat.
    Show {
        /// The agent. ID@HOST: an agent of another host, as its bridge last published it to
        /// Redis (the record of ls --cluster).
        #[arg(value_name = "AGENT")]
        id: String,
        #[command(flatten)]
        redis: af_cli::Redis,
    },
    /// Attach to an agent's tmux session, on the tmux server it runs on (inside tmux on that
    /// server: switch the client; elsewhere, also in a pane of another server: a client of its own).
    Attach {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Show what an agent printed (its tmux pane, captured), or its supervisor's log.
    Logs {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// Keep printing as it grows, until SIGINT or SIGTERM (exit 130).
        #[arg(long, short)]
        follow: bool,
        /// How many lines from the end to start with (reaching into rotated, even compressed,
        /// generations when the live log holds fewer).
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
        /// af-wrap's log instead of the agent's output.
        #[arg(long)]
        supervisor: bool,
    },
    /// Reconcile the whole spool with tmux and the processes: mark dead agents, kill stray
    /// sessions and orphans, remove leftovers of interrupted commands and what killed senders and
    /// listeners left in the bus (named pipes, undelivered message files, half-made subscriptions);
    /// and apply the logs' retention: rotated generations of the event log, the programs' logs and
    /// the agents' output and af-wrap logs past the age or size are removed, oldest first, and the
    /// others compressed (gzip) once unwritten for 5 minutes.
    Gc {
        /// Report what would be done, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove log generations last written longer ago than this (`0`: no age limit).
        #[arg(long, value_name = "DURATION", default_value = "14d")]
        max_age: String,
        /// The most one log may take, live file and generations together; the oldest generations
        /// beyond it are removed (`0`: no size limit).
        #[arg(long, value_name = "SIZE", default_value = "256MiB")]
        max_size: String,
    },
    /// Print a shell script that recreates an agent's tmux layout.
    Script {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Show an agent's processes, CPU and memory, refreshed (the `monitor' window).
    Top {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// Print once and exit.
        #[arg(long)]
        once: bool,
        /// Refresh interval, in seconds.
        #[arg(long, default_value_t = 2.0, value_name = "SECS")]
        interval: f64,
    },
}
