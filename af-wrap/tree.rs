//! The agent's process tree as af-wrap sees it: every descendant of af-wrap (as a subreaper,
//! orphans of the agent come back to it), with memory and CPU added up for heartbeats.

use af_ops::procfs;
use std::time::Instant;

/// CPU accounting between heartbeats.
pub struct Usage {
    last_ticks: u64,
    last_time: Instant,
}

/// One reading of the tree.
pub struct Reading {
    /// Resident memory of the tree, in bytes.
    pub rss_bytes: u64,
    /// CPU since the last reading, in percent of one core.
    pub cpu_percent: f64,
    /// Processes in the tree.
    pub processes: u32,
}

impl Usage {
    /// Starts accounting now.
    pub fn new() -> Self {
        Usage { last_ticks: 0, last_time: Instant::now() }
    }

    /// Reads the tree under `root` now.
    pub fn read(&mut self, root: u32) -> Reading {
        let tree = procfs::descendants_of(root);
        let ticks: u64 = tree.iter().map(|p| p.cpu_ticks).sum();
        let now = Instant::now();
        let secs = now.duration_since(self.last_time).as_secs_f64().max(1e-3);
        let cpu = ticks.saturating_sub(self.last_ticks) as f64 / procfs::ticks_per_second() as f64 / secs * 100.0;
        self.last_ticks = ticks;
        self.last_time = now;
        Reading {
            rss_bytes: tree.iter().map(|p| p.rss_bytes).sum(),
            cpu_percent: (cpu * 10.0).round() / 10.0,
            processes: tree.len() as u32,
        }
    }
}
