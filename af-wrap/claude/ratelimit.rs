//! Limits on how fast an agent starts turns (`claude.turnsPerMinute` per agent,
//! `claude.projectTurnsPerMinute` for its project), and reading a rate or usage limit error.

use af_spool::Spool;
use af_spool::record::AgentConfig;
use af_spool::time::Timestamp;
use std::collections::VecDeque;
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

/// Whether a failed turn hit a rate or usage limit; if so, when it resets (when the error says).
/// The CLI reports these as an assistant message with an `error` such as `rate_limit`, and a
/// result text like `Claude AI usage limit reached|1767225600` (the reset, in Unix seconds).
pub fn limit_reset(error: Option<&str>, result: &str, text: &str) -> Option<Option<Timestamp>> {
    let by_code = error.is_some_and(|e| e.starts_with("rate_limit") || e == "usage_limit");
    let lower = format!("{result}\n{text}").to_lowercase();
    let by_text = ["usage limit", "rate limit", "rate_limit", "limit reached"].iter().any(|k| lower.contains(k));
    if !by_code && !by_text {
        return None;
    }
    let reset = [result, text].iter().find_map(|t| {
        let (_, tail) = t.rsplit_once('|')?;
        let secs: u64 = tail.trim().parse().ok()?;
        (secs > 1_000_000_000).then_some(Timestamp(secs * 1000))
    });
    Some(reset)
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
    }
}
