//! One check pass: every agent in scope checked (in parallel, each under its health lock so two
//! af-health never act on one agent at once), its history appended, its alerts brought up to
//! date, and, when recovering, the ladder climbed.

use super::alert;
use super::ladder;
use super::policy::{self, Plan, Policy};
use super::probe::{self, Finding, Ping, World};
use af_spool::control::{self, Request};
use af_spool::fifodir::{Fifodir, Listener};
use af_spool::health::{self, Alert, Check, HistoryEntry};
use af_spool::record::{Health, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Result, Spool};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which agents a pass looks at.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Only these (all when None).
    pub ids: Option<Vec<AgentId>>,
    /// Only this project's.
    pub project: Option<String>,
    /// How long to wait for an agent another af-health is checking (then it is skipped).
    pub patience: Duration,
}

/// What a pass found for one agent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The agent.
    pub id: AgentId,
    /// Its real status.
    pub status: Status,
    /// Its health (unknown when not running).
    pub health: Health,
    /// The checks.
    pub checks: Vec<Check>,
    /// What the ladder did or plans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// RSS of its tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// CPU of its tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// The ping's round trip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<f64>,
    /// The alerts this pass raised, escalated or closed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
    /// Why it was not checked (another af-health holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A pass's outcome.
pub struct Outcome {
    /// One report per agent in scope, by id.
    pub reports: Vec<Report>,
    /// The earliest time a scheduled rung may be climbed.
    pub next_at: Option<Timestamp>,
}

impl Outcome {
    /// The document `af-health check --json` prints (and af-api answers): the worst health and
    /// one report per agent.
    pub fn document(&self) -> serde_json::Value {
        serde_json::json!({"health": self.worst(), "agents": self.reports})
    }

    /// Whether nothing checked is degraded or unhealthy (`af-health check` exits 0).
    pub fn healthy(&self) -> bool {
        matches!(self.worst(), Health::Healthy | Health::Unknown)
    }

    /// The worst health found.
    pub fn worst(&self) -> Health {
        let rank = |h: Health| match h {
            Health::Unknown => 0,
            Health::Healthy => 1,
            Health::Degraded => 2,
            Health::Unhealthy => 3,
        };
        self.reports.iter().map(|r| r.health).max_by_key(|h| rank(*h)).unwrap_or(Health::Unknown)
    }
}

/// How many agents are checked at once (pings wait on other processes).
const WORKERS: usize = 8;

