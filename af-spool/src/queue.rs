//! One message queue, Maildir's way: a message is written into `tmp/` and delivered by its rename
//! into `new/`; a receiver claims it by renaming it into `cur/` (atomic: two receivers never claim
//! the same one); an ack renames it into `archive/` (history, pruned lazily in batches); a claim
//! whose visibility timeout passes goes back to `new/` with its attempt count raised; too many
//! attempts, or an expired time to live, move it to `dead/`.
//!
//! The content of a queued file never changes; what changes lives in its name, so every step is
//! one rename:
//!
//! ```text
//! new/<rank>-<id>,<attempts>                  waiting (rank 0 = critical … 3 = low)
//! cur/<rank>-<id>,<attempts>,<deadline-ms>    claimed until the deadline
//! dead/<rank>-<id>,<attempts>,<reason>        dead letter (expired, attempts, unreadable)
//! archive/<rank>-<id>,<attempts>              acked
//! notify.d/                                   fifodir: woken after every delivery
//! new/<rank>-<id>+<count>,<attempts>          a bundle: <count> (2 or more) messages of one
//!                                             priority in one file, JSON lines (the bridge's
//!                                             outbox only; see [`Bundle`])
//! tally, tally.json                           counters: sent, delivered, acked, retried, dead,
//!                                             and the delivery latency (see tally.rs)
//! ```

use crate::error::{Error, Result};
use crate::fifodir::{Fifodir, Listener};
use crate::message::{Message, Priority};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many failed deliveries send a message to the dead letters (override: `AF_BUS_MAX_ATTEMPTS`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How many acked messages a queue keeps for `history` (override: `AF_BUS_HISTORY`).
pub const DEFAULT_HISTORY: usize = 1000;

/// The attempts limit in force.
pub fn max_attempts() -> u32 {
    std::env::var("AF_BUS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS)
}

fn history_limit() -> usize {
    std::env::var("AF_BUS_HISTORY").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_HISTORY)
}

/// How often a waiting receiver looks at its queue even when nothing woke it (a lost wake-up, an
/// expired claim coming back).
pub const RESCAN: Duration = Duration::from_millis(500);

/// At most this many messages go into one bundle (see [`Queue::bundled`]).
pub const BUNDLE_MAX: usize = 256;

/// A bundle is closed once it holds this many bytes.
pub const BUNDLE_MAX_BYTES: usize = 1 << 20;

/// A queued file's name, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The whole file name.
    pub name: String,
    /// The message's priority.
    pub priority: Priority,
    /// The message's id.
    pub id: String,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// The third field: a claim's deadline (ms) or a dead letter's reason.
    pub extra: Option<String>,
}

impl Entry {
    /// Parses a queued file's name; None for anything else (hidden files, strays).
    pub fn parse(name: &str) -> Option<Entry> {
        let mut parts = name.splitn(3, ',');
        let stem = parts.next()?;
        let attempts = parts.next()?.parse().ok()?;
        let extra = parts.next().map(str::to_owned);
        let (rank, id) = stem.split_once('-')?;
        let priority = Priority::from_rank(*rank.as_bytes().first()?).filter(|_| rank.len() == 1)?;
        Some(Entry { name: name.to_owned(), priority, id: id.to_owned(), attempts, extra })
    }

    fn stem(&self) -> String {
        format!("{}-{}", self.priority.rank(), self.id)
    }

    /// How many messages the file holds: a bundle's count, else 1.
    pub fn count(&self) -> usize {
        self.id.rsplit_once('+').and_then(|(_, n)| n.parse().ok()).filter(|&n| n > 1).unwrap_or(1)
    }

    /// Whether the file is a bundle of several messages.
    pub fn is_bundle(&self) -> bool {
        self.count() > 1
    }

    fn deadline(&self) -> Option<u64> {
        self.extra.as_deref().and_then(|d| d.parse().ok())
    }
}

/// A claimed message: its content (with `attempts` filled in) and the claim's file name.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The message.
    pub message: Message,
    /// The claim's name in `cur/` (what ack and nack act on).
    pub receipt: String,
}

/// A claimed file of a bundled queue (see [`Queue::claim_bundles`]): its messages (one for a
/// plain file, the live ones of a bundle) and the claim's file name.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The messages, in the order they were sent (attempts filled in).
    pub messages: Vec<Message>,
    /// The claim's name in `cur/` (what ack and release act on): the whole file's.
    pub receipt: String,
}

impl Bundle {
    /// Whether the claimed file is a bundle (else one message in a plain file).
    pub fn is_bundle(&self) -> bool {
        Entry::parse(&self.receipt).is_some_and(|e| e.is_bundle())
    }
}

/// The stem of a file holding `count` messages of one priority, the first's stem `first`: a
/// bundle's (`<rank>-<id>+<count>`), or the plain message's for one.
pub(crate) fn file_stem(first: &str, count: usize) -> String {
    if count == 1 { first.to_owned() } else { format!("{first}+{count}") }
}

/// Encodes messages as a bundle's content: one JSON line each.
fn encode_bundle(encoded: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.iter().map(|b| b.len() + 1).sum());
    for b in encoded {
        out.extend_from_slice(b);
        out.push(b'\n');
    }
    out
}

/// Counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Waiting messages per priority.
    pub pending: std::collections::BTreeMap<String, usize>,
    /// Waiting messages in all.
    pub depth: usize,
    /// Claimed and not acked.
    pub in_flight: usize,
    /// Dead letters.
    pub dead: usize,
    /// Acked messages kept for history.
    pub acked: usize,
    /// Messages acked in the last minute, per second.
    pub ack_rate: f64,
}

/// An acked message, as [`Queue::acked_since`] finds it.
#[derive(Debug, Clone)]
pub struct Acked {
    /// The message.
    pub message: Message,
    /// When it was acked.
    pub acked_at: Timestamp,
    /// Its size on disk in bytes.
    pub bytes: u64,
}

/// What finishes a spool's batches left half delivered; the number finished.
pub type Recover = fn(&crate::spool::Spool) -> Result<usize>;

/// A queue directory.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
    durable: bool,
    /// The spool it is a queue of, and what finishes the batches a sender left half delivered
    /// there, run before the queue is claimed from or counted (the batch module's recover, given
    /// by the caller: the batch module builds on this one).
    spool: Option<(crate::spool::Spool, Recover)>,
    /// Whether a batch bundles its messages for this queue (see [`Queue::bundled`]).
    bundled: bool,
}

impl Queue {
    /// The queue at `dir`; deliveries are fsynced (file and directory).
    pub fn new(dir: PathBuf) -> Queue {
        Queue { dir, durable: true, spool: None, bundled: false }
    }

