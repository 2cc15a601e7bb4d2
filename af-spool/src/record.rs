//! The records of DESIGN.md, as they are stored: JSON, camelCase as in the seed.

use crate::error::{Error, Result};
use crate::human;
use crate::id::AgentId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The largest config accepted, in bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// An agent's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum AgentType {
    /// Runs the Claude Code CLI.
    ClaudeCode,
    /// Runs OpenAI's Codex CLI (`codex exec --json`, one process per task).
    Codex,
    /// Runs `command`, or takes tasks from its inbox.
    Worker,
    /// Runs the health loop.
    Monitor,
}

impl AgentType {
    /// The name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::ClaudeCode => "claude-code",
            AgentType::Codex => "codex",
            AgentType::Worker => "worker",
            AgentType::Monitor => "monitor",
        }
    }
}

/// A timeout in milliseconds: the seed's number, or a human string such as `"30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Millis(n)),
            Raw::Text(s) => {
                human::parse_duration(&s).map(|d| Millis(d.as_millis() as u64)).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// The seed's `resourceLimits`. Every field is optional here; absent means no limit (memory, cpu)
/// or the default task timeout (30 minutes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceLimits {
    /// Memory for the agent's whole process tree, e.g. `"2GB"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPU cores, e.g. `"2"` or `"0.5"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Millis>,
}

/// The default task timeout: 30 minutes, the seed's Claude Code example.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_800_000;

impl ResourceLimits {
    /// The memory limit in bytes, if any.
    pub fn memory_bytes(&self) -> Result<Option<u64>> {
        self.memory.as_deref().map(human::parse_size).transpose()
    }

    /// The CPU limit in cores, if any.
    pub fn cpus(&self) -> Result<Option<f64>> {
        self.cpu.as_deref().map(human::parse_cpus).transpose()
    }

    /// The task timeout.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.map_or(DEFAULT_TIMEOUT_MS, |m| m.0)
    }
}

/// The project of an agent whose config names none.
pub const DEFAULT_PROJECT: &str = "default";

fn default_project() -> String {
    DEFAULT_PROJECT.into()
}

fn default_concurrency() -> u32 {
    1
}

/// The seed's `AgentConfig`, with AgentFlow's optional additions (`workdir`, `command`, …).
/// Defaults: `projectId` "default", `capabilities` [], `maxConcurrentTasks` 1, no memory or cpu
/// limit, task timeout 30 minutes, `environment` {}, `workdir` the directory `create` ran in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// Unique agent identifier.
    pub id: AgentId,
    /// The agent's type.
    #[serde(rename = "type")]
    pub kind: AgentType,
    /// The project the agent belongs to.
    #[serde(default = "default_project")]
    pub project_id: String,
    /// An optional specific task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// What the agent can do.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// How many tasks it runs at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_tasks: u32,
    /// Memory, CPU and timeout limits.
    #[serde(default)]
    pub resource_limits: ResourceLimits,
    /// Environment variables for the agent's process and tmux session.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Secrets for the agent's process alone, by variable name: `{"file": "/run/secrets/x"}` is
    /// read by af-wrap each time it starts the process; `{"env": "NAME"}` is taken from the
    /// environment of the program that starts the agent and handed to af-wrap through a pipe.
    /// Only the names and sources are ever stored or shown, never a value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretSource>,
    /// The directory the agent runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// The program and arguments af-wrap supervises (a worker's process, or the CLI of a
    /// claude-code agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// For a worker without `command`: the program and arguments run for each task that carries no
    /// `command` of its own, with the task message's JSON on stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_command: Option<Vec<String>>,
    /// The most a claude-code agent may spend (US dollars): passed as `--max-budget-usd` and
    /// enforced between tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// How a claude-code agent runs the Claude Code CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude: Option<crate::claude::ClaudeSettings>,
    /// How a codex agent runs the Codex CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codex: Option<crate::codex::CodexSettings>,
    /// Whether the agent works in its own git worktree on branch `af/<id>` (made by `create`,
    /// removed by `rm`); `workdir` is then that worktree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worktree: bool,
    /// A shell command af-wrap runs once in the workdir before the agent first starts (installing
    /// dependencies in a fresh worktree, say); its output goes to the agent's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Exit codes that mean "permanent failure, do not restart" to af-health's recovery ladder
    /// (e.g. `[78]`, sysexits' EX_CONFIG). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permanent_exit_codes: Vec<i32>,
    /// The tmux server the agent's session goes on (`tmux -L NAME`), e.g. one per project; None:
    /// `AF_TMUX_SOCKET`'s, else the default server. Past `AF_TMUX_SESSIONS_PER_SERVER` sessions
    /// the next of its family takes it (`NAME-2`, `NAME-3`, …). The state records where it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_socket: Option<String>,
}

