//! The claude-code driver: af-wrap runs the Claude Code CLI in streaming print mode, one process
//! for many turns, with a session of the agent's own (resumed after any restart). Each task
//! becomes one user turn; the turn's `result` answers the task. Cost and tokens go into the
//! agent's state; the budget and the per-minute turn limit are enforced between turns; rate and
//! usage limits make the agent wait and send the task again; errors answer the task and raise an
//! alert, never a restart loop.

mod interactive;
pub use interactive::ASKING;
mod launch;
pub mod prompt;
mod ratelimit;
pub mod source;
pub mod stream;
mod stream_mode;

use af_spool::claude::{self, Conversation, Usage};
use af_spool::health::AlertLevel;
use af_spool::record::AgentConfig;
use af_spool::time::Timestamp;
use af_spool::{AgentId, Spool};
use source::{Claimed, TaskResponse, TaskSource};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::time::{Duration, Instant};
use stream::TurnResult;

/// The checks of the alerts the driver raises; a task that succeeds closes them.
const CHECKS: [&str; 6] =
    ["claude.task", "claude.cli", "claude.timeout", "claude.ratelimit", "claude.budget", "claude.input"];

/// How many times a task is sent again after the CLI died during its turn.
const MAX_ATTEMPTS: u32 = 3;

/// How long a task's claim outlives its turn's timeout before it must be extended.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

struct Turn {
    claimed: Claimed,
    started: Instant,
    /// Why the turn was interrupted: `interrupted` (asked to), `timeout` (it ran too long).
    interrupted: Option<&'static str>,
    error: Option<String>,
    text: String,
    /// A `rate_limit_event` with status `rejected` during the turn: its reset (Unix seconds)
    /// and its kind.
    limit: Option<(Option<u64>, Option<String>)>,
}

impl Turn {
    fn new(claimed: Claimed) -> Turn {
        Turn { claimed, started: Instant::now(), interrupted: None, error: None, text: String::new(), limit: None }
    }
}

/// The driver of one agent's CLI.
pub struct Driver {
    spool: Spool,
    id: AgentId,
    config: AgentConfig,
    queue: Box<dyn TaskSource>,
    conv: Conversation,
    settings: PathBuf,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    err_buf: Vec<u8>,
    /// The CLI's last lines on stderr, for the reason when it exits.
    last_errors: std::collections::VecDeque<String>,
    buf: Vec<u8>,
    turn: Option<Turn>,
    /// What the agent spent: every earlier CLI process's figures plus the running one's.
    usage: Usage,
    /// The CLI process that runs now (whose running totals the stream reports).
    pid: u32,
    budget_alerted: bool,
    not_before: Option<Instant>,
    waiting: bool,
    rate_limited: u32,
    crashes: u32,
    spawn_error: Option<String>,
    limiter: ratelimit::Limiter,
    done: u64,
    requests: u32,
    /// Whether the CLI runs now.
    cli_up: bool,
    /// Interactive mode: the pane the CLI runs in.
    pane: Option<interactive::Pane>,
    /// af-wrap is stopping: no more tasks are claimed.
    stopping: bool,
    /// When the running turn's claim must be extended.
    renew_at: Option<Instant>,
    /// Interactive mode: the CLI waits for a person (a permission prompt, a question).
    asking: Option<interactive::Asking>,
    /// How answers, state and alerts are written.
    report: crate::driver::Reporter,
}

