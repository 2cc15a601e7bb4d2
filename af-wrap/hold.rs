//! Named points where a test can hold af-wrap, to make a race happen on purpose. With
//! `AF_TEST_HOLD=<point>` in its environment, af-wrap reaching that point creates the file
//! `hold.<point>.<pid>` in the agent's directory and waits until the test removes it (at most 60 s).
//! Without the variable, a point costs one environment lookup.

use af_spool::{AgentId, Spool};
use std::time::{Duration, Instant};

/// Holds here when the test asked for this point.
pub fn point(spool: &Spool, id: &AgentId, name: &str) {
    if std::env::var("AF_TEST_HOLD").ok().as_deref() != Some(name) {
        return;
    }
    let marker = spool.agent_dir(id).join(format!("hold.{name}.{}", std::process::id()));
    if std::fs::write(&marker, b"").is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
