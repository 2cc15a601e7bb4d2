//! The append-only event log: one JSON line per lifecycle change, alert or API call.

use crate::error::{Error, Result};
use crate::fifodir::Fifodir;
use crate::record::Event;
use crate::spool::Spool;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Appends `event` to the spool's event log with one `write` (O_APPEND, so concurrent writers
/// never interleave within a line) and wakes the log's listeners.
pub fn append(spool: &Spool, event: &Event) -> Result<()> {
    let path = spool.events_path();
    let mut line = serde_json::to_vec(event).map_err(|e| Error::Invalid(format!("cannot serialize event: {e}")))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    f.write_all(&line).map_err(|e| Error::io("append to", &path, e))?;
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

/// Reads every event in the log (skipping lines that do not parse).
pub fn read_all(spool: &Spool) -> Result<Vec<Event>> {
    let path = spool.events_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}
