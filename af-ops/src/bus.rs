//! Posting messages: through the middleware (`bus.d/`, executables run in name order), then into
//! every queue of the target, durably and with the listeners woken.

use crate::process;
use af_spool::batch::Batch;
use af_spool::bus::{Address, subscriptions, topic_matches};
use af_spool::message::Message;
use af_spool::queue::Queue;
use af_spool::{Error, Result, Spool};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How long one middleware program may take for one message.
pub const MIDDLEWARE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a message goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// One queue.
    Queue(Address),
    /// Every agent's inbox, or every agent's of one project.
    Broadcast(Option<String>),
    /// Every subscription whose pattern matches the message's topic.
    Topic,
}

/// Passes a message through the middleware, then delivers it to its target's queues, all or
/// none of them. Returns the message as delivered and how many queues got it.
/// A topic event or a broadcast posted on a bridged spool also goes to the outbox, for the
/// bridge to mirror to every other host (its `origin` set to this host); not counted.
pub fn post(spool: &Spool, message: Message, target: &Target, durable: bool) -> Result<(Message, usize)> {
    let mut message = run_middleware(spool, message)?;
    let bridged = af_spool::bridge::bridged(spool);
    let mirror = mirror(spool, &mut message, target, durable, bridged)?;
    let bytes = message.encode()?;
    let queues = queues_in(spool, &message, target, durable, bridged)?;
    if let ([q], None) = (queues.as_slice(), &mirror) {
        q.deliver(&message, &bytes)?;
        return Ok((message, 1));
    }
    let mut batch = Batch::new(spool);
    for q in queues.iter().chain(&mirror) {
        batch.stage(q, &message, &bytes)?;
    }
    batch.publish()?;
    Ok((message, queues.len()))
}

/// The outbox, when `message` is to be mirrored to the other hosts: a topic event or a
/// broadcast, posted here (no origin, or this host's), on a bridged spool. Its origin is set.
fn mirror(
    spool: &Spool,
    message: &mut Message,
    target: &Target,
    durable: bool,
    bridged: bool,
) -> Result<Option<Queue>> {
    if matches!(target, Target::Queue(_)) || !bridged {
        return Ok(None);
    }
    let here = af_spool::host::own_host()?;
    if message.origin.as_ref().is_some_and(|o| *o != here) {
        return Ok(None);
    }
    message.origin = Some(here);
    Ok(Some(Address::Outbox.queue(spool).durable(durable)))
}

/// Posts many messages, all or nothing: every message passes the middleware and is written into
/// one batch (af-spool `batch`) before any is delivered; the batch is made durable at once (one
/// `syncfs`, group commit) and committed, then each message is renamed into its queue's `new/`,
/// each `new/` fsynced once and its listeners woken once. On a failure (a rejection, a full disk)
/// nothing is delivered and nothing is left staged, so the same batch can simply be sent again;
/// a sender killed after the commit leaves a batch the next look at a queue finishes.
pub fn post_many(spool: &Spool, batch: Vec<(Message, Target)>, durable: bool) -> Result<Vec<Message>> {
    let mut planned = Vec::with_capacity(batch.len());
    // Listed once for the batch (a file per message, with none there, was a failed open each);
    // and whether the spool is bridged is decided once, so that a batch sent while its bridge
    // first starts is not split between the local pool and the cluster's.
    let programs = middleware(spool);
    let bridged = af_spool::bridge::bridged(spool);
    for (message, target) in batch {
        let mut message = through(spool, &programs, message)?;
        let mirror = mirror(spool, &mut message, &target, durable, bridged)?;
        let bytes = message.encode()?;
        let mut queues = queues_in(spool, &message, &target, durable, bridged)?;
        queues.extend(mirror);
        planned.push((message, bytes, queues));
    }
    let mut staged = Batch::new(spool);
    for (message, bytes, queues) in &planned {
        for q in queues {
            staged.stage(q, message, bytes)?;
        }
    }
    staged.publish()?;
    Ok(planned.into_iter().map(|(m, _, _)| m).collect())
}

/// The queues of this host a message goes to.
pub fn queues_of(spool: &Spool, message: &Message, target: &Target, durable: bool) -> Result<Vec<Queue>> {
    queues_in(spool, message, target, durable, af_spool::bridge::bridged(spool))
}

