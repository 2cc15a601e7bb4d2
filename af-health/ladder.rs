//! Climbing the recovery ladder: starting an agent again (through `af-spawn start`), rolling it
//! back to its last checkpoint first (through `af-checkpoint`), or marking it failed. The
//! decision is policy.rs's; this carries it out.

use crate::policy::Failure;
use crate::probe::Finding;
use crate::sibling;
use af_spool::health::{Ladder, Rung};
use af_spool::record::{Event, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Observed, Spool, eventlog};
use std::time::{Duration, Instant};

/// How long `af-spawn start` may take.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an af-checkpoint call may take.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(60);

/// The failure the ladder should count, if the checks found one.
pub fn failure(obs: &Observed, finding: &Finding, ladder: &Ladder) -> Option<Failure> {
    let why = finding.failure.clone()?;
    let started = obs.state.started_at.unwrap_or(obs.state.created_at);
    let run = ladder.last_attempt.map_or(started, |a| a.max(started));
    let at = if finding.hung || finding.stuck {
        Timestamp::now()
    } else {
        obs.state.stopped_at.filter(|t| *t >= run).unwrap_or_else(Timestamp::now)
    };
    let permanent = obs.state.exit_code.filter(|c| obs.config.permanent_exit_codes.contains(c) && !finding.hung);
    Some(Failure { run, at, why, permanent })
}

/// Climbs `rung` for the agent. Returns what happened, in words; Err when the rung could not be
/// climbed and the ladder should give up (a rollback that cannot be done).
pub fn climb(
    spool: &Spool,
    id: &AgentId,
    obs: &Observed,
    finding: &Finding,
    rung: Rung,
    ladder: &Ladder,
) -> Result<String, String> {
    if finding.hung {
        kill_hung(spool, id, obs);
    }
    let attempt = ladder.consecutive_failures;
    let mut done = Vec::new();
    if rung == Rung::Rollback {
        let ckpt = rollback(id)?;
        eventlog::record(spool, Event::new("health.rollback", Some(id), serde_json::json!({"checkpoint": ckpt})));
        done.push(format!("rolled back to checkpoint {ckpt}"));
    }
    eventlog::record(
        spool,
        Event::new(
            "health.restart",
            Some(id),
            serde_json::json!({"attempt": attempt, "rung": rung, "failures": ladder.consecutive_failures}),
        ),
    );
    // restart stops a stuck agent first (2 s of grace) and only starts a dead one; either way the
    // agent's restart count goes up, as the seed's restart count should.
    match sibling::run("af-spawn", &["restart", id.as_str(), "--timeout", "2"], START_TIMEOUT) {
        Ok(_) => done.push(format!("started again (failure {attempt})")),
        Err(e) => done.push(format!("start failed: {e}")),
    }
    Ok(done.join("; "))
}

/// Rolls the agent back to its newest checkpoint (without starting it). Err says why not.
fn rollback(id: &AgentId) -> Result<String, String> {
    let skipped = |e: String| format!("rollback skipped: af-checkpoint not available ({e})");
    let out = sibling::run("af-checkpoint", &["ls", id.as_str(), "--json"], CHECKPOINT_TIMEOUT).map_err(skipped)?;
    let Some(ckpt) = newest_checkpoint(&out).map_err(skipped)? else {
        return Err(format!("rollback skipped: agent '{id}' has no checkpoint"));
    };
    sibling::run("af-checkpoint", &["rollback", id.as_str(), &ckpt, "--no-restart"], CHECKPOINT_TIMEOUT)
        .map_err(|e| format!("rollback to {ckpt} failed: {e}"))?;
    Ok(ckpt)
}

/// Marks the agent failed for `reason` (killing a hung supervisor first).
pub fn give_up(spool: &Spool, id: &AgentId, obs: &Observed, finding: &Finding, reason: &str) {
    if finding.hung {
        kill_hung(spool, id, obs);
    }
    let text = format!("af-health gave up: {reason} (run af-spawn reset {id} or af-spawn start {id})");
    let result = spool.update_state(id, |s| {
        s.status = Status::Failed;
        s.reason = Some(text.clone());
        if s.stopped_at.is_none() {
            s.stopped_at = Some(Timestamp::now());
        }
    });
    if let Err(e) = result {
        tracing::warn!("cannot mark agent {id} failed: {e}");
    }
    eventlog::record(spool, Event::new("health.failed", Some(id), serde_json::json!({"reason": reason})));
}

/// SIGKILLs a supervisor that holds its lock but no longer heartbeats (its agent dies with it:
/// af-wrap gives it a parent-death signal), then waits briefly for the lock to be released.
fn kill_hung(spool: &Spool, id: &AgentId, obs: &Observed) {
    let Some(wrap) = obs.state.wrap_pid else { return };
    if !af_spool::procfs::cmdline(wrap).contains("af-wrap") {
        return;
    }
    tracing::info!("killing hung af-wrap {wrap} of agent {id}");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap as i32), nix::sys::signal::Signal::SIGKILL);
    if let Some(pid) = obs.state.pid.filter(|&p| af_spool::procfs::same_process(p, obs.state.pid_start)) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while spool.supervisor_alive(id) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The newest checkpoint's id in `af-checkpoint ls ID --json` (an array, newest last; by
/// `createdAt` when the entries carry it).
fn newest_checkpoint(json: &str) -> Result<Option<String>, String> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("unreadable checkpoint list: {e}"))?;
    let newest = list.iter().enumerate().max_by(|(i, a), (j, b)| {
        let at = |v: &serde_json::Value| v["createdAt"].as_str().and_then(Timestamp::parse_rfc3339);
        at(a).cmp(&at(b)).then(i.cmp(j))
    });
    Ok(newest.and_then(|(_, c)| c["id"].as_str()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_checkpoint_is_last_or_latest() {
        let two = r#"[{"id":"c1","createdAt":"2026-11-24T10:00:00Z"},{"id":"c2","createdAt":"2026-11-24T11:00:00Z"}]"#;
        assert_eq!(newest_checkpoint(two), Ok(Some("c2".into())));
        let unordered =
            r#"[{"id":"c2","createdAt":"2026-11-24T11:00:00Z"},{"id":"c1","createdAt":"2026-11-24T10:00:00Z"}]"#;
        assert_eq!(newest_checkpoint(unordered), Ok(Some("c2".into())));
        assert_eq!(newest_checkpoint(r#"[{"id":"a"},{"id":"b"}]"#), Ok(Some("b".into())));
        assert_eq!(newest_checkpoint("[]"), Ok(None));
        assert!(newest_checkpoint("not built yet").is_err());
    }
}
