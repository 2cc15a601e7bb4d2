//! af-health's verbs, one module each, and what they share.

mod alerts;
mod check;
mod history;
mod trends;
mod watch;

use crate::cli::{Cli, Command};
use crate::pass::Scope;
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
        Command::Ack { alert_id } => alerts::ack(&spool, &alert_id, json),
        Command::Trends { id, window } => {
            let id = id.map(|s| AgentId::new(&s)).transpose()?;
            trends::run(&spool, id.as_ref(), &window, json)
        }
    }
}

fn agent_ids(ids: &[String]) -> anyhow::Result<Vec<AgentId>> {
    Ok(ids.iter().map(|s| AgentId::new(s)).collect::<Result<_, _>>()?)
}

pub use af_spool::cli::{print_json, print_line};
