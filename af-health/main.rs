//! af-health: checks, the recovery ladder, alerts, history and trends for AgentFlow agents.

mod cli;
mod cmd;

fn main() -> std::process::ExitCode {
    af_cli::main::<cli::Cli>(af_cli::Logs::Stderr, cmd::run)
}
