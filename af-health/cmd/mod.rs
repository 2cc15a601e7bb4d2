//! af-health's verbs, one module each, and what they share.

mod alerts;
mod check;
mod history;
mod metrics;
mod rules;
mod trends;
mod watch;

use crate::cli::{Cli, Command};
use af_ops::health::pass::Scope;
use af_spool::{AgentId, Error, ExitCode, Spool};
use std::time::Duration;

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // SIGINT or SIGTERM during a wait (watch, and check waiting for pings) ends it with exit 130 and one line.
    af_spool::fifodir::interrupt_waits()?;
    let spool = Spool::open_default()?;
    let json = cli.json;
    match cli.command {
        Command::Check { ids, project, recover, tuning } => {
            let ids = if ids.is_empty() { None } else { Some(agent_ids(&ids)?) };
            check::run(&spool, &Scope { ids, project, patience: Duration::from_secs(2) }, &tuning, recover, json)
        }
        Command::Watch { interval, project, passes, tuning } => {
            if !interval.is_finite() || !(0.05..=86_400.0).contains(&interval) {
                return Err(
                    Error::Invalid(format!("--interval {interval} is not between 0.05 and 86400 seconds")).into()
                );
            }
            watch::run(&spool, &Scope { ids: None, project, patience: Duration::ZERO }, &tuning, interval, passes)
        }
        Command::History { id, since, limit } => {
            history::run(&spool, &AgentId::new(&id)?, since.as_deref(), limit, json)
        }
        Command::Alerts { all } => alerts::list(&spool, all, json),
        Command::Ack { alert_id } => match af_ops::bridge::control::far(&alert_id)? {
            Some((alert_id, host)) => alerts::ack_remote(&spool, &alert_id, &host, json),
            None => alerts::ack(&spool, af_ops::bridge::control::local(&alert_id)?, json),
        },
        Command::Metrics { output } => metrics::run(&spool, output.as_deref()),
        Command::Rules { command: crate::cli::RulesCommand::Check { file } } => {
            rules::check(&file.unwrap_or_else(|| spool.rules_path()), json)
        }
        Command::Trends { id, window } => {
            let id = id.map(|s| AgentId::new(&s)).transpose()?;
            trends::run(&spool, id.as_ref(), &window, json)
        }
    }
}

fn agent_ids(ids: &[String]) -> anyhow::Result<Vec<AgentId>> {
    Ok(ids.iter().map(|s| AgentId::new(s)).collect::<Result<_, _>>()?)
}

pub use af_cli::{print_json, print_line};

/// The policy the flags (and their AF_HEALTH_* variables) describe.
pub fn policy(t: &crate::cli::Tuning) -> anyhow::Result<af_ops::health::Policy> {
    if t.max_failures == 0 {
        return Err(Error::Invalid("--max-failures must be at least 1".into()).into());
    }
    let ms = |s: &str| -> anyhow::Result<u64> { Ok(af_spool::human::parse_duration(s)?.as_millis() as u64) };
    Ok(af_ops::health::Policy {
        stale_ms: ms(&t.stale)?.max(1),
        ping_timeout_ms: ms(&t.ping_timeout)?.max(1),
        escalate_ms: ms(&t.escalate_after)?,
        settle_ms: ms(&t.settle)?,
        backoff_ms: ms(&t.backoff)?.max(1),
        backoff_max_ms: ms(&t.backoff_max)?.max(1),
        reset_ms: ms(&t.reset_after)?,
        max_failures: t.max_failures,
        max_restarts: t.max_restarts,
        rate_window_ms: ms(&t.rate_window)?,
        ping: !t.no_ping,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn the_flags_defaults_are_the_operations_defaults() {
        // af-api runs health passes with Policy::default(); the CLI's must not drift from it.
        let cli = crate::cli::Cli::try_parse_from(["af-health", "check"]).unwrap();
        let crate::cli::Command::Check { tuning, .. } = cli.command else { panic!("not check") };
        assert_eq!(super::policy(&tuning).unwrap(), af_ops::health::Policy::default());
    }
}
