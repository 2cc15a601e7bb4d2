//! Climbing the recovery ladder: starting an agent again (the lifecycle's restart), rolling it
//! back to its last checkpoint first (the rollback operation), or marking it failed. The decision
//! is policy.rs's; this carries it out.

use super::policy::Failure;
use super::probe::Finding;
use crate::lifecycle::{self, Lifecycle};
use af_spool::health::{Ladder, Rung};
use af_spool::record::{Event, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Observed, Spool, eventlog};
use std::time::{Duration, Instant};

/// How long a stuck agent gets between SIGTERM and SIGKILL when the ladder restarts it.
const RESTART_GRACE: Duration = Duration::from_secs(2);

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
    let step = if rung == Rung::Rollback { "rollback" } else { "restart" };
    let count = |outcome: &str| spool.tally().add(&[format!("ladder:{step}:{outcome}")]);
    if rung == Rung::Rollback {
        let ckpt = rollback(spool, id).inspect_err(|_| count("failed"))?;
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
    match lifecycle::restart(&Lifecycle::of(spool.clone()), id, RESTART_GRACE) {
        Ok(_) => {
            count("ok");
            done.push(format!("started again (failure {attempt})"))
        }
        Err(e) => {
            count("failed");
            done.push(format!("start failed: {e}"))
        }
    }
    Ok(done.join("; "))
}

/// Rolls the agent back to its newest checkpoint (without starting it). Err says why not.
fn rollback(spool: &Spool, id: &AgentId) -> Result<String, String> {
    let list = crate::checkpoint::list(spool, id).map_err(|e| format!("rollback skipped: {e}"))?;
    let Some(newest) = list.last() else {
        return Err(format!("rollback skipped: agent '{id}' has no checkpoint"));
    };
    let ckpt = newest.id.to_string();
    crate::rollback::rollback(&Lifecycle::of(spool.clone()), id, &ckpt, false, false)
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
        tracing::warn!(agent_id = %id, "cannot mark agent {id} failed: {e}");
    }
    eventlog::record(spool, Event::new("health.failed", Some(id), serde_json::json!({"reason": reason})));
    spool.tally().add(&["ladder:give-up:done".to_owned()]);
}

/// SIGKILLs a supervisor that holds its lock but no longer heartbeats (its agent dies with it:
/// af-wrap gives it a parent-death signal), then waits briefly for the lock to be released.
fn kill_hung(spool: &Spool, id: &AgentId, obs: &Observed) {
    let Some(wrap) = obs.state.wrap_pid else { return };
    if !crate::procfs::cmdline(wrap).contains("af-wrap") {
        return;
    }
    tracing::info!(agent_id = %id, "killing hung af-wrap {wrap} of agent {id}");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap as i32), nix::sys::signal::Signal::SIGKILL);
    if let Some(pid) = obs.state.pid.filter(|&p| crate::procfs::same_process(p, obs.state.pid_start)) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while spool.supervisor_alive(id) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}