/// Runs one pass.
pub fn run(spool: &Spool, scope: &Scope, p: &Policy, recover: bool) -> Result<Outcome> {
    let ids = match &scope.ids {
        Some(ids) => {
            for id in ids {
                spool.require(id)?;
            }
            ids.clone()
        }
        None => spool.agent_ids()?,
    };
    // A monitor agent does not check (nor restart) itself.
    let me = std::env::var("AF_AGENT_ID").ok();
    let ids: Vec<AgentId> = ids.into_iter().filter(|id| me.as_deref() != Some(id.as_str())).collect();
    let world = World::snapshot(spool)?;
    remove_dead_reply_pipes(spool);
    let open = open_alert_names(spool);
    let rules = super::rules::Rules::load(spool)?;
    let shared = Shared { spool, scope, world: &world, open_names: &open, p, rules: &rules, recover };
    // The list is known up front: each worker takes the next index and keeps its own results,
    // handed back when it is joined (a check that panics is re-raised here).
    let next = AtomicUsize::new(0);
    let workers = WORKERS.min(ids.len()).max(1);
    let mut results: Vec<(AgentId, Result<Checked>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut replies = Fifodir::new(spool.health_replies_dir()).subscribe().ok();
                    let mut mine = Vec::new();
                    while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                        mine.push((id.clone(), check_one(&shared, id, &mut replies)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let mut next_at: Option<Timestamp> = None;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, r) in results {
        match r {
            Ok(Some((report, at))) => {
                next_at = match (next_at, at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                reports.push(report);
            }
            Ok(None) => {}
            // An agent removed during the pass is simply gone.
            Err(Error::NotFound(_)) => {}
            // SIGINT or SIGTERM: the pass ends, recording nothing more.
            Err(e @ Error::Interrupted(_)) => return Err(e),
            Err(e) => {
                if scope.ids.is_some() {
                    return Err(e);
                }
                errors.push((id, e));
            }
        }
    }
    checked_something(&reports, &errors)?;
    for (id, e) in &errors {
        tracing::warn!(agent_id = %id, "cannot check agent {id}: {e}");
    }
    close_idle_alerts(spool, scope, &ids, &reports, open);
    Ok(Outcome { reports, next_at })
}

/// A pass that checked nothing while there were agents to check (each skipped or failed: a
/// read-only or full spool, another af-health holding them all) is no success: a system error
/// with the first reason.
fn checked_something(reports: &[Report], errors: &[(AgentId, Error)]) -> Result<()> {
    let in_scope = reports.len() + errors.len();
    if in_scope == 0 || reports.iter().any(|r| r.skipped.is_none()) {
        return Ok(());
    }
    let why = match errors.first() {
        Some((id, e)) => format!("{id}: {e}"),
        None => "another af-health is checking them".into(),
    };
    let agents = if in_scope == 1 { "agent" } else { "agents" };
    Err(Error::System(format!("checked none of {in_scope} {agents}: {why}")))
}

/// Removes the reply pipes an af-health killed with SIGKILL left behind (named
/// `fifo.<pid>.<nanos>.<n>` by the fifodir).
fn remove_dead_reply_pipes(spool: &Spool) {
    let Ok(entries) = std::fs::read_dir(spool.health_replies_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name.to_str().and_then(|n| n.trim_start_matches('.').split('.').nth(1)?.parse::<u32>().ok());
        if pid.is_some_and(|p| !crate::procfs::alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The (agent, check) of every open alert, from file names alone (`<id>.<check>.json`; ids have
/// no dots): one directory read per pass, not one probe per agent and check.
fn open_alert_names(spool: &Spool) -> Vec<(AgentId, String)> {
    let Ok(entries) = std::fs::read_dir(spool.open_alerts_dir()) else { return Vec::new() };
    let mut names: Vec<(AgentId, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".json")?.to_owned();
            let (agent, check) = name.split_once('.')?;
            Some((AgentId::new(agent).ok()?, check.to_owned()))
        })
        .collect();
    names.sort();
    names
}

/// Closes (with a recovery) the open alerts of agents in scope that no longer run: stopped,
/// never started, or removed (a stop or rm closes its own; this catches what they could not).
fn close_idle_alerts(spool: &Spool, scope: &Scope, ids: &[AgentId], reports: &[Report], names: Vec<(AgentId, String)>) {
    let idle = |id: &AgentId| match reports.iter().find(|r| &r.id == id) {
        Some(r) => matches!(r.status, Status::Stopped | Status::Created),
        // Gone from the spool; only a pass over every agent can tell.
        None => scope.ids.is_none() && scope.project.is_none() && !ids.contains(id) && !spool.exists(id),
    };
    for (agent, check) in names.into_iter().filter(|(agent, _)| idle(agent)) {
        let why = if spool.exists(&agent) { "is not running" } else { "was removed" };
        crate::alert::close(spool, &agent, &check, why);
    }
}

/// Pings the agent's af-wrap through its control pipe, the answer coming back on this thread's
/// own pipe (made once per pass: a named pipe per ping would cost more than the ping). A signal
/// that interrupts the wait is af-health's own end, not the agent's failure: it ends the pass.
fn ping(spool: &Spool, id: &AgentId, p: &Policy, replies: &mut Option<Listener>) -> Result<Ping> {
    let t = Instant::now();
    let timeout = Duration::from_millis(p.ping_timeout_ms);
    let answered = match replies {
        Some(l) => control::ask_on(spool, id, Request::Ping, l, timeout).map(|_| ()),
        None => control::ask(spool, id, Request::Ping, timeout).map(|_| ()),
    };
    Ok(match answered {
        Ok(()) => Ok((t.elapsed().as_secs_f64() * 1e4).round() / 10.0),
        Err(e @ Error::Interrupted(_)) => return Err(e),
        Err(Error::Timeout(_)) => Err(format!("no answer to a ping within {} ms", p.ping_timeout_ms)),
        Err(Error::Conflict(_)) => Err("no supervisor reads the control pipe".into()),
        Err(e) => Err(format!("cannot ping: {e}")),
    })
}

type Checked = Option<(Report, Option<Timestamp>)>;

/// What every agent's check in one pass shares.
struct Shared<'a> {
    spool: &'a Spool,
    scope: &'a Scope,
    world: &'a World,
    open_names: &'a [(AgentId, String)],
    p: &'a Policy,
    rules: &'a super::rules::Rules,
    recover: bool,
}

fn check_one(sh: &Shared, id: &AgentId, replies: &mut Option<Listener>) -> Result<Checked> {
    let Shared { spool, scope, world, open_names, p, rules, recover } = *sh;
    let config = spool.read_config(id)?;
    if scope.project.as_deref().is_some_and(|pr| pr != config.project_id) {
        return Ok(None);
    }
    let Some(_lock) = spool.try_lock_health(id, scope.patience)? else {
        let obs = spool.observe(id)?;
        let mut r = report(id, obs.status(), None);
        r.skipped = Some("another af-health is checking it".into());
        return Ok(Some((r, None)));
    };
    // The config read above is the one checked: it changes only through af-spawn create.
    let state = spool.read_state(id)?;
    let supervisor_alive = state.status.is_live() && spool.supervisor_alive(id);
    let obs = af_spool::Observed { config, state, supervisor_alive };
    // The rules in force for this agent replace the flags' limits.
    let rule = rules.for_agent(&obs.config);
    let p = &rule.policy(p);
    let status = obs.status();
    let hb = spool.read_heartbeat(id).ok().flatten();
    let pingable = p.ping && matches!(status, Status::Running | Status::Paused) && obs.supervisor_alive;
    let ping = if pingable { Some(ping(spool, id, p, replies)?) } else { None };
    let Some(mut finding) = probe::evaluate(&obs, hb.as_ref(), ping.as_ref(), world, p) else {
        return Ok(Some((report(id, status, None), None)));
    };
    super::judge::figures(spool, &obs, hb.as_ref(), &rule, &mut finding);
    let mut open = HashMap::new();
    let first = open_names.partition_point(|(agent, _)| agent < id);
    for (_, check) in open_names[first..].iter().take_while(|(agent, _)| agent == id) {
        if let Ok(Some(a)) = af_spool::atomic::read_json::<Alert>(&spool.open_alert_path(id, check)) {
            open.insert(check.clone(), a);
        }
    }
    let now = Timestamp::now();
    let mut ladder = spool.read_ladder(id)?;
    let before = ladder.clone();
    let mut action = None;
    let mut next_at = None;
    let mut climb = None;
    if recover {
        let fail = ladder::failure(&obs, &finding, &ladder);
        let healthy = finding.health() == Health::Healthy;
        match policy::plan(&mut ladder, p, now, obs.state.started_at, healthy, fail.as_ref()) {
            Plan::Nothing => {}
            Plan::Wait(at) => {
                let what =
                    ladder.next.map_or("restart", |r| if r == health::Rung::Rollback { "rollback" } else { "restart" });
                action = Some(format!(
                    "{what} in {:.1} s (failure {})",
                    now.millis_until(at) as f64 / 1e3,
                    ladder.consecutive_failures
                ));
                next_at = Some(at);
            }
            Plan::Climb(rung) => {
                policy::climbed(&mut ladder, now);
                climb = Some(rung);
            }
            Plan::GiveUp(reason) => {
                ladder::give_up(spool, id, &obs, &finding, &reason);
                action = Some(format!("gave up: {reason}"));
            }
            Plan::GivenUp => action = Some("given up: waiting for af-spawn start or af-spawn reset".into()),
        }
    }
    if ladder != before {
        spool.write_ladder(id, &ladder)?;
    }
    let detail = serde_json::json!({"action": action.as_deref().or(climb.map(|_| "restarting")), "failures": ladder.consecutive_failures});
    let first_failure = recover && ladder.consecutive_failures <= 1 && ladder.gave_up_at.is_none();
    let alerts = alert::update(spool, id, &finding, first_failure, &open, p, &detail);
    if let Some(rung) = climb {
        action = Some(match ladder::climb(spool, id, &obs, &finding, rung, &ladder) {
            Ok(text) => text,
            Err(why) => {
                let mut gave = ladder.clone();
                gave.gave_up_at = Some(Timestamp::now());
                gave.reason = Some(why.clone());
                spool.write_ladder(id, &gave)?;
                ladder::give_up(spool, id, &obs, &finding, &why);
                format!("{why}; gave up")
            }
        });
    }
    record(spool, id, &obs, &finding, action.clone());
    let mut r = report(id, status, Some(&finding));
    r.action = action;
    r.alerts = alerts;
    Ok(Some((r, next_at)))
}

fn report(id: &AgentId, status: Status, f: Option<&Finding>) -> Report {
    Report {
        id: id.clone(),
        status,
        health: f.map_or(Health::Unknown, Finding::health),
        checks: f.map(|f| f.checks.clone()).unwrap_or_default(),
        action: None,
        rss_bytes: f.and_then(|f| f.rss_bytes),
        cpu_percent: f.and_then(|f| f.cpu_percent),
        response_ms: f.and_then(|f| f.response_ms),
        alerts: Vec::new(),
        skipped: None,
    }
}

/// Appends the history entry and keeps the state's health field current.
fn record(spool: &Spool, id: &AgentId, obs: &af_spool::Observed, f: &Finding, action: Option<String>) {
    let entry = HistoryEntry {
        time: Timestamp::now(),
        agent: id.clone(),
        status: f.status,
        health: f.health(),
        checks: f.checks.clone(),
        rss_bytes: f.rss_bytes,
        cpu_percent: f.cpu_percent,
        response_ms: f.response_ms,
        action,
    };
    if let Err(e) = health::append_line(&spool.history_path(id), &entry, health::HISTORY_MAX_BYTES) {
        tracing::warn!(agent_id = %id, "cannot append to the history of {id}: {e}");
    }
    let h = f.health();
    if obs.state.health != h {
        let _ = spool.update_state(id, |s| {
            if s.status == obs.state.status {
                s.health = h;
            }
        });
    }
}
