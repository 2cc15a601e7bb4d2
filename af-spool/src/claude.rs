//! The Claude Code records of the spool: a claude-code agent's conversation (session id and
//! transcript), its token counts and the `claude` section of its config.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The conversation a claude-code agent keeps: the CLI's session and its transcript file. Kept in
/// the agent's state (`conversation`) and in checkpoints; af-wrap resumes it after any restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// The CLI's session id (a UUID).
    pub session_id: String,
    /// The session's transcript (`<config dir>/projects/<mangled cwd>/<session>.jsonl`).
    pub transcript: PathBuf,
}

/// Tokens used by an agent's session, from the CLI's `modelUsage` (summed over models; each
/// figure is the session's running total, as the CLI reports it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Input tokens.
    #[serde(default)]
    pub input: u64,
    /// Output tokens.
    #[serde(default)]
    pub output: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation: u64,
}

impl Tokens {
    /// Whether nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == Tokens::default()
    }

    /// The sum of two counts.
    pub fn plus(self, o: Tokens) -> Tokens {
        Tokens {
            input: self.input + o.input,
            output: self.output + o.output,
            cache_read: self.cache_read + o.cache_read,
            cache_creation: self.cache_creation + o.cache_creation,
        }
    }

    /// What is left of `self` after `o` (never below zero).
    pub fn minus(self, o: Tokens) -> Tokens {
        Tokens {
            input: self.input.saturating_sub(o.input),
            output: self.output.saturating_sub(o.output),
            cache_read: self.cache_read.saturating_sub(o.cache_read),
            cache_creation: self.cache_creation.saturating_sub(o.cache_creation),
        }
    }
}

/// The running figures of the agent CLI process that runs now. The CLI counts `total_cost_usd`
/// and `modelUsage` from zero in each new process (`--resume` included), so an agent's spending is
/// a base (what every earlier process spent) plus this process's running total. Kept in the
/// agent's state (`process`), written with every figure the process reports, so that whatever
/// ends the process (an exit, a crash, a kill of af-wrap itself) the base can be recovered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessUsage {
    /// The CLI process's id.
    pub pid: u32,
    /// Its latest `total_cost_usd`.
    pub cost_usd: f64,
    /// Its latest `modelUsage`, summed over models.
    #[serde(default)]
    pub tokens: Tokens,
}

/// An agent's spending: the true sum over every CLI process it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Money spent by every process, this one included (the state's `costUsd`).
    pub cost_usd: f64,
    /// Tokens used by every process (the state's `tokens`).
    pub tokens: Tokens,
    /// The running figures of the process that runs now (the state's `process`).
    pub process: Option<ProcessUsage>,
}

impl Usage {
    /// What every process before the current one spent.
    pub fn base(&self) -> (f64, Tokens) {
        match self.process {
            Some(p) => ((self.cost_usd - p.cost_usd).max(0.0), self.tokens.minus(p.tokens)),
            None => (self.cost_usd, self.tokens),
        }
    }

    /// Process `pid` reported its running totals. Another process's figures (one whose end went
    /// unrecorded, say because af-wrap was killed) are folded into the base first.
    pub fn count(&mut self, pid: u32, cost_usd: Option<f64>, tokens: Option<Tokens>) {
        if self.process.is_some_and(|p| p.pid != pid) {
            self.fold();
        }
        let (base_cost, base_tokens) = self.base();
        let mut p = self.process.unwrap_or(ProcessUsage { pid, ..Default::default() });
        if let Some(c) = cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
            p.cost_usd = c;
        }
        if let Some(t) = tokens.filter(|t| !t.is_zero()) {
            p.tokens = t;
        }
        self.cost_usd = base_cost + p.cost_usd;
        self.tokens = base_tokens.plus(p.tokens);
        self.process = Some(p);
    }

    /// The current process ended (however): its figures become part of the base.
    pub fn fold(&mut self) {
        self.process = None;
    }
}

/// A usage limit a Claude account (the CLI's config directory) is under: every claude-code agent
/// of the account waits for its reset (`accounts/<hash>.limit.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLimit {
    /// The CLI's config directory.
    pub config_dir: PathBuf,
    /// When the limit resets.
    pub resets_at: crate::time::Timestamp,
    /// The CLI's `rateLimitType` (`five_hour`, `seven_day`, …), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The agent that hit it.
    pub agent: String,
}

