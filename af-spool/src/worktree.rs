//! Agents with their own git worktree (`af-spawn create --worktree`): where the worktree lives,
//! its branch, and the mark of a setup command that has run.
//!
//! ```text
//! $AF_HOME/worktrees/<id>/      the agent's git worktree, on branch af/<id>
//! agents/<id>/setup.done        the config's setup command ran (af-wrap runs it once)
//! ```

use crate::id::AgentId;
use crate::spool::Spool;
use std::path::PathBuf;

/// The branch of an agent's worktree.
pub fn branch(id: &AgentId) -> String {
    format!("af/{id}")
}

/// The file in a repository's top-level directory listing untracked files (gitignore syntax) to
/// copy into a fresh worktree: `.env` and the like.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

impl Spool {
    /// The git worktree made for an agent created with `--worktree`.
    pub fn worktree_dir(&self, id: &AgentId) -> PathBuf {
        self.root().join("worktrees").join(id.as_str())
    }

    /// The mark that the agent's setup command has run successfully.
    pub fn setup_done_path(&self, id: &AgentId) -> PathBuf {
        self.agent_dir(id).join("setup.done")
    }
}
