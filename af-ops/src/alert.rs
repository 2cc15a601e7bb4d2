//! Raising alerts: the one way an alert reaches the spool, shared by af-health's checks and by
//! af-wrap's own (a claude-code agent that is not logged in, out of budget, rate limited…). The
//! open alert file is written (removed by a recovery), the alert appended to `alerts.log`, written
//! to the event log, published on the bus topics `health.<agent>` and `agent.unhealthy` (or
//! `agent.recovered`), and piped to the `alert.d/` hooks.

use crate::bus::{self, Target};
use crate::process::{self, is_executable};
use af_spool::atomic::{self, Durability};
use af_spool::eventlog;
use af_spool::health::{self, Alert, AlertLevel};
use af_spool::id::AgentId;
use af_spool::lock::Lock;
use af_spool::message::{Kind, Message, Priority};
use af_spool::record::Event;
use af_spool::time::Timestamp;
use af_spool::{Error, Result, Spool};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the alert hooks may run, all together, when the caller waits for them.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Raises (or, with the same level, repeats) the alert of `agent`'s `check`: it keeps the id and
/// opening time of the open alert of that check, if any. `hooks` as in [`emit`].
pub fn raise(
    spool: &Spool,
    agent: &AgentId,
    level: AlertLevel,
    check: &str,
    message: &str,
    hooks: Hooks,
) -> Result<Alert> {
    let now = Timestamp::now();
    let open = atomic::read_json::<Alert>(&spool.open_alert_path(agent, check)).ok().flatten();
    let alert = match open {
        Some(a) => Alert { level, message: message.to_owned(), time: now, ..a },
        None => Alert {
            id: health::new_alert_id(agent, check, now),
            level,
            agent: agent.clone(),
            check: check.to_owned(),
            message: message.to_owned(),
            time: now,
            opened_at: now,
            acknowledged: false,
            detail: serde_json::Value::Null,
        },
    };
    if level == AlertLevel::Recovery && !spool.open_alert_path(agent, check).exists() {
        // Nothing was open: nothing to recover from.
        return Ok(alert);
    }
    emit(spool, &alert, hooks)?;
    Ok(alert)
}

/// What becomes of the alert.d hooks' processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    /// Waited for up to [`HOOK_TIMEOUT`], killed after it (af-health).
    Wait,
    /// Started and left running: the caller reaps every child itself (af-wrap, whose loop must
    /// not stall on a slow hook).
    Detach,
}

