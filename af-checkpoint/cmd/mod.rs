//! af-checkpoint's verbs, one module each, and what they share.

mod create;
mod diff;
mod ls;
mod rm;
mod rollback;

use crate::cli::{Cli, Command};
use af_spool::{AgentId, ExitCode, Spool};

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let spool = Spool::open_default()?;
    let json = cli.json;
    match cli.command {
        Command::Create { id, message } => create::run(&spool, &agent_id(&id)?, &message, json),
        Command::Ls { id } => ls::run(&spool, &agent_id(&id)?, json),
        Command::Show { id, ckpt } => ls::show(&spool, &agent_id(&id)?, &ckpt, json),
        Command::Diff { id, ckpt, patch } => diff::run(&spool, &agent_id(&id)?, &ckpt, patch, json),
        Command::Rm { id, ckpt } => rm::run(&spool, &agent_id(&id)?, &ckpt, json),
        Command::Prune { id, keep } => rm::prune(&spool, &agent_id(&id)?, keep, json),
        Command::Rollback { id, ckpt, no_restart, reset_index } => {
            rollback::run(&spool, &agent_id(&id)?, &ckpt, !no_restart, reset_index, json)
        }
    }
}

/// Validates an agent id from the command line.
pub fn agent_id(s: &str) -> anyhow::Result<AgentId> {
    Ok(AgentId::new(s)?)
}

pub use af_cli::{print_json, print_line};
