//! The cockpit's endpoints, each a thin call of an af-ops operation: an agent's output (its tail,
//! and live as Server-Sent Events), its conversation, its checkpoints (list, diff, create,
//! rollback), tasks and requests sent with their answers awaited apart, and the bus's message
//! flow.

use crate::agent::{existing, lifecycle};
use crate::http::{Answer, ApiError, Reply, Req};
use crate::routes::App;
use af_spool::bus::{Address, ReplyQueue};
use af_spool::message::{Kind, Message, Priority};
use af_spool::{AgentId, id::validate_name};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most lines `output` answers.
pub const MAX_LINES: usize = 10_000;
/// The default size cap of a checkpoint's diff, and the largest one may ask for.
pub const DIFF_CAP: usize = 256 << 10;
const DIFF_MAX: usize = 4 << 20;

fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    req: &Req,
    name: &str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ApiError> {
    match req.param(name) {
        None => Ok(default),
        Some(s) => s
            .parse::<T>()
            .ok()
            .filter(|n| *n >= min && *n <= max)
            .ok_or_else(|| ApiError::bad(format!("{name} must be a whole number from {min} to {max}"))),
    }
}

/// `GET /api/agents/{id}/output?lines=N`: the last N lines (default 100) of what the agent printed,
/// ANSI sequences kept, and the place after them (where the stream goes on).
pub fn output(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let lines = number(req, "lines", 100usize, 0, MAX_LINES)?;
    let chunk = af_ops::output::last_lines(&app.spool, &id, lines)?;
    let text = String::from_utf8_lossy(&chunk.bytes);
    Ok(Reply::json(200, &json!({"id": id, "text": text, "offset": chunk.offset})))
}

/// How often an output stream looks at the log (tmux appends to it; nothing wakes us).
const OUTPUT_POLL: Duration = Duration::from_millis(50);

/// `GET /api/agents/{id}/output/stream`: the output as Server-Sent Events, each event a chunk
/// `{"text", "restarted"}` with its end in the log as its id; `Last-Event-ID` (or `?since=`)
/// resumes after it, else `?lines=N` (default 0) of the past come first.
pub fn output_stream(app: Arc<App>, rq: tiny_http::Request, id: &str, req: &Req) {
    let begin = || -> Result<(AgentId, Option<u64>, usize), ApiError> {
        let id = existing(&app, id)?;
        let resume = crate::events::last_event_id(&rq).or_else(|| req.param("since").map(str::to_owned));
        let since = match resume {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                ApiError::bad("since (or Last-Event-ID) must be an event id of this stream: a place in the log")
            })?),
        };
        Ok((id, since, number(req, "lines", 0usize, 0, MAX_LINES)?))
    };
    let (id, since, lines) = match begin() {
        Ok(b) => b,
        Err(e) => return crate::events::reject(rq, e),
    };
    let Some(slot) = crate::events::Slot::take(&app) else { return crate::events::reject(rq, crate::events::busy()) };
    std::thread::spawn(move || {
        let _slot = slot;
        let _ = follow(&app, rq, &id, since, lines);
    });
}

fn follow(app: &App, rq: tiny_http::Request, id: &AgentId, since: Option<u64>, lines: usize) -> std::io::Result<()> {
    let path = app.spool.output_log_path(id);
    let mut offset = match since {
        Some(o) => o,
        None => match af_ops::output::last_lines(&app.spool, id, lines) {
            Ok(c) => c.offset - c.bytes.len() as u64,
            Err(e) => {
                crate::events::reject(rq, e.into());
                return Ok(());
            }
        },
    };
    let mut out = crate::events::open_stream(rq)?;
    let mut quiet = Instant::now();
    loop {
        let chunk = af_ops::output::read_after(&path, offset).map_err(std::io::Error::other)?;
        offset = chunk.offset;
        if !chunk.bytes.is_empty() || chunk.restarted {
            let data = json!({"text": String::from_utf8_lossy(&chunk.bytes), "restarted": chunk.restarted});
            out.write_all(format!("id: {offset}\ndata: {data}\n\n").as_bytes())?;
            out.flush()?;
            quiet = Instant::now();
            continue;
        }
        if quiet.elapsed() > Duration::from_secs(15) {
            out.write_all(b": keep-alive\n\n")?;
            out.flush()?;
            quiet = Instant::now();
        }
        std::thread::sleep(OUTPUT_POLL);
    }
}

