//! af-health: checks, the recovery ladder, alerts, history and trends for AgentFlow agents.

mod alert;
mod cli;
mod cmd;
mod ladder;
mod pass;
mod policy;
mod probe;
mod sibling;

fn main() -> std::process::ExitCode {
    af_spool::cli::main::<cli::Cli>(af_spool::cli::Logs::Stderr, cmd::run)
}
