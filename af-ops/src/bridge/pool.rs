//! The cluster-wide pool: `pool:PROJECT` on a bridged spool is one queue for every host.
//!
//! A task posted to `pool:PROJECT` on a bridged spool goes to the outbox (af-ops `bus`), and the
//! outbound pump adds it to the stream of its project's lane for its priority ([`stream_key`],
//! [`add`]), its local reply-to named as this host's (`QUEUE@HOST`) so that the answer finds its
//! way back. Each bridge reads the streams of the projects its host has task workers of through
//! the consumer group `af-bridge` (consumer: the host's name), taking only as many entries as
//! those workers have free slots ([`credits`]): an idle worker anywhere takes the next task, and a
//! busy host takes none. The lanes are read most urgent first: a slot that frees takes a critical
//! task before any high one, a high one before any normal one, and so on; within a lane, first in
//! first out. An entry is delivered exactly once into the local pool queue (af-spool `bridge`, by
//! message id, as the inbound pump does), then XACKed and XDELed. Credits come back as the local
//! workers finish: a slot is taken while its task waits in the local pool, runs, or an inbox task
//! runs.
//!
//! Faults: on every connection a bridge first takes its own pending entries again, in every lane
//! (read, maybe delivered, never acked: a second delivery is recognised and not made). An entry
//! pending on another host's bridge for longer than [`reclaim_after`] (that host is gone) is
//! claimed by a bridge with credit (XCLAIM), the most urgent lane first, and delivered with its
//! attempts raised by one: across hosts the pool is at least once.
//!
//! The normal lane keeps the stream of the version before lanes, `af:pool:PROJECT`: entries left
//! there by that version are taken as normal ones (their own priority still orders the local
//! pool), and a host still running that version takes the normal tasks and sends all of its own
//! there. The other lanes' names cannot be a project's normal lane (their prefix differs before
//! the project).
//!
//! ```text
//! af:pools                   set: every project whose pool went through Redis
//! af:pool-critical:<PROJECT> the project's critical lane (fields msg, origin); group af-bridge
//! af:pool-high:<PROJECT>     its high lane
//! af:pool:<PROJECT>          its normal lane (the one stream of the version before lanes)
//! af:pool-low:<PROJECT>      its low lane
//! ```