/// `GET /api/agents/{id}/conversation?after=CURSOR&limit=N`: the agent CLI's transcript as
/// messages, with what it has spent and its budget (400 for agents that run no agent CLI).
pub fn conversation(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let after = number(req, "after", 0u64, 0, u64::MAX)?;
    let limit = number(req, "limit", 100usize, 1, af_ops::conversation::MAX_LIMIT)?;
    let page = af_ops::conversation::page(&app.spool, &id, after, limit)?;
    Ok(Reply::json(200, &json!(page)))
}

/// `GET /api/agents/{id}/checkpoints`: the list, oldest first (`af-checkpoint ls`).
pub fn checkpoints(app: &App, id: &str) -> Answer {
    let id = existing(app, id)?;
    let list = af_ops::checkpoint::list(&app.spool, &id)?;
    Ok(Reply::json(200, &json!({"id": id, "checkpoints": list})))
}

/// `POST /api/agents/{id}/checkpoints`: `{"description"?}`, a checkpoint now (`af-checkpoint create`).
pub fn checkpoint_create(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let body = match req.json()? {
        None => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::bad("the body must be a JSON object")),
    };
    let made = lifecycle(app, &id, "checkpoint", &body)?;
    Ok(Reply::json(201, &json!({"id": id, "checkpoint": made})))
}

fn checkpoint_id(ckpt: &str) -> Result<&str, ApiError> {
    validate_name("checkpoint id", ckpt)?;
    Ok(ckpt)
}

/// `GET /api/agents/{id}/checkpoints/{ckpt}/diff?maxBytes=N`: what changed since the checkpoint,
/// the files (`status`, `path`) and the unified diff, cut at N bytes (default 256 KiB).
pub fn checkpoint_diff(app: &App, id: &str, ckpt: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let ckpt = checkpoint_id(ckpt)?;
    let cap = number(req, "maxBytes", DIFF_CAP, 1, DIFF_MAX)?;
    let files: Vec<Value> = af_ops::checkpoint::diff(&app.spool, &id, ckpt, false)?
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(s, p)| json!({"status": s, "path": p}))
        .collect();
    let mut diff = af_ops::checkpoint::diff(&app.spool, &id, ckpt, true)?;
    let bytes = diff.len();
    let truncated = bytes > cap;
    if truncated {
        let mut end = cap;
        while !diff.is_char_boundary(end) {
            end -= 1;
        }
        diff.truncate(end);
    }
    Ok(Reply::json(
        200,
        &json!({"id": id, "checkpoint": ckpt, "files": files, "diff": diff, "bytes": bytes, "truncated": truncated}),
    ))
}

/// `POST /api/agents/{id}/checkpoints/{ckpt}/rollback`: back to the checkpoint (`af-checkpoint
/// rollback`: restarts the agent if it ran).
pub fn checkpoint_rollback(app: &App, id: &str, ckpt: &str) -> Answer {
    let id = existing(app, id)?;
    let ckpt = checkpoint_id(ckpt)?;
    let mut body = serde_json::Map::new();
    body.insert("checkpointId".into(), json!(ckpt));
    let done = lifecycle(app, &id, "rollback", &body)?;
    Ok(Reply::json(200, &json!({"id": id, "checkpoint": ckpt, "rolledBack": done})))
}

/// `GET /api/flow?window=SECONDS` (default 60): the bus's message flow over the window.
pub fn flow(app: &App, req: &Req) -> Answer {
    let window = number(req, "window", 60u64, 1, af_ops::flow::MAX_WINDOW.as_secs())?;
    Ok(Reply::json(200, &json!(af_ops::flow::flow(&app.spool, Duration::from_secs(window))?)))
}

/// The most requests awaiting their answer at once.
pub const MAX_PENDING: usize = 256;
/// The longest a request may wait for its answer.
pub const MAX_WAIT_SECS: u64 = 3600;

/// A request sent from af-api and the reply queue its answer comes to.
struct Waiting {
    agent: AgentId,
    replies: ReplyQueue,
    deadline: Instant,
    answer: Option<Message>,
}