impl Driver {
    /// Prepares the driver: the agent's inbox (tasks claimed by a killed af-wrap are given back),
    /// the conversation (the state's, else a new session), the hooks settings file.
    pub fn new(spool: &Spool, id: &AgentId, config: &AgentConfig) -> anyhow::Result<Driver> {
        let visibility = Duration::from_millis(config.resource_limits.timeout_ms()) + CLAIM_MARGIN;
        let queue = source::Inbox::open(spool, id, visibility)?;
        let state = spool.read_state(id)?;
        let conv = match state.conversation.clone().filter(|c| claude::is_uuid(&c.session_id)) {
            Some(c) => c,
            None => {
                let session_id = af_ops::claude::new_session_id()?;
                let transcript = af_ops::claude::transcript_path(
                    &af_ops::claude::config_dir(&config.environment),
                    &cwd(config),
                    &session_id,
                );
                Conversation { session_id, transcript }
            }
        };
        let settings = launch::write_settings(spool, id)?;
        let interactive = config.claude.as_ref().is_some_and(|c| c.interactive);
        QUIET.store(interactive, std::sync::atomic::Ordering::Relaxed);
        let mut driver = Driver {
            spool: spool.clone(),
            id: id.clone(),
            config: config.clone(),
            queue: Box::new(queue),
            conv,
            settings,
            stdin: None,
            stdout: None,
            stderr: None,
            err_buf: Vec::new(),
            last_errors: Default::default(),
            buf: Vec::new(),
            turn: None,
            usage: state.usage(),
            pid: 0,
            budget_alerted: false,
            not_before: None,
            waiting: false,
            rate_limited: 0,
            crashes: 0,
            spawn_error: None,
            limiter: ratelimit::Limiter::new(spool, config),
            done: 0,
            requests: 0,
            cli_up: false,
            pane: if interactive { Some(interactive::Pane::open(spool, id)?) } else { None },
            stopping: false,
            renew_at: None,
            asking: None,
            report: crate::driver::Reporter { spool: spool.clone(), id: id.clone(), say },
        };
        // A rate limit outlives a restart: the wait goes on until its reset.
        let now = Timestamp::now();
        let until = state.waiting_until.filter(|t| t.0 > now.0);
        if let Some(t) = until {
            driver.waiting = true;
            driver.not_before = Some(Instant::now() + Duration::from_millis(t.0 - now.0));
        }
        // Whatever CLI process ran before this af-wrap is gone: its running total is spent money.
        driver.usage.fold();
        let (conv, usage) = (driver.conv.clone(), driver.usage);
        spool.update_state(id, |s| {
            s.conversation = Some(conv);
            s.set_usage(usage);
            s.activity = Some(if until.is_some() { "waiting" } else { "idle" }.into());
            s.waiting_until = until;
        })?;
        Ok(driver)
    }

    /// The CLI's argument list, program first.
    pub fn argv(&self) -> Vec<String> {
        if self.pane.is_some() {
            return launch::interactive_argv(&self.id, &self.config, &self.conv, &self.settings);
        }
        let remaining = self.config.budget_usd.map(|b| (b - self.usage.cost_usd).max(0.0));
        launch::argv(&self.id, &self.config, &self.conv, &self.settings, remaining)
    }

    /// Whether the CLI runs as its full-screen self in the pane (no pipes).
    pub fn is_interactive(&self) -> bool {
        self.pane.is_some()
    }

    /// The interactive CLI runs as `pid`: it gets the terminal.
    pub fn attached_tty(&mut self, pid: u32) {
        interactive::Pane::take_terminal(pid);
        if let Some(pane) = self.pane.as_mut() {
            pane.launched();
        }
        self.cli_up = true;
    }

    /// Variables added to the CLI's environment: af-* programs on PATH.
    pub fn env(&self) -> Vec<(String, String)> {
        crate::driver::cli_env(&self.config)
    }

