//! Health: one check pass over the agents (process, tmux session, heartbeat, ping, memory and
//! CPU against their limits, task timeouts), alerts kept up to date, and the recovery ladder
//! (restart, then rollback to the last checkpoint, then failed) carried out by calling the
//! lifecycle and rollback operations.

pub mod alert;
pub mod anomaly;
pub mod figures;
mod judge;
pub mod ladder;
pub mod live;
pub mod pass;
pub mod policy;
pub mod probe;
mod records;
pub mod rules;

pub use pass::{Outcome, Report, Scope, run};
pub use policy::Policy;
pub use records::{ack, alerts, history};
