//! af-checkpoint: checkpoints of an agent's state, messages, conversation and working tree, and
//! rollback to them.

mod cli;
mod cmd;

use af_cli::{Logs, main as run_main};

fn main() -> std::process::ExitCode {
    run_main::<cli::Cli>(Logs::Stderr, cmd::run)
}
