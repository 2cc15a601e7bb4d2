//! af-api's command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The REST gateway of AgentFlow (the seed's endpoints) and its live dashboard.
#[derive(Parser)]
#[command(
    name = "af-api",
    version,
    about = "REST gateway and live dashboard over the AgentFlow spool and tools",
    long_about = "REST gateway and live dashboard over the AgentFlow spool and tools.\n\n\
Serves the seed's endpoints under /api (reads through the spool, changes by running af-spawn, af-bus, \
af-health and af-checkpoint exactly as a shell user would), an OpenAPI 3 document at /api/openapi.json, \
Server-Sent Events of the event log at /api/events, /healthz, and the dashboard at /. Every /api call \
needs `Authorization: Bearer TOKEN'; the token is created on first start in $AF_HOME/api/token (0600) \
unless --token-file names one. On start it prints where the token lives on stderr, and the dashboard URL \
on stdout: with the token in its fragment when stdout is a terminal, without it otherwise (a pipe or the \
journal keeps what it is given). Mutating calls are written to the event log (audit).",
    after_help = af_spool::ExitCode::TABLE
)]
pub struct Cli {
    /// The address to listen on, ADDR:PORT (port 0 picks a free port; the bound address is printed).
    /// Anything but loopback needs --token-file.
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    pub listen: String,
    /// The bearer token file (its first line is the token, at least 16 characters). Default:
    /// $AF_HOME/api/token, created on first start.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Another Host header name to accept (repeatable), besides localhost, 127.0.0.1, [::1] and the
    /// listen address: every other Host is refused (403) against DNS rebinding.
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Requests per second allowed per client address (token bucket); 0 turns rate limiting off.
    #[arg(long, default_value_t = 200.0, value_name = "N")]
    pub rate_limit: f64,
    /// How many requests a client may make at once before the rate applies (bucket size).
    #[arg(long, default_value_t = 400, value_name = "N")]
    pub burst: u32,
    /// Worker threads answering requests (slow requests hold one each).
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Serve /metrics without the token to every client (by default only loopback clients, a
    /// Prometheus on this host, get it without one).
    #[arg(long)]
    pub metrics_public: bool,
    /// Print the startup line as JSON ({"url", "listen", "tokenFile"}; the url holds the token only on a terminal).
    #[arg(long, global = true)]
    pub json: bool,
    /// Without a verb, af-api serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs besides serving.
#[derive(Subcommand)]
pub enum Command {
    /// Print the bearer token file's path (made as on first start if missing): `Bearer $(cat PATH)`;
    /// with --show, the token itself. --json: {"tokenFile"} or {"tokenFile", "token"}.
    Token {
        /// Print the token itself instead of its file's path.
        #[arg(long)]
        show: bool,
    },
}
