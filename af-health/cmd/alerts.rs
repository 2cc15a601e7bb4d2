//! `af-health alerts` and `af-health ack`.

use super::{print_json, print_line};
use af_ops::bridge::control::{self, Request};
use af_spool::{ExitCode, Spool};
use std::time::Duration;

pub fn list(spool: &Spool, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let alerts = af_ops::health::alerts(spool, all)?;
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
    let a = af_ops::health::ack(spool, alert_id)?;
    show(&serde_json::to_value(&a)?, "", json)
}

/// `ack ALERT@HOST`: HOST's bridge acknowledges its alert (when it allows remote control).
pub fn ack_remote(spool: &Spool, alert_id: &str, host: &str, json: bool) -> anyhow::Result<ExitCode> {
    let request = Request::new("health.ack", alert_id, &af_spool::host::own_host()?);
    let mut a = control::remote(spool, host, &request, Duration::from_secs(30))?;
    a["host"] = host.into();
    show(&a, &format!("@{host}"), json)
}

fn show(a: &serde_json::Value, at: &str, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        print_json(a)?;
    } else {
        print_line(&format!("{}{at} acknowledged", a["id"].as_str().unwrap_or_default()))?;
    }
    Ok(ExitCode::Ok)
}
