//! `/api/agents/{id}` and `/api/agents/{id}/status`: one agent's records, its lifecycle
//! operations (PATCH `{"action": …}`), replacing its config, removing it.

use crate::http::{Answer, ApiError, Reply, Req};
use crate::routes::App;
use af_ops::lifecycle::{self as ops, DEFAULT_GRACE, DEFAULT_START_TIMEOUT, Lifecycle};
use af_spool::record::AgentConfig;
use af_spool::{AgentId, id::validate_name};
use serde_json::{Map, Value, json};

/// Validates an agent id from a path or a body (400 when it is not one).
pub fn parse_id(s: &str) -> Result<AgentId, ApiError> {
    Ok(AgentId::new(s)?)
}

/// Validates an id and checks that the agent exists (404 when not).
pub fn existing(app: &App, s: &str) -> Result<AgentId, ApiError> {
    let id = parse_id(s)?;
    app.spool.require(&id)?;
    Ok(id)
}

/// `GET /api/agents/{id}`: config, state (with the true status), last heartbeat.
pub fn get(app: &App, id: &str) -> Answer {
    let id = parse_id(id)?;
    let obs = app.spool.observe(&id)?;
    let beat = app.spool.read_heartbeat(&id).unwrap_or(None);
    let mut state = serde_json::to_value(&obs.state).unwrap_or(Value::Null);
    state["status"] = json!(obs.status());
    state["reason"] = json!(obs.reason());
    Ok(Reply::json(
        200,
        &json!({"id": id, "config": obs.config.masked(), "state": state, "heartbeat": beat, "supervisorAlive": obs.supervisor_alive}),
    ))
}

/// `PUT /api/agents/{id}`: replaces the config of an agent that does not run (`af-spawn rm`, then
/// `af-spawn create` with the new config, checked first so a bad one changes nothing).
pub fn put(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let mut body = req.object()?;
    match body.get("id") {
        None => {
            body.insert("id".into(), json!(id));
        }
        Some(v) if v == id.as_str() => {}
        Some(_) => return Err(ApiError::bad("the body's \"id\" differs from the path's")),
    }
    let text = serde_json::to_vec(&body).unwrap_or_default();
    AgentConfig::from_json(&text)?;
    if let Some(dir) = body.get("workdir").and_then(Value::as_str) {
        if !std::path::Path::new(dir).is_dir() {
            return Err(ApiError::bad(format!("workdir {dir} is not a directory")));
        }
    }
    let obs = app.spool.observe(&id)?;
    if obs.status().is_live() {
        return Err(ApiError::new(
            409,
            format!("agent '{id}' is {}; stop it before replacing its config", obs.status().as_str()),
        ));
    }
    let configs = ops::parse_configs(&text)?;
    let ctx = Lifecycle::of(app.spool.clone());
    ops::rm(&ctx, std::slice::from_ref(&id), false)?;
    ops::create(&ctx, configs, &mut || {})?;
    get(app, id.as_str())
}

/// `DELETE /api/agents/{id}[?force=true]`: the lifecycle's rm, as `af-spawn rm [--force]`.
pub fn delete(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let force = flag(req.param("force"), "force")?;
    ops::rm(&Lifecycle::of(app.spool.clone()), std::slice::from_ref(&id), force)?;
    Ok(Reply::json(200, &json!({"removed": id})))
}

/// `PATCH /api/agents/{id}`: `{"action": "start" | "stop" (with "graceful") | "pause" | "resume" |
/// "restart" | "checkpoint" (with "description") | "rollback" (with "checkpointId")}`.
pub fn patch(app: &App, id: &str, req: &Req) -> Answer {
    let id = parse_id(id)?;
    let body = req.object()?;
    let action =
        body.get("action").and_then(Value::as_str).ok_or_else(|| ApiError::bad("\"action\" (a string) is required"))?;
    let result = lifecycle(app, &id, action, &body)?;
    Ok(Reply::json(200, &json!({"id": id, "action": action, "status": current_status(app, &id), "result": result})))
}

fn current_status(app: &App, id: &AgentId) -> Value {
    app.spool.observe(id).map(|o| json!(o.status())).unwrap_or(Value::Null)
}

