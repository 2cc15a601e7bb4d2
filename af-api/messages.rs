//! `/api/agents/{id}/messages`, through af-bus: GET the history, POST send, PUT receive the next
//! one, PATCH ack or nack, DELETE clear the queue.

use crate::agent::existing;
use crate::http::{Answer, ApiError, Reply, Req};
use crate::routes::App;
use crate::run;
use serde_json::{Value, json};

const PRIORITIES: [&str; 4] = ["critical", "high", "normal", "low"];
const KINDS: [&str; 5] = ["request", "response", "event", "broadcast", "task"];

/// `GET`: `af-bus history ID --json`.
pub fn history(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let out = run::program("af-bus", &["history", id.as_str(), "--json"], None)?;
    Ok(Reply::json(200, &json!({"id": id, "messages": list(out.json())})))
}

fn list(v: Value) -> Value {
    match v {
        Value::Null => json!([]),
        other => other,
    }
}

/// `POST`: `{"payload": any, "priority"?, "kind"?}` → `af-bus send --to ID`.
pub fn send(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let body = req.object()?;
    let payload = body.get("payload").ok_or_else(|| ApiError::bad("\"payload\" is required"))?;
    let mut args = vec!["send".to_owned(), "--to".into(), id.to_string()];
    if let Some(p) = body.get("priority") {
        let p = p
            .as_str()
            .filter(|p| PRIORITIES.contains(p))
            .ok_or_else(|| ApiError::bad(format!("\"priority\" must be one of {}", PRIORITIES.join(", "))))?;
        args.extend(["--priority".into(), p.into()]);
    }
    if let Some(k) = body.get("kind") {
        let k = k
            .as_str()
            .filter(|k| KINDS.contains(k))
            .ok_or_else(|| ApiError::bad(format!("\"kind\" must be one of {}", KINDS.join(", "))))?;
        args.extend(["--kind".into(), k.into()]);
    }
    args.extend(["--json".into(), "-".into()]);
    let data = serde_json::to_vec(payload).unwrap_or_default();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let sent = run::change("af-bus", &refs, Some(&data))?;
    Ok(Reply::json(201, &json!({"id": id, "sent": sent})))
}

/// `PUT`: claim the next message (`af-bus recv ID --json`; unless acked within 30 s it goes back
/// to the queue); `{"message": null}` when there is none.
pub fn receive(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let out = run::program("af-bus", &["recv", id.as_str(), "--json"], None)?;
    let message = if out.code == 1 { Value::Null } else { out.json() };
    Ok(Reply::json(200, &json!({"id": id, "message": message})))
}

/// `PATCH`: `{"action": "ack" | "nack", "messageId": "…"}`.
pub fn settle(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let body = req.object()?;
    let action = body.get("action").and_then(Value::as_str).filter(|a| *a == "ack" || *a == "nack");
    let action = action.ok_or_else(|| ApiError::bad("\"action\" must be \"ack\" or \"nack\""))?;
    let msg = body
        .get("messageId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("\"messageId\" (a string) is required"))?;
    if msg.is_empty()
        || msg.len() > 200
        || msg.starts_with(['-', '.'])
        || msg.contains('/')
        || msg.chars().any(char::is_control)
    {
        return Err(ApiError::bad("\"messageId\" is not a message id"));
    }
    // af-bus judges the id itself (2 → 400), and a message not claimed from this queue is 404.
    run::change("af-bus", &[action, "--json", "--", id.as_str(), msg], None)?;
    Ok(Reply::json(200, &json!({"id": id, "action": action, "messageId": msg})))
}

/// `DELETE`: `af-bus clear ID`.
pub fn clear(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let result = run::change("af-bus", &["clear", id.as_str(), "--json"], None)?;
    Ok(Reply::json(200, &json!({"id": id, "cleared": result})))
}
