//! `af-health history`: an agent's check results, oldest first.

use super::{print_json, print_line};
use af_spool::health::Level;
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, ExitCode, Spool};

pub fn run(
    spool: &Spool,
    id: &AgentId,
    since: Option<&str>,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since.map(parse_since).transpose()?;
    let entries = af_ops::health::history(spool, id, since, limit)?;
    if json {
        print_json(&entries)?;
        return Ok(ExitCode::Ok);
    }
    for e in &entries {
        let bad: Vec<String> =
            e.checks.iter().filter(|c| c.level != Level::Ok).map(|c| format!("{}: {}", c.name, c.message)).collect();
        let health = e.health.as_str();
        let mut line = format!("{}  {:<8} {health:<9} {}", e.time.rfc3339(), e.status.as_str(), bad.join("; "));
        if let Some(a) = &e.action {
            line.push_str(&format!("  [{a}]"));
        }
        print_line(line.trim_end())?;
    }
    Ok(ExitCode::Ok)
}

/// A time: a duration back from now (`10m`) or an RFC 3339 UTC time.
pub fn parse_since(s: &str) -> anyhow::Result<Timestamp> {
    if let Some(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    let d = af_spool::human::parse_duration(s)
        .map_err(|_| Error::Invalid(format!("--since '{s}' is neither a duration (\"10m\") nor an RFC 3339 time")))?;
    Ok(Timestamp(Timestamp::now().0.saturating_sub(d.as_millis() as u64)))
}
