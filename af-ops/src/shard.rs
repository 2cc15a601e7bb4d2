//! Spreading agents over several tmux servers. A tmux server costs about two descriptors per
//! session and slows down with thousands of them, so past `AF_TMUX_SESSIONS_PER_SERVER` sessions
//! (default [`DEFAULT_SESSIONS_PER_SERVER`]) a start puts the agent on the next server of its
//! family: `BASE`, then `BASE-2`, `BASE-3`, … (`BASE` is the agent config's `tmuxSocket`, else
//! `AF_TMUX_SOCKET`, else the default server, whose family goes on as `default-2`, …). The first
//! server with room takes it, so a server that died (no sessions left) is filled again first.
//!
//! Each agent's state records the server it was started on (`tmuxSocket`); everything that talks to
//! its session afterwards goes there ([`of`]). Every server is started by an AgentFlow program,
//! which raised its own descriptor limit first (see [`crate::process::raise_nofile`]): the server
//! inherits it.

use crate::tmux::{self, Tmux};
use af_spool::{Error, Result};
use std::collections::HashMap;

/// The variable that sets how many sessions one tmux server holds before the next one is used
/// (`0`: no limit, every agent on its family's first server).
pub const SESSIONS_VAR: &str = "AF_TMUX_SESSIONS_PER_SERVER";

/// How many sessions one tmux server holds unless [`SESSIONS_VAR`] says otherwise: about 800
/// descriptors at two per session, well under a soft limit of 1,024 should the server keep it.
pub const DEFAULT_SESSIONS_PER_SERVER: usize = 400;

/// The most servers of one family: a guard, never reached in practice (400,000 sessions).
const MAX_SERVERS: usize = 1000;

/// How many sessions a server takes before the next one is used; None: no limit. An unreadable
/// value is the default.
pub fn sessions_per_server() -> Option<usize> {
    match std::env::var(SESSIONS_VAR).ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(DEFAULT_SESSIONS_PER_SERVER),
    }
}

/// The `n`-th server of the family of `base` (1: `base` itself; None is the default server).
pub fn nth(base: Option<&str>, n: usize) -> Option<String> {
    if n <= 1 {
        return base.map(str::to_owned);
    }
    Some(format!("{}-{n}", base.unwrap_or("default")))
}

/// The servers of `base`'s family that have a socket (running, or killed and not cleaned up),
/// `base` first, then the others in order.
pub fn family(base: Option<&str>) -> Vec<Option<String>> {
    let name = base.unwrap_or("default");
    let mut found: Vec<(usize, Option<String>)> = Vec::new();
    if tmux::socket_path(name).exists() {
        found.push((1, base.map(str::to_owned)));
    }
    let dir = tmux::socket_path(name).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let n = file.strip_prefix(name).and_then(|r| r.strip_prefix('-')).and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = n.filter(|&n| n >= 2 && nth(base, n).as_deref() == Some(file.as_str())) {
            found.push((n, Some(file)));
        }
    }
    found.sort();
    found.into_iter().map(|(_, s)| s).collect()
}

/// The server an agent lives on (its state's `tmuxSocket`; None: the default server), with the
/// deadline of `tmux`.
pub fn of(tmux: &Tmux, state: &af_spool::record::AgentState) -> Tmux {
    tmux.on(state.tmux_socket.as_deref())
}

/// The server an agent runs on, as seen from inside it (af-wrap): the one its state records, else
/// `AF_TMUX_SOCKET`'s. The session's own `AF_TMUX_SOCKET` is the starter's, so that what the agent
/// starts goes into the starter's family, not its server's.
pub fn own(spool: &af_spool::Spool, id: &af_spool::AgentId) -> Tmux {
    let tmux = Tmux::from_env();
    match spool.read_state(id) {
        Ok(state) => of(&tmux, &state),
        Err(_) => tmux,
    }
}

/// Chooses servers for the agents of one start: the first server of the agent's family with room,
/// counting the sessions each server has (asked once) and those this placer gave it since.
#[derive(Debug, Default)]
pub struct Placer {
    limit: Option<usize>,
    counts: HashMap<Option<String>, usize>,
}

impl Placer {
    /// A placer with the limit of [`sessions_per_server`].
    pub fn new() -> Self {
        Placer { limit: sessions_per_server(), counts: HashMap::new() }
    }

    /// The server for one more session of the family of `base` (see the module's description),
    /// counted as taken. A server that does not answer in time is an error (Timeout), as it is for
    /// every verb: a start never goes elsewhere behind a wedged server's back. One that answers
    /// with an error counts as full.
    pub fn place(&mut self, tmux: &Tmux, base: Option<&str>) -> Result<Option<String>> {
        let Some(limit) = self.limit else { return Ok(base.map(str::to_owned)) };
        for n in 1..=MAX_SERVERS {
            let server = nth(base, n);
            let count = match self.counts.get_mut(&server) {
                Some(count) => count,
                None => self.counts.entry(server.clone()).or_insert(sessions(tmux, server.as_deref())?),
            };
            if *count < limit {
                *count += 1;
                return Ok(server);
            }
        }
        Err(Error::System(format!(
            "no tmux server of family '{}' has room: all {MAX_SERVERS} hold {limit} sessions ({SESSIONS_VAR})",
            base.unwrap_or("default")
        )))
    }
}

/// How many sessions a server has: none when no socket is there, all the room there is when it
/// answers with an error; Timeout when it does not answer.
fn sessions(tmux: &Tmux, socket: Option<&str>) -> Result<usize> {
    let server = tmux.on(socket);
    if !tmux::socket_path(server.name()).exists() {
        return Ok(0);
    }
    match server.sessions() {
        Ok(s) => Ok(s.len()),
        Err(e @ Error::Timeout(_)) => Err(e),
        Err(_) => Ok(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_family() {
        assert_eq!(nth(Some("af"), 1).as_deref(), Some("af"));
        assert_eq!(nth(Some("af"), 3).as_deref(), Some("af-3"));
        assert_eq!(nth(None, 1), None);
        assert_eq!(nth(None, 2).as_deref(), Some("default-2"));
    }
}
