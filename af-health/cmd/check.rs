//! `af-health check`: one pass, for cron and systemd timers.

use super::{print_json, print_line};
use crate::cli::Tuning;
use af_ops::health::pass::{self, Outcome, Scope};
use af_spool::health::Level;
use af_spool::{ExitCode, Spool};

pub fn run(spool: &Spool, scope: &Scope, tuning: &Tuning, recover: bool, json: bool) -> anyhow::Result<ExitCode> {
    let policy = super::policy(tuning)?;
    let outcome = pass::run(spool, scope, &policy, recover)?;
    if json {
        print_json(&outcome.document())?;
    } else {
        print(&outcome)?;
    }
    Ok(if outcome.healthy() { ExitCode::Ok } else { ExitCode::Negative })
}

/// The human form: one line per agent, then one indented line per check that is not ok.
pub fn print(outcome: &Outcome) -> anyhow::Result<()> {
    for r in &outcome.reports {
        let health = r.health.as_str();
        let mut line = format!("{:<24} {:<9} {health}", r.id.as_str(), r.status.as_str());
        if let Some(ms) = r.response_ms {
            line.push_str(&format!("  ping {ms:.1} ms"));
        }
        if let Some(rss) = r.rss_bytes {
            line.push_str(&format!("  rss {}", af_spool::human::format_size(rss)));
        }
        if let Some(s) = &r.skipped {
            line.push_str(&format!("  ({s})"));
        }
        print_line(&line)?;
        for c in r.checks.iter().filter(|c| c.level != Level::Ok) {
            let level = if c.level == Level::Critical { "critical" } else { "warning" };
            print_line(&format!("    {level:<8} {:<9} {}", c.name, c.message))?;
        }
        if let Some(a) = &r.action {
            print_line(&format!("    ladder   {a}"))?;
        }
    }
    Ok(())
}
