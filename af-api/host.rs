//! The host's figures in `GET /api/orchestrator`: CPU usage, memory, swap, load and disks (the
//! spool's among them), through sysinfo. CPU usage is the difference between two readings of the
//! CPU times, so one `System` lives as long as the server: the figures are sampled when asked
//! for, at most once a [`FRESH`], and every request in between gets the last sample. Nothing is
//! read while nobody asks, and no request waits for a second reading. While one request samples,
//! the others get the last sample: a mount that hangs (a dead FUSE server) holds one worker, not
//! every one that asks.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};
use sysinfo::{DiskRefreshKind, Disks, MINIMUM_CPU_UPDATE_INTERVAL, System};

/// How long a sample is served before the next one is taken.
pub const FRESH: Duration = Duration::from_secs(1);

/// The host's figures, sampled at most once a [`FRESH`].
pub struct Host {
    sampler: Mutex<Sampler>,
    last: Mutex<Option<(Instant, Value)>>,
}

struct Sampler {
    system: System,
    disks: Disks,
    /// When the first CPU times were read.
    since: Instant,
    /// Whether a reading of the CPU times has been taken far enough after the first one to be
    /// a usage figure.
    cpu_measured: bool,
}

impl Host {
    /// Reads the CPU times once, so that a request a moment after the start has a usage figure.
    pub fn new() -> Host {
        let mut system = System::new();
        system.refresh_cpu_usage();
        let sampler = Sampler { system, disks: Disks::new(), since: Instant::now(), cpu_measured: false };
        Host { sampler: Mutex::new(sampler), last: Mutex::new(None) }
    }

    /// The figures, for a spool rooted at `spool`: the last sample, or a new one when it is older
    /// than [`FRESH`].
    pub fn figures(&self, spool: &Path) -> Value {
        if let Some(figures) = self.fresh() {
            return figures;
        }
        let mut sampler = match self.sampler.try_lock() {
            Ok(s) => s,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // Another request is sampling: the last sample does, if there is one.
            Err(TryLockError::WouldBlock) => match lock(&self.last).clone() {
                Some((_, figures)) => return figures,
                None => lock(&self.sampler),
            },
        };
        // It may have been taken while this request waited.
        if let Some(figures) = self.fresh() {
            return figures;
        }
        let figures = sampler.sample(spool);
        *lock(&self.last) = Some((Instant::now(), figures.clone()));
        figures
    }

    fn fresh(&self) -> Option<Value> {
        lock(&self.last).as_ref().filter(|(at, _)| at.elapsed() < FRESH).map(|(_, figures)| figures.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sampler {
    fn sample(&mut self, spool: &Path) -> Value {
        // sysinfo leaves the CPU times alone when read again within its minimum interval; a
        // usage figure over less than that would be noise, so there is none until then.
        self.cpu_measured |= self.since.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL;
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let cpu = self.cpu_measured.then(|| (f64::from(self.system.global_cpu_usage()) * 10.0).round() / 10.0);
        let load = System::load_average();
        let (disks, spool_disk) = self.disks(spool);
        json!({
            // What this process may use (affinity, cgroup quota), as before sysinfo.
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "cpuUsagePercent": cpu,
            "loadAverage": [load.one, load.five, load.fifteen],
            "memTotalBytes": self.system.total_memory(),
            "memAvailableBytes": self.system.available_memory(),
            "swapTotalBytes": self.system.total_swap(),
            "swapUsedBytes": self.system.used_swap(),
            "disks": disks,
            "spoolDisk": spool_disk,
        })
    }

    /// Each filesystem once (a filesystem mounted at several places, as bind mounts do, under its
    /// shortest mount point), by mount point; and the one holding the spool, matched by device.
    fn disks(&self, spool: &Path) -> (Vec<Value>, Value) {
        let spool_dev = std::fs::metadata(spool).ok().map(|m| m.dev());
        let mut listed: Vec<_> = self.disks.list().iter().collect();
        listed.sort_by_key(|d| d.mount_point().as_os_str().len());
        let mut seen = HashSet::new();
        let mut disks = Vec::new();
        let mut spool_disk = Value::Null;
        for d in listed {
            let Ok(dev) = std::fs::metadata(d.mount_point()).map(|m| m.dev()) else { continue };
            if !seen.insert(dev) {
                continue;
            }
            let disk = json!({
                "mountPoint": d.mount_point().to_string_lossy(),
                "fileSystem": d.file_system().to_string_lossy(),
                "totalBytes": d.total_space(),
                "availableBytes": d.available_space(),
            });
            if spool_dev == Some(dev) {
                spool_disk = disk.clone();
            }
            disks.push(disk);
        }
        disks.sort_by(|a, b| a["mountPoint"].as_str().cmp(&b["mountPoint"].as_str()));
        (disks, spool_disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_served_until_stale_and_nobody_waits_behind_a_sampler() {
        let here = std::env::temp_dir();
        let host = Host::new();
        let first = host.figures(&here);
        assert!(first["memTotalBytes"].as_u64().is_some_and(|m| m > 0), "{first}");
        assert_eq!(host.figures(&here), first, "the same sample within FRESH");
        // A stale sample while another request is sampling (it holds the sampler): served as it
        // is, rather than waiting.
        let stale = json!({"stale": true});
        let long_ago = Instant::now().checked_sub(FRESH * 2).expect("an uptime of two seconds");
        *lock(&host.last) = Some((long_ago, stale.clone()));
        let busy = lock(&host.sampler);
        assert_eq!(host.figures(&here), stale);
        drop(busy);
        assert_ne!(host.figures(&here), stale, "sampled again once free");
    }
}
