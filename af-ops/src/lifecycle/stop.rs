//! Stopping, pausing and resuming agents: requests on the agent's control pipe, answered by its
//! af-wrap, and a wait until the state says it is done.

use super::{Lifecycle, kill_our_session, reap_orphans, wait_until};
use af_spool::control::{self, Envelope, Request};
use af_spool::record::{Event, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Observed, Result, atomic, eventlog};
use std::time::Duration;

/// Stops one agent for good, as a user asks (`af-spawn stop`, the API): [`stop_one`], then its
/// open alerts close with a recovery, since nothing watches a stopped agent.
pub fn stop(ctx: &Lifecycle, id: &AgentId, force: bool, grace: Duration) -> Result<Observed> {
    let obs = stop_one(ctx, id, force, grace)?;
    crate::alert::close_all(&ctx.spool, id, "was stopped");
    Ok(obs)
}

/// Stops one agent and waits until its supervisor is gone (a restart's or rollback's stop, whose
/// alerts stay open until the agent recovers). [`Error::Unrecorded`] when the agent
/// stopped but its state could not be written (a full disk): the answer is about the agent, not
/// about its bookkeeping.
pub fn stop_one(ctx: &Lifecycle, id: &AgentId, force: bool, grace: Duration) -> Result<Observed> {
    let spool = &ctx.spool;
    let obs = spool.observe(id)?;
    if !obs.state.status.is_live() {
        return Err(Error::Conflict(format!("agent '{id}' is not running (status {})", obs.status().as_str())));
    }
    if obs.supervisor_alive {
        let mut listener = control::listen(spool, id)?;
        let request = Request::Stop { force, timeout_ms: grace.as_millis() as u64 };
        let envelope =
            Envelope { id: atomic::unique_name("stop").trim_start_matches('.').to_owned(), request, reply: None };
        match control::send(spool, id, &envelope) {
            Ok(()) => {
                let patience = grace + Duration::from_secs(10);
                // Done when af-wrap recorded the stop, or when it is gone without recording it
                // (its write failed): then the agent is stopped all the same, and said so below.
                let obs = wait_until(ctx, id, &mut listener, patience, "stop", |o| {
                    !o.state.status.is_live() || !o.supervisor_alive
                })?;
                if !obs.state.status.is_live() {
                    kill_our_session(ctx, id);
                    eventlog::record(spool, Event::new("agent.stopped", Some(id), serde_json::json!({"force": force})));
                    return spool.observe(id);
                }
                return stop_by_hand(ctx, id, force, "stopped by request (its supervisor could not record it)");
            }
            // The supervisor went away between our look and our request: clean up below.
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    // No supervisor: a start that never came up, or one that died. Make it so by hand.
    stop_by_hand(ctx, id, force, "stopped by request (its supervisor was gone)")
}

/// Finishes a stop without a supervisor: its session and orphans killed, then the state written.
/// When that write fails but the agent's process group is dead, the agent is stopped and the
/// error says that only its record is missing.
fn stop_by_hand(ctx: &Lifecycle, id: &AgentId, force: bool, reason: &str) -> Result<Observed> {
    let spool = &ctx.spool;
    kill_our_session(ctx, id);
    let obs = spool.observe(id)?;
    reap_orphans(ctx, id, &obs);
    // A new generation: an af-wrap still on its way for the old start finds its start gone.
    let written = spool.update_state(id, |s| {
        s.generation += 1;
        s.status = Status::Stopped;
        s.pid = None;
        s.wrap_pid = None;
        s.stopped_at = Some(Timestamp::now());
        s.reason = Some(reason.into());
    });
    if let Err(e) = written {
        if !group_gone(obs.state.pid) {
            return Err(e);
        }
        let cause = match &e {
            Error::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        return Err(Error::Unrecorded(format!(
            "agent '{id}' stopped, but its state {} could not be written: {cause} (make room, then run af-spawn stop {id} to record it)",
            spool.state_path(id).display()
        )));
    }
    eventlog::record(spool, Event::new("agent.stopped", Some(id), serde_json::json!({"force": force})));
    spool.observe(id)
}

/// Whether the agent's process group (led by its recorded pid) has no process left; waits a
/// moment for the ones just killed to go.
fn group_gone(leader: Option<u32>) -> bool {
    let Some(pid) = leader else { return true };
    let group = nix::unistd::Pid::from_raw(pid as i32);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        if nix::sys::signal::killpg(group, None) == Err(nix::errno::Errno::ESRCH) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pauses (`pause` true) or resumes an agent; returns its status after.
pub fn pause(ctx: &Lifecycle, id: &AgentId, pause: bool) -> Result<Status> {
    let obs = ctx.spool.observe(id)?;
    let (want, verb) = if pause { (Status::Running, "pause") } else { (Status::Paused, "resume") };
    if obs.status() != want {
        return Err(Error::Conflict(format!("cannot {verb} agent '{id}': it is {}", obs.status().as_str())));
    }
    let request = if pause { Request::Pause } else { Request::Resume };
    let reply = control::ask(&ctx.spool, id, request, Duration::from_secs(5))?;
    if !reply.ok {
        let why = reply.error.unwrap_or_default();
        return Err(Error::Conflict(format!("cannot {verb} agent '{id}': {why}")));
    }
    Ok(reply.status)
}
