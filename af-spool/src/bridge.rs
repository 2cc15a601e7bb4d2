//! What `af-bus bridge` keeps on disk to deliver the messages that come in from other hosts
//! exactly once into their local queues, however often an entry comes again (a bridge killed
//! before it acked one to Redis, a sender's bridge that added one twice), a batch at a time with
//! one fsync (group commit).
//!
//! ```text
//! $AF_HOME/bridge/journal/<batch>    a batch of inbound messages being delivered (JSON lines)
//! $AF_HOME/bridge/staged/            an inbound message's file on its way into its queue
//! $AF_HOME/bridge/seen/<id>          the message <id> was delivered (empty; kept SEEN_KEEP)
//! $AF_HOME/bridge/lock               flock: held by the running bridge
//! ```
//!
//! A batch's new messages are first written, all in one file, to `journal/` (fsynced, with its
//! directory, when durable: the batch's one commit), headed by the machine's boot id. Then each
//! is renamed into its queues and marked `seen/<id>`, in that order, none of it fsynced. The
//! journal stays until a later `syncfs` has made all of that durable ([`retire_journals`]); a
//! bridge that starts after a crash first replays what journals are left ([`recover`]), and only
//! then reads the network:
//! - after a crash of the bridge alone (the journal's boot is this one), the page cache kept every
//!   write: a message marked seen was delivered (and may since have been taken, acked and
//!   trimmed from the archive, so its absence from the queue means nothing); one not marked is
//!   delivered unless one of its queue's folders holds it;
//! - after a crash of the machine (another boot), no unsynced write can be trusted: each message
//!   is delivered unless one of its queue's folders holds it.
//!
//! So a message whose id is seen is in its queue, or in a journal that delivers it, and an entry
//! that comes again is never delivered twice.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::message::{Message, validate_id};
use crate::queue::Queue;
use crate::spool::Spool;
use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

/// How long the record of a delivered message is kept: longer than any entry waits in Redis.
pub const SEEN_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

impl Spool {
    fn journal_dir(&self) -> PathBuf {
        self.bridge_dir().join("journal")
    }

    fn staged_dir(&self) -> PathBuf {
        self.bridge_dir().join("staged")
    }

    fn seen_dir(&self) -> PathBuf {
        self.bridge_dir().join("seen")
    }
}

/// Takes the bridge's lock: one bridge per spool. Conflict when another holds it.
pub fn lock(spool: &Spool) -> Result<Lock> {
    atomic::create_dir(&spool.bridge_dir())?;
    Lock::try_exclusive(&spool.bridge_dir().join("lock"))?
        .ok_or_else(|| Error::Conflict("another af-bus bridge runs on this spool".into()))
}

/// Whether this spool is bridged to other hosts: its bridge has run once (it made its lock).
/// Topic events and broadcasts posted on a bridged spool are mirrored to the other hosts.
pub fn bridged(spool: &Spool) -> bool {
    spool.bridge_dir().join("lock").exists()
}

/// Makes this spool no longer bridged (the host left the cluster): its lock, held by the caller,
/// is removed, so that topic events and broadcasts are no longer put into the outbox. A bridge
/// run later makes it again.
pub fn unbridge(spool: &Spool, lock: Lock) -> Result<()> {
    let path = spool.bridge_dir().join("lock");
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("remove", &path, e)),
        _ => {}
    }
    drop(lock);
    Ok(())
}

/// What became of one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered now.
    Delivered,
    /// Delivered before (a redelivered entry, or a second copy of it): nothing done.
    Duplicate,
}

/// A journal's first line: the boot it was written in.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    boot: String,
}

/// This boot of the machine (the kernel's boot id); empty when it cannot be read, which no
/// journal's header matches.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// One line of a journal: a message and the queues (relative to the spool) it goes to.
#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    queues: Vec<PathBuf>,
    message: Message,
}

/// Delivers inbound messages, each into its queues (none: it is only marked seen), exactly once
/// by message id (see the module's comment). With `durable`, the batch is fsynced once, in its
/// journal; the queues' listeners are woken once each.
pub fn deliver_once(spool: &Spool, batch: &[(Message, Vec<Queue>)], durable: bool) -> Result<Vec<Delivery>> {
    let seen_dir = spool.seen_dir();
    atomic::create_dir(&seen_dir)?;
    let mut out = Vec::with_capacity(batch.len());
    let mut in_batch = HashSet::new();
    let mut fresh = Vec::new();
    for (m, queues) in batch {
        validate_id(&m.id)?;
        if !in_batch.insert(m.id.as_str()) || seen_dir.join(&m.id).exists() {
            out.push(Delivery::Duplicate);
            continue;
        }
        out.push(Delivery::Delivered);
        fresh.push((m, queues));
    }
    if fresh.is_empty() {
        return Ok(out);
    }
    let journal = write_journal(spool, &fresh, durable)?;
    let mut touched: Vec<&Queue> = Vec::new();
    for (m, queues) in &fresh {
        let bytes = m.encode()?;
        for q in queues.iter() {
            put(spool, q, m, &bytes)?;
            if !touched.iter().any(|t| t.dir() == q.dir()) {
                touched.push(q);
            }
        }
        // Seen only once it is in every queue: a bridge killed in between finds it unseen.
        atomic::write(&seen_dir.join(&m.id), b"", Durability::Volatile)?;
    }
    if !durable {
        // Nothing to wait for: the journal only had to outlive a bridge killed in the middle.
        remove(&journal);
    }
    for q in touched {
        q.notify("bridge");
    }
    Ok(out)
}