    /// The CLI runs: its pipes.
    pub fn attached(&mut self, pid: u32, stdin: ChildStdin, stdout: ChildStdout, stderr: Option<ChildStderr>) {
        use std::os::fd::AsRawFd;
        let _ = nix::fcntl::fcntl(stdout.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        self.stdin = Some(stdin);
        self.stdout = Some(stdout);
        if let Some(e) = &stderr {
            let _ = nix::fcntl::fcntl(e.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        }
        self.stderr = stderr;
        self.err_buf.clear();
        self.last_errors.clear();
        self.buf.clear();
        self.cli_up = true;
        self.pid = pid;
    }

    /// The CLI could not be started: the waiting tasks are answered with the reason.
    pub fn spawn_failed(&mut self, reason: String) {
        self.fault("cli_missing", &reason);
        self.spawn_error = Some(reason);
    }

    /// Records why the driver cannot work (for af-health: a restart would not help).
    fn fault(&self, kind: &str, message: &str) {
        self.report.fault(kind, message);
    }

    /// The descriptors to poll: the queue's wake-up pipe and the CLI's output.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.queue.wake_fd()];
        fds.extend(self.pane.as_ref().map(|p| p.fd()));
        if let Some(err) = &self.stderr {
            fds.push(err.as_fd());
        }
        if let Some(out) = &self.stdout {
            fds.push(out.as_fd());
        }
        fds
    }

    /// When the driver wants to run again without being woken.
    pub fn wake_at(&self) -> Option<Instant> {
        let deadline = self.turn.as_ref().filter(|t| t.interrupted.is_none()).map(|t| t.started + self.timeout());
        let confirm = self.pane.as_ref().and_then(|p| p.deadline());
        let timers = self.not_before.into_iter().chain(self.limiter.ready_at()).chain(deadline).chain(confirm);
        timers.chain(self.renew_at).chain(self.asking_deadline()).min()
    }

    /// How long one task's turn may run (`resourceLimits.timeout`).
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.resource_limits.timeout_ms())
    }

    /// Whether the CLI should be started now: tasks wait and none can run.
    pub fn wants_cli(&mut self) -> bool {
        !self.cli_up && !self.stopping && self.turn.is_none() && self.ready() && self.queue.pending() > 0
    }

    /// af-wrap stops: no more tasks are claimed; what was claimed goes back with [`Driver::release`].
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Gives back, unfinished and not as a failed attempt, the task whose turn (or delivery) was
    /// running when af-wrap stopped.
    pub fn release(&mut self) {
        let delivery = self.pane.as_mut().and_then(|p| p.forget());
        for claimed in self.turn.take().map(|t| t.claimed).into_iter().chain(delivery) {
            self.report.give_back(self.queue.as_mut(), claimed);
        }
    }

    /// Extends the claims of the running turn and of a delivery waiting for its confirmation.
    fn keep_claims(&mut self) {
        let mut next = None;
        if let Some(t) = self.turn.as_mut() {
            next = Some(self.queue.keep_alive(&mut t.claimed));
        }
        if let Some(d) = self.pane.as_mut().and_then(|p| p.delivery_mut()) {
            let at = self.queue.keep_alive(d);
            next = Some(next.map_or(at, |n: Instant| n.min(at)));
        }
        self.renew_at = next;
    }

    /// Tasks running now (0 or 1) and answered since af-wrap started.
    pub fn counts(&self) -> (u32, u64) {
        (u32::from(self.turn.is_some()), self.done)
    }

    fn ready(&self) -> bool {
        self.not_before.is_none_or(|t| Instant::now() >= t)
    }

    /// Reads the CLI's output, answers finished turns and starts the next one.
    pub fn tick(&mut self) {
        self.queue.drain();
        self.read_output();
        self.keep_claims();
        if self.stopping {
            return;
        }
        if let Some(reason) = self.spawn_error.take() {
            self.refuse_all("cli_missing", &reason, Some(AlertLevel::Critical));
            return;
        }
        if self.waiting && self.ready() {
            self.waiting = false;
            self.not_before = None;
            self.report.wait_over("rate limit");
        }
        if let Some(t) = self.turn.as_ref().filter(|t| t.interrupted.is_none()) {
            if t.started.elapsed() >= self.timeout() {
                let task = t.claimed.message.id.clone();
                let limit = self.timeout();
                if self.interrupt_for("timeout").is_ok() {
                    self.alert(
                        AlertLevel::Warning,
                        "claude.timeout",
                        &format!("task {task} ran over {limit:?}: interrupted"),
                    );
                }
            }
        }
        if self.pane.is_some() {
            return self.tick_interactive();
        }
        if self.turn.is_some() || self.stdin.is_none() || !self.ready() {
            return;
        }
        if self.queue.pending() == 0 || !self.gate_open() {
            return;
        }
        match self.queue.claim() {
            Ok(Some(claimed)) => self.start_turn(claimed),
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot claim a task: {e}"),
        }
    }

    /// The agent waits (`activity: waiting`) until `until`; its tasks stay in the inbox.
    fn wait_until(&mut self, until: Timestamp) {
        let now = Timestamp::now();
        self.waiting = true;
        self.not_before = Some(Instant::now() + Duration::from_millis(until.0.saturating_sub(now.0)));
        self.save(|s| {
            s.activity = Some("waiting".into());
            s.waiting_until = Some(until);
        });
    }

    /// Whether a turn may start now: the budget is not spent (else the waiting tasks are refused),
    /// the account is under no usage limit (else the agent waits for its reset, without a turn
    /// to fail), and the turn-rate limits allow one.
    fn gate_open(&mut self) -> bool {
        let dir = af_ops::claude::config_dir(&self.config.environment);
        if let Ok(Some(limit)) = af_ops::claude::account_limit(&self.spool, &dir) {
            say(&format!(
                "the account is under a usage limit (hit by {}): waiting until {}",
                limit.agent,
                limit.resets_at.rfc3339()
            ));
            self.wait_until(limit.resets_at);
            return false;
        }
        let spent = self.usage.cost_usd;
        if let Some(budget) = self.config.budget_usd.filter(|b| spent >= *b) {
            if self.queue.pending() > 0 {
                let reason = format!("budget spent: ${:.4} of ${budget:.2} (raise budgetUsd to continue)", spent);
                if !self.budget_alerted {
                    self.budget_alerted = true;
                    self.alert(AlertLevel::Warning, "claude.budget", &reason);
                }
                self.refuse_all("budget", &reason, None);
            }
            return false;
        }
        self.limiter.allows()
    }

    fn response(&self, task: &str, is_error: bool, code: &str, text: &str) -> TaskResponse {
        let error = is_error.then_some(code);
        TaskResponse::new(task, &self.id, error, text, self.usage.cost_usd, Some(self.conv.session_id.clone()))
    }

    fn answer(&mut self, turn: Turn, r: Option<&TurnResult>, is_error: bool, code: &str, text: &str) {
        let task = turn.claimed.message.id.clone();
        let mut response = self.response(&task, is_error, code, text);
        response.num_turns = r.map_or(0, |r| r.num_turns);
        response.permission_denials = r.map_or(Vec::new(), |r| r.permission_denials.clone());
        response.duration_ms = r.map_or(turn.started.elapsed().as_millis() as u64, |r| r.duration_ms);
        // The cost and the alert are on record before the answer is: whoever waits for the answer
        // finds them.
        self.save_cost();
        self.report.deliver(self.queue.as_mut(), turn.claimed, &response, "claude", &CHECKS);
        self.done += 1;
    }

    /// Answers every waiting task with an error.
    fn refuse_all(&mut self, code: &str, reason: &str, alert_level: Option<AlertLevel>) {
        let template = self.response("", true, code, reason);
        self.report.refuse_all(self.queue.as_mut(), &template, "claude", alert_level);
    }

    fn save_cost(&self) {
        let usage = self.usage;
        self.save(|s| {
            s.set_usage(usage);
            s.activity = Some("idle".into());
        });
    }

    fn save(&self, change: impl FnOnce(&mut af_spool::record::AgentState)) {
        self.report.save(change);
    }

    /// Raises an alert the way af-health does, and says it in the pane.
    fn alert(&self, level: AlertLevel, check: &str, message: &str) {
        self.report.alert(level, check, message);
    }
}

