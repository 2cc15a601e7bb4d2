//! Where the driver takes its tasks from and sends its answers to: the agent's af-bus inbox.
//! `task` and `request` messages are claimed by priority (others are left for `af-bus recv`),
//! kept claimed while their turn runs, acked when answered — the answer sent to the message's
//! reply-to queue and published on `tasks.results`, as worker tasks are — and given back when a
//! turn could not finish. Each claim is recorded in the agent's task folder, so that the next
//! af-wrap gives back at once what a killed one held.

use crate::tasks::{ClaimRecord, recover, send_result};
use af_spool::bus::Address;
use af_spool::fifodir::Listener;
use af_spool::message::{Kind, Message};
use af_spool::queue::Queue;
use af_spool::time::Timestamp;
use af_spool::{AgentId, Result, Spool, atomic};
use std::collections::HashSet;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A source of tasks: claimed by priority, answered once, given back when a turn could not finish.
pub trait TaskSource {
    /// How many tasks wait.
    fn pending(&mut self) -> usize;
    /// Claims the most urgent waiting task.
    fn claim(&mut self) -> Result<Option<Claimed>>;
    /// Gives a claimed task back, to be sent again; `failed` counts it as a failed attempt.
    fn requeue(&mut self, claimed: Claimed, failed: bool) -> Result<()>;
    /// Answers a claimed task.
    fn respond(&mut self, claimed: Claimed, response: &TaskResponse) -> Result<()>;
    /// Keeps a claim alive while its turn runs; the instant it must be called again.
    fn keep_alive(&mut self, claimed: &mut Claimed) -> Instant;
    /// Readable when new tasks may have arrived.
    fn wake_fd(&self) -> BorrowedFd<'_>;
    /// Consumes the wake-ups.
    fn drain(&mut self);
}

/// A task claimed from the inbox.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The message (a `task` or a `request`).
    pub message: Message,
    receipt: String,
    renew_at: Instant,
}

/// The answer to a task: the worker's result envelope (`taskId`, `agent`, `ok`, `durationMs`,
/// `timedOut`) with the claude fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    /// The task's message id.
    pub task_id: String,
    /// The agent that ran it.
    pub agent: String,
    /// Whether it succeeded (`!isError`).
    pub ok: bool,
    /// Whether the task failed.
    pub is_error: bool,
    /// The CLI's result text, or why the task failed.
    pub result: String,
    /// Model turns the task took.
    pub num_turns: u32,
    /// How long the turn took, in milliseconds.
    pub duration_ms: u64,
    /// Whether the turn ran over the agent's timeout (and was interrupted).
    pub timed_out: bool,
    /// What the agent has spent after the task, over all its CLI processes (US dollars).
    pub cost_usd: f64,
    /// The CLI session that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// A short machine-readable reason when it failed: `authentication_failed`, `budget`,
    /// `cli_missing`, `cli_exited`, `interrupted`, `timeout`, `rate_limit`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The tool calls the CLI refused during the turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_denials: Vec<super::stream::PermissionDenial>,
    /// When it was answered.
    pub time: Timestamp,
}

impl TaskResponse {
    /// The answer of `agent` to `task`: `error` None for a success, else its code (`text` then
    /// says why); `cost_usd` is what the agent has spent, `session_id` its CLI session.
    pub fn new(
        task: &str,
        agent: &AgentId,
        error: Option<&str>,
        text: &str,
        cost_usd: f64,
        session_id: Option<String>,
    ) -> Self {
        TaskResponse {
            task_id: task.to_owned(),
            agent: agent.to_string(),
            ok: error.is_none(),
            is_error: error.is_some(),
            result: text.to_owned(),
            num_turns: 0,
            duration_ms: 0,
            timed_out: error == Some("timeout"),
            cost_usd,
            session_id,
            error: error.map(str::to_owned),
            permission_denials: Vec::new(),
            time: Timestamp::now(),
        }
    }
}

