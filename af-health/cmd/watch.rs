//! `af-health watch`: the check-and-recover loop. Passes run every interval, and at once when the
//! spool's event log wakes us (an agent exited) or when a scheduled rung falls due. Everything it
//! knows lives in the spool, so a kill -9 at any moment loses nothing; two loops never act on one
//! agent at once (each agent's health lock).

use crate::cli::Tuning;
use af_ops::health::pass::{self, Scope};
use af_spool::fifodir::Fifodir;
use af_spool::time::Timestamp;
use af_spool::{ExitCode, Spool};
use std::time::{Duration, Instant};

/// The shortest time between the starts of two passes woken by events.
const MIN_GAP: Duration = Duration::from_millis(250);

pub fn run(
    spool: &Spool,
    scope: &Scope,
    tuning: &Tuning,
    interval: f64,
    passes: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let policy = super::policy(tuning)?;
    let interval = Duration::from_secs_f64(interval);
    // Subscribe before the first look, so no exit goes unnoticed.
    let mut events = Fifodir::new(spool.events_notify_dir()).subscribe()?;
    let mut done = 0u64;
    loop {
        let started = Instant::now();
        let next_at = match pass::run(spool, scope, &policy, true) {
            Ok(outcome) => outcome.next_at,
            Err(e) => {
                tracing::warn!("check pass failed: {e:#}");
                None
            }
        };
        done += 1;
        if passes.is_some_and(|n| done >= n) {
            return Ok(ExitCode::Ok);
        }
        let mut wake = started + interval;
        if let Some(at) = next_at {
            let due = Duration::from_millis(Timestamp::now().millis_until(at));
            wake = wake.min(Instant::now() + due);
        }
        let left = wake.saturating_duration_since(Instant::now());
        if !left.is_zero() && !events.wait(left)?.is_empty() {
            // Let a burst of events (an exit and its aftermath) settle into one pass, and run at
            // most one event-woken pass per MIN_GAP however busy the spool is (a rung falls due
            // later than that: the first delay is a second).
            let settle = (started + MIN_GAP).max(Instant::now() + Duration::from_millis(20));
            std::thread::sleep(settle.min(wake).saturating_duration_since(Instant::now()));
            events.drain()?;
        }
    }
}
