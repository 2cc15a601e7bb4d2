//! af-api: placeholder until its issue lands.

use clap::Parser;

#[derive(Parser)]
#[command(name = "af-api", version, about = "AgentFlow af-api (not built yet)", after_help = af_spool::ExitCode::TABLE)]
struct Cli {}

fn main() -> std::process::ExitCode {
    af_spool::cli::main::<Cli>(af_spool::cli::Logs::Stderr, |_cli| {
        anyhow::bail!(af_spool::Error::System("af-api is not built yet".into()))
    })
}
