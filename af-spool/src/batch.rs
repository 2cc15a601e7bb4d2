//! All or nothing: many deliveries, to one queue or many, made visible together and made durable
//! with a constant number of fsyncs (group commit), whatever kills the sender on the way.
//!
//! ```text
//! $AF_HOME/bus/batch/.b.<pid>.<nanos>.<n>/   a batch being written (uncommitted)
//! $AF_HOME/bus/batch/<id>/                   a committed batch: its messages, files 0, 1, …, and
//!                                            `manifest` (JSON lines: [file, its queue file]),
//!                                            flocked by its sender while it delivers them
//! ```
//!
//! Each message is written into the batch's hidden directory, unsynced, with the manifest line
//! that names where it goes (`<queue>/new/<rank>-<id>,<attempts>`, relative to the spool root).
//! [`Batch::publish`] then makes them all durable at once (a `syncfs` of the spool's filesystem;
//! for a batch of at most [`SYNC_EACH_UP_TO`] files, an fdatasync of each instead, cheaper on a
//! busy disk), commits the batch with one rename (the directory loses its dot; its parent
//! fsynced), renames each message into its queue's `new/`, fsyncs each `new/` touched once,
//! removes the batch's directory and wakes each queue's listeners once.
//!
//! A sender killed before the commit leaves a hidden directory nobody reads (removed by the next
//! [`recover`] once its writer is gone); killed after it, a committed batch whose lock nobody
//! holds: [`recover`], run before a queue is claimed from or counted (see [`crate::queue`]),
//! renames what is left of it into place. So a batch is seen whole or not at all, every message
//! whole, and nothing is lost once the sender said it was delivered, even by a power cut.

use crate::atomic;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::queue::{Entry, Queue};
use crate::spool::Spool;
use nix::fcntl::OFlag;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// A batch of at most this many messages is made durable by an fdatasync of each file rather
/// than by a `syncfs`, which writes whatever else is dirty on the filesystem too.
pub const SYNC_EACH_UP_TO: usize = 8;

/// The name of a batch's list of deliveries.
const MANIFEST: &str = "manifest";

/// An uncommitted batch whose writer is gone is removed once it is this old (its writer could be
/// between making the directory and locking its manifest).
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Spool {
    /// Where batches wait while they are delivered (see batch.rs).
    pub fn batch_dir(&self) -> PathBuf {
        self.bus_dir().join("batch")
    }
}

/// The batch's own directory while it is written.
#[derive(Debug)]
struct Staging {
    /// Its path (hidden until the commit).
    path: PathBuf,
    fd: OwnedFd,
    /// The manifest, flocked from its creation until the batch is delivered or removed.
    manifest: File,
    /// The files written, kept open while the batch is small enough to fdatasync each.
    open: Vec<File>,
}

/// Messages written into a batch, not yet delivered.
#[derive(Debug)]
pub struct Batch {
    root: PathBuf,
    staging: Option<Staging>,
    /// Each message's target, relative to the spool root; the message's file is its index.
    targets: Vec<PathBuf>,
    /// The manifest's lines so far.
    manifest: Vec<u8>,
    /// Each queue touched once, with whether any delivery into it must be durable, and how many
    /// messages go to it.
    queues: Vec<(Queue, bool, usize)>,
    /// The bundles being filled, one per bundled queue and priority (see [`Queue::bundled`]).
    bundles: Vec<Filling>,
}

/// A bundle being filled: its queue, the stem of its first message, its content so far.
#[derive(Debug)]
struct Filling {
    queue: Queue,
    rank: u8,
    first: String,
    count: usize,
    content: Vec<u8>,
}

impl Filling {
    /// An empty bundle for `queue`, begun by `first` (of its priority).
    fn new(queue: &Queue, first: &Message) -> Filling {
        let rank = first.priority.rank();
        Filling { queue: queue.clone(), rank, first: first.stem(), count: 0, content: Vec::new() }
    }
}

impl Batch {
    /// An empty batch on `spool`.
    pub fn new(spool: &Spool) -> Batch {
        Batch {
            root: spool.root().to_path_buf(),
            staging: None,
            targets: Vec::new(),
            manifest: Vec::new(),
            queues: Vec::new(),
            bundles: Vec::new(),
        }
    }

