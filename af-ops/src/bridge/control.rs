//! Remote control: `af-spawn stop|start|restart|pause|resume ID@HOST`, `af-checkpoint
//! create|rollback ID@HOST` and `af-health ack ALERT@HOST` send a control request (a message to
//! `bridge:control@HOST`, answered on a reply queue of its own, with a deadline) and waits for its
//! typed answer; the bridge of HOST runs it through the lifecycle operations only when it runs
//! with `--allow-control`, else answers a refusal (conflict, exit 4). A request past its deadline
//! is never run late (its queue buries it as expired). Every request a bridge handles is written
//! to the event log (`control.remote`, with its origin host).

use super::Bridge;
use crate::bus::{Target, post};
use crate::lifecycle::{self, Lifecycle};
use af_spool::bus::{Address, CONTROL, ReplyQueue};
use af_spool::eventlog;
use af_spool::message::{Kind, Message, Priority};
use af_spool::queue::RESCAN;
use af_spool::record::Event;
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Result, Spool};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The verbs that travel.
pub const VERBS: [&str; 8] =
    ["stop", "start", "restart", "pause", "resume", "checkpoint.create", "checkpoint.rollback", "health.ack"];

/// A control request's payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// One of [`VERBS`].
    pub verb: String,
    /// The agent, on the receiving host (health.ack: the alert's id).
    pub agent: String,
    /// The host that asked.
    pub origin: String,
    /// stop: SIGKILL at once.
    #[serde(default)]
    pub force: bool,
    /// stop and restart: how long between SIGTERM and SIGKILL (ms).
    #[serde(default)]
    pub grace_ms: Option<u64>,
    /// checkpoint.create: the checkpoint's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// checkpoint.rollback: the checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// checkpoint.rollback: leave the agent stopped afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_restart: bool,
    /// checkpoint.rollback: also set the git index to the checkpoint's tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_index: bool,
}

impl Request {
    /// A request of `verb` on `agent` (or alert) from this host, with every option at its default.
    pub fn new(verb: &str, agent: &str, origin: &str) -> Request {
        Request {
            verb: verb.to_owned(),
            agent: agent.to_owned(),
            origin: origin.to_owned(),
            force: false,
            grace_ms: None,
            description: None,
            checkpoint: None,
            no_restart: false,
            reset_index: false,
        }
    }
}

/// The host an argument of the form `ID@HOST` names, when it is not this host: `Some((ID, HOST))`;
/// `None` for a bare id or one naming this host (whose `@HOST` the caller drops).
pub fn far(arg: &str) -> Result<Option<(String, String)>> {
    match af_spool::host::split_host(arg)? {
        (id, Some(host)) if host != af_spool::host::own_host()? => Ok(Some((id.to_owned(), host.to_owned()))),
        _ => Ok(None),
    }
}

/// This host's part of an argument: the argument without an `@HOST` naming this host.
pub fn local(arg: &str) -> Result<&str> {
    Ok(af_spool::host::split_host(arg)?.0)
}

/// Sends `request` to `host`'s bridge and waits up to `timeout` for the answer; the request
/// expires then, so it is never run later. Returns what the lifecycle operation reported there,
/// or its error as that host had it (same kind, so the same exit code); Timeout without answer.
pub fn remote(spool: &Spool, host: &str, request: &Request, timeout: Duration) -> Result<Value> {
    if !VERBS.contains(&request.verb.as_str()) {
        return Err(Error::Invalid(format!("'{}' is no remote verb (use {})", request.verb, VERBS.join(", "))));
    }
    let payload = serde_json::to_value(request).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut m = Message::new(&format!("af-spawn@{}", request.origin), Kind::Request, Priority::High, payload);
    let replies = ReplyQueue::create(spool, &m.id)?;
    let mut listener = replies.queue.listen()?;
    m.to = Some(format!("{CONTROL}@{host}"));
    m.correlation_id = Some(m.id.clone());
    m.reply_to = Some(format!("{}@{}", replies.address, request.origin));
    m.expires_at = Some(Timestamp(Timestamp::now().0 + timeout.as_millis() as u64));
    let target = Address::Remote { queue: CONTROL.to_owned(), host: host.to_owned() };
    let (sent, _) = post(spool, m, &Target::Queue(target), true)?;
    let deadline = Instant::now() + timeout;
    loop {
        for c in replies.queue.claim(16, Duration::from_secs(3600))? {
            if c.message.correlation_id.as_deref() == Some(sent.id.as_str()) {
                return answer_of(&c.message.payload, host);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(format!(
                "no answer from host {host} within {timeout:?} (is its af-bus bridge running, and this host's?); \
                 the request expired there and will not run"
            )));
        }
        listener.wait(left.min(RESCAN))?;
    }
}

