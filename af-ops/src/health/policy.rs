//! The thresholds and the restart policy (after systemd's RestartSec/StartLimitBurst and
//! OTP's intensity/period), and the pure decision of the recovery ladder: given the agent's
//! ladder record and what the checks found, what to do now.

use af_spool::health::{Ladder, Rung};
use af_spool::time::Timestamp;

/// Thresholds and the restart policy, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A heartbeat older than this is critical.
    pub stale_ms: u64,
    /// How long to wait for a ping.
    pub ping_timeout_ms: u64,
    /// When an open warning becomes critical.
    pub escalate_ms: u64,
    /// How long an agent must have run before its alerts recover.
    pub settle_ms: u64,
    /// The first restart delay.
    pub backoff_ms: u64,
    /// The longest restart delay.
    pub backoff_max_ms: u64,
    /// Healthy this long resets the count.
    pub reset_ms: u64,
    /// Failures in a row: restart below, roll back at, give up above.
    pub max_failures: u32,
    /// Restarts allowed within the rate window.
    pub max_restarts: usize,
    /// The rate window.
    pub rate_window_ms: u64,
    /// Whether to ping.
    pub ping: bool,
}

impl Default for Policy {
    /// The defaults af-health documents (its flags' defaults: a test there keeps them equal).
    fn default() -> Self {
        Policy {
            stale_ms: 10_000,
            ping_timeout_ms: 1_000,
            escalate_ms: 300_000,
            settle_ms: 2_000,
            backoff_ms: 1_000,
            backoff_max_ms: 60_000,
            reset_ms: 30_000,
            max_failures: 3,
            max_restarts: 10,
            rate_window_ms: 900_000,
            ping: true,
        }
    }
}

/// How many of its advertised intervals a heartbeat may miss before it is stale.
pub const MISSED_BEATS: u64 = 3;

impl Policy {
    /// How old `beat` may get before it is stale: the stale threshold, or [`MISSED_BEATS`] of the
    /// interval the beat advertised when that is longer. af-wrap beats rarely while its agent
    /// idles, and a beat that comes when it said it would is never stale; a supervisor that hangs
    /// or dies is still found within that bound. Half of it is the warning threshold.
    pub fn stale_after_ms(&self, beat: Option<&af_spool::record::Heartbeat>) -> u64 {
        let promised = beat.and_then(|b| b.interval_ms).unwrap_or(0);
        self.stale_ms.max(promised.saturating_mul(MISSED_BEATS))
    }
}

/// One failure as the ladder sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The run that failed (its start, or the ladder's last attempt when later): counted once.
    pub run: Timestamp,
    /// When it failed (the delay counts from here).
    pub at: Timestamp,
    /// Why, in words.
    pub why: String,
    /// Its exit code is one of the config's permanentExitCodes.
    pub permanent: Option<i32>,
}

/// What the ladder does now.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to do.
    Nothing,
    /// A rung is scheduled for later.
    Wait(Timestamp),
    /// Climb this rung now.
    Climb(Rung),
    /// Mark the agent failed now, for this reason.
    GiveUp(String),
    /// It was given up on; a person has to act.
    GivenUp,
}

/// Decides, and updates the ladder record. `started_at` is the agent's last start: a start after
/// the ladder gave up is a person's, and clears the ladder. `healthy` means every check passes.
pub fn plan(
    l: &mut Ladder,
    p: &Policy,
    now: Timestamp,
    started_at: Option<Timestamp>,
    healthy: bool,
    f: Option<&Failure>,
) -> Plan {
    if let Some(gave_up) = l.gave_up_at {
        if started_at.is_some_and(|s| s > gave_up) {
            *l = Ladder::default();
        } else {
            return Plan::GivenUp;
        }
    }
    let Some(f) = f else {
        l.next = None;
        l.next_at = None;
        if healthy {
            let since = *l.healthy_since.get_or_insert(now);
            if since.millis_until(now) >= p.reset_ms && (l.consecutive_failures > 0 || l.delay_ms > 0) {
                l.consecutive_failures = 0;
                l.delay_ms = 0;
            }
        } else {
            l.healthy_since = None;
        }
        return Plan::Nothing;
    };
    l.healthy_since = None;
    if l.counted_run != Some(f.run) {
        l.counted_run = Some(f.run);
        l.consecutive_failures += 1;
        if let Some(code) = f.permanent {
            return give_up(l, now, format!("exit code {code} means a permanent failure (permanentExitCodes)"));
        }
        l.restart_times.retain(|t| t.millis_until(now) < p.rate_window_ms);
        if l.restart_times.len() >= p.max_restarts {
            let n = l.restart_times.len();
            return give_up(l, now, format!("restarted {n} times within {} s", p.rate_window_ms / 1000));
        }
        let rung = match l.consecutive_failures {
            n if n < p.max_failures => Rung::Restart,
            n if n == p.max_failures => Rung::Rollback,
            n => return give_up(l, now, format!("failed {n} times in a row ({})", f.why)),
        };
        let delay = if l.delay_ms == 0 { p.backoff_ms } else { l.delay_ms };
        l.delay_ms = delay.saturating_mul(2).min(p.backoff_max_ms);
        l.next = Some(rung);
        l.next_at = Some(Timestamp(f.at.0 + delay.min(p.backoff_max_ms)));
    }
    match (l.next, l.next_at) {
        (Some(r), Some(at)) if at <= now => Plan::Climb(r),
        (Some(_), Some(at)) => Plan::Wait(at),
        _ => Plan::Nothing,
    }
}