/// The directory the CLI runs in.
pub fn cwd(config: &AgentConfig) -> PathBuf {
    config.workdir.clone().or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| PathBuf::from("/"))
}

/// Set in interactive mode: the pane belongs to the CLI's screen, so af-wrap writes to its log only.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn say(text: &str) {
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!("{text}");
    } else {
        let _ = writeln!(std::io::stdout(), "af-wrap: {text}");
    }
}

impl crate::driver::AgentDriver for Driver {
    fn argv(&self) -> Vec<String> {
        Driver::argv(self)
    }
    fn env(&self) -> Vec<(String, String)> {
        Driver::env(self)
    }
    fn is_interactive(&self) -> bool {
        Driver::is_interactive(self)
    }
    fn attached_tty(&mut self, pid: u32) {
        Driver::attached_tty(self, pid)
    }
    fn attached(&mut self, pid: u32, stdin: ChildStdin, stdout: ChildStdout, stderr: Option<ChildStderr>) {
        Driver::attached(self, pid, stdin, stdout, stderr)
    }
    fn spawn_failed(&mut self, reason: String) {
        Driver::spawn_failed(self, reason)
    }
    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        Driver::fds(self)
    }
    fn wake_at(&self) -> Option<Instant> {
        Driver::wake_at(self)
    }
    fn wants_cli(&mut self) -> bool {
        Driver::wants_cli(self)
    }
    fn stop(&mut self) {
        Driver::stop(self)
    }
    fn release(&mut self) {
        Driver::release(self)
    }
    fn counts(&self) -> (u32, u64) {
        Driver::counts(self)
    }
    fn tick(&mut self) {
        Driver::tick(self)
    }
    fn interrupt(&mut self) -> Result<(), String> {
        Driver::interrupt(self)
    }
    fn cli_exited(&mut self, how: &str) -> Option<String> {
        Driver::cli_exited(self, how)
    }
}
