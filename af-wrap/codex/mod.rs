//! The codex driver: af-wrap runs OpenAI's Codex CLI once per task, `codex exec --json -` with
//! the task's prompt on stdin, and `codex exec resume --json <SESSION> -` for every later task,
//! so that the agent keeps one session (the CLI's thread) across tasks and restarts. The turn's
//! last `agent_message` answers the task; `turn.completed` gives its tokens, `turn.failed` its
//! error. The CLI reports tokens, not money: `codex.maxTokens` is the agent's budget, checked
//! before each task. Errors answer the task and raise an alert (`codex.*`), never a restart loop.

mod events;

use crate::claude::source::{self, Claimed, TaskResponse, TaskSource};
use crate::claude::{prompt, stream::clip};
use crate::driver::AgentDriver;
use af_spool::claude::{self as records, Conversation, Usage};
use af_spool::health::AlertLevel;
use af_spool::record::{AgentConfig, Event};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Spool, eventlog};
use events::Event as Line;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::time::{Duration, Instant};

/// The checks of the alerts the driver raises; a task that succeeds closes them.
const CHECKS: [&str; 5] = ["codex.task", "codex.cli", "codex.timeout", "codex.ratelimit", "codex.budget"];

/// How many times a task is sent again after the CLI died during its turn.
const MAX_ATTEMPTS: u32 = 3;

/// How long a task's claim outlives its turn's timeout before it must be extended.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

/// How long an interrupted CLI gets to end its turn (after SIGINT) before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// What the CLI says on stderr when `resume` names a session it does not have.
const NO_SESSION: &str = "no rollout found for thread id";

/// What AgentFlow tells the model at the start of each new session.
fn preamble(id: &AgentId, config: &AgentConfig) -> String {
    format!(
        "(AgentFlow: you are agent '{id}' in project '{}'. Other agents are reachable with the af-bus \
program on PATH: `af-bus request --to AGENT --timeout 540 '\"TEXT\"'` gives one a task and prints its \
answer as JSON; `af-spawn ls` lists them. Your final message answers the task below.)\n\n",
        config.project_id
    )
}

