//! af-bus: durable, prioritized messages between AgentFlow agents.

mod cli;
mod cmd;

use af_cli::{Logs, main as run_main};

fn main() -> std::process::ExitCode {
    run_main::<cli::Cli>(Logs::Stderr, cmd::run)
}