    /// Writes one message for `queue` (durable as the queue says) into the batch; the queue is
    /// made when it does not exist. For a bundled queue the message joins the bundle of its
    /// priority, written when full or at [`Batch::publish`].
    pub fn stage(&mut self, queue: &Queue, message: &Message, bytes: &[u8]) -> Result<()> {
        if !queue.is_bundled() {
            return self.add_file(queue, format!("{},0", message.stem()), bytes, 1);
        }
        let rank = message.priority.rank();
        let i = match self.bundles.iter().position(|b| b.rank == rank && b.queue.dir() == queue.dir()) {
            Some(i) => i,
            None => {
                self.bundles.push(Filling::new(queue, message));
                self.bundles.len() - 1
            }
        };
        // Full before this message (by count, or by size with it): written, and a new one begun.
        let b = &self.bundles[i];
        if b.count > 0 && b.content.len() + bytes.len() + 1 > crate::queue::BUNDLE_MAX_BYTES {
            let full = std::mem::replace(&mut self.bundles[i], Filling::new(queue, message));
            self.write_bundle(full)?;
        }
        let b = &mut self.bundles[i];
        b.queue = b.queue.clone().durable(b.queue.is_durable() || queue.is_durable());
        b.content.extend_from_slice(bytes);
        b.content.push(b'\n');
        b.count += 1;
        if b.count >= crate::queue::BUNDLE_MAX {
            let full = self.bundles.swap_remove(i);
            self.write_bundle(full)?;
        }
        Ok(())
    }

    /// Writes a bundle into the batch: one file (a plain message file when it holds one).
    fn write_bundle(&mut self, b: Filling) -> Result<()> {
        let name = format!("{},0", crate::queue::file_stem(&b.first, b.count));
        let bytes = if b.count == 1 { b.content.strip_suffix(b"\n").unwrap_or(&b.content) } else { &b.content };
        self.add_file(&b.queue, name, bytes, b.count)
    }

    /// Writes one file of the batch, for `queue`'s `new/<name>`, holding `messages` messages.
    fn add_file(&mut self, queue: &Queue, name: String, bytes: &[u8], messages: usize) -> Result<()> {
        if !queue.exists() {
            queue.create()?;
        }
        let target = queue.dir().join("new").join(name);
        let rel = relative(&self.root, &target)?;
        let staging = match &mut self.staging {
            Some(s) => s,
            None => self.staging.insert(Staging::make(&self.root)?),
        };
        let file_name = self.targets.len().to_string();
        let file = atomic::create_in(&staging.fd, &staging.path, &file_name, bytes)?;
        if self.targets.len() < SYNC_EACH_UP_TO {
            staging.open.push(file);
        } else {
            staging.open.clear();
        }
        serde_json::to_writer(&mut self.manifest, &(self.targets.len(), &rel))
            .map_err(|e| Error::Invalid(format!("cannot encode a batch's manifest: {e}")))?;
        self.manifest.push(b'\n');
        self.targets.push(rel);
        match self.queues.iter_mut().find(|(q, _, _)| q.dir() == queue.dir()) {
            Some((_, durable, n)) => {
                *durable |= queue.is_durable();
                *n += messages;
            }
            None => self.queues.push((queue.clone(), queue.is_durable(), messages)),
        }
        Ok(())
    }