struct Turn {
    claimed: Claimed,
    started: Instant,
    /// Why the turn was interrupted: `interrupted` (asked to), `timeout` (it ran too long); and
    /// when the CLI is killed if it has not ended by then.
    interrupted: Option<(&'static str, Instant)>,
    /// The last agent message.
    text: String,
    /// The last notice (an `error` event or an `error` item).
    notice: Option<String>,
    /// How the turn ended: `Ok` (turn.completed) or the failure (turn.failed).
    end: Option<Result<(), String>>,
}

/// The driver of one codex agent's CLI.
pub struct Driver {
    spool: Spool,
    id: AgentId,
    config: AgentConfig,
    queue: Box<dyn TaskSource>,
    /// The session (None until the CLI started one).
    conv: Option<Conversation>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    buf: Vec<u8>,
    err_buf: Vec<u8>,
    /// The CLI's last lines on stderr, for the reason when it exits.
    last_errors: std::collections::VecDeque<String>,
    turn: Option<Turn>,
    usage: Usage,
    pid: u32,
    cli_up: bool,
    not_before: Option<Instant>,
    waiting: bool,
    rate_limited: u32,
    crashes: u32,
    spawn_error: Option<String>,
    budget_alerted: bool,
    done: u64,
    stopping: bool,
    renew_at: Option<Instant>,
    report: crate::driver::Reporter,
}

impl Driver {
    /// Prepares the driver: the agent's inbox (tasks claimed by a killed af-wrap are given back)
    /// and the session the state names, if any.
    pub fn new(spool: &Spool, id: &AgentId, config: &AgentConfig) -> anyhow::Result<Driver> {
        let visibility = Duration::from_millis(config.resource_limits.timeout_ms()) + CLAIM_MARGIN;
        let queue = source::Inbox::open(spool, id, visibility)?;
        let state = spool.read_state(id)?;
        let conv = state.conversation.clone().filter(|c| records::is_uuid(&c.session_id));
        let mut usage = state.usage();
        // Whatever CLI process ran before this af-wrap is gone: its figures are spent.
        usage.fold();
        spool.update_state(id, |s| {
            s.set_usage(usage);
            s.activity = Some("idle".into());
            s.waiting_until = None;
        })?;
        Ok(Driver {
            spool: spool.clone(),
            id: id.clone(),
            config: config.clone(),
            queue: Box::new(queue),
            conv,
            stdout: None,
            stderr: None,
            buf: Vec::new(),
            err_buf: Vec::new(),
            last_errors: Default::default(),
            turn: None,
            usage,
            pid: 0,
            cli_up: false,
            not_before: None,
            waiting: false,
            rate_limited: 0,
            crashes: 0,
            spawn_error: None,
            budget_alerted: false,
            done: 0,
            stopping: false,
            renew_at: None,
            report: crate::driver::Reporter { spool: spool.clone(), id: id.clone(), say },
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.resource_limits.timeout_ms())
    }

    fn ready(&self) -> bool {
        self.not_before.is_none_or(|t| Instant::now() >= t)
    }

    fn save(&self, change: impl FnOnce(&mut af_spool::record::AgentState)) {
        self.report.save(change);
    }

    fn alert(&self, level: AlertLevel, check: &str, message: &str) {
        self.report.alert(level, check, message);
    }

    /// Tokens spent over every turn: input, cached input and output.
    fn tokens_spent(&self) -> u64 {
        let t = self.usage.tokens;
        t.input + t.cache_read + t.output
    }

    fn response(&self, task: &str, error: Option<&str>, text: &str) -> TaskResponse {
        let session = self.conv.as_ref().map(|c| c.session_id.clone());
        TaskResponse::new(task, &self.id, error, text, self.usage.cost_usd, session)
    }

    /// Answers a turn's task: `error` None for success.
    fn answer(&mut self, turn: Turn, error: Option<&str>, text: &str) {
        let task = turn.claimed.message.id.clone();
        let mut response = self.response(&task, error, text);
        response.num_turns = u32::from(turn.end.is_some());
        response.duration_ms = turn.started.elapsed().as_millis() as u64;
        let usage = self.usage;
        self.save(|s| {
            s.set_usage(usage);
            s.activity = Some("idle".into());
        });
        say(&format!("{} task {task} answered", if error.is_some() { "✗" } else { "✓" }));
        self.report.deliver(self.queue.as_mut(), turn.claimed, &response, "codex", &CHECKS);
        self.done += 1;
    }

    /// Answers every waiting task with an error.
    fn refuse_all(&mut self, code: &str, reason: &str, level: Option<AlertLevel>) {
        let template = self.response("", Some(code), reason);
        self.report.refuse_all(self.queue.as_mut(), &template, "codex", level);
    }

    /// Whether a task may start now: the token budget is not spent (else the waiting tasks are
    /// refused).
    fn gate_open(&mut self) -> bool {
        let spent = self.tokens_spent();
        let Some(max) = self.config.codex.as_ref().and_then(|c| c.max_tokens).filter(|m| spent >= *m) else {
            return true;
        };
        let reason = format!("token budget spent: {spent} of {max} tokens (raise codex.maxTokens to continue)");
        if !self.budget_alerted {
            self.budget_alerted = true;
            self.alert(AlertLevel::Warning, "codex.budget", &reason);
        }
        self.refuse_all("budget", &reason, None);
        false
    }

    fn keep_claims(&mut self) {
        self.renew_at = self.turn.as_mut().map(|t| self.queue.keep_alive(&mut t.claimed));
    }

    fn read_output(&mut self) {
        use crate::driver::{keep_last, read_available, take_lines};
        if let Some(err) = self.stderr.as_mut() {
            if read_available(err, &mut self.err_buf) {
                self.stderr = None;
            }
            for line in take_lines(&mut self.err_buf, 1 << 20) {
                say(&format!("codex ! {}", clip(&line, 300)));
                keep_last(&mut self.last_errors, clip(&line, 300));
            }
        }
        let Some(out) = self.stdout.as_mut() else { return };
        if read_available(out, &mut self.buf) {
            self.stdout = None;
        }
        for text in take_lines(&mut self.buf, 64 << 20) {
            match events::parse(&text) {
                Some(e) => self.handle(e),
                None => say(&format!("codex says: {text}")),
            }
        }
    }

    fn handle(&mut self, e: Line) {
        if let Some(text) = events::render(&e) {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        let Some(t) = self.turn.as_mut() else { return };
        match e {
            Line::ThreadStarted(thread) => {
                let home = af_ops::codex::home(&self.config.environment);
                let transcript = af_ops::codex::rollout_path(&home, &thread).unwrap_or_default();
                let conv = Conversation { session_id: thread, transcript };
                self.conv = Some(conv.clone());
                self.save(|s| s.conversation = Some(conv));
            }
            Line::Item { kind, text } if kind == "agent_message" => t.text = text,
            Line::Item { kind, text } if kind == "error" => t.notice = Some(text),
            Line::Notice(m) => t.notice = Some(m),
            Line::TurnCompleted(tokens) => {
                t.end = Some(Ok(()));
                self.usage.count(self.pid, None, Some(tokens));
                let usage = self.usage;
                self.save(|s| s.set_usage(usage));
            }
            Line::TurnFailed(m) => t.end = Some(Err(m)),
            _ => {}
        }
    }

    /// The turn's process ended: its task is answered, sent again, or waits for a limit.
    fn end_turn(&mut self, turn: Turn, how: &str) {
        let task = turn.claimed.message.id.clone();
        if let Some(conv) = self.conv.as_mut().filter(|c| !c.transcript.is_file()) {
            // The rollout file is written as the turn goes: known by now if the CLI kept one.
            let home = af_ops::codex::home(&self.config.environment);
            if let Some(p) = af_ops::codex::rollout_path(&home, &conv.session_id) {
                conv.transcript = p;
                let conv = conv.clone();
                self.save(|s| s.conversation = Some(conv));
            }
        }
        if let Some((why, _)) = turn.interrupted {
            let text =
                if turn.text.is_empty() { format!("the turn was interrupted ({why})") } else { turn.text.clone() };
            return self.answer(turn, Some(why), &text);
        }
        match turn.end.clone() {
            Some(Ok(())) => {
                self.crashes = 0;
                self.rate_limited = 0;
                let text = turn.text.clone();
                self.answer(turn, None, &text)
            }
            Some(Err(message)) => match events::classify(&message) {
                "rate_limit" => self.wait_for_limit(turn, &message),
                code => self.answer(turn, Some(code), &message),
            },
            None if self.last_errors.iter().any(|l| l.contains(NO_SESSION)) => {
                // The session is gone (a fresh CODEX_HOME, say): the task goes again in a new one.
                let lost = self.conv.take().map(|c| c.session_id).unwrap_or_default();
                self.save(|s| s.conversation = None);
                self.alert(
                    AlertLevel::Warning,
                    "codex.cli",
                    &format!("the codex CLI has no session {lost}: task {task} goes to a new session"),
                );
                self.requeue(turn, false);
            }
            None => {
                self.crashes += 1;
                self.not_before = Some(Instant::now() + Duration::from_millis(250 << self.crashes.min(8)));
                if turn.claimed.message.attempts + 1 < MAX_ATTEMPTS {
                    self.alert(
                        AlertLevel::Warning,
                        "codex.cli",
                        &format!("the codex CLI {how} during task {task}; sending it again"),
                    );
                    self.requeue(turn, true);
                } else {
                    let reason = format!("the codex CLI {how} during the task");
                    self.answer(turn, Some("cli_exited"), &reason);
                }
            }
        }
    }

    fn requeue(&mut self, turn: Turn, failed: bool) {
        let task = turn.claimed.message.id.clone();
        if let Err(e) = self.queue.requeue(turn.claimed, failed) {
            tracing::warn!("cannot requeue task {task}: {e}");
        }
        self.save(|s| s.activity = Some("idle".into()));
    }

    /// A usage or rate limit: the task goes back and the agent waits, 60 s doubling to an hour
    /// (`AF_CODEX_RETRY_BASE`), since the CLI names no reset time af-wrap can rely on.
    fn wait_for_limit(&mut self, turn: Turn, message: &str) {
        self.rate_limited += 1;
        let base = std::env::var("AF_CODEX_RETRY_BASE")
            .ok()
            .and_then(|v| af_spool::human::parse_duration(&v).ok())
            .map_or(60_000, |d| d.as_millis().max(1) as u64);
        let wait = (base << (self.rate_limited - 1).min(6)).min(3_600_000);
        let until = Timestamp(Timestamp::now().0 + wait);
        let task = turn.claimed.message.id.clone();
        self.requeue(turn, false);
        self.alert(
            AlertLevel::Warning,
            "codex.ratelimit",
            &format!(
                "usage limit ({}): waiting until {}, then task {task} is sent again",
                clip(message, 80),
                until.rfc3339()
            ),
        );
        self.waiting = true;
        self.not_before = Some(Instant::now() + Duration::from_millis(wait));
        self.save(|s| {
            s.activity = Some("waiting".into());
            s.waiting_until = Some(until);
        });
    }

    fn interrupt_for(&mut self, why: &'static str) -> Result<(), String> {
        let Some(t) = self.turn.as_mut().filter(|_| self.cli_up) else { return Err("no turn is running".into()) };
        t.interrupted = Some((why, Instant::now() + INTERRUPT_GRACE));
        signal(self.pid, nix::sys::signal::Signal::SIGINT);
        say(&format!("interrupting the turn ({why})"));
        Ok(())
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    if pid > 0 {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
    }
}

fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "af-wrap: {text}");
}

fn nonblocking(fd: &impl AsRawFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
}

impl AgentDriver for Driver {
    fn starts_at_once(&self) -> bool {
        false
    }

