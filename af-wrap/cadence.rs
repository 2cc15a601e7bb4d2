//! How often af-wrap beats: at its busy interval while the agent is busy (a task running, CPU
//! used since the last beat, a stop under way) or watched (see `Spool::watched_path`), and, while
//! it idles, twice as long at each beat up to the idle maximum. Every beat says how long until the
//! next one (`intervalMs`), and af-health judges its age against that (`Policy::stale_after_ms`).

use std::time::Duration;

/// A tree using this much CPU since the last beat (percent of one core) is busy.
pub const BUSY_CPU_PERCENT: f64 = 1.0;

/// The beats after a start that come at the busy interval whatever the agent does: its tree is
/// still forming (an exec, its children), and its first figures are worth having soon.
const WARM_UP_BEATS: u32 = 2;

/// The beat interval, as it adapts.
pub struct Cadence {
    busy: Duration,
    idle_max: Duration,
    now: Duration,
    beats: u32,
}

impl Cadence {
    /// Beats every `busy` while busy, up to every `idle_max` while idle.
    pub fn new(busy: Duration, idle_max: Duration) -> Self {
        Cadence { busy, idle_max: idle_max.max(busy), now: busy, beats: 0 }
    }

    /// How long after the agent's process is spawned its first beat comes: soon, but after the
    /// exec, so that its first figures are the program's and not the fork's.
    pub fn first(&self) -> Duration {
        self.busy.min(Duration::from_millis(200))
    }

    /// Whether the agent has idled long enough to beat at the idle maximum, its warm-up beats
    /// done (with an idle maximum no longer than the busy interval, only the warm-up counts).
    pub fn settled(&self) -> bool {
        self.beats >= WARM_UP_BEATS && self.now >= self.idle_max
    }

    /// The interval until the next beat, after a beat that found the agent `busy` (or not).
    pub fn next(&mut self, busy: bool) -> Duration {
        self.beats = self.beats.saturating_add(1);
        let warming = self.beats <= WARM_UP_BEATS;
        self.now = if busy || warming { self.busy } else { self.now.saturating_mul(2).min(self.idle_max) };
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_doubles_up_to_the_maximum_and_busy_snaps_back() {
        let s = Duration::from_secs;
        let mut c = Cadence::new(s(2), s(30));
        assert!(!c.settled());
        // Two beats at the busy interval after a start, then doubling.
        let idle: Vec<u64> = (0..8).map(|_| c.next(false).as_secs()).collect();
        assert_eq!(idle, [2, 2, 4, 8, 16, 30, 30, 30]);
        assert!(c.settled());
        assert_eq!(c.next(true), s(2));
        assert_eq!(c.next(false), s(4));
        // A maximum below the busy interval never makes idle beats more frequent than busy ones.
        let mut c = Cadence::new(s(2), s(1));
        assert!(!c.settled(), "not before its warm-up beats");
        assert_eq!((c.next(false), c.next(false), c.next(false), c.next(true)), (s(2), s(2), s(2), s(2)));
        assert_eq!(c.first(), Duration::from_millis(200));
    }
}
