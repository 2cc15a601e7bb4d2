//! The agent's process tree as af-wrap sees it: every descendant of af-wrap (as a subreaper,
//! orphans of the agent come back to it), with memory and CPU added up for heartbeats.
//!
//! Walking the tree costs a few system calls per process at every beat, so af-wrap walks it only
//! when someone needs the figures: the agent has memory or CPU limits af-health checks, a watcher
//! looks (see `Spool::watched_path`), or it has not yet idled down to the slowest beat; otherwise
//! once a [`REFRESH`]. In between, a beat
//! reads only the agent process's own stat for its CPU (enough to tell busy from idle) and repeats
//! the tree's last memory and count.

use af_ops::procfs;
use std::time::{Duration, Instant};

/// The longest a beat repeats the tree's memory and process count without reading them again.
pub const REFRESH: Duration = Duration::from_secs(60);

/// CPU accounting between heartbeats.
pub struct Usage {
    /// CPU ticks at the last reading, and whether they were the whole tree's.
    last_ticks: u64,
    last_whole: bool,
    last_time: Instant,
    /// The last reading of the whole tree, and when it was taken.
    kept: Option<(Reading, Instant)>,
}

/// One reading of the tree.
#[derive(Clone, Copy, Default)]
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
        Usage { last_ticks: 0, last_whole: true, last_time: Instant::now(), kept: None }
    }

    /// Reads the tree under `root` now: all of it when `whole` is asked or the last whole reading
    /// is older than [`REFRESH`], else only `leader`'s CPU (the memory and process count are the
    /// last whole reading's).
    pub fn read(&mut self, root: u32, leader: Option<u32>, whole: bool) -> Reading {
        let kept = self.kept.filter(|(_, at)| at.elapsed() < REFRESH).map(|(r, _)| r);
        let whole = whole || kept.is_none();
        let (ticks, rss, processes) = if whole {
            let tree = procfs::descendants_of(root);
            (tree.iter().map(|p| p.cpu_ticks).sum(), tree.iter().map(|p| p.rss_bytes).sum(), tree.len() as u32)
        } else {
            let ticks = leader.and_then(procfs::stat).map_or(0, |s| s.cpu_ticks);
            let kept = kept.unwrap_or_default();
            (ticks, kept.rss_bytes, kept.processes)
        };
        let now = Instant::now();
        let secs = now.duration_since(self.last_time).as_secs_f64().max(1e-3);
        // Ticks of another scope than last time do not subtract: no CPU figure this once.
        let since = if whole == self.last_whole { ticks.saturating_sub(self.last_ticks) } else { 0 };
        let cpu = since as f64 / procfs::ticks_per_second() as f64 / secs * 100.0;
        self.last_ticks = ticks;
        self.last_whole = whole;
        self.last_time = now;
        let reading = Reading { rss_bytes: rss, cpu_percent: (cpu * 10.0).round() / 10.0, processes };
        if whole {
            self.kept = Some((reading, now));
        }
        reading
    }
}