/// Why a claude-code agent's driver cannot work, whatever its processes look like: a restart would
/// not help (af-health calls the agent unhealthy and leaves the ladder alone). Kept in the agent's
/// state (`driverFault`) from the failure to the next task that succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverFault {
    /// `cli_missing` (the CLI cannot be started) or `authentication_failed` (not logged in).
    pub kind: String,
    /// The reason, in the CLI's or the system's words.
    pub message: String,
}

/// The `claude` section of a claude-code agent's config: how af-wrap runs the CLI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaudeSettings {
    /// `--permission-mode` (`default`, `acceptEdits`, `bypassPermissions`, `plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// `--allowedTools`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tools: Vec<String>,
    /// `--max-turns`: model turns per task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Appended to the system prompt (after AgentFlow's own note on af-bus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_system_prompt: Option<String>,
    /// The most tasks (user turns) this agent starts per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns_per_minute: Option<u32>,
    /// The most tasks all claude-code agents of the project start per minute together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_turns_per_minute: Option<u32>,
    /// Run the CLI as its full-screen self in the tmux pane (tasks arrive by bracketed paste)
    /// instead of in streaming print mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interactive: bool,
    /// A turn whose tool calls the CLI refused (`permission_denials`) still answers `ok: true`
    /// (with its `permissionDenials`); by default it answers `ok: false`, `permission_denied`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_denials: bool,
    /// Interactive mode: how long the CLI may wait for a person (a permission prompt, a question)
    /// before a warning alert, e.g. `5m` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_alert_after: Option<String>,
    /// Interactive mode: whether af-wrap answers the CLI's trust dialog ("Is this a project you
    /// created or one you trust?") with yes for the agent's workdir. Default: yes for a worktree
    /// AgentFlow made (`worktree: true`), no for a plain workdir (a person says it once; the CLI
    /// remembers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_workdir: Option<bool>,
}

impl ClaudeSettings {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(format!("invalid agent config: claude.{m}")));
        if let Some(mode) = &self.permission_mode {
            if !["default", "acceptEdits", "bypassPermissions", "plan", "dontAsk"].contains(&mode.as_str()) {
                return bad("permissionMode must be default, acceptEdits, bypassPermissions, plan or dontAsk");
            }
        }
        if self.max_turns == Some(0) {
            return bad("maxTurns must be at least 1");
        }
        if self.turns_per_minute == Some(0) || self.project_turns_per_minute == Some(0) {
            return bad("turnsPerMinute must be at least 1");
        }
        if self.allowed_tools.iter().any(|t| t.is_empty() || t.contains('\0')) {
            return bad("allowedTools has an empty name");
        }
        if self.append_system_prompt.as_deref().is_some_and(|p| p.contains('\0')) {
            return bad("appendSystemPrompt has a NUL byte");
        }
        if self.input_alert_after.as_deref().is_some_and(|d| crate::human::parse_duration(d).is_err()) {
            return bad("inputAlertAfter must be a duration such as 90s or 5m");
        }
        Ok(())
    }
}

/// Checks a `budgetUsd` value.
pub fn validate_budget(budget: Option<f64>) -> Result<()> {
    match budget {
        Some(b) if !b.is_finite() || b <= 0.0 => {
            Err(Error::Invalid("invalid agent config: budgetUsd must be a positive number of dollars".into()))
        }
        _ => Ok(()),
    }
}

/// Whether `s` looks like a UUID (what `--session-id` and `--resume` accept).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_recognized() {
        assert!(is_uuid("0f0e0d0c-0b0a-4908-8706-050403020100"));
        assert!(!is_uuid("../x"));
        assert!(!is_uuid("1234"));
    }

    #[test]
    fn spending_is_a_base_plus_the_running_process() {
        let t = |n| Tokens { input: n, output: n, ..Default::default() };
        let mut u = Usage::default();
        u.count(10, Some(0.01), Some(t(10)));
        u.count(10, Some(0.02), Some(t(20)));
        assert_eq!((u.cost_usd, u.tokens), (0.02, t(20)), "one process: its running total");
        u.fold();
        u.count(11, Some(0.01), Some(t(10)));
        assert!((u.cost_usd - 0.03).abs() < 1e-12 && u.tokens == t(30), "{u:?}");
        // A process whose end went unrecorded (af-wrap killed) is folded when another reports.
        u.count(12, Some(0.005), None);
        assert!((u.cost_usd - 0.035).abs() < 1e-12 && u.tokens == t(30), "{u:?}");
        assert_eq!(u.process.map(|p| p.pid), Some(12));
        let (base, tokens) = u.base();
        assert!((base - 0.03).abs() < 1e-12 && tokens == t(30));
    }
}
