//! Garbage collection: reconciles the whole spool with tmux and the processes. Agents recorded as
//! running whose supervisor is gone are marked failed and their orphans killed; AgentFlow sessions
//! with no live agent are killed; leftovers of interrupted creates and removes are deleted, and so
//! are what killed senders and listeners left in the bus and the fifodirs (pipes, undelivered
//! message files, half-made subscriptions: see af_spool::leftovers). Sessions this spool did not
//! create are never touched. The logs' retention is applied too (af_spool::logfile): the event
//! log, the programs' logs in `log/`, and each agent's `output.log` and `wrap.log` lose their
//! generations past the age or size, and the others are compressed. A dry run finds the same and
//! changes nothing.

use super::{Lifecycle, orphans, reap_orphans};
use crate::procfs;
use af_spool::leftovers::{self, Kind};
use af_spool::logfile::{self, Applied, Retention};
use af_spool::record::{Event, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Result, eventlog};
use std::path::Path;

/// What a gc did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// A dry run: nothing was changed, the counts say what would be.
    pub dry_run: bool,
    /// Agents recorded live whose supervisor was gone, now failed.
    pub marked_failed: Vec<AgentId>,
    /// Stray AgentFlow sessions killed.
    pub killed_sessions: Vec<String>,
    /// Orphaned processes killed.
    pub killed_processes: usize,
    /// Leftovers of interrupted creates and removes deleted.
    pub removed_leftovers: usize,
    /// Named pipes of dead listeners removed from the fifodirs.
    pub removed_fifos: usize,
    /// Message files dead senders left in queues' `tmp/` removed.
    pub removed_tmp_files: usize,
    /// Subscriptions half made (or half removed) by dead programs removed.
    pub removed_subscriptions: usize,
    /// What the logs' retention did: generations compressed, removed, and the bytes freed.
    pub logs: Applied,
}

/// Reconciles the spool with tmux and the processes, and applies the default retention to the
/// logs; returns what it did. With `dry_run`, changes nothing and returns what it would do.
pub fn gc(ctx: &Lifecycle, dry_run: bool) -> Result<GcReport> {
    gc_with(ctx, dry_run, &Retention::default())
}

/// [`gc`] with the logs' `retention`.
pub fn gc_with(ctx: &Lifecycle, dry_run: bool, retention: &Retention) -> Result<GcReport> {
    let mut report = GcReport { dry_run, ..GcReport::default() };
    report.logs = retain(ctx, retention, dry_run);
    report.removed_leftovers = remove_leftovers(ctx, dry_run);
    for left in leftovers::find(&ctx.spool, &procfs::alive) {
        if dry_run || left.remove() {
            match left.kind {
                Kind::Fifo => report.removed_fifos += 1,
                Kind::Tmp => report.removed_tmp_files += 1,
                Kind::Subscription => report.removed_subscriptions += 1,
            }
        }
    }
    for id in ctx.spool.agent_ids()? {
        let Ok(obs) = ctx.spool.observe(&id) else { continue };
        if !(obs.state.status.is_live() && obs.status() == Status::Failed) {
            continue;
        }
        if dry_run {
            report.killed_processes += orphans(ctx, &id).len();
            report.marked_failed.push(id);
            continue;
        }
        report.killed_processes += reap_orphans(ctx, &id, &obs);
        let reason = obs.reason().unwrap_or_default();
        ctx.spool.update_state(&id, |s| {
            s.generation += 1;
            s.status = Status::Failed;
            s.reason = Some(format!("{} (marked failed by gc)", reason.trim_end_matches("; run af-spawn gc")));
            s.pid = None;
            s.wrap_pid = None;
            s.stopped_at = Some(Timestamp::now());
            s.failures += 1;
            s.consecutive_failures += 1;
        })?;
        eventlog::record(
            &ctx.spool,
            Event::new("agent.failed", Some(&id), serde_json::json!({"reason": "supervisor gone", "by": "gc"})),
        );
        report.marked_failed.push(id);
    }
    report.killed_sessions = kill_stray_sessions(ctx, dry_run)?;
    Ok(report)
}

