//! The bus on top of queues: addresses (an agent's inbox, a project's pool, a durable
//! subscription, a requester's reply queue), topics and subscriptions, and where middleware live
//! (`bus.d/`). Posting a message through the middleware is an operation (af-ops `bus`).
//!
//! ```text
//! $AF_HOME/agents/<id>/inbox/          an agent's inbox (a queue, see queue.rs)
//! $AF_HOME/bus/pool/<project>/         a project's shared queue (competing consumers)
//! $AF_HOME/bus/sub/<name>/             a subscription: subscription.json + a queue
//! $AF_HOME/bus/reply/<id>/             a waiting requester's reply queue (removed after)
//! $AF_HOME/bus.d/                      middleware executables, run in name order
//! $AF_HOME/bridge/outbox/               messages to other hosts, waiting for `af-bus bridge`
//! $AF_HOME/bridge/in/                   entries from the network: dead letters of bad ones
//! $AF_HOME/bridge/control/              remote control requests from other hosts (a queue)
//! ```
//!
//! An address with `@HOST` names a queue on another host (`w1@beta`, `reply:ID@alpha`); this
//! host's own name (`AF_HOST`, see host.rs) after `@` is the same as none.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::host::{own_host, split_host};
use crate::id::{AgentId, validate_name};
use crate::lock::Lock;
use crate::message::Message;
use crate::queue::Queue;
use crate::spool::Spool;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where a queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An agent's inbox.
    Inbox(AgentId),
    /// A project's shared queue: `pool:PROJECT`.
    Pool(String),
    /// A durable subscription, by name.
    Sub(String),
    /// A requester's reply queue: `reply:ID`.
    Reply(String),
    /// A queue on another host, `QUEUE@HOST`: the message waits in the outbox.
    Remote {
        /// The queue as that host names it (checked for form only: that host resolves it).
        queue: String,
        /// The host.
        host: String,
    },
    /// Messages to other hosts, waiting for the bridge: `bridge:out`.
    Outbox,
    /// Entries from the network; its dead letters are the bad ones: `bridge:in`.
    Inbound,
    /// Remote control requests from other hosts, for the bridge to run: `bridge:control`.
    Control,
}

/// The name of the outbox on the command line.
pub const OUTBOX: &str = "bridge:out";
/// The name of the bridge's inbound queue (its dead letters) on the command line.
pub const INBOUND: &str = "bridge:in";
/// The name of the bridge's queue of remote control requests.
pub const CONTROL: &str = "bridge:control";

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Inbox(id) => write!(f, "{id}"),
            Address::Pool(p) => write!(f, "pool:{p}"),
            Address::Sub(s) => write!(f, "{s}"),
            Address::Reply(r) => write!(f, "reply:{r}"),
            Address::Remote { queue, host } => write!(f, "{queue}@{host}"),
            Address::Outbox => f.write_str(OUTBOX),
            Address::Inbound => f.write_str(INBOUND),
            Address::Control => f.write_str(CONTROL),
        }
    }
}

impl Address {
    /// Resolves a queue name as given on a command line: `pool:PROJECT`, `reply:ID`, an agent id,
    /// or a subscription name, each with `@HOST` for another host's (this host's own name is
    /// the same as none). NotFound when a local name names nothing.
    pub fn resolve(spool: &Spool, s: &str) -> Result<Address> {
        let (queue, host) = split_host(s)?;
        match host {
            Some(host) if host != own_host()? => {
                Address::check_form(queue)?;
                Ok(Address::Remote { queue: queue.to_owned(), host: host.to_owned() })
            }
            _ => Address::resolve_local(spool, queue),
        }
    }

    /// Checks the form of a queue name another host will resolve.
    fn check_form(s: &str) -> Result<()> {
        if s == CONTROL {
            return Ok(());
        }
        if let Some(project) = s.strip_prefix("pool:") {
            return validate_project(project);
        }
        if let Some(id) = s.strip_prefix("reply:") {
            return crate::message::validate_id(id);
        }
        validate_name("queue name", s)
    }

