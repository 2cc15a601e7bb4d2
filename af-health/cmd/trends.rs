//! `af-health trends`: min, median and max of RSS, CPU and response time, and failure counts,
//! per agent over a window of its history (for the CLI and the dashboard's graphs).

use super::{print_json, print_line};
use af_spool::health::{self, HistoryEntry};
use af_spool::record::Health;
use af_spool::time::Timestamp;
use af_spool::{AgentId, ExitCode, Spool};
use serde::Serialize;

/// Min, median and max of one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The smallest.
    pub min: f64,
    /// The median.
    pub median: f64,
    /// The largest.
    pub max: f64,
}

/// Summarizes a series; `None` when empty.
pub fn spread(mut v: Vec<f64>) -> Option<Spread> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some(Spread { min: v[0], median, max: v[n - 1] })
}

/// One agent's trends.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    agent: AgentId,
    checks: usize,
    healthy: usize,
    degraded: usize,
    unhealthy: usize,
    /// Failures of each check, by name.
    failures: std::collections::BTreeMap<String, usize>,
    rss_bytes: Option<Spread>,
    cpu_percent: Option<Spread>,
    response_ms: Option<Spread>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

pub fn run(spool: &Spool, id: Option<&AgentId>, window: &str, json: bool) -> anyhow::Result<ExitCode> {
    let window = af_spool::human::parse_duration(window)?;
    let since = Timestamp(Timestamp::now().0.saturating_sub(window.as_millis() as u64));
    let ids = match id {
        Some(id) => {
            spool.require(id)?;
            vec![id.clone()]
        }
        None => spool.agent_ids()?,
    };
    let mut trends = Vec::new();
    for id in ids {
        let entries: Vec<HistoryEntry> = health::read_lines(&spool.history_path(&id))?;
        let entries: Vec<&HistoryEntry> = entries.iter().filter(|e| e.time >= since).collect();
        let mut failures = std::collections::BTreeMap::new();
        for e in &entries {
            for c in e.checks.iter().filter(|c| c.level != health::Level::Ok) {
                *failures.entry(c.name.clone()).or_insert(0) += 1;
            }
        }
        let count = |h: Health| entries.iter().filter(|e| e.health == h).count();
        trends.push(Trend {
            agent: id.clone(),
            checks: entries.len(),
            healthy: count(Health::Healthy),
            degraded: count(Health::Degraded),
            unhealthy: count(Health::Unhealthy),
            failures,
            rss_bytes: spread(entries.iter().filter_map(|e| e.rss_bytes.map(|b| b as f64)).collect()),
            cpu_percent: spread(entries.iter().filter_map(|e| e.cpu_percent).collect()),
            response_ms: spread(entries.iter().filter_map(|e| e.response_ms).collect()),
            first: entries.first().map(|e| e.time),
            last: entries.last().map(|e| e.time),
        });
    }
    if json {
        print_json(&trends)?;
        return Ok(ExitCode::Ok);
    }
    let show = |s: Option<Spread>, f: &dyn Fn(f64) -> String| {
        s.map_or("-".to_owned(), |s| format!("{}/{}/{}", f(s.min), f(s.median), f(s.max)))
    };
    print_line(&format!(
        "{:<20} {:>6} {:>6} {:>6}  {:<26} {:<18} {:<18}",
        "agent", "checks", "warn", "fail", "rss min/med/max", "cpu % min/med/max", "ping ms min/med/max"
    ))?;
    for t in &trends {
        print_line(
            format!(
                "{:<20} {:>6} {:>6} {:>6}  {:<26} {:<18} {:<18}",
                t.agent.as_str(),
                t.checks,
                t.degraded,
                t.unhealthy,
                show(t.rss_bytes, &|b| af_spool::human::format_size(b as u64)),
                show(t.cpu_percent, &|c| format!("{c:.0}")),
                show(t.response_ms, &|m| format!("{m:.1}")),
            )
            .trim_end(),
        )?;
    }
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_even_and_empty() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), Some(Spread { min: 1.0, median: 2.0, max: 3.0 }));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]).map(|s| s.median), Some(2.5));
        assert_eq!(spread(vec![]), None);
    }
}
