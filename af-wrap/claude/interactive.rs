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
    /// The paste is sent and its Enter is not: Enter goes once the paste shows in the input line,
    /// or at this instant at the latest.
    enter_by: Option<Instant>,
}

/// The most af-wrap waits for a paste to show in the input line before it sends Enter anyway.
const PASTE_SHOWS_WITHIN: Duration = Duration::from_secs(1);

/// How often the pane is looked at while a paste is being taken in.
const PASTE_POLL: Duration = Duration::from_millis(10);

/// How often the pane is looked at before the CLI's first prompt.
const SETUP_POLL: Duration = Duration::from_millis(250);

/// A screen the CLI shows before its prompt, waiting for a person (or, for `Offline`, exiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The trust dialog for the folder it runs in.
    Trust,
    /// First-run onboarding (theme, security notes, terminal setup).
    Onboarding,
    /// The login method: the CLI has no credentials.
    Login,
    /// The connectivity check failed; the CLI exits.
    Offline,
}

impl Screen {
    /// The screen's name in alerts and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Screen::Trust => "trust dialog",
            Screen::Onboarding => "onboarding",
            Screen::Login => "login",
            Screen::Offline => "connectivity check",
        }
    }
}

/// What marks each screen, in the words of the real CLI (2.1.197; the older trust dialog's too).
const SCREENS: [(&str, Screen); 7] = [
    ("Is this a project you created or one you trust?", Screen::Trust),
    ("Do you trust the files in this folder?", Screen::Trust),
    ("Select login method:", Screen::Login),
    ("Choose the text style that looks best with your terminal", Screen::Onboarding),
    ("Security notes:", Screen::Onboarding),
    ("Use Claude Code's terminal setup?", Screen::Onboarding),
    ("Unable to connect to Anthropic services", Screen::Offline),
];