/// Records an alert (open file, alert log, event log), then tells the bus and the hooks.
pub fn emit(spool: &Spool, alert: &Alert, hooks: Hooks) -> Result<()> {
    let open_path = spool.open_alert_path(&alert.agent, &alert.check);
    let before = atomic::read_json::<Alert>(&open_path).ok().flatten().map(|a| a.level);
    match before {
        Some(was) if alert.level == AlertLevel::Recovery => {
            spool.tally().add(&[format!("alert-resolved:{}", was.as_str())]);
        }
        None if alert.level == AlertLevel::Recovery => {}
        Some(was) if was == alert.level => {}
        _ => spool.tally().add(&[format!("alert-raised:{}", alert.level.as_str())]),
    }
    if alert.level == AlertLevel::Recovery {
        match std::fs::remove_file(&open_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("remove", &open_path, e)),
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
    for topic in [format!("health.{}", alert.agent), kind.to_owned()] {
        let mut m = Message::new("af-health", Kind::Event, Priority::Normal, body.clone());
        m.topic = Some(topic.clone());
        if let Err(e) = bus::post(spool, m, &Target::Topic, true) {
            tracing::info!("alert not published on {topic}: {e}");
        }
    }
    run_hooks(spool, alert, hooks);
    Ok(())
}

/// Appends to the alert log (under its lock, so rotation never loses a line).
pub fn log(spool: &Spool, alert: &Alert) -> Result<()> {
    let path = spool.alerts_log_path();
    let _lock = Lock::exclusive(&atomic::sibling(&path, ".lock"))?;
    health::append_line(&path, alert, health::ALERTS_MAX_BYTES)
}

/// Pipes the alert to every executable in alert.d/ and alert.d/<level>/, all at once; a hook
/// that fails or hangs does not stop the others.
pub fn run_hooks(spool: &Spool, alert: &Alert, hooks: Hooks) {
    let programs = hook_programs(&spool.alert_hooks_dir(), alert.level);
    if programs.is_empty() {
        return;
    }
    let Ok(mut input) = serde_json::to_vec(alert) else { return };
    input.push(b'\n');
    let _ = atomic::create_dir(&spool.log_dir());
    let log = af_spool::beneath::open_append(&spool.log_dir().join("alert.d.log")).ok();
    let mut children = Vec::new();
    for p in programs {
        match start_hook(&p, &input, log.as_ref()) {
            Ok(c) => children.push((p, c)),
            Err(e) => tracing::warn!("cannot run alert hook {}: {e}", p.display()),
        }
    }
    if hooks == Hooks::Detach {
        return;
    }
    let deadline = Instant::now() + HOOK_TIMEOUT;
    for (name, mut c) in children {
        let code = match process::wait_by(&mut c, deadline) {
            Some(st) => st.code(),
            None => {
                process::kill_group(c.id());
                let _ = c.wait();
                None
            }
        };
        if code != Some(0) {
            tracing::warn!("alert hook {} failed ({code:?}) for alert {}", name.display(), alert.id);
        }
    }
}

fn hook_programs(base: &Path, level: AlertLevel) -> Vec<PathBuf> {
    let mut programs = Vec::new();
    for dir in [base.to_path_buf(), base.join(level.as_str())] {
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
    programs
}

/// Starts a hook in its own process group, without the identity of the agent we may run in (so
/// it is not mistaken for part of it), the alert on its stdin, its output to `log`.
fn start_hook(program: &Path, input: &[u8], log: Option<&std::fs::File>) -> std::io::Result<Child> {
    let mut c = Command::new(program);
    c.env_remove("AF_AGENT_ID").env_remove("AF_PROJECT_ID").env_remove("AF_AGENT_TYPE").process_group(0);
    let out = || log.and_then(|f| f.try_clone().ok()).map_or(Stdio::null(), Stdio::from);
    c.stdin(Stdio::piped()).stdout(out()).stderr(out());
    let mut child = c.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // Small (an alert); a hook that does not read it must not stop us: ignore EPIPE.
        let _ = stdin.write_all(input);
    }
    Ok(child)
}

/// Closes one open alert of `agent` with a recovery that says `why` ("was stopped"). The alert
/// is claimed by a rename first, so that a pass and a stop never close one twice. Returns whether
/// this call closed it.
pub fn close(spool: &Spool, agent: &AgentId, check: &str, why: &str) -> bool {
    let path = spool.open_alert_path(agent, check);
    let Ok(Some(a)) = af_spool::atomic::read_json::<Alert>(&path) else { return false };
    let claim = spool.open_alerts_dir().join(af_spool::atomic::unique_name("closing"));
    if std::fs::rename(&path, &claim).is_err() {
        return false;
    }
    let closed = Alert {
        level: AlertLevel::Recovery,
        message: format!("{} alert closed: agent {} {why}", a.check, a.agent),
        time: Timestamp::now(),
        ..a
    };
    if let Err(e) = emit(spool, &closed, Hooks::Wait) {
        tracing::warn!("cannot close alert {}: {e}", closed.id);
    }
    let _ = std::fs::remove_file(&claim);
    true
}

/// Closes every open alert of `agent` (see [`close`]): what a stop or a removal does, so that no
/// alert waits for the next af-health pass to learn that its agent is gone.
pub fn close_all(spool: &Spool, agent: &AgentId, why: &str) {
    let Ok(open) = spool.open_alerts() else { return };
    for a in open.iter().filter(|a| &a.agent == agent) {
        close(spool, agent, &a.check, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_raised_again_keeps_its_alert_and_a_recovery_closes_it() {
        let root = std::env::temp_dir().join(atomic::unique_name("alert-test"));
        let spool = Spool::open(&root).unwrap();
        let id = AgentId::new("a1").unwrap();
        assert!(raise(&spool, &id, AlertLevel::Recovery, "x.y", "fine", Hooks::Wait).is_ok());
        assert!(spool.open_alerts().unwrap().is_empty(), "nothing open, nothing recovered");
        let first = raise(&spool, &id, AlertLevel::Warning, "x.y", "one", Hooks::Wait).unwrap();
        let again = raise(&spool, &id, AlertLevel::Critical, "x.y", "two", Hooks::Wait).unwrap();
        assert_eq!(first.id, again.id);
        let open = spool.open_alerts().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].level, open[0].message.as_str()), (AlertLevel::Critical, "two"));
        raise(&spool, &id, AlertLevel::Recovery, "x.y", "fine", Hooks::Wait).unwrap();
        assert!(spool.open_alerts().unwrap().is_empty());
        let log: Vec<Alert> = health::read_lines(&spool.alerts_log_path()).unwrap();
        let levels: Vec<_> = log.iter().map(|a| a.level).collect();
        assert_eq!(levels, [AlertLevel::Warning, AlertLevel::Critical, AlertLevel::Recovery]);
        // Counted once each: raised at warning, raised a level to critical, resolved from critical;
        // a repeat at the same level is no new alert.
        raise(&spool, &id, AlertLevel::Warning, "x.z", "three", Hooks::Wait).unwrap();
        raise(&spool, &id, AlertLevel::Warning, "x.z", "three again", Hooks::Wait).unwrap();
        let counts = spool.tally().fold().unwrap().counts;
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        assert_eq!(
            (
                n("alert-raised:warning"),
                n("alert-raised:critical"),
                n("alert-resolved:critical"),
                n("alert-resolved:warning")
            ),
            (2, 1, 1, 0),
            "{counts:?}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
