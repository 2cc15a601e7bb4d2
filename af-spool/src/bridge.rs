//! What `af-bus bridge` keeps on disk to deliver the messages that come in from other hosts
//! exactly once into their local queues, however often an entry comes again (a bridge killed
//! before it acked one to Redis, a sender's bridge that added one twice).
//!
//! ```text
//! $AF_HOME/bridge/staged/<id>    an inbound message on its way into its queue
//! $AF_HOME/bridge/seen/<id>      the message <id> was delivered (empty; kept SEEN_KEEP)
//! $AF_HOME/bridge/lock           flock: held by the running bridge
//! ```
//!
//! A message is written to `staged/<id>` (synced), then `seen/<id>` is made (synced), then the
//! staged file is renamed into its queue's `new/`. So `seen` without `staged` means delivered;
//! `seen` with `staged` means a bridge died between the two, and the rename is finished now;
//! neither means new. A crash at any point neither loses the message nor delivers it twice.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::message::{Message, validate_id};
use crate::queue::Queue;
use crate::spool::Spool;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// How long the record of a delivered message is kept: longer than any entry waits in Redis.
pub const SEEN_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

impl Spool {
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

/// What became of one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered now.
    Delivered,
    /// Delivered before (a redelivered entry, or a second copy of it): nothing done.
    Duplicate,
}

/// Delivers inbound messages, each into its queue, exactly once by message id (see the module's
/// comment). With `durable`, every step is fsynced before the next one, one directory fsync per
/// step for the whole batch.
pub fn deliver_once(spool: &Spool, batch: &[(Message, Queue)], durable: bool) -> Result<Vec<Delivery>> {
    let (staged_dir, seen_dir) = (spool.staged_dir(), spool.seen_dir());
    atomic::create_dir(&staged_dir)?;
    atomic::create_dir(&seen_dir)?;
    let contents = if durable { Durability::Contents } else { Durability::Volatile };
    let mut out = Vec::with_capacity(batch.len());
    let mut in_batch = HashSet::new();
    // Which messages to finish (rename into their queues), and which of those are new.
    let (mut finish, mut fresh) = (Vec::new(), Vec::new());
    for (i, (m, _)) in batch.iter().enumerate() {
        validate_id(&m.id)?;
        let (staged, seen) = (staged_dir.join(&m.id), seen_dir.join(&m.id));
        if !in_batch.insert(m.id.as_str()) || (seen.exists() && !staged.exists()) {
            out.push(Delivery::Duplicate);
            continue;
        }
        out.push(Delivery::Delivered);
        if !seen.exists() {
            atomic::write(&staged, &m.encode()?, contents)?;
            fresh.push(i);
        }
        finish.push(i);
    }
    if durable && !fresh.is_empty() {
        atomic::sync_dir(&staged_dir)?;
    }
    for &i in &fresh {
        atomic::write(&seen_dir.join(&batch[i].0.id), b"", contents)?;
    }
    if durable && !fresh.is_empty() {
        atomic::sync_dir(&seen_dir)?;
    }
    let mut touched: Vec<&Queue> = Vec::new();
    for &i in &finish {
        let (m, q) = &batch[i];
        q.adopt(m, &staged_dir.join(&m.id))?;
        if !touched.iter().any(|t| t.dir() == q.dir()) {
            touched.push(q);
        }
    }
    for q in &touched {
        if durable {
            q.sync()?;
        }
    }
    if durable && !finish.is_empty() {
        atomic::sync_dir(&staged_dir)?;
    }
    for &i in &finish {
        batch[i].1.notify(&batch[i].0.id);
    }
    Ok(out)
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
    fn a_message_is_delivered_once_and_a_half_done_delivery_is_finished() {
        let root = std::env::temp_dir().join(format!("af-bridge-test-{}", crate::message::new_id()));
        let spool = Spool::open(&root).unwrap();
        let q = Queue::new(root.join("q"));
        let m = Message::new("t", Kind::Event, Priority::High, serde_json::json!(1));
        let twice = [(m.clone(), q.clone()), (m.clone(), q.clone())];
        assert_eq!(deliver_once(&spool, &twice, false).unwrap(), [Delivery::Delivered, Delivery::Duplicate]);
        assert_eq!(deliver_once(&spool, &twice[..1], true).unwrap(), [Delivery::Duplicate]);
        assert_eq!(q.pending().unwrap().len(), 1);
        // A bridge that died after the mark and before the rename: the staged file is there.
        let n = Message::new("t", Kind::Event, Priority::Low, serde_json::json!(2));
        atomic::write(&spool.staged_dir().join(&n.id), &n.encode().unwrap(), Durability::Volatile).unwrap();
        atomic::write(&spool.seen_dir().join(&n.id), b"", Durability::Volatile).unwrap();
        assert_eq!(deliver_once(&spool, &[(n.clone(), q.clone())], true).unwrap(), [Delivery::Delivered]);
        assert_eq!(q.pending().unwrap().iter().map(|p| p.id.clone()).collect::<Vec<_>>(), [m.id, n.id]);
        assert_eq!(prune_seen(&spool, Duration::ZERO), 2);
        let _ = std::fs::remove_dir_all(&root);
    }
}
