//! `/api/orchestrator` (system status and metrics, system operations, configuration, orderly
//! shutdown of every agent) and `/api/alerts` (af-health's alerts, acknowledged from the
//! dashboard).

use crate::http::{Answer, ApiError, Reply, Req};
use crate::routes::App;
use af_ops::bus::Target;
use af_ops::lifecycle::{self as ops, Lifecycle};
use af_spool::id::validate_name;
use af_spool::message::{Kind, Message, Priority};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// `GET`: agents by status and health, the host's CPU, memory, load and disks (`crate::host`),
/// the API's own counters, and the bus's queue depths, in-flight, dead letters and ack rates
/// (`af-bus stats --json`: `{queues, subscriptions, totals}`, or `{error}` when af-bus failed).
pub fn status(app: &App) -> Answer {
    let rows = app.cache.rows(&app.spool)?;
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_health: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows.iter() {
        *by_status.entry(r["status"].as_str().unwrap_or("").to_owned()).or_default() += 1;
        *by_health.entry(r["health"].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    let bus = match af_ops::bus::stats(&app.spool) {
        Ok(doc) => doc,
        Err(e) => json!({"error": e.to_string()}),
    };
    let (rate, burst) = app.rate.settings();
    Ok(Reply::json(
        200,
        &json!({
            "agents": {"total": rows.len(), "byStatus": by_status, "byHealth": by_health},
            "system": app.host.figures(app.spool.root()),
            "api": {
                "startedAt": app.started,
                "requests": app.requests.load(Ordering::Relaxed),
                "rateLimited": app.limited.load(Ordering::Relaxed),
                "eventStreams": app.streams.load(Ordering::Relaxed),
                "config": {"rateLimit": rate, "burst": burst},
            },
            "bus": bus,
            "eventLogBytes": af_spool::eventlog::disk_bytes(&app.spool),
        }),
    ))
}

/// `POST`: `{"action": "gc"}` (af-spawn gc), `{"action": "check"}` (af-health check), or
/// `{"action": "broadcast", "payload": any}` (af-bus broadcast).
pub fn operate(app: &App, req: &Req) -> Answer {
    let body = req.object()?;
    let action =
        body.get("action").and_then(Value::as_str).ok_or_else(|| ApiError::bad("\"action\" (a string) is required"))?;
    let result = match action {
        "gc" => json!(ops::gc(&Lifecycle::of(app.spool.clone()), false)?),
        "check" => {
            let outcome = crate::agent::check(app, None)?;
            json!({"healthy": outcome.healthy(), "report": outcome.document()})
        }
        "broadcast" => {
            let payload = body.get("payload").ok_or_else(|| ApiError::bad("\"payload\" is required"))?;
            let mut m = Message::new(crate::messages::SENDER, Kind::Broadcast, Priority::Normal, payload.clone());
            m.to = Some("*".into());
            let (m, n) = af_ops::bus::post(&app.spool, m, &Target::Broadcast(None), true)?;
            json!({"id": m.id, "delivered": n})
        }
        other => return Err(ApiError::bad(format!("unknown action '{other}': gc, check or broadcast"))),
    };
    Ok(Reply::json(200, &json!({"action": action, "result": result})))
}

/// `PUT`: the API's configuration, `{"rateLimit": requests per second per client (0 = off),
/// "burst": bucket size}`; answers the configuration in force.
pub fn configure(app: &App, req: &Req) -> Answer {
    let body = req.object()?;
    let (mut rate, mut burst) = app.rate.settings();
    for key in body.keys() {
        if key != "rateLimit" && key != "burst" {
            return Err(ApiError::bad(format!("unknown setting '{key}': rateLimit or burst")));
        }
    }
    if let Some(v) = body.get("rateLimit") {
        rate = v
            .as_f64()
            .filter(|r| r.is_finite() && (0.0..=1e9).contains(r))
            .ok_or_else(|| ApiError::bad("\"rateLimit\" must be a number from 0 to 1e9"))?;
    }
    if let Some(v) = body.get("burst") {
        burst = v
            .as_u64()
            .filter(|b| (1..=1_000_000).contains(b))
            .ok_or_else(|| ApiError::bad("\"burst\" must be an integer from 1 to 1000000"))? as u32;
    }
    app.rate.set(rate, burst);
    Ok(Reply::json(200, &json!({"rateLimit": rate, "burst": burst})))
}

/// `DELETE`: stops every live agent, gracefully (`af-spawn stop`).
pub fn shutdown(app: &App) -> Answer {
    let mut live = Vec::new();
    for id in app.spool.agent_ids()? {
        if app.spool.observe(&id).is_ok_and(|o| o.status().is_live()) {
            live.push(id);
        }
    }
    if live.is_empty() {
        return Ok(Reply::json(200, &json!({"stopped": []})));
    }
    let ctx = Lifecycle::of(app.spool.clone());
    let mut stopped = Vec::new();
    for id in &live {
        stopped.push(ops::stopped_report(id, &ops::stop(&ctx, id, false, ops::DEFAULT_GRACE)?));
    }
    Ok(Reply::json(200, &json!({"stopped": stopped})))
}

/// `GET /api/alerts[?all=true]`: `af-health alerts --json [--all]`.
pub fn alerts(app: &App, req: &Req) -> Answer {
    let all = crate::agent::flag(req.param("all"), "all")?;
    let alerts = af_ops::health::alerts(&app.spool, all)?;
    Ok(Reply::json(200, &json!({"alerts": alerts})))
}

/// `POST /api/alerts/{id}/ack`: `af-health ack ALERT_ID --json`, answered with the alert as it
/// is now.
pub fn ack(app: &App, alert: &str) -> Answer {
    validate_name("alert id", alert)?;
    let acked = af_ops::health::ack(&app.spool, alert)?;
    Ok(Reply::json(200, &json!({"acknowledged": alert, "alert": acked})))
}