    /// Resolves a queue name of this host, `@` and all (as the bridge does for what it received).
    pub fn resolve_local(spool: &Spool, s: &str) -> Result<Address> {
        if s == OUTBOX {
            return Ok(Address::Outbox);
        }
        if s == INBOUND {
            return Ok(Address::Inbound);
        }
        if s == CONTROL {
            return Ok(Address::Control);
        }
        if let Some(project) = s.strip_prefix("pool:") {
            validate_project(project)?;
            return Ok(Address::Pool(project.to_owned()));
        }
        if let Some(id) = s.strip_prefix("reply:") {
            crate::message::validate_id(id)?;
            return Ok(Address::Reply(id.to_owned()));
        }
        let id = AgentId::new(s)?;
        if spool.try_exists(&id)? {
            return Ok(Address::Inbox(id));
        }
        if spool.subscription_dir(s).join(SUB_RECORD).is_file() {
            return Ok(Address::Sub(s.to_owned()));
        }
        Err(Error::NotFound(format!("no agent or subscription '{s}' (see: af-spawn ls, af-bus stats)")))
    }

    /// The queue at this address.
    pub fn queue(&self, spool: &Spool) -> Queue {
        let queue = Queue::new(match self {
            Address::Inbox(id) => spool.inbox_dir(id),
            Address::Pool(p) => spool.pool_dir(p),
            Address::Sub(s) => spool.subscription_dir(s),
            Address::Reply(r) => spool.reply_dir(r),
            Address::Remote { .. } | Address::Outbox => spool.outbox_dir(),
            Address::Inbound => spool.inbound_dir(),
            Address::Control => spool.bridge_dir().join("control"),
        })
        .in_spool(spool, crate::batch::recover);
        // The outbox is drained whole by the bridge: a batch bundles its messages there.
        if matches!(self, Address::Remote { .. } | Address::Outbox) { queue.bundled() } else { queue }
    }
}

/// Checks a project id used as a pool name (as AgentConfig does: 1 to 256 printable characters).
pub fn validate_project(p: &str) -> Result<()> {
    if p.is_empty() || p.len() > 256 || p.chars().any(char::is_control) {
        return Err(Error::Invalid("a project id must be 1 to 256 printable characters".into()));
    }
    Ok(())
}

/// A project id as one file name: letters, digits, `-` and `_` kept, every other byte `%XX`.
fn encode_project(p: &str) -> String {
    p.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Spool {
    /// The bus's directory (pools, subscriptions, reply queues).
    pub fn bus_dir(&self) -> PathBuf {
        self.root().join("bus")
    }

    /// A project's shared queue.
    pub fn pool_dir(&self, project: &str) -> PathBuf {
        self.bus_dir().join("pool").join(encode_project(project))
    }

    /// A subscription's directory (its record and its queue).
    pub fn subscription_dir(&self, name: &str) -> PathBuf {
        self.bus_dir().join("sub").join(name)
    }

    /// A waiting requester's reply queue.
    pub fn reply_dir(&self, id: &str) -> PathBuf {
        self.bus_dir().join("reply").join(id)
    }

    /// Where an agent's af-wrap keeps each running task's stdin, stdout and stderr.
    pub fn task_dir(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("tasks")
    }

    /// The middleware folder.
    pub fn middleware_dir(&self) -> PathBuf {
        self.root().join("bus.d")
    }

    /// What `af-bus bridge` keeps (see bridge.rs).
    pub fn bridge_dir(&self) -> PathBuf {
        self.root().join("bridge")
    }

    /// Messages to other hosts, waiting for the bridge (a queue).
    pub fn outbox_dir(&self) -> PathBuf {
        self.bridge_dir().join("outbox")
    }

    /// The bridge's inbound queue: where bad entries from the network die.
    pub fn inbound_dir(&self) -> PathBuf {
        self.bridge_dir().join("in")
    }
}

const SUB_RECORD: &str = "subscription.json";
const OWNER_LOCK: &str = "owner.lock";

/// A subscription's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Its name (also its queue's name).
    pub name: String,
    /// The topic pattern: `*` matches any run of characters (`tasks.*`, `*`).
    pub topic: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// A stream's own subscription (`af-bus tail`): removed when its owner is gone.
    #[serde(default)]
    pub ephemeral: bool,
}