    /// `codex exec [resume] --json --skip-git-repo-check [-m MODEL] [-c ...] [SESSION] -`: the
    /// prompt comes on stdin (no argument-length limit).
    fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = self.config.command.clone().unwrap_or_else(|| vec!["codex".into()]);
        a.push("exec".into());
        if self.conv.is_some() {
            a.push("resume".into());
        }
        a.extend(["--json".into(), "--skip-git-repo-check".into()]);
        let c = self.config.codex.clone().unwrap_or_default();
        if let Some(m) = c.model {
            a.extend(["--model".into(), m]);
        }
        if let Some(s) = c.sandbox {
            a.extend(["-c".into(), format!("sandbox_mode=\"{s}\"")]);
        }
        for kv in c.config {
            a.extend(["-c".into(), kv]);
        }
        if let Some(conv) = &self.conv {
            a.push(conv.session_id.clone());
        }
        a.push("-".into());
        a
    }

    fn env(&self) -> Vec<(String, String)> {
        crate::driver::cli_env(&self.config)
    }

    /// The CLI runs: the task's prompt goes to its stdin, which is then closed.
    fn attached(&mut self, pid: u32, mut stdin: ChildStdin, stdout: ChildStdout, stderr: Option<ChildStderr>) {
        nonblocking(&stdout);
        if let Some(e) = &stderr {
            nonblocking(e);
        }
        self.stdout = Some(stdout);
        self.stderr = stderr;
        self.buf.clear();
        self.err_buf.clear();
        self.last_errors.clear();
        self.cli_up = true;
        self.pid = pid;
        let Some(t) = self.turn.as_mut() else { return };
        t.started = Instant::now();
        let mut text = prompt::prompt_of(&t.claimed.message.payload);
        say(&format!(
            "▶ task {} ({}): {}",
            t.claimed.message.id,
            t.claimed.message.priority.as_str(),
            clip(&text, 120)
        ));
        if self.conv.is_none() {
            text = preamble(&self.id, &self.config) + &text;
        }
        // A failed write means the CLI is going: its exit sends the task again or answers it.
        if let Err(e) = stdin.write_all(text.as_bytes()) {
            tracing::warn!("cannot write the prompt to the codex CLI: {e}");
        }
        drop(stdin);
        let task = t.claimed.message.id.clone();
        eventlog::record(
            &self.spool,
            Event::new("agent.task.started", Some(&self.id), serde_json::json!({"task": task})),
        );
        self.save(|s| s.activity = Some("busy".into()));
    }