    /// How many deliveries are staged.
    pub fn len(&self) -> usize {
        self.queues.iter().map(|(_, _, n)| n).sum::<usize>() + self.bundles.iter().map(|b| b.count).sum::<usize>()
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers every message of the batch (see the module's comment), then wakes the
    /// listeners. On failure nothing of the batch stays visible (but for a message a receiver
    /// claimed in the instant a failed delivery was taken back) and nothing stays staged.
    pub fn publish(mut self) -> Result<()> {
        for b in std::mem::take(&mut self.bundles) {
            self.write_bundle(b)?;
        }
        let Some(staging) = self.staging.take() else { return Ok(()) };
        let durable = self.queues.iter().any(|(_, d, _)| *d);
        let committed = match staging.commit(&self.manifest, durable, self.targets.len()) {
            Ok(c) => c,
            Err((e, staging)) => {
                staging.remove();
                return Err(e);
            }
        };
        let mut delivered = 0;
        let result = self
            .targets
            .iter()
            .enumerate()
            .try_for_each(|(i, rel)| {
                deliver(&committed.fd, &committed.path, i, &self.root.join(rel))?;
                delivered += 1;
                Ok(())
            })
            .and_then(|()| self.queues.iter().filter(|(_, d, _)| *d).try_for_each(|(q, _, _)| q.sync()));
        if let Err(e) = result {
            // Undone: first the commit, so that nobody finishes the batch; then its deliveries.
            let _ = std::fs::remove_file(committed.path.join(MANIFEST));
            for rel in &self.targets[..delivered] {
                if std::fs::remove_file(self.root.join(rel)).is_err() {
                    tracing::warn!("a message of a failed batch was claimed before it could be taken back");
                }
            }
            committed.remove();
            return Err(e);
        }
        committed.remove();
        for (q, _, n) in &self.queues {
            q.tally().add(&vec!["sent".to_owned(); *n]);
            q.notify("batch");
        }
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(s) = self.staging.take() {
            s.remove();
        }
    }
}

impl Staging {
    /// A new hidden directory in `bus/batch/`, its manifest created and locked.
    fn make(root: &Path) -> Result<Staging> {
        let parent = root.join("bus").join("batch");
        let path = parent.join(atomic::unique_name("b"));
        atomic::create_dir(&path)?;
        let fd = crate::beneath::open_dir(&path)?;
        let made = crate::beneath::open(
            &path.join(MANIFEST),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            0o600,
            "create",
        )
        .and_then(|f| {
            fs2::FileExt::lock_exclusive(&f).map_err(|e| Error::io("lock", &path.join(MANIFEST), e))?;
            Ok(f)
        });
        match made {
            Ok(manifest) => Ok(Staging { path, fd, manifest, open: Vec::new() }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(e)
            }
        }
    }

    /// Writes the manifest, makes the batch durable (when `durable`) and commits it: the rename
    /// of its directory to a visible name. On failure, the staging back, to be removed.
    fn commit(mut self, manifest: &[u8], durable: bool, n: usize) -> std::result::Result<Staging, (Error, Staging)> {
        let mf = self.path.join(MANIFEST);
        if let Err(e) = self.manifest.write_all(manifest) {
            return Err((Error::io("write", &mf, e), self));
        }
        if durable {
            let synced = if n <= SYNC_EACH_UP_TO {
                self.open
                    .iter()
                    .chain([&self.manifest])
                    .try_for_each(File::sync_data)
                    .map_err(|e| Error::io("fsync", &self.path, e))
                    .and_then(|()| fsync(&self.fd, &self.path))
            } else {
                nix::unistd::syncfs(self.fd.as_raw_fd()).map_err(|e| Error::io("syncfs", &self.path, e.into()))
            };
            if let Err(e) = synced {
                return Err((e, self));
            }
        }
        self.open.clear();
        let parent = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let visible = parent.join(crate::message::new_id());
        if let Err(e) = std::fs::rename(&self.path, &visible) {
            return Err((Error::io("commit", &visible, e), self));
        }
        self.path = visible;
        if durable {
            if let Err(e) = crate::atomic::sync_dir(&parent) {
                return Err((e, self));
            }
        }
        Ok(self)
    }

    /// Removes the batch's directory and what is left in it.
    fn remove(self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a batch's directory");
            }
        }
    }
}

/// `target` relative to the spool's root: a queue of the spool.
fn relative(root: &Path, target: &Path) -> Result<PathBuf> {
    target
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .map_err(|_| Error::Invalid(format!("{} is not a queue of the spool at {}", target.display(), root.display())))
}

fn fsync(fd: &OwnedFd, path: &Path) -> Result<()> {
    nix::unistd::fsync(fd.as_raw_fd()).map_err(|e| Error::io("fsync", path, e.into()))
}

