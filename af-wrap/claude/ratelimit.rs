//! Limits on how fast an agent starts turns (`claude.turnsPerMinute` per agent,
//! `claude.projectTurnsPerMinute` for its project), and reading a rate or usage limit error.

use af_spool::Spool;
use af_spool::record::AgentConfig;
use af_spool::time::Timestamp;
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// The turn-rate limits of one agent.
pub struct Limiter {
    spool: Spool,
    project: String,
    per_agent: Option<u32>,
    per_project: Option<u32>,
    started: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Limiter {
    /// The limits of `config`.
    pub fn new(spool: &Spool, config: &AgentConfig) -> Limiter {
        let c = config.claude.clone().unwrap_or_default();
        Limiter {
            spool: spool.clone(),
            project: config.project_id.clone(),
            per_agent: c.turns_per_minute,
            per_project: c.project_turns_per_minute,
            started: VecDeque::new(),
            blocked_until: None,
        }
    }

    /// Whether a turn may start now. When the project's limit allows it, the turn is counted
    /// against the project at once (so two agents never take the same slot).
    pub fn allows(&mut self) -> bool {
        let now = Instant::now();
        if self.blocked_until.is_some_and(|t| now < t) {
            return false;
        }
        self.blocked_until = None;
        while self.started.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.started.pop_front();
        }
        if let (Some(limit), Some(oldest)) = (self.per_agent, self.started.front()) {
            if self.started.len() >= limit as usize {
                self.blocked_until = Some(*oldest + WINDOW);
                return false;
            }
        }
        if let Some(limit) = self.per_project {
            match af_ops::claude::take_project_turn(&self.spool, &self.project, limit) {
                Ok(None) => {}
                Ok(Some(free_at)) => {
                    let wait = Timestamp::now().millis_until(free_at);
                    self.blocked_until = Some(now + Duration::from_millis(wait.max(10)));
                    return false;
                }
                Err(e) => tracing::warn!("cannot count the project's turns: {e}"),
            }
        }
        true
    }

    /// A turn started.
    pub fn record(&mut self) {
        self.started.push_back(Instant::now());
    }

    /// When a blocked turn may start.
    pub fn ready_at(&self) -> Option<Instant> {
        self.blocked_until
    }
}

/// The longest a usage limit is waited for: a weekly limit's reset, and a little more.
const MAX_WAIT: Duration = Duration::from_secs(8 * 24 * 3600);

/// A reset time kept within a sane window: at least a second ahead (a reset already past, from a
/// skewed clock say, is not waited for long), at most [`MAX_WAIT`].
pub fn clamp_reset(reset: Timestamp, now: Timestamp) -> Timestamp {
    Timestamp(reset.0.clamp(now.0 + 1000, now.0 + MAX_WAIT.as_millis() as u64))
}

/// Whether a failed turn hit a rate or usage limit; if so, when it resets (when the error says).
/// 2.1.x reports one with a `rate_limit_event` (read by the caller), then an assistant message
/// with `"error":"rate_limit"` and the text `You've hit your limit · resets 3pm (Europe/Berlin)`;
/// 1.0.x said `Claude AI usage limit reached|1767225600` (the reset, in Unix seconds).
pub fn limit_reset(error: Option<&str>, result: &str, text: &str) -> Option<Option<Timestamp>> {
    let by_code = error.is_some_and(|e| e.starts_with("rate_limit") || e == "usage_limit");
    let lower = format!("{result}\n{text}").to_lowercase();
    let by_text = ["usage limit", "rate limit", "rate_limit", "limit reached"].iter().any(|k| lower.contains(k));
    if !by_code && !by_text {
        return None;
    }
    let now = Timestamp::now();
    let reset = [result, text].iter().find_map(|t| resets_in_words(t, now)).or_else(|| {
        [result, text].iter().find_map(|t| {
            let (_, tail) = t.rsplit_once('|')?;
            let secs: u64 = tail.trim().parse().ok()?;
            (secs > 1_000_000_000).then_some(Timestamp(secs * 1000))
        })
    });
    Some(reset)
}