/// The agent's inbox, woken through its fifodir.
pub struct Inbox {
    spool: Spool,
    id: AgentId,
    queue: Queue,
    listener: Listener,
    /// How long a claim lasts before it must be extended.
    visibility: Duration,
    /// Messages that are not tasks (left for other receivers).
    ignored: HashSet<String>,
    /// Where each claim is recorded.
    dir: PathBuf,
}

impl Inbox {
    /// Opens the agent's inbox, subscribes before looking (so no wake-up is missed), and gives
    /// back what a killed af-wrap had claimed. `visibility` is how long a claim lasts unextended.
    pub fn open(spool: &Spool, id: &AgentId, visibility: Duration) -> Result<Inbox> {
        let queue = Address::Inbox(id.clone()).queue(spool);
        queue.create()?;
        let listener = queue.listen()?;
        let dir = spool.task_dir(id);
        atomic::create_dir(&dir)?;
        recover(&dir, std::slice::from_ref(&queue));
        Ok(Inbox { spool: spool.clone(), id: id.clone(), queue, listener, visibility, ignored: HashSet::new(), dir })
    }

    fn record_path(&self, message: &Message) -> PathBuf {
        self.dir.join(format!("{}.claim", message.id))
    }

    fn record(&self, claimed: &Claimed) {
        let record = ClaimRecord { queue: 0, receipt: claimed.receipt.clone() };
        if let Err(e) = atomic::write_json(&self.record_path(&claimed.message), &record, atomic::Durability::Volatile) {
            tracing::warn!("cannot record the claim of task {}: {e}", claimed.message.id);
        }
    }

    fn forget(&self, claimed: &Claimed) {
        let _ = std::fs::remove_file(self.record_path(&claimed.message));
    }
}

impl TaskSource for Inbox {
    fn pending(&mut self) -> usize {
        // Expired claims (a killed predecessor's, say) come back before counting.
        let _ = self.queue.requeue_expired();
        let ignored = &self.ignored;
        self.queue.entries("new").map_or(0, |e| e.iter().filter(|e| !ignored.contains(&e.id)).count())
    }

    fn claim(&mut self) -> Result<Option<Claimed>> {
        loop {
            let ignored = &self.ignored;
            let Some(c) = self.queue.claim_where(1, self.visibility, |e| !ignored.contains(&e.id))?.pop() else {
                return Ok(None);
            };
            if !matches!(c.message.kind, Kind::Task | Kind::Request) {
                self.ignored.insert(c.message.id.clone());
                let _ = self.queue.release(&c.receipt);
                continue;
            }
            let claimed =
                Claimed { message: c.message, receipt: c.receipt, renew_at: Instant::now() + self.visibility / 2 };
            self.record(&claimed);
            return Ok(Some(claimed));
        }
    }

    fn requeue(&mut self, claimed: Claimed, failed: bool) -> Result<()> {
        self.queue.give_back(&claimed.receipt, failed)?;
        self.forget(&claimed);
        Ok(())
    }

    fn respond(&mut self, claimed: Claimed, response: &TaskResponse) -> Result<()> {
        if !self.queue.ack_receipt(&claimed.receipt)? {
            tracing::warn!(task = %claimed.message.id, "the claim was gone when the task was answered");
        }
        self.forget(&claimed);
        send_result(&self.spool, &self.id, &claimed.message, serde_json::to_value(response).unwrap_or_default());
        Ok(())
    }

    fn keep_alive(&mut self, claimed: &mut Claimed) -> Instant {
        if Instant::now() >= claimed.renew_at {
            match self.queue.extend(&claimed.receipt, self.visibility) {
                Ok(Some(r)) => {
                    claimed.receipt = r;
                    self.record(claimed);
                }
                Ok(None) => tracing::warn!(task = %claimed.message.id, "the claim was lost (its visibility passed)"),
                Err(e) => tracing::warn!(task = %claimed.message.id, "cannot extend the claim: {e}"),
            }
            claimed.renew_at = Instant::now() + self.visibility / 2;
        }
        claimed.renew_at
    }

    fn wake_fd(&self) -> BorrowedFd<'_> {
        self.listener.fd()
    }

    fn drain(&mut self) {
        let _ = self.listener.drain();
    }
}
