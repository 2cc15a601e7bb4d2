//! `af-health alerts` and `af-health ack`.

use super::{print_json, print_line};
use af_ops::health::alert;
use af_spool::atomic::{self, Durability};
use af_spool::health::{self, Alert};
use af_spool::lock::Lock;
use af_spool::time::Timestamp;
use af_spool::{Error, ExitCode, Spool};

pub fn list(spool: &Spool, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let alerts: Vec<Alert> = if all { health::read_lines(&spool.alerts_log_path())? } else { spool.open_alerts()? };
    if json {
        print_json(&alerts)?;
        return Ok(ExitCode::Ok);
    }
    for a in &alerts {
        let ack = if a.acknowledged { " (acknowledged)" } else { "" };
        print_line(&format!(
            "{}  {}  {:<8} {:<20} {:<9} {}{ack}",
            a.id,
            a.time.rfc3339(),
            a.level.as_str(),
            a.agent.as_str(),
            a.check,
            a.message
        ))?;
    }
    Ok(ExitCode::Ok)
}

pub fn ack(spool: &Spool, alert_id: &str, json: bool) -> anyhow::Result<ExitCode> {
    health::validate_alert_id(alert_id)?;
    let Some(found) = spool.open_alerts()?.into_iter().find(|a| a.id == alert_id) else {
        let known = health::read_lines::<Alert>(&spool.alerts_log_path())?.iter().any(|a| a.id == alert_id);
        return Err(if known {
            Error::Conflict(format!("alert '{alert_id}' is closed already"))
        } else {
            Error::NotFound(format!("no alert '{alert_id}' (see: af-health alerts)"))
        }
        .into());
    };
    // Under the agent's health lock, so a pass does not rewrite the alert meanwhile.
    // (Not for a removed agent: taking the lock would make its directory again.)
    let _lock =
        if spool.exists(&found.agent) { Some(Lock::exclusive(&spool.health_lock_path(&found.agent))?) } else { None };
    let path = spool.open_alert_path(&found.agent, &found.check);
    let Some(mut a) = atomic::read_json::<Alert>(&path)?.filter(|a| a.id == alert_id) else {
        return Err(Error::Conflict(format!("alert '{alert_id}' is closed already")).into());
    };
    if !a.acknowledged {
        a.acknowledged = true;
        atomic::write_json(&path, &a, Durability::Durable)?;
        let mut line = a.clone();
        line.time = Timestamp::now();
        alert::log(spool, &line)?;
    }
    if json {
        print_json(&a)?;
    } else {
        print_line(&format!("{} acknowledged", a.id))?;
    }
    Ok(ExitCode::Ok)
}
