//! Alerts: one open alert per agent and check (deduplicated), escalated from warning to critical
//! when it persists, closed by a recovery. Each change is appended to the alert log, written to
//! the event log, published on the bus and piped to the alert.d hooks.

use crate::policy::Policy;
use crate::probe::Finding;
use crate::sibling;
use af_spool::atomic::{self, Durability};
use af_spool::health::{self, Alert, AlertLevel, Level};
use af_spool::lock::Lock;
use af_spool::record::Event;
use af_spool::time::Timestamp;
use af_spool::{AgentId, Spool, eventlog};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the alert hooks may run, all together.
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a publish on the bus may take.
const BUS_TIMEOUT: Duration = Duration::from_secs(5);

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
    for check in &finding.checks {
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
            (Some(AlertLevel::Warning), Some(a)) if a.opened_at.millis_until(now) >= p.escalate_ms => {
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
        if let Some(alert) = alert {
            if let Err(e) = emit(spool, &alert) {
                tracing::warn!("cannot record alert {}: {e}", alert.id);
            }
            emitted.push(alert);
        }
    }
    emitted
}

fn uptime_ms(spool: &Spool, id: &AgentId) -> u64 {
    spool.read_state(id).ok().and_then(|s| s.started_at).map_or(0, |t| t.age_ms())
}

/// Records an alert (open file, alert log, event log), then tells the bus and the hooks.
pub fn emit(spool: &Spool, alert: &Alert) -> af_spool::Result<()> {
    let open_path = spool.open_alert_path(&alert.agent, &alert.check);
    if alert.level == AlertLevel::Recovery {
        match std::fs::remove_file(&open_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(af_spool::Error::io("remove", &open_path, e));
            }
            _ => {}
        }
    } else {
        atomic::create_dir(&spool.open_alerts_dir())?;
        atomic::write_json(&open_path, alert, Durability::Durable)?;
    }
    log(spool, alert)?;
    let kind = if alert.level == AlertLevel::Recovery { "agent.recovered" } else { "agent.unhealthy" };
    let body = serde_json::to_value(alert).unwrap_or_default();
    eventlog::record(spool, Event::new(kind, Some(&alert.agent), body.clone()));
    publish(&format!("health.{}", alert.agent), &body);
    publish(kind, &body);
    run_hooks(spool, alert);
    Ok(())
}

/// Appends to the alert log (under its lock, so rotation never loses a line).
pub fn log(spool: &Spool, alert: &Alert) -> af_spool::Result<()> {
    let path = spool.alerts_log_path();
    let _lock = Lock::exclusive(&atomic::sibling(&path, ".lock"))?;
    health::append_line(&path, alert, health::ALERTS_MAX_BYTES)
}

fn publish(topic: &str, body: &serde_json::Value) {
    let text = body.to_string();
    if let Err(e) = sibling::run("af-bus", &["publish", "--topic", topic, &text], BUS_TIMEOUT) {
        tracing::info!("not published on {topic}: {e}");
    }
}

/// Pipes the alert to every executable in alert.d/ and alert.d/<level>/, all at once; a hook
/// that fails or hangs (killed after 10 s) does not stop the others.
pub fn run_hooks(spool: &Spool, alert: &Alert) {
    let base = spool.alert_hooks_dir();
    let mut programs = Vec::new();
    for dir in [base.clone(), base.join(alert.level.as_str())] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<_> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .filter(|p| is_executable(p))
            .collect();
        found.sort();
        programs.extend(found);
    }
    if programs.is_empty() {
        return;
    }
    let Ok(mut input) = serde_json::to_vec(alert) else { return };
    input.push(b'\n');
    let log_path = spool.log_dir().join("alert.d.log");
    let _ = atomic::create_dir(&spool.log_dir());
    let log = std::fs::OpenOptions::new().append(true).create(true).open(&log_path).ok();
    let mut children = Vec::new();
    let mut names = Vec::new();
    for p in &programs {
        match sibling::start_hook(p, &input, log.as_ref()) {
            Ok(c) => {
                children.push(c);
                names.push(p.clone());
            }
            Err(e) => tracing::warn!("cannot run alert hook {}: {e}", p.display()),
        }
    }
    for (name, code) in names.iter().zip(sibling::wait_all(children, Instant::now() + HOOK_TIMEOUT)) {
        if code != Some(0) {
            tracing::warn!("alert hook {} failed ({code:?}) for alert {}", name.display(), alert.id);
        }
    }
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
