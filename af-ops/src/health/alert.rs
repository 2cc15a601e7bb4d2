//! Alerts: one open alert per agent and check (deduplicated), escalated from warning to critical
//! when it persists, closed by a recovery. Each change is appended to the alert log, written to
//! the event log, published on the bus and piped to the alert.d hooks (`crate::alert`).

use super::policy::Policy;
use super::probe::{self, Finding};
use af_spool::health::{self, Alert, AlertLevel, Level};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Spool};
use std::collections::HashMap;

/// Brings the agent's alerts in line with what the checks found. `open` holds its open alerts by
/// check (read once per pass); `first_failure` says the ladder is restarting the agent after its
/// first failure (a warning, not yet critical); `detail` says what the ladder did. Returns the alerts emitted.
pub fn update(
    spool: &Spool,
    id: &AgentId,
    finding: &Finding,
    first_failure: bool,
    open: &HashMap<String, Alert>,
    p: &Policy,
    detail: &serde_json::Value,
) -> Vec<Alert> {
    let now = Timestamp::now();
    let settled = finding.status == af_spool::record::Status::Running
        && finding.checks.iter().all(|c| c.level == Level::Ok)
        && !finding.checks.is_empty();
    let mut emitted = Vec::new();
    // The claude driver's check: its af-wrap raises (and closes) alerts of its own.
    for check in finding
        .checks
        .iter()
        .filter(|c| ![super::probe::CLAUDE_CHECK, super::probe::CODEX_CHECK].contains(&c.name.as_str()))
    {
        let current = open.get(&check.name);
        let want = match check.level {
            Level::Ok => None,
            // The first failure of a process the ladder is restarting is a warning; it persists
            // when it fails again.
            Level::Critical if check.name == "process" && first_failure => Some(AlertLevel::Warning),
            Level::Critical => Some(AlertLevel::Critical),
            Level::Warning => Some(AlertLevel::Warning),
        };
        let want = match (want, current) {
            (Some(AlertLevel::Warning), Some(a)) if a.level == AlertLevel::Critical => Some(AlertLevel::Critical),
            // An anomaly is a warning only: the figure left its normal, nothing has failed.
            (Some(AlertLevel::Warning), Some(a))
                if a.opened_at.millis_until(now) >= p.escalate_ms
                    && !check.name.starts_with(super::anomaly::PREFIX) =>
            {
                Some(AlertLevel::Critical)
            }
            (w, _) => w,
        };
        let alert = match (want, current) {
            (Some(level), None) => Some(Alert {
                id: health::new_alert_id(id, &check.name, now),
                level,
                agent: id.clone(),
                check: check.name.clone(),
                message: check.message.clone(),
                time: now,
                opened_at: now,
                acknowledged: false,
                detail: detail.clone(),
            }),
            (Some(level), Some(a)) if level != a.level => {
                Some(Alert { level, message: check.message.clone(), time: now, detail: detail.clone(), ..a.clone() })
            }
            (None, Some(a)) if settled && uptime_ms(spool, id) >= p.settle_ms => Some(Alert {
                level: AlertLevel::Recovery,
                message: format!("{} recovered: {}", check.name, check.message),
                time: now,
                detail: detail.clone(),
                ..a.clone()
            }),
            _ => None,
        };
        emitted.extend(alert);
    }
    // Healthy now: the open alerts of af-health's checks that this pass did not run (a ping
    // turned off, a limit taken away) close too. af-wrap's own (claude.*) are af-wrap's to close.
    if settled && !open.is_empty() && uptime_ms(spool, id) >= p.settle_ms {
        for (check, a) in open {
            let ran = finding.checks.iter().any(|c| &c.name == check);
            let ours = probe::CHECKS.contains(&check.as_str())
                || super::rules::CHECKS.contains(&check.as_str())
                || check.starts_with(super::anomaly::PREFIX);
            if ran || !ours {
                continue;
            }
            emitted.push(Alert {
                level: AlertLevel::Recovery,
                message: format!("{check} recovered: the agent is healthy"),
                time: now,
                detail: detail.clone(),
                ..a.clone()
            });
        }
    }
    for alert in &emitted {
        if let Err(e) = emit(spool, alert) {
            tracing::warn!("cannot record alert {}: {e}", alert.id);
        }
    }
    emitted
}

fn uptime_ms(spool: &Spool, id: &AgentId) -> u64 {
    spool.read_state(id).ok().and_then(|s| s.started_at).map_or(0, |t| t.age_ms())
}

/// Records an alert through the spool library (open file, alert log, event log, bus, hooks),
/// waiting for the hooks.
pub fn emit(spool: &Spool, alert: &Alert) -> af_spool::Result<()> {
    crate::alert::emit(spool, alert, crate::alert::Hooks::Wait)
}

/// Appends to the alert log.
pub fn log(spool: &Spool, alert: &Alert) -> af_spool::Result<()> {
    crate::alert::log(spool, alert)
}