/// Where a secret's value comes from: `{"file": "/abs/path"}` or `{"env": "NAME"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretSource {
    /// A file holding the value (one trailing newline is dropped): read by af-wrap when it
    /// starts the agent's process, never copied.
    File(PathBuf),
    /// A variable of the environment of the program that starts the agent (`af-spawn start`,
    /// af-api, af-health's ladder): read at the start and handed to af-wrap through a pipe, never
    /// written anywhere.
    Env(String),
}

/// What `*_KEY`, `*_TOKEN`, `*_SECRET` and `*PASSWORD*` variables show instead of their value.
pub const MASK: &str = "********";

/// Whether an environment variable's name says it holds a secret: `*_KEY`, `*_TOKEN`,
/// `*_SECRET`, `*PASSWORD*` (any case).
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["_KEY", "_TOKEN", "_SECRET"].iter().any(|s| n.ends_with(s)) || n == "KEY" || n == "TOKEN" || n.contains("PASSWORD")
}

/// Whether `name` may name an environment variable: letters, digits and `_`, not starting with a
/// digit.
fn variable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AgentConfig {
    /// The config as every output shows it: environment values whose names look like secrets
    /// (see [`looks_secret`]) masked. `secrets` hold no values to mask.
    pub fn masked(&self) -> AgentConfig {
        let mut c = self.clone();
        for (k, v) in c.environment.iter_mut() {
            if looks_secret(k) {
                *v = MASK.to_owned();
            }
        }
        c
    }

    /// The environment variables whose names look like secrets.
    pub fn plain_secrets(&self) -> Vec<&str> {
        self.environment.keys().filter(|k| looks_secret(k)).map(String::as_str).collect()
    }

    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &[u8]) -> Result<Self> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(Error::Invalid(format!("config is larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let config: AgentConfig =
            serde_json::from_slice(text).map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: sizes, counts, names.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("invalid agent config: {m}")));
        if self.project_id.is_empty() || self.project_id.len() > 256 || self.project_id.chars().any(char::is_control) {
            return bad("projectId must be 1 to 256 printable characters".into());
        }
        if self.max_concurrent_tasks == 0 || self.max_concurrent_tasks > 1024 {
            return bad("maxConcurrentTasks must be between 1 and 1024".into());
        }
        self.resource_limits.memory_bytes()?;
        self.resource_limits.cpus()?;
        for (k, v) in &self.environment {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return bad(format!("environment variable {k:?} is not a valid name=value"));
            }
        }
        for (name, source) in &self.secrets {
            if !variable_name(name) {
                return bad(format!("secret {name:?} is not a variable name (letters, digits and _)"));
            }
            if self.environment.contains_key(name) {
                return bad(format!("{name} is both in environment and in secrets"));
            }
            match source {
                SecretSource::File(file) if !file.is_absolute() => {
                    return bad(format!("secret {name}: file {} must be an absolute path", file.display()));
                }
                SecretSource::Env(var) if !variable_name(var) => {
                    return bad(format!("secret {name}: env {var:?} is not a variable name (letters, digits and _)"));
                }
                _ => {}
            }
        }
        if let Some(s) = &self.tmux_socket {
            let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
            if s.is_empty() || s.len() > 64 || s.starts_with('.') || !s.bytes().all(ok) {
                return bad(format!("tmuxSocket {s:?} must be 1 to 64 letters, digits, '-', '_' or '.', not first"));
            }
        }
        if let Some(cmd) = &self.task_command {
            if cmd.is_empty() || cmd[0].is_empty() || cmd.iter().any(|a| a.contains('\0')) {
                return bad("taskCommand must be a non-empty array, program first, without NUL bytes".into());
            }
        }
        if self.setup.as_deref().is_some_and(|s| s.contains('\0') || s.len() > 64 * 1024) {
            return bad("setup must be a shell command of at most 64 KiB, without NUL".into());
        }
        if let Some(cmd) = &self.command {
            if cmd.is_empty() || cmd[0].is_empty() {
                return bad("command must be a non-empty array, program first".into());
            }
            if cmd.iter().any(|a| a.contains('\0')) {
                return bad("command has a NUL byte".into());
            }
        }
        crate::claude::validate_budget(self.budget_usd)?;
        if let Some(c) = &self.claude {
            c.validate()?;
        }
        if let Some(c) = &self.codex {
            c.validate()?;
        }
        if self.kind == AgentType::Codex && self.budget_usd.is_some() {
            return bad("budgetUsd: the Codex CLI reports tokens, not money; give a codex agent codex.maxTokens".into());
        }
        Ok(())
    }
}

