//! `af-health alerts` and `af-health ack`.

use super::{print_json, print_line};
use af_spool::{ExitCode, Spool};

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
    if json {
        print_json(&a)?;
    } else {
        print_line(&format!("{} acknowledged", a.id))?;
    }
    Ok(ExitCode::Ok)
}