fn give_up(l: &mut Ladder, now: Timestamp, reason: String) -> Plan {
    l.gave_up_at = Some(now);
    l.next = None;
    l.next_at = None;
    l.reason = Some(reason.clone());
    Plan::GiveUp(reason)
}

/// Records that a rung is being climbed now (before it is climbed, so a kill -9 in between never
/// climbs it twice).
pub fn climbed(l: &mut Ladder, now: Timestamp) {
    l.next = None;
    l.next_at = None;
    l.last_attempt = Some(now);
    l.restart_times.push(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::default()
    }

    fn fail(run: u64, at: u64) -> Failure {
        Failure { run: Timestamp(run), at: Timestamp(at), why: "exited with code 1".into(), permanent: None }
    }

    #[test]
    fn climbs_restart_restart_rollback_then_gives_up() {
        let p = policy();
        let mut l = Ladder::default();
        let mut t = 1_000_000;
        let mut delays = Vec::new();
        let mut rungs = Vec::new();
        for run in 0..3 {
            let f = fail(t, t + 10);
            match plan(&mut l, &p, Timestamp(t + 10), None, false, Some(&f)) {
                Plan::Wait(at) => delays.push(at.0 - (t + 10)),
                other => panic!("{other:?}"),
            }
            // Counted once: the same failure seen again changes nothing.
            assert!(matches!(plan(&mut l, &p, Timestamp(t + 20), None, false, Some(&f)), Plan::Wait(_)));
            let later = l.next_at.unwrap().0;
            match plan(&mut l, &p, Timestamp(later), None, false, Some(&f)) {
                Plan::Climb(r) => rungs.push(r),
                other => panic!("run {run}: {other:?}"),
            }
            climbed(&mut l, Timestamp(later));
            t = later + 5;
        }
        assert_eq!(delays, [1000, 2000, 4000]);
        assert_eq!(rungs, [Rung::Restart, Rung::Restart, Rung::Rollback]);
        assert!(matches!(plan(&mut l, &p, Timestamp(t + 10), None, false, Some(&fail(t, t))), Plan::GiveUp(_)));
        assert_eq!(
            plan(&mut l, &p, Timestamp(t + 20), Some(Timestamp(t)), false, Some(&fail(t + 1, t + 1))),
            Plan::GivenUp
        );
        // A person starts it: the ladder starts over.
        assert!(matches!(plan(&mut l, &p, Timestamp(t + 50), Some(Timestamp(t + 40)), true, None), Plan::Nothing));
        assert_eq!(l.consecutive_failures, 0);
        assert!(l.gave_up_at.is_none());
    }

    #[test]
    fn delay_caps_and_resets_after_healthy_period() {
        let mut p = policy();
        p.max_failures = 100;
        p.max_restarts = 1000;
        let mut l = Ladder::default();
        for i in 0..12u64 {
            let t = i * 1_000_000;
            plan(&mut l, &p, Timestamp(t), None, false, Some(&fail(t, t)));
        }
        assert_eq!(l.delay_ms, 60_000);
        assert_eq!(l.next_at.unwrap().0 - 11_000_000, 60_000);
        let t = 20_000_000;
        plan(&mut l, &p, Timestamp(t), None, true, None);
        plan(&mut l, &p, Timestamp(t + 29_000), None, true, None);
        assert_eq!(l.consecutive_failures, 12, "not yet");
        plan(&mut l, &p, Timestamp(t + 30_000), None, true, None);
        assert_eq!((l.consecutive_failures, l.delay_ms), (0, 0));
    }

    #[test]
    fn permanent_exit_and_restart_rate_give_up() {
        let p = policy();
        let mut l = Ladder::default();
        let mut f = fail(1, 2);
        f.permanent = Some(78);
        assert!(matches!(plan(&mut l, &p, Timestamp(3), None, false, Some(&f)), Plan::GiveUp(r) if r.contains("78")));
        let mut l = Ladder { restart_times: (0..10).map(|i| Timestamp(1_000_000 + i)).collect(), ..Ladder::default() };
        assert!(matches!(plan(&mut l, &p, Timestamp(1_100_000), None, false, Some(&fail(5, 5))), Plan::GiveUp(_)));
        // Restarts older than the window do not count.
        let mut l = Ladder { restart_times: (0..10).map(Timestamp).collect(), ..Ladder::default() };
        assert!(matches!(
            plan(&mut l, &p, Timestamp(1_000_000), None, false, Some(&fail(5, 5))),
            Plan::Climb(_) | Plan::Wait(_)
        ));
    }
}
