//! The bus's Message record (DESIGN.md): what travels through queues, JSON, camelCase.

use crate::error::{Error, Result};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest message accepted by default, in bytes of its JSON (override: `AF_BUS_MAX_BYTES`).
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// A message's priority; receivers take `critical` first, then `high`, `normal`, `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Taken before everything else.
    Critical,
    /// Taken before normal and low.
    High,
    /// The default.
    #[default]
    Normal,
    /// Taken last.
    Low,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 4] = [Priority::Critical, Priority::High, Priority::Normal, Priority::Low];

    /// The digit that starts a queued file's name (0 = critical), so listings sort by priority.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The priority of a rank digit.
    pub fn from_rank(c: u8) -> Option<Priority> {
        Priority::ALL.get(usize::from(c.checked_sub(b'0')?)).copied()
    }

    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Parses a priority name.
    pub fn parse(s: &str) -> Result<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            Error::Invalid(format!("unknown priority '{}' (use critical, high, normal or low)", s.escape_default()))
        })
    }
}

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Asks for a response (correlated by `correlationId`, sent to `replyTo`).
    Request,
    /// Answers a request.
    Response,
    /// Tells something; nobody answers.
    #[default]
    Event,
    /// Sent to every agent (or every agent of a project).
    Broadcast,
    /// Work for a worker: its own `command`, or the worker's `taskCommand` with the task on stdin.
    Task,
}

impl Kind {
    /// Parses a kind name.
    pub fn parse(s: &str) -> Result<Kind> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
            Error::Invalid(format!(
                "unknown kind '{}' (use task, request, event, response or broadcast)",
                s.escape_default()
            ))
        })
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Unique id (sortable by creation time).
    pub id: String,
    /// The sender: an agent id, or `cli`.
    #[serde(default)]
    pub from: String,
    /// The queue it was sent to (direct messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The topic it was published on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// What it is for.
    #[serde(default)]
    pub kind: Kind,
    /// How urgent it is.
    #[serde(default)]
    pub priority: Priority,
    /// Ties a response to its request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The queue a response goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// After this, it is dropped to the dead letters unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Deliveries that failed before this one (kept in the queued file's name, filled in when read).
    #[serde(default)]
    pub attempts: u32,
    /// When it was sent.
    pub created_at: Timestamp,
    /// The content: any JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// The host a topic event or broadcast was first posted on, once it is mirrored to other
    /// hosts (`af-bus bridge`): a message from another host is never exported again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Message {
    /// A new message with a fresh id, from `from`, created now.
    pub fn new(from: &str, kind: Kind, priority: Priority, payload: serde_json::Value) -> Message {
        Message {
            id: new_id(),
            from: from.to_owned(),
            to: None,
            topic: None,
            kind,
            priority,
            correlation_id: None,
            reply_to: None,
            expires_at: None,
            attempts: 0,
            created_at: Timestamp::now(),
            payload,
            origin: None,
        }
    }

    /// A response to this message from `from`: its priority, its correlation id (or its id),
    /// addressed to its reply-to queue.
    pub fn response(&self, from: &str, payload: serde_json::Value) -> Message {
        let mut m = Message::new(from, Kind::Response, self.priority, payload);
        m.to = self.reply_to.clone();
        m.correlation_id = Some(self.correlation_id.clone().unwrap_or_else(|| self.id.clone()));
        m
    }

    /// The queued file's name stem: priority rank, then the id (time first), so a sorted listing
    /// is the queue order.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.priority.rank(), self.id)
    }

    /// Whether its time to live has passed.
    pub fn expired(&self) -> bool {
        self.expires_at.is_some_and(|t| t <= Timestamp::now())
    }

    /// Encodes it as one line of JSON, refusing it when larger than the limit.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Invalid(format!("cannot encode message: {e}")))?;
        let max = max_bytes();
        if bytes.len() > max {
            return Err(Error::Invalid(format!(
                "message is {} bytes, over the limit of {max} (AF_BUS_MAX_BYTES)",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// The size limit of a message: `AF_BUS_MAX_BYTES`, else 1 MiB.
pub fn max_bytes() -> usize {
    std::env::var("AF_BUS_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_BYTES)
}

/// A fresh message id: nanoseconds since the epoch (20 digits, so ids sort by time), the pid and a
/// counter. Only digits and `-`, so it is a valid file name part and command-line argument.
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:020}-{}-{n}", std::process::id())
}

/// Checks a message id given on a command line.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(Error::Invalid(format!("'{}' is not a message id", id.escape_default())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_record_and_a_stored_one() {
        let m: Message = serde_json::from_str(r#"{"id":"1-2-3","createdAt":"2026-11-24T14:00:00.000Z"}"#).unwrap();
        assert_eq!(
            (m.kind, m.priority, m.attempts, m.payload.clone()),
            (Kind::Event, Priority::Normal, 0, serde_json::Value::Null)
        );
        let stored = r#"{"id":"01795531182548482706-2671-0","from":"cli","to":"w1","kind":"task","priority":"high","correlationId":"x","replyTo":"reply:1-2-3","expiresAt":"2026-11-24T15:00:00.000Z","attempts":0,"createdAt":"2026-11-24T14:39:42.548Z","payload":{"command":["true"]}}"#;
        let m: Message = serde_json::from_str(stored).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), stored, "a stored message reads and writes back the same");
    }

    #[test]
    fn stems_sort_by_priority_then_time() {
        let mut stems = Vec::new();
        for p in [Priority::Low, Priority::Normal, Priority::High, Priority::Critical] {
            stems.push(Message::new("t", Kind::Event, p, serde_json::Value::Null).stem());
        }
        let mut sorted = stems.clone();
        sorted.sort();
        assert_eq!(sorted, stems.into_iter().rev().collect::<Vec<_>>());
        assert_eq!(Priority::from_rank(b'0'), Some(Priority::Critical));
        assert_eq!(Priority::from_rank(b'4'), None);
        assert!(Priority::parse("urgent").is_err());
        assert!(Kind::parse("task").is_ok() && Kind::parse("x").is_err());
    }
}
