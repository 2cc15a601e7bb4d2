//! The interface between af-wrap's supervisor and the driver of an agent CLI: one implementation
//! per CLI (claude-code in `claude/`, codex in `codex/`). The supervisor starts the CLI when the
//! driver wants it ([`AgentDriver::wants_cli`], [`AgentDriver::argv`]), hands it the process's
//! pipes ([`AgentDriver::attached`]), polls the driver's descriptors, lets it work
//! ([`AgentDriver::tick`]) and tells it when the process ends ([`AgentDriver::cli_exited`]). The
//! driver takes tasks from the agent's inbox, answers them, keeps the agent's cost, tokens and
//! session in its state, and raises alerts.

use crate::claude::source::{Claimed, TaskResponse, TaskSource};
use af_spool::claude::DriverFault;
use af_spool::health::AlertLevel;
use af_spool::record::{AgentConfig, AgentState, AgentType};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Spool, eventlog};
use std::os::fd::BorrowedFd;
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::time::Instant;

/// The driver of one agent's CLI.
pub trait AgentDriver {
    /// Whether the CLI starts with af-wrap (claude-code: one process for many turns), or only
    /// when a task needs it (codex: one process per task).
    fn starts_at_once(&self) -> bool {
        true
    }
    /// The CLI's argument list, program first, for the process to start now.
    fn argv(&self) -> Vec<String>;
    /// Variables added to the CLI's environment.
    fn env(&self) -> Vec<(String, String)>;
    /// Whether the CLI runs as its full-screen self in the pane (no pipes).
    fn is_interactive(&self) -> bool {
        false
    }
    /// The interactive CLI runs as `pid`.
    fn attached_tty(&mut self, _pid: u32) {}
    /// The CLI runs as `pid`: its pipes.
    fn attached(&mut self, pid: u32, stdin: ChildStdin, stdout: ChildStdout, stderr: Option<ChildStderr>);
    /// The CLI could not be started: the waiting tasks are answered with the reason.
    fn spawn_failed(&mut self, reason: String);
    /// The descriptors to poll.
    fn fds(&self) -> Vec<BorrowedFd<'_>>;
    /// When the driver wants to run again without being woken.
    fn wake_at(&self) -> Option<Instant>;
    /// Whether the CLI should be started now.
    fn wants_cli(&mut self) -> bool;
    /// af-wrap stops: no more tasks are claimed.
    fn stop(&mut self);
    /// Gives back, unfinished, the task that was running when af-wrap stopped.
    fn release(&mut self);
    /// Tasks running now and answered since af-wrap started.
    fn counts(&self) -> (u32, u64);
    /// Reads the CLI's output, answers finished turns and starts the next one.
    fn tick(&mut self);
    /// Interrupts the running turn (its task is answered `interrupted`).
    fn interrupt(&mut self) -> Result<(), String>;
    /// The CLI process ended (`how`: "exited with code N", "was killed by signal N"). Some(why)
    /// when that is the agent's crash (an interactive CLI that ended before its prompt): the
    /// agent then ends failed, for af-health's ladder; None when the CLI is simply started again
    /// when a task needs it.
    fn cli_exited(&mut self, how: &str) -> Option<String>;
}

/// The driver of an agent of `config`'s type, if the type has one.
pub fn open(spool: &Spool, id: &AgentId, config: &AgentConfig) -> anyhow::Result<Option<Box<dyn AgentDriver>>> {
    Ok(match config.kind {
        AgentType::ClaudeCode => Some(Box::new(crate::claude::Driver::new(spool, id, config)?)),
        AgentType::Codex => Some(Box::new(crate::codex::Driver::new(spool, id, config)?)),
        AgentType::Worker | AgentType::Monitor => None,
    })
}

/// The program a driven agent runs when its config names none.
pub fn default_program(kind: AgentType) -> Option<&'static str> {
    match kind {
        AgentType::ClaudeCode => Some("claude"),
        AgentType::Codex => Some("codex"),
        AgentType::Worker | AgentType::Monitor => None,
    }
}

/// Variables added to a driven CLI's environment: the af-* programs on PATH (the config's own
/// PATH wins).
pub fn cli_env(config: &AgentConfig) -> Vec<(String, String)> {
    let mut path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.display().to_string())) {
        path = format!("{dir}:{path}");
    }
    vec![("PATH".to_owned(), config.environment.get("PATH").cloned().unwrap_or(path))]
}

/// Reads what the non-blocking `r` has into `buf`; true at its end.
pub fn read_available(r: &mut impl std::io::Read, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Drains the complete lines of `buf` (trimmed, empty ones dropped); a buffer grown past `max`
/// bytes without a line end is dropped.
pub fn take_lines(buf: &mut Vec<u8>, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
        let raw: Vec<u8> = buf.drain(..=pos).collect();
        let line = String::from_utf8_lossy(&raw).trim().to_owned();
        if !line.is_empty() {
            lines.push(line);
        }
    }
    if buf.len() > max {
        buf.clear();
    }
    lines
}

