//! A stand-in task queue for claude-code agents, until af-bus's inbox replaces it: one Maildir-like
//! directory per agent. A task is delivered into `tasks/tmp`, renamed into `tasks/new` (file names
//! sort by priority, then time); af-wrap claims it by renaming it into `tasks/cur`, and answers by
//! writing `responses/<task id>.json` and removing the claimed file. `tasks.d/` is a fifodir woken
//! after each delivery.

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use crate::fifodir::Fifodir;
use crate::id::AgentId;
use crate::spool::Spool;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The largest task accepted, in bytes.
pub const MAX_TASK_BYTES: usize = 256 << 10;

/// How urgent a task is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// First.
    Critical,
    /// Before normal.
    High,
    /// The default.
    #[default]
    Normal,
    /// Last.
    Low,
}

impl Priority {
    fn digit(self) -> u8 {
        self as u8
    }
}

/// A task for an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Unique id; the response carries it.
    pub id: String,
    /// Who sent it.
    #[serde(default)]
    pub from: Option<String>,
    /// Its priority.
    #[serde(default)]
    pub priority: Priority,
    /// When it was sent.
    pub created_at: Timestamp,
    /// How many times it was handed to the agent before.
    #[serde(default)]
    pub attempts: u32,
    /// What to do: the seed's `{type, action, requirements, files}`, or a plain string.
    pub payload: serde_json::Value,
}

/// The answer to a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    /// The task's id.
    pub task_id: String,
    /// Whether the task failed.
    pub is_error: bool,
    /// The CLI's result text, or why the task failed.
    pub result: String,
    /// Model turns the task took.
    #[serde(default)]
    pub num_turns: u32,
    /// How long the turn took, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// The session's total cost after the task (US dollars).
    #[serde(default)]
    pub cost_usd: f64,
    /// The CLI session that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// A short machine-readable reason when it failed: `authentication_failed`, `budget`,
    /// `cli_missing`, `cli_exited`, `interrupted`, `rate_limit`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was answered.
    pub time: Timestamp,
}

/// One agent's task queue.
#[derive(Debug, Clone)]
pub struct TaskQueue {
    dir: PathBuf,
    responses: PathBuf,
    notify: PathBuf,
}

/// A task claimed from the queue (its file is in `cur/`).
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The task.
    pub task: Task,
    path: PathBuf,
}

impl TaskQueue {
    /// The queue of agent `id` (directories created when needed).
    pub fn new(spool: &Spool, id: &AgentId) -> Result<TaskQueue> {
        let agent = spool.agent_dir(id);
        let q =
            TaskQueue { dir: agent.join("tasks"), responses: agent.join("responses"), notify: agent.join("tasks.d") };
        for sub in ["tmp", "new", "cur"] {
            atomic::create_dir(&q.dir.join(sub))?;
        }
        atomic::create_dir(&q.responses)?;
        Ok(q)
    }

    /// The fifodir woken after each delivery.
    pub fn fifodir(&self) -> Fifodir {
        Fifodir::new(self.notify.clone())
    }

    /// Delivers a task; returns its id.
    pub fn submit(&self, payload: serde_json::Value, priority: Priority, from: Option<String>) -> Result<String> {
        let text = serde_json::to_vec(&payload).map_err(|e| Error::Invalid(format!("bad task: {e}")))?;
        if text.len() > MAX_TASK_BYTES {
            return Err(Error::Invalid(format!("task is larger than {MAX_TASK_BYTES} bytes")));
        }
        let id = atomic::unique_name("task").trim_start_matches('.').replace('.', "-");
        let task = Task { id: id.clone(), from, priority, created_at: Timestamp::now(), attempts: 0, payload };
        self.deliver(&task)?;
        Ok(id)
    }

    fn file_name(task: &Task) -> String {
        format!("{}-{:016}-{}.json", task.priority.digit(), task.created_at.0, task.id)
    }

    fn deliver(&self, task: &Task) -> Result<()> {
        let tmp = self.dir.join("tmp").join(Self::file_name(task));
        atomic::write_json(&tmp, task, Durability::Durable)?;
        let new = self.dir.join("new").join(Self::file_name(task));
        std::fs::rename(&tmp, &new).map_err(|e| Error::io("rename into", &new, e))?;
        atomic::sync_dir(&self.dir.join("new"))?;
        self.fifodir().notify(&serde_json::json!({"task": task.id}));
        Ok(())
    }

    /// How many tasks wait.
    pub fn pending(&self) -> usize {
        self.list("new").len()
    }

    fn list(&self, sub: &str) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| !n.starts_with('.') && n.ends_with(".json")))
            .map(|e| e.path())
            .collect();
        names.sort();
        names
    }

    /// Claims the most urgent waiting task, if any. Unreadable files are moved aside.
    pub fn claim(&self) -> Result<Option<Claimed>> {
        for path in self.list("new") {
            let Some(name) = path.file_name() else { continue };
            let cur = self.dir.join("cur").join(name);
            match std::fs::rename(&path, &cur) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("claim", &path, e)),
            }
            match atomic::read_json::<Task>(&cur) {
                Ok(Some(task)) => return Ok(Some(Claimed { task, path: cur })),
                _ => {
                    tracing::warn!(path = %cur.display(), "unreadable task, set aside");
                    let _ = std::fs::rename(&cur, atomic::sibling(&cur, ".bad"));
                }
            }
        }
        Ok(None)
    }

    /// Puts every claimed task back (after af-wrap was killed mid-task): they are sent again.
    pub fn recover(&self) -> Result<usize> {
        let mut n = 0;
        for path in self.list("cur") {
            if let Ok(Some(task)) = atomic::read_json::<Task>(&path) {
                self.requeue(Claimed { task, path })?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Puts a claimed task back in the queue, its attempt count raised.
    pub fn requeue(&self, mut claimed: Claimed) -> Result<()> {
        claimed.task.attempts += 1;
        self.deliver(&claimed.task)?;
        let _ = std::fs::remove_file(&claimed.path);
        Ok(())
    }

    /// Answers a claimed task: the response is written, then the task leaves the queue.
    pub fn respond(&self, claimed: Claimed, response: &TaskResponse) -> Result<()> {
        self.write_response(response)?;
        std::fs::remove_file(&claimed.path).map_err(|e| Error::io("remove", &claimed.path, e))
    }

    fn write_response(&self, response: &TaskResponse) -> Result<()> {
        crate::id::validate_name("task id", &response.task_id)?;
        atomic::write_json(&self.responses.join(format!("{}.json", response.task_id)), response, Durability::Durable)
    }

    /// The response to task `task_id`, once there is one.
    pub fn response(&self, task_id: &str) -> Result<Option<TaskResponse>> {
        crate::id::validate_name("task id", task_id)?;
        atomic::read_json(&self.responses.join(format!("{task_id}.json")))
    }
}
