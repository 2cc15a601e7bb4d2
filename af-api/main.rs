//! af-api: the REST gateway and live dashboard of AgentFlow.

mod agent;
mod agents;
mod assets;
mod cli;
mod cluster;
mod cockpit;
mod events;
mod guard;
mod host;
mod http;
mod messages;
mod metrics;
mod orchestrator;
mod routes;
mod server;

fn main() -> std::process::ExitCode {
    af_cli::main::<cli::Cli>(af_cli::Logs::Stderr, server::run)
}