/// Requests sent through `POST /api/agents/{id}/requests`, until their answer is read or their
/// time is up (their reply queue goes with them).
#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, Waiting>>);

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `POST /api/agents/{id}/requests`: `{"payload", "kind"?: "task"|"request", "priority"?,
/// "timeoutSecs"?}`, sent with a reply queue (as `af-bus request`) whose answer
/// `GET /api/agents/{id}/requests/{requestId}` reads; a task's `timeoutSecs` also goes into its
/// payload's `timeout` when the payload is an object without one.
pub fn request_send(app: &App, id: &str, req: &Req) -> Answer {
    let id = existing(app, id)?;
    let body = req.object()?;
    let mut payload = body.get("payload").cloned().ok_or_else(|| ApiError::bad("\"payload\" is required"))?;
    let kind = match body.get("kind").map(|k| k.as_str()) {
        None | Some(Some("task")) => Kind::Task,
        Some(Some("request")) => Kind::Request,
        _ => return Err(ApiError::bad("\"kind\" must be \"task\" or \"request\"")),
    };
    let priority = match body.get("priority") {
        None => Priority::Normal,
        Some(Value::String(p)) if ["critical", "high", "normal", "low"].contains(&p.as_str()) => Priority::parse(p)?,
        Some(_) => return Err(ApiError::bad("\"priority\" must be one of critical, high, normal, low")),
    };
    let wait = match body.get("timeoutSecs") {
        None => 300,
        Some(v) => v.as_u64().filter(|s| (1..=MAX_WAIT_SECS).contains(s)).ok_or_else(|| {
            ApiError::bad(format!("\"timeoutSecs\" must be a whole number from 1 to {MAX_WAIT_SECS}"))
        })?,
    };
    if kind == Kind::Task {
        if let Value::Object(m) = &mut payload {
            m.entry("timeout").or_insert(json!(wait * 1000));
        }
    }
    if serde_json::to_vec(&payload).unwrap_or_default().len() > af_spool::message::max_bytes() {
        return Err(ApiError::new(413, "the payload is over the bus's message limit (AF_BUS_MAX_BYTES)"));
    }
    let mut pending = app.pending.lock();
    pending.retain(|_, w| w.deadline > Instant::now());
    if pending.len() >= MAX_PENDING {
        return Err(ApiError::new(429, format!("at most {MAX_PENDING} requests await their answer at once"))
            .with("Retry-After", "5".into()));
    }
    let mut m = Message::new(crate::messages::SENDER, kind, priority, payload);
    let replies = ReplyQueue::create(&app.spool, &m.id)?;
    let to = Address::Inbox(id.clone());
    m.to = Some(to.to_string());
    m.correlation_id = Some(m.id.clone());
    m.reply_to = Some(replies.address.to_string());
    let (sent, _) = af_ops::bus::post(&app.spool, m, &af_ops::bus::Target::Queue(to), true)?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    pending.insert(sent.id.clone(), Waiting { agent: id.clone(), replies, deadline, answer: None });
    Ok(Reply::json(201, &json!({"id": id, "request": sent.id, "sent": sent})))
}

/// `GET /api/agents/{id}/requests/{requestId}`: `{"state": "waiting"|"answered", "answer"}`;
/// 404 once its time is up (or for a request af-api did not send).
pub fn request_answer(app: &App, id: &str, request: &str) -> Answer {
    let id = existing(app, id)?;
    let mut pending = app.pending.lock();
    pending.retain(|_, w| w.deadline > Instant::now());
    let w = pending.get_mut(request).filter(|w| w.agent == id).ok_or_else(|| {
        ApiError::not_found(format!("no request {request} of {id} awaits an answer (or its time is up)"))
    })?;
    if w.answer.is_none() {
        for c in w.replies.queue.claim(16, Duration::from_secs(3600))? {
            if c.message.correlation_id.as_deref() == Some(request) {
                let _ = w.replies.queue.ack_receipt(&c.receipt);
                w.answer = Some(c.message);
            }
        }
    }
    let answer = w.answer.clone();
    let left = w.deadline.saturating_duration_since(Instant::now()).as_secs();
    let state = if answer.is_some() { "answered" } else { "waiting" };
    Ok(Reply::json(200, &json!({"id": id, "request": request, "state": state, "answer": answer, "secondsLeft": left})))
}

/// `POST /api/agents/{id}/interrupt`: interrupts a claude-code agent's running turn (as `af-bus
/// interrupt`; its task is answered `interrupted`): `{"interrupted": false, "reason"}` when no
/// turn runs, 409 for an agent that runs no agent CLI or has no af-wrap.
pub fn interrupt(app: &App, id: &str) -> Answer {
    use af_spool::control::{Request, ask};
    let id = existing(app, id)?;
    let reply = ask(&app.spool, &id, Request::Interrupt, Duration::from_secs(5))?;
    let why = reply.error.unwrap_or_default();
    if !reply.ok && why.starts_with("only claude-code") {
        return Err(ApiError::new(409, format!("agent '{id}': {why}")));
    }
    let reason = (!reply.ok).then_some(why);
    Ok(Reply::json(200, &json!({"id": id, "interrupted": reply.ok, "reason": reason, "status": reply.status})))
}
