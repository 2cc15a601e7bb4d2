//! Anomaly alerts, with no configuration: af-health learns each agent's normal from its own
//! sampled figures (figures.rs) and warns when the newest interval leaves it.
//!
//! Figures, each a rate over one sampling interval (between two consecutive samples):
//! - `restart-rate`: restarts per hour;
//! - `cost-rate`: US dollars spent per hour;
//! - `output-rate`: bytes of pane output per hour;
//! - `memory-growth`: change of the tree's RSS per hour (same supervisor at both ends);
//! - `task-duration`: the interval divided by the tasks finished in it, over intervals with a task
//!   running at both ends (the mean time of a task under steady load), in seconds.
//!
//! The normal band of a figure is its median over the earlier intervals, plus or minus the
//! margin: the largest of 3 robust standard deviations (1.4826 × the median absolute deviation),
//! half the median's size, and a floor per figure (so a figure that never moved does not alarm
//! at its first small move). The false-alarm guard: no judgement before [`min_history`] earlier
//! intervals (`AF_HEALTH_ANOMALY_MIN`, default 12: an hour at the default sampling), and after a
//! figure warned, none of it again for the cool-down (`AF_HEALTH_ANOMALY_COOLDOWN`, default 1h).
//! The alert (check `anomaly.<figure>`, a warning that never escalates) names the figure, its
//! band and the value now, and closes when the figure is back in its band.

use super::figures::{Figures, Sample};
use af_spool::health::{Check, Level};
use af_spool::time::Timestamp;

/// The figures watched: name, unit, floor of the margin.
pub const FIGURES: [(&str, &str, f64); 5] = [
    ("restart-rate", "/h", 1.0),
    ("cost-rate", "USD/h", 0.05),
    ("output-rate", "B/h", 4096.0),
    ("memory-growth", "B/h", 16.0 * 1024.0 * 1024.0),
    ("task-duration", "s", 1.0),
];

/// The prefix of the anomaly checks' names.
pub const PREFIX: &str = "anomaly.";

/// Earlier intervals needed before a figure is judged.
pub fn min_history() -> usize {
    std::env::var("AF_HEALTH_ANOMALY_MIN").ok().and_then(|v| v.parse().ok()).filter(|&n| n >= 3).unwrap_or(12)
}

fn cooldown_ms() -> u64 {
    std::env::var("AF_HEALTH_ANOMALY_COOLDOWN")
        .ok()
        .and_then(|v| af_spool::human::parse_duration(&v).ok())
        .map_or(3_600_000, |d| d.as_millis() as u64)
}