use super::{BATCH, BLOCK, Bridge, Failure, GROUP, inbound, sleep_unless};
use af_spool::bus::Address;
use af_spool::host::split_host;
use af_spool::message::{Message, Priority};
use af_spool::queue::Queue;
use af_spool::record::{AgentType, Status};
use af_spool::{AgentId, Result, Spool};
use redis::streams::StreamId;
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// The stream of a project's lane: its tasks of priority `lane`. The normal lane is the stream
/// of the version before lanes, `af:pool:PROJECT`; the others are `af:pool-LANE:PROJECT`.
pub fn stream_key(project: &str, lane: Priority) -> String {
    match lane {
        Priority::Normal => format!("af:pool:{project}"),
        other => format!("af:pool-{}:{project}", other.as_str()),
    }
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

/// Adds a pool task of the outbox to the stream of its project's lane for its priority in
/// `pipe`, its local reply-to named as this host's. Returns false (nothing added) when it is no
/// pool task.
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
    pipe.cmd("XADD").arg(stream_key(project, m.priority)).arg("*").arg("msg").arg(bytes).arg("origin").arg(&b.host);
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

/// What one round read: entries of a project's lane, the most urgent lanes first.
type Read = Vec<(String, Priority, Vec<StreamId>)>;

/// Pulls tasks from the cluster-wide pools of this host's workers' projects into their local
/// pools, as many as they have free slots and the most urgent lane first, until `stop` is set or
/// Redis fails.
pub(crate) fn pump(b: &Bridge, c: &mut redis::Connection, stop: &AtomicBool) -> std::result::Result<(), Failure> {
    let mut grouped: HashSet<String> = HashSet::new();
    // First what this host's bridge read before and never acked, in every lane of every pool.
    let all: Vec<String> = redis::cmd("SMEMBERS").arg(POOLS).query(c)?;
    for project in &all {
        ensure_groups(c, &mut grouped, project)?;
        for lane in Priority::ALL {
            take_own_pending(b, c, project, lane)?;
        }
    }
    let mut workers = task_workers(&b.spool)?;
    let mut workers_at = Instant::now();
    let mut stuck_at: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        if workers_at.elapsed() >= WORKERS_EVERY {
            workers = task_workers(&b.spool)?;
            workers_at = Instant::now();
        }
        let free: BTreeMap<String, usize> = credits(&b.spool, &workers)?.into_iter().filter(|(_, n)| *n > 0).collect();
        if free.is_empty() {
            sleep_unless(stop, LOOK_EVERY);
            continue;
        }
        for project in free.keys() {
            ensure_groups(c, &mut grouped, project)?;
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
        let mut read = read_by_lane(b, c, &free)?;
        if read.is_empty() {
            read = wait_for_entries(b, c, &free)?;
        }
        if read.is_empty() {
            continue;
        }
        // A worker may have become busy since the credits were counted: what is over the credit
        // now (the least urgent first) goes back to its stream, for another host.
        let mut now = credits(&b.spool, &workers)?;
        for (project, lane, mut ids) in read {
            let left = now.entry(project.clone()).or_default();
            let keep = (*left).min(ids.len());
            *left -= keep;
            let over = ids.split_off(keep);
            give_back(b, c, &stream_key(&project, lane), &over)?;
            if !ids.is_empty() {
                handle(b, c, &project, lane, ids, &HashSet::new())?;
            }
        }
    }
    Ok(())
}

/// Reads, without waiting, up to each project's credit in `free` from its lanes, the most urgent
/// first: a lane is read only for the credit the lanes above it left. Projects with the same
/// credit left share one read per lane.
fn read_by_lane(b: &Bridge, c: &mut redis::Connection, free: &BTreeMap<String, usize>) -> redis::RedisResult<Read> {
    let mut left = free.clone();
    let mut out = Read::new();
    for lane in Priority::ALL {
        let mut by_credit: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (project, n) in left.iter().filter(|(_, n)| **n > 0) {
            by_credit.entry((*n).min(BATCH)).or_default().push(project.clone());
        }
        for (count, projects) in by_credit {
            let keys: Vec<String> = projects.iter().map(|p| stream_key(p, lane)).collect();
            for k in read_group(b, c, count, None, &keys, ">")? {
                let Some(i) = keys.iter().position(|key| *key == k.key) else { continue };
                let n = left.get_mut(&projects[i]).expect("a project read");
                *n = n.saturating_sub(k.ids.len());
                out.push((projects[i].clone(), lane, k.ids));
            }
        }
    }
    Ok(out)
}

/// Waits up to [`BLOCK`] for entries in any lane of the projects of `free` (each stream read
/// for at most the smallest credit); what came, the most urgent lanes first.
fn wait_for_entries(b: &Bridge, c: &mut redis::Connection, free: &BTreeMap<String, usize>) -> redis::RedisResult<Read> {
    let count = free.values().copied().min().unwrap_or(1).min(BATCH);
    let mut lanes: HashMap<String, (String, Priority)> = HashMap::new();
    for project in free.keys() {
        for lane in Priority::ALL {
            lanes.insert(stream_key(project, lane), (project.clone(), lane));
        }
    }
    let keys: Vec<String> = lanes.keys().cloned().collect();
    let mut out = Read::new();
    for k in read_group(b, c, count, Some(BLOCK), &keys, ">")? {
        if let Some((project, lane)) = lanes.get(&k.key) {
            out.push((project.clone(), *lane, k.ids));
        }
    }
    out.sort_by_key(|(_, lane, _)| *lane);
    Ok(out)
}

/// Reads up to `count` entries of each stream of `keys` through the group as this host, after
/// `from` (`>`: those never read; an id: this host's pending ones after it), waiting up to `block`
/// for some (never, without). Only the streams that had some.
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

/// Makes the streams of the project's lanes and their group (reading from the stream's start)
/// unless they exist.
fn ensure_groups(c: &mut redis::Connection, grouped: &mut HashSet<String>, project: &str) -> redis::RedisResult<()> {
    for lane in Priority::ALL {
        let key = stream_key(project, lane);
        if grouped.contains(&key) {
            continue;
        }
        inbound::create_group(c, &key)?;
        grouped.insert(key);
    }
    Ok(())
}

/// Delivers again what this host's bridge read from a lane of a pool and never acked (it was
/// killed): what it had delivered already is recognised by its id and not delivered twice.
fn take_own_pending(
    b: &Bridge,
    c: &mut redis::Connection,
    project: &str,
    lane: Priority,
) -> std::result::Result<(), Failure> {
    let key = stream_key(project, lane);
    let mut after = "0-0".to_owned();
    loop {
        let entries: Vec<StreamId> = read_group(b, c, BATCH, None, std::slice::from_ref(&key), &after)?
            .into_iter()
            .flat_map(|k| k.ids)
            .collect();
        let Some(last) = entries.last().map(|e| e.id.clone()) else { return Ok(()) };
        tracing::info!(
            project,
            lane = lane.as_str(),
            entries = entries.len(),
            "taking over this host's pending pool entries"
        );
        handle(b, c, project, lane, entries, &HashSet::new())?;
        after = last;
    }
}

/// Claims up to `n` entries of a pool pending on another host's bridge for longer than
/// [`reclaim_after`], the most urgent lanes first, and delivers them, each as a further attempt.
/// Whether it took any.
fn claim_stuck(b: &Bridge, c: &mut redis::Connection, project: &str, n: usize) -> std::result::Result<bool, Failure> {
    let idle = reclaim_after().as_millis() as u64;
    let mut left = n;
    for lane in Priority::ALL {
        if left == 0 {
            break;
        }
        let key = stream_key(project, lane);
        let pending: redis::streams::StreamPendingCountReply =
            redis::cmd("XPENDING").arg(&key).arg(GROUP).arg("IDLE").arg(idle).arg("-").arg("+").arg(BATCH).query(c)?;
        let theirs: Vec<&redis::streams::StreamPendingId> =
            pending.ids.iter().filter(|p| p.consumer != b.host).take(left).collect();
        if theirs.is_empty() {
            continue;
        }
        let ids: Vec<&str> = theirs.iter().map(|p| p.id.as_str()).collect();
        let claimed: redis::streams::StreamClaimReply =
            redis::cmd("XCLAIM").arg(&key).arg(GROUP).arg(&b.host).arg(idle).arg(&ids).query(c)?;
        if claimed.ids.is_empty() {
            continue;
        }
        for p in &theirs {
            tracing::warn!(project, lane = lane.as_str(), entry = %p.id, host = %p.consumer, idle_ms = p.last_delivered_ms, "claimed a pool entry a gone host had taken");
        }
        left = left.saturating_sub(claimed.ids.len());
        let again: HashSet<String> = claimed.ids.iter().map(|e| e.id.clone()).collect();
        handle(b, c, project, lane, claimed.ids, &again)?;
    }
    Ok(left < n)
}

/// Delivers entries of a project's lane into the local pool (bad ones to the dead letters of
/// `bridge:in`), exactly once by message id, then acks and deletes them. An entry in `again`
/// was taken by another host before: its attempts are raised by one.
fn handle(
    b: &Bridge,
    c: &mut redis::Connection,
    project: &str,
    lane: Priority,
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
    inbound::deliver(b, c, &stream_key(project, lane), entries, check)
}

/// One lane of a project's cluster-wide pool, as Redis holds it (`af-bus stats --cluster`,
/// `GET /api/cluster`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneFigures {
    /// The project.
    pub project: String,
    /// The lane: its tasks' priority.
    pub lane: Priority,
    /// Its stream.
    pub stream: String,
    /// Entries no bridge has read yet: the stream's length less the pending ones (a bridge
    /// deletes what it acked).
    pub waiting: usize,
    /// Entries a bridge read and has not acked yet: being delivered, or held by a bridge that is
    /// gone (taken over after `AF_POOL_RECLAIM`).
    pub pending: usize,
    /// The pending ones by the host whose bridge read them.
    pub pending_by: BTreeMap<String, usize>,
    /// How long the oldest waiting entry has waited, in ms by Redis's clock (an entry given back
    /// for want of a slot counts from then); None when none waits.
    pub oldest_waiting_ms: Option<u64>,
}

