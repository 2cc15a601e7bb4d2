//! Starting and restarting agents: the agent's tmux session built in one tmux call, then a wait
//! (woken by the agent's fifodir) until af-wrap reports it running or failed.

use super::{Lifecycle, layout, reap_orphans, wait_until};
use crate::shard::Placer;
use crate::tmux::{self, Tmux};
use af_spool::control;
use af_spool::record::{Event, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Observed, Result, eventlog};
use std::time::Duration;

/// The most bytes of tmux commands sent in one tmux call (tmux refuses a command message much over
/// 16 KiB).
const MAX_CALL_BYTES: usize = 12 * 1024;

/// How many agents one batch start prepares, builds and waits for at a time: each holds a
/// descriptor (its fifodir's pipe) until it reports in, so a batch of any size holds at most this
/// many, whatever the descriptor limit.
const CHUNK: usize = 128;

/// Starts many agents at once: every one is checked before any is touched, then they are
/// started a chunk at a time ([`CHUNK`]): their sessions built with as few tmux calls as fit, then
/// all waited for together. The first error stops the batch after its chunk; agents of later
/// chunks stay as they were, and none is left `starting` without a session.
pub fn start_many(
    ctx: &Lifecycle,
    ids: &[AgentId],
    wait: bool,
    timeout: Duration,
    step: &mut dyn FnMut(),
) -> Result<Vec<(AgentId, Observed)>> {
    for id in ids {
        check_startable(&ctx.spool.observe(id)?)?;
    }
    make_room(ctx, ids.len())?;
    let mut out = Vec::new();
    let mut placer = Placer::new();
    for chunk in ids.chunks(CHUNK) {
        for (id, started) in start_chunk(ctx, chunk, wait, timeout, false, &mut placer, step)? {
            out.push((id, started?));
        }
    }
    tracing::debug!(count = out.len(), wait, "agents started");
    Ok(out)
}

/// Starts every agent it can, a chunk at a time as [`start_many`] does, and keeps going past
/// those it cannot: each agent's outcome, in the order given. One that fails to start is left as
/// the failure left it (`failed` with the reason once its session was built, else as it was);
/// none is left `starting`.
pub fn start_each(
    ctx: &Lifecycle,
    ids: &[AgentId],
    wait: bool,
    timeout: Duration,
    step: &mut dyn FnMut(),
) -> Vec<(AgentId, Result<Observed>)> {
    if let Err(e) = make_room(ctx, ids.len()) {
        return ids.iter().map(|id| (id.clone(), Err(Error::System(e.to_string())))).collect();
    }
    let mut out = Vec::new();
    let mut placer = Placer::new();
    for chunk in ids.chunks(CHUNK) {
        match start_chunk(ctx, chunk, wait, timeout, true, &mut placer, step) {
            Ok(outcomes) => out.extend(outcomes),
            // Only a failure of the whole chunk (never with keep_going): each agent shares it.
            Err(e) => out.extend(chunk.iter().map(|id| (id.clone(), Err(Error::System(e.to_string()))))),
        }
    }
    // Those that could not be prepared came first in their chunk: back to the order given.
    out.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
    out
}

/// Descriptors a tmux server holds per agent session: its pty and its pipe-pane.
const FDS_PER_SESSION: u64 = 2;

/// Descriptors a tmux server keeps beside its sessions' (socket, clients, logs), with room.
const FDS_SPARE: u64 = 32;

