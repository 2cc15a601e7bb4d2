//! af-checkpoint's command line.

use clap::{Parser, Subcommand};

/// Checkpoints of AgentFlow agents, and rollback to them.
#[derive(Parser)]
#[command(
    name = "af-checkpoint",
    version,
    about = "Checkpoints of an agent (config, state, messages, conversation, working tree) and rollback",
    long_about = "Checkpoints of an agent and rollback to them.\n\n\
A checkpoint holds the agent's config and state, the messages in its inbox (pending and in flight), its \
conversation reference (session id and a copy of the transcript) and its working tree. Inside a git \
repository the whole tree as it is on disk (tracked changes, staged or not, and untracked files that are not \
ignored) is stored as a commit under refs/agentflow/checkpoints/<agent>/<checkpoint>, without touching HEAD, \
the branch, the index, the stash or any file; outside git it is a tar.gz archive in the spool.\n\n\
Rollback stops the agent if it runs, makes the working tree exactly what it was (files added since are \
removed, deleted ones restored, contents and modes equal; ignored files are left alone), puts the \
checkpoint's messages back as pending (messages that arrived since stay, pending), restores the config and \
the conversation, and starts the agent again if it ran.",
    after_help = af_spool::ExitCode::TABLE
)]
pub struct Cli {
    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Subcommand)]
pub enum Command {
    /// Take a checkpoint of an agent; prints its id.
    Create {
        /// The agent (ID@HOST: an agent of another host, through the bridges).
        #[arg(value_name = "AGENT")]
        id: String,
        /// What this checkpoint is.
        #[arg(long, short = 'm', value_name = "DESCRIPTION", default_value = "")]
        message: String,
    },
    /// List an agent's checkpoints, oldest first.
    Ls {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Show one checkpoint.
    Show {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// The checkpoint.
        #[arg(value_name = "CHECKPOINT")]
        ckpt: String,
    },
    /// What changed in the agent's working tree since a checkpoint (A added, D deleted, M modified).
    Diff {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// The checkpoint.
        #[arg(value_name = "CHECKPOINT")]
        ckpt: String,
        /// Print the full patch (a unified diff).
        #[arg(long, short)]
        patch: bool,
    },
    /// Remove a checkpoint.
    Rm {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// The checkpoint.
        #[arg(value_name = "CHECKPOINT")]
        ckpt: String,
    },
    /// Remove all but the newest N checkpoints.
    Prune {
        /// The agent.
        #[arg(value_name = "AGENT")]
        id: String,
        /// How many to keep.
        #[arg(long, value_name = "N")]
        keep: usize,
    },
    /// Roll an agent back to a checkpoint: stop it if it runs, restore, start it again.
    Rollback {
        /// The agent (ID@HOST: an agent of another host, through the bridges).
        #[arg(value_name = "AGENT")]
        id: String,
        /// The checkpoint.
        #[arg(value_name = "CHECKPOINT")]
        ckpt: String,
        /// Leave the agent stopped afterwards.
        #[arg(long)]
        no_restart: bool,
        /// Also set the git index to the checkpoint's tree (by default the index is left alone).
        #[arg(long)]
        reset_index: bool,
    },
}
