//! The Codex CLI records of the spool: the `codex` section of a codex agent's config. A codex
//! agent keeps its session in the state's `conversation` (the CLI's thread id and its rollout
//! file under `$CODEX_HOME/sessions`), and its tokens in the state's `tokens`, as a claude-code
//! agent does (see claude.rs).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The `codex` section of a codex agent's config: how af-wrap runs `codex exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodexSettings {
    /// `--model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The sandbox of the commands the model runs (`read-only`, `workspace-write`,
    /// `danger-full-access`), passed as `-c sandbox_mode=...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// The most tokens (input plus output, over every turn) the agent may use: the CLI reports
    /// tokens, not money, so this is a codex agent's budget. Checked before each turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// More `-c key=value` overrides of the CLI's config, each as written after `-c`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<String>,
}

/// The sandbox modes the CLI knows.
pub const SANDBOXES: [&str; 3] = ["read-only", "workspace-write", "danger-full-access"];

impl CodexSettings {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(format!("invalid agent config: codex.{m}")));
        if self.sandbox.as_deref().is_some_and(|s| !SANDBOXES.contains(&s)) {
            return bad("sandbox must be read-only, workspace-write or danger-full-access");
        }
        if self.max_tokens == Some(0) {
            return bad("maxTokens must be at least 1");
        }
        if self.model.as_deref().is_some_and(|m| m.is_empty() || m.contains('\0')) {
            return bad("model must be a model's name");
        }
        if self.config.iter().any(|c| !c.contains('=') || c.contains('\0')) {
            return bad("config entries must be key=value");
        }
        Ok(())
    }
}