/// The result in an answer, or its error as an Error of the same kind.
fn answer_of(payload: &Value, host: &str) -> Result<Value> {
    if payload["ok"] == true {
        return Ok(payload["result"].clone());
    }
    let message = format!("{host}: {}", payload["error"]["message"].as_str().unwrap_or("the remote command failed"));
    Err(match payload["error"]["error"].as_str() {
        Some("invalid") => Error::Invalid(message),
        Some("not-found") => Error::NotFound(message),
        Some("conflict") => Error::Conflict(message),
        Some("timeout") => Error::Timeout(message),
        Some("agent-failed") => Error::Failed(message),
        _ => Error::System(message),
    })
}

/// Runs the control requests that come in until `stop` is set.
pub(crate) fn serve(b: &Bridge, stop: &AtomicBool) -> Result<()> {
    let queue = Address::Control.queue(&b.spool);
    queue.create()?;
    let mut listener = queue.listen()?;
    while !stop.load(Ordering::SeqCst) {
        let claims = queue.claim(1, Duration::from_secs(600))?;
        let Some(claim) = claims.into_iter().next() else {
            listener.wait(RESCAN)?;
            continue;
        };
        let answer = handle(b, &claim.message);
        if let Some(reply_to) = claim.message.reply_to.as_deref() {
            let m = claim.message.response(&format!("af-bus@{}", b.host), answer);
            match Address::resolve(&b.spool, reply_to) {
                Ok(a) => {
                    if let Err(e) = post(&b.spool, m, &Target::Queue(a), b.durable) {
                        tracing::warn!(error = %e, reply_to, "a control answer could not be sent");
                    }
                }
                Err(e) => tracing::warn!(error = %e, reply_to, "a control request with a bad reply-to"),
            }
        }
        queue.ack_receipt(&claim.receipt)?;
    }
    Ok(())
}

/// Runs one request (when allowed) and writes it to the event log: the answer's payload,
/// `{"ok": true, "result": …}` or `{"ok": false, "exitCode": N, "error": {"error": KIND, "message": …}}`.
fn handle(b: &Bridge, m: &Message) -> Value {
    let request: std::result::Result<Request, _> = serde_json::from_value(m.payload.clone());
    let outcome = match &request {
        Err(e) => Err(Error::Invalid(format!("not a control request: {e}"))),
        Ok(_) if !b.allow_control => Err(Error::Conflict(format!(
            "host {} refuses remote control: its af-bus bridge runs without --allow-control",
            b.host
        ))),
        Ok(r) => run(b, r),
    };
    let origin = request.as_ref().map(|r| r.origin.clone()).unwrap_or_else(|_| m.from.clone());
    let (verb, agent) = request.as_ref().map(|r| (r.verb.clone(), r.agent.clone())).unwrap_or_default();
    let id = if verb == "health.ack" { None } else { AgentId::new(&agent).ok() };
    let answer = match outcome {
        Ok(result) => json!({"ok": true, "exitCode": 0, "result": result}),
        Err(e) => {
            json!({"ok": false, "exitCode": e.exit_code() as i32, "error": {"error": e.kind(), "message": e.to_string()}})
        }
    };
    tracing::info!(verb, agent, origin, ok = answer["ok"].as_bool(), "remote control request");
    eventlog::record(
        &b.spool,
        Event::new(
            "control.remote",
            id.as_ref(),
            json!({"verb": verb, "agent": agent, "origin": origin, "request": m.id, "answer": answer}),
        ),
    );
    answer
}

fn run(b: &Bridge, r: &Request) -> Result<Value> {
    if r.verb == "health.ack" {
        let a = crate::health::ack(&b.spool, &r.agent)?;
        return serde_json::to_value(&a).map_err(|e| Error::System(e.to_string()));
    }
    let id = AgentId::new(&r.agent)?;
    let ctx = Lifecycle::of(b.spool.clone());
    let grace = r.grace_ms.map_or(lifecycle::DEFAULT_GRACE, Duration::from_millis);
    match r.verb.as_str() {
        "stop" => Ok(lifecycle::stopped_report(&id, &lifecycle::stop_one(&ctx, &id, r.force, grace)?)),
        "start" => Ok(lifecycle::started_report(
            &id,
            &lifecycle::start_one(&ctx, &id, true, lifecycle::DEFAULT_START_TIMEOUT, false)?,
        )),
        "restart" => Ok(lifecycle::started_report(&id, &lifecycle::restart(&ctx, &id, grace)?)),
        "pause" | "resume" => {
            let status = lifecycle::pause(&ctx, &id, r.verb == "pause")?;
            Ok(json!({"id": id, "status": status}))
        }
        "checkpoint.create" => {
            let c = crate::checkpoint::create(&b.spool, &id, r.description.as_deref().unwrap_or(""))?;
            serde_json::to_value(&c).map_err(|e| Error::System(e.to_string()))
        }
        "checkpoint.rollback" => {
            let Some(ckpt) = r.checkpoint.as_deref() else {
                return Err(Error::Invalid("a remote rollback names its checkpoint".into()));
            };
            let done = crate::rollback::rollback(&ctx, &id, ckpt, !r.no_restart, r.reset_index)?;
            serde_json::to_value(&done).map_err(|e| Error::System(e.to_string()))
        }
        other => Err(Error::Invalid(format!("'{other}' is no remote verb (use {})", VERBS.join(", ")))),
    }
}
