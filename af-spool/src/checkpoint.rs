//! Checkpoints: the record of one, its id, and where its parts live under the agent's directory.
//!
//! ```text
//! agents/<id>/checkpoints/lock                 flock: held by af-checkpoint while it changes them
//! agents/<id>/checkpoints/rollback.json        a rollback under way (so a rerun finishes it)
//! agents/<id>/checkpoints/index-cache-<hash>   af-checkpoint's git index for one repository
//! agents/<id>/checkpoints/<ckpt>/checkpoint.json   the Checkpoint record
//! agents/<id>/checkpoints/<ckpt>/config.json       the agent's config then
//! agents/<id>/checkpoints/<ckpt>/state.json        the agent's state then
//! agents/<id>/checkpoints/<ckpt>/inbox/            its pending and in-flight messages then
//! agents/<id>/checkpoints/<ckpt>/transcript.jsonl  its conversation's transcript then
//! agents/<id>/checkpoints/<ckpt>/tree.tar.gz       its working tree, outside git
//! agents/<id>/checkpoints/.<hidden>                a checkpoint being built (never listed)
//! ```
//!
//! A checkpoint is built under a hidden name and renamed into place, so a listed checkpoint is
//! always whole.

use crate::error::{Error, Result};
use crate::id::{AgentId, validate_name};
use crate::spool::Spool;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A checkpoint id: `ck-<millis>-<suffix>`, so that ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CheckpointId(String);

impl CheckpointId {
    /// Validates a checkpoint id given by a user (the agent id rules: no `/`, no `..`).
    pub fn new(s: &str) -> Result<Self> {
        validate_name("checkpoint id", s)?;
        Ok(CheckpointId(s.to_owned()))
    }

    /// A fresh id for a checkpoint taken now.
    pub fn generate() -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let suffix = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
        CheckpointId(format!("ck-{:013}-{suffix:04x}", Timestamp::now().0))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl<'de> Deserialize<'de> for CheckpointId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CheckpointId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a checkpoint's working-tree snapshot lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TreeSnapshot {
    /// A commit in the repository, held by a private ref.
    Git {
        /// The repository's top-level directory.
        repo: PathBuf,
        /// The ref that holds the commit (`refs/agentflow/checkpoints/<agent>/<ckpt>`).
        #[serde(rename = "ref")]
        reference: String,
        /// The snapshot commit.
        commit: String,
        /// The snapshot's tree.
        tree: String,
        /// HEAD when the checkpoint was taken, if the repository had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head: Option<String>,
    },
    /// A gzip-compressed tar archive in the checkpoint's directory.
    Archive {
        /// The archive's file name, inside the checkpoint directory.
        file: String,
        /// Its size in bytes.
        bytes: u64,
    },
}

/// The agent CLI's conversation as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationCopy {
    /// The conversation's session id.
    pub session_id: String,
    /// Where the transcript lived (and is restored to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<PathBuf>,
    /// The copy's file name inside the checkpoint directory, if the transcript existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
}

/// One checkpoint of an agent (DESIGN.md's Checkpoint record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Its id.
    pub id: CheckpointId,
    /// The agent.
    pub agent: AgentId,
    /// What the user said it is.
    #[serde(default)]
    pub description: String,
    /// When it was taken.
    pub created_at: Timestamp,
    /// What it holds: `config`, `state`, `messages`, `conversation`, `workdir`.
    pub holds: Vec<String>,
    /// The agent's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// Where the working-tree snapshot lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<TreeSnapshot>,
    /// How many messages it holds.
    #[serde(default)]
    pub messages: u32,
    /// The conversation reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationCopy>,
    /// How long taking it took, in milliseconds.
    #[serde(default)]
    pub took_ms: u64,
}

/// A rollback under way, written before it changes anything so that a rerun can finish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackMark {
    /// The checkpoint being restored.
    pub checkpoint: CheckpointId,
    /// Whether to start the agent again at the end (it ran when the rollback began).
    pub restart: bool,
    /// When the rollback began.
    pub started_at: Timestamp,
}

/// The private ref that holds a checkpoint's working-tree commit.
pub fn git_ref(agent: &AgentId, ckpt: &CheckpointId) -> String {
    format!("refs/agentflow/checkpoints/{agent}/{ckpt}")
}

impl Spool {
    /// The directory holding an agent's checkpoints.
    pub fn checkpoints_dir(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("checkpoints")
    }

    /// One checkpoint's directory.
    pub fn checkpoint_dir(&self, id: &AgentId, ckpt: &CheckpointId) -> PathBuf {
        self.checkpoints_dir(id).join(ckpt.as_str())
    }

    /// A checkpoint's record, inside its directory.
    pub fn checkpoint_path(&self, id: &AgentId, ckpt: &CheckpointId) -> PathBuf {
        self.checkpoint_dir(id, ckpt).join(CHECKPOINT_FILE)
    }

    /// The lock af-checkpoint holds while it changes an agent's checkpoints or rolls it back.
    pub fn checkpoints_lock_path(&self, id: &AgentId) -> PathBuf {
        self.checkpoints_dir(id).join("lock")
    }

    /// The mark of a rollback under way.
    pub fn rollback_mark_path(&self, id: &AgentId) -> PathBuf {
        self.checkpoints_dir(id).join("rollback.json")
    }

    /// af-checkpoint's own git index for the repository at `repo` (a stat cache: starting from it,
    /// `git add --all` rehashes only the files changed since the last checkpoint or rollback).
    pub fn index_cache_path(&self, id: &AgentId, repo: &std::path::Path) -> PathBuf {
        // FNV-1a of the repository's path: one cache per repository the agent worked in.
        let hash = repo
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
        self.checkpoints_dir(id).join(format!("index-cache-{hash:016x}"))
    }

    /// Reads one checkpoint's record; NotFound when it is not there (or not whole).
    pub fn read_checkpoint(&self, id: &AgentId, ckpt: &CheckpointId) -> Result<Checkpoint> {
        crate::atomic::read_json(&self.checkpoint_path(id, ckpt))?.ok_or_else(|| {
            Error::NotFound(format!("agent '{id}' has no checkpoint '{ckpt}' (see: af-checkpoint ls {id})"))
        })
    }

    /// Every whole checkpoint of an agent, oldest first. Hidden (half-built) ones are skipped.
    pub fn checkpoints(&self, id: &AgentId) -> Result<Vec<Checkpoint>> {
        let dir = self.checkpoints_dir(id);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            let Some(ckpt) = entry.file_name().to_str().and_then(|n| CheckpointId::new(n).ok()) else { continue };
            if !entry.path().is_dir() {
                continue;
            }
            match self.read_checkpoint(id, &ckpt) {
                Ok(c) => out.push(c),
                Err(Error::NotFound(_)) => {}
                // Only a power cut can leave one unreadable: it is not whole, so not listed.
                Err(e @ Error::Corrupt { .. }) => tracing::warn!("skipping checkpoint {ckpt} of {id}: {e}"),
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }
}

/// The name of a checkpoint's record inside its directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_sort_by_time() {
        let a = CheckpointId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = CheckpointId::generate();
        assert!(CheckpointId::new(a.as_str()).is_ok());
        assert!(a < b, "{a} < {b}");
    }

    #[test]
    fn rejects_paths_as_ids() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "ck 1"] {
            assert!(CheckpointId::new(bad).is_err(), "{bad}");
        }
    }
}
