//! `/api/agents` and `/api/agents/create`: the list (filtered, from a snapshot of the spool that
//! is renewed whenever the event log grows or rotates and at least every 250 ms; event streams
//! following the agents accept one up to their 2 s pace old), creation, bulk lifecycle
//! operations and cleanup.

use crate::agent::{lifecycle, parse_id};
use crate::http::{Answer, ApiError, Reply, Req};
use crate::routes::App;
use af_ops::lifecycle::{self as ops, Lifecycle};
use af_spool::eventlog::{self, Stamp};
use af_spool::{Error, Observed, Spool};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale a snapshot of the agents may be when the event log has not changed.
const SNAPSHOT_TTL: Duration = Duration::from_millis(250);

/// The statuses an agent can have.
pub const STATUSES: [&str; 7] = ["created", "starting", "running", "paused", "stopping", "stopped", "failed"];
/// The agent types.
pub const TYPES: [&str; 4] = ["claude-code", "codex", "worker", "monitor"];

/// When a snapshot was taken, the event log's stamp then (a rotation changes it even when the new
/// file has the old one's length), the agents' summaries, and the unfiltered list's body,
/// serialized once.
type Snapshot = (Instant, Stamp, Rows, Body);
/// The agents' summaries.
type Rows = Arc<Vec<Value>>;
/// A serialized answer.
type Body = Arc<Vec<u8>>;

/// A snapshot of every agent's summary.
#[derive(Default)]
pub struct Cache {
    snap: Mutex<Option<Snapshot>>,
}

impl Cache {
    /// The agents' summaries, from the snapshot when it is fresh.
    pub fn rows(&self, spool: &Spool) -> Result<Arc<Vec<Value>>, ApiError> {
        self.rows_within(spool, SNAPSHOT_TTL)
    }

    /// The agents' summaries, from a snapshot up to `max_age` old when the event log has not
    /// changed since (a status change is an event, so it is never missed; only heartbeats wait).
    /// Event streams following the agents use this with their own pace: ten open dashboards read
    /// the spool once per pace, not ten times.
    pub fn rows_within(&self, spool: &Spool, max_age: Duration) -> Result<Arc<Vec<Value>>, ApiError> {
        Ok(self.snapshot_within(spool, max_age)?.0)
    }

    /// The summaries and the unfiltered list's body, from the snapshot when it is fresh.
    fn snapshot(&self, spool: &Spool) -> Result<(Rows, Body), ApiError> {
        self.snapshot_within(spool, SNAPSHOT_TTL)
    }

    fn snapshot_within(&self, spool: &Spool, max_age: Duration) -> Result<(Rows, Body), ApiError> {
        let log = eventlog::stamp(spool);
        let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, seen, rows, body)) = snap.as_ref() {
            if *seen == log && at.elapsed() < max_age {
                return Ok((rows.clone(), body.clone()));
            }
        }
        // The dashboard polls this: agents beat at their busy pace while someone looks.
        let _ = spool.mark_watched();
        let rows = read_rows(spool)?;
        let body = Arc::new(serde_json::to_vec(&json!({"agents": rows, "count": rows.len()})).unwrap_or_default());
        let rows = Arc::new(rows);
        *snap = Some((Instant::now(), log, rows.clone(), body.clone()));
        Ok((rows, body))
    }
}