/// Writes a journal of `fresh` (durably when `durable`: file and directory). Returns its path.
fn write_journal(spool: &Spool, fresh: &[(&Message, &Vec<Queue>)], durable: bool) -> Result<PathBuf> {
    let dir = spool.journal_dir();
    atomic::create_dir(&dir)?;
    let mut text = serde_json::to_vec(&Header { boot: boot_id() })
        .map_err(|e| Error::Invalid(format!("cannot encode a journal header: {e}")))?;
    text.push(b'\n');
    for (m, queues) in fresh {
        let queues = queues.iter().map(|q| q.dir().strip_prefix(spool.root()).unwrap_or(q.dir()).to_owned()).collect();
        let line = Line { queues, message: (*m).clone() };
        serde_json::to_writer(&mut text, &line)
            .map_err(|e| Error::Invalid(format!("cannot encode a journal line: {e}")))?;
        text.push(b'\n');
    }
    let name = format!("{}.{}", crate::time::Timestamp::now().0, crate::message::new_id());
    let path = dir.join(name);
    atomic::write(&path, &text, if durable { Durability::Durable } else { Durability::Volatile })?;
    Ok(path)
}

/// Puts one message into `q` (made when missing) with the attempts it carries; not fsynced.
fn put(spool: &Spool, q: &Queue, m: &Message, bytes: &[u8]) -> Result<()> {
    let staged = spool.staged_dir().join(atomic::unique_name("in"));
    atomic::create_dir(&spool.staged_dir())?;
    atomic::write(&staged, bytes, Durability::Volatile)?;
    q.adopt(m, &staged)?;
    Ok(())
}

fn remove(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a bridge journal");
    }
}

/// The journals, oldest first.
fn journals(spool: &Spool) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(spool.journal_dir()) else { return Vec::new() };
    let mut out: Vec<PathBuf> = read
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| !n.starts_with('.')))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Makes everything written on the spool's filesystem durable (syncfs), then removes the
/// journals that were there before. Returns how many.
pub fn retire_journals(spool: &Spool) -> Result<usize> {
    let done = journals(spool);
    if done.is_empty() {
        return Ok(0);
    }
    sync_filesystem(spool)?;
    for j in &done {
        remove(j);
    }
    Ok(done.len())
}

fn sync_filesystem(spool: &Spool) -> Result<()> {
    let root = std::fs::File::open(spool.root()).map_err(|e| Error::io("open", spool.root(), e))?;
    nix::unistd::syncfs(root.as_raw_fd()).map_err(|e| Error::io("syncfs", spool.root(), e.into()))
}

/// Finishes what a bridge that died (or a machine that crashed) left: every message of every
/// journal is marked seen and, when none of its queue's folders holds it (or the one there lost
/// its content), delivered; leftover staged files are removed. Run under the bridge's lock
/// before anything is read from the network. Returns how many messages were delivered again.
pub fn recover(spool: &Spool) -> Result<usize> {
    if let Ok(read) = std::fs::read_dir(spool.staged_dir()) {
        for e in read.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let found = journals(spool);
    if found.is_empty() {
        return Ok(0);
    }
    atomic::create_dir(&spool.seen_dir())?;
    let mut again = 0;
    // Each queue's entries, listed once: id -> (folder, file name).
    let mut held: HashMap<PathBuf, Listing> = HashMap::new();
    for j in &found {
        let text = std::fs::read(j).map_err(|e| Error::io("read", j, e))?;
        let mut lines = text.split(|b| *b == b'\n');
        let boot = lines.next().and_then(|l| serde_json::from_slice::<Header>(l).ok()).map(|h| h.boot);
        // The bridge alone crashed: its seen marks are exact (see the module's comment).
        let same_boot = boot.is_some_and(|b| !b.is_empty() && b == boot_id());
        // A journal cut short by a crash: its whole lines are all that can have been delivered.
        for line in lines.filter_map(|l| serde_json::from_slice::<Line>(l).ok()) {
            let m = &line.message;
            validate_id(&m.id)?;
            let seen = spool.seen_dir().join(&m.id);
            if same_boot && seen.exists() {
                continue;
            }
            let bytes = m.encode()?;
            for rel in &line.queues {
                if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                    continue;
                }
                let q = Queue::new(spool.root().join(rel));
                if !q.exists() {
                    continue;
                }
                let entries = match held.entry(rel.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(listing(&q)?),
                };
                if holds(&q, entries, m) {
                    continue;
                }
                put(spool, &q, m, &bytes)?;
                again += 1;
            }
            atomic::write(&seen, b"", Durability::Volatile)?;
        }
    }
    sync_filesystem(spool)?;
    for j in &found {
        remove(j);
    }
    if again > 0 {
        tracing::warn!(messages = again, "delivered again what a crash lost");
    }
    Ok(again)
}