/// Every lane of every project's cluster-wide pool (the projects of `af:pools`, by name; their
/// lanes most urgent first), from the Redis at `url`: at most five round trips, whatever the
/// number of projects. System when Redis cannot be reached; Invalid for a bad URL.
pub fn figures(url: &str) -> Result<Vec<LaneFigures>> {
    let mut c = super::connect::reading(url)?;
    lanes(&mut c).map_err(super::connect::unreadable)
}

fn lanes(c: &mut redis::Connection) -> redis::RedisResult<Vec<LaneFigures>> {
    let (mut projects, (secs, micros)): (Vec<String>, (u64, u64)) =
        redis::pipe().cmd("SMEMBERS").arg(POOLS).cmd("TIME").query(c)?;
    projects.sort();
    let now_ms = secs * 1000 + micros / 1000;
    let mut rows: Vec<LaneFigures> = projects
        .iter()
        .flat_map(|p| {
            Priority::ALL.map(|lane| LaneFigures {
                project: p.clone(),
                lane,
                stream: stream_key(p, lane),
                waiting: 0,
                pending: 0,
                pending_by: BTreeMap::new(),
                oldest_waiting_ms: None,
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(rows);
    }
    let mut pipe = redis::pipe();
    for r in &rows {
        pipe.cmd("XLEN").arg(&r.stream);
    }
    let lengths: Vec<usize> = pipe.query(c)?;
    // The group of each stream that holds entries: how many are pending, and after which entry
    // the waiting ones start.
    let held: Vec<usize> = (0..rows.len()).filter(|i| lengths[*i] > 0).collect();
    let mut after: HashMap<usize, String> = HashMap::new();
    if !held.is_empty() {
        let mut pipe = redis::pipe();
        for i in &held {
            pipe.cmd("XINFO").arg("GROUPS").arg(&rows[*i].stream);
        }
        let groups: Vec<redis::streams::StreamInfoGroupsReply> = pipe.query(c)?;
        for (i, g) in held.iter().zip(groups) {
            let r = &mut rows[*i];
            if let Some(g) = g.groups.into_iter().find(|g| g.name == GROUP) {
                r.pending = g.pending;
                after.insert(*i, format!("({}", g.last_delivered_id));
            }
            r.waiting = lengths[*i].saturating_sub(r.pending);
        }
    }
    // Who holds the pending ones, and the first waiting entry (its id is its time).
    let holding: Vec<usize> = held.iter().copied().filter(|i| rows[*i].pending > 0).collect();
    if !holding.is_empty() {
        let mut pipe = redis::pipe();
        for i in &holding {
            pipe.cmd("XPENDING").arg(&rows[*i].stream).arg(GROUP);
        }
        let pending: Vec<redis::streams::StreamPendingReply> = pipe.query(c)?;
        for (i, p) in holding.iter().zip(pending) {
            if let redis::streams::StreamPendingReply::Data(d) = p {
                rows[*i].pending_by = d.consumers.into_iter().map(|c| (c.name, c.pending)).collect();
            }
        }
    }
    let waiting: Vec<usize> = held.iter().copied().filter(|i| rows[*i].waiting > 0).collect();
    if !waiting.is_empty() {
        let mut pipe = redis::pipe();
        for i in &waiting {
            let start = after.get(i).map_or("-", String::as_str);
            pipe.cmd("XRANGE").arg(&rows[*i].stream).arg(start).arg("+").arg("COUNT").arg(1);
        }
        let first: Vec<redis::streams::StreamRangeReply> = pipe.query(c)?;
        for (i, f) in waiting.iter().zip(first) {
            let at = f.ids.first().and_then(|e| e.id.split('-').next()).and_then(|ms| ms.parse::<u64>().ok());
            rows[*i].oldest_waiting_ms = at.map(|at| now_ms.saturating_sub(at));
        }
    }
    Ok(rows)
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

    #[test]
    fn the_normal_lane_is_the_stream_of_before_and_no_two_lanes_of_any_projects_share_a_stream() {
        assert_eq!(stream_key("web", Priority::Normal), "af:pool:web");
        assert_eq!(stream_key("web", Priority::Critical), "af:pool-critical:web");
        // Project names may hold ':' and '-': still one stream per project and lane.
        let projects = ["web", "web:critical", "critical:web", "-critical:web", "pool-high", "web-low"];
        let mut keys: Vec<String> =
            projects.iter().flat_map(|p| Priority::ALL.map(|lane| stream_key(p, lane))).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "{keys:?}");
    }
}
