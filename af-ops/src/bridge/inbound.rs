//! Inbound: this host's stream read through the consumer group, each entry checked (size,
//! schema, address), delivered exactly once into its local queue or, when bad, into the dead
//! letters of `bridge:in` with the reason; then XACKed and XDELed.

use super::{BATCH, BLOCK, Bridge, Failure, GROUP, HOSTS, stream_key};
use crate::bus::{Target, queues_of};
use af_spool::bridge::Delivery;
use af_spool::bus::Address;
use af_spool::host::split_host;
use af_spool::message::{Kind, Message, Priority, max_bytes, validate_id};
use af_spool::queue::Queue;
use redis::Value;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use std::sync::atomic::{AtomicBool, Ordering};

/// How much of a refused entry its dead letter keeps.
const KEEP_OF_BAD_ENTRY: usize = 4096;

/// Reads this host's stream until `stop` is set or Redis fails; first takes over the group's
/// pending entries.
pub(crate) fn pump(b: &Bridge, c: &mut redis::Connection, stop: &AtomicBool) -> Result<(), Failure> {
    let key = stream_key(&b.host);
    ensure_group(c, &key, &b.host)?;
    reclaim(b, c, &key)?;
    while !stop.load(Ordering::SeqCst) {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&b.host)
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query(c)?;
        let entries: Vec<StreamId> =
            reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect()).unwrap_or_default();
        if !entries.is_empty() {
            handle(b, c, &key, entries)?;
        }
    }
    Ok(())
}

/// Names this host among the cluster's, then makes its stream and group.
fn ensure_group(c: &mut redis::Connection, key: &str, host: &str) -> redis::RedisResult<()> {
    redis::cmd("SADD").arg(HOSTS).arg(host).query::<()>(c)?;
    create_group(c, key)
}

