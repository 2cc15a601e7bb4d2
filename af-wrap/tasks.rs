//! A worker's task loop: af-wrap of a `worker` agent without a `command` takes `task` (and
//! `request`) messages from its inbox and its project's pool and runs each as a child process in
//! its own process group — the task's own `command` (argv array) when it carries one, else the
//! agent's `taskCommand` with the task's JSON on stdin — up to `maxConcurrentTasks` at once,
//! killed at its timeout. The result is acked, sent as a response to the task's reply-to queue,
//! and published on topic `tasks.results`. A stop gives unfinished claims back to their queues.

use crate::limits::Limits;
use af_ops::bus::Target;
use af_spool::bus::Address;
use af_spool::fifodir::Listener;
use af_spool::message::{Kind, Message, Priority};
use af_spool::queue::{Entry, Queue, RESCAN};
use af_spool::record::{AgentConfig, Millis};
use af_spool::{AgentId, Spool, atomic};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The topic every task result is published on.
pub const RESULTS_TOPIC: &str = "tasks.results";

/// How long a task's claim outlives its timeout (time to report the result).
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

/// How much of a task's stdout goes into its result, and of its stderr.
const STDOUT_MAX: u64 = 256 * 1024;
const STDERR_TAIL: u64 = 2000;

/// One task being run.
struct Running {
    pid: u32,
    queue: usize,
    receipt: String,
    message: Message,
    started: Instant,
    deadline: Instant,
    timed_out: bool,
    /// stdin, stdout, stderr, and the claim record (which queue, which receipt).
    files: [PathBuf; 4],
}

/// What af-wrap remembers of a running task's claim, so that after its own death the next af-wrap
/// gives the claim back at once instead of after the visibility timeout.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ClaimRecord {
    /// Which queue (an index into the holder's list).
    pub queue: usize,
    /// The claim's receipt.
    pub receipt: String,
}

/// How a task's process ended.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// The task loop's state.
pub struct Tasks {
    spool: Spool,
    id: AgentId,
    config: AgentConfig,
    /// The inbox, then the pool.
    queues: [Queue; 2],
    listeners: Vec<Listener>,
    running: Vec<Running>,
    /// Messages in the inbox that are not tasks (left for other receivers).
    ignored: HashSet<String>,
    stopping: bool,
    done: u64,
    next_scan: Instant,
}

impl Tasks {
    /// Listens to the inbox and the pool (before the first look, so no wake-up is missed).
    pub fn new(spool: &Spool, id: &AgentId, config: &AgentConfig) -> af_spool::Result<Tasks> {
        let queues = [Address::Inbox(id.clone()).queue(spool), Address::Pool(config.project_id.clone()).queue(spool)];
        let mut listeners = Vec::new();
        for q in &queues {
            q.create()?;
            listeners.push(q.listen()?);
        }
        atomic::create_dir(&spool.task_dir(id))?;
        recover(&spool.task_dir(id), &queues);
        Ok(Tasks {
            spool: spool.clone(),
            id: id.clone(),
            config: config.clone(),
            queues,
            listeners,
            running: Vec::new(),
            ignored: HashSet::new(),
            stopping: false,
            done: 0,
            next_scan: Instant::now(),
        })
    }