/// An agent's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started.
    Created,
    /// af-spawn has asked tmux to start it.
    Starting,
    /// Its supervisor runs it.
    Running,
    /// Its process group is stopped (SIGSTOP).
    Paused,
    /// A stop is under way.
    Stopping,
    /// Stopped, by request or by its process ending.
    Stopped,
    /// It failed (its process died badly, its program is missing, its supervisor vanished).
    Failed,
}

impl Status {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Failed => "failed",
        }
    }

    /// Whether a supervisor should be alive in this status.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Starting | Status::Running | Status::Paused | Status::Stopping)
    }
}

/// An agent's health, as last judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not judged yet, or not running.
    #[default]
    Unknown,
    /// All checks pass.
    Healthy,
    /// Some check warns.
    Degraded,
    /// Some check fails.
    Unhealthy,
}

impl Health {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// Which mechanism enforces a resource limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedLimits {
    /// How memory is limited: `cgroup-v2`, `cgroup-v1`, `rlimit-as` or `none`.
    #[serde(default)]
    pub memory: String,
    /// How CPU is limited: `cgroup-v2`, `cgroup-v1`, `affinity` or `none`.
    #[serde(default)]
    pub cpu: String,
    /// The cgroup directories created for the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<PathBuf>,
}

/// An agent's state: what it is doing, and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    /// Lifecycle status.
    pub status: Status,
    /// Health as last judged.
    #[serde(default)]
    pub health: Health,
    /// The agent process (its process group leader), while it runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The agent process's start time (clock ticks since boot), telling it apart from a reused pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// The supervisor (af-wrap), while it runs.
    #[serde(default)]
    pub wrap_pid: Option<u32>,
    /// Which start (or stop) decided this agent's fate last: raised under the agent's lock by every
    /// start, and by a stop or gc that finds no supervisor. A supervisor writes only while the
    /// generation is still the one it was started for, so a late af-wrap cannot undo a stop.
    #[serde(default)]
    pub generation: u64,
    /// The tmux session.
    pub tmux_session: String,
    /// The tmux server the agent was last started on (its socket name, `-L`): every operation on
    /// its session goes there. None: the default server (and every agent recorded before servers
    /// were chosen per agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_socket: Option<String>,
    /// How many times it was restarted.
    #[serde(default)]
    pub restarts: u32,
    /// How many times it failed.
    #[serde(default)]
    pub failures: u32,
    /// Consecutive failures since it last ran healthy.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it last stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    /// When this record last changed.
    pub updated_at: Timestamp,
    /// Its process's exit code, once it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended its process, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
    /// Why it is in this status, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Money spent so far (US dollars).
    #[serde(default)]
    pub cost_usd: f64,
    /// How its resource limits are enforced.
    #[serde(default)]
    pub limits: AppliedLimits,
    /// Tokens used so far (claude-code agents).
    #[serde(default, skip_serializing_if = "crate::claude::Tokens::is_zero")]
    pub tokens: crate::claude::Tokens,
    /// The agent's conversation (claude-code agents): resumed after any restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<crate::claude::Conversation>,
    /// The running figures of the agent CLI process that runs now (claude-code agents in print
    /// mode); `costUsd` and `tokens` already include them. See [`crate::claude::Usage`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<crate::claude::ProcessUsage>,
    /// What a claude-code agent is doing: `idle`, `busy`, `waiting` (for a rate limit to reset),
    /// `input` (its CLI waits for input), `ended` (its CLI session ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    /// While `waiting`: when it resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<Timestamp>,
    /// While `input` because the CLI asks a person (a permission prompt, a question): what it asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_prompt: Option<String>,
    /// Since when it asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_since: Option<Timestamp>,
    /// Why its driver cannot work (the CLI missing, not logged in), until a task succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_fault: Option<crate::claude::DriverFault>,
}

/// A reference to an agent CLI's conversation (see [`crate::claude::Conversation`]): checkpoints keep
/// it and rollbacks restore it.
pub use crate::claude::Conversation;

