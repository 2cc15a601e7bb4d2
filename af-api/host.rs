//! The host's figures in `GET /api/orchestrator`: CPU usage, memory, swap, load and disks (the
//! spool's among them), through sysinfo. CPU usage is the difference between two readings of the
//! CPU times, so one `System` lives as long as the server: the figures are sampled when asked
//! for, at most once a [`FRESH`], and every request in between gets the last sample. Nothing is
//! read while nobody asks, and no request waits for a second reading.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use sysinfo::{DiskRefreshKind, Disks, MINIMUM_CPU_UPDATE_INTERVAL, System};

/// How long a sample is served before the next one is taken.
pub const FRESH: Duration = Duration::from_secs(1);

/// The host's figures, sampled at most once a [`FRESH`].
pub struct Host {
    sampler: Mutex<Sampler>,
}

struct Sampler {
    system: System,
    disks: Disks,
    /// When the first CPU times were read.
    since: Instant,
    /// Whether a reading of the CPU times has been taken far enough after the first one to be
    /// a usage figure.
    cpu_measured: bool,
    last: Option<(Instant, Value)>,
}

impl Host {
    /// Reads the CPU times once, so that a request a moment after the start has a usage figure.
    pub fn new() -> Host {
        let mut system = System::new();
        system.refresh_cpu_usage();
        let sampler = Sampler { system, disks: Disks::new(), since: Instant::now(), cpu_measured: false, last: None };
        Host { sampler: Mutex::new(sampler) }
    }

    /// The figures, for a spool rooted at `spool`: the last sample, or a new one when it is older
    /// than [`FRESH`].
    pub fn figures(&self, spool: &Path) -> Value {
        let mut s = self.sampler.lock().unwrap_or_else(PoisonError::into_inner);
        match &s.last {
            Some((at, figures)) if at.elapsed() < FRESH => figures.clone(),
            _ => {
                let figures = s.sample(spool);
                s.last = Some((Instant::now(), figures.clone()));
                figures
            }
        }
    }
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