    fn spawn_failed(&mut self, reason: String) {
        self.report.fault("cli_missing", &reason);
        if let Some(turn) = self.turn.take() {
            self.answer(turn, Some("cli_missing"), &reason);
        }
        self.spawn_error = Some(reason);
    }

    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.queue.wake_fd()];
        fds.extend(self.stderr.as_ref().map(|e| e.as_fd()));
        fds.extend(self.stdout.as_ref().map(|o| o.as_fd()));
        fds
    }

    fn wake_at(&self) -> Option<Instant> {
        let deadline = self.turn.as_ref().filter(|_| self.cli_up).map(|t| match t.interrupted {
            Some((_, kill_at)) => kill_at,
            None => t.started + self.timeout(),
        });
        self.not_before.into_iter().chain(deadline).chain(self.renew_at).min()
    }

    fn wants_cli(&mut self) -> bool {
        !self.cli_up && !self.stopping && self.turn.is_some()
    }

    fn stop(&mut self) {
        self.stopping = true;
    }

    fn release(&mut self) {
        if let Some(turn) = self.turn.take() {
            self.report.give_back(self.queue.as_mut(), turn.claimed);
        }
    }

    fn counts(&self) -> (u32, u64) {
        (u32::from(self.turn.is_some()), self.done)
    }

    fn tick(&mut self) {
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
            self.report.wait_over("usage limit");
        }
        if let Some(t) = self.turn.as_ref().filter(|_| self.cli_up) {
            match t.interrupted {
                Some((_, kill_at)) if Instant::now() >= kill_at => signal(self.pid, nix::sys::signal::Signal::SIGKILL),
                Some(_) => {}
                None if t.started.elapsed() >= self.timeout() => {
                    let (task, limit) = (t.claimed.message.id.clone(), self.timeout());
                    if self.interrupt_for("timeout").is_ok() {
                        let message = format!("task {task} ran over {limit:?}: interrupted");
                        self.alert(AlertLevel::Warning, "codex.timeout", &message);
                    }
                }
                None => {}
            }
        }
        if self.cli_up || self.turn.is_some() || !self.ready() || self.queue.pending() == 0 || !self.gate_open() {
            return;
        }
        match self.queue.claim() {
            Ok(Some(claimed)) => {
                let turn = Turn {
                    claimed,
                    started: Instant::now(),
                    interrupted: None,
                    text: String::new(),
                    notice: None,
                    end: None,
                };
                self.turn = Some(turn);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot claim a task: {e}"),
        }
    }

    fn interrupt(&mut self) -> Result<(), String> {
        self.interrupt_for("interrupted")
    }

    fn cli_exited(&mut self, how: &str) -> Option<String> {
        self.read_output();
        self.stdout = None;
        self.stderr = None;
        self.cli_up = false;
        self.usage.fold();
        let usage = self.usage;
        self.save(|s| s.set_usage(usage));
        let how = match self.last_errors.back() {
            Some(last) => format!("{how} ({last})"),
            None => how.to_owned(),
        };
        match self.turn.take() {
            Some(turn) => self.end_turn(turn, &how),
            None => say(&format!("the codex CLI {how}")),
        }
        // One process per turn: its end is never the agent's.
        None
    }
}
