//! Where the driver takes its tasks from and sends its answers to. Today the stand-in queue of
//! `af_spool::tasks`; the af-bus inbox implements the same trait once it lands.

use af_spool::fifodir::Listener;
use af_spool::tasks::{Claimed, TaskQueue, TaskResponse};
use af_spool::{AgentId, Result, Spool};
use std::os::fd::BorrowedFd;

/// A source of tasks: claimed by priority, answered once, put back when a turn could not finish.
pub trait TaskSource {
    /// How many tasks wait.
    fn pending(&self) -> usize;
    /// Claims the most urgent waiting task.
    fn claim(&mut self) -> Result<Option<Claimed>>;
    /// Puts a claimed task back, to be sent again.
    fn requeue(&mut self, claimed: Claimed) -> Result<()>;
    /// Answers a claimed task.
    fn respond(&mut self, claimed: Claimed, response: &TaskResponse) -> Result<()>;
    /// Readable when new tasks may have arrived.
    fn wake_fd(&self) -> BorrowedFd<'_>;
    /// Consumes the wake-ups.
    fn drain(&mut self);
}

/// The stand-in queue, woken through its fifodir.
pub struct SpoolTasks {
    queue: TaskQueue,
    listener: Listener,
}

impl SpoolTasks {
    /// Opens the agent's queue, subscribes before looking (so no wake-up is missed), and puts back
    /// what a killed af-wrap had claimed. Returns the source and how many tasks were put back.
    pub fn open(spool: &Spool, id: &AgentId) -> Result<(SpoolTasks, usize)> {
        let queue = TaskQueue::new(spool, id)?;
        let listener = queue.fifodir().subscribe()?;
        let recovered = queue.recover()?;
        Ok((SpoolTasks { queue, listener }, recovered))
    }
}

impl TaskSource for SpoolTasks {
    fn pending(&self) -> usize {
        self.queue.pending()
    }
    fn claim(&mut self) -> Result<Option<Claimed>> {
        self.queue.claim()
    }
    fn requeue(&mut self, claimed: Claimed) -> Result<()> {
        self.queue.requeue(claimed)
    }
    fn respond(&mut self, claimed: Claimed, response: &TaskResponse) -> Result<()> {
        self.queue.respond(claimed, response)
    }
    fn wake_fd(&self) -> BorrowedFd<'_> {
        self.listener.fd()
    }
    fn drain(&mut self) {
        let _ = self.listener.drain();
    }
}