/// Makes room on a running tmux server for `more` sessions before any is built. A server that
/// runs out of descriptors stops accepting clients and every later tmux call hangs, so: its soft
/// `RLIMIT_NOFILE` is raised to its hard limit (a server the user's shell started has the shell's
/// 1,024; one AgentFlow starts has the raise already), and a batch it still cannot hold is refused
/// with what to do. No server running: the one this start makes inherits our raised limit.
fn make_room(ctx: &Lifecycle, more: usize) -> Result<()> {
    use nix::libc;
    let Ok(out) = ctx.tmux.run(&["display-message", "-p", "#{pid}"]) else { return Ok(()) };
    let Ok(pid) = out.trim().parse::<libc::pid_t>() else { return Ok(()) };
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit with no new limit only writes the current one into `limit`.
    if unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut limit) } != 0 {
        return Ok(());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: a valid limit for a process of our own user; the old one is not asked for.
        if unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &raised, std::ptr::null_mut()) } == 0 {
            tracing::debug!(pid, from = limit.rlim_cur, to = raised.rlim_cur, "tmux server's descriptor limit raised");
            limit = raised;
        }
    }
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) as u64;
    let need = open + FDS_PER_SESSION * more as u64 + FDS_SPARE;
    if need > limit.rlim_cur {
        return Err(Error::System(format!(
            "the tmux server (pid {pid}) may open {} descriptors and holds {open}: {more} more sessions need about {need} \
             (start it from a shell with a higher `ulimit -Hn`, or put these agents on another server with AF_TMUX_SOCKET)",
            limit.rlim_cur
        )));
    }
    Ok(())
}

