//! af-spawn: the lifecycle of AgentFlow agents in tmux.

mod cli;
mod cmd;
mod layout;
mod worktree;

use af_spool::cli::{Logs, main as run_main};

fn main() -> std::process::ExitCode {
    run_main::<cli::Cli>(Logs::Stderr, cmd::run)
}
