//! The control pipe: how programs ask an agent's af-wrap to do something (stop, pause, resume) or
//! answer a ping. A request is one JSON line written without blocking into the agent's `control`
//! named pipe; a reply, when asked for, comes back on the asker's own pipe in the agent's fifodir.

use crate::atomic;
use crate::error::{Error, Result};
use crate::fifodir::{Fifodir, Listener};
use crate::id::AgentId;
use crate::spool::Spool;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What af-wrap is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Answer at once (response time, liveness).
    Ping,
    /// Stop the agent: SIGTERM to its process group, SIGKILL after `timeoutMs` (at once if
    /// `force`).
    Stop {
        /// Skip the grace period.
        #[serde(default)]
        force: bool,
        /// The grace period between SIGTERM and SIGKILL.
        #[serde(default = "default_stop_timeout", rename = "timeoutMs")]
        timeout_ms: u64,
    },
    /// Stop the process group (SIGSTOP).
    Pause,
    /// Continue the process group (SIGCONT).
    Resume,
    /// Interrupt the running turn of a claude-code agent (the task gets an `interrupted` answer).
    Interrupt,
}

fn default_stop_timeout() -> u64 {
    10_000
}

/// A request with its id and where to reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Chosen by the asker; the reply carries it back.
    pub id: String,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
    /// The asker's named pipe, in the agent's fifodir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<PathBuf>,
}

/// af-wrap's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id.
    pub id: String,
    /// Whether the request was carried out (or, for a stop, begun).
    pub ok: bool,
    /// Why not, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The agent's status after the request.
    pub status: crate::record::Status,
}

/// Writes a request into the agent's control pipe without blocking. Conflict when no af-wrap
/// listens.
pub fn send(spool: &Spool, agent: &AgentId, envelope: &Envelope) -> Result<()> {
    let path = spool.control_path(agent);
    let mut line = serde_json::to_vec(envelope).map_err(|e| Error::Invalid(format!("cannot encode request: {e}")))?;
    line.push(b'\n');
    // Only a named pipe, never through a symlink: a file planted there is refused unwritten.
    let mut pipe = crate::beneath::open_fifo(&path, true).map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ENXIO) | Some(nix::libc::ENOENT) => {
            Error::Conflict(format!("agent '{agent}' has no running supervisor"))
        }
        Some(nix::libc::ELOOP) => crate::beneath::refuse_link(&path),
        _ => Error::io("open control pipe", &path, e),
    })?;
    pipe.write_all(&line).map_err(|e| Error::io("write control pipe", &path, e))
}

/// Subscribes to the agent's fifodir, for replies and state changes. Subscribe before sending, so
/// nothing is missed.
pub fn listen(spool: &Spool, agent: &AgentId) -> Result<Listener> {
    Fifodir::new(spool.agent_notify_dir(agent)).subscribe()
}

/// Sends a request and waits up to `timeout` for af-wrap's reply.
pub fn ask(spool: &Spool, agent: &AgentId, request: Request, timeout: Duration) -> Result<Reply> {
    ask_on(spool, agent, request, &mut listen(spool, agent)?, timeout)
}

/// Sends a request whose reply comes back on `replies` (a listener the caller keeps for many
/// requests: a named pipe per request would cost more than the request), and waits up to
/// `timeout` for it. Late replies to earlier requests are skipped by their id.
pub fn ask_on(
    spool: &Spool,
    agent: &AgentId,
    request: Request,
    replies: &mut Listener,
    timeout: Duration,
) -> Result<Reply> {
    let listener = replies;
    let id = atomic::unique_name("req").trim_start_matches('.').to_owned();
    send(spool, agent, &Envelope { id: id.clone(), request, reply: Some(listener.path().to_path_buf()) })?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(format!("agent '{agent}' did not answer within {timeout:?}")));
        }
        for line in listener.wait(left)? {
            if let Ok(reply) = serde_json::from_str::<Reply>(&line) {
                if reply.id == id {
                    return Ok(reply);
                }
            }
        }
    }
}