/// The screen a pane capture (plain text) shows, with its words: from the line that names it
/// (for the trust dialog, from "Accessing workspace:", which names the folder) to the first
/// choice, on one line.
pub fn screen_of(capture: &str) -> Option<(Screen, String)> {
    let lines: Vec<&str> = capture.lines().map(str::trim).collect();
    let (at, screen) =
        SCREENS.iter().find_map(|(mark, screen)| lines.iter().position(|l| l.contains(mark)).map(|i| (i, *screen)))?;
    let lead = match screen {
        Screen::Trust => "Accessing workspace:",
        Screen::Login => "Claude Code can be used with",
        _ => "",
    };
    let from = lines[..at].iter().rposition(|l| !lead.is_empty() && l.starts_with(lead)).unwrap_or(at);
    let words: Vec<&str> = lines[from..]
        .iter()
        .copied()
        .take_while(|l| !(l.starts_with('❯') || l.starts_with("1.") && screen != Screen::Onboarding))
        .filter(|l| !l.is_empty() && l.chars().any(char::is_alphanumeric))
        .take(6)
        .collect();
    Some((screen, super::stream::clip(&normalize(&words.join(" ")), 400)))
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
    /// The CLI reached its prompt (its SessionStart hook fired, which the real CLI does only once
    /// its trust dialog and onboarding are past).
    started: bool,
    /// Before that: when the pane is looked at next, and the screen it showed last.
    setup_at: Option<Instant>,
    screen: Option<Screen>,
    /// When af-wrap last answered the trust dialog, and how many times.
    trusted: Option<Instant>,
    trust_answers: u32,
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
            tmux: af_ops::shard::own(spool, id),
            target,
            events: EventTail::open(spool)?,
            idle: false,
            delivery: None,
            held: false,
            confirm,
            started: false,
            setup_at: None,
            screen: None,
            trusted: None,
            trust_answers: 0,
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
        self.started = false;
        self.setup_at = None;
        self.screen = None;
        self.trusted = None;
        self.trust_answers = 0;
        self.delivery.take().map(|d| d.claimed)
    }

    /// A new CLI runs in the pane: it is watched until its first prompt.
    pub fn launched(&mut self) {
        self.setup_at = Some(Instant::now());
    }

    /// The claim of a delivery waiting for its confirmation.
    pub fn delivery_mut(&mut self) -> Option<&mut Claimed> {
        self.delivery.as_mut().map(|d| &mut d.claimed)
    }

    /// When the pane needs a look: a delivery's confirmation or its Enter is due, or the CLI has
    /// not reached its prompt yet.
    pub fn deadline(&self) -> Option<Instant> {
        let delivery = self.delivery.as_ref().map(|d| match d.enter_by {
            Some(by) => by.min(Instant::now() + PASTE_POLL),
            None => d.deadline,
        });
        delivery.into_iter().chain(self.setup_at.filter(|_| !self.started)).min()
    }

    /// What the pane shows, as plain text (lines tmux wrapped joined again).
    fn capture(&self) -> Option<String> {
        self.tmux.run(&["capture-pane", "-p", "-J", "-t", &self.target]).ok()
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
        self.watch_setup();
        self.send_enter();
        self.check_delivery();
        self.check_asking();
        let busy = self.pane.as_ref().is_none_or(|p| !p.idle || p.delivery.is_some() || !p.started);
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
                self.deliver(Delivery { claimed, prompt, attempts: 0, deadline: Instant::now(), enter_by: None });
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
        if landed {
            if !pane.key("Enter") {
                tracing::warn!("tmux could not deliver to {}", pane.target);
            }
        } else if pane.paste(&d.prompt) {
            // Enter right behind a paste can be lost while the CLI takes the paste in: it goes
            // once the paste shows in the input line (see send_enter).
            d.enter_by = Some(Instant::now() + PASTE_SHOWS_WITHIN);
        } else {
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

    /// Sends the Enter of a paste once the paste shows in the input line (or it waited long
    /// enough); the confirmation's wait starts then.
    fn send_enter(&mut self) {
        let Some(pane) = self.pane.as_mut() else { return };
        let Some(by) = pane.delivery.as_ref().and_then(|d| d.enter_by) else { return };
        let shows = pane.input().is_some_and(|t| !t.is_empty());
        if !shows && Instant::now() < by {
            return;
        }
        if !pane.key("Enter") {
            tracing::warn!("tmux could not send Enter to {}", pane.target);
        }
        let confirm = pane.confirm;
        if let Some(d) = pane.delivery.as_mut() {
            d.enter_by = None;
            d.deadline = Instant::now() + confirm;
        }
    }

    /// Whether the trust dialog may be answered yes: `claude.trustWorkdir`, by default yes for a
    /// worktree AgentFlow made.
    fn trusts_workdir(&self) -> bool {
        self.config.claude.as_ref().and_then(|c| c.trust_workdir).unwrap_or(self.config.worktree)
    }

    /// Before the CLI's first prompt: looks at the pane for a screen that waits for a person.
    /// The trust dialog is answered when the config allows; any other screen (or the trust dialog
    /// otherwise) is `activity: input` with its words and a critical alert, once per screen.
    fn watch_setup(&mut self) {
        let trusts = self.trusts_workdir();
        let Some(pane) = self.pane.as_mut() else { return };
        if pane.started || !self.cli_up || pane.setup_at.is_none_or(|at| Instant::now() < at) {
            return;
        }
        pane.setup_at = Some(Instant::now() + SETUP_POLL);
        let seen = pane.capture().as_deref().and_then(screen_of);
        let Some((screen, text)) = seen else {
            if pane.screen.take().is_some() {
                // A person answered it; the CLI goes on.
                self.save(|s| {
                    s.activity = Some("idle".into());
                    s.input_prompt = None;
                    s.input_since = None;
                });
            }
            return;
        };
        if screen == Screen::Offline {
            // The CLI exits right after it: its end is the crash (see ended_before_prompt).
            return;
        }
        if screen == Screen::Trust && trusts {
            let again = pane.trusted.is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
            if again && pane.trust_answers < 3 {
                pane.trusted = Some(Instant::now());
                pane.trust_answers += 1;
                pane.key("Enter");
                say(&format!(
                    "trust dialog answered yes for {} (claude.trustWorkdir)",
                    super::cwd(&self.config).display()
                ));
                let detail = serde_json::json!({"workdir": super::cwd(&self.config), "text": text});
                eventlog::record(&self.spool, Event::new("agent.claude.trusted", Some(&self.id), detail));
            }
            return;
        }
        if pane.screen == Some(screen) {
            return;
        }
        pane.screen = Some(screen);
        // The alert is on record before the state says so: whoever sees `input` finds it.
        let why = match screen {
            Screen::Trust => " (answer it in the pane, or set claude.trustWorkdir)",
            _ => " (answer it in the pane: af-spawn attach)",
        };
        let message = format!("the claude CLI waits at its {} before its prompt{why}: {text}", screen.as_str());
        self.alert(af_spool::health::AlertLevel::Critical, "claude.setup", &message);
        self.save(|s| {
            s.activity = Some("input".into());
            s.input_prompt = Some(text);
            s.input_since = Some(af_spool::time::Timestamp::now());
        });
    }

    /// The CLI reached its prompt: a setup screen's alert is over.
    fn prompt_reached(&mut self) {
        let Some(pane) = self.pane.as_mut() else { return };
        pane.started = true;
        pane.screen = None;
        if self.spool.open_alert_path(&self.id, "claude.setup").exists() {
            let message = "claude.setup recovered: the CLI reached its prompt";
            self.alert(af_spool::health::AlertLevel::Recovery, "claude.setup", message);
        }
    }

    /// The interactive CLI ended before its first prompt: why, in its own words (what the pane
    /// shows), for the agent's crash. `None` when it had reached its prompt.
    pub(super) fn ended_before_prompt(&self, how: &str) -> Option<String> {
        let pane = self.pane.as_ref().filter(|p| !p.started)?;
        let capture = pane.capture().unwrap_or_default();
        let words = match screen_of(&capture) {
            Some((_, text)) => text,
            None => {
                let lines: Vec<&str> = capture.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                normalize(&lines[lines.len().saturating_sub(3)..].join(" "))
            }
        };
        let words = if words.is_empty() { String::new() } else { format!(": {}", super::stream::clip(&words, 300)) };
        Some(format!("the claude CLI {how} before its prompt{words}"))
    }

    fn check_delivery(&mut self) {
        let Some(pane) = self.pane.as_mut() else { return };
        if pane.delivery.as_ref().is_none_or(|d| d.enter_by.is_some() || Instant::now() < d.deadline) {
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
        if name == "SessionStart" {
            self.prompt_reached();
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

    #[test]
    fn knows_the_real_cli_s_screens_before_its_prompt() {
        // Captured from the real CLI 2.1.197 in tmux (120x40), no credentials, a fresh config.
        let trust = "\n──────\n Accessing workspace:\n\n /tmp/cap1/projA\n\n Quick safety check: Is this a \
project you created or one you trust? (Like your own code, a well-known open source\n project, or work from your \
team). If not, take a moment to review what's in this folder first.\n\n Claude Code'll be able to read, edit, and \
execute files here.\n\n Security guide\n\n ❯ 1. Yes, I trust this folder\n   2. No, exit\n\n Enter to confirm · \
Esc to cancel\n";
        let (screen, text) = screen_of(trust).unwrap();
        assert_eq!(screen, Screen::Trust);
        assert!(
            text.starts_with("Accessing workspace: /tmp/cap1/projA Quick safety check: Is this a project"),
            "{text}"
        );
        assert!(text.ends_with("execute files here. Security guide"), "{text}");
        let login = " Claude Code can be used with your Claude subscription or billed based on API usage through \
your Console account.\n\n Select login method:\n\n ❯ 1. Claude account with subscription · Pro, Max, Team, or \
Enterprise\n";
        assert_eq!(
            screen_of(login),
            Some((
                Screen::Login,
                "Claude Code can be used with your Claude subscription or billed based on API usage through your \
Console account. Select login method:"
                    .into()
            ))
        );
        let theme = " Let's get started.\n\n Choose the text style that looks best with your terminal\n To change \
this later, run /theme\n\n   1. Auto (match terminal)\n ❯ 2. Dark mode ✔\n";
        assert_eq!(screen_of(theme).map(|s| s.0), Some(Screen::Onboarding));
        let offline = " Unable to connect to Anthropic services\n\n Failed to connect to api.anthropic.com: \
ENOTFOUND\n\n Please check your internet connection and network settings.\n";
        let (screen, text) = screen_of(offline).unwrap();
        assert_eq!(screen, Screen::Offline);
        assert!(text.starts_with("Unable to connect to Anthropic services Failed to connect to api.anthropic.com"));
        assert_eq!(screen_of("╭─── Claude Code ───╮\n❯ \n  ? for shortcuts"), None);
    }
}
