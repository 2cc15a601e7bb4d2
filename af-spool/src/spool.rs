//! The spool root (`$AF_HOME`) and every path under it. No program builds a spool path by hand.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::lock::Lock;
use crate::record::{AgentConfig, AgentState, Heartbeat};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An opened spool root. Its layout (every entry; `man/af-spool.5` describes each, and
/// tests/docs.rs checks that it names every path below):
///
/// ```text
/// $AF_HOME/
///   events.log                        append-only event log (JSON lines), rotated by size
///   events.log.1 … .N                 its older generations, newest first (see eventlog.rs)
///   events.lock                       flock: taken to rotate the log, and shared to open its files
///   events.d/                         fifodir: woken after every event
///   agents/<id>/config.json           AgentConfig
///   agents/<id>/state.json            AgentState (tmuxSocket: the tmux server it runs on)
///   agents/<id>/heartbeat.json        Heartbeat (af-wrap, every few seconds, rewritten in place)
///   agents/<id>/lock                  flock: held while changing the agent's records
///   agents/<id>/wrap.lock             flock: held by the agent's af-wrap for its whole life
///   agents/<id>/control               named pipe af-wrap reads requests from
///   agents/<id>/notify.d/             fifodir: woken on every state change of the agent
///   agents/<id>/wrap.log              af-wrap's own log
///   agents/<id>/output.log            what the agent's tmux pane shows (rotated by af-wrap)
///   agents/<id>/inbox/                the agent's message queue (see queue.rs)
///   agents/<id>/tasks/                running tasks' stdin, stdout, stderr, claim (see bus.rs)
///   agents/<id>/checkpoints/          checkpoints, their lock, a rollback's mark (see checkpoint.rs)
///   agents/<id>/health.json           recovery-ladder record (see health.rs)
///   agents/<id>/health.log            check history, JSON lines
///   agents/<id>/health.lock           flock: held while one af-health checks the agent
///   agents/<id>/hold.<point>.<pid>    a test holding af-wrap at a named point (AF_TEST_HOLD)
///   agents/<id>/setup.done            the setup command ran (see worktree.rs)
///   agents/<id>/claude-settings.json  hooks settings of a claude-code agent's CLI (see claude.rs)
///   bus/pool/<project>/               a project's shared queue (see bus.rs)
///   bus/sub/<name>/                   a subscription: subscription.json + a queue
///   bus/reply/<id>/                   a waiting requester's reply queue
///   bus/batch/<batch>/                a batch of messages being delivered together (see batch.rs)
///   bus.d/                            middleware executables
///   bridge/outbox/                    messages to other hosts, waiting for af-bus bridge (a queue)
///   bridge/in/                        the bridge's queue of network entries: bad ones die here
///   bridge/control/                   remote control requests from other hosts (a queue)
///   bridge/journal/<batch>            inbound messages being delivered, one batch (JSON lines)
///   bridge/staged/<id>.<n>            an inbound message's file on its way into its n-th queue
///   bridge/seen-log/<ms>              ids of the inbound messages delivered, one a line (7 days)
///   bridge/seen/<id>                  an inbound message delivered, as older versions marked it
///   bridge/lock                       flock: held by the running af-bus bridge
///   alerts/open/<id>.<check>.json     open alerts (see health.rs)
///   alerts.log                        every alert, JSON lines
///   alert.d/                          alert hooks
///   health.d/                         fifodir: af-health's pipes for answers to its pings
///   worktrees/<id>/                   an agent's git worktree (`--worktree`)
///   projects/<hash>.turns.json        a project's recent claude-code turns (see claude.rs)
///   accounts/<hash>.limit.json        a Claude account's usage limit until its reset (see claude.rs)
///   metrics/tally, metrics/tally.json counters that survive restarts: ladder steps, claude turns,
///                                     alerts raised and resolved (see tally.rs; a queue keeps its own)
///   rules.json                        alert rules: thresholds per project, type, agent (af-health)
///   agents/<id>/figures.json          af-health's samples of the agent's figures (rules, anomalies)
///   log/                              programs' logs
///   api/token                         af-api's bearer token (0600)
///   watched                           touched by whoever watches the agents live (see watch())
/// ```
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// The root named by `$AF_HOME`, else `$XDG_STATE_HOME/agentflow`, else
    /// `~/.local/state/agentflow`.
    pub fn default_root() -> Result<PathBuf> {
        if let Some(h) = std::env::var_os("AF_HOME").filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(h));
        }
        if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(x).join("agentflow"));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".local/state/agentflow")),
            None => Err(Error::Invalid("neither AF_HOME nor HOME is set; set AF_HOME to the spool directory".into())),
        }
    }

    /// Opens (creating if needed, mode 0700) the default root.
    pub fn open_default() -> Result<Self> {
        Self::open(&Self::default_root()?)
    }

    /// Opens (creating if needed, mode 0700) the spool at `root`. Refuses a root owned by another
    /// user or writable by group or others, since anyone who can write it can run code as us, and
    /// checks that before it opens or creates anything in it. The root may be a symlink the user
    /// chose: it is resolved here, once, and everything beneath it is then reached without
    /// following any symlink (see [`crate::beneath`]).
    pub fn open(root: &Path) -> Result<Self> {
        let root = Self::check_root(root, true)?;
        let spool = Spool { root };
        atomic::create_dir(&spool.agents_dir())?;
        Ok(spool)
    }

    /// Resolves the root (creating it, mode 0700, when `create`), checks its ownership and mode,
    /// and registers it with [`crate::beneath`]; creates nothing in it. Returns the resolved root.
    pub fn check_root(root: &Path, create: bool) -> Result<PathBuf> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| Error::io("read current directory for", root, e))?.join(root)
        };
        if create {
            atomic::create_dir(&root)?;
        }
        let root = root.canonicalize().map_err(|e| Error::io("resolve", &root, e))?;
        let meta = std::fs::metadata(&root).map_err(|e| Error::io("stat", &root, e))?;
        if !meta.is_dir() {
            return Err(Error::Conflict(format!("spool {} is not a directory; use another AF_HOME", root.display())));
        }
        let uid = nix::unistd::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(Error::Conflict(format!(
                "spool {} is owned by uid {}, not by us (uid {uid}); use your own AF_HOME",
                root.display(),
                meta.uid()
            )));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(Error::Conflict(format!(
                "spool {} is writable by group or others; run: chmod 700 {}",
                root.display(),
                root.display()
            )));
        }
        crate::beneath::register_root(&root);
        Ok(root)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The alert rules (`rules.json`), read by af-health.
    pub fn rules_path(&self) -> PathBuf {
        self.root.join("rules.json")
    }

    /// af-health's samples of an agent's figures (`agents/<id>/figures.json`).
    pub fn figures_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("figures.json")
    }

    /// The spool's counters (`metrics/tally`): `ladder:<rung>:<outcome>`, `turn:<outcome>`,
    /// `alert-raised:<level>`, `alert-resolved:<level>` (see [`crate::tally`]).
    pub fn tally(&self) -> crate::tally::Tally {
        crate::tally::Tally::new(self.root.join("metrics/tally"))
    }

    /// The directory holding one directory per agent.
    pub fn agents_dir(&self) -> PathBuf {
        self.root.join("agents")
    }

    /// An agent's directory.
    pub fn agent_dir(&self, id: &AgentId) -> PathBuf {
        self.agents_dir().join(id.as_str())
    }

    /// An agent's config record.
    pub fn config_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join(CONFIG_FILE)
    }

    /// An agent's inbox: a Maildir queue (`tmp/ new/ cur/ dead/ archive/ notify.d/`, see
    /// [`crate::queue`]).
    pub fn inbox_dir(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("inbox")
    }

    /// An agent's state record.
    pub fn state_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join(STATE_FILE)
    }

    /// An agent's heartbeat record.
    pub fn heartbeat_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("heartbeat.json")
    }

    /// The named pipe af-wrap reads control requests from.
    pub fn control_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("control")
    }

    /// The fifodir woken on every state change of an agent.
    pub fn agent_notify_dir(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("notify.d")
    }

    /// The lock af-wrap holds for its whole life: free means no supervisor runs.
    pub fn wrap_lock_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("wrap.lock")
    }

    /// What the agent's tmux pane shows, captured by `tmux pipe-pane`.
    pub fn output_log_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("output.log")
    }

    /// af-wrap's own log for an agent.
    pub fn wrap_log_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("wrap.log")
    }

    /// The append-only event log.
    pub fn events_path(&self) -> PathBuf {
        self.root.join("events.log")
    }

    /// An older generation of the event log: `events.log.1` is the newest, `events.log.N` the
    /// oldest kept.
    pub fn events_generation_path(&self, n: usize) -> PathBuf {
        atomic::sibling(&self.events_path(), &format!(".{n}"))
    }

    /// The lock a writer takes to rotate the event log, and a reader takes shared for the instant
    /// it opens the generations, so it never sees them half shifted.
    pub fn events_lock_path(&self) -> PathBuf {
        self.root.join("events.lock")
    }

    /// The fifodir woken after every event appended to the log.
    pub fn events_notify_dir(&self) -> PathBuf {
        self.root.join("events.d")
    }

    /// af-api's directory: its bearer token (`api/token`, 0600).
    pub fn api_dir(&self) -> PathBuf {
        self.root.join("api")
    }

    /// af-api's default bearer token file.
    pub fn api_token_path(&self) -> PathBuf {
        self.api_dir().join("token")
    }

    /// The folder for programs' logs.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// The hooks settings file af-wrap writes for a claude-code agent's CLI (`--settings`).
    pub fn claude_settings_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("claude-settings.json")
    }

    /// The record of turns recently started by a project's claude-code agents (for
    /// `projectTurnsPerMinute`), named by a hash since project ids may hold any character.
    pub fn project_turns_path(&self, project: &str) -> PathBuf {
        self.root.join("projects").join(format!("{:016x}.turns.json", fnv1a(project.as_bytes())))
    }

    /// The usage limit a Claude account is under (see [`crate::claude::AccountLimit`]): the
    /// account is the CLI's config directory, hashed.
    pub fn account_limit_path(&self, config_dir: &Path) -> PathBuf {
        let h = fnv1a(config_dir.as_os_str().as_encoded_bytes());
        self.root.join("accounts").join(format!("{h:016x}.limit.json"))
    }

    /// Whether an agent exists (false also when its config cannot be looked at).
    pub fn exists(&self, id: &AgentId) -> bool {
        self.try_exists(id).unwrap_or(false)
    }

    /// Whether an agent exists; an error looking (other than its absence) is an error, not a no.
    pub fn try_exists(&self, id: &AgentId) -> Result<bool> {
        let path = self.config_path(id);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(false),
            Err(e) => Err(Error::io("stat", &path, e)),
        }
    }

    /// Fails with NotFound unless the agent exists.
    pub fn require(&self, id: &AgentId) -> Result<()> {
        if self.try_exists(id)? { Ok(()) } else { Err(Error::NotFound(format!("no agent '{id}' (see: af-spawn ls)"))) }
    }

    /// Every agent id in the spool, sorted. Half-created agents (hidden names) are skipped.
    pub fn agent_ids(&self) -> Result<Vec<AgentId>> {
        let dir = self.agents_dir();
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| AgentId::new(n).ok()) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Reads an agent's config.
    pub fn read_config(&self, id: &AgentId) -> Result<AgentConfig> {
        atomic::read_json(&self.config_path(id))?
            .ok_or_else(|| Error::NotFound(format!("no agent '{id}' (see: af-spawn ls)")))
    }

    /// Reads an agent's state.
    pub fn read_state(&self, id: &AgentId) -> Result<AgentState> {
        atomic::read_json(&self.state_path(id))?
            .ok_or_else(|| Error::NotFound(format!("no agent '{id}' (see: af-spawn ls)")))
    }

    /// The marker a live watcher (af-api's event stream, `af-spawn top`) touches every few seconds:
    /// while it is fresh, every af-wrap beats at its busy pace and reads its whole process tree.
    pub fn watched_path(&self) -> PathBuf {
        self.root.join("watched")
    }

    /// Says that someone watches the agents live now (see [`Spool::watched_path`]): sets the
    /// marker's time, creating it empty the first time. No inode is made after that.
    pub fn mark_watched(&self) -> Result<()> {
        let path = self.watched_path();
        let file = crate::beneath::open(
            &path,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT,
            0o600,
            "open watch marker",
        )?;
        file.set_modified(std::time::SystemTime::now()).map_err(|e| Error::io("touch", &path, e))
    }

    /// Whether someone marked the agents watched within `lease` (one `stat`).
    pub fn watched_within(&self, lease: std::time::Duration) -> bool {
        std::fs::metadata(self.watched_path())
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().map_or(true, |age| age <= lease))
    }

    /// Reads an agent's last heartbeat, if it ever had one.
    pub fn read_heartbeat(&self, id: &AgentId) -> Result<Option<Heartbeat>> {
        crate::heartbeat::read(&self.heartbeat_path(id))
    }

    /// Writes an agent's state and wakes whoever waits on it. Terminal and initial statuses are
    /// written durably; live ones (starting, running, paused, stopping) only atomically, since
    /// their processes die with the machine anyway and `wrap.lock` tells the truth after a reboot.
    pub fn write_state(&self, id: &AgentId, state: &AgentState) -> Result<()> {
        let durability = if state.status.is_live() { Durability::Volatile } else { Durability::Durable };
        atomic::write_json(&self.state_path(id), state, durability)?;
        let line = serde_json::json!({"agent": id, "status": state.status});
        crate::fifodir::Fifodir::new(self.agent_notify_dir(id)).notify(&line);
        Ok(())
    }

    /// Takes the agent's record lock (blocking), for a read-modify-write of its records.
    pub fn lock_agent(&self, id: &AgentId) -> Result<Lock> {
        self.require(id)?;
        Lock::exclusive(&self.agent_dir(id).join("lock"))
    }

    /// Reads, changes and writes an agent's state under its lock; returns the new state.
    pub fn update_state(&self, id: &AgentId, change: impl FnOnce(&mut AgentState)) -> Result<AgentState> {
        let _lock = self.lock_agent(id)?;
        let mut state = self.read_state(id)?;
        change(&mut state);
        state.updated_at = crate::time::Timestamp::now();
        self.write_state(id, &state)?;
        Ok(state)
    }

    /// Like [`Spool::update_state`], but only while the agent's generation is still `generation`:
    /// `Ok(None)` (and nothing written) when a newer start or stop has decided since.
    pub fn update_state_fenced(
        &self,
        id: &AgentId,
        generation: u64,
        change: impl FnOnce(&mut AgentState),
    ) -> Result<Option<AgentState>> {
        let _lock = self.lock_agent(id)?;
        let mut state = self.read_state(id)?;
        if state.generation != generation {
            return Ok(None);
        }
        change(&mut state);
        state.updated_at = crate::time::Timestamp::now();
        self.write_state(id, &state)?;
        Ok(Some(state))
    }

    /// Reads an agent's config and state and judges its real status (see [`Observed::status`]).
    pub fn observe(&self, id: &AgentId) -> Result<Observed> {
        let config = self.read_config(id)?;
        let state = self.read_state(id)?;
        let supervisor_alive = state.status.is_live() && self.supervisor_alive(id);
        Ok(Observed { config, state, supervisor_alive })
    }

    /// Whether the agent's af-wrap is alive (it holds `wrap.lock`).
    pub fn supervisor_alive(&self, id: &AgentId) -> bool {
        Lock::is_held(&self.wrap_lock_path(id))
    }
}

