//! af-checkpoint's verbs, one module each, and what they share.

mod create;
mod diff;
mod ls;
mod rm;
mod rollback;

use crate::cli::{Cli, Command};
use af_ops::bridge::control::{self, Request};
use af_spool::host::own_host;
use af_spool::{AgentId, ExitCode, Spool};

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let spool = Spool::open_default()?;
    let json = cli.json;
    match cli.command {
        Command::Create { id, message } => match control::far(&id)? {
            Some((id, host)) => create::remote(&spool, &id, &host, &message, json),
            None => create::run(&spool, &agent_id(control::local(&id)?)?, &message, json),
        },
        Command::Ls { id } => ls::run(&spool, &agent_id(&id)?, json),
        Command::Show { id, ckpt } => ls::show(&spool, &agent_id(&id)?, &ckpt, json),
        Command::Diff { id, ckpt, patch } => diff::run(&spool, &agent_id(&id)?, &ckpt, patch, json),
        Command::Rm { id, ckpt } => rm::run(&spool, &agent_id(&id)?, &ckpt, json),
        Command::Prune { id, keep } => rm::prune(&spool, &agent_id(&id)?, keep, json),
        Command::Rollback { id, ckpt, no_restart, reset_index } => match control::far(&id)? {
            Some((id, host)) => {
                let request = Request {
                    checkpoint: Some(ckpt),
                    no_restart,
                    reset_index,
                    ..Request::new("checkpoint.rollback", &id, &own_host()?)
                };
                rollback::remote(&spool, &host, &request, json)
            }
            None => rollback::run(&spool, &agent_id(control::local(&id)?)?, &ckpt, !no_restart, reset_index, json),
        },
    }
}

/// How long a command for another host waits for its answer: the checkpoint's own work (a tree
/// copied, an agent stopped and started again) and the trip through both bridges.
pub const REMOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Validates an agent id from the command line.
pub fn agent_id(s: &str) -> anyhow::Result<AgentId> {
    Ok(AgentId::new(s)?)
}

pub use af_cli::{print_json, print_line};