/// Carries out one lifecycle action through the same operations the programs call.
pub fn lifecycle(app: &App, id: &AgentId, action: &str, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let known = ["start", "stop", "pause", "resume", "restart", "checkpoint", "rollback", "remove"];
    if !known.contains(&action) {
        return Err(ApiError::bad(format!("unknown action '{action}': one of {}", known.join(", "))));
    }
    let graceful = match body.get("graceful") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad("\"graceful\" must be true or false")),
    };
    app.spool.require(id)?;
    let ctx = Lifecycle::of(app.spool.clone());
    let one = std::slice::from_ref(id);
    let done = match action {
        "start" => {
            let started = ops::start_many(&ctx, one, true, DEFAULT_START_TIMEOUT, &mut || {})?;
            json!(started.iter().map(|(id, obs)| ops::started_report(id, obs)).collect::<Vec<_>>())
        }
        "stop" => json!([ops::stopped_report(id, &ops::stop(&ctx, id, !graceful, DEFAULT_GRACE)?)]),
        "pause" | "resume" => json!({"id": id, "status": ops::pause(&ctx, id, action == "pause")?}),
        "restart" => json!([ops::started_report(id, &ops::restart(&ctx, id, DEFAULT_GRACE)?)]),
        "remove" => {
            ops::rm(&ctx, one, true)?;
            json!(one)
        }
        "checkpoint" => {
            let desc = match body.get("description") {
                None | Some(Value::Null) => "checkpoint from af-api",
                Some(Value::String(s)) if s.len() <= 1000 && !s.chars().any(char::is_control) => s,
                Some(_) => {
                    return Err(ApiError::bad("\"description\" must be a string of up to 1000 printable characters"));
                }
            };
            json!(af_ops::checkpoint::create(&app.spool, id, desc)?)
        }
        "rollback" => {
            let ckpt = body
                .get("checkpointId")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad("\"checkpointId\" (a string) is required"))?;
            validate_name("checkpoint id", ckpt)?;
            json!(af_ops::rollback::rollback(&ctx, id, ckpt, true, false)?)
        }
        other => return Err(ApiError::bad(format!("unknown action '{other}'"))),
    };
    Ok(done)
}

/// Reads a boolean query flag.
pub fn flag(value: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad(format!("{name} must be true or false, not '{other}'"))),
    }
}

/// `GET /api/agents/{id}/status`: status, health, reason, heartbeat.
pub fn status_get(app: &App, id: &str) -> Answer {
    let id = parse_id(id)?;
    let obs = app.spool.observe(&id)?;
    let beat = app.spool.read_heartbeat(&id).unwrap_or(None);
    Ok(Reply::json(
        200,
        &json!({
            "id": id, "status": obs.status(), "health": af_ops::health::live::health(&app.spool, &obs), "reason": obs.reason(),
            "supervisorAlive": obs.supervisor_alive, "pid": obs.state.pid, "heartbeat": beat,
        }),
    ))
}

/// `POST /api/agents/{id}/status`: a health check of this agent now (`af-health check ID
/// `), answered with its report (checks, health, CPU, memory, new alerts).
pub fn status_post(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let outcome = check(app, Some(&id))?;
    let mine = outcome
        .reports
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::new(500, format!("the check of {id} did not report on '{id}'")))?;
    Ok(Reply::json(200, &json!({"id": id, "healthy": outcome.healthy(), "health": mine.health, "check": mine})))
}

/// One health pass (no recovery), over one agent or all, with af-health's default policy.
pub fn check(app: &App, id: Option<&AgentId>) -> Result<af_ops::health::Outcome, ApiError> {
    let scope = af_ops::health::Scope {
        ids: id.map(|i| vec![i.clone()]),
        project: None,
        patience: std::time::Duration::from_secs(2),
    };
    Ok(af_ops::health::run(&app.spool, &scope, &af_ops::health::Policy::default(), false)?)
}

/// `PUT /api/agents/{id}/status`: the status wanted, `{"status": "running" | "paused" |
/// "stopped"}`; does what it takes to get there (nothing when it is there already).
pub fn status_put(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let body = req.object()?;
    let want =
        body.get("status").and_then(Value::as_str).ok_or_else(|| ApiError::bad("\"status\" (a string) is required"))?;
    if !["running", "paused", "stopped"].contains(&want) {
        return Err(ApiError::bad(format!("status '{want}' cannot be asked for: running, paused or stopped")));
    }
    let now = app.spool.observe(&id)?.status();
    let action = match (now.as_str(), want) {
        (a, b) if a == b => None,
        ("paused", "running") => Some("resume"),
        (_, "running") => Some("start"),
        ("running", "paused") => Some("pause"),
        (_, "paused") => {
            return Err(ApiError::new(
                409,
                format!("agent '{id}' is {}; only a running agent can be paused", now.as_str()),
            ));
        }
        (s, "stopped") if s == "created" || s == "failed" => None,
        _ => Some("stop"),
    };
    if let Some(action) = action {
        lifecycle(app, &id, action, &body)?;
    }
    Ok(Reply::json(200, &json!({"id": id, "status": current_status(app, &id), "action": action})))
}

/// `GET /api/agents/{id}/health`: the agent's health history (`af-health history ID --json`),
/// which the dashboard's sparklines start from.
pub fn health(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let history = af_ops::health::history(&app.spool, &id, None, None)?;
    Ok(Reply::json(200, &json!({"id": id, "history": history})))
}
