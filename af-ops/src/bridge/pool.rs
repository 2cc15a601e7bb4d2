//! The cluster-wide pool: `pool:PROJECT` on a bridged spool is one queue for every host.
//!
//! A task posted to `pool:PROJECT` on a bridged spool goes to the outbox (af-ops `bus`), and the
//! outbound pump adds it to the project's stream, `af:pool:PROJECT` ([`add`]), its local reply-to
//! named as this host's (`QUEUE@HOST`) so that the answer finds its way back. Each bridge reads
//! the streams of the projects its host has task workers of through the consumer group
//! `af-bridge` (consumer: the host's name), taking only as many entries as those workers have free
//! slots ([`credits`]): an idle worker anywhere takes the next task, and a busy host takes none.
//! An entry is delivered exactly once into the local pool queue (af-spool `bridge`, by message id,
//! as the inbound pump does), then XACKed and XDELed. Credits come back as the local workers
//! finish: a slot is taken while its task waits in the local pool, runs, or an inbox task runs.
//!
//! Faults: on every connection a bridge first takes its own pending entries again (read, maybe
//! delivered, never acked: a second delivery is recognised and not made). An entry pending on
//! another host's bridge for longer than [`reclaim_after`] (that host is gone) is claimed by a
//! bridge with credit (XCLAIM) and delivered with its attempts raised by one: across hosts the
//! pool is at least once.
//!
//! ```text
//! af:pools                 set: every project whose pool went through Redis
//! af:pool:<PROJECT>        the project's stream (fields msg, origin); group af-bridge
//! ```

use super::{BATCH, BLOCK, Bridge, Failure, GROUP, inbound, sleep_unless};
use af_spool::bus::Address;
use af_spool::host::split_host;
use af_spool::message::Message;
use af_spool::queue::Queue;
use af_spool::record::{AgentType, Status};
use af_spool::{AgentId, Result, Spool};
use redis::streams::StreamId;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The set of every project whose pool went through Redis.
pub const POOLS: &str = "af:pools";

/// How often a bridge without credit looks again at its workers' free slots.
pub const LOOK_EVERY: Duration = Duration::from_millis(200);

/// How often the list of this host's task workers is read again from their configs.
const WORKERS_EVERY: Duration = Duration::from_secs(2);

/// How often a bridge with credit looks for entries stuck on a bridge that is gone.
const STUCK_EVERY: Duration = Duration::from_secs(5);

/// The stream of a project's pool.
pub fn stream_key(project: &str) -> String {
    format!("af:pool:{project}")
}

/// How long an entry may stay pending on another host's bridge before a bridge with free slots
/// claims it: `AF_POOL_RECLAIM` seconds, default 60. A live bridge acks what it read within
/// milliseconds; this is for one that died and has not come back.
pub fn reclaim_after() -> Duration {
    super::env_seconds("AF_POOL_RECLAIM", Duration::from_secs(60))
}

/// The project of a message of the outbox that is for the cluster-wide pool: addressed
/// `pool:PROJECT`, without a host.
pub(crate) fn project_of(m: &Message) -> Option<&str> {
    match split_host(m.to.as_deref()?) {
        Ok((queue, None)) => queue.strip_prefix("pool:"),
        _ => None,
    }
}

/// Adds a pool task of the outbox to its project's stream in `pipe`, its local reply-to named as
/// this host's. Returns false (nothing added) when it is no pool task.
pub(crate) fn add(pipe: &mut redis::Pipeline, b: &Bridge, m: &Message) -> Result<bool> {
    let Some(project) = project_of(m) else { return Ok(false) };
    let mut m = m.clone();
    if let Some(r) = &m.reply_to {
        if matches!(split_host(r), Ok((_, None))) {
            m.reply_to = Some(format!("{r}@{}", b.host));
        }
    }
    let bytes = m.encode()?;
    pipe.cmd("SADD").arg(POOLS).arg(project).ignore();
    pipe.cmd("XADD").arg(stream_key(project)).arg("*").arg("msg").arg(bytes).arg("origin").arg(&b.host);
    Ok(true)
}

/// One of this host's task workers: a running `worker` agent without a command.
#[derive(Debug, Clone)]
struct Worker {
    id: AgentId,
    project: String,
    slots: usize,
}

/// This host's task workers (any status), from their configs.
fn task_workers(spool: &Spool) -> Result<Vec<Worker>> {
    let mut out = Vec::new();
    for id in spool.agent_ids()? {
        let Ok(c) = spool.read_config(&id) else { continue };
        if c.kind == AgentType::Worker && c.command.is_none() {
            out.push(Worker { id, project: c.project_id, slots: c.max_concurrent_tasks as usize });
        }
    }
    Ok(out)
}

