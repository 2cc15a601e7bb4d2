//! `/api/agents/{id}/messages`, over the agent's inbox (the same queue operations as af-bus): GET
//! the history, POST send (through the middleware), PUT receive the next one, PATCH ack or nack,
//! DELETE clear the queue.

use crate::agent::existing;
use crate::http::{Answer, ApiError, Reply, Req};
use crate::routes::App;
use af_ops::bus::Target;
use af_spool::AgentId;
use af_spool::bus::Address;
use af_spool::message::{Kind, Message, Priority, validate_id};
use af_spool::queue::Queue;
use serde_json::{Value, json};
use std::time::Duration;

/// How many acked messages GET shows (as `af-bus history`).
const HISTORY: usize = 100;
/// How long a message received through PUT stays claimed unless acked (as `af-bus recv`).
const VISIBILITY: Duration = Duration::from_secs(30);

fn inbox(app: &App, id: &AgentId) -> Queue {
    Address::Inbox(id.clone()).queue(&app.spool)
}

const PRIORITIES: [&str; 4] = ["critical", "high", "normal", "low"];
const KINDS: [&str; 5] = ["request", "response", "event", "broadcast", "task"];

/// `GET`: the inbox's acked messages, oldest first (as `af-bus history ID`).
pub fn history(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let messages = inbox(app, &id).history(HISTORY)?;
    Ok(Reply::json(200, &json!({"id": id, "messages": messages})))
}

/// Who af-api's messages are from.
pub const SENDER: &str = "cli";

/// `POST`: `{"payload": any, "priority"?, "kind"?}`, sent as `af-bus send --to ID` would.
pub fn send(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let body = req.object()?;
    let payload = body.get("payload").ok_or_else(|| ApiError::bad("\"payload\" is required"))?;
    let mut priority = Priority::Normal;
    if let Some(p) = body.get("priority") {
        let p = p
            .as_str()
            .filter(|p| PRIORITIES.contains(p))
            .ok_or_else(|| ApiError::bad(format!("\"priority\" must be one of {}", PRIORITIES.join(", "))))?;
        priority = Priority::parse(p)?;
    }
    let mut kind = Kind::Event;
    if let Some(k) = body.get("kind") {
        let k = k
            .as_str()
            .filter(|k| KINDS.contains(k))
            .ok_or_else(|| ApiError::bad(format!("\"kind\" must be one of {}", KINDS.join(", "))))?;
        kind = Kind::parse(k)?;
    }
    let data = serde_json::to_vec(payload).unwrap_or_default();
    if data.len() > af_spool::message::max_bytes() {
        return Err(ApiError::new(413, "the payload is over the bus's message limit (AF_BUS_MAX_BYTES)"));
    }
    let mut m = Message::new(SENDER, kind, priority, payload.clone());
    let to = Address::Inbox(id.clone());
    m.to = Some(to.to_string());
    let (sent, _) = af_ops::bus::post(&app.spool, m, &Target::Queue(to), true)?;
    Ok(Reply::json(201, &json!({"id": id, "sent": sent})))
}

/// `PUT`: claim the next message (as `af-bus recv ID`; unless acked within 30 s it goes back to
/// the queue); `{"message": null}` when there is none.
pub fn receive(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let got = inbox(app, &id).receive(1, VISIBILITY, None)?;
    let message = got.into_iter().next().map_or(Value::Null, |c| json!(c.message));
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
    validate_id(msg)?;
    let q = inbox(app, &id);
    if action == "ack" {
        if !q.ack(&[msg])?.is_empty() {
            return Err(ApiError::not_found(format!("message {msg} is not claimed in {id}")));
        }
    } else {
        q.nack(msg, Duration::ZERO)?;
    }
    Ok(Reply::json(200, &json!({"id": id, "action": action, "messageId": msg})))
}

/// `DELETE`: empty the inbox (as `af-bus clear ID`).
pub fn clear(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let removed = inbox(app, &id).clear()?;
    let result = json!({"queue": id, "removed": removed});
    Ok(Reply::json(200, &json!({"id": id, "cleared": result})))
}