    /// The same queue, known as one of `spool`'s: the batches its senders left half delivered
    /// are finished before it is claimed from or counted.
    pub fn in_spool(mut self, spool: &crate::spool::Spool, recover: Recover) -> Queue {
        self.spool = Some((spool.clone(), recover));
        self
    }

    /// Finishes the spool's batches left half delivered; a failure is logged.
    fn finish_batches(&self) {
        if let Some((spool, recover)) = &self.spool {
            if let Err(e) = recover(spool) {
                tracing::warn!(error = %e, "cannot finish a batch left half delivered");
            }
        }
    }

    /// Whether deliveries are fsynced (default yes). Without, a delivery survives any process
    /// being killed but not a power cut.
    pub fn durable(mut self, durable: bool) -> Queue {
        self.durable = durable;
        self
    }

    /// Whether deliveries are fsynced.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The same queue, one whose messages a batch writes in bundles (up to [`BUNDLE_MAX`] messages
    /// of one priority, or [`BUNDLE_MAX_BYTES`], per file): one file created, fsynced and renamed
    /// for many messages. Only a queue read whole by one program is bundled (the bridge's outbox,
    /// drained by [`Queue::claim_bundles`]); [`Queue::claim`] leaves bundles alone.
    pub fn bundled(mut self) -> Queue {
        self.bundled = true;
        self
    }

    /// Whether a batch bundles its messages for this queue.
    pub fn is_bundled(&self) -> bool {
        self.bundled
    }

    /// The queue's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn part(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the queue's folders (mode 0700).
    pub fn create(&self) -> Result<()> {
        // `tmp/` last: a sender finds the queue whole by finding `tmp/`, so one killed half way
        // through making it (queues are made at their first message) leaves no `tmp/`, and the
        // next sender makes the rest.
        for p in ["new", "cur", "dead", "archive", "tmp"] {
            crate::atomic::create_dir(&self.part(p))?;
        }
        Ok(())
    }

    /// Whether the queue exists.
    pub fn exists(&self) -> bool {
        self.part("new").is_dir()
    }

    /// The queue's fifodir.
    pub fn fifodir(&self) -> Fifodir {
        Fifodir::new(self.part("notify.d"))
    }

    /// Subscribes to deliveries (before looking at the queue, so no wake-up is missed).
    pub fn listen(&self) -> Result<Listener> {
        self.fifodir().subscribe()
    }

    /// The queue's counters (see [`crate::tally`]): `sent`, `delivered`, `acked`, `retried`,
    /// `dead`, and `latency` (seconds from a message's creation to its first claim).
    pub fn tally(&self) -> crate::tally::Tally {
        crate::tally::of_dir(&self.dir)
    }

    fn count(&self, what: &str, n: usize) {
        self.tally().add(&vec![what.to_owned(); n]);
    }

    /// Wakes the queue's listeners.
    pub fn notify(&self, id: &str) {
        self.fifodir().notify(&serde_json::json!({ "id": id }));
    }

    /// Delivers an encoded message: written into `tmp/` (fsynced when durable), renamed into `new/`
    /// (the directory fsynced when durable), listeners woken.
    pub fn deliver(&self, message: &Message, bytes: &[u8]) -> Result<()> {
        self.deliver_file(message, bytes)?;
        if self.durable {
            self.sync()?;
        }
        self.notify(&message.id);
        Ok(())
    }

    /// Delivers without the directory fsync and without waking anyone: for a batch, which calls
    /// [`Queue::sync`] and [`Queue::notify`] once at its end (group commit). The file itself is
    /// fsynced when durable.
    pub fn deliver_file(&self, message: &Message, bytes: &[u8]) -> Result<()> {
        let staged = self.stage(message, bytes)?;
        staged.publish().inspect_err(|_| staged.discard())
    }

    /// Writes a message into `tmp/` (fsynced when durable) without delivering it: nobody sees it
    /// until [`Staged::publish`]. Nothing is left in `tmp/` when this fails (a full disk).
    pub fn stage(&self, message: &Message, bytes: &[u8]) -> Result<Staged> {
        let tmp = self.write_tmp(bytes)?;
        let target = self.part("new").join(format!("{},0", message.stem()));
        Ok(Staged { tmp, target })
    }

