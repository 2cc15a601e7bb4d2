//! af-health's part of the spool: each agent's recovery-ladder record, its check history, and the
//! alerts (open ones keyed by agent and check, every one appended to a log).
//!
//! ```text
//! $AF_HOME/
//!   agents/<id>/health.json      Ladder: consecutive failures, backoff, restart times (atomic)
//!   agents/<id>/health.log       check history, JSON lines (rotated to health.log.1)
//!   agents/<id>/health.lock      flock: held while one af-health checks or recovers the agent
//!   alerts/open/<id>.<check>.json  the open alert of an agent and check (at most one)
//!   alerts.log                   every alert raised, escalated, recovered or acknowledged
//!   alert.d/                     executables run for every alert (alert JSON on stdin);
//!   alert.d/<level>/             … and those run only for alerts of that level
//!   health.d/                    fifodir: af-health's pipes for af-wrap's answers to pings
//! ```

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::id::AgentId;
use crate::lock::Lock;
use crate::record::{Health, Status};
use crate::spool::Spool;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How far a history file grows before it is rotated (one old generation is kept).
pub const HISTORY_MAX_BYTES: u64 = 256 * 1024;

/// How far the alert log grows before it is rotated.
pub const ALERTS_MAX_BYTES: u64 = 1024 * 1024;

impl Spool {
    /// An agent's recovery-ladder record.
    pub fn ladder_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("health.json")
    }

    /// An agent's check history (JSON lines).
    pub fn history_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("health.log")
    }

    /// The lock held while one af-health checks or recovers an agent.
    pub fn health_lock_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("health.lock")
    }

    /// The folder of open alerts.
    pub fn open_alerts_dir(&self) -> PathBuf {
        self.root().join("alerts/open")
    }

    /// The open alert of an agent and check.
    pub fn open_alert_path(&self, id: &AgentId, check: &str) -> PathBuf {
        self.open_alerts_dir().join(format!("{id}.{check}.json"))
    }

    /// The log of every alert.
    pub fn alerts_log_path(&self) -> PathBuf {
        self.root().join("alerts.log")
    }

    /// The alert hooks folder.
    pub fn alert_hooks_dir(&self) -> PathBuf {
        self.root().join("alert.d")
    }

    /// The fifodir where af-health receives af-wrap's answers to its pings (one pipe per checking
    /// thread, reused for every agent it pings).
    pub fn health_replies_dir(&self) -> PathBuf {
        self.root().join("health.d")
    }

    /// Reads an agent's ladder record (a fresh one if it has none).
    pub fn read_ladder(&self, id: &AgentId) -> Result<Ladder> {
        Ok(atomic::read_json(&self.ladder_path(id))?.unwrap_or_default())
    }

    /// Writes an agent's ladder record atomically and durably (it must survive a crash).
    pub fn write_ladder(&self, id: &AgentId, ladder: &Ladder) -> Result<()> {
        atomic::write_json(&self.ladder_path(id), ladder, Durability::Durable)
    }

    /// Forgets an agent's ladder (af-spawn reset): the next failure starts at the first rung.
    pub fn clear_ladder(&self, id: &AgentId) -> Result<()> {
        let path = self.ladder_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Takes the agent's health lock if it is free.
    pub fn try_lock_health(&self, id: &AgentId, patience: std::time::Duration) -> Result<Option<Lock>> {
        Lock::try_exclusive_patiently(&self.health_lock_path(id), patience)
    }

    /// Every open alert, sorted by time.
    pub fn open_alerts(&self) -> Result<Vec<Alert>> {
        let dir = self.open_alerts_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut alerts = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if let Ok(Some(a)) = atomic::read_json::<Alert>(&entry.path()) {
                alerts.push(a);
            }
        }
        alerts.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(alerts)
    }
}

/// The level of one check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// It passes.
    #[default]
    Ok,
    /// It is close to a limit.
    Warning,
    /// It fails.
    Critical,
}