/// Checks a topic (`tasks.results`): 1 to 128 letters, digits, `.`, `-`, `_`; with `pattern`,
/// `*` too.
pub fn validate_topic(t: &str, pattern: bool) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') || (pattern && c == '*');
    if t.is_empty() || t.len() > 128 || !t.chars().all(ok) {
        return Err(Error::Invalid(format!(
            "topic{} '{}' must be 1 to 128 letters, digits, '.', '-', '_'{}",
            if pattern { " pattern" } else { "" },
            t.escape_default(),
            if pattern { " or '*'" } else { "" }
        )));
    }
    Ok(())
}

/// Whether `topic` matches `pattern`, where `*` matches any run of characters (dots included).
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), topic.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Makes a durable subscription (or a stream's ephemeral one, whose owner lock is returned).
/// The same name and pattern again is a no-op; another pattern under a taken name is a conflict.
pub fn subscribe(spool: &Spool, name: &str, pattern: &str, ephemeral: bool) -> Result<Option<Lock>> {
    validate_name("subscription name", name)?;
    validate_topic(pattern, true)?;
    if spool.exists(&AgentId::new(name)?) {
        return Err(Error::Conflict(format!("'{name}' is an agent's id; choose another subscription name")));
    }
    let dir = spool.subscription_dir(name);
    if let Some(old) = atomic::read_json::<Subscription>(&dir.join(SUB_RECORD))? {
        if old.topic == pattern && !ephemeral {
            return Ok(None);
        }
        return Err(Error::Conflict(format!("subscription '{name}' exists for topic '{}'", old.topic)));
    }
    // Built under a hidden name and renamed into place, so it appears whole.
    let parent = spool.bus_dir().join("sub");
    let hidden = parent.join(atomic::unique_name("sub"));
    let record =
        Subscription { name: name.to_owned(), topic: pattern.to_owned(), created_at: Timestamp::now(), ephemeral };
    let built = (|| {
        Queue::new(hidden.clone()).create()?;
        let lock = if ephemeral { Some(Lock::exclusive(&hidden.join(OWNER_LOCK))?) } else { None };
        atomic::write_json(&hidden.join(SUB_RECORD), &record, Durability::Durable)?;
        Ok(lock)
    })();
    // Nothing half-made stays behind (a full disk fails the record's write).
    let lock = built.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&hidden);
    })?;
    if let Err(e) = std::fs::rename(&hidden, &dir) {
        let _ = std::fs::remove_dir_all(&hidden);
        return Err(match e.raw_os_error() {
            Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST) => {
                Error::Conflict(format!("subscription '{name}' was just made by someone else"))
            }
            _ => Error::io("rename into place", &dir, e),
        });
    }
    atomic::sync_dir(&parent)?;
    Ok(lock)
}

/// Removes a subscription and its queue.
pub fn unsubscribe(spool: &Spool, name: &str) -> Result<()> {
    validate_name("subscription name", name)?;
    let dir = spool.subscription_dir(name);
    if !dir.join(SUB_RECORD).is_file() {
        return Err(Error::NotFound(format!("no subscription '{name}'")));
    }
    remove_dir_atomically(&dir)
}