/// Starts one chunk of a batch: each agent's outcome. Without `keep_going`, an agent that cannot
/// be prepared fails the whole chunk before any session is built.
fn start_chunk(
    ctx: &Lifecycle,
    ids: &[AgentId],
    wait: bool,
    timeout: Duration,
    keep_going: bool,
    placer: &mut Placer,
    step: &mut dyn FnMut(),
) -> Result<Vec<(AgentId, Result<Observed>)>> {
    let mut launches = Vec::new();
    let mut out = Vec::new();
    for id in ids {
        match prepare(ctx, id, false, placer) {
            Ok(l) => launches.push(l),
            Err(e) if keep_going => {
                out.push((id.clone(), Err(e)));
                step();
            }
            Err(e) => {
                // Those marked `starting` get no session: they go back to what they were.
                for l in &launches {
                    unprepare(ctx, l);
                }
                return Err(e);
            }
        }
    }
    let mut group: Vec<usize> = Vec::new();
    let mut bytes = 0;
    let mut groups = Vec::new();
    for (i, l) in launches.iter().enumerate() {
        let size: usize = l.commands.iter().flatten().map(|a| a.len() + 1).sum();
        // One call builds sessions on one server: a group ends where the next agent goes elsewhere.
        let elsewhere = group.last().is_some_and(|&j: &usize| launches[j].server.socket() != l.server.socket());
        if !group.is_empty() && (bytes + size > MAX_CALL_BYTES || elsewhere) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        group.push(i);
        bytes += size;
    }
    groups.push(group);
    tracing::debug!(count = launches.len(), "agents prepared");
    let mut failed: Vec<Option<Error>> = launches.iter().map(|_| None).collect();
    for g in groups {
        let Some(server) = g.first().map(|&i| &launches[i].server) else { continue };
        let commands: Vec<Vec<String>> = g.iter().flat_map(|&i| launches[i].commands.clone()).collect();
        if g.len() > 1 && server.run(&layout::chained(commands)).is_ok() {
            continue;
        }
        // One at a time: a leftover session or a dying server is handled per agent. Those the group
        // call built before it stopped are ours already (marked with this spool).
        let root = ctx.spool.root().display().to_string();
        let built: Vec<String> = if g.len() > 1 {
            let sessions = server.sessions().unwrap_or_default();
            sessions.into_iter().filter(|s| s.af_home.as_deref() == Some(root.as_str())).map(|s| s.name).collect()
        } else {
            Vec::new()
        };
        for &i in &g {
            if built.contains(&launches[i].id.session()) {
                continue;
            }
            if let Err(e) = launch(ctx, &launches[i]) {
                failed[i] = Some(e);
            }
        }
    }
    tracing::debug!(count = launches.len(), "tmux sessions built");
    for (l, launched) in launches.iter_mut().zip(failed) {
        let finished = finish(ctx, l, wait, timeout);
        out.push((l.id.clone(), launched.map_or(finished, Err)));
        step();
    }
    if !keep_going {
        // The batch's first failure is the answer.
        if let Some(i) = out.iter().position(|(_, r)| r.is_err()) {
            if let (_, Err(e)) = out.swap_remove(i) {
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Puts an agent marked `starting` that got no session back to the status it had (its
/// generation stays raised, so nothing launched for it can come back).
fn unprepare(ctx: &Lifecycle, l: &Launch) {
    let before = l.before;
    let undone = ctx.spool.update_state(&l.id, |s| {
        if s.status == Status::Starting {
            s.status = before;
        }
    });
    if let Err(e) = undone {
        tracing::warn!(agent_id = %l.id, "agent {} stays starting: {e}", l.id);
    }
}

/// Restarts an agent: stops it if it runs (graceful, with `grace`), then starts it and waits
/// until it runs; counts the restart.
pub fn restart(ctx: &Lifecycle, id: &AgentId, grace: Duration) -> Result<Observed> {
    let obs = ctx.spool.observe(id)?;
    if obs.status().is_live() {
        super::stop::stop_one(ctx, id, false, grace)?;
    }
    let obs = start_one(ctx, id, true, Duration::from_secs(10), true)?;
    eventlog::record(&ctx.spool, Event::new("agent.restarted", Some(id), serde_json::Value::Null));
    Ok(obs)
}

/// An agent made ready to start: its state says `starting`, its fifodir is listened to.
struct Launch {
    id: AgentId,
    /// The status it had before it was marked `starting`.
    before: Status,
    listener: af_spool::fifodir::Listener,
    /// The tmux server its session goes on.
    server: Tmux,
    commands: Vec<Vec<String>>,
    /// The agent's `env` secrets on their way to its af-wrap, held until it has reported in.
    secrets: Option<crate::secrets::Handoff>,
}

/// Refuses an agent that is running, starting or stopping.
fn check_startable(obs: &Observed) -> Result<()> {
    let id = &obs.config.id;
    match obs.status() {
        Status::Running | Status::Paused => {
            Err(Error::Conflict(format!("agent '{id}' is already running (use restart)")))
        }
        Status::Starting => Err(Error::Conflict(format!("agent '{id}' is starting already"))),
        Status::Stopping => Err(Error::Conflict(format!("agent '{id}' is stopping; try again when it stopped"))),
        Status::Created | Status::Stopped | Status::Failed => Ok(()),
    }
}

/// Checks the agent, chooses its tmux server and marks it `starting` under its lock; the status,
/// not the lock, keeps a second start away from then on.
fn prepare(ctx: &Lifecycle, id: &AgentId, restarting: bool, placer: &mut Placer) -> Result<Launch> {
    let spool = &ctx.spool;
    let _lock = spool.lock_agent(id)?;
    let obs = spool.observe(id)?;
    check_startable(&obs)?;
    let workdir = layout::workdir(&obs.config);
    if !workdir.is_dir() {
        return Err(Error::Invalid(format!("agent '{id}': workdir {} is not a directory", workdir.display())));
    }
    let secrets = crate::secrets::hand_off(&obs.config)?;
    if obs.state.status.is_live() {
        // Its supervisor died without a word: clear what it left before starting anew.
        reap_orphans(ctx, id, &obs);
    }
    // tmux's pipe-pane appends to output.log from a shell; made here first, never through a
    // symlink, so that a link planted there refuses the start before anything changes.
    drop(af_spool::beneath::open_append(&spool.output_log_path(id))?);
    let base = obs.config.tmux_socket.as_deref().or(ctx.tmux.socket());
    let server = ctx.tmux.on(placer.place(&ctx.tmux, base)?.as_deref());
    if obs.state.tmux_socket.as_deref() != server.socket() {
        // Moving to another server: a session it left on its last one (a monitor window outlives
        // af-wrap) goes, so that no server holds two of its sessions.
        super::kill_our_session(ctx, id);
    }
    let listener = control::listen(spool, id)?;
    let mut state = obs.state.clone();
    state.status = Status::Starting;
    state.reason = None;
    // The last run's exit goes: an exit recorded from now on is this start's.
    state.exit_code = None;
    state.exit_signal = None;
    state.tmux_socket = server.socket().map(str::to_owned);
    state.tmux_session = id.session();
    state.updated_at = Timestamp::now();
    if restarting {
        state.restarts += 1;
    }
    state.generation += 1;
    spool.write_state(id, &state)?;
    // The session's AF_TMUX_SOCKET stays the caller's: what runs in it starts agents in that family.
    let mut commands = layout::commands(spool, &ctx.tmux, &obs.config, &workdir);
    layout::set_generation(&mut commands, state.generation);
    if let Some(h) = &secrets {
        layout::set_var(&mut commands, crate::secrets::HANDOFF_VAR, &h.path);
    }
    Ok(Launch { id: id.clone(), before: obs.status(), listener, server, commands, secrets })
}

/// Builds one agent's session, clearing a stale one of ours and waiting out a server that is
/// exiting; on failure the agent is marked failed.
fn launch(ctx: &Lifecycle, l: &Launch) -> Result<()> {
    let args = layout::chained(l.commands.clone());
    // Try first, look later: a leftover session is rare, and asking tmux costs as much as starting.
    let mut launched = l.server.run(&args);
    if matches!(&launched, Err(Error::System(m)) if m.contains("duplicate session")) {
        launched = match clear_stale_session(ctx, &l.server, &l.id) {
            Ok(()) => l.server.run(&args),
            Err(e) => Err(e),
        };
    }
    // A server whose last session just ended exits as we connect: the next one starts afresh.
    for _ in 0..20 {
        match &launched {
            Err(Error::System(m)) if tmux::server_exiting(m) => {
                std::thread::sleep(Duration::from_millis(25));
                launched = l.server.run(&args);
            }
            _ => break,
        }
    }
    if let Err(e) = launched {
        let reason = e.to_string();
        ctx.spool.update_state(&l.id, |s| {
            s.status = Status::Failed;
            s.reason = Some(reason);
        })?;
        return Err(e);
    }
    Ok(())
}

/// Records the start and, with `wait`, waits until af-wrap has reported in. An agent with `env`
/// secrets is waited for in any case: its af-wrap takes them from this process.
fn finish(ctx: &Lifecycle, l: &mut Launch, wait: bool, timeout: Duration) -> Result<Observed> {
    let (spool, id) = (&ctx.spool, &l.id);
    eventlog::record(spool, Event::new("agent.starting", Some(id), serde_json::json!({"session": id.session()})));
    if !wait && l.secrets.is_none() {
        return spool.observe(id);
    }
    let waited = wait_until(ctx, id, &mut l.listener, timeout, "start", |o| o.status() != Status::Starting);
    l.secrets = None;
    if !wait {
        return waited.or_else(|_| spool.observe(id));
    }
    let obs = waited?;
    // Failed with an exit code or signal: the program ran and has exited already (a crash loop
    // seen late, under load); the start itself succeeded, and what came after is the agent's.
    let ran = obs.state.exit_code.is_some() || obs.state.exit_signal.is_some();
    if obs.status() == Status::Failed && !ran {
        let reason = obs.reason().unwrap_or_else(|| "unknown reason".into());
        return Err(Error::Failed(format!("agent '{id}' failed to start: {reason}")));
    }
    Ok(obs)
}

/// Starts one agent; with `wait`, returns once af-wrap has reported in.
pub fn start_one(ctx: &Lifecycle, id: &AgentId, wait: bool, timeout: Duration, restarting: bool) -> Result<Observed> {
    let mut l = prepare(ctx, id, restarting, &mut Placer::new())?;
    launch(ctx, &l)?;
    finish(ctx, &mut l, wait, timeout)
}

/// Removes a leftover session of this agent on `server` (ours, with no live supervisor); refuses a
/// session of the same name that AgentFlow did not create.
fn clear_stale_session(ctx: &Lifecycle, server: &Tmux, id: &AgentId) -> Result<()> {
    let name = id.session();
    let root = ctx.spool.root().display().to_string();
    for s in server.sessions()? {
        if s.name == name {
            if s.af_home.as_deref() != Some(root.as_str()) {
                return Err(Error::Conflict(format!(
                    "tmux session '{name}' exists and is not this spool's; rename or kill it ({} kill-session -t {})",
                    server.shell_prefix(),
                    tmux::exact(&name)
                )));
            }
            server.kill_session(&name)?;
        }
    }
    Ok(())
}