/// A figure's value over the interval from `a` to `b`, when it has one.
fn value(figure: &str, a: &Sample, b: &Sample) -> Option<f64> {
    let span = b.t.checked_sub(a.t).filter(|&s| s > 0)? as f64;
    let per_hour = 3_600_000.0 / span;
    let same_wrap = a.wrap_pid.is_some() && a.wrap_pid == b.wrap_pid;
    match figure {
        "restart-rate" => Some(b.restarts.saturating_sub(a.restarts) as f64 * per_hour),
        "cost-rate" => Some((b.cost_usd - a.cost_usd).max(0.0) * per_hour),
        "output-rate" => Some(b.output_bytes.saturating_sub(a.output_bytes) as f64 * per_hour),
        "memory-growth" if same_wrap => Some((b.rss_bytes? as f64 - a.rss_bytes? as f64) * per_hour),
        "task-duration" if same_wrap && a.tasks_running > 0 && b.tasks_running > 0 => {
            let done = b.tasks_done.checked_sub(a.tasks_done).filter(|&d| d > 0)?;
            Some(span / 1000.0 / done as f64)
        }
        _ => None,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// A figure's normal band from earlier values: (low, high, median).
pub fn band(history: &[f64], floor: f64) -> (f64, f64, f64) {
    let mut h = history.to_vec();
    let m = median(&mut h);
    let mut dev: Vec<f64> = history.iter().map(|v| (v - m).abs()).collect();
    let mad = median(&mut dev);
    let margin = (3.0 * 1.4826 * mad).max(0.5 * m.abs()).max(floor);
    (m - margin, m + margin, m)
}

/// Judges the newest interval of every figure (when a sample was just taken) and keeps the open
/// anomalies in `f`; returns the checks for this pass (one per figure judged so far).
pub fn judge(f: &mut Figures, sampled: bool) -> Vec<Check> {
    let now = Timestamp::now().0;
    if sampled && f.samples.len() >= 2 {
        for (figure, unit, floor) in FIGURES {
            let values: Vec<f64> = f.samples.windows(2).filter_map(|w| value(figure, &w[0], &w[1])).collect();
            let newest = f.samples.len() - 1;
            let Some(current) = value(figure, &f.samples[newest - 1], &f.samples[newest]) else {
                continue;
            };
            let history = &values[..values.len().saturating_sub(1)];
            if history.len() < min_history() {
                continue;
            }
            let (low, high, m) = band(history, floor);
            let outside = current < low || current > high;
            let cooling = f.last_anomaly.get(figure).is_some_and(|t| now.saturating_sub(*t) < cooldown_ms());
            let open = f.open_anomalies.contains_key(figure);
            if outside && (open || !cooling) {
                if !open {
                    f.last_anomaly.insert(figure.to_owned(), now);
                }
                let text = format!(
                    "{figure} {} is outside its normal band {} to {} (median {}, from {} intervals)",
                    show(current, unit),
                    show(low.max(0.0), unit),
                    show(high, unit),
                    show(m, unit),
                    history.len()
                );
                f.open_anomalies.insert(figure.to_owned(), text);
            } else if !outside || cooling {
                f.open_anomalies.remove(figure);
            }
            f.judged.insert(figure.to_owned());
        }
    }
    f.judged
        .iter()
        .map(|figure| match f.open_anomalies.get(figure) {
            Some(text) => Check { name: format!("{PREFIX}{figure}"), level: Level::Warning, message: text.clone() },
            None => Check {
                name: format!("{PREFIX}{figure}"),
                level: Level::Ok,
                message: format!("{figure} within its normal band"),
            },
        })
        .collect()
}

fn show(v: f64, unit: &str) -> String {
    if v.abs() >= 100.0 { format!("{v:.0} {unit}") } else { format!("{v:.3} {unit}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(n: usize, every: u64, bytes: u64) -> Figures {
        let mut f = Figures::default();
        for i in 0..n as u64 {
            // A little noise, as real output has.
            let jitter = if i % 2 == 0 { 0 } else { bytes / 20 };
            let before = f.samples.last().map_or(0, |s| s.output_bytes);
            f.samples.push(Sample { t: i * every, output_bytes: before + bytes + jitter, ..Sample::default() });
        }
        f
    }

    #[test]
    fn a_figure_out_of_its_band_warns_once_then_cools_down() {
        unsafe { std::env::set_var("AF_HEALTH_ANOMALY_MIN", "5") };
        // Too little history: nothing judged.
        let mut f = steady(5, 60_000, 10_000);
        assert!(judge(&mut f, true).is_empty());
        // Enough, and steady: within the band.
        let mut f = steady(10, 60_000, 10_000);
        let checks = judge(&mut f, true);
        let output = checks.iter().find(|c| c.name == "anomaly.output-rate").unwrap();
        assert_eq!(output.level, Level::Ok, "{checks:?}");
        // A burst: a warning naming the figure, its band and the value.
        let last = f.samples.last().unwrap().clone();
        f.samples.push(Sample { t: last.t + 60_000, output_bytes: last.output_bytes + 500_000, ..last.clone() });
        let checks = judge(&mut f, true);
        let output = checks.iter().find(|c| c.name == "anomaly.output-rate").unwrap();
        assert_eq!(output.level, Level::Warning, "{checks:?}");
        assert!(
            output.message.starts_with("output-rate 30000000 B/h is outside its normal band"),
            "{}",
            output.message
        );
        // Back to normal: it closes; a second burst within the cool-down does not warn again.
        let last = f.samples.last().unwrap().clone();
        f.samples.push(Sample { t: last.t + 60_000, output_bytes: last.output_bytes + 10_000, ..last.clone() });
        assert!(judge(&mut f, true).iter().all(|c| c.level == Level::Ok));
        let last = f.samples.last().unwrap().clone();
        f.samples.push(Sample { t: last.t + 60_000, output_bytes: last.output_bytes + 500_000, ..last.clone() });
        assert!(judge(&mut f, true).iter().all(|c| c.level == Level::Ok), "cooling down");
    }

    #[test]
    fn the_band_is_the_median_plus_or_minus_the_margin() {
        assert_eq!(band(&[10.0, 10.0, 10.0, 10.0], 1.0), (5.0, 15.0, 10.0));
        assert_eq!(band(&[0.0, 0.0, 0.0], 1.0), (-1.0, 1.0, 0.0));
        let (low, high, m) = band(&[10.0, 12.0, 8.0, 30.0, 10.0], 0.1);
        assert_eq!(m, 10.0);
        assert!((high - (10.0 + 3.0 * 1.4826 * 2.0)).abs() < 1e-9 && low < 2.0, "{low} {high}");
    }
}