/// Renames a directory to a hidden name (so it vanishes at once), then removes it.
fn remove_dir_atomically(dir: &std::path::Path) -> Result<()> {
    let Some(parent) = dir.parent() else { return Ok(()) };
    let gone = parent.join(atomic::unique_name("gone"));
    match std::fs::rename(dir, &gone) {
        Ok(()) => std::fs::remove_dir_all(&gone).map_err(|e| Error::io("remove", &gone, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
    }
}

/// Every subscription; ephemeral ones whose owner is gone are removed on the way.
pub fn subscriptions(spool: &Spool) -> Result<Vec<Subscription>> {
    let dir = spool.bus_dir().join("sub");
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in read.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| !n.starts_with('.')) else { continue };
        let Ok(Some(sub)) = atomic::read_json::<Subscription>(&entry.path().join(SUB_RECORD)) else { continue };
        if sub.ephemeral && !Lock::is_held(&entry.path().join(OWNER_LOCK)) {
            let _ = remove_dir_atomically(&entry.path());
            continue;
        }
        if sub.name == name {
            out.push(sub);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A requester's reply queue, removed when dropped.
pub struct ReplyQueue {
    /// Its address (`reply:ID`).
    pub address: Address,
    /// Its queue.
    pub queue: Queue,
    _lock: Lock,
}

impl ReplyQueue {
    /// Makes a reply queue for request `id`, sweeping those of requesters that are gone.
    pub fn create(spool: &Spool, id: &str) -> Result<ReplyQueue> {
        let parent = spool.bus_dir().join("reply");
        if let Ok(read) = std::fs::read_dir(&parent) {
            for entry in read.flatten() {
                let hidden = entry.file_name().to_str().is_none_or(|n| n.starts_with('.'));
                if !hidden && !Lock::is_held(&entry.path().join(OWNER_LOCK)) {
                    let _ = remove_dir_atomically(&entry.path());
                }
            }
        }
        let queue = Queue::new(spool.reply_dir(id)).durable(false);
        queue.create()?;
        let lock = Lock::exclusive(&queue.dir().join(OWNER_LOCK))?;
        Ok(ReplyQueue { address: Address::Reply(id.to_owned()), queue, _lock: lock })
    }
}

impl Drop for ReplyQueue {
    fn drop(&mut self) {
        let _ = remove_dir_atomically(self.queue.dir());
    }
}

/// Every queue in the spool with a name: inboxes (that exist), pools, subscriptions.
pub fn all_queues(spool: &Spool) -> Result<Vec<(Address, Queue)>> {
    let mut out = Vec::new();
    for id in spool.agent_ids()? {
        let a = Address::Inbox(id);
        let q = a.queue(spool);
        if q.exists() {
            out.push((a, q));
        }
    }
    if let Ok(read) = std::fs::read_dir(spool.bus_dir().join("pool")) {
        let mut pools: Vec<(Address, Queue)> = read
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                if name.starts_with('.') {
                    return None;
                }
                let project = decode_project(&name)?;
                Some((Address::Pool(project), Queue::new(e.path()).in_spool(spool, crate::batch::recover)))
            })
            .collect();
        pools.sort_by_key(|a| a.0.to_string());
        out.extend(pools);
    }
    for sub in subscriptions(spool)? {
        let a = Address::Sub(sub.name);
        let q = a.queue(spool);
        out.push((a, q));
    }
    for a in [Address::Outbox, Address::Inbound, Address::Control] {
        let q = a.queue(spool);
        if q.exists() {
            out.push((a, q));
        }
    }
    Ok(out)
}

fn decode_project(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(name.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Finds a message by id in any queue (claimed, acked, waiting or dead), for `reply`.
pub fn find_message(spool: &Spool, id: &str) -> Result<(Address, Message)> {
    crate::message::validate_id(id)?;
    for (address, queue) in all_queues(spool)? {
        for part in ["cur", "archive", "new", "dead"] {
            if let Some(e) = queue.entries(part)?.into_iter().find(|e| e.id == id) {
                return Ok((address, queue.read(part, &e.name)?));
            }
        }
    }
    Err(Error::NotFound(format!("no message {id} in any queue")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for (p, t, want) in [
            ("health", "health", true),
            ("health", "health.w1", false),
            ("tasks.*", "tasks.results", true),
            ("tasks.*", "tasks", false),
            ("*", "agent.unhealthy", true),
            ("health.*.cpu", "health.w1.cpu", true),
            ("a*b", "axxbyb", true),
            ("a*b", "axxby", false),
        ] {
            assert_eq!(topic_matches(p, t), want, "{p} ~ {t}");
        }
        assert_eq!(decode_project(&encode_project("org/repo.x")).as_deref(), Some("org/repo.x"));
        assert!(!encode_project("../x").contains('/') && !encode_project("..").contains('.'));
    }
}