/// A queue's entries by message id: the folder and the file's name.
type Listing = HashMap<String, (&'static str, String)>;

/// Every entry of `q`'s folders, by message id.
fn listing(q: &Queue) -> Result<Listing> {
    let mut out = HashMap::new();
    for part in ["new", "cur", "archive", "dead"] {
        for e in q.entries(part)? {
            out.insert(e.id, (part, e.name));
        }
    }
    Ok(out)
}

/// Whether `q` holds message `m` (listed in `entries`) readable: a waiting file a power cut
/// emptied is removed, to be delivered again.
fn holds(q: &Queue, entries: &Listing, m: &Message) -> bool {
    match entries.get(&m.id) {
        None => false,
        Some((part, name)) if *part == "new" && q.read(part, name).is_err() => {
            let _ = std::fs::remove_file(q.dir().join(part).join(name));
            false
        }
        Some(_) => true,
    }
}

/// Removes the records of messages delivered longer ago than `keep`. Returns how many.
pub fn prune_seen(spool: &Spool, keep: Duration) -> usize {
    let Ok(read) = std::fs::read_dir(spool.seen_dir()) else { return 0 };
    let mut n = 0;
    for entry in read.flatten() {
        let age = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if age.is_some_and(|a| a > keep) && std::fs::remove_file(entry.path()).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Kind, Priority};

    #[test]
    fn a_message_is_delivered_once_and_a_journal_left_by_a_crash_is_replayed() {
        let root = std::env::temp_dir().join(format!("af-bridge-test-{}", crate::message::new_id()));
        let spool = Spool::open(&root).unwrap();
        let q = Queue::new(root.join("q"));
        let m = Message::new("t", Kind::Event, Priority::High, serde_json::json!(1));
        let twice = [(m.clone(), vec![q.clone()]), (m.clone(), vec![q.clone()])];
        assert_eq!(deliver_once(&spool, &twice, true).unwrap(), [Delivery::Delivered, Delivery::Duplicate]);
        assert_eq!(deliver_once(&spool, &twice[..1], true).unwrap(), [Delivery::Duplicate]);
        assert_eq!(q.pending().unwrap().len(), 1);
        assert_eq!(journals(&spool).len(), 1, "kept until the filesystem is synced");
        assert_eq!(retire_journals(&spool).unwrap(), 1);
        assert!(journals(&spool).is_empty());
        // A crash after the journal: one message delivered, one lost, one whose file lost its
        // content; recovery delivers the two and leaves the first alone.
        let (a, b, c) = (
            Message::new("t", Kind::Event, Priority::Low, serde_json::json!(2)),
            Message::new("t", Kind::Event, Priority::Low, serde_json::json!(3)),
            Message::new("t", Kind::Event, Priority::Low, serde_json::json!(4)),
        );
        let qs = vec![q.clone()];
        write_journal(&spool, &[(&a, &qs), (&b, &qs), (&c, &qs)], true).unwrap();
        put(&spool, &q, &a, &a.encode().unwrap()).unwrap();
        put(&spool, &q, &c, b"").unwrap();
        assert_eq!(recover(&spool).unwrap(), 2);
        assert!(journals(&spool).is_empty());
        let ids: Vec<String> = q.pending().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(ids, [m.id.clone(), a.id.clone(), b.id.clone(), c.id.clone()]);
        assert_eq!(deliver_once(&spool, &[(b.clone(), qs.clone())], false).unwrap(), [Delivery::Duplicate]);
        assert_eq!(prune_seen(&spool, Duration::ZERO), 4);
        // The bridge killed after a delivery that was since taken, acked and trimmed from the
        // archive: in this boot its seen mark says it was delivered, and it is not again.
        let d = Message::new("t", Kind::Event, Priority::Low, serde_json::json!(5));
        assert_eq!(deliver_once(&spool, &[(d.clone(), qs.clone())], true).unwrap(), [Delivery::Delivered]);
        for e in q.entries("new").unwrap() {
            std::fs::remove_file(q.dir().join("new").join(&e.name)).unwrap();
        }
        assert_eq!(recover(&spool).unwrap(), 0, "delivered once, in this boot");
        assert!(q.pending().unwrap().is_empty());
        // The same journal from another boot (a power cut): its seen marks cannot be trusted,
        // and what no folder holds is delivered again.
        write_journal(&spool, &[(&d, &qs)], true).unwrap();
        let j = journals(&spool).pop().unwrap();
        let text = std::fs::read_to_string(&j).unwrap();
        let (_, rest) = text.split_once('\n').unwrap();
        std::fs::write(&j, format!("{{\"boot\":\"another\"}}\n{rest}")).unwrap();
        assert_eq!(recover(&spool).unwrap(), 1, "delivered again after a power cut");
        let _ = std::fs::remove_dir_all(&root);
    }
}