    /// Writes `bytes` to a new file in `tmp/` (fsynced when durable); nothing is left there when
    /// this fails.
    fn write_tmp(&self, bytes: &[u8]) -> Result<PathBuf> {
        let tmp = self.part("tmp").join(crate::atomic::unique_name("m"));
        let mut file = match open_new(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.create()?;
                open_new(&tmp)
            }
            other => other,
        }
        .map_err(|e| Error::io("create", &tmp, e))?;
        let written = file.write_all(bytes).and_then(|()| if self.durable { file.sync_data() } else { Ok(()) });
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("write", &tmp, e));
        }
        Ok(tmp)
    }

    /// Delivers a message already written (fsynced) elsewhere on the spool's filesystem, with
    /// the attempts it carries: the rename of `file` into `new/` (no directory fsync, nobody
    /// woken; see [`Queue::sync`] and [`Queue::notify`]). The queue's folders are made if they are
    /// missing. False when `file` is gone (delivered already).
    pub fn adopt(&self, message: &Message, file: &Path) -> Result<bool> {
        let target = self.part("new").join(format!("{},{}", message.stem(), message.attempts));
        match fs::rename(file, &target) {
            Ok(()) => {
                self.count("sent", 1);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.exists() => {
                self.create()?;
                rename_if_there(file, &target)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("deliver", &target, e)),
        }
    }

    /// Puts a message straight into the dead letters with `reason` (a word: letters, digits,
    /// `-`), durably when the queue is. The same message and reason again replace the first.
    pub fn deliver_dead(&self, message: &Message, bytes: &[u8], reason: &str) -> Result<()> {
        let staged = self.stage(message, bytes)?;
        let target = self.part("dead").join(format!("{},0,{reason}", message.stem()));
        if let Err(e) = fs::rename(&staged.tmp, &target) {
            staged.discard();
            return Err(Error::io("bury", &target, e));
        }
        tracing::info!(id = %message.id, reason, "message to the dead letters");
        self.count("dead", 1);
        if self.durable {
            crate::atomic::sync_dir(&self.part("dead"))?;
        }
        Ok(())
    }

    /// fsyncs `new/`, so that deliveries renamed into it survive a crash of the machine.
    pub fn sync(&self) -> Result<()> {
        crate::atomic::sync_dir(&self.part("new"))
    }

    /// The sorted, parsed entries of one folder (empty when it does not exist).
    pub fn entries(&self, part: &str) -> Result<Vec<Entry>> {
        let dir = self.part(part);
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            if let Some(e) = entry.file_name().to_str().and_then(Entry::parse) {
                out.push(e);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Claims up to `max` messages in queue order, each for `visibility`; expired claims are
    /// returned to the queue first, expired messages go to the dead letters.
    pub fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<Claim>> {
        self.claim_where(max, visibility, |_| true)
    }

    /// Claims like [`Queue::claim`], skipping the entries `wanted` refuses (left waiting) and
    /// bundles (claimed by [`Queue::claim_bundles`] only).
    pub fn claim_where(&self, max: usize, visibility: Duration, wanted: impl Fn(&Entry) -> bool) -> Result<Vec<Claim>> {
        let wanted = |e: &Entry| !e.is_bundle() && wanted(e);
        self.claim_with(max, visibility, wanted, |claimed, counts| match self.read("cur", &claimed.name) {
            Ok(mut message) => {
                message.attempts = claimed.attempts;
                if message.expired() {
                    self.bury("cur", claimed, "expired")?;
                    return Ok(None);
                }
                took(&message, counts);
                Ok(Some((Claim { message, receipt: claimed.name.clone() }, 1)))
            }
            Err(_) => {
                self.bury("cur", claimed, "unreadable")?;
                Ok(None)
            }
        })
    }

    /// Claims files of a bundled queue (see [`Queue::bundled`]), bundles and plain ones, in queue
    /// order until they hold `max` messages (at least one file), each for `visibility`. A
    /// bundle's expired messages go to the dead letters one by one; one whose every message
    /// expired is removed.
    pub fn claim_bundles(&self, max: usize, visibility: Duration) -> Result<Vec<Bundle>> {
        self.claim_with(
            max,
            visibility,
            |_| true,
            |claimed, counts| {
                let all = match self.read_all("cur", claimed) {
                    Ok(all) => all,
                    Err(Error::Corrupt { .. }) => {
                        self.bury("cur", claimed, "unreadable")?;
                        return Ok(None);
                    }
                    // (A full table of descriptors, an I/O error: claimed until it is retried.)
                    Err(e) => return Err(e),
                };
                let Some((receipt, live)) = self.bury_some(&claimed.name, all, Message::expired, "expired")? else {
                    return Ok(None);
                };
                live.iter().for_each(|m| took(m, counts));
                let n = live.len();
                Ok(Some((Bundle { messages: live, receipt }, n)))
            },
        )
    }

    /// The claiming of [`Queue::claim_where`] and [`Queue::claim_bundles`]: expired claims
    /// returned first, then the wanted entries renamed into `cur/` in queue order, each opened by
    /// `open` (which gives what it holds and how many messages, or None when it buried it, and
    /// adds to the counts), until `max` messages are taken.
    fn claim_with<T>(
        &self,
        max: usize,
        visibility: Duration,
        wanted: impl Fn(&Entry) -> bool,
        mut open: impl FnMut(&Entry, &mut Vec<String>) -> Result<Option<(T, usize)>>,
    ) -> Result<Vec<T>> {
        self.finish_batches();
        self.requeue_expired()?;
        let deadline = Timestamp::now().0 + visibility.as_millis() as u64;
        let mut out = Vec::new();
        let mut taken = 0;
        let mut counts = Vec::new();
        for e in self.entries("new")? {
            if taken >= max {
                break;
            }
            if !wanted(&e) {
                continue;
            }
            let receipt = format!("{},{},{deadline}", e.stem(), e.attempts);
            match rename_into(&self.part("new").join(&e.name), &self.part("cur").join(&receipt)) {
                Ok(()) => {}
                // Another receiver took it first.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(Error::io("claim", &self.part("new").join(&e.name), err)),
            }
            if let Some((item, n)) = open(&Entry { name: receipt, ..e }, &mut counts)? {
                out.push(item);
                taken += n;
            }
        }
        self.tally().add(&counts);
        Ok(out)
    }

    /// Claims like [`Queue::claim`]; with `wait`, waits up to that long (forever if None inside)
    /// for something to claim, woken by the queue's fifodir and rescanning every [`RESCAN`] anyway.
    pub fn receive(&self, max: usize, visibility: Duration, wait: Option<Option<Duration>>) -> Result<Vec<Claim>> {
        let mut listener = match wait {
            Some(_) => Some(self.listen()?),
            None => None,
        };
        let deadline = wait.flatten().map(|d| std::time::Instant::now() + d);
        loop {
            let got = self.claim(max, visibility)?;
            let Some(l) = listener.as_mut().filter(|_| got.is_empty()) else { return Ok(got) };
            let left = deadline.map_or(RESCAN, |d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_zero() {
                return Ok(got);
            }
            l.wait(left.min(RESCAN))?;
        }
    }

    /// Reads a queued message from one folder.
    pub fn read(&self, part: &str, name: &str) -> Result<Message> {
        let path = self.part(part).join(name);
        let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { path, detail: format!("not a message: {e}") })
    }

    /// The messages of queued file `e` of one folder (a bundle's, or the one), with its attempts.
    pub fn read_all(&self, part: &str, e: &Entry) -> Result<Vec<Message>> {
        if !e.is_bundle() {
            let mut m = self.read(part, &e.name)?;
            m.attempts = e.attempts;
            return Ok(vec![m]);
        }
        let path = self.part(part).join(&e.name);
        let bytes = fs::read(&path).map_err(|err| Error::io("read", &path, err))?;
        let mut out = Vec::with_capacity(e.count());
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut m: Message = serde_json::from_slice(line)
                .map_err(|err| Error::Corrupt { path: path.clone(), detail: format!("not a message: {err}") })?;
            m.attempts = e.attempts;
            out.push(m);
        }
        if out.len() != e.count() {
            let detail = format!("a bundle of {} holds {} messages", e.count(), out.len());
            return Err(Error::Corrupt { path, detail });
        }
        Ok(out)
    }

    /// Returns claims whose visibility timeout has passed to the queue (attempts raised), or to
    /// the dead letters when they have had too many attempts. Returns how many moved.
    pub fn requeue_expired(&self) -> Result<usize> {
        let now = Timestamp::now().0;
        let mut moved = 0;
        for e in self.entries("cur")? {
            if e.deadline().is_some_and(|d| d <= now) {
                moved += usize::from(self.requeue(&e, true)?);
            }
        }
        if moved > 0 {
            self.notify("requeued");
        }
        Ok(moved)
    }

    /// Moves a claim back to `new/` (attempts raised when `failed`), or to `dead/` past the limit.
    /// False when someone else moved it first.
    fn requeue(&self, e: &Entry, failed: bool) -> Result<bool> {
        let attempts = e.attempts + u32::from(failed);
        if failed && attempts >= max_attempts() {
            return self.bury("cur", &Entry { attempts, ..e.clone() }, "attempts");
        }
        let to = self.part("new").join(format!("{},{attempts}", e.stem()));
        let moved = rename_if_there(&self.part("cur").join(&e.name), &to)?;
        if moved {
            self.count("retried", e.count());
        }
        Ok(moved)
    }

    /// Moves an entry of `part` to the dead letters with `reason`; a bundle's messages one by
    /// one (the dead letters are plain files, each retried alone).
    fn bury(&self, part: &str, e: &Entry, reason: &str) -> Result<bool> {
        let name = format!("{},{},{reason}", e.stem(), e.attempts);
        let from = self.part(part).join(&e.name);
        tracing::info!(id = %e.id, reason, "message to the dead letters");
        // One rename, a bundle's too: from there nothing sends it; it is then split.
        let moved = rename_if_there(&from, &self.part("dead").join(&name))?;
        if moved {
            self.count("dead", e.count());
            if reason != "unreadable" {
                if let Some(dead) = Entry::parse(&name) {
                    self.split_dead(&dead)?;
                }
            }
        }
        Ok(moved)
    }

    /// Splits a bundle of the dead letters into one plain dead letter per message (its reason and
    /// attempts kept), then removes it; left whole when it cannot be read. Done again, it makes
    /// the same files.
    fn split_dead(&self, e: &Entry) -> Result<()> {
        if !e.is_bundle() {
            return Ok(());
        }
        let Ok(messages) = self.read_all("dead", e) else { return Ok(()) };
        self.bury_each(&messages, e.attempts, e.extra.as_deref().unwrap_or("attempts"))?;
        let path = self.part("dead").join(&e.name);
        match fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &path, err)),
            _ => Ok(()),
        }
    }

    /// Splits the bundles a killed burier left whole in the dead letters (see [`Queue::bury`]).
    fn split_dead_bundles(&self) -> Result<()> {
        for e in self.entries("dead")?.into_iter().filter(|e| e.is_bundle() && e.extra.as_deref() != Some("unreadable"))
        {
            self.split_dead(&e)?;
        }
        Ok(())
    }

    /// Buries the messages of claim `receipt` (`messages`, all it holds, in order) that `dies`
    /// picks, each alone with `reason`, and shrinks the claim to the rest (see
    /// [`Queue::shrink_claim`]); a claim whose every message dies is buried whole, in one rename.
    /// Returns the claim's receipt now and the messages it holds; None when none is left.
    pub fn bury_some(
        &self,
        receipt: &str,
        messages: Vec<Message>,
        dies: impl Fn(&Message) -> bool,
        reason: &str,
    ) -> Result<Option<(String, Vec<Message>)>> {
        let (dead, live): (Vec<Message>, Vec<Message>) = messages.into_iter().partition(|m| dies(m));
        if dead.is_empty() {
            return Ok(Some((receipt.to_owned(), live)));
        }
        let Some(e) = Entry::parse(receipt) else { return Ok(None) };
        if live.is_empty() {
            self.bury("cur", &e, reason)?;
            return Ok(None);
        }
        self.bury_each(&dead, e.attempts, reason)?;
        self.count("dead", dead.len());
        Ok(self.shrink_claim(receipt, &live)?.map(|r| (r, live)))
    }

    /// Shrinks a claimed file to `keep` (messages of it, in order), the others having been put
    /// elsewhere (buried one by one): the new file is written and renamed into `cur/` (a bundle, or
    /// a plain file for one) before the old one is removed, so a kill in between leaves both, and
    /// the kept messages are sent twice (the receiving bridge drops the second copies). Returns
    /// the new receipt; None when nothing is kept (the claim removed).
    fn shrink_claim(&self, receipt: &str, keep: &[Message]) -> Result<Option<String>> {
        let Some(e) = Entry::parse(receipt) else { return Ok(None) };
        if keep.is_empty() {
            self.drop_claim(receipt)?;
            return Ok(None);
        }
        let encoded = keep.iter().map(Message::encode).collect::<Result<Vec<_>>>()?;
        let bytes = match encoded.as_slice() {
            [one] => one.clone(),
            all => encode_bundle(&all.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        };
        let stem = file_stem(&keep[0].stem(), keep.len());
        let name = format!("{stem},{},{}", e.attempts, e.extra.as_deref().unwrap_or("0"));
        if name == receipt {
            return Ok(Some(name));
        }
        let tmp = self.write_tmp(&bytes)?;
        let to = self.part("cur").join(&name);
        if let Err(err) = fs::rename(&tmp, &to) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("rename", &to, err));
        }
        self.drop_claim(receipt)?;
        Ok(Some(name))
    }

    /// Writes each of `messages` into the dead letters with `reason` and `attempts` (a
    /// message there already with the same reason is replaced), the folder fsynced once; not
    /// counted (the caller counts).
    fn bury_each(&self, messages: &[Message], attempts: u32, reason: &str) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        for m in messages {
            let staged = self.stage(m, &m.encode()?)?;
            let to = self.part("dead").join(format!("{},{attempts},{reason}", m.stem()));
            if let Err(e) = fs::rename(&staged.tmp, &to) {
                staged.discard();
                return Err(Error::io("bury", &to, e));
            }
        }
        tracing::info!(messages = messages.len(), reason, "messages of a bundle to the dead letters");
        if self.durable {
            crate::atomic::sync_dir(&self.part("dead"))?;
        }
        Ok(())
    }

    /// Finds the entries of `part` with these ids.
    fn find(&self, part: &str, ids: &[&str]) -> Result<HashMap<String, Entry>> {
        let mut found = HashMap::new();
        for e in self.entries(part)? {
            if ids.contains(&e.id.as_str()) {
                found.insert(e.id.clone(), e);
            }
        }
        Ok(found)
    }

    fn claimed(&self, id: &str) -> Result<Entry> {
        self.find("cur", &[id])?
            .remove(id)
            .ok_or_else(|| Error::NotFound(format!("message {id} is not claimed in {}", self.dir.display())))
    }

    /// Acks claimed messages: each moves to the history. Returns the ids that were not claimed.
    pub fn ack(&self, ids: &[&str]) -> Result<Vec<String>> {
        let found = self.find("cur", ids)?;
        let mut missing = Vec::new();
        for id in ids {
            let moved = match found.get(*id) {
                Some(e) => rename_if_there(
                    &self.part("cur").join(&e.name),
                    &self.part("archive").join(format!("{},{}", e.stem(), e.attempts)),
                )?,
                None => false,
            };
            if !moved {
                missing.push((*id).to_owned());
            }
        }
        self.count("acked", ids.len() - missing.len());
        self.prune_now_and_then();
        Ok(missing)
    }

    /// Gives a claimed message back: at once (attempts raised), or after `delay`.
    pub fn nack(&self, id: &str, delay: Duration) -> Result<()> {
        let e = self.claimed(id)?;
        if delay.is_zero() {
            self.requeue(&e, true)?;
            self.notify(id);
            return Ok(());
        }
        let until = Timestamp::now().0 + delay.as_millis() as u64;
        let to = self.part("cur").join(format!("{},{},{until}", e.stem(), e.attempts));
        if rename_if_there(&self.part("cur").join(&e.name), &to)? {
            self.count("retried", e.count());
        }
        Ok(())
    }

    /// Moves a claim to the dead letters with `reason` (a word). False when the claim is gone.
    pub fn reject(&self, receipt: &str, reason: &str) -> Result<bool> {
        let Some(e) = Entry::parse(receipt) else { return Ok(false) };
        self.bury("cur", &e, reason)
    }

    /// Puts a claim back unchanged (its holder stopped before finishing; not a failed attempt).
    pub fn release(&self, receipt: &str) -> Result<bool> {
        self.give_back(receipt, false)
    }

    /// Puts a claim back by its receipt, as a failed attempt when `failed` (its holder died), and
    /// wakes the listeners. False when the claim is gone (acked, or already returned).
    pub fn give_back(&self, receipt: &str, failed: bool) -> Result<bool> {
        let Some(e) = Entry::parse(receipt) else { return Ok(false) };
        let moved = self.requeue(&e, failed)?;
        if moved {
            self.notify(&e.id);
        }
        Ok(moved)
    }

    /// Extends a claim to `visibility` from now; returns its new receipt, None when it is gone.
    pub fn extend(&self, receipt: &str, visibility: Duration) -> Result<Option<String>> {
        let Some(e) = Entry::parse(receipt) else { return Ok(None) };
        let until = Timestamp::now().0 + visibility.as_millis() as u64;
        let new = format!("{},{},{until}", e.stem(), e.attempts);
        let moved = rename_if_there(&self.part("cur").join(receipt), &self.part("cur").join(&new))?;
        Ok(moved.then_some(new))
    }

    /// Removes a claim whose messages were all put elsewhere (a bundle split: some queued again
    /// in a file of their own, the others buried one by one). False when the claim is gone.
    pub fn drop_claim(&self, receipt: &str) -> Result<bool> {
        let path = self.part("cur").join(receipt);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Acks one claim by its receipt (no listing). False when the claim is gone.
    pub fn ack_receipt(&self, receipt: &str) -> Result<bool> {
        Ok(self.ack_receipts(&[receipt])? == 1)
    }

    /// Acks claims by their receipts (no listing), counted in one write. Returns how many were
    /// still claimed.
    pub fn ack_receipts(&self, receipts: &[&str]) -> Result<usize> {
        let (mut moved, mut messages) = (0, 0);
        for receipt in receipts {
            let Some(e) = Entry::parse(receipt) else { continue };
            let to = self.part("archive").join(format!("{},{}", e.stem(), e.attempts));
            if rename_if_there(&self.part("cur").join(receipt), &to)? {
                moved += 1;
                messages += e.count();
            }
        }
        self.count("acked", messages);
        self.prune_now_and_then();
        Ok(moved)
    }

    /// The dead letters, oldest first, with their reasons.
    pub fn dead_letters(&self) -> Result<Vec<(Entry, Option<Message>)>> {
        self.split_dead_bundles()?;
        Ok(self.entries("dead")?.into_iter().map(|e| (e.clone(), self.read("dead", &e.name).ok())).collect())
    }

    /// Puts a dead letter back into the queue with its attempts reset.
    pub fn retry(&self, id: &str) -> Result<()> {
        self.split_dead_bundles()?;
        let e = self
            .find("dead", &[id])?
            .remove(id)
            .ok_or_else(|| Error::NotFound(format!("no dead letter {id} in {}", self.dir.display())))?;
        let to = self.part("new").join(format!("{},0", e.stem()));
        if !rename_if_there(&self.part("dead").join(&e.name), &to)? {
            return Err(Error::NotFound(format!("dead letter {id} was taken by someone else")));
        }
        self.notify(id);
        Ok(())
    }

    /// Acked messages, in the order they were acked, the latest `limit`.
    pub fn history(&self, limit: usize) -> Result<Vec<Message>> {
        let mut rows: Vec<(i64, i64, Entry)> = Vec::new();
        for e in self.entries("archive")? {
            if let Ok(m) = fs::symlink_metadata(self.part("archive").join(&e.name)) {
                rows.push((m.ctime(), m.ctime_nsec(), e));
            }
        }
        rows.sort_by_key(|a| (a.0, a.1));
        // The files holding the last `limit` messages (a bundle holds several), then those.
        let (mut files, mut held) = (0, 0);
        for (_, _, e) in rows.iter().rev() {
            if held >= limit {
                break;
            }
            held += e.count();
            files += 1;
        }
        let skip = rows.len() - files;
        let messages: Vec<Message> =
            rows.into_iter().skip(skip).filter_map(|(_, _, e)| self.read_all("archive", &e).ok()).flatten().collect();
        let over = messages.len().saturating_sub(limit);
        Ok(messages.into_iter().skip(over).collect())
    }

    /// The messages acked at or after `since` (Unix milliseconds), each with when it was acked
    /// (its archive file's ctime: the ack is the rename into `archive/`) and its size in bytes.
    /// Unreadable files are skipped.
    pub fn acked_since(&self, since: Timestamp) -> Result<Vec<Acked>> {
        let mut out = Vec::new();
        for e in self.entries("archive")? {
            let Ok(m) = fs::symlink_metadata(self.part("archive").join(&e.name)) else { continue };
            let at = (m.ctime().max(0) as u64) * 1000 + (m.ctime_nsec().max(0) as u64) / 1_000_000;
            if at < since.0 {
                continue;
            }
            if let Ok(messages) = self.read_all("archive", &e) {
                let bytes = m.len() / messages.len().max(1) as u64;
                out.extend(messages.into_iter().map(|message| Acked { message, acked_at: Timestamp(at), bytes }));
            }
        }
        out.sort_by_key(|a| a.acked_at);
        Ok(out)
    }

    /// When the oldest waiting message was sent (`None` when none waits).
    pub fn oldest_waiting(&self) -> Result<Option<Timestamp>> {
        let mut oldest: Option<Timestamp> = None;
        for e in self.entries("new")? {
            for m in self.read_all("new", &e).unwrap_or_default() {
                oldest = Some(oldest.map_or(m.created_at, |o| o.min(m.created_at)));
            }
        }
        Ok(oldest)
    }

    /// The waiting messages, in queue order.
    pub fn pending(&self) -> Result<Vec<Message>> {
        self.finish_batches();
        Ok(self.entries("new")?.into_iter().filter_map(|e| self.read_all("new", &e).ok()).flatten().collect())
    }

    /// Depths per priority, in flight, dead, acked, and the ack rate over the last minute.
    pub fn stats(&self) -> Result<QueueStats> {
        self.finish_batches();
        if self.bundled {
            self.split_dead_bundles()?;
        }
        let mut s = QueueStats::default();
        for p in Priority::ALL {
            s.pending.insert(p.as_str().to_owned(), 0);
        }
        // Messages move between the folders while they are listed (claimed: new to cur; given
        // back: cur to new; acked or buried). Each is counted once, by id, in the folder it was
        // last listed in: the folders are listed in the order messages move (new, cur, dead,
        // archive), with new once more after cur for one given back while cur was listed. Only
        // a message that moved twice within the listing can be missed.
        let mut last: HashMap<String, (&'static str, Entry)> = HashMap::new();
        for part in ["new", "cur", "new", "dead", "archive"] {
            for e in self.entries(part)? {
                last.insert(e.id.clone(), (part, e));
            }
        }
        let since = (Timestamp::now().0 / 1000).saturating_sub(60) as i64;
        let mut recent = 0;
        for (part, e) in last.values() {
            match *part {
                "new" => {
                    *s.pending.entry(e.priority.as_str().to_owned()).or_default() += e.count();
                    s.depth += e.count();
                }
                "cur" => s.in_flight += e.count(),
                "dead" => s.dead += e.count(),
                _ => {
                    s.acked += e.count();
                    let path = self.part("archive").join(&e.name);
                    recent += e.count() * usize::from(fs::symlink_metadata(path).is_ok_and(|m| m.ctime() >= since));
                }
            }
        }
        s.ack_rate = recent as f64 / 60.0;
        Ok(s)
    }

    /// Removes every waiting, claimed, dead and acked message. Returns how many.
    pub fn clear(&self) -> Result<usize> {
        let mut n = 0;
        for part in ["new", "cur", "dead", "archive"] {
            for e in self.entries(part)? {
                if fs::remove_file(self.part(part).join(&e.name)).is_ok() {
                    n += e.count();
                }
            }
        }
        Ok(n)
    }

    /// Removes the whole queue directory.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &self.dir, e)),
            _ => Ok(()),
        }
    }

    /// Once in a while (1 ack in 64), trims the history to its limit, oldest first, in one batch
    /// down to three quarters of it: deleting thousands of files one at a time slows every later
    /// creation on ext4.
    fn prune_now_and_then(&self) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        if (nanos >> 10) % 64 != 0 {
            return;
        }
        let _ = self.prune(history_limit());
        self.sweep_tmp(Duration::from_secs(3600));
    }

    /// Removes files left in `tmp/` by writers killed mid-delivery, once older than `age` (a
    /// delivery takes milliseconds; Maildir waits 36 hours). Returns how many.
    pub fn sweep_tmp(&self, age: Duration) -> usize {
        let Ok(read) = fs::read_dir(self.part("tmp")) else { return 0 };
        let mut n = 0;
        for entry in read.flatten() {
            let old = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
            if old.is_some_and(|o| o > age) && fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Trims the history to `limit` acked messages when it holds more (down to 3/4 of it).
    pub fn prune(&self, limit: usize) -> Result<usize> {
        let entries = self.entries("archive")?;
        let mut held: usize = entries.iter().map(Entry::count).sum();
        if held <= limit {
            return Ok(0);
        }
        // Oldest first, a bundle counted as its messages, until 3/4 of the limit are left.
        let mut removed = 0;
        for e in &entries {
            if held <= limit * 3 / 4 {
                break;
            }
            let _ = fs::remove_file(self.part("archive").join(&e.name));
            held -= e.count();
            removed += e.count();
        }
        Ok(removed)
    }
}

/// A message written into its queue's `tmp/` and not yet delivered (see [`Queue::stage`]).
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    target: PathBuf,
}