/// AgentFlow sessions of this spool whose agent is gone, not live, or live on another server, on
/// every tmux server its agents may use (see [`servers`]).
fn kill_stray_sessions(ctx: &Lifecycle, dry_run: bool) -> Result<Vec<String>> {
    let root = ctx.spool.root().display().to_string();
    let mut killed = Vec::new();
    for socket in servers(ctx) {
        let server = ctx.tmux.on(socket.as_deref());
        for s in server.sessions()? {
            if s.af_home.as_deref() != Some(root.as_str()) {
                continue;
            }
            let live_here = s
                .name
                .strip_prefix("agent-")
                .and_then(|n| AgentId::new(n).ok())
                .and_then(|id| ctx.spool.observe(&id).ok())
                .is_some_and(|o| o.status().is_live() && o.state.tmux_socket == socket);
            if !live_here && (dry_run || server.kill_session(&s.name).is_ok()) {
                killed.push(s.name);
            }
        }
    }
    Ok(killed)
}

/// The tmux servers this spool's agents may be on: `AF_TMUX_SOCKET`'s family and that of every
/// agent's `tmuxSocket` (those with a socket), and every server an agent's state records.
fn servers(ctx: &Lifecycle) -> Vec<Option<String>> {
    let mut bases = vec![ctx.tmux.socket().map(str::to_owned)];
    let mut out: Vec<Option<String>> = vec![ctx.tmux.socket().map(str::to_owned)];
    for id in ctx.spool.agent_ids().unwrap_or_default() {
        let Ok(obs) = ctx.spool.observe(&id) else { continue };
        for s in [obs.state.tmux_socket, obs.config.tmux_socket.clone()] {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        if obs.config.tmux_socket.is_some() && !bases.contains(&obs.config.tmux_socket) {
            bases.push(obs.config.tmux_socket);
        }
    }
    for base in &bases {
        for s in crate::shard::family(base.as_deref()) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Hidden directories and files (`.new.*`, `.trash.*`, `.tmp.*`) left by a killed program: their
/// names carry the writer's pid, and a dead writer's leftovers go.
fn remove_leftovers(ctx: &Lifecycle, dry_run: bool) -> usize {
    let mut removed = 0;
    let agents = ctx.spool.agents_dir();
    let mut dirs = vec![agents.clone()];
    if let Ok(ids) = ctx.spool.agent_ids() {
        dirs.extend(ids.iter().map(|id| ctx.spool.agent_dir(id)));
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('.');
            let (Some(""), Some(kind), Some(pid)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if !matches!(kind, "new" | "trash" | "tmp") {
                continue;
            }
            let writer_alive = pid.parse::<u32>().is_ok_and(procfs::alive);
            if writer_alive {
                continue;
            }
            let path = e.path();
            if dry_run {
                removed += 1;
                continue;
            }
            let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            if gone.is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Applies `r` to every log of the spool: the event log (under its rotation lock), the programs'
/// logs in `log/`, and each agent's output and af-wrap logs. A log that cannot be handled is
/// logged and left for the next gc.
fn retain(ctx: &Lifecycle, r: &Retention, dry_run: bool) -> Applied {
    let spool = &ctx.spool;
    let now = std::time::SystemTime::now();
    let mut done = Applied::default();
    let mut one = |path: &Path, lock: Option<&Path>| match logfile::apply(path, r, lock, now, dry_run) {
        Ok(a) => done += a,
        Err(e) => tracing::warn!("cannot apply the retention to {}: {e}", path.display()),
    };
    one(&spool.events_path(), Some(&spool.events_lock_path()));
    if let Ok(entries) = std::fs::read_dir(spool.root().join("log")) {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "log") && e.file_type().is_ok_and(|t| t.is_file()) {
                one(&path, None);
            }
        }
    }
    for id in spool.agent_ids().unwrap_or_default() {
        one(&spool.output_log_path(&id), None);
        one(&spool.wrap_log_path(&id), None);
    }
    done
}
