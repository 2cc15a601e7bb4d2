//! af-health's samples of each agent's figures (`agents/<id>/figures.json`): one sample per
//! sampling interval (`AF_HEALTH_SAMPLE_EVERY`, default 5 minutes; 0 samples every pass), the
//! last [`KEEP`] kept. Rules read the spending of the last hour from them; the anomaly checks
//! (anomaly.rs) learn each agent's normal from them.

use af_spool::atomic::{self, Durability};
use af_spool::record::Heartbeat;
use af_spool::time::Timestamp;
use af_spool::{Observed, Spool};
use serde::{Deserialize, Serialize};

/// Samples kept: a day at the default interval.
pub const KEEP: usize = 288;

/// One sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// When (ms since the epoch).
    pub t: u64,
    /// The agent's restart count.
    pub restarts: u32,
    /// Its spending so far (US dollars).
    pub cost_usd: f64,
    /// Bytes its pane has written to output.log since it was created (rotations added up).
    pub output_bytes: u64,
    /// RSS of its tree, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// Tasks its supervisor finished (counted from its start).
    pub tasks_done: u64,
    /// Tasks running at the sample.
    #[serde(default)]
    pub tasks_running: u32,
    /// Its supervisor's pid (a new one restarts `tasksDone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_pid: Option<u32>,
}

/// The samples and the anomaly checks' memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Oldest first.
    pub samples: Vec<Sample>,
    /// The output log's size at the last sample (to add up across rotations).
    #[serde(default)]
    pub output_log_size: u64,
    /// When each figure last raised an anomaly (ms), for the cool-down.
    #[serde(default)]
    pub last_anomaly: std::collections::BTreeMap<String, u64>,
    /// The figures out of their band now, with what their alert says.
    #[serde(default)]
    pub open_anomalies: std::collections::BTreeMap<String, String>,
    /// The figures judged so far (those with enough history).
    #[serde(default)]
    pub judged: std::collections::BTreeSet<String>,
}

/// The sampling interval in force.
pub fn interval_ms() -> u64 {
    std::env::var("AF_HEALTH_SAMPLE_EVERY")
        .ok()
        .and_then(|v| af_spool::human::parse_duration(&v).ok())
        .map_or(300_000, |d| d.as_millis() as u64)
}

impl Figures {
    /// The agent's samples (none yet: empty).
    pub fn read(spool: &Spool, id: &af_spool::AgentId) -> Figures {
        atomic::read_json(&spool.figures_path(id)).ok().flatten().unwrap_or_default()
    }

    /// Writes them back.
    pub fn write(&self, spool: &Spool, id: &af_spool::AgentId) {
        if let Err(e) = atomic::write_json(&spool.figures_path(id), self, Durability::Volatile) {
            tracing::debug!("cannot keep the figures of {id}: {e}");
        }
    }

    /// Takes a sample now when the interval has passed since the last; true when it did.
    pub fn sample(&mut self, spool: &Spool, obs: &Observed, hb: Option<&Heartbeat>) -> bool {
        let now = Timestamp::now().0;
        if self.samples.last().is_some_and(|s| now.saturating_sub(s.t) < interval_ms().max(1)) {
            return false;
        }
        let size = std::fs::metadata(spool.output_log_path(&obs.config.id)).map_or(0, |m| m.len());
        // A smaller log was rotated: all of it is new.
        let grown = if size >= self.output_log_size { size - self.output_log_size } else { size };
        self.output_log_size = size;
        let before = self.samples.last().map_or(0, |s| s.output_bytes);
        let hb = hb.filter(|h| obs.state.wrap_pid == Some(h.wrap_pid));
        self.samples.push(Sample {
            t: now,
            restarts: obs.state.restarts,
            cost_usd: obs.state.cost_usd,
            output_bytes: before + grown,
            rss_bytes: hb.map(|h| h.rss_bytes).filter(|&b| b > 0),
            tasks_done: hb.map_or(0, |h| h.tasks_done),
            tasks_running: hb.map_or(0, |h| h.tasks_running),
            wrap_pid: hb.map(|h| h.wrap_pid),
        });
        if self.samples.len() > KEEP {
            let extra = self.samples.len() - KEEP;
            self.samples.drain(..extra);
        }
        true
    }

    /// US dollars spent per hour over the last hour of samples (at least two, an interval apart).
    pub fn cost_per_hour(&self) -> Option<f64> {
        let last = self.samples.last()?;
        let first = self.samples.iter().find(|s| last.t.saturating_sub(s.t) <= 3_600_000)?;
        let span = last.t.saturating_sub(first.t);
        if span == 0 {
            return None;
        }
        Some((last.cost_usd - first.cost_usd).max(0.0) * 3_600_000.0 / span as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: u64, cost_usd: f64) -> Sample {
        Sample { t, cost_usd, ..Sample::default() }
    }

    #[test]
    fn the_cost_per_hour_is_over_the_last_hour_of_samples() {
        let mut f = Figures::default();
        assert_eq!(f.cost_per_hour(), None);
        f.samples.push(at(0, 5.0));
        assert_eq!(f.cost_per_hour(), None, "one sample is no rate");
        // Spent $1 in the first half hour, then $1 more in the next hour: the rate is the last hour's.
        f.samples.extend([at(1_800_000, 6.0), at(5_400_000, 7.0)]);
        assert_eq!(f.cost_per_hour(), Some(1.0));
        f.samples.push(at(5_400_000 + 900_000, 8.0));
        // Within the last hour: the samples at 5.4e6 and 6.3e6 ms: $1 in 15 minutes.
        assert_eq!(f.cost_per_hour(), Some(4.0));
    }
}
