//! Interactive mode (`claude.interactive`): the CLI runs as its full-screen self in the agent's
//! tmux pane, for a person to watch and type into. A task is delivered as a tmux bracketed paste
//! followed by a separate Enter, only while the CLI is idle (per its hooks) and its input line is
//! empty (per the pane), so a person's typing is never pasted over. Each delivery is confirmed by
//! the UserPromptSubmit hook and retried a bounded number of times; the Stop hook ends the turn,
//! and the answer is the transcript's last assistant message.

use super::source::Claimed;
use super::{Driver, Turn, say};
use af_ops::tmux::Tmux;
use af_spool::record::Event;
use af_spool::{Spool, eventlog};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// How many times a prompt is delivered before its task fails.
const MAX_DELIVERIES: u32 = 3;

/// The events appended to the log since the last look, followed across its rotations.
struct EventTail {
    follower: af_spool::eventlog::Follower,
    listener: af_spool::fifodir::Listener,
}

impl EventTail {
    fn open(spool: &Spool) -> af_spool::Result<EventTail> {
        // Subscribed before the follower looks at the log, so no event in between is missed.
        let listener = af_spool::fifodir::Fifodir::new(spool.events_notify_dir()).subscribe()?;
        let follower = af_spool::eventlog::Follower::open(spool, af_spool::eventlog::Start::End)?;
        Ok(EventTail { follower, listener })
    }

    fn read(&mut self) -> Vec<Event> {
        let _ = self.listener.drain();
        self.follower.events().unwrap_or_else(|e| {
            tracing::warn!("cannot read the event log: {e}");
            Vec::new()
        })
    }
}

/// A prompt pasted and not yet confirmed.
struct Delivery {
    claimed: Claimed,
    prompt: String,
    attempts: u32,
    deadline: Instant,
}

/// The agent's pane and what is known of the CLI in it.
pub struct Pane {
    tmux: Tmux,
    target: String,
    events: EventTail,
    idle: bool,
    delivery: Option<Delivery>,
    held: bool,
    confirm: Duration,
}

impl Pane {
    /// The pane af-wrap runs in (`TMUX_PANE`, else the agent's `main` window).
    pub fn open(spool: &Spool, id: &af_spool::AgentId) -> af_spool::Result<Pane> {
        let target = std::env::var("TMUX_PANE")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("{}:main", af_ops::tmux::exact(&id.session())));
        let confirm = std::env::var("AF_CLAUDE_CONFIRM")
            .ok()
            .and_then(|v| af_spool::human::parse_duration(&v).ok())
            .unwrap_or(Duration::from_secs(10));
        Ok(Pane {
            tmux: Tmux::from_env(),
            target,
            events: EventTail::open(spool)?,
            idle: false,
            delivery: None,
            held: false,
            confirm,
        })
    }

    /// The descriptor woken when the event log grows.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.events.listener.fd()
    }

    /// The CLI ended: nothing is known of it any more; an unconfirmed delivery's task is returned.
    pub fn forget(&mut self) -> Option<Claimed> {
        self.idle = false;
        self.held = false;
        self.delivery.take().map(|d| d.claimed)
    }

    /// The claim of a delivery waiting for its confirmation.
    pub fn delivery_mut(&mut self) -> Option<&mut Claimed> {
        self.delivery.as_mut().map(|d| &mut d.claimed)
    }

    /// When a delivery's confirmation is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.delivery.as_ref().map(|d| d.deadline)
    }

    fn paste(&self, text: &str) -> bool {
        let buffer = format!("af-{}", std::process::id());
        if self.tmux.run_with_input(&["load-buffer", "-b", &buffer, "-"], text.as_bytes()).is_err() {
            return false;
        }
        // -p: bracketed paste, so the CLI takes newlines in the prompt as text, not as Enter.
        self.tmux.run(&["paste-buffer", "-p", "-d", "-b", &buffer, "-t", &self.target]).is_ok()
    }

    fn key(&self, key: &str) -> bool {
        self.tmux.run(&["send-keys", "-t", &self.target, key]).is_ok()
    }

    /// What is typed in the CLI's input line, if the pane shows one.
    fn input(&self) -> Option<String> {
        let text = self.tmux.run(&["capture-pane", "-p", "-e", "-t", &self.target]).ok()?;
        input_line(&text)
    }

    /// Gives the terminal to the CLI's process group and lets it run.
    pub fn take_terminal(pid: u32) {
        let pgrp = nix::unistd::Pid::from_raw(pid as i32);
        let stdin = std::io::stdin();
        // SAFETY: ignoring SIGTTOU only changes how the kernel treats us when we, in the
        // background, give the terminal back; it runs no code of ours.
        unsafe {
            let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGTTOU, nix::sys::signal::SigHandler::SigIgn);
        }
        let _ = nix::unistd::tcsetpgrp(&stdin, pgrp);
        let _ = nix::sys::signal::killpg(pgrp, nix::sys::signal::Signal::SIGCONT);
    }

    /// Takes the terminal back after the CLI ended.
    pub fn restore_terminal() {
        let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
    }
}

