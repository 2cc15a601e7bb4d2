//! Streaming print mode: the CLI's stdin takes one JSON line per user turn (or control request),
//! its stdout gives the stream read here: the session's init, the model's messages, one `result`
//! per turn, the answers to control requests.

use super::source::Claimed;
use super::stream::{self, Line, TurnResult};
use super::{Driver, MAX_ATTEMPTS, Turn, cwd, interactive, prompt, ratelimit, say};
use af_spool::claude::{self, AccountLimit, Conversation};
use af_spool::eventlog;
use af_spool::health::AlertLevel;
use af_spool::record::Event;
use af_spool::time::Timestamp;
use std::io::Write;
use std::time::{Duration, Instant};

impl Driver {
    pub(super) fn start_turn(&mut self, claimed: Claimed) {
        let text = prompt::prompt_of(&claimed.message.payload);
        let line = serde_json::json!({"type": "user", "message": {"role": "user", "content": text}});
        say(&format!(
            "▶ task {} ({}): {}",
            claimed.message.id,
            claimed.message.priority.as_str(),
            stream::clip(&text, 120)
        ));
        // A failed write means the CLI is going: its exit sends the task again or answers it.
        self.write_line(&line);
        self.limiter.record();
        eventlog::record(
            &self.spool,
            Event::new("agent.task.started", Some(&self.id), serde_json::json!({"task": claimed.message.id})),
        );
        self.turn = Some(Turn::new(claimed));
        self.save(|s| s.activity = Some("busy".into()));
    }

