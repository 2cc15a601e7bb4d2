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
}
