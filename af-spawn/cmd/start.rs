//! `af-spawn start` and `restart`: the agent's tmux session built in one tmux call, then a wait
//! (woken by the agent's fifodir) until af-wrap reports it running or failed.

use super::{Ctx, print_json, print_line, reap_orphans, wait_until};
use crate::layout;
use af_spool::control;
use af_spool::record::{Event, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, ExitCode, Observed, eventlog, tmux};
use std::time::Duration;

pub fn run(ctx: &Ctx, ids: &[String], wait: bool, timeout: Duration) -> anyhow::Result<ExitCode> {
    let ids: Vec<AgentId> = ids.iter().map(|s| super::agent_id(s)).collect::<Result<_, _>>()?;
    let mut shown = Vec::new();
    let mut progress = af_spool::progress::Progress::new("starting", ids.len());
    for id in &ids {
        let obs = start_one(ctx, id, wait, timeout, false)?;
        shown.push(report(id, &obs));
        progress.step();
    }
    drop(progress);
    emit(ctx, shown)
}

pub fn restart(ctx: &Ctx, id: &AgentId, grace: Duration) -> anyhow::Result<ExitCode> {
    let obs = ctx.spool.observe(id)?;
    if obs.status().is_live() {
        super::stop::stop_one(ctx, id, false, grace)?;
    }
    let obs = start_one(ctx, id, true, Duration::from_secs(10), true)?;
    eventlog::record(&ctx.spool, Event::new("agent.restarted", Some(id), serde_json::Value::Null));
    emit(ctx, vec![report(id, &obs)])
}

fn report(id: &AgentId, obs: &Observed) -> serde_json::Value {
    serde_json::json!({"id": id, "status": obs.status(), "pid": obs.state.pid, "tmuxSession": obs.state.tmux_session})
}

fn emit(ctx: &Ctx, shown: Vec<serde_json::Value>) -> anyhow::Result<ExitCode> {
    if ctx.json {
        print_json(&serde_json::Value::Array(shown))?;
    } else {
        for s in shown {
            let pid = s["pid"].as_u64().map(|p| format!(" (pid {p})")).unwrap_or_default();
            print_line(&format!("{} {}{pid}", s["id"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))?;
        }
    }
    Ok(ExitCode::Ok)
}

/// Starts one agent; with `wait`, returns once af-wrap has reported in.
pub fn start_one(ctx: &Ctx, id: &AgentId, wait: bool, timeout: Duration, restarting: bool) -> anyhow::Result<Observed> {
    let spool = &ctx.spool;
    let lock = spool.lock_agent(id)?;
    let obs = spool.observe(id)?;
    match obs.status() {
        Status::Running | Status::Paused => {
            return Err(Error::Conflict(format!("agent '{id}' is already running (use restart)")).into());
        }
        Status::Starting => return Err(Error::Conflict(format!("agent '{id}' is starting already")).into()),
        Status::Stopping => {
            return Err(Error::Conflict(format!("agent '{id}' is stopping; try again when it stopped")).into());
        }
        Status::Created | Status::Stopped | Status::Failed => {}
    }
    let workdir = layout::workdir(&obs.config);
    if !workdir.is_dir() {
        return Err(Error::Invalid(format!("agent '{id}': workdir {} is not a directory", workdir.display())).into());
    }
    if obs.state.status.is_live() {
        // Its supervisor died without a word: clear what it left before starting anew.
        reap_orphans(ctx, id, &obs);
    }
    let mut listener = control::listen(spool, id)?;
    let mut state = obs.state.clone();
    state.status = Status::Starting;
    state.reason = None;
    state.tmux_socket = ctx.tmux.socket().map(str::to_owned);
    state.tmux_session = id.session();
    state.updated_at = Timestamp::now();
    if restarting {
        state.restarts += 1;
    }
    spool.write_state(id, &state)?;
    let args = layout::chained(layout::commands(spool, &ctx.tmux, &obs.config, &workdir));
    // Try first, look later: a leftover session is rare, and asking tmux costs as much as starting.
    let mut launched = ctx.tmux.run(&args);
    if matches!(&launched, Err(Error::System(m)) if m.contains("duplicate session")) {
        clear_stale_session(ctx, id)?;
        launched = ctx.tmux.run(&args);
    }
    // A server whose last session just ended exits as we connect: the next one starts afresh.
    for _ in 0..20 {
        match &launched {
            Err(Error::System(m)) if m.contains("server exited unexpectedly") || m.contains("lost server") => {
                std::thread::sleep(Duration::from_millis(25));
                launched = ctx.tmux.run(&args);
            }
            _ => break,
        }
    }
    if let Err(e) = launched {
        state.status = Status::Failed;
        state.reason = Some(e.to_string());
        spool.write_state(id, &state)?;
        return Err(e.into());
    }
    drop(lock);
    eventlog::record(spool, Event::new("agent.starting", Some(id), serde_json::json!({"session": id.session()})));
    if !wait {
        return Ok(spool.observe(id)?);
    }
    let obs = wait_until(ctx, id, &mut listener, timeout, "start", |o| o.status() != Status::Starting)?;
    if obs.status() == Status::Failed {
        let reason = obs.reason().unwrap_or_else(|| "unknown reason".into());
        return Err(Error::System(format!("agent '{id}' failed to start: {reason}")).into());
    }
    Ok(obs)
}

/// Removes a leftover session of this agent (ours, with no live supervisor); refuses a session of
/// the same name that AgentFlow did not create.
fn clear_stale_session(ctx: &Ctx, id: &AgentId) -> anyhow::Result<()> {
    let name = id.session();
    let root = ctx.spool.root().display().to_string();
    for s in ctx.tmux.sessions()? {
        if s.name == name {
            if s.af_home.as_deref() != Some(root.as_str()) {
                return Err(Error::Conflict(format!(
                    "tmux session '{name}' exists and is not this spool's; rename or kill it (tmux kill-session -t {})",
                    tmux::exact(&name)
                ))
                .into());
            }
            ctx.tmux.kill_session(&name)?;
        }
    }
    Ok(())
}