/// The reset a limit's text names: `resets 3pm`, `resets 3:30pm`, `resets 15:00`, each with an
/// optional `(Zone)` (an IANA name; else the local zone): the next such time after `now`. The
/// zone's rules are the system's (GNU `date` reads them).
pub fn resets_in_words(text: &str, now: Timestamp) -> Option<Timestamp> {
    let (_, tail) = text.split_once("resets ")?;
    let mut words = tail.split_whitespace();
    let clock = words.next()?.to_ascii_lowercase();
    let zone = words.next().and_then(|z| z.strip_prefix('(')).and_then(|z| z.strip_suffix(')'));
    let (digits, pm) = match (clock.strip_suffix("pm"), clock.strip_suffix("am")) {
        (Some(d), _) => (d, Some(true)),
        (_, Some(d)) => (d, Some(false)),
        _ => (clock.as_str(), None),
    };
    let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
    let (mut h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match pm {
        Some(pm) if (1..=12).contains(&h) => h = h % 12 + if pm { 12 } else { 0 },
        None if h < 24 => {}
        _ => return None,
    }
    // A zone the system has no rules for would be taken silently as UTC.
    let unknown =
        |z: &str| z.starts_with('-') || z.contains("..") || !Path::new("/usr/share/zoneinfo").join(z).is_file();
    if m > 59 || zone.is_some_and(unknown) {
        return None;
    }
    let date = |arg: &str, format: &str| -> Option<String> {
        let mut c = std::process::Command::new("date");
        c.args(["-d", arg, format]).stdin(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        if let Some(z) = zone {
            c.env("TZ", z);
        }
        let out = c.output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // Today's, else tomorrow's (the zone's days).
    [0, 86_400].into_iter().find_map(|ahead| {
        let day = date(&format!("@{}", now.0 / 1000 + ahead), "+%F")?;
        let at: u64 = date(&format!("{day} {h:02}:{m:02}"), "+%s")?.parse().ok()?;
        Some(Timestamp(at * 1000)).filter(|at| at.0 > now.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reset_time() {
        assert_eq!(
            limit_reset(Some("rate_limit"), "Claude AI usage limit reached|1767225600", ""),
            Some(Some(Timestamp(1_767_225_600_000)))
        );
        assert_eq!(limit_reset(None, "API Error: 429 rate limit exceeded", ""), Some(None));
        assert_eq!(limit_reset(Some("authentication_failed"), "Not logged in", ""), None);
        let words = limit_reset(Some("rate_limit"), "You've hit your limit · resets 3pm (UTC)", "");
        assert!(matches!(words, Some(Some(t)) if t.0 % 3_600_000 == 0), "on the hour: {words:?}");
    }

    #[test]
    fn reads_the_reset_in_words() {
        // 2026-11-30 10:00 UTC.
        let now = Timestamp(1_796_032_800_000);
        let at = |t: &str| resets_in_words(t, now).map(|t| t.0 / 1000);
        assert_eq!(at("You've hit your limit · resets 3pm (UTC)"), Some(1_796_050_800));
        assert_eq!(at("You've hit your limit · resets 3:30pm (Asia/Kolkata)"), Some(1_796_031_000 + 1800 + 86_400));
        assert_eq!(at("resets 10am (UTC)"), Some(1_796_032_800 + 86_400), "now is past: tomorrow");
        assert_eq!(at("resets 23:15 (UTC)"), Some(1_796_032_800 + 13 * 3600 + 900));
        assert_eq!(at("resets 13pm (UTC)"), None);
        assert_eq!(at("resets 3pm (Nowhere/Atlantis)"), None, "not read as UTC");
        assert_eq!(at("resets soon"), None);
        assert_eq!(at("no reset here"), None);
    }

    #[test]
    fn a_reset_is_kept_within_a_sane_window() {
        let now = Timestamp(1_000_000_000_000);
        assert_eq!(clamp_reset(Timestamp(now.0 + 5000), now), Timestamp(now.0 + 5000));
        assert_eq!(clamp_reset(Timestamp(now.0 - 5000), now), Timestamp(now.0 + 1000));
        assert_eq!(clamp_reset(Timestamp(u64::MAX / 2), now), Timestamp(now.0 + MAX_WAIT.as_millis() as u64));
    }
}
