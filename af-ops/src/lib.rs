//! AgentFlow's operations: what the programs do, as typed functions over the spool contract
//! (`af-spool`). Every program, af-api included, calls these; none learns another's result from
//! its wording.

pub mod alert;
pub mod bridge;
pub mod bus;
pub mod checkpoint;
pub mod claude;
pub mod codex;
pub mod conversation;
pub mod flow;
pub mod health;
pub mod lifecycle;
pub mod metrics;
pub mod output;
pub mod process;
pub mod procfs;
pub mod rollback;
pub mod secrets;
pub mod shard;
pub mod tmux;