/// The queues of this host a message goes to, the spool `bridged` or not.
fn queues_in(spool: &Spool, message: &Message, target: &Target, durable: bool, bridged: bool) -> Result<Vec<Queue>> {
    let mut queues: Vec<Queue> = Vec::new();
    match target {
        Target::Queue(Address::Reply(id)) => {
            let q = Address::Reply(id.clone()).queue(spool);
            if !q.exists() {
                return Err(Error::NotFound(format!("requester {id} is gone (it timed out or was stopped)")));
            }
            queues.push(q.durable(false));
        }
        // On a bridged spool a project's pool is the cluster's: its tasks go through the outbox.
        Target::Queue(Address::Pool(_)) if bridged => queues.push(Address::Outbox.queue(spool).durable(durable)),
        Target::Queue(a) => queues.push(a.queue(spool).durable(durable)),
        Target::Broadcast(project) => {
            for id in spool.agent_ids()? {
                let Ok(config) = spool.read_config(&id) else { continue };
                if project.as_ref().is_none_or(|p| *p == config.project_id) {
                    queues.push(Address::Inbox(id).queue(spool).durable(durable));
                }
            }
        }
        Target::Topic => {
            let topic = message.topic.clone().unwrap_or_default();
            for sub in subscriptions(spool)? {
                if topic_matches(&sub.topic, &topic) {
                    queues.push(Address::Sub(sub.name).queue(spool).durable(durable && !sub.ephemeral));
                }
            }
        }
    }
    Ok(queues)
}

/// The middleware programs: executable files in `bus.d/`, not hidden, in name order.
pub fn middleware(spool: &Spool) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(spool.middleware_dir()) else { return Vec::new() };
    let mut progs: Vec<PathBuf> = read
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| !n.starts_with('.')))
        .filter(|e| process::is_executable(&e.path()))
        .map(|e| e.path())
        .collect();
    progs.sort();
    progs
}

/// Passes a message through each middleware program: the message as JSON on its stdin, the
/// (possibly changed) message on its stdout. A non-zero exit rejects the message (Invalid, with
/// the program's stderr as the reason). The id cannot be changed.
pub fn run_middleware(spool: &Spool, message: Message) -> Result<Message> {
    through(spool, &middleware(spool), message)
}

/// Passes a message through the middleware programs `programs` (as [`middleware`] listed them).
fn through(spool: &Spool, programs: &[PathBuf], mut message: Message) -> Result<Message> {
    for prog in programs {
        let name = prog.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let input = serde_json::to_vec(&message).map_err(|e| Error::Invalid(format!("cannot encode message: {e}")))?;
        let mut cmd = Command::new(prog);
        cmd.env("AF_HOME", spool.root());
        let limit = af_spool::message::max_bytes() as u64 + 1;
        let done =
            process::run(&mut cmd, &format!("middleware {}", prog.display()), Some(input), limit, MIDDLEWARE_TIMEOUT)?;
        if !done.status.success() {
            let reason = done.last_error_line().unwrap_or_else(|| format!("it exited with {}", done.describe_exit()));
            return Err(Error::Invalid(format!("message rejected by middleware {name}: {reason}")));
        }
        let mut next: Message = serde_json::from_slice(&done.stdout)
            .map_err(|e| Error::Invalid(format!("middleware {name} printed no valid message: {e}")))?;
        next.id = message.id;
        message = next;
    }
    Ok(message)
}

/// The bus at a glance, as `af-bus stats --json` prints it and af-api answers: one row per queue
/// (its name added to its figures), the subscriptions, and totals.
pub fn stats(spool: &Spool) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    for (a, q) in af_spool::bus::all_queues(spool)? {
        rows.push((a.to_string(), q.stats()?));
    }
    let queues: Vec<serde_json::Value> = rows
        .iter()
        .map(|(name, s)| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["queue"] = name.clone().into();
            v
        })
        .collect();
    let total = |f: fn(&af_spool::queue::QueueStats) -> usize| rows.iter().map(|(_, s)| f(s)).sum::<usize>();
    Ok(serde_json::json!({
        "queues": queues,
        "subscriptions": subscriptions(spool)?,
        "totals": {"depth": total(|s| s.depth), "inFlight": total(|s| s.in_flight), "dead": total(|s| s.dead), "acked": total(|s| s.acked)},
    }))
}