/// Keeps `line` as the newest of at most five.
pub fn keep_last(lines: &mut std::collections::VecDeque<String>, line: String) {
    if lines.len() == 5 {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// The tally key of a driver's turns: `turn` for claude (`agentflow_claude_turns_total`, as it
/// always was), `<prefix>-turn` for the others (`codex-turn`: `agentflow_codex_turns_total`).
pub fn turn_tally_key(prefix: &str) -> String {
    if prefix == "claude" { "turn".to_owned() } else { format!("{prefix}-turn") }
}

/// A turn's outcome as a bounded label value: at most 40 characters, lower-case letters, digits
/// and `_`.
fn outcome_label(outcome: &str) -> String {
    outcome
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' })
        .collect()
}

/// How a driver answers tasks, keeps the agent's state and raises alerts, whatever its CLI.
#[derive(Clone)]
pub struct Reporter {
    /// The spool.
    pub spool: Spool,
    /// The agent.
    pub id: AgentId,
    /// How the driver speaks in the pane.
    pub say: fn(&str),
}

impl Reporter {
    /// Changes the agent's state (a failure is logged).
    pub fn save(&self, change: impl FnOnce(&mut AgentState)) {
        if let Err(e) = self.spool.update_state(&self.id, change) {
            tracing::warn!("cannot write state: {e}");
        }
    }

    /// Raises an alert the way af-health does (open alert, alerts.log, event log, bus topics
    /// `health.<agent>` and `agent.unhealthy`, alert.d hooks), and says it in the pane.
    pub fn alert(&self, level: AlertLevel, check: &str, message: &str) {
        (self.say)(&format!("ALERT {}: {message}", level.as_str()));
        let raised = af_ops::alert::raise(&self.spool, &self.id, level, check, message, af_ops::alert::Hooks::Detach);
        if let Err(e) = raised {
            tracing::warn!("cannot raise the {check} alert: {e}");
        }
    }

    /// A wait for a limit is over: the agent is idle again.
    pub fn wait_over(&self, what: &str) {
        (self.say)(&format!("{what} over: resuming"));
        self.save(|s| {
            s.activity = Some("idle".into());
            s.waiting_until = None;
        });
    }

    /// Records why the driver cannot work (for af-health: a restart would not help).
    pub fn fault(&self, kind: &str, message: &str) {
        let fault = DriverFault { kind: kind.to_owned(), message: message.to_owned() };
        self.save(|s| s.driver_fault = Some(fault));
    }

    /// A task succeeded: whatever the driver's open alerts (`checks`) were about is over (a
    /// recovery each), and so is its fault.
    pub fn all_clear(&self, task: &str, checks: &[&str]) {
        self.save(|s| s.driver_fault = None);
        for check in checks {
            if self.spool.open_alert_path(&self.id, check).exists() {
                self.alert(AlertLevel::Recovery, check, &format!("{check} recovered: task {task} succeeded"));
            }
        }
    }

    /// Sends a turn's answer: the turn is counted in the spool's tally by outcome (`success`, or
    /// the error code) under [`turn_tally_key`] of `prefix`; a failure raises `<prefix>.task`
    /// (critical, and the driver's fault, when a restart cannot help: `authentication_failed`,
    /// `cli_missing`), a success closes `checks`; the answer is logged, sent to whoever asked and
    /// published.
    pub fn deliver(
        &self,
        queue: &mut dyn TaskSource,
        claimed: Claimed,
        response: &TaskResponse,
        prefix: &str,
        checks: &[&str],
    ) {
        let task = claimed.message.id.clone();
        // Counted before the answer goes: whoever waits for the answer finds the turn counted.
        let outcome = response.error.as_deref().filter(|_| response.is_error).unwrap_or("success");
        self.spool.tally().add(&[format!("{}:{}", turn_tally_key(prefix), outcome_label(outcome))]);
        match response.error.as_deref().filter(|_| response.is_error) {
            Some(code) => {
                let critical = code == "authentication_failed" || code == "cli_missing";
                if critical {
                    self.fault(code, &response.result);
                }
                let level = if critical { AlertLevel::Critical } else { AlertLevel::Warning };
                let text = crate::claude::stream::clip(&response.result, 200);
                self.alert(level, &format!("{prefix}.task"), &format!("task {task} failed ({code}): {text}"));
            }
            None => self.all_clear(&task, checks),
        }
        let detail = serde_json::to_value(response).unwrap_or_default();
        eventlog::record(&self.spool, af_spool::record::Event::new("agent.task.done", Some(&self.id), detail));
        if let Err(e) = queue.respond(claimed, response) {
            tracing::warn!("cannot answer task {task}: {e}");
        }
    }

    /// Answers every waiting task with the error `code` (`template` gives the rest of each
    /// answer), alerting `<prefix>.task` at `level` when given.
    pub fn refuse_all(
        &self,
        queue: &mut dyn TaskSource,
        template: &TaskResponse,
        prefix: &str,
        level: Option<AlertLevel>,
    ) {
        let (code, reason) = (template.error.clone().unwrap_or_default(), template.result.clone());
        while let Ok(Some(claimed)) = queue.claim() {
            let task = claimed.message.id.clone();
            let response = TaskResponse { task_id: task.clone(), time: Timestamp::now(), ..template.clone() };
            if let Some(level) = level {
                self.alert(level, &format!("{prefix}.task"), &format!("task {task} refused ({code}): {reason}"));
            }
            (self.say)(&format!("✗ task {task} refused: {reason}"));
            if let Err(e) = queue.respond(claimed, &response) {
                tracing::warn!("cannot answer task {task}: {e}");
                break;
            }
        }
    }

    /// Gives a claimed task back to the inbox, unfinished and not as a failed attempt (af-wrap
    /// stops).
    pub fn give_back(&self, queue: &mut dyn TaskSource, claimed: Claimed) {
        let task = claimed.message.id.clone();
        match queue.requeue(claimed, false) {
            Ok(()) => (self.say)(&format!("task {task} given back to the inbox (stopping)")),
            Err(e) => tracing::warn!("cannot give back task {task}: {e}"),
        }
    }
}