    fn write_line(&mut self, value: &serde_json::Value) -> bool {
        let Some(stdin) = self.stdin.as_mut() else { return false };
        let mut bytes = value.to_string().into_bytes();
        bytes.push(b'\n');
        match stdin.write_all(&bytes).and_then(|()| stdin.flush()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("cannot write to the CLI: {e}");
                self.stdin = None;
                false
            }
        }
    }

    /// Interrupts the running turn (a `control_request` of subtype `interrupt`).
    pub fn interrupt(&mut self) -> Result<(), String> {
        self.interrupt_for("interrupted")
    }

    pub(super) fn interrupt_for(&mut self, why: &'static str) -> Result<(), String> {
        if self.pane.is_some() {
            return self.interrupt_interactive(why);
        }
        if self.turn.is_none() {
            return Err("no turn is running".into());
        }
        self.requests += 1;
        let req = serde_json::json!({"type": "control_request", "request_id": format!("af-{}", self.requests),
            "request": {"subtype": "interrupt"}});
        if !self.write_line(&req) {
            return Err("the CLI is not running".into());
        }
        if let Some(t) = &mut self.turn {
            t.interrupted = Some(why);
        }
        say(&format!("interrupting the turn ({why})"));
        Ok(())
    }

    /// The CLI exited: whatever it printed last is read, a turn it left unfinished is sent again
    /// (after a pause that grows with each crash) or, after too many attempts, answered.
    /// The CLI ended (`how`, in words). `Some(reason)` when an interactive CLI ended before its
    /// first prompt: a restart by af-wrap would fail the same way, so the agent itself has crashed
    /// (af-health's ladder restarts it with its backoff and limit), with a critical alert.
    pub fn cli_exited(&mut self, how: &str) -> Option<String> {
        let early = self.ended_before_prompt(how);
        self.read_output();
        self.stdin = None;
        self.stdout = None;
        self.buf.clear();
        self.cli_up = false;
        // The process's running total is spent money: it joins the base.
        self.usage.fold();
        let usage = self.usage;
        self.save(|s| s.set_usage(usage));
        if let Some(pane) = self.pane.as_mut() {
            interactive::Pane::restore_terminal();
            if let Some(claimed) = pane.forget() {
                let _ = self.queue.requeue(claimed, false);
            }
        }
        if let Some(reason) = early {
            self.alert(AlertLevel::Critical, "claude.cli", &reason);
            return Some(reason);
        }
        let how = match self.last_errors.back() {
            Some(last) => format!("{how} ({last})"),
            None => how.to_owned(),
        };
        let clean = how.starts_with("exited with code 0");
        if self.turn.is_some() || !clean {
            // Started again only after a pause that doubles with each crash: never a tight loop.
            self.crashes += 1;
            let pause = Duration::from_millis(250 << self.crashes.min(8));
            self.not_before = Some(Instant::now() + pause);
        }
        let Some(turn) = self.turn.take() else {
            say(&format!("the claude CLI {how}"));
            return None;
        };
        let task = turn.claimed.message.id.clone();
        if turn.claimed.message.attempts + 1 < MAX_ATTEMPTS && turn.interrupted.is_none() {
            self.alert(
                AlertLevel::Warning,
                "claude.cli",
                &format!("the claude CLI {how} during task {task}; sending it again"),
            );
            if let Err(e) = self.queue.requeue(turn.claimed, true) {
                tracing::warn!("cannot requeue task {task}: {e}");
            }
            self.save(|s| s.activity = Some("idle".into()));
        } else {
            let reason = format!("the claude CLI {how} during the task");
            self.answer(turn, None, true, "cli_exited", &reason);
        }
        None
    }

    /// Shows what the CLI writes on stderr in the pane, and keeps its last lines.
    fn read_errors(&mut self) {
        let Some(err) = self.stderr.as_mut() else { return };
        if crate::driver::read_available(err, &mut self.err_buf) {
            self.stderr = None;
        }
        for line in crate::driver::take_lines(&mut self.err_buf, 1 << 20) {
            let _ = writeln!(std::io::stdout(), "claude ! {line}");
            crate::driver::keep_last(&mut self.last_errors, stream::clip(&line, 300));
        }
    }

    pub(super) fn read_output(&mut self) {
        self.read_errors();
        let Some(out) = self.stdout.as_mut() else { return };
        let eof = crate::driver::read_available(out, &mut self.buf);
        for text in crate::driver::take_lines(&mut self.buf, 64 << 20) {
            match stream::parse(&text) {
                Some(line) => self.handle(line),
                None => say(&format!("claude says: {text}")),
            }
        }
        if eof {
            self.stdout = None;
        }
    }

    fn handle(&mut self, line: Line) {
        if let Some(text) = stream::render(&line) {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        match line {
            Line::Init { session_id, .. } if claude::is_uuid(&session_id) && session_id != self.conv.session_id => {
                let dir = af_ops::claude::config_dir(&self.config.environment);
                self.conv = Conversation {
                    transcript: af_ops::claude::transcript_path(&dir, &cwd(&self.config), &session_id),
                    session_id,
                };
                let conv = self.conv.clone();
                self.save(|s| s.conversation = Some(conv));
            }
            Line::Assistant { text, error, .. } => {
                if let Some(t) = &mut self.turn {
                    if error.is_some() {
                        t.error = error;
                    }
                    if !text.is_empty() {
                        t.text = text;
                    }
                }
            }
            // `allowed` events are informational: nothing changes.
            Line::RateLimit { status, resets_at, kind } if status == "rejected" => {
                if let Some(t) = &mut self.turn {
                    t.limit = Some((resets_at, kind));
                }
            }
            Line::Result(r) => self.finish_turn(r),
            _ => {}
        }
    }

    fn finish_turn(&mut self, r: TurnResult) {
        // The CLI's figures are this process's running totals: the base stays.
        self.usage.count(self.pid, r.total_cost_usd, r.tokens);
        let usage = self.usage;
        self.save(|s| s.set_usage(usage));
        let Some(turn) = self.turn.take() else {
            self.save_cost();
            return;
        };
        if r.is_error && turn.interrupted.is_none() {
            // The event's reset first, then the one the text names, then a backoff.
            let by_text = ratelimit::limit_reset(turn.error.as_deref(), &r.text, &turn.text);
            if let Some((at, _)) = &turn.limit {
                let reset = at.map(|s| Timestamp(s * 1000)).or(by_text.flatten());
                return self.wait_for_reset(turn, reset, &r.text);
            }
            if let Some(reset) = by_text {
                return self.wait_for_reset(turn, reset, &r.text);
            }
        }
        self.crashes = 0;
        self.rate_limited = 0;
        let code = if let Some(why) = turn.interrupted {
            why.to_owned()
        } else {
            turn.error
                .clone()
                .unwrap_or_else(|| if r.subtype == "success" { "error".into() } else { r.subtype.clone() })
        };
        let text = if r.text.is_empty() { turn.text.clone() } else { r.text.clone() };
        // Refused tool calls fail the task, unless the config accepts them.
        let accept = self.config.claude.as_ref().is_some_and(|c| c.accept_denials);
        let denied = !r.is_error && turn.interrupted.is_none() && !r.permission_denials.is_empty() && !accept;
        let code = if denied { "permission_denied".to_owned() } else { code };
        let failed = r.is_error || turn.interrupted.is_some() || denied;
        self.answer(turn, Some(&r), failed, &code, &text);
    }

    /// A rate or usage limit: the task goes back to the queue and the agent waits for the reset
    /// (clamped to a sane window), as do the other agents of the account (the same config dir)
    /// when the reset is known. One alert per limit, by the agent that found it.
    fn wait_for_reset(&mut self, turn: Turn, reset: Option<Timestamp>, text: &str) {
        self.rate_limited += 1;
        let now = Timestamp::now();
        let until = match reset {
            Some(r) => ratelimit::clamp_reset(r, now),
            None => {
                let base = backoff_base_ms();
                Timestamp(now.0 + (base << (self.rate_limited - 1).min(6)).min(3_600_000))
            }
        };
        let task = turn.claimed.message.id.clone();
        let kind = turn.limit.as_ref().and_then(|(_, k)| k.clone());
        // Not the task's fault: no failed attempt.
        if let Err(e) = self.queue.requeue(turn.claimed, false) {
            tracing::warn!("cannot requeue task {task}: {e}");
        }
        let news = match reset {
            Some(_) => {
                let limit = AccountLimit {
                    config_dir: af_ops::claude::config_dir(&self.config.environment),
                    resets_at: until,
                    kind: kind.clone(),
                    agent: self.id.to_string(),
                };
                af_ops::claude::record_account_limit(&self.spool, &limit).unwrap_or_else(|e| {
                    tracing::warn!("cannot record the account's usage limit: {e}");
                    true
                })
            }
            None => true,
        };
        if news {
            let kind = kind.map(|k| format!(" {k}")).unwrap_or_default();
            self.alert(
                AlertLevel::Warning,
                "claude.ratelimit",
                &format!(
                    "usage limit{kind} ({}): waiting until {}, then task {task} is sent again",
                    stream::clip(text, 80),
                    until.rfc3339()
                ),
            );
        }
        self.wait_until(until);
    }
}

/// The first wait after a rate limit that names no reset time (`AF_CLAUDE_RETRY_BASE`, default 60s).
fn backoff_base_ms() -> u64 {
    std::env::var("AF_CLAUDE_RETRY_BASE")
        .ok()
        .and_then(|v| af_spool::human::parse_duration(&v).ok())
        .map_or(60_000, |d| d.as_millis().max(1) as u64)
}
