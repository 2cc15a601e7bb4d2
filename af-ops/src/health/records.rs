//! Reading health's records: an agent's history, the open (or all) alerts, and acknowledging an
//! alert.

use super::alert;
use af_spool::atomic::{self, Durability};
use af_spool::health::{self, Alert, HistoryEntry};
use af_spool::lock::Lock;
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Result, Spool};

/// An agent's check results, oldest first: those since `since`, at most the last `limit`.
pub fn history(
    spool: &Spool,
    id: &AgentId,
    since: Option<Timestamp>,
    limit: Option<usize>,
) -> Result<Vec<HistoryEntry>> {
    spool.require(id)?;
    let mut entries: Vec<HistoryEntry> = health::read_lines(&spool.history_path(id))?;
    if let Some(t) = since {
        entries.retain(|e| e.time >= t);
    }
    if let Some(n) = limit {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    Ok(entries)
}

/// The open alerts, or with `all` every alert ever logged (the alert log, capped).
pub fn alerts(spool: &Spool, all: bool) -> Result<Vec<Alert>> {
    if all { health::read_lines(&spool.alerts_log_path()) } else { spool.open_alerts() }
}

/// Acknowledges an open alert (NotFound: no such alert; Conflict: closed already); returns it.
pub fn ack(spool: &Spool, alert_id: &str) -> Result<Alert> {
    health::validate_alert_id(alert_id)?;
    let Some(found) = spool.open_alerts()?.into_iter().find(|a| a.id == alert_id) else {
        let known = health::read_lines::<Alert>(&spool.alerts_log_path())?.iter().any(|a| a.id == alert_id);
        return Err(if known {
            Error::Conflict(format!("alert '{alert_id}' is closed already"))
        } else {
            Error::NotFound(format!("no alert '{alert_id}' (see: af-health alerts)"))
        });
    };
    // Under the agent's health lock, so a pass does not rewrite the alert meanwhile.
    // (Not for a removed agent: taking the lock would make its directory again.)
    let _lock =
        if spool.exists(&found.agent) { Some(Lock::exclusive(&spool.health_lock_path(&found.agent))?) } else { None };
    let path = spool.open_alert_path(&found.agent, &found.check);
    let Some(mut a) = atomic::read_json::<Alert>(&path)?.filter(|a| a.id == alert_id) else {
        return Err(Error::Conflict(format!("alert '{alert_id}' is closed already")));
    };
    if !a.acknowledged {
        a.acknowledged = true;
        atomic::write_json(&path, &a, Durability::Durable)?;
        let mut line = a.clone();
        line.time = Timestamp::now();
        alert::log(spool, &line)?;
    }
    Ok(a)
}