    /// The descriptors to poll: a wake-up means a delivery.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.listeners.iter().map(Listener::fd).collect()
    }

    /// Tasks running now, and finished since the start.
    pub fn counts(&self) -> (u32, u64) {
        (self.running.len() as u32, self.done)
    }

    /// When the loop must look again at the latest (a task's timeout, the rescan).
    pub fn next_wake(&self) -> Instant {
        self.running.iter().filter(|r| !r.timed_out).map(|r| r.deadline).fold(self.next_scan, Instant::min)
    }

    /// Whether no task runs.
    pub fn idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Kills tasks past their timeout, then (unless paused or stopping) claims and starts tasks up
    /// to the concurrency limit.
    pub fn tick(&mut self, paused: bool, limits: &Limits) {
        let now = Instant::now();
        for r in self.running.iter_mut().filter(|r| !r.timed_out && r.deadline <= now) {
            tracing::info!(task = %r.message.id, "task timed out: SIGKILL");
            r.timed_out = true;
            let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGKILL);
        }
        // Drain every listener (no short cut): each wake-up line is read once.
        let mut woken = false;
        for l in &mut self.listeners {
            woken |= !l.drain().unwrap_or_default().is_empty();
        }
        if paused || self.stopping || (!woken && now < self.next_scan) {
            return;
        }
        self.next_scan = now + RESCAN;
        for qi in 0..self.queues.len() {
            let free = (self.config.max_concurrent_tasks as usize).saturating_sub(self.running.len());
            if free == 0 {
                return;
            }
            let visibility = Duration::from_millis(self.config.resource_limits.timeout_ms()) + CLAIM_MARGIN;
            let ignored = &self.ignored;
            let claims = match self.queues[qi].claim_where(free, visibility, |e: &Entry| !ignored.contains(&e.id)) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("cannot claim tasks: {e}");
                    continue;
                }
            };
            for c in claims {
                if !matches!(c.message.kind, Kind::Task | Kind::Request) {
                    self.ignored.insert(c.message.id.clone());
                    let _ = self.queues[qi].release(&c.receipt);
                    continue;
                }
                self.start(qi, c.receipt, c.message, limits);
            }
        }
    }

    fn start(&mut self, queue: usize, mut receipt: String, message: Message, limits: &Limits) {
        let dir = self.spool.task_dir(&self.id);
        let files = ["in", "out", "err", "claim"].map(|ext| dir.join(format!("{}.{ext}", message.id)));
        let timeout = message
            .payload
            .get("timeout")
            .and_then(|t| serde_json::from_value::<Millis>(t.clone()).ok())
            .map_or(self.config.resource_limits.timeout_ms(), |m| m.0);
        if timeout > self.config.resource_limits.timeout_ms() {
            // The claim must outlive the task's own, longer timeout.
            match self.queues[queue].extend(&receipt, Duration::from_millis(timeout) + CLAIM_MARGIN) {
                Ok(Some(r)) => receipt = r,
                Ok(None) => return,
                Err(e) => tracing::warn!("cannot extend the claim of task {}: {e}", message.id),
            }
        }
        let record = ClaimRecord { queue, receipt: receipt.clone() };
        if let Err(e) = atomic::write_json(&files[3], &record, atomic::Durability::Volatile) {
            tracing::warn!("cannot record the claim of task {}: {e}", message.id);
        }
        let started = Instant::now();
        let mut running = Running {
            pid: 0,
            queue,
            receipt,
            message,
            started,
            deadline: started + Duration::from_millis(timeout),
            timed_out: false,
            files,
        };
        match self.spawn(&running, limits) {
            Ok(pid) => {
                tracing::info!(task = %running.message.id, pid, "task started");
                running.pid = pid;
                self.running.push(running);
            }
            Err(reason) => {
                tracing::warn!(task = %running.message.id, "task did not start: {reason}");
                self.report(&running, None, Some(reason));
                for f in &running.files {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
    }

    fn spawn(&self, r: &Running, limits: &Limits) -> Result<u32, String> {
        let own = r.message.payload.get("command").and_then(|c| serde_json::from_value::<Vec<String>>(c.clone()).ok());
        let (argv, stdin_task) = match (own, &self.config.task_command) {
            (Some(cmd), _) if !cmd.is_empty() && !cmd[0].is_empty() => (cmd, false),
            (_, Some(cmd)) => (cmd.clone(), true),
            _ => return Err("the task has no command and the agent has no taskCommand".into()),
        };
        // Never through a symlink planted in the task's directory (see af_spool::beneath).
        let create = |p: &PathBuf| {
            let flags = nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_TRUNC;
            af_spool::beneath::open(p, flags, 0o600, "create").map_err(|e| e.to_string())
        };
        let stdin = if stdin_task {
            let mut f = create(&r.files[0])?;
            f.write_all(&serde_json::to_vec(&r.message).unwrap_or_default())
                .and_then(|()| f.rewind())
                .map_err(|e| format!("cannot write {}: {e}", r.files[0].display()))?;
            Stdio::from(f)
        } else {
            Stdio::null()
        };
        let mut cmd = agent_command(&self.spool, &self.id, &self.config, &argv, limits)?;
        cmd.env("AF_TASK_ID", &r.message.id).stdin(stdin).stdout(create(&r.files[1])?).stderr(create(&r.files[2])?);
        match cmd.spawn() {
            // af-wrap reaps every child itself with waitpid(-1).
            Ok(child) => Ok(child.id()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("program '{}' not found", argv[0])),
            Err(e) => Err(format!("cannot run '{}': {e}", argv[0])),
        }
    }

    /// Called for every reaped child; true when it was one of our tasks.
    pub fn on_exit(&mut self, pid: u32, ended: Ended) -> bool {
        let Some(i) = self.running.iter().position(|r| r.pid == pid) else { return false };
        let r = self.running.swap_remove(i);
        // A slot is free: look at the queues at once.
        self.next_scan = Instant::now();
        if self.stopping {
            // Unfinished: back to its queue, not a failed attempt.
            let _ = self.queues[r.queue].release(&r.receipt);
            tracing::info!(task = %r.message.id, "task given back to its queue (stopping)");
        } else {
            self.report(&r, Some(ended), None);
        }
        for f in &r.files {
            let _ = std::fs::remove_file(f);
        }
        true
    }

    /// Acks a finished task, answers its reply-to and publishes the result.
    fn report(&mut self, r: &Running, ended: Option<Ended>, error: Option<String>) {
        let (code, signal) = match ended {
            Some(Ended::Code(c)) => (Some(c), None),
            Some(Ended::Signal(s)) => (None, Some(s)),
            None => (None, None),
        };
        let stdout = read_limited(&r.files[1], STDOUT_MAX, false);
        let stdout_value =
            serde_json::from_str::<serde_json::Value>(&stdout).unwrap_or(serde_json::Value::String(stdout));
        let mut result = serde_json::json!({
            "taskId": r.message.id,
            "agent": self.id,
            "ok": code == Some(0),
            "exitCode": code,
            "signal": signal,
            "timedOut": r.timed_out,
            "durationMs": r.started.elapsed().as_millis() as u64,
            "stdout": stdout_value,
            "stderrTail": read_limited(&r.files[2], STDERR_TAIL, true),
        });
        if let Some(e) = error {
            result["error"] = e.into();
        }
        self.done += 1;
        if let Err(e) = self.queues[r.queue].ack_receipt(&r.receipt) {
            tracing::warn!(task = %r.message.id, "cannot ack: {e}");
        }
        send_result(&self.spool, &self.id, &r.message, result);
    }

    /// Stops taking tasks and asks the running ones to end (SIGTERM, then SIGCONT so a paused
    /// one can). What they had claimed goes back to its queue as each ends.
    pub fn stop(&mut self) {
        self.stopping = true;
        for r in &self.running {
            let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGTERM);
            let _ = killpg(Pid::from_raw(r.pid as i32), Signal::SIGCONT);
        }
    }
}

/// Answers a finished task (claude-code turns too): the result goes as a response to the task's
/// reply-to queue, and is published on [`RESULTS_TOPIC`].
pub(crate) fn send_result(spool: &Spool, id: &AgentId, task: &Message, result: serde_json::Value) {
    let from = id.as_str();
    if let Some(reply_to) = &task.reply_to {
        let sent = Address::resolve(spool, reply_to)
            .and_then(|a| af_ops::bus::post(spool, task.response(from, result.clone()), &Target::Queue(a), true));
        if let Err(e) = sent {
            tracing::warn!(task = %task.id, "cannot answer {reply_to}: {e}");
        }
    }
    let mut event = Message::new(from, Kind::Event, Priority::Normal, result);
    event.topic = Some(RESULTS_TOPIC.into());
    event.correlation_id = Some(task.id.clone());
    if let Err(e) = af_ops::bus::post(spool, event, &Target::Topic, true) {
        tracing::warn!(task = %task.id, "cannot publish the result: {e}");
    }
}

/// The agent's process (or a task's): the config's environment and secrets (read now; Err
/// names one that cannot be) and working directory, the agent's identity in `AF_*` variables,
/// its own process group, the resource limits.
pub(crate) fn agent_command(
    spool: &Spool,
    id: &AgentId,
    config: &AgentConfig,
    argv: &[String],
    limits: &Limits,
) -> Result<Command, String> {
    let secrets = crate::secrets::load(config)?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(&config.environment)
        .envs(secrets)
        .env_remove(af_ops::secrets::HANDOFF_VAR)
        .env("AF_AGENT_ID", id.as_str())
        .env("AF_HOME", spool.root())
        .env("AF_PROJECT_ID", &config.project_id)
        .env("AF_AGENT_TYPE", config.kind.as_str())
        .process_group(0);
    if let Some(dir) = &config.workdir {
        cmd.current_dir(dir);
    }
    limits.apply_to(&mut cmd);
    Ok(cmd)
}

/// Gives back the claims of tasks a previous af-wrap of this agent was running when it died (a
/// failed attempt each), and removes their files.
pub(crate) fn recover(dir: &std::path::Path, queues: &[Queue]) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "claim") {
            if let Ok(Some(r)) = atomic::read_json::<ClaimRecord>(&path) {
                if let Some(q) = queues.get(r.queue) {
                    match q.give_back(&r.receipt, true) {
                        Ok(true) => tracing::info!(receipt = %r.receipt, "claim of an interrupted task given back"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!("cannot give back {}: {e}", r.receipt),
                    }
                }
            }
        }
        if !entry.file_name().to_str().is_some_and(|n| n.starts_with('.')) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Up to `max` bytes of a file, from its start or (with `tail`) its end, as text.
fn read_limited(path: &PathBuf, max: u64, tail: bool) -> String {
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    if tail {
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    }
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim_end().to_owned()
}
