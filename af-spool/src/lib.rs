//! The spool contract of AgentFlow: where every record lives under `$AF_HOME`, what each record
//! holds, and the only sanctioned ways to write them (atomically), lock them, and wake listeners
//! (fifodirs). Every AgentFlow program reads and writes the spool through this crate.

pub mod atomic;
pub mod batch;
pub mod beneath;
pub mod bridge;
pub mod bus;
pub mod checkpoint;
pub mod claude;
pub mod codex;
pub mod control;
pub mod error;
pub mod eventlog;
pub mod fifodir;
pub mod health;
pub mod heartbeat;
pub mod host;
pub mod human;
pub mod id;
pub mod leftovers;
pub mod lock;
pub mod logfile;
pub mod message;
pub mod queue;
pub mod record;
pub mod spool;
pub mod tally;
pub mod time;
pub mod worktree;

#[cfg(test)]
mod proptests;

pub use error::{Error, ExitCode, Result};
pub use id::AgentId;
pub use spool::{Observed, Spool};