/// How many entries of each project's stream this host takes now: its running task workers'
/// slots, less what takes one (its local pool's waiting and claimed messages, its workers'
/// claimed inbox messages). Every project of `workers` is named, with 0 when it has none free.
fn credits(spool: &Spool, workers: &[Worker]) -> Result<BTreeMap<String, usize>> {
    let mut slots: BTreeMap<String, usize> = BTreeMap::new();
    let mut busy: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        slots.entry(w.project.clone()).or_default();
        let Ok(state) = spool.read_state(&w.id) else { continue };
        if state.status != Status::Running || !spool.supervisor_alive(&w.id) {
            continue;
        }
        *slots.entry(w.project.clone()).or_default() += w.slots;
        *busy.entry(w.project.clone()).or_default() += Address::Inbox(w.id.clone()).queue(spool).entries("cur")?.len();
    }
    for (project, n) in slots.iter_mut() {
        let pool = Address::Pool(project.clone()).queue(spool);
        let taken = busy.get(project).copied().unwrap_or(0) + pool.entries("new")?.len() + pool.entries("cur")?.len();
        *n = n.saturating_sub(taken);
    }
    Ok(slots)
}

/// Pulls tasks from the cluster-wide pools of this host's workers' projects into their local
/// pools, as many as they have free slots, until `stop` is set or Redis fails.
pub(crate) fn pump(b: &Bridge, c: &mut redis::Connection, stop: &AtomicBool) -> std::result::Result<(), Failure> {
    let mut grouped: HashSet<String> = HashSet::new();
    // First what this host's bridge read before and never acked, in every pool there is.
    let all: Vec<String> = redis::cmd("SMEMBERS").arg(POOLS).query(c)?;
    for project in &all {
        ensure_group(c, &mut grouped, project)?;
        take_own_pending(b, c, project)?;
    }
    let mut workers = task_workers(&b.spool)?;
    let mut workers_at = Instant::now();
    let mut stuck_at: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        if workers_at.elapsed() >= WORKERS_EVERY {
            workers = task_workers(&b.spool)?;
            workers_at = Instant::now();
        }
        let free: Vec<(String, usize)> = credits(&b.spool, &workers)?.into_iter().filter(|(_, n)| *n > 0).collect();
        if free.is_empty() {
            sleep_unless(stop, LOOK_EVERY);
            continue;
        }
        for (project, _) in &free {
            ensure_group(c, &mut grouped, project)?;
        }
        if stuck_at.is_none_or(|t| t.elapsed() >= STUCK_EVERY) {
            stuck_at = Some(Instant::now());
            let mut took = false;
            for (project, n) in &free {
                took |= claim_stuck(b, c, project, *n)?;
            }
            if took {
                continue; // the credits changed
            }
        }
        // One read over every stream with credit, each taking at most the smallest credit.
        let count = free.iter().map(|(_, n)| *n).min().unwrap_or(1).min(BATCH);
        let keys: Vec<String> = free.iter().map(|(p, _)| stream_key(p)).collect();
        let read = read_group(b, c, count, Some(BLOCK), &keys, ">")?;
        if read.is_empty() {
            continue;
        }
        // A worker may have become busy while the read waited: what is over the credit now goes
        // back to the stream, for another host.
        let now = credits(&b.spool, &workers)?;
        for mut k in read {
            let Some(project) = k.key.strip_prefix("af:pool:").map(str::to_owned) else { continue };
            let keep = now.get(&project).copied().unwrap_or(0).min(k.ids.len());
            let over = k.ids.split_off(keep);
            give_back(b, c, &k.key, &over)?;
            if !k.ids.is_empty() {
                handle(b, c, &project, k.ids, &HashSet::new())?;
            }
        }
    }
    Ok(())
}

/// Reads up to `count` entries of each stream of `keys` through the group as this host, after
/// `from` (`>`: those never read; an id: this host's pending ones after it), waiting up to `block`
/// for some. Only the streams that had some.
fn read_group(
    b: &Bridge,
    c: &mut redis::Connection,
    count: usize,
    block: Option<Duration>,
    keys: &[String],
    from: &str,
) -> redis::RedisResult<Vec<redis::streams::StreamKey>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(GROUP).arg(&b.host).arg("COUNT").arg(count);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(keys).arg(vec![from; keys.len()]);
    let reply: Option<redis::streams::StreamReadReply> = cmd.query(c)?;
    Ok(reply.map(|r| r.keys).unwrap_or_default().into_iter().filter(|k| !k.ids.is_empty()).collect())
}

/// Puts entries this host read back at the end of their stream, at once, for another host to
/// take (added again, acked and deleted, all or none).
fn give_back(b: &Bridge, c: &mut redis::Connection, key: &str, entries: &[StreamId]) -> redis::RedisResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for e in entries {
        let mut add = redis::cmd("XADD");
        add.arg(key).arg("*");
        for field in ["msg", "origin"] {
            if let Some(redis::Value::BulkString(v)) = e.map.get(field) {
                add.arg(field).arg(v.as_slice());
            }
        }
        pipe.add_command(add).ignore();
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    pipe.cmd("XACK").arg(key).arg(GROUP).arg(&ids).ignore().cmd("XDEL").arg(key).arg(&ids).ignore();
    pipe.query::<()>(c)?;
    tracing::debug!(host = %b.host, entries = entries.len(), "gave pool entries back: no free slot any more");
    Ok(())
}