impl Staged {
    /// Delivers it: the rename into `new/` (no directory fsync, nobody woken).
    pub fn publish(&self) -> Result<()> {
        rename_into(&self.tmp, &self.target).map_err(|e| Error::io("deliver", &self.target, e))?;
        crate::tally::of_dir(self.target.parent().and_then(Path::parent).unwrap_or(Path::new("/")))
            .add(&["sent".to_owned()]);
        Ok(())
    }

    /// Removes it before it was delivered.
    pub fn discard(&self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Counts a message claimed: delivered, and at its first claim the latency since it was sent.
fn took(message: &Message, counts: &mut Vec<String>) {
    counts.push("delivered".to_owned());
    if message.attempts == 0 {
        let ms = Timestamp::now().0.saturating_sub(message.created_at.0);
        counts.push(format!("latency {}", ms as f64 / 1000.0));
    }
}

fn open_new(path: &Path) -> std::io::Result<fs::File> {
    // Never through a symlink, the queue's own directories included (see crate::beneath).
    let flags = nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL;
    crate::beneath::open(path, flags, 0o600, "create").map_err(crate::beneath::into_io)
}

/// Renames `from` to `to`, making `to`'s directory when it is missing while `from` is there: a
/// queue half made by a sender killed while making it, before `tmp/` came last.
fn rename_into(from: &Path, to: &Path) -> std::io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.exists() => {
            let dir = to.parent().unwrap_or(Path::new("."));
            crate::atomic::create_dir(dir).map_err(crate::beneath::into_io)?;
            fs::rename(from, to)
        }
        other => other,
    }
}

