//! Cluster state through Redis: each bridge publishes its host's agent summaries (the records of
//! `af-spawn ls --json`, each with `host`) every [`PUBLISH_EVERY`] and whenever an agent's
//! status or health changed, with a heartbeat that expires after [`HEARTBEAT_TTL`]; anyone with
//! the Redis reads every host's ([`read`]). A bridge also watches the other hosts' heartbeats: a
//! host whose heartbeat expired raises one `host.unreachable` alert (one bridge raises it, the
//! first to claim it in Redis), closed by a recovery when the host is back or has left the
//! cluster (see leave.rs).
//!
//! ```text
//! af:hosts                       set: every host that ever bridged
//! af:host:<HOST>:agents          its agent summaries (a JSON array; kept when it goes away)
//! af:host:<HOST>:heartbeat       its last publication (ms since the epoch), expires after the TTL
//! af:host:<HOST>:unreachable     the host whose bridge raised the alert about HOST
//! ```

use super::{Bridge, Failure, HOSTS, sleep_unless};
use crate::alert::{self, Hooks};
use crate::health::live;
use af_spool::health::AlertLevel;
use af_spool::id::AgentId;
use af_spool::time::Timestamp;
use af_spool::{Error, Result, Spool};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a bridge publishes its host's agents when nothing changed (at most a third of the
/// heartbeat's TTL).
pub const PUBLISH_EVERY: Duration = Duration::from_secs(3);

/// How often a bridge looks for a change of its agents and at the other hosts' heartbeats.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How long a host's heartbeat lasts: a host not heard of for this long is unreachable.
/// `AF_CLUSTER_TTL` (seconds) changes it.
pub fn heartbeat_ttl() -> Duration {
    super::env_seconds("AF_CLUSTER_TTL", Duration::from_secs(10))
}

/// The alert raised about a host whose heartbeat expired.
pub const UNREACHABLE: &str = "host.unreachable";

pub(crate) fn agents_key(host: &str) -> String {
    format!("af:host:{host}:agents")
}

pub(crate) fn heartbeat_key(host: &str) -> String {
    format!("af:host:{host}:heartbeat")
}

pub(crate) fn alert_key(host: &str) -> String {
    format!("af:host:{host}:unreachable")
}

