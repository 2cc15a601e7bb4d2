//! af-spawn's verbs, one module each, over the lifecycle operations (af-ops).

mod attach;
mod create;
mod gc;
mod logs;
mod ls;
mod remote;
mod reset;
mod rm;
mod script;
mod show;
mod start;
mod stop;
mod top;

use crate::cli::{Cli, Command};
use af_ops::lifecycle::Lifecycle;
use af_spool::{AgentId, Error, ExitCode};
use std::time::Duration;

/// What every verb works with: the lifecycle (spool and tmux server), and how to print.
pub struct Ctx {
    /// The spool and tmux server.
    pub ops: Lifecycle,
    /// Whether to print JSON.
    pub json: bool,
}

impl std::ops::Deref for Ctx {
    type Target = Lifecycle;
    fn deref(&self) -> &Lifecycle {
        &self.ops
    }
}

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // SIGINT or SIGTERM during a wait (start, stop, restart, logs -f, top) ends it with exit 130 and one line.
    af_spool::fifodir::interrupt_waits()?;
    let ctx = Ctx { ops: Lifecycle::from_env()?, json: cli.json };
    match cli.command {
        Command::Create { config, start, keep_failed, worktree } => {
            create::run(&ctx, &config, start.then_some(create::Start { keep_failed }), worktree)
        }
        Command::Start { ids, no_wait, timeout, keep_going } => match remote::split(&ids)? {
            (local, far) if far.is_empty() => start::run(&ctx, &local, !no_wait, seconds(timeout)?, keep_going),
            (local, far) if local.is_empty() => remote::run(&ctx, "start", &far, false, seconds(timeout)?),
            _ => Err(mixed()),
        },
        Command::Stop { ids, force, timeout } => match remote::split(&ids)? {
            (local, far) if far.is_empty() => stop::run(&ctx, &local, force, seconds(timeout)?),
            (local, far) if local.is_empty() => remote::run(&ctx, "stop", &far, force, seconds(timeout)?),
            _ => Err(mixed()),
        },
        Command::Pause { id } => match remote::split(std::slice::from_ref(&id))? {
            (_, far) if !far.is_empty() => remote::run(&ctx, "pause", &far, false, remote::QUICK),
            (local, _) => stop::pause(&ctx, &agent_id(&local[0])?, true),
        },
        Command::Resume { id } => match remote::split(std::slice::from_ref(&id))? {
            (_, far) if !far.is_empty() => remote::run(&ctx, "resume", &far, false, remote::QUICK),
            (local, _) => stop::pause(&ctx, &agent_id(&local[0])?, false),
        },
        Command::Restart { id, timeout } => match remote::split(std::slice::from_ref(&id))? {
            (_, far) if !far.is_empty() => remote::run(&ctx, "restart", &far, false, seconds(timeout)?),
            (local, _) => start::restart(&ctx, &agent_id(&local[0])?, seconds(timeout)?),
        },
        Command::Rm { ids, force } => rm::run(&ctx, &ids, force),
        Command::Reset { id } => reset::run(&ctx, &agent_id(&id)?),
        Command::Ls { project, summary: _, cluster: true, redis } => ls::cluster(&ctx, project.as_deref(), &redis.url),
        Command::Ls { project, summary, .. } => ls::run(&ctx, project.as_deref(), summary),
        Command::Show { id, redis } => match af_ops::bridge::control::far(&id)? {
            Some((id, host)) => show::far(&ctx, &id, &host, &redis.url),
            None => show::run(&ctx, &agent_id(af_ops::bridge::control::local(&id)?)?),
        },
        Command::Attach { id } => attach::run(&ctx, &agent_id(&id)?),
        Command::Logs { id, follow, lines, supervisor } => logs::run(&ctx, &agent_id(&id)?, follow, lines, supervisor),
        Command::Gc { dry_run, max_age, max_size } => gc::run(&ctx, dry_run, &max_age, &max_size),
        Command::Script { id } => script::run(&ctx, &agent_id(&id)?),
        Command::Top { id, once, interval } => top::run(&ctx, &agent_id(&id)?, once, seconds(interval)?),
    }
}

/// One run names agents of this host or of other hosts, not both.
fn mixed() -> anyhow::Error {
    Error::Invalid("name agents of this host or agents of other hosts (ID@HOST) in one run, not both".into()).into()
}

/// Validates an agent id from the command line.
pub fn agent_id(s: &str) -> anyhow::Result<AgentId> {
    Ok(AgentId::new(s)?)
}

/// Validates a number of seconds from the command line.
pub fn seconds(s: f64) -> anyhow::Result<Duration> {
    if !s.is_finite() || !(0.0..=1e9).contains(&s) {
        return Err(Error::Invalid(format!("{s} is not a number of seconds")).into());
    }
    Ok(Duration::from_secs_f64(s))
}

pub use af_cli::{print_json, print_line};