/// Makes the stream `key` and its group (reading from the stream's start) unless they exist.
pub(super) fn create_group(c: &mut redis::Connection, key: &str) -> redis::RedisResult<()> {
    let made: redis::RedisResult<()> =
        redis::cmd("XGROUP").arg("CREATE").arg(key).arg(GROUP).arg("0").arg("MKSTREAM").query(c);
    match made {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Takes over every pending entry of the group (read by a bridge that died before its XACK)
/// and handles it now.
fn reclaim(b: &Bridge, c: &mut redis::Connection, key: &str) -> Result<(), Failure> {
    let mut cursor = "0-0".to_owned();
    loop {
        let r: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(key)
            .arg(GROUP)
            .arg(&b.host)
            .arg(0)
            .arg(&cursor)
            .arg("COUNT")
            .arg(BATCH)
            .query(c)?;
        if !r.deleted_ids.is_empty() {
            redis::cmd("XACK").arg(key).arg(GROUP).arg(&r.deleted_ids).query::<()>(c)?;
        }
        if !r.claimed.is_empty() {
            tracing::info!(entries = r.claimed.len(), "taking over pending entries");
            handle(b, c, key, r.claimed)?;
        }
        if r.next_stream_id == "0-0" {
            return Ok(());
        }
        cursor = r.next_stream_id;
    }
}

/// Delivers a batch of entries (the bad ones to the dead letters), then acks and deletes them.
fn handle(b: &Bridge, c: &mut redis::Connection, key: &str, entries: Vec<StreamId>) -> Result<(), Failure> {
    deliver(b, c, key, entries, check)
}

/// Delivers a batch of entries of stream `key`, each where `check` says (the refused ones to the
/// dead letters), exactly once by message id; then acks and deletes them.
pub(super) fn deliver(
    b: &Bridge,
    c: &mut redis::Connection,
    key: &str,
    entries: Vec<StreamId>,
    check: impl Fn(&Bridge, &StreamId) -> Result<(Message, Vec<Queue>), Refusal>,
) -> Result<(), Failure> {
    let rejects = Address::Inbound.queue(&b.spool).durable(b.durable);
    let mut good = Vec::with_capacity(entries.len());
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let mut refused = 0;
    for e in &entries {
        match check(b, e) {
            Ok(arrival) => good.push(arrival),
            Err(bad) => {
                tracing::warn!(entry = %e.id, reason = bad.reason, detail = %bad.detail, "refused an entry from the network");
                let dead = bad.letter(e);
                // Our own record, whatever the size limit: what came is cut to KEEP_OF_BAD_ENTRY.
                let bytes = serde_json::to_vec(&dead).unwrap_or_default();
                rejects.deliver_dead(&dead, &bytes, bad.reason)?;
                refused += 1;
            }
        }
    }
    let outcomes = b.inbound()?.deliver_once(&good, b.durable)?;
    let duplicates = outcomes.iter().filter(|o| **o == Delivery::Duplicate).count();
    redis::pipe()
        .cmd("XACK")
        .arg(key)
        .arg(GROUP)
        .arg(&ids)
        .ignore()
        .cmd("XDEL")
        .arg(key)
        .arg(&ids)
        .ignore()
        .query::<()>(c)?;
    tracing::debug!(delivered = outcomes.len() - duplicates, duplicates, refused, "received");
    if duplicates > 0 {
        tracing::info!(duplicates, "entries seen before were not delivered again");
    }
    Ok(())
}

/// Why an entry was refused.
pub(super) struct Refusal {
    /// A word, the dead letter's reason: too-big, invalid, wrong-host, no-queue.
    reason: &'static str,
    detail: String,
    /// The message, when it parsed; else the entry's text.
    content: serde_json::Value,
    origin: String,
}

impl Refusal {
    /// A refusal of entry `e` (its origin as it says).
    pub(super) fn new(reason: &'static str, detail: String, content: serde_json::Value, e: &StreamId) -> Refusal {
        Refusal { reason, detail, content, origin: origin_of(e) }
    }

    /// The dead letter: named by the stream entry's id, holding what came and why it was refused.
    fn letter(&self, e: &StreamId) -> Message {
        let mut m = Message::new(&self.origin, Kind::Event, Priority::Normal, serde_json::Value::Null);
        if validate_id(&e.id).is_ok() {
            m.id = e.id.clone();
        }
        m.payload = serde_json::json!({
            "reason": self.detail, "streamEntry": e.id, "origin": self.origin, "entry": self.content,
        });
        m
    }
}

/// Where a topic event or broadcast mirrored from another host goes here; None for a message
/// to one queue.
fn mirrored(m: &Message) -> Option<Target> {
    if m.topic.is_some() {
        return Some(Target::Topic);
    }
    match (m.kind, m.to.as_deref()) {
        (Kind::Broadcast, Some("*")) => Some(Target::Broadcast(None)),
        (Kind::Broadcast, Some(to)) => to.strip_prefix("project:").map(|p| Target::Broadcast(Some(p.to_owned()))),
        _ => None,
    }
}

/// The host an entry says it comes from.
fn origin_of(e: &StreamId) -> String {
    match e.map.get("origin") {
        Some(Value::BulkString(o)) => String::from_utf8_lossy(o).chars().take(64).collect(),
        _ => "unknown".to_owned(),
    }
}

/// An entry's message, checked for size, form and id; with its content for a dead letter.
pub(super) fn parse(e: &StreamId) -> Result<(Message, serde_json::Value), Refusal> {
    let refuse = |reason, detail: String, content| Err(Refusal::new(reason, detail, content, e));
    let Some(Value::BulkString(raw)) = e.map.get("msg") else {
        return refuse("invalid", "the entry has no msg field".into(), serde_json::Value::Null);
    };
    let text = || serde_json::Value::String(String::from_utf8_lossy(&raw[..raw.len().min(KEEP_OF_BAD_ENTRY)]).into());
    if raw.len() > max_bytes() {
        return refuse(
            "too-big",
            format!("{} bytes, over the limit of {} (AF_BUS_MAX_BYTES)", raw.len(), max_bytes()),
            text(),
        );
    }
    let m: Message = match serde_json::from_slice(raw) {
        Ok(m) => m,
        Err(err) => return refuse("invalid", format!("not a message: {err}"), text()),
    };
    let content = serde_json::to_value(&m).unwrap_or_default();
    if let Err(err) = validate_id(&m.id) {
        return refuse("invalid", err.to_string(), content);
    }
    Ok((m, content))
}

/// An entry as a message for its local queues, or why not.
fn check(b: &Bridge, e: &StreamId) -> Result<(Message, Vec<Queue>), Refusal> {
    let (m, content) = parse(e)?;
    let refuse = |reason, detail: String, content| Err(Refusal::new(reason, detail, content, e));
    if let Some(target) = mirrored(&m) {
        // Never back to where it came from: a mirrored message names its origin, another host.
        if m.origin.as_deref().is_none_or(|o| o == b.host) {
            return refuse(
                "invalid",
                format!("a mirrored message must name its origin, another host than {}", b.host),
                content,
            );
        }
        return match queues_of(&b.spool, &m, &target, b.durable) {
            Ok(queues) => Ok((m, queues)),
            Err(err) => refuse("invalid", err.to_string(), content),
        };
    }
    let Some(to) = m.to.as_deref() else {
        return refuse("invalid", "the message names no queue (to)".into(), content);
    };
    let queue = match split_host(to) {
        Ok((queue, Some(host))) if host == b.host => queue,
        Ok(_) => return refuse("wrong-host", format!("'{to}' is not a queue of host {}", b.host), content),
        Err(err) => return refuse("invalid", err.to_string(), content),
    };
    let address = match Address::resolve_local(&b.spool, queue) {
        Ok(a @ (Address::Inbox(_) | Address::Pool(_) | Address::Sub(_) | Address::Reply(_) | Address::Control)) => a,
        Ok(_) => return refuse("invalid", format!("'{queue}' takes no messages from the network"), content),
        Err(af_spool::Error::NotFound(err)) => return refuse("no-queue", err, content),
        Err(err) => return refuse("invalid", err.to_string(), content),
    };
    let q = address.queue(&b.spool).durable(b.durable);
    if matches!(address, Address::Reply(_)) && !q.exists() {
        return refuse("no-queue", format!("requester {queue} is gone (it timed out or was stopped)"), content);
    }
    Ok((m, vec![q]))
}