/// This host's agent summaries, as `af-spawn ls --json` prints them, each with `host`.
pub fn summaries(spool: &Spool, host: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for id in spool.agent_ids()? {
        match spool.observe(&id) {
            Ok(obs) => {
                let mut v = live::summary(spool, &obs);
                v["host"] = host.into();
                out.push(v);
            }
            Err(Error::NotFound(_)) => {} // removed as we looked
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// What makes a change worth publishing at once: every agent's id, status and health.
type Fingerprint = Vec<(Value, Value, Value)>;

fn fingerprint(agents: &[Value]) -> Fingerprint {
    agents.iter().map(|a| (a["id"].clone(), a["status"].clone(), a["health"].clone())).collect()
}

/// Publishes this host's state and watches the others' until `stop` is set or Redis fails.
pub(crate) fn pump(b: &Bridge, c: &mut redis::Connection, stop: &AtomicBool) -> std::result::Result<(), Failure> {
    let ttl = heartbeat_ttl();
    // Three publications within a heartbeat's life, however short it is set: a live host's
    // heartbeat never lapses between two.
    let every = PUBLISH_EVERY.min(ttl / 3);
    let look = LOOK_EVERY.min(every);
    let mut last: Option<(Fingerprint, Instant)> = None;
    while !stop.load(Ordering::SeqCst) {
        let agents = summaries(&b.spool, &b.host)?;
        let print = fingerprint(&agents);
        let due = last.as_ref().is_none_or(|(p, at)| *p != print || at.elapsed() >= every);
        if due {
            let text = serde_json::to_string(&agents).unwrap_or_default();
            redis::pipe()
                .cmd("SADD")
                .arg(HOSTS)
                .arg(&b.host)
                .ignore()
                .cmd("SET")
                .arg(agents_key(&b.host))
                .arg(text)
                .ignore()
                .cmd("SET")
                .arg(heartbeat_key(&b.host))
                .arg(Timestamp::now().0)
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .ignore()
                .query::<()>(c)?;
            last = Some((print, Instant::now()));
        }
        watch(b, c)?;
        sleep_unless(stop, look);
    }
    Ok(())
}

/// Raises `host.unreachable` about each other host whose heartbeat expired (unless another
/// bridge did), and closes the one this host raised once that host is back.
fn watch(b: &Bridge, c: &mut redis::Connection) -> std::result::Result<(), Failure> {
    let hosts: Vec<String> = redis::cmd("SMEMBERS").arg(HOSTS).query(c)?;
    for h in hosts.iter().filter(|h| **h != b.host) {
        let alive: bool = redis::cmd("EXISTS").arg(heartbeat_key(h)).query(c)?;
        let agent = alert_agent(h)?;
        let open_here = b.spool.open_alert_path(&agent, UNREACHABLE).exists();
        if !alive && !open_here {
            let claimed: Option<String> = redis::cmd("SET").arg(alert_key(h)).arg(&b.host).arg("NX").query(c)?;
            if claimed.is_some() {
                tracing::warn!(host = %h, "host unreachable: its heartbeat expired");
                raise(b, h, &agent, AlertLevel::Critical)?;
            }
        } else if alive && open_here {
            redis::cmd("DEL").arg(alert_key(h)).query::<()>(c)?;
            tracing::info!(host = %h, "host reachable again");
            raise(b, h, &agent, AlertLevel::Recovery)?;
        }
    }
    // A host that left the cluster (`af-bus bridge --leave`) is awaited no more.
    for a in b.spool.open_alerts()?.iter().filter(|a| a.check == UNREACHABLE) {
        if !hosts.iter().any(|h| alert_agent(h).is_ok_and(|id| id == a.agent)) {
            tracing::info!(agent = %a.agent, "a host left the cluster: its alert closes");
            alert::close(&b.spool, &a.agent, UNREACHABLE, "left the cluster");
        }
    }
    Ok(())
}

/// The id an alert about `host` is filed under: `host-<HOST>` (a `.` of the name as `_`).
pub fn alert_agent(host: &str) -> Result<AgentId> {
    AgentId::new(&format!("host-{}", host.replace('.', "_")))
}

fn raise(b: &Bridge, host: &str, agent: &AgentId, level: AlertLevel) -> Result<()> {
    let message = match level {
        AlertLevel::Recovery => format!("host {host} is reachable again (seen by {})", b.host),
        _ => format!("host {host} is unreachable: no heartbeat for {:?} (seen by {})", heartbeat_ttl(), b.host),
    };
    alert::raise(&b.spool, agent, level, UNREACHABLE, &message, Hooks::Wait)?;
    Ok(())
}

/// One host of the cluster as read from Redis.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostState {
    /// Its name.
    pub host: String,
    /// Whether its heartbeat is alive.
    pub reachable: bool,
    /// When it last published, when known.
    pub heartbeat_at: Option<Timestamp>,
    /// Its agents as last published (each with `host`).
    pub agents: Vec<Value>,
}

impl HostState {
    /// Its agents counted by status.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut by = std::collections::BTreeMap::new();
        for a in &self.agents {
            *by.entry(a["status"].as_str().unwrap_or("unknown").to_owned()).or_default() += 1;
        }
        by
    }
}

/// Every host's state, by name, from the Redis at `url` (`AF_REDIS_URL`): two round trips.
/// System when Redis cannot be reached; Invalid for a bad URL.
pub fn read(url: &str) -> Result<Vec<HostState>> {
    let mut c = super::connect::reading(url)?;
    let mut hosts: Vec<String> = redis::cmd("SMEMBERS").arg(HOSTS).query(&mut c).map_err(super::connect::unreadable)?;
    hosts.sort();
    if hosts.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for h in &hosts {
        pipe.cmd("GET").arg(agents_key(h)).cmd("GET").arg(heartbeat_key(h));
    }
    let got: Vec<Option<String>> = pipe.query(&mut c).map_err(super::connect::unreadable)?;
    let mut out = Vec::with_capacity(hosts.len());
    for (h, pair) in hosts.into_iter().zip(got.chunks(2)) {
        let agents: Vec<Value> = pair[0].as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
        let beat = pair[1].as_deref().and_then(|t| t.parse().ok()).map(Timestamp);
        out.push(HostState { reachable: beat.is_some(), heartbeat_at: beat, agents, host: h });
    }
    Ok(out)
}

/// The cluster as `GET /api/cluster` answers: the hosts (reachable, heartbeat, counts by status)
/// and every agent, each with `host` and `hostReachable`.
pub fn document(hosts: &[HostState]) -> Value {
    json!({
        "hosts": hosts.iter().map(|h| json!({
            "host": h.host, "reachable": h.reachable, "heartbeatAt": h.heartbeat_at,
            "agents": h.agents.len(), "counts": h.counts(),
        })).collect::<Vec<_>>(),
        "agents": agents(hosts),
    })
}

/// Every host's agents, each marked with whether its host is reachable (`hostReachable`).
pub fn agents(hosts: &[HostState]) -> Vec<Value> {
    let mut out = Vec::new();
    for h in hosts {
        for a in &h.agents {
            let mut a = a.clone();
            a["host"] = h.host.clone().into();
            a["hostReachable"] = h.reachable.into();
            out.push(a);
        }
    }
    out
}

/// One agent of `host` as its bridge last published it (with `host` and `hostReachable`), from
/// the Redis at `url`: NotFound when the host or the agent is not in the cluster state.
pub fn agent(url: &str, host: &str, id: &str) -> Result<Value> {
    let hosts = read(url)?;
    let Some(h) = hosts.iter().find(|h| h.host == host) else {
        return Err(Error::NotFound(format!("no host '{host}' in the cluster (is its af-bus bridge running?)")));
    };
    agents(std::slice::from_ref(h))
        .into_iter()
        .find(|a| a["id"] == id)
        .ok_or_else(|| Error::NotFound(format!("no agent '{id}' on host {host} (as its bridge last published)")))
}