fn read_rows(spool: &Spool) -> Result<Vec<Value>, ApiError> {
    let mut rows = Vec::new();
    for id in spool.agent_ids()? {
        match spool.observe(&id) {
            Ok(obs) => rows.push(summary(spool, &obs)),
            Err(Error::NotFound(_)) => {} // removed as we looked
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rows)
}

/// One agent as the list shows it: `af-spawn ls --json`'s fields (the same library call), its
/// capabilities and its last heartbeat.
pub fn summary(spool: &Spool, o: &Observed) -> Value {
    let beat = spool.read_heartbeat(&o.config.id).unwrap_or(None);
    let mut v = af_ops::health::live::summary(spool, o);
    v["capabilities"] = json!(o.config.capabilities);
    v["heartbeat"] = json!(beat.map(|b| json!({
        "time": b.time, "cpuPercent": b.cpu_percent, "rssBytes": b.rss_bytes,
        "processes": b.processes, "tasksRunning": b.tasks_running, "tasksDone": b.tasks_done,
    })));
    v
}

/// The healths an agent can have.
pub const HEALTHS: [&str; 4] = ["unknown", "healthy", "degraded", "unhealthy"];

/// `GET /api/agents?project=&type=&status=&health=&host=&cluster=`: this host's agents, or with
/// `cluster=1` every bridged host's (as `GET /api/cluster` lists them, each with `host` and
/// `hostReachable`); `host` keeps one host's (this host's name is `AF_HOST`, else the hostname).
pub fn list(app: &App, req: &Req) -> Answer {
    let project = req.param("project");
    let kind = req.param("type");
    let status = req.param("status");
    let health = req.param("health");
    let host = req.param("host");
    let cluster = crate::agent::flag(req.param("cluster"), "cluster")?;
    if let Some(h) = health.filter(|h| !HEALTHS.contains(h)) {
        return Err(ApiError::bad(format!("unknown health '{h}': one of {}", HEALTHS.join(", "))));
    }
    if let Some(t) = kind.filter(|t| !TYPES.contains(t)) {
        return Err(ApiError::bad(format!("unknown type '{t}': one of {}", TYPES.join(", "))));
    }
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad(format!("unknown status '{s}': one of {}", STATUSES.join(", "))));
    }
    if let Some(h) = host {
        af_spool::host::validate_host(h)?;
    }
    let keep = |r: &&Value| {
        project.is_none_or(|p| r["projectId"] == p)
            && kind.is_none_or(|t| r["type"] == t)
            && status.is_none_or(|s| r["status"] == s)
            && health.is_none_or(|h| r["health"] == h)
    };
    if cluster {
        let rows = af_ops::bridge::cluster::agents(&crate::cluster::hosts()?);
        let picked: Vec<&Value> = rows.iter().filter(keep).filter(|r| host.is_none_or(|h| r["host"] == h)).collect();
        return Ok(Reply::json(200, &json!({"agents": picked, "count": picked.len()})));
    }
    // Without the cluster, every agent listed is this host's.
    if host.is_some_and(|h| af_spool::host::own_host().is_ok_and(|own| own != h)) {
        return Ok(Reply::json(200, &json!({"agents": [], "count": 0})));
    }
    let (rows, all) = app.cache.snapshot(&app.spool)?;
    if project.is_none() && kind.is_none() && status.is_none() && health.is_none() {
        return Ok(Reply::bytes("application/json", all.as_ref().clone()));
    }
    let picked: Vec<&Value> = rows.iter().filter(keep).collect();
    Ok(Reply::json(200, &json!({"agents": picked, "count": picked.len()})))
}

/// `POST /api/agents/create`: the seed's AgentConfig (an object, or an array of them) through
/// `af-spawn create`; `?start=true` starts them too.
pub fn create(app: &App, req: &Req) -> Answer {
    match req.json()? {
        Some(Value::Object(_)) | Some(Value::Array(_)) => {}
        Some(_) => return Err(ApiError::bad("the body must be an AgentConfig object or an array of them")),
        None => return Err(ApiError::bad("an AgentConfig JSON body is required")),
    }
    let start = crate::agent::flag(req.param("start"), "start")?;
    let configs = ops::parse_configs(&req.body)?;
    let ctx = Lifecycle::of(app.spool.clone());
    let created = if start {
        // All or nothing, as `af-spawn create --start`.
        ops::create_started(&ctx, configs, false, ops::DEFAULT_START_TIMEOUT, &mut || {}, &mut || {})?
    } else {
        ops::create(&ctx, configs, &mut || {})?
    };
    Ok(Reply::json(201, &json!({"created": created})))
}

/// `POST /api/agents`: one lifecycle action over many agents,
/// `{"action": "start"|"stop"|"pause"|"resume"|"restart"|"remove", "ids": [...], "graceful": bool}`.
pub fn bulk(app: &App, req: &Req) -> Answer {
    let body = req.object()?;
    let action =
        body.get("action").and_then(Value::as_str).ok_or_else(|| ApiError::bad("\"action\" (a string) is required"))?;
    if !["start", "stop", "pause", "resume", "restart", "remove"].contains(&action) {
        return Err(ApiError::bad(format!(
            "unknown bulk action '{action}': start, stop, pause, resume, restart or remove"
        )));
    }
    let ids = match body.get("ids") {
        Some(Value::Array(ids)) if !ids.is_empty() && ids.len() <= 1000 => ids,
        _ => return Err(ApiError::bad("\"ids\" must be an array of 1 to 1000 agent ids")),
    };
    let ids = ids
        .iter()
        .map(|v| v.as_str().ok_or_else(|| ApiError::bad("every id must be a string")).and_then(parse_id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::new();
    for id in &ids {
        let result = match lifecycle(app, id, action, &body) {
            Ok(v) => json!({"id": id, "ok": true, "status": 200, "result": v}),
            Err(e) => json!({"id": id, "ok": false, "status": e.status, "error": e.kind(), "detail": e.detail}),
        };
        results.push(result);
    }
    Ok(Reply::json(200, &json!({"action": action, "results": results})))
}

/// `DELETE /api/agents`: the lifecycle's gc (`af-spawn gc`) (mark dead agents, remove stray sessions and leftovers).
pub fn cleanup(app: &App, _req: &Req) -> Answer {
    let report = ops::gc(&Lifecycle::of(app.spool.clone()), false)?;
    Ok(Reply::json(200, &json!({"cleanup": report})))
}