/// Renames `from` to `to`; false when `from` is gone (someone else moved it first).
fn rename_if_there(from: &Path, to: &Path) -> Result<bool> {
    match rename_into(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("rename", from, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Kind;

    fn queue() -> Queue {
        let q = Queue::new(std::env::temp_dir().join(crate::atomic::unique_name("queue-test"))).durable(false);
        q.create().unwrap();
        q
    }

    #[test]
    fn a_queue_half_made_by_a_killed_sender_is_made_whole_by_the_next() {
        for made in [&["tmp"][..], &["new"], &["new", "cur"], &["tmp", "new"]] {
            let dir = std::env::temp_dir().join(crate::atomic::unique_name("queue-half"));
            for p in made {
                crate::atomic::create_dir(&dir.join(p)).unwrap();
            }
            let q = Queue::new(dir.clone()).durable(false);
            let id = send(&q, Priority::Normal, 1);
            let claimed = q.claim(1, Duration::from_secs(60)).unwrap();
            assert_eq!(claimed.len(), 1, "half made as {made:?}: the message is claimed");
            assert!(q.ack(&[id.as_str()]).unwrap().is_empty(), "half made as {made:?}: and acked");
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    fn send(q: &Queue, p: Priority, n: i64) -> String {
        let m = Message::new("t", Kind::Event, p, serde_json::json!(n));
        q.deliver(&m, &m.encode().unwrap()).unwrap();
        m.id
    }

    /// A spool's outbox (bundled) and `n` messages of `p` sent to it in one batch, payloads
    /// `from..from+n`.
    fn bundled(n: i64) -> (crate::spool::Spool, Queue) {
        let spool =
            crate::spool::Spool::open(&std::env::temp_dir().join(crate::atomic::unique_name("bundle-test"))).unwrap();
        let q = crate::bus::Address::Outbox.queue(&spool).durable(false);
        batch(&spool, &q, Priority::Normal, 0..n);
        (spool, q)
    }

    fn batch(spool: &crate::spool::Spool, q: &Queue, p: Priority, payloads: std::ops::Range<i64>) {
        let mut b = crate::batch::Batch::new(spool);
        for n in payloads {
            let m = Message::new("t", Kind::Event, p, serde_json::json!(n));
            b.stage(q, &m, &m.encode().unwrap()).unwrap();
        }
        b.publish().unwrap();
    }

    fn payloads(bundles: &[Bundle]) -> Vec<i64> {
        bundles.iter().flat_map(|b| &b.messages).map(|m| m.payload.as_i64().unwrap()).collect()
    }

    #[test]
    fn a_batch_bundles_the_outbox_and_the_bundles_are_claimed_counted_and_acked_whole() {
        let n = BUNDLE_MAX as i64 * 2 + 3;
        let (spool, q) = bundled(n);
        let files = q.entries("new").unwrap();
        assert_eq!(files.iter().map(Entry::count).collect::<Vec<_>>(), [BUNDLE_MAX, BUNDLE_MAX, 3]);
        assert_eq!(q.stats().unwrap().depth, n as usize, "the depth counts messages, not files");
        assert_eq!(q.pending().unwrap().len(), n as usize);
        assert!(q.claim(10, Duration::from_secs(30)).unwrap().is_empty(), "claim leaves bundles alone");
        // A critical message sent alone comes first; a batch of one is a plain file.
        batch(&spool, &q, Priority::Critical, n..n + 1);
        let got = q.claim_bundles(BUNDLE_MAX + 1, Duration::from_secs(30)).unwrap();
        assert_eq!(
            got.iter().map(|b| (b.messages.len(), b.is_bundle())).collect::<Vec<_>>(),
            [(1, false), (BUNDLE_MAX, true)]
        );
        assert_eq!(payloads(&got), [n].into_iter().chain(0..BUNDLE_MAX as i64).collect::<Vec<_>>(), "in order");
        assert_eq!(q.stats().unwrap().in_flight, BUNDLE_MAX + 1);
        let receipts: Vec<&str> = got.iter().map(|b| b.receipt.as_str()).collect();
        assert_eq!(q.ack_receipts(&receipts).unwrap(), 2);
        let s = q.stats().unwrap();
        assert_eq!((s.depth, s.in_flight, s.acked), (BUNDLE_MAX + 3, 0, BUNDLE_MAX + 1));
        assert_eq!(q.tally().fold().unwrap().counts.get("acked"), Some(&((BUNDLE_MAX + 1) as u64)));
        assert_eq!(q.history(usize::MAX).unwrap().len(), BUNDLE_MAX + 1);
        let rest = q.claim_bundles(usize::MAX, Duration::from_secs(30)).unwrap();
        assert_eq!(payloads(&rest), (BUNDLE_MAX as i64..n).collect::<Vec<_>>());
        fs::remove_dir_all(spool.root()).unwrap();
    }

    #[test]
    fn a_buried_bundle_becomes_one_dead_letter_per_message_and_expired_ones_die_alone() {
        let (spool, q) = bundled(3);
        // One more bundle, whose middle message has expired.
        let mut b = crate::batch::Batch::new(&spool);
        for n in 3..6 {
            let mut m = Message::new("t", Kind::Event, Priority::Normal, serde_json::json!(n));
            if n == 4 {
                m.expires_at = Some(Timestamp(1));
            }
            b.stage(&q, &m, &m.encode().unwrap()).unwrap();
        }
        b.publish().unwrap();
        let got = q.claim_bundles(1, Duration::from_secs(30)).unwrap();
        assert!(q.reject(&got[0].receipt, "left").unwrap());
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 3, "one dead letter per message: {dead:?}");
        assert!(dead.iter().all(|(e, m)| e.extra.as_deref() == Some("left") && m.is_some()));
        q.retry(&dead[1].0.id).unwrap();
        let got = q.claim_bundles(usize::MAX, Duration::from_secs(30)).unwrap();
        assert_eq!(payloads(&got), [1, 3, 5], "the retried one, and the live ones of the second bundle");
        assert!(got[1].receipt.contains("+2,"), "the bundle shrunk to its live messages: {}", got[1].receipt);
        let receipts: Vec<&str> = got.iter().map(|b| b.receipt.as_str()).collect();
        q.ack_receipts(&receipts).unwrap();
        let acked: Vec<i64> = q.history(usize::MAX).unwrap().iter().map(|m| m.payload.as_i64().unwrap()).collect();
        assert_eq!(acked, [1, 3, 5], "the expired one is a dead letter, not acked too");
        assert_eq!(q.stats().unwrap().acked, 3);
        let dead = q.dead_letters().unwrap();
        assert_eq!(
            dead.iter().map(|(e, _)| e.extra.as_deref().unwrap()).collect::<Vec<_>>(),
            ["left", "left", "expired"]
        );
        assert_eq!(q.stats().unwrap().dead, 3);
        fs::remove_dir_all(spool.root()).unwrap();
    }

    #[test]
    fn a_bundle_buried_by_a_killed_burier_is_split_by_the_next_look_at_the_dead_letters() {
        let (spool, q) = bundled(3);
        let e = &q.entries("new").unwrap()[0];
        // Killed after the rename into dead/ and before the split.
        fs::rename(
            q.dir().join("new").join(&e.name),
            q.dir().join("dead").join(format!("{},0,left", e.name.trim_end_matches(",0"))),
        )
        .unwrap();
        assert_eq!(q.stats().unwrap().dead, 3);
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 3, "{dead:?}");
        assert!(dead.iter().all(|(e, m)| !e.is_bundle() && e.extra.as_deref() == Some("left") && m.is_some()));
        assert!(q.claim_bundles(10, Duration::from_secs(30)).unwrap().is_empty(), "nothing sends it");
        fs::remove_dir_all(spool.root()).unwrap();
    }

    #[test]
    fn the_history_limit_and_pruning_count_messages_not_files() {
        let (spool, q) = bundled(BUNDLE_MAX as i64 * 2 + 3);
        let got = q.claim_bundles(usize::MAX, Duration::from_secs(30)).unwrap();
        q.ack_receipts(&got.iter().map(|b| b.receipt.as_str()).collect::<Vec<_>>()).unwrap();
        let last: Vec<i64> = q.history(2).unwrap().iter().map(|m| m.payload.as_i64().unwrap()).collect();
        let n = BUNDLE_MAX as i64 * 2 + 3;
        assert_eq!(last, [n - 2, n - 1]);
        assert_eq!(q.prune(300).unwrap(), BUNDLE_MAX * 2, "down to 3/4 of 300 messages: the two full bundles go");
        assert_eq!(q.stats().unwrap().acked, 3);
        fs::remove_dir_all(spool.root()).unwrap();
    }

    #[test]
    fn a_bundle_is_closed_before_a_message_would_take_it_over_its_size() {
        let spool =
            crate::spool::Spool::open(&std::env::temp_dir().join(crate::atomic::unique_name("bundle-size"))).unwrap();
        let q = crate::bus::Address::Outbox.queue(&spool).durable(false);
        let mut b = crate::batch::Batch::new(&spool);
        for n in 0..25 {
            let m = Message::new(
                "t",
                Kind::Event,
                Priority::Normal,
                serde_json::json!(format!("{n}{}", "x".repeat(100_000))),
            );
            b.stage(&q, &m, &m.encode().unwrap()).unwrap();
        }
        b.publish().unwrap();
        let files = q.entries("new").unwrap();
        assert_eq!(files.iter().map(Entry::count).sum::<usize>(), 25);
        for e in &files {
            let size = fs::metadata(q.dir().join("new").join(&e.name)).unwrap().len();
            assert!(size as usize <= BUNDLE_MAX_BYTES, "{} is {size} bytes", e.name);
        }
        assert_eq!(q.pending().unwrap().len(), 25);
        fs::remove_dir_all(spool.root()).unwrap();
    }

    #[test]
    fn a_bundle_that_does_not_hold_what_its_name_says_is_buried_whole_as_unreadable() {
        let (spool, q) = bundled(3);
        let e = &q.entries("new").unwrap()[0];
        let path = q.dir().join("new").join(&e.name);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.lines().take(2).collect::<Vec<_>>().join("\n")).unwrap();
        assert!(q.claim_bundles(10, Duration::from_secs(30)).unwrap().is_empty());
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].0.extra.as_deref(), dead[0].0.count()), (Some("unreadable"), 3));
        fs::remove_dir_all(spool.root()).unwrap();
    }

    #[test]
    fn priority_then_fifo_claim_ack_nack_dead() {
        let q = queue();
        send(&q, Priority::Low, 1);
        send(&q, Priority::Normal, 2);
        send(&q, Priority::Normal, 3);
        send(&q, Priority::Critical, 4);
        let got: Vec<_> = q.claim(10, Duration::from_secs(30)).unwrap();
        let order: Vec<_> = got.iter().map(|c| c.message.payload.clone()).collect();
        assert_eq!(order, [4, 2, 3, 1].map(|n| serde_json::json!(n)));
        assert!(q.claim(1, Duration::from_secs(30)).unwrap().is_empty(), "all claimed");
        let ids: Vec<&str> = got.iter().map(|c| c.message.id.as_str()).collect();
        assert!(q.ack(&ids[..1]).unwrap().is_empty());
        assert_eq!(q.ack(&ids[..1]).unwrap(), vec![ids[0].to_owned()], "acked once only");
        q.nack(ids[1], Duration::ZERO).unwrap();
        let again = q.claim(1, Duration::ZERO).unwrap();
        assert_eq!(again[0].message.id, ids[1]);
        assert_eq!(again[0].message.attempts, 1);
        // Visibility timeout zero: every claim expires at once; attempts climb to the limit.
        for _ in 0..max_attempts() {
            q.claim(1, Duration::ZERO).unwrap();
        }
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].0.extra.as_deref(), Some("attempts"));
        q.retry(ids[1]).unwrap();
        assert_eq!(q.stats().unwrap().depth, 1);
        q.remove().unwrap();
    }

    #[test]
    fn stats_count_each_message_once_while_a_receiver_moves_them() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let q = queue();
        let n = 300;
        for i in 0..n {
            send(&q, Priority::Normal, i);
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            // A receiver that claims every message and gives each back, again and again: each
            // moves from new/ to cur/ and back while the counts are made.
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    for c in q.claim(n as usize, Duration::from_secs(60)).unwrap() {
                        q.release(&c.receipt).unwrap();
                    }
                }
            });
            let mut wrong = Vec::new();
            for _ in 0..200 {
                let st = q.stats().unwrap();
                if st.depth + st.in_flight != n as usize {
                    wrong.push((st.depth, st.in_flight));
                }
            }
            stop.store(true, Ordering::SeqCst);
            assert!(wrong.is_empty(), "{} of 200 counts were not {n} messages: {wrong:?}", wrong.len());
        });
        q.remove().unwrap();
    }

    #[test]
    fn extend_keeps_a_claim() {
        let q = queue();
        let id = send(&q, Priority::Normal, 1);
        let c = q.claim(1, Duration::ZERO).unwrap().remove(0);
        let receipt = q.extend(&c.receipt, Duration::from_secs(60)).unwrap().expect("still claimed");
        assert!(q.claim(1, Duration::ZERO).unwrap().is_empty(), "an extended claim is not requeued");
        assert!(q.extend(&c.receipt, Duration::from_secs(60)).unwrap().is_none(), "the old receipt is gone");
        assert!(q.ack_receipt(&receipt).unwrap());
        assert_eq!(q.history(10).unwrap()[0].id, id);
        q.remove().unwrap();
    }

    #[test]
    fn names_parse() {
        let e = Entry::parse("0-123-4-5,2,999").unwrap();
        assert_eq!(
            (e.priority, e.id.as_str(), e.attempts, e.deadline()),
            (Priority::Critical, "123-4-5", 2, Some(999))
        );
        for bad in ["", ".tmp", "9-1,0", "01-1,0", "0-1", "0-1,x"] {
            assert!(Entry::parse(bad).is_none(), "{bad}");
        }
    }
}
