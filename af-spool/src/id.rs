//! Agent ids: the one place that decides what may name an agent (and so a directory and a tmux
//! session).

use crate::error::{Error, Result};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// A validated agent id: 1 to 64 bytes of ASCII letters, digits, `-` and `_`, not starting with
/// `-`. That excludes `.`, `..`, `/`, NUL, control characters and whitespace, and everything tmux
/// treats specially in a target (`:` and `.`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AgentId(String);

impl AgentId {
    /// Validates `s` as an agent id.
    pub fn new(s: &str) -> Result<Self> {
        validate_name("agent id", s)?;
        Ok(AgentId(s.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tmux session that runs this agent (`agent-<id>`, as in the seed).
    pub fn session(&self) -> String {
        format!("agent-{}", self.0)
    }
}

/// Checks that `s` can name a file in the spool: the agent id rules (see [`AgentId`]).
pub fn validate_name(what: &str, s: &str) -> Result<()> {
    let shown: String = s.chars().flat_map(char::escape_default).take(80).collect();
    if s.is_empty() {
        return Err(Error::Invalid(format!("{what} is empty")));
    }
    if s.len() > MAX_ID_LEN {
        return Err(Error::Invalid(format!("{what} '{shown}' is longer than {MAX_ID_LEN} bytes")));
    }
    if s.starts_with('-') {
        return Err(Error::Invalid(format!("{what} '{shown}' may not start with '-'")));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(Error::Invalid(format!(
            "{what} '{shown}' has the character {:?}; use letters, digits, '-' and '_'",
            c
        )));
    }
    Ok(())
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl std::str::FromStr for AgentId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        AgentId::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for AgentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AgentId::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_ids() {
        for ok in ["claude-dev-001", "worker-batch-001", "system-monitor", "a", "A_1", &"x".repeat(64)] {
            assert!(AgentId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in ["", ".", "..", "../x", "a/b", "a\0b", "a\nb", "a b", "a:b", "a.b", "-x", &"x".repeat(65), "é"] {
            assert!(AgentId::new(bad).is_err(), "{bad:?}");
        }
    }
}
