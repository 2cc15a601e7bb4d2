//! The Claude Code side of the spool: a claude-code agent's conversation (session id and
//! transcript), its token counts, the `claude` section of its config, and where the CLI keeps
//! transcripts.

use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::spool::Spool;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// The CLI's configuration directory: `CLAUDE_CONFIG_DIR` from the agent's environment, else from
/// ours, else `~/.claude`.
pub fn config_dir(environment: &std::collections::BTreeMap<String, String>) -> PathBuf {
    if let Some(d) = environment.get("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".claude")
}

/// The CLI's name for a working directory: every character that is not an ASCII letter or digit
/// becomes `-`.
pub fn mangle_cwd(cwd: &Path) -> String {
    cwd.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// Where the CLI keeps the transcript of `session` run in `cwd`.
pub fn transcript_path(config_dir: &Path, cwd: &Path, session: &str) -> PathBuf {
    config_dir.join("projects").join(mangle_cwd(cwd)).join(format!("{session}.jsonl"))
}

/// A fresh random (version 4) UUID, for a new session.
pub fn new_session_id() -> Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Whether `s` looks like a UUID (what `--session-id` and `--resume` accept).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Copies a conversation's transcript into `dir` (a checkpoint's folder), as `<session>.jsonl`.
/// `Ok(None)` when the session has no transcript yet (no turn ran).
pub fn save_transcript(conv: &Conversation, dir: &Path) -> Result<Option<PathBuf>> {
    let bytes = match std::fs::read(&conv.transcript) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &conv.transcript, e)),
    };
    if !is_uuid(&conv.session_id) {
        return Err(Error::Invalid(format!("session id '{}' is not a UUID", conv.session_id)));
    }
    crate::atomic::create_dir(dir)?;
    let saved = dir.join(format!("{}.jsonl", conv.session_id));
    crate::atomic::write(&saved, &bytes, crate::atomic::Durability::Durable)?;
    Ok(Some(saved))
}

/// Puts a saved transcript back where the CLI looks for the conversation's session (atomically),
/// so that the agent's next start resumes the conversation as it was saved.
pub fn restore_transcript(conv: &Conversation, saved: &Path) -> Result<()> {
    let bytes = std::fs::read(saved).map_err(|e| Error::io("read", saved, e))?;
    if let Some(dir) = conv.transcript.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    crate::atomic::write(&conv.transcript, &bytes, crate::atomic::Durability::Durable)
}

/// The hooks settings file af-wrap writes for an agent's CLI (`--settings`).
pub fn settings_path(spool: &Spool, id: &AgentId) -> PathBuf {
    spool.agent_dir(id).join("claude-settings.json")
}

/// Money spent by every agent of a project (each agent's latest session total, summed).
pub fn project_cost(spool: &Spool, project: &str) -> Result<(f64, Tokens)> {
    let mut cost = 0.0;
    let mut tokens = Tokens::default();
    for id in spool.agent_ids()? {
        let (Ok(config), Ok(state)) = (spool.read_config(&id), spool.read_state(&id)) else { continue };
        if config.project_id == project {
            cost += state.cost_usd;
            tokens = tokens.plus(state.tokens);
        }
    }
    Ok((cost, tokens))
}

/// The record of turns recently started by a project's agents (for `projectTurnsPerMinute`).
pub fn project_turns_path(spool: &Spool, project: &str) -> PathBuf {
    // FNV-1a: project ids may hold characters a file name cannot.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in project.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    spool.root().join("projects").join(format!("{h:016x}.turns.json"))
}

/// Takes one of the project's `limit` turns per minute: `None` when taken, else when the next one
/// is free. Under a lock, so agents of one project never take the same slot.
pub fn take_project_turn(spool: &Spool, project: &str, limit: u32) -> Result<Option<Timestamp>> {
    let path = project_turns_path(spool, project);
    if let Some(dir) = path.parent() {
        crate::atomic::create_dir(dir)?;
    }
    let _lock = crate::lock::Lock::exclusive(&crate::atomic::sibling(&path, ".lock"))?;
    let now = Timestamp::now();
    let mut turns: Vec<u64> = crate::atomic::read_json(&path).unwrap_or(None).unwrap_or_default();
    turns.retain(|t| now.0.saturating_sub(*t) < 60_000);
    if turns.len() >= limit as usize {
        return Ok(turns.iter().min().map(|t| Timestamp(t + 60_000)));
    }
    turns.push(now.0);
    crate::atomic::write_json(&path, &turns, crate::atomic::Durability::Volatile)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_live_under_the_mangled_cwd() {
        let p = transcript_path(Path::new("/h/.claude"), Path::new("/tmp/my_dir.x"), "abc");
        assert_eq!(p, Path::new("/h/.claude/projects/-tmp-my-dir-x/abc.jsonl"));
    }

    #[test]
    fn a_project_takes_at_most_its_turns_per_minute() {
        let root = std::env::temp_dir().join(crate::atomic::unique_name("claude-test"));
        let spool = Spool::open(&root).unwrap();
        assert_eq!(take_project_turn(&spool, "org/repo", 2).unwrap(), None);
        assert_eq!(take_project_turn(&spool, "org/repo", 2).unwrap(), None);
        let free = take_project_turn(&spool, "org/repo", 2).unwrap().expect("the third is refused");
        assert!(free.0 > Timestamp::now().0 + 50_000, "free again about a minute later");
        assert_eq!(take_project_turn(&spool, "other", 2).unwrap(), None, "projects count apart");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn session_ids_are_uuids() {
        let a = new_session_id().unwrap();
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, new_session_id().unwrap());
        assert!(!is_uuid("../x"));
        assert!(!is_uuid("1234"));
    }
}