/// The text typed in a Claude Code-like input line: the last line whose first visible character
/// (after box drawing and spaces) is `>` or `❯`; what follows it, without text drawn faint (SGR 2:
/// the placeholder suggestion) and without trailing box drawing. `None` when no such line shows.
pub fn input_line(capture: &str) -> Option<String> {
    capture.lines().rev().find_map(|line| {
        let mut visible = String::new();
        let mut faint = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                let mut seq = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            if d == 'm' {
                                for p in seq.split(';') {
                                    match p {
                                        "2" => faint = true,
                                        "" | "0" | "22" => faint = false,
                                        _ => {}
                                    }
                                }
                            }
                            break;
                        }
                        seq.push(d);
                    }
                }
                continue;
            }
            if !faint {
                visible.push(c);
            }
        }
        let rest = visible.trim_start_matches(|c: char| c == '│' || c == '|' || c.is_whitespace());
        let typed = rest.strip_prefix('>').or_else(|| rest.strip_prefix('❯'))?;
        Some(typed.trim_end_matches(|c: char| c == '│' || c == '|' || c.is_whitespace()).trim_start().to_owned())
    })
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The Notification types of a CLI waiting for a person: a permission prompt, a question (MCP
/// elicitation).
pub const ASKING: [&str; 2] = ["permission_prompt", "elicitation_dialog"];

/// The CLI waits for a person to answer a prompt.
pub(super) struct Asking {
    pub since: Instant,
    pub message: String,
    pub alerted: bool,
}

impl Driver {
    /// When the CLI has waited for a person long enough for a warning alert.
    pub(super) fn asking_deadline(&self) -> Option<Instant> {
        self.asking.as_ref().filter(|a| !a.alerted).map(|a| a.since + self.input_alert_after())
    }

    /// `claude.inputAlertAfter`, 5 minutes by default.
    fn input_alert_after(&self) -> Duration {
        let after = self.config.claude.as_ref().and_then(|c| c.input_alert_after.as_deref());
        after.and_then(|d| af_spool::human::parse_duration(d).ok()).unwrap_or(Duration::from_secs(300))
    }

    /// A warning alert, once, when a prompt to a person has waited too long.
    fn check_asking(&mut self) {
        if self.asking_deadline().is_none_or(|d| Instant::now() < d) {
            return;
        }
        let waited = self.input_alert_after();
        let Some(a) = self.asking.as_mut() else { return };
        a.alerted = true;
        let message = format!("the CLI has waited over {waited:?} for a person: {}", a.message);
        self.alert(af_spool::health::AlertLevel::Warning, "claude.input", &message);
    }

    /// One step of interactive mode: hook events, a pending confirmation, the next delivery.
    pub(super) fn tick_interactive(&mut self) {
        let Some(pane) = self.pane.as_mut() else { return };
        let events: Vec<Event> = pane
            .events
            .read()
            .into_iter()
            .filter(|e| e.kind == "agent.claude" && e.agent.as_ref() == Some(&self.id))
            .collect();
        for e in events {
            let name = e.detail["event"].as_str().unwrap_or_default().to_owned();
            // An oversized hook input reaches the log cut down (its long strings are prefixes).
            let cut = e.detail["truncated"] == true;
            self.on_hook(&name, &e.detail["input"], cut);
        }
        self.check_delivery();
        self.check_asking();
        let busy = self.pane.as_ref().is_none_or(|p| !p.idle || p.delivery.is_some());
        if !self.cli_up || busy || self.turn.is_some() || !self.ready() {
            return;
        }
        if self.queue.pending() == 0 {
            return;
        }
        let Some(pane) = self.pane.as_mut() else { return };
        if let Some(typed) = pane.input().filter(|t| !t.is_empty()) {
            if !pane.held {
                pane.held = true;
                say(&format!("a task waits: someone is typing in the pane ({})", super::stream::clip(&typed, 40)));
                eventlog::record(
                    &self.spool,
                    Event::new("agent.task.held", Some(&self.id), serde_json::json!({"typed": typed})),
                );
            }
            return;
        }
        pane.held = false;
        if !self.gate_open() {
            return;
        }
        match self.queue.claim() {
            Ok(Some(claimed)) => {
                let prompt = super::prompt::prompt_of(&claimed.message.payload);
                say(&format!(
                    "▶ task {} ({}): {}",
                    claimed.message.id,
                    claimed.message.priority.as_str(),
                    super::stream::clip(&prompt, 120)
                ));
                self.limiter.record();
                self.deliver(Delivery { claimed, prompt, attempts: 0, deadline: Instant::now() });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot claim a task: {e}"),
        }
    }

    fn deliver(&mut self, mut d: Delivery) {
        let Some(pane) = self.pane.as_mut() else { return };
        d.attempts += 1;
        let typed = pane.input();
        // The paste landed but its Enter was lost: only Enter again. Otherwise paste (again).
        let landed = d.attempts > 1 && typed.as_deref().is_some_and(|t| !t.is_empty());
        let ok = (landed || pane.paste(&d.prompt)) && pane.key("Enter");
        if !ok {
            tracing::warn!("tmux could not deliver to {}", pane.target);
        }
        if d.attempts > 1 {
            eventlog::record(
                &self.spool,
                Event::new(
                    "agent.task.retry",
                    Some(&self.id),
                    serde_json::json!({"task": d.claimed.message.id, "attempt": d.attempts}),
                ),
            );
        }
        d.deadline = Instant::now() + pane.confirm;
        pane.delivery = Some(d);
    }

    fn check_delivery(&mut self) {
        let Some(pane) = self.pane.as_mut() else { return };
        if pane.delivery.as_ref().is_none_or(|d| Instant::now() < d.deadline) {
            return;
        }
        let Some(d) = pane.delivery.take() else { return };
        if d.attempts < MAX_DELIVERIES {
            say(&format!("task {} was not taken by the CLI: delivering again", d.claimed.message.id));
            return self.deliver(d);
        }
        let turn = Turn::new(d.claimed);
        let reason = format!("the CLI did not take the prompt after {MAX_DELIVERIES} deliveries");
        self.answer(turn, None, true, "delivery_failed", &reason);
    }

    fn on_hook(&mut self, name: &str, input: &serde_json::Value, cut: bool) {
        let kind = input["notification_type"].as_str().unwrap_or_default();
        let asks = name == "Notification" && ASKING.contains(&kind);
        if asks {
            let message = input["message"].as_str().unwrap_or(kind).to_owned();
            self.asking = Some(Asking { since: Instant::now(), message, alerted: false });
        } else if name != "Notification" || kind == "idle_prompt" {
            self.asking = None;
        }
        let Some(pane) = self.pane.as_mut() else { return };
        match name {
            // A permission prompt or a question is not an idle input line: no task is pasted
            // into it.
            "Notification" if asks => pane.idle = false,
            "SessionStart" | "Notification" => pane.idle = true,
            "UserPromptSubmit" => {
                pane.idle = false;
                let prompt = normalize(input["prompt"].as_str().unwrap_or_default());
                let ours = pane.delivery.as_ref().is_some_and(|d| {
                    let sent = normalize(&d.prompt);
                    sent == prompt || (cut && !prompt.is_empty() && sent.starts_with(&prompt))
                });
                if ours {
                    if let Some(d) = pane.delivery.take() {
                        self.turn = Some(Turn::new(d.claimed));
                        self.save(|s| s.activity = Some("busy".into()));
                    }
                }
            }
            "Stop" | "StopFailure" => {
                pane.idle = true;
                if let Some(turn) = self.turn.take() {
                    let failed = name == "StopFailure";
                    let message = input["last_assistant_message"].as_str().map(str::to_owned);
                    let transcript = || input["transcript_path"].as_str().and_then(last_assistant_text);
                    // A cut message is only its beginning: the transcript has all of it.
                    let text = if cut { transcript().or(message) } else { message.or_else(transcript) };
                    let text = text.unwrap_or_default();
                    let code = input["error"].as_str().unwrap_or("error").to_owned();
                    self.answer(turn, None, failed, &code, &text);
                }
            }
            "SessionEnd" => pane.idle = false,
            _ => {}
        }
    }

    /// Interrupts an interactive turn (Escape in the pane); its task is answered at once.
    pub(super) fn interrupt_interactive(&mut self, why: &'static str) -> Result<(), String> {
        let Some(pane) = self.pane.as_ref() else { return Err("no pane".into()) };
        let Some(turn) = self.turn.take() else { return Err("no turn is running".into()) };
        pane.key("Escape");
        self.answer(turn, None, true, why, "interrupted in the pane");
        Ok(())
    }
}

/// The text of the last assistant message in a transcript.
fn last_assistant_text(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        if v["type"] != "assistant" {
            return None;
        }
        let parts: Vec<&str> = v["message"]["content"]
            .as_array()?
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_input_line_without_its_placeholder() {
        assert_eq!(input_line("hello\n> fix it\n"), Some("fix it".into()));
        assert_eq!(input_line("│ > \x1b[2mTry \"refactor\"\x1b[0m   │\n  ? for shortcuts"), Some(String::new()));
        assert_eq!(input_line("> \x1b[1mbold\x1b[0m typed"), Some("bold typed".into()));
        assert_eq!(input_line("❯ \n"), Some(String::new()));
        assert_eq!(input_line("no prompt here"), None);
    }
}