/// Renames message file `i` of the batch in `dir` to `target`, making the target's folder when
/// a queue half made lacks it. False when the file is gone (delivered already).
fn deliver(dir: &OwnedFd, path: &Path, i: usize, target: &Path) -> Result<bool> {
    let name = i.to_string();
    let rename = || nix::fcntl::renameat(Some(dir.as_raw_fd()), name.as_str(), None, target);
    match rename() {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ENOENT) => {
            let there =
                nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name.as_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok();
            if !there {
                return Ok(false);
            }
            atomic::create_dir(target.parent().unwrap_or(Path::new("/")))?;
            rename().map(|()| true).map_err(|e| Error::io("deliver", &path.join(&name), e.into()))
        }
        Err(e) => Err(Error::io("deliver", &path.join(&name), e.into())),
    }
}

/// Finishes every committed batch whose sender is gone (killed after its commit): what is left
/// of it is renamed into place, each queue touched fsynced and woken, and its directory removed.
/// Uncommitted batches of writers gone a while are removed. Returns how many messages were
/// delivered. A batch whose sender still delivers it (its manifest is locked) is left to it.
pub fn recover(spool: &Spool) -> Result<usize> {
    let parent = spool.batch_dir();
    let read = match std::fs::read_dir(&parent) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("list", &parent, e)),
    };
    let mut done = 0;
    for entry in read.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let path = entry.path();
        let Some(manifest) = crate::beneath::open_read(&path.join(MANIFEST))? else {
            // Being made, or being removed: its writer is at it (or gone; then it is old).
            if name.starts_with('.') && old(&path) {
                let _ = std::fs::remove_dir_all(&path);
            }
            continue;
        };
        match fs2::FileExt::try_lock_exclusive(&manifest) {
            Ok(()) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.raw_os_error() == Some(nix::libc::EWOULDBLOCK) =>
            {
                continue;
            }
            Err(e) => return Err(Error::io("lock", &path.join(MANIFEST), e)),
        }
        if name.starts_with('.') {
            // Never committed, its writer gone.
            if old(&path) {
                let _ = std::fs::remove_dir_all(&path);
            }
            continue;
        }
        // Finished (and removed) by its sender, or by another, since we opened it.
        if !path.join(MANIFEST).exists() {
            continue;
        }
        done += finish(spool, &path, &manifest)?;
        drop(manifest);
    }
    Ok(done)
}

/// Whether a batch's directory was made longer ago than [`ABANDONED_AFTER`].
fn old(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ABANDONED_AFTER)
}

/// Delivers what is left of the committed batch at `path` (its manifest locked by us), then
/// removes it.
fn finish(spool: &Spool, path: &Path, manifest: &File) -> Result<usize> {
    use std::io::Read;
    let mut text = Vec::new();
    (&*manifest).read_to_end(&mut text).map_err(|e| Error::io("read", &path.join(MANIFEST), e))?;
    let fd = crate::beneath::open_dir(path)?;
    let mut queues: Vec<(PathBuf, usize)> = Vec::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let (i, rel): (usize, PathBuf) = serde_json::from_slice(line)
            .map_err(|e| Error::Corrupt { path: path.join(MANIFEST), detail: e.to_string() })?;
        // Only a queue file of this spool: `<queue>/new/<name>`.
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
        let queue = rel.parent().filter(|p| p.ends_with("new")).and_then(Path::parent);
        let (true, Some(queue)) = (plain, queue) else {
            return Err(Error::Corrupt {
                path: path.join(MANIFEST),
                detail: format!("{} is no queue file", rel.display()),
            });
        };
        if deliver(&fd, path, i, &spool.root().join(&rel))? {
            // A bundle counts as its messages.
            let n = rel.file_name().and_then(|f| f.to_str()).and_then(Entry::parse).map_or(1, |e| e.count());
            match queues.iter_mut().find(|(q, _)| q == queue) {
                Some((_, sent)) => *sent += n,
                None => queues.push((queue.to_path_buf(), n)),
            }
        }
    }
    let mut delivered = 0;
    for (rel, n) in &queues {
        let q = Queue::new(spool.root().join(rel));
        q.sync()?;
        q.tally().add(&vec!["sent".to_owned(); *n]);
        q.notify("batch");
        delivered += n;
    }
    let _ = std::fs::remove_file(path.join(MANIFEST));
    let _ = std::fs::remove_dir_all(path);
    if delivered > 0 {
        tracing::warn!(messages = delivered, batch = %path.display(), "finished a batch its sender left half delivered");
    }
    Ok(delivered)
}
