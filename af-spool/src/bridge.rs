//! What `af-bus bridge` keeps on disk to deliver the messages that come in from other hosts
//! exactly once into their local queues, however often an entry comes again (a bridge killed
//! before it acked one to Redis, a sender's bridge that added one twice), a batch at a time with
//! one fsync (group commit).
//!
//! ```text
//! $AF_HOME/bridge/journal/<batch>    a batch of inbound messages being delivered (JSON lines)
//! $AF_HOME/bridge/seen/<batch>       the ids of a batch's messages, delivered (one a line; kept
//!                                    SEEN_KEEP; an empty file named by an id is one delivered)
//! $AF_HOME/bridge/lock               flock: held by the running bridge
//! ```
//!
//! A batch's new messages are first written, all in one file, to `journal/` (fsynced, with its
//! directory, when durable: the batch's one commit), headed by the machine's boot id. Then each
//! is written into its queues' `tmp/` and renamed into `new/`, and the batch's ids are marked in
//! one file of `seen/`, in that order, none of it fsynced. The journal stays until a later
//! `syncfs` has made all of that durable ([`retire_journals`]); a bridge that starts after a crash
//! first replays what journals are left ([`recover`]), and only then reads the network:
//! - after a crash of the bridge alone (the journal's boot is this one), the page cache kept every
//!   write: a message marked seen was delivered (and may since have been taken, acked and
//!   trimmed from the archive, so its absence from the queue means nothing); one not marked is
//!   delivered unless one of its queue's folders holds it;
//! - after a crash of the machine (another boot), no unsynced write can be trusted: each message
//!   is delivered unless one of its queue's folders holds it.
//!
//! So a message whose id is seen is in its queue, or in a journal that delivers it, and an entry
//! that comes again is never delivered twice. The running bridge keeps the seen ids in memory
//! ([`Seen`]), read once when it starts.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::message::{Message, validate_id};
use crate::queue::Queue;
use crate::spool::Spool;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long the record of a delivered message is kept: longer than any entry waits in Redis.
pub const SEEN_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

