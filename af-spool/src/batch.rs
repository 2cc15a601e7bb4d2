//! All or nothing: many deliveries, to one queue or many, made visible only once every message is
//! on disk. Each message is first staged (written into its queue's `tmp/`, fsynced when durable);
//! [`Batch::publish`] then renames them into `new/`, fsyncs each `new/` touched and wakes each
//! queue's listeners once. A batch that fails (a full disk) or is dropped unpublished removes what
//! it staged, so a retry delivers each message exactly once.

use crate::error::Result;
use crate::message::Message;
use crate::queue::{Queue, Staged};

/// Messages staged in their queues, not yet delivered.
#[derive(Debug, Default)]
pub struct Batch {
    staged: Vec<Staged>,
    /// Each queue touched once, with whether any delivery into it must be durable.
    queues: Vec<(Queue, bool)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Stages one message in `queue` (durable as the queue says).
    pub fn stage(&mut self, queue: &Queue, message: &Message, bytes: &[u8]) -> Result<()> {
        let staged = queue.stage(message, bytes)?;
        self.staged.push(staged);
        match self.queues.iter_mut().find(|(q, _)| q.dir() == queue.dir()) {
            Some((_, durable)) => *durable |= queue.is_durable(),
            None => self.queues.push((queue.clone(), queue.is_durable())),
        }
        Ok(())
    }

    /// How many deliveries are staged.
    pub fn len(&self) -> usize {
        self.staged.len()
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Delivers every staged message, then wakes the listeners. On failure, the deliveries made
    /// so far are taken back (but for one a receiver claimed in that instant) and the rest
    /// removed: nothing of the batch stays visible.
    pub fn publish(mut self) -> Result<()> {
        let staged = std::mem::take(&mut self.staged);
        let mut published = 0;
        let result = staged
            .iter()
            .try_for_each(|s| {
                s.publish_uncounted()?;
                published += 1;
                Ok(())
            })
            .and_then(|()| self.queues.iter().filter(|(_, durable)| *durable).try_for_each(|(q, _)| q.sync()));
        if let Err(e) = result {
            for s in &staged[..published] {
                if !s.withdraw() {
                    tracing::warn!("a message of a failed batch was claimed before it could be taken back");
                }
            }
            for s in &staged[published..] {
                s.discard();
            }
            return Err(e);
        }
        for (q, _) in &self.queues {
            let n = staged.iter().filter(|s| s.queue_tally().path() == q.tally().path()).count();
            q.tally().add(&vec!["sent".to_owned(); n]);
            q.notify("batch");
        }
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for s in &self.staged {
            s.discard();
        }
    }
}