/// The name of an agent's config record in its directory.
pub const CONFIG_FILE: &str = "config.json";
/// The name of an agent's state record in its directory.
pub const STATE_FILE: &str = "state.json";

/// How long an agent may stay `starting` without a supervisor before it counts as failed.
pub const START_GRACE_MS: u64 = 10_000;

/// An agent's records, and whether its supervisor really runs.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Its config.
    pub config: AgentConfig,
    /// Its state as recorded.
    pub state: AgentState,
    /// Whether its af-wrap holds the wrap lock (only probed for live statuses).
    pub supervisor_alive: bool,
}

impl Observed {
    /// The status that is true now: a live status whose supervisor is gone is `failed` (after a
    /// grace period for `starting`), whatever the record says.
    pub fn status(&self) -> crate::record::Status {
        use crate::record::Status;
        let s = self.state.status;
        if !s.is_live() || self.supervisor_alive {
            return s;
        }
        if s == Status::Starting && self.state.updated_at.age_ms() < START_GRACE_MS {
            return Status::Starting;
        }
        Status::Failed
    }

    /// The fields `af-spawn ls --json` (and `GET /api/agents`) promise for one agent.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.config.id,
            "type": self.config.kind,
            "projectId": self.config.project_id,
            "status": self.status(),
            "health": self.state.health,
            "pid": self.state.pid,
            "tmuxSession": self.state.tmux_session,
            "tmuxSocket": self.state.tmux_socket,
            "restarts": self.state.restarts,
            "failures": self.state.failures,
            "costUsd": self.state.cost_usd,
            "activity": self.state.activity,
            "inputPrompt": self.state.input_prompt,
            "reason": self.reason(),
            "createdAt": self.state.created_at,
            "startedAt": self.state.started_at,
        })
    }

    /// Why it is in that status.
    pub fn reason(&self) -> Option<String> {
        if self.status() != self.state.status {
            return Some(match self.state.status {
                crate::record::Status::Starting => "it never started: af-wrap did not come up".into(),
                _ => "its supervisor (af-wrap) is gone; run af-spawn gc".into(),
            });
        }
        self.state.reason.clone()
    }
}

/// FNV-1a: a short file name for a key that may hold any character.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}
