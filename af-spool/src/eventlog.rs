//! The event log: one JSON line per lifecycle change, alert, API call or Claude hook, appended to
//! `events.log` by every program at once, and kept to a bounded size.
//!
//! - Size: when an append would take the live file past [`Limits::max_bytes`]
//!   (`AF_EVENTS_MAX_BYTES`, default 8 MiB), the file is renamed to `events.log.1` first (`.1`
//!   becomes `.2` and so on), and [`Limits::keep`] older generations (`AF_EVENTS_KEEP`, default 3)
//!   are kept; the oldest beyond them is dropped. Writers open the log with O_APPEND and rotate
//!   only under `events.lock`, re-checking the size there, so many processes rotate it once.
//!   A writer that opened the file just before a rename appends to `events.log.1`: the line is
//!   kept, in the previous generation.
//! - Lines: an event whose line would be over [`MAX_LINE`] has its detail cut down (see
//!   [`encode`]): long strings become prefixes, long lists and maps keep their first items, and the
//!   detail says `"truncated": true, "bytes": N` (N the size of the whole detail's JSON).
//! - Readers stream the files line by line ([`history`], [`last`]), oldest generation first, or
//!   follow the live file across rotations ([`Follower`]); none loads the log whole.

mod cap;
mod follow;
mod lines;
mod read;
mod rotate;
#[cfg(test)]
mod tests;

pub use cap::{MAX_LINE, encode};
pub use follow::{Follower, Start};
pub use read::{Cursor, Events, Line, Lines, Stamp, disk_bytes, history, last, lines, stamp};

use crate::error::{Error, Result};
use crate::fifodir::Fifodir;
use crate::record::Event;
use crate::spool::Spool;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// The live file's default size limit: 8 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 8 << 20;
/// How many older generations are kept by default.
pub const DEFAULT_KEEP: usize = 3;
/// The most older generations anyone may ask to keep: a reader opens every one of them.
pub const MAX_KEEP: usize = 1000;

/// How big the event log may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The live file is rotated before an append would take it past this many bytes (a line
    /// larger than this still goes whole into a file of its own).
    pub max_bytes: u64,
    /// How many older generations (`events.log.1` …) are kept: at least 1, since a writer that
    /// opened the live file just before it was rotated still appends to it.
    pub keep: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: DEFAULT_MAX_BYTES, keep: DEFAULT_KEEP }
    }
}

impl Limits {
    /// The limits set by `AF_EVENTS_MAX_BYTES` (a size such as `"8MB"`) and `AF_EVENTS_KEEP`,
    /// read once per process; an invalid value is reported and replaced by its default.
    pub fn from_env() -> Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        *LIMITS.get_or_init(|| {
            let max = std::env::var("AF_EVENTS_MAX_BYTES").ok();
            let keep = std::env::var("AF_EVENTS_KEEP").ok();
            Limits::parse(max.as_deref(), keep.as_deref()).unwrap_or_else(|e| {
                tracing::warn!("{e}; using the defaults for the event log");
                Limits::default()
            })
        })
    }

    /// Limits from the two settings' text; `None` (or an empty string) means the default. A keep
    /// of 0 counts as 1.
    pub fn parse(max_bytes: Option<&str>, keep: Option<&str>) -> Result<Limits> {
        let mut limits = Limits::default();
        if let Some(max) = max_bytes.filter(|s| !s.trim().is_empty()) {
            limits.max_bytes =
                crate::human::parse_size(max).map_err(|e| Error::Invalid(format!("AF_EVENTS_MAX_BYTES: {e}")))?;
        }
        if let Some(keep) = keep.filter(|s| !s.trim().is_empty()) {
            limits.keep = match keep.trim().parse::<usize>() {
                Ok(n) if n <= MAX_KEEP => n.max(1),
                _ => {
                    return Err(Error::Invalid(format!(
                        "AF_EVENTS_KEEP '{keep}' is not a number of files from 1 to {MAX_KEEP}"
                    )));
                }
            };
        }
        Ok(limits)
    }
}

/// Appends `event` to the spool's event log (cut down to [`MAX_LINE`] if need be, rotating the
/// log when it is due under [`Limits::from_env`]) and wakes the log's listeners.
pub fn append(spool: &Spool, event: &Event) -> Result<()> {
    append_with(spool, event, Limits::from_env())
}

/// The tracing target of the records that mirror the events a program appends: logging sends
/// them to journald alone (with `KIND`, `AGENT_ID`, `BY` and `DETAIL` fields), the log files and
/// stderr leave them out.
pub const LOG_TARGET: &str = "agentflow::event";

/// [`append`] under explicit limits.
pub fn append_with(spool: &Spool, event: &Event, limits: Limits) -> Result<()> {
    let line = encode(event)?;
    write_line(spool, &line, limits)?;
    match &event.agent {
        Some(a) => tracing::info!(target: LOG_TARGET, kind = %event.kind, agent_id = %a, by = %event.by,
            detail = %event.detail, "{} {a}", event.kind),
        None => tracing::info!(target: LOG_TARGET, kind = %event.kind, by = %event.by, detail = %event.detail,
            "{}", event.kind),
    }
    Fifodir::new(spool.events_notify_dir()).notify(&serde_json::json!({"kind": event.kind}));
    Ok(())
}

/// Appends an event, logging (not failing) when the log cannot be written: an event is a record of
/// what happened, and what happened must not be undone because the log is full.
pub fn record(spool: &Spool, event: Event) {
    if let Err(e) = append(spool, &event) {
        tracing::warn!("cannot write event {}: {e}", event.kind);
    }
}

/// Writes one encoded line (ending in a newline) with one `write` on an O_APPEND descriptor: the
/// kernel appends it whole, so concurrent writers never interleave within a line.
fn write_line(spool: &Spool, line: &[u8], limits: Limits) -> Result<()> {
    let path = spool.events_path();
    let mut f = open_append(&path)?;
    let size = f.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
    if size > 0 && size + line.len() as u64 > limits.max_bytes {
        if let Err(e) = rotate::rotate_if_due(spool, limits, line.len() as u64) {
            // The event matters more than the bound: it goes into the file as it is.
            tracing::warn!("cannot rotate the event log: {e}");
        }
        f = open_append(&path)?;
    }
    f.write_all(line).map_err(|e| Error::io("append to", &path, e))
}

/// Opens the live file for appending, creating it 0600, never through a symlink.
fn open_append(path: &Path) -> Result<File> {
    crate::beneath::open_append(path)
}