impl Spool {
    fn journal_dir(&self) -> PathBuf {
        self.bridge_dir().join("journal")
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

/// The ids of the messages delivered from the network, as the running bridge knows them: read
/// once from `seen/`, then kept up to date by [`deliver_once`].
#[derive(Debug, Default)]
pub struct Seen {
    /// Each id, with when it was marked (seconds since the epoch).
    ids: HashMap<String, u64>,
}

impl Seen {
    /// Every id marked in `seen/` (a file of ids, one a line, or an older bridge's empty file
    /// named by its id).
    pub fn load(spool: &Spool) -> Result<Seen> {
        let dir = spool.seen_dir();
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seen::default()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut seen = Seen::default();
        for entry in read.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if name.starts_with('.') || !meta.is_file() {
                continue;
            }
            let at = meta.modified().map_or(0, secs);
            if meta.len() == 0 {
                seen.ids.insert(name, at);
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).map_err(|e| Error::io("read", &entry.path(), e))?;
            seen.ids.extend(text.lines().filter(|l| !l.is_empty()).map(|id| (id.to_owned(), at)));
        }
        Ok(seen)
    }

    /// Whether message `id` was delivered.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Marks `ids` delivered: one file, `seen/<name>`, not fsynced.
    fn mark(&mut self, spool: &Spool, name: &str, ids: &[&str]) -> Result<()> {
        let mut text = ids.join("\n");
        text.push('\n');
        atomic::write(&spool.seen_dir().join(name), text.as_bytes(), Durability::Volatile)?;
        let now = secs(SystemTime::now());
        self.ids.extend(ids.iter().map(|id| ((*id).to_owned(), now)));
        Ok(())
    }

    /// Forgets the ids marked longer ago than `keep` (as [`prune_seen`] removes their files).
    pub fn forget_older(&mut self, keep: Duration) {
        let limit = secs(SystemTime::now()).saturating_sub(keep.as_secs());
        self.ids.retain(|_, at| *at >= limit);
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Delivers inbound messages, each into its queues (none: it is only marked seen), exactly once
/// by message id (see the module's comment). With `durable`, the batch is fsynced once, in its
/// journal; the queues' listeners are woken once each, and their counts written once each.
pub fn deliver_once(
    spool: &Spool,
    seen: &mut Seen,
    batch: &[(Message, Vec<Queue>)],
    durable: bool,
) -> Result<Vec<Delivery>> {
    atomic::create_dir(&spool.seen_dir())?;
    let mut out = Vec::with_capacity(batch.len());
    let mut in_batch = HashSet::new();
    let mut fresh = Vec::new();
    for (m, queues) in batch {
        validate_id(&m.id)?;
        if !in_batch.insert(m.id.as_str()) || seen.contains(&m.id) {
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
    let mut puts = Puts::default();
    for (m, queues) in &fresh {
        let bytes = m.encode()?;
        for q in queues.iter() {
            puts.put(q, m, &bytes)?;
        }
    }
    // Seen only once all are in every queue: a bridge killed in between finds them unseen.
    let ids: Vec<&str> = fresh.iter().map(|(m, _)| m.id.as_str()).collect();
    seen.mark(spool, &file_name(&journal), &ids)?;
    if !durable {
        // Nothing to wait for: the journal only had to outlive a bridge killed in the middle.
        remove(&journal);
    }
    puts.finish();
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
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

/// Deliveries into queues, unsynced: each message written into its queue's `tmp/` (reached once
/// per queue) and renamed into `new/` with the attempts it carries; each queue counted and woken
/// once, at the end.
#[derive(Debug, Default)]
struct Puts {
    /// Each queue's directory, its `tmp/` open, and how many messages went to it.
    queues: Vec<(PathBuf, OwnedFd, usize)>,
}

impl Puts {
    /// Puts one message into `q`, made when missing.
    fn put(&mut self, q: &Queue, m: &Message, bytes: &[u8]) -> Result<()> {
        let i = match self.queues.iter().position(|(d, _, _)| d == q.dir()) {
            Some(i) => i,
            None => {
                q.create()?;
                let fd = crate::beneath::open_dir(&q.dir().join("tmp"))?;
                self.queues.push((q.dir().to_path_buf(), fd, 0));
                self.queues.len() - 1
            }
        };
        let (dir, fd, n) = &mut self.queues[i];
        let tmp = dir.join("tmp");
        let name = atomic::unique_name("m");
        drop(atomic::create_in(fd, &tmp, &name, bytes)?);
        let target = dir.join("new").join(format!("{},{}", m.stem(), m.attempts));
        if let Err(e) = nix::fcntl::renameat(Some(fd.as_raw_fd()), name.as_str(), None, &target) {
            let _ = nix::unistd::unlinkat(Some(fd.as_raw_fd()), name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
            return Err(Error::io("deliver", &target, e.into()));
        }
        *n += 1;
        Ok(())
    }

    /// Counts the deliveries and wakes each queue's listeners.
    fn finish(self) {
        for (dir, _, n) in self.queues {
            let q = Queue::new(dir);
            q.tally().add(&vec!["sent".to_owned(); n]);
            q.notify("bridge");
        }
    }
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
    // What an older bridge staged here, on the way to its queue.
    if let Ok(read) = std::fs::read_dir(spool.bridge_dir().join("staged")) {
        for e in read.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let found = journals(spool);
    if found.is_empty() {
        return Ok(0);
    }
    atomic::create_dir(&spool.seen_dir())?;
    let mut seen = Seen::load(spool)?;
    let mut puts = Puts::default();
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
        let mut ids = Vec::new();
        for line in lines.filter_map(|l| serde_json::from_slice::<Line>(l).ok()) {
            let m = &line.message;
            validate_id(&m.id)?;
            ids.push(m.id.clone());
            if same_boot && seen.contains(&m.id) {
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
                puts.put(&q, m, &bytes)?;
                again += 1;
            }
        }
        if !ids.is_empty() {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            seen.mark(spool, &file_name(j), &ids)?;
        }
    }
    puts.finish();
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
        let mut seen = Seen::default();
        assert_eq!(deliver_once(&spool, &mut seen, &twice, true).unwrap(), [Delivery::Delivered, Delivery::Duplicate]);
        assert_eq!(deliver_once(&spool, &mut seen, &twice[..1], true).unwrap(), [Delivery::Duplicate]);
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
        let mut puts = Puts::default();
        puts.put(&q, &a, &a.encode().unwrap()).unwrap();
        puts.put(&q, &c, b"").unwrap();
        drop(puts);
        assert_eq!(recover(&spool).unwrap(), 2);
        assert!(journals(&spool).is_empty());
        let ids: Vec<String> = q.pending().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(ids, [m.id.clone(), a.id.clone(), b.id.clone(), c.id.clone()]);
        let mut seen = Seen::load(&spool).unwrap();
        assert_eq!(seen.len(), 4, "what recovery delivered is marked seen");
        assert_eq!(deliver_once(&spool, &mut seen, &[(b.clone(), qs.clone())], false).unwrap(), [Delivery::Duplicate]);
        assert_eq!(prune_seen(&spool, Duration::ZERO), 2, "one file of ids a batch");
        // An older bridge's mark: an empty file named by the id.
        std::fs::write(spool.seen_dir().join(&b.id), "").unwrap();
        assert!(Seen::load(&spool).unwrap().contains(&b.id));
        prune_seen(&spool, Duration::ZERO);
        // The bridge killed after a delivery that was since taken, acked and trimmed from the
        // archive: in this boot its seen mark says it was delivered, and it is not again.
        let d = Message::new("t", Kind::Event, Priority::Low, serde_json::json!(5));
        assert_eq!(deliver_once(&spool, &mut seen, &[(d.clone(), qs.clone())], true).unwrap(), [Delivery::Delivered]);
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
