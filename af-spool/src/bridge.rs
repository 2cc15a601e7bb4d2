//! What `af-bus bridge` keeps on disk to deliver the messages that come in from other hosts
//! exactly once into their local queues, however often an entry comes again (a bridge killed
//! before it acked one to Redis, a sender's bridge that added one twice): a batch at a time with
//! one fsync (group commit) and, per message, one file created and renamed into each of its
//! queues.
//!
//! ```text
//! $AF_HOME/bridge/journal/<batch>    a batch of inbound messages being delivered (JSON lines)
//! $AF_HOME/bridge/staged/<id>.<n>    message <id>'s file on its way into its n-th queue
//! $AF_HOME/bridge/seen-log/<ms>      the ids of the messages delivered, one a line, appended a
//!                                    batch at a time; a new file (named by the Unix ms it was
//!                                    begun) at every start and every SEEN_SPAN, removed once
//!                                    its last line is older than SEEN_KEEP
//! $AF_HOME/bridge/seen/<id>          (older versions) the message <id> was delivered (empty):
//!                                    still read, removed after SEEN_KEEP
//! $AF_HOME/bridge/lock               flock: held by the running bridge
//! ```
//!
//! The running bridge ([`Inbound`]) holds the seen log's ids in memory. A batch's new messages
//! are delivered in four steps, none but the first fsynced:
//! 1. all written, in one file, to `journal/` (fsynced, with its directory, when durable: the
//!    batch's one commit), headed by the machine's boot id;
//! 2. each written to `staged/<id>.<n>`, one file per queue;
//! 3. their ids appended to the seen log, in one write;
//! 4. each staged file renamed into its queue's `new/`.
//!
//! The journal stays until a later `syncfs` has made all of that durable
//! ([`Inbound::retire_journals`]); a bridge that starts after a crash first replays what journals
//! are left ([`Inbound::open`]), and only then reads the network:
//! - after a crash of the bridge alone (the journal's boot is this one), the page cache kept every
//!   write: a message not in the seen log was renamed into none of its queues (step 3 comes before
//!   step 4) and is delivered unless one of its queue's folders holds it; one in the seen log was
//!   renamed into each queue whose staged file is gone (and may since have been taken, acked and
//!   trimmed from the archive, so its absence from the queue means nothing), and is delivered
//!   into those whose staged file is left;
//! - after a crash of the machine (another boot), no unsynced write can be trusted: each message
//!   is delivered unless one of its queue's folders holds it.
//!
//! So a message whose id is seen is in its queues, or in a journal that delivers it, and an entry
//! that comes again is never delivered twice.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::message::{Message, validate_id};
use crate::queue::Queue;
use crate::spool::Spool;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the record of a delivered message is kept: longer than any entry waits in Redis.
pub const SEEN_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long one file of the seen log is appended to before the next is begun (and the files
/// older than [`SEEN_KEEP`] removed).
pub const SEEN_SPAN: Duration = Duration::from_secs(3600);

impl Spool {
    fn journal_dir(&self) -> PathBuf {
        self.bridge_dir().join("journal")
    }

    fn staged_dir(&self) -> PathBuf {
        self.bridge_dir().join("staged")
    }

    /// Where older versions marked each delivered message with an empty file.
    fn seen_dir(&self) -> PathBuf {
        self.bridge_dir().join("seen")
    }

    fn seen_log_dir(&self) -> PathBuf {
        self.bridge_dir().join("seen-log")
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

/// What [`Inbound::open`] did before the bridge reads the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Files of the seen record removed as older than the time kept.
    pub pruned: usize,
    /// Deliveries made again from the journals a crash left.
    pub recovered: usize,
}

/// The inbound side of the running bridge: its lock, the ids of the messages delivered (the seen
/// log, in memory) and the journals (see the module's comment). Shared by the threads that
/// deliver; one batch at a time.
pub struct Inbound {
    spool: Spool,
    keep: Duration,
    span: Duration,
    /// `bridge/staged/`, open.
    staged: OwnedFd,
    state: Mutex<State>,
    _lock: Lock,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").field("spool", &self.spool.root()).finish_non_exhaustive()
    }
}

/// What the delivering threads share.
struct State {
    /// Every id delivered and kept, with the seen log's file it is in (0: an older version's
    /// marker, kept in memory until the bridge starts again).
    seen: HashMap<Box<str>, u64>,
    /// The seen log's file appended to.
    log: SeenLog,
    /// A batch failed after its journal was written: nothing more is delivered, and no journal
    /// retired, until a bridge starts again and finishes it.
    broken: bool,
}

/// The seen log's file being appended to.
struct SeenLog {
    file: File,
    path: PathBuf,
    /// Its name: the Unix ms it was begun.
    name: u64,
    begun: Instant,
}

impl Inbound {
    /// Starts the inbound side of the bridge that holds `lock`: removes the records of messages
    /// delivered longer ago than `keep`, reads the rest, begins a new file of the seen log, and
    /// finishes the batches a crash left (their journals replayed, made durable with a syncfs,
    /// removed). Run before anything is read from the network.
    pub fn open(spool: &Spool, lock: Lock, keep: Duration) -> Result<(Inbound, Opened)> {
        for dir in [spool.staged_dir(), spool.seen_log_dir(), spool.journal_dir()] {
            atomic::create_dir(&dir)?;
        }
        let staged = crate::beneath::open_dir(&spool.staged_dir())?;
        let pruned = prune_markers(spool, keep) + prune_log(spool, keep, None).len();
        let mut seen = HashMap::new();
        load_markers(spool, &mut seen);
        load_log(spool, &mut seen)?;
        let log = SeenLog::begin(spool)?;
        let inbound = Inbound {
            spool: spool.clone(),
            keep,
            span: SEEN_SPAN,
            staged,
            state: Mutex::new(State { seen, log, broken: false }),
            _lock: lock,
        };
        let recovered = inbound.recover()?;
        Ok((inbound, Opened { pruned, recovered }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            // A thread panicked while it delivered: as after a failed batch.
            Err(poisoned) => {
                let mut s = poisoned.into_inner();
                s.broken = true;
                s
            }
        }
    }

    /// Delivers inbound messages, each into its queues (none: it is only marked seen), exactly
    /// once by message id (see the module's comment). With `durable`, the batch is fsynced once,
    /// in its journal; the queues' listeners are woken once each. After a failure half way,
    /// every later call fails until a bridge starts again.
    pub fn deliver_once(&self, batch: &[(Message, Vec<Queue>)], durable: bool) -> Result<Vec<Delivery>> {
        let mut state = self.state();
        if state.broken {
            return Err(Error::System("an inbound batch failed half way; the bridge must start again".into()));
        }
        let mut out = Vec::with_capacity(batch.len());
        let mut in_batch = HashSet::new();
        let mut fresh = Vec::new();
        for (m, queues) in batch {
            validate_id(&m.id)?;
            if !in_batch.insert(m.id.as_str()) || state.seen.contains_key(m.id.as_str()) {
                out.push(Delivery::Duplicate);
                continue;
            }
            out.push(Delivery::Delivered);
            fresh.push((m, queues));
        }
        if fresh.is_empty() {
            return Ok(out);
        }
        if state.log.begun.elapsed() >= self.span {
            self.rotate(&mut state)?;
        }
        let journal = write_journal(&self.spool, &fresh, durable)?;
        let delivered = self.stage_all(&fresh).and_then(|moves| {
            state.record(fresh.iter().map(|(m, _)| m.id.as_str()))?;
            moves.publish(&self.staged)
        });
        if let Err(e) = delivered {
            state.broken = true;
            return Err(e);
        }
        if !durable {
            // Nothing to wait for: the journal only had to outlive a bridge killed in the middle.
            remove(&journal);
        }
        Ok(out)
    }

    /// Step 2: writes each message's file for each of its queues into `staged/`.
    fn stage_all(&self, fresh: &[(&Message, &Vec<Queue>)]) -> Result<Moves> {
        let mut moves = Moves::default();
        for (m, queues) in fresh {
            let bytes = encode(m)?;
            for (n, q) in queues.iter().enumerate() {
                let name = staged_name(&m.id, n);
                self.stage(&name, &bytes)?;
                moves.add(q, name, m);
            }
        }
        Ok(moves)
    }

    /// Writes `bytes` to `staged/<name>`, replacing what a killed bridge left there.
    fn stage(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.spool.staged_dir();
        match atomic::create_in(&self.staged, &dir, name, bytes) {
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(nix::libc::EEXIST) => {
                let _ =
                    nix::unistd::unlinkat(Some(self.staged.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
                atomic::create_in(&self.staged, &dir, name, bytes).map(drop)
            }
            other => other.map(drop),
        }
    }

    /// Whether `staged/<name>` is there.
    fn is_staged(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(Some(self.staged.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// Begins a new file of the seen log, and forgets the files (and the ids in them) whose last
    /// line is older than the time kept.
    fn rotate(&self, state: &mut State) -> Result<()> {
        state.log = SeenLog::begin(&self.spool)?;
        let gone = prune_log(&self.spool, self.keep, Some(state.log.name));
        prune_markers(&self.spool, self.keep);
        if !gone.is_empty() {
            state.seen.retain(|_, file| !gone.contains(file));
        }
        Ok(())
    }

    /// Makes everything written on the spool's filesystem durable (syncfs), then removes the
    /// journals of the batches delivered before. Returns how many.
    pub fn retire_journals(&self) -> Result<usize> {
        let done = {
            // Listed between two batches: every journal listed is of a batch delivered whole.
            let state = self.state();
            if state.broken {
                return Ok(0);
            }
            journals(&self.spool)
        };
        if done.is_empty() {
            return Ok(0);
        }
        sync_filesystem(&self.spool)?;
        for j in &done {
            remove(j);
        }
        Ok(done.len())
    }

    /// Finishes what a bridge that died (or a machine that crashed) left: replays every journal
    /// (see the module's comment), makes it durable and removes the journals and what is left
    /// staged. Returns how many deliveries were made again.
    fn recover(&self) -> Result<usize> {
        let found = journals(&self.spool);
        let mut again = 0;
        if !found.is_empty() {
            let mut state = self.state();
            let this_boot = boot_id();
            // Each queue's entries, listed once: id -> (folder, file name).
            let mut held: HashMap<PathBuf, Listing> = HashMap::new();
            for j in &found {
                let text = std::fs::read(j).map_err(|e| Error::io("read", j, e))?;
                let mut lines = text.split(|b| *b == b'\n');
                let boot = lines.next().and_then(|l| serde_json::from_slice::<Header>(l).ok()).map(|h| h.boot);
                // The bridge alone crashed: the seen log and staged files are exact.
                let same_boot = boot.is_some_and(|b| !b.is_empty() && b == this_boot);
                let mut moves = Moves::default();
                let mut unseen = Vec::new();
                // A journal cut short by a crash: its whole lines are all that can have been delivered.
                for line in lines.filter_map(|l| serde_json::from_slice::<Line>(l).ok()) {
                    let m = &line.message;
                    validate_id(&m.id)?;
                    let seen = state.seen.contains_key(m.id.as_str());
                    let bytes = encode(m)?;
                    for (n, rel) in line.queues.iter().enumerate() {
                        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                            continue;
                        }
                        let q = Queue::new(self.spool.root().join(rel));
                        if !q.exists() {
                            continue;
                        }
                        let name = staged_name(&m.id, n);
                        let deliver = if same_boot && seen {
                            self.is_staged(&name)
                        } else {
                            let entries = match held.entry(rel.clone()) {
                                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                                std::collections::hash_map::Entry::Vacant(e) => e.insert(listing(&q)?),
                            };
                            !holds(&q, entries, m)
                        };
                        if deliver {
                            self.stage(&name, &bytes)?;
                            moves.add(&q, name, m);
                        }
                    }
                    if !seen {
                        unseen.push(m.id.clone());
                    }
                }
                again += moves.len();
                state.record(unseen.iter().map(String::as_str))?;
                moves.publish(&self.staged)?;
            }
            drop(state);
            sync_filesystem(&self.spool)?;
            for j in &found {
                remove(j);
            }
        }
        // Whatever is left staged belongs to no journal: delivered, or replaced just now.
        if let Ok(read) = std::fs::read_dir(self.spool.staged_dir()) {
            for e in read.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        if again > 0 {
            tracing::warn!(deliveries = again, "delivered again what a crash lost");
        }
        Ok(again)
    }
}

impl State {
    /// Step 3: appends `ids` to the seen log in one write, and remembers them.
    fn record<'a>(&mut self, ids: impl Iterator<Item = &'a str> + Clone) -> Result<()> {
        let mut text = String::new();
        for id in ids.clone() {
            text.push_str(id);
            text.push('\n');
        }
        if text.is_empty() {
            return Ok(());
        }
        self.log.file.write_all(text.as_bytes()).map_err(|e| Error::io("append to", &self.log.path, e))?;
        for id in ids {
            self.seen.insert(id.into(), self.log.name);
        }
        Ok(())
    }
}

impl SeenLog {
    /// A new, empty file of the seen log, named by the time now (later, if that name is taken).
    fn begin(spool: &Spool) -> Result<SeenLog> {
        let dir = spool.seen_log_dir();
        let dirfd = crate::beneath::open_dir(&dir)?;
        let mut name = crate::time::Timestamp::now().0;
        loop {
            let flags = OFlag::O_WRONLY
                | OFlag::O_APPEND
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
            match nix::fcntl::openat(Some(dirfd.as_raw_fd()), name.to_string().as_str(), flags, mode) {
                // SAFETY: openat just returned this descriptor, and nothing else owns it.
                Ok(fd) => {
                    let file = unsafe { File::from_raw_fd(fd) };
                    return Ok(SeenLog { file, path: dir.join(name.to_string()), name, begun: Instant::now() });
                }
                Err(Errno::EEXIST) => name += 1,
                Err(e) => return Err(Error::io("create", &dir.join(name.to_string()), e.into())),
            }
        }
    }
}

/// The seen log's files: each one's name and path.
fn log_files(spool: &Spool) -> Vec<(u64, PathBuf)> {
    let Ok(read) = std::fs::read_dir(spool.seen_log_dir()) else { return Vec::new() };
    read.flatten().filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path()))).collect()
}

/// Whether the file at `path` was last written longer ago than `keep`.
fn older_than(path: &Path, keep: Duration) -> bool {
    std::fs::symlink_metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > keep)
}

/// Removes the seen log's files last appended to longer ago than `keep`, but the one being
/// begun; their names.
fn prune_log(spool: &Spool, keep: Duration, begun: Option<u64>) -> Vec<u64> {
    log_files(spool)
        .into_iter()
        .filter(|(name, path)| Some(*name) != begun && older_than(path, keep) && std::fs::remove_file(path).is_ok())
        .map(|(name, _)| name)
        .collect()
}

/// Reads the ids of every file of the seen log. A line a crash cut short (the last, with no
/// newline) is skipped: its message's journal is replayed.
fn load_log(spool: &Spool, seen: &mut HashMap<Box<str>, u64>) -> Result<()> {
    for (name, path) in log_files(spool) {
        let Some(mut f) = crate::beneath::open_read(&path)? else { continue };
        let mut text = Vec::new();
        f.read_to_end(&mut text).map_err(|e| Error::io("read", &path, e))?;
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(&[][..], |end| &text[..end]);
        for id in whole.split(|b| *b == b'\n').filter_map(|l| std::str::from_utf8(l).ok()) {
            if validate_id(id).is_ok() {
                seen.insert(id.into(), name);
            }
        }
    }
    Ok(())
}

/// Reads the marks older versions left in `seen/`.
fn load_markers(spool: &Spool, seen: &mut HashMap<Box<str>, u64>) {
    let Ok(read) = std::fs::read_dir(spool.seen_dir()) else { return };
    for e in read.flatten() {
        if let Some(id) = e.file_name().to_str().filter(|id| validate_id(id).is_ok()) {
            seen.insert(id.into(), 0);
        }
    }
}

/// Removes the marks of older versions made longer ago than `keep`. Returns how many.
fn prune_markers(spool: &Spool, keep: Duration) -> usize {
    let Ok(read) = std::fs::read_dir(spool.seen_dir()) else { return 0 };
    read.flatten().filter(|e| older_than(&e.path(), keep) && std::fs::remove_file(e.path()).is_ok()).count()
}

/// A message's bytes in its queue (its size was checked when it came in).
fn encode(m: &Message) -> Result<Vec<u8>> {
    serde_json::to_vec(m).map_err(|e| Error::Invalid(format!("cannot encode message: {e}")))
}

/// The staged file of message `id` for its `n`-th queue.
fn staged_name(id: &str, n: usize) -> String {
    format!("{id}.{n}")
}

/// Staged files to rename into their queues (step 4), by queue.
#[derive(Default)]
struct Moves {
    queues: Vec<(Queue, Vec<(String, String)>)>,
    by_dir: HashMap<PathBuf, usize>,
}

impl Moves {
    /// The staged file `name` of message `m`, for `q`.
    fn add(&mut self, q: &Queue, name: String, m: &Message) {
        let i = *self.by_dir.entry(q.dir().to_path_buf()).or_insert_with(|| {
            self.queues.push((q.clone(), Vec::new()));
            self.queues.len() - 1
        });
        self.queues[i].1.push((name, format!("{},{}", m.stem(), m.attempts)));
    }

    fn len(&self) -> usize {
        self.queues.iter().map(|(_, files)| files.len()).sum()
    }

    /// Renames every staged file into its queue's `new/` (the queue made when missing), counts
    /// them sent, and wakes each queue's listeners once.
    fn publish(&self, staged: &OwnedFd) -> Result<()> {
        for (q, files) in &self.queues {
            let new = q.dir().join("new");
            if !q.exists() {
                q.create()?;
            }
            let mut dir = crate::beneath::open_dir(&new)?;
            for (name, target) in files {
                let rename = |dir: &OwnedFd| {
                    nix::fcntl::renameat(
                        Some(staged.as_raw_fd()),
                        name.as_str(),
                        Some(dir.as_raw_fd()),
                        target.as_str(),
                    )
                };
                match rename(&dir) {
                    Ok(()) => {}
                    // The queue was removed meanwhile (a requester gone): made again.
                    Err(Errno::ENOENT) if !q.exists() => {
                        q.create()?;
                        dir = crate::beneath::open_dir(&new)?;
                        rename(&dir).map_err(|e| Error::io("deliver", &new.join(target), e.into()))?;
                    }
                    Err(e) => return Err(Error::io("deliver", &new.join(target), e.into())),
                }
            }
            q.tally().add(&vec!["sent".to_owned(); files.len()]);
        }
        for (q, _) in &self.queues {
            q.notify("bridge");
        }
        Ok(())
    }
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

fn remove(path: &Path) {
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

fn sync_filesystem(spool: &Spool) -> Result<()> {
    let root = std::fs::File::open(spool.root()).map_err(|e| Error::io("open", spool.root(), e))?;
    nix::unistd::syncfs(root.as_raw_fd()).map_err(|e| Error::io("syncfs", spool.root(), e.into()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Kind, Priority};

    fn spool() -> Spool {
        Spool::open(&std::env::temp_dir().join(format!("af-bridge-test-{}", crate::message::new_id()))).unwrap()
    }

    /// A bridge starting on `spool`: its inbound side and what it recovered.
    fn start(spool: &Spool) -> (Inbound, usize) {
        let (inbound, opened) = Inbound::open(spool, lock(spool).unwrap(), SEEN_KEEP).unwrap();
        (inbound, opened.recovered)
    }

    fn message(n: i64) -> Message {
        Message::new("t", Kind::Event, Priority::Low, serde_json::json!(n))
    }

    /// The payloads waiting in `q`, in queue order.
    fn waiting(q: &Queue) -> Vec<serde_json::Value> {
        q.pending().unwrap().into_iter().map(|m| m.payload).collect()
    }

    fn left(dir: PathBuf) -> usize {
        std::fs::read_dir(dir).map_or(0, |r| r.count())
    }

    #[test]
    fn a_message_is_delivered_once_and_remembered_across_restarts() {
        let spool = spool();
        let (inbound, _) = start(&spool);
        let q = Queue::new(spool.root().join("q"));
        let m = message(1);
        let twice = [(m.clone(), vec![q.clone()]), (m.clone(), vec![q.clone()])];
        assert_eq!(inbound.deliver_once(&twice, true).unwrap(), [Delivery::Delivered, Delivery::Duplicate]);
        assert_eq!(inbound.deliver_once(&twice[..1], true).unwrap(), [Delivery::Duplicate]);
        assert_eq!(waiting(&q), [serde_json::json!(1)]);
        assert_eq!(journals(&spool).len(), 1, "kept until the filesystem is synced");
        assert_eq!(inbound.retire_journals().unwrap(), 1);
        assert!(journals(&spool).is_empty());
        assert_eq!(left(spool.staged_dir()), 0);
        // Started again: the seen log is read back; a mark of an older version counts too.
        drop(inbound);
        let old = message(2);
        atomic::create_dir(&spool.seen_dir()).unwrap();
        std::fs::write(spool.seen_dir().join(&old.id), b"").unwrap();
        let (inbound, recovered) = start(&spool);
        assert_eq!(recovered, 0);
        let again = [(m.clone(), vec![q.clone()]), (old.clone(), vec![q.clone()])];
        assert_eq!(inbound.deliver_once(&again, true).unwrap(), [Delivery::Duplicate, Delivery::Duplicate]);
        // A message for no queue is only marked seen.
        let none = message(3);
        assert_eq!(inbound.deliver_once(&[(none.clone(), vec![])], false).unwrap(), [Delivery::Delivered]);
        assert_eq!(inbound.deliver_once(&[(none, vec![])], false).unwrap(), [Delivery::Duplicate]);
        assert!(journals(&spool).is_empty(), "a volatile batch leaves no journal");
        // Once every file of the seen log is older than the time kept, a new one is begun and the
        // old ones are forgotten, the older version's marks removed.
        drop(inbound);
        std::thread::sleep(Duration::from_millis(20));
        let (opened, pruned) =
            Inbound::open(&spool, lock(&spool).unwrap(), Duration::ZERO).map(|(i, o)| (i, o.pruned)).unwrap();
        assert_eq!(pruned, 3, "two files of the seen log and one mark");
        assert_eq!(opened.deliver_once(&[(m, vec![q.clone()])], true).unwrap(), [Delivery::Delivered]);
        let _ = std::fs::remove_dir_all(spool.root());
    }

    #[test]
    fn the_seen_log_is_begun_anew_each_span_and_forgets_what_is_older_than_kept() {
        let spool = spool();
        let (mut inbound, _) = start(&spool);
        (inbound.span, inbound.keep) = (Duration::ZERO, Duration::ZERO);
        let q = Queue::new(spool.root().join("q"));
        let (a, b) = (message(1), message(2));
        assert_eq!(inbound.deliver_once(&[(a.clone(), vec![q.clone()])], false).unwrap(), [Delivery::Delivered]);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(inbound.deliver_once(&[(b.clone(), vec![q.clone()])], false).unwrap(), [Delivery::Delivered]);
        assert_eq!(log_files(&spool).len(), 1, "the file with a was removed");
        inbound.keep = SEEN_KEEP;
        assert_eq!(inbound.deliver_once(&[(a, vec![q.clone()])], false).unwrap(), [Delivery::Delivered]);
        assert_eq!(inbound.deliver_once(&[(b, vec![q])], false).unwrap(), [Delivery::Duplicate]);
        let _ = std::fs::remove_dir_all(spool.root());
    }

    /// How far a batch got when its bridge was killed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd)]
    enum Killed {
        AfterJournal,
        AfterStaging,
        HalfWayThroughSeen,
        AfterSeen,
        HalfWayThroughRenames,
        AfterRenames,
        AfterRenamesAndTaken,
    }

    #[test]
    fn a_bridge_killed_at_any_step_of_a_batch_delivers_each_message_once() {
        use Killed::*;
        let points = [
            (AfterJournal, 3),
            (AfterStaging, 3),
            (HalfWayThroughSeen, 3),
            (AfterSeen, 3),
            (HalfWayThroughRenames, 2),
            (AfterRenames, 0),
            (AfterRenamesAndTaken, 0),
        ];
        for (killed, again) in points {
            let spool = spool();
            let (inbound, _) = start(&spool);
            let (q, q2) = (Queue::new(spool.root().join("q")), Queue::new(spool.root().join("q2")));
            let (a, b) = (message(1), message(2));
            let (qa, qb) = (vec![q.clone(), q2.clone()], vec![q.clone()]);
            let fresh = [(&a, &qa), (&b, &qb)];
            q.create().unwrap();
            q2.create().unwrap();
            write_journal(&spool, &fresh, true).unwrap();
            if killed >= AfterStaging {
                let mut moves = inbound.stage_all(&fresh).unwrap();
                let mut state = inbound.state();
                if killed == HalfWayThroughSeen {
                    // One write cut short: a's line whole, b's not.
                    state.log.file.write_all(format!("{}\n{}", a.id, &b.id[..5]).as_bytes()).unwrap();
                } else if killed >= AfterSeen {
                    state.record([a.id.as_str(), b.id.as_str()].into_iter()).unwrap();
                }
                if killed == HalfWayThroughRenames {
                    // a into q, not yet b into q nor a into q2.
                    moves.queues[0].1.truncate(1);
                    moves.queues.truncate(1);
                }
                if killed >= HalfWayThroughRenames {
                    moves.publish(&inbound.staged).unwrap();
                }
            }
            if killed == AfterRenamesAndTaken {
                for c in q
                    .claim(10, Duration::from_secs(60))
                    .unwrap()
                    .into_iter()
                    .chain(q2.claim(10, Duration::from_secs(60)).unwrap())
                {
                    assert!(c.message.id == a.id || c.message.id == b.id);
                }
                for queue in [&q, &q2] {
                    let receipts: Vec<String> = queue.entries("cur").unwrap().into_iter().map(|e| e.name).collect();
                    let receipts: Vec<&str> = receipts.iter().map(String::as_str).collect();
                    queue.ack_receipts(&receipts).unwrap();
                    queue.prune(0).unwrap();
                }
            }
            drop(inbound);
            let (inbound, recovered) = start(&spool);
            assert_eq!(recovered, again, "killed {killed:?}");
            let want: &[i64] = if killed == AfterRenamesAndTaken { &[] } else { &[1, 2] };
            assert_eq!(waiting(&q), want.iter().map(|n| serde_json::json!(n)).collect::<Vec<_>>(), "killed {killed:?}");
            assert_eq!(waiting(&q2).len(), want.len() / 2, "killed {killed:?}");
            assert!(journals(&spool).is_empty() && left(spool.staged_dir()) == 0, "killed {killed:?}");
            let batch = [(a.clone(), qa.clone()), (b.clone(), qb.clone())];
            assert_eq!(inbound.deliver_once(&batch, true).unwrap(), [Delivery::Duplicate; 2], "killed {killed:?}");
            let _ = std::fs::remove_dir_all(spool.root());
        }
    }

    #[test]
    fn after_a_power_cut_what_no_folder_holds_is_delivered_again() {
        let spool = spool();
        let (inbound, _) = start(&spool);
        let q = Queue::new(spool.root().join("q"));
        let (a, b, c) = (message(1), message(2), message(3));
        let qs = vec![q.clone()];
        // Delivered, then taken: after a power cut its seen mark cannot be trusted.
        assert_eq!(inbound.deliver_once(&[(a.clone(), qs.clone())], true).unwrap(), [Delivery::Delivered]);
        for e in q.entries("new").unwrap() {
            std::fs::remove_file(q.dir().join("new").join(&e.name)).unwrap();
        }
        // b in its queue; c there too, but its file lost its content.
        write_journal(&spool, &[(&b, &qs), (&c, &qs)], true).unwrap();
        for m in [&b, &c] {
            let bytes = if m.id == b.id { encode(m).unwrap() } else { Vec::new() };
            std::fs::write(q.dir().join("new").join(format!("{},0", m.stem())), bytes).unwrap();
        }
        for j in journals(&spool) {
            let text = std::fs::read_to_string(&j).unwrap();
            let (_, rest) = text.split_once('\n').unwrap();
            std::fs::write(&j, format!("{{\"boot\":\"another\"}}\n{rest}")).unwrap();
        }
        drop(inbound);
        let (_inbound, recovered) = start(&spool);
        assert_eq!(recovered, 2, "a and c delivered again, b left alone");
        assert_eq!(waiting(&q), [1, 2, 3].map(|n| serde_json::json!(n)));
        let _ = std::fs::remove_dir_all(spool.root());
    }

    #[test]
    fn a_batch_that_fails_half_way_is_finished_by_the_next_bridge_and_its_journal_kept_till_then() {
        let spool = spool();
        let (inbound, _) = start(&spool);
        let q = Queue::new(spool.root().join("q"));
        // A file where the queue's new/ belongs: the rename fails after the ids were recorded.
        q.create().unwrap();
        std::fs::remove_dir(q.dir().join("new")).unwrap();
        std::fs::write(q.dir().join("new"), b"").unwrap();
        let m = message(1);
        assert!(inbound.deliver_once(&[(m.clone(), vec![q.clone()])], true).is_err());
        assert!(inbound.deliver_once(&[(message(2), vec![q.clone()])], true).is_err(), "nothing more");
        assert_eq!(inbound.retire_journals().unwrap(), 0, "its journal is kept");
        drop(inbound);
        std::fs::remove_file(q.dir().join("new")).unwrap();
        std::fs::create_dir(q.dir().join("new")).unwrap();
        let (inbound, recovered) = start(&spool);
        assert_eq!(recovered, 1);
        assert_eq!(waiting(&q), [serde_json::json!(1)]);
        assert_eq!(inbound.deliver_once(&[(m, vec![q])], true).unwrap(), [Delivery::Duplicate]);
        let _ = std::fs::remove_dir_all(spool.root());
    }
}