/// Makes the project's stream and group (reading from the stream's start) unless they exist.
fn ensure_group(c: &mut redis::Connection, grouped: &mut HashSet<String>, project: &str) -> redis::RedisResult<()> {
    if grouped.contains(project) {
        return Ok(());
    }
    let made: redis::RedisResult<()> =
        redis::cmd("XGROUP").arg("CREATE").arg(stream_key(project)).arg(GROUP).arg("0").arg("MKSTREAM").query(c);
    match made {
        Err(e) if e.code() != Some("BUSYGROUP") => return Err(e),
        _ => {}
    }
    grouped.insert(project.to_owned());
    Ok(())
}

/// Delivers again what this host's bridge read from a pool and never acked (it was killed):
/// what it had delivered already is recognised by its id and not delivered twice.
fn take_own_pending(b: &Bridge, c: &mut redis::Connection, project: &str) -> std::result::Result<(), Failure> {
    let key = stream_key(project);
    let mut after = "0-0".to_owned();
    loop {
        let entries: Vec<StreamId> = read_group(b, c, BATCH, None, std::slice::from_ref(&key), &after)?
            .into_iter()
            .flat_map(|k| k.ids)
            .collect();
        let Some(last) = entries.last().map(|e| e.id.clone()) else { return Ok(()) };
        tracing::info!(project, entries = entries.len(), "taking over this host's pending pool entries");
        handle(b, c, project, entries, &HashSet::new())?;
        after = last;
    }
}

/// Claims up to `n` entries of a pool pending on another host's bridge for longer than
/// [`reclaim_after`] and delivers them, each as a further attempt. Whether it took any.
fn claim_stuck(b: &Bridge, c: &mut redis::Connection, project: &str, n: usize) -> std::result::Result<bool, Failure> {
    let key = stream_key(project);
    let idle = reclaim_after().as_millis() as u64;
    let pending: redis::streams::StreamPendingCountReply =
        redis::cmd("XPENDING").arg(&key).arg(GROUP).arg("IDLE").arg(idle).arg("-").arg("+").arg(BATCH).query(c)?;
    let theirs: Vec<&redis::streams::StreamPendingId> =
        pending.ids.iter().filter(|p| p.consumer != b.host).take(n).collect();
    if theirs.is_empty() {
        return Ok(false);
    }
    let ids: Vec<&str> = theirs.iter().map(|p| p.id.as_str()).collect();
    let claimed: redis::streams::StreamClaimReply =
        redis::cmd("XCLAIM").arg(&key).arg(GROUP).arg(&b.host).arg(idle).arg(&ids).query(c)?;
    if claimed.ids.is_empty() {
        return Ok(false);
    }
    for p in &theirs {
        tracing::warn!(project, entry = %p.id, host = %p.consumer, idle_ms = p.last_delivered_ms, "claimed a pool entry a gone host had taken");
    }
    let again: HashSet<String> = claimed.ids.iter().map(|e| e.id.clone()).collect();
    handle(b, c, project, claimed.ids, &again)?;
    Ok(true)
}

/// Delivers a project's entries into the local pool (bad ones to the dead letters of
/// `bridge:in`), exactly once by message id, then acks and deletes them. An entry in `again`
/// was taken by another host before: its attempts are raised by one.
fn handle(
    b: &Bridge,
    c: &mut redis::Connection,
    project: &str,
    entries: Vec<StreamId>,
    again: &HashSet<String>,
) -> std::result::Result<(), Failure> {
    let pool: Queue = Address::Pool(project.to_owned()).queue(&b.spool).durable(b.durable);
    let check = |_: &Bridge, e: &StreamId| {
        let (mut m, content) = inbound::parse(e)?;
        if project_of(&m) != Some(project) {
            let to = m.to.clone().unwrap_or_default();
            return Err(inbound::Refusal::new(
                "wrong-host",
                format!("'{to}' is not a task of the pool of project {project}"),
                content,
                e,
            ));
        }
        if again.contains(&e.id) {
            m.attempts += 1;
        }
        Ok((m, vec![pool.clone()]))
    };
    inbound::deliver(b, c, &stream_key(project), entries, check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use af_spool::message::{Kind, Priority};

    #[test]
    fn only_a_hostless_pool_address_is_for_the_cluster_wide_pool() {
        let mut m = Message::new("t", Kind::Task, Priority::Normal, serde_json::json!(1));
        for (to, want) in [("pool:web", Some("web")), ("pool:web@beta", None), ("w1", None), ("w1@beta", None)] {
            m.to = Some(to.to_owned());
            assert_eq!(project_of(&m), want, "{to}");
        }
        m.to = None;
        assert_eq!(project_of(&m), None);
    }
}