impl Level {
    /// The agent health this level amounts to.
    pub fn health(self) -> Health {
        match self {
            Level::Ok => Health::Healthy,
            Level::Warning => Health::Degraded,
            Level::Critical => Health::Unhealthy,
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Which check: `process`, `tmux`, `heartbeat`, `response`, `memory`, `cpu`, `timeout`.
    pub name: String,
    /// Its level.
    pub level: Level,
    /// What it found, in words.
    pub message: String,
}

/// One check pass over one agent, as kept in its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When the pass ran.
    pub time: Timestamp,
    /// The agent.
    pub agent: AgentId,
    /// Its status then.
    pub status: Status,
    /// Its health then (the worst check).
    pub health: Health,
    /// Every check's result.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Resident memory of its process tree, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// CPU use of its tree, in percent of one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// The ping's round trip, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<f64>,
    /// What the recovery ladder did or plans, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// What the ladder will do at `nextAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rung {
    /// Start it again.
    Restart,
    /// Roll back to its last checkpoint, then start it.
    Rollback,
}

/// An agent's recovery-ladder state, kept in the spool so that a `kill -9` of af-health loses
/// nothing: the next pass carries on from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Ladder {
    /// Failures since it last ran healthy for the reset period.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The backoff before the next start, in milliseconds (0 means the policy's first delay).
    #[serde(default)]
    pub delay_ms: u64,
    /// The run whose failure was counted last (its start time), so a failure is counted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_run: Option<Timestamp>,
    /// The rung scheduled, and when it may be climbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Rung>,
    /// When the scheduled rung may be climbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Timestamp>,
    /// When the ladder last started the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Timestamp>,
    /// The ladder's starts in the rate window.
    #[serde(default)]
    pub restart_times: Vec<Timestamp>,
    /// Since when every check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<Timestamp>,
    /// When the ladder gave up and marked the agent failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up_at: Option<Timestamp>,
    /// Why it gave up, or what it did last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An alert's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    /// A check warns, or fails for the first time.
    Warning,
    /// A check fails, or a warning persisted.
    Critical,
    /// The check passes again; closes the alert.
    Recovery,
}

impl AlertLevel {
    /// The name as stored (and the `alert.d/<level>/` folder).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Warning => "warning",
            AlertLevel::Critical => "critical",
            AlertLevel::Recovery => "recovery",
        }
    }
}

/// DESIGN.md's alert: one per agent and check while open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Its id (`al-…`), for `af-health ack`.
    pub id: String,
    /// Its level now.
    pub level: AlertLevel,
    /// The agent.
    pub agent: AgentId,
    /// The check that raised it.
    pub check: String,
    /// What is wrong (or that it is right again).
    pub message: String,
    /// When this level was reached.
    pub time: Timestamp,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Whether a person acknowledged it.
    #[serde(default)]
    pub acknowledged: bool,
    /// Anything else worth keeping (what the ladder did, a skipped rollback…).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// Validates an alert id from the command line (the agent id's characters, up to 64 bytes).
pub fn validate_alert_id(s: &str) -> Result<()> {
    crate::id::validate_name("alert id", s)
}

/// A new alert id, unique per agent, check and millisecond.
pub fn new_alert_id(agent: &AgentId, check: &str, at: Timestamp) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in agent.as_str().bytes().chain([b'.']).chain(check.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("al-{}-{h:08x}", at.0)
}

/// Appends one JSON line to `path` (one write, O_APPEND), first rotating the file to `path.1`
/// when it has grown past `max_bytes`. Callers serialize appends to one file with a lock.
pub fn append_line<T: Serialize>(path: &Path, value: &T, max_bytes: u64) -> Result<()> {
    let mut line = serde_json::to_vec(value).map_err(|e| Error::Invalid(format!("cannot serialize: {e}")))?;
    line.push(b'\n');
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.len() + line.len() as u64 > max_bytes) {
        let old = atomic::sibling(path, ".1");
        std::fs::rename(path, &old).map_err(|e| Error::io("rotate", path, e))?;
    }
    // Never through a symlink (see crate::beneath).
    let mut f = crate::beneath::open_append(path)?;
    f.write_all(&line).map_err(|e| Error::io("append to", path, e))
}

/// Reads the JSON lines of `path.1` then `path` (skipping lines that do not parse: a line cut by
/// a full disk must not hide the rest).
pub fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for p in [atomic::sibling(path, ".1"), path.to_path_buf()] {
        match std::fs::read_to_string(&p) {
            Ok(text) => out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &p, e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_rotates_and_reads_both_generations() {
        let dir = std::env::temp_dir().join(atomic::unique_name("health-test"));
        atomic::create_dir(&dir).unwrap();
        let p = dir.join("h.log");
        for i in 0..100u32 {
            append_line(&p, &serde_json::json!({"n": i}), 200).unwrap();
        }
        let all: Vec<serde_json::Value> = read_lines(&p).unwrap();
        assert!(all.len() < 100 && all.len() > 10, "old entries rotated away: {}", all.len());
        assert_eq!(all.last().unwrap()["n"], 99);
        assert!(std::fs::metadata(&p).unwrap().len() <= 200);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ladder_reads_with_defaults() {
        let l: Ladder = serde_json::from_str(r#"{"consecutiveFailures":2}"#).unwrap();
        assert_eq!(l.consecutive_failures, 2);
        assert!(l.restart_times.is_empty());
        assert!(validate_alert_id("al-1-00ff").is_ok());
        assert!(validate_alert_id("../x").is_err());
    }
}