impl AgentState {
    /// The state of a newly created agent.
    pub fn new(id: &AgentId, socket: Option<String>) -> Self {
        let now = Timestamp::now();
        AgentState {
            status: Status::Created,
            health: Health::Unknown,
            pid: None,
            pid_start: None,
            wrap_pid: None,
            generation: 0,
            tmux_session: id.session(),
            tmux_socket: socket,
            restarts: 0,
            failures: 0,
            consecutive_failures: 0,
            created_at: now,
            started_at: None,
            stopped_at: None,
            updated_at: now,
            exit_code: None,
            exit_signal: None,
            reason: None,
            cost_usd: 0.0,
            limits: AppliedLimits::default(),
            tokens: Default::default(),
            conversation: None,
            process: None,
            activity: None,
            waiting_until: None,
            input_prompt: None,
            input_since: None,
            driver_fault: None,
        }
    }

    /// The agent's spending: the sum, and the running figures of the CLI process now running.
    pub fn usage(&self) -> crate::claude::Usage {
        crate::claude::Usage { cost_usd: self.cost_usd, tokens: self.tokens, process: self.process }
    }

    /// Records the agent's spending.
    pub fn set_usage(&mut self, u: crate::claude::Usage) {
        self.cost_usd = u.cost_usd;
        self.tokens = u.tokens;
        self.process = u.process;
    }
}

/// What af-wrap reports every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The writer's count of its beats, first in the record; with [`Heartbeat::seq_end`], last,
    /// it tells a reader a torn read (see [`crate::heartbeat`]).
    #[serde(default)]
    pub seq: u64,
    /// The agent.
    pub agent: AgentId,
    /// When this heartbeat was written.
    pub time: Timestamp,
    /// The supervisor's pid.
    pub wrap_pid: u32,
    /// The agent process's pid, if one runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// How long the supervisor has run, in milliseconds.
    pub uptime_ms: u64,
    /// Resident memory of the agent's process tree, in bytes.
    pub rss_bytes: u64,
    /// CPU use of the agent's process tree since the last heartbeat, in percent of one core.
    pub cpu_percent: f64,
    /// How many processes the agent's tree holds.
    pub processes: u32,
    /// Tasks running now.
    #[serde(default)]
    pub tasks_running: u32,
    /// Tasks finished since the supervisor started.
    #[serde(default)]
    pub tasks_done: u64,
    /// How long until the next beat, in milliseconds: af-wrap beats often while the agent is busy
    /// or watched and ever more rarely while it idles, and says so here, so a reader judges the
    /// beat's age against the interval it promised (absent in beats of older af-wraps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// The same count as [`Heartbeat::seq`], last in the record.
    #[serde(default)]
    pub seq_end: u64,
}

/// The running program's name (`af-spawn`, …), from argv[0]: who wrote an event.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "agentflow".into())
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When it happened.
    pub time: Timestamp,
    /// What happened, dotted: `agent.created`, `agent.started`, `agent.exited`, …
    pub kind: String,
    /// The agent it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    /// The program that wrote it.
    #[serde(default)]
    pub by: String,
    /// Anything else worth keeping.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Event {
    /// An event of `kind` about `agent`, written by the running program.
    pub fn new(kind: &str, agent: Option<&AgentId>, detail: serde_json::Value) -> Self {
        Event { time: Timestamp::now(), kind: kind.to_owned(), agent: agent.cloned(), by: program_name(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healths_name_is_its_stored_one() {
        for h in [Health::Unknown, Health::Healthy, Health::Degraded, Health::Unhealthy] {
            assert_eq!(serde_json::to_value(h).unwrap(), h.as_str());
        }
    }

    #[test]
    fn short_seed_form_gets_defaults() {
        let c = AgentConfig::from_json(br#"{"id":"worker-001","type":"worker","projectId":"batch-job"}"#).unwrap();
        assert_eq!(c.max_concurrent_tasks, 1);
        assert!(c.capabilities.is_empty());
        assert_eq!(c.resource_limits.timeout_ms(), DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn rejects_wrong_types_and_unknown_fields() {
        for bad in [
            r#"{"id":"a","type":"robot"}"#,
            r#"{"id":"a","type":"worker","maxConcurrentTasks":"3"}"#,
            r#"{"id":"a","type":"worker","maxConcurentTasks":3}"#,
            r#"{"id":"../x","type":"worker"}"#,
            r#"{"id":"a","type":"worker","resourceLimits":{"memory":"lots"}}"#,
            r#"{"id":"a","type":"worker","command":[]}"#,
            r#"{"id":"a","type":"worker""#,
        ] {
            assert!(AgentConfig::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeout_takes_millis_or_text() {
        let c = AgentConfig::from_json(br#"{"id":"a","type":"worker","resourceLimits":{"timeout":"10m"}}"#).unwrap();
        assert_eq!(c.resource_limits.timeout_ms(), 600_000);
    }
}
