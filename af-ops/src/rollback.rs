//! Rolling an agent back to a checkpoint: stop the agent if it runs, restore its working tree, messages, config
//! and conversation, start it again. A mark written first makes a rerun after an interruption
//! finish the job (and still restart an agent that ran when the first attempt began).

use crate::checkpoint::{archive, gittree, inbox, store};
use crate::lifecycle::{self, Lifecycle};
use af_spool::atomic::{self, Durability};
use af_spool::checkpoint::{Checkpoint, CheckpointId, RollbackMark, TreeSnapshot};
use af_spool::record::{AgentConfig, Conversation, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Result, Spool};
use std::time::{Duration, Instant};

/// How long a stopping agent gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a starting agent gets to report running.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What a rollback did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolledBack {
    /// The agent.
    pub agent: AgentId,
    /// The checkpoint restored.
    pub checkpoint: CheckpointId,
    /// Whether the agent was started again.
    pub restarted: bool,
    /// How long it took.
    pub took_ms: u64,
}

/// Rolls the agent back to checkpoint `ckpt`: stops it if it runs, restores its working tree,
/// messages, config and conversation, and (with `restart`, when it ran) starts it again. A mark
/// written first makes a rerun after an interruption finish the job.
pub fn rollback(ctx: &Lifecycle, id: &AgentId, ckpt: &str, restart: bool, reset_index: bool) -> Result<RolledBack> {
    let spool = &ctx.spool;
    let t0 = Instant::now();
    let _lock = store::lock(spool, id)?;
    let c = store::find(spool, id, ckpt)?;
    let mark_path = spool.rollback_mark_path(id);
    let earlier: Option<RollbackMark> = atomic::read_json(&mark_path).unwrap_or(None);
    let live = spool.observe(id)?.status().is_live();
    let restart = restart && (live || earlier.is_some_and(|m| m.restart));
    let mark = RollbackMark { checkpoint: c.id.clone(), restart, started_at: Timestamp::now() };
    atomic::write_json(&mark_path, &mark, Durability::Durable)?;
    // A stop or start left running by a killed earlier attempt may beat ours to it: what
    // matters is the status afterwards.
    if live {
        if let Err(e) = lifecycle::stop_one(ctx, id, false, STOP_GRACE) {
            if settled(ctx, id)?.is_live() {
                return Err(e);
            }
        }
    }
    restore(spool, id, &c, reset_index)?;
    if restart {
        if let Err(e) = lifecycle::start_one(ctx, id, true, START_TIMEOUT, false) {
            if settled(ctx, id)? != Status::Running {
                return Err(e);
            }
        }
    }
    std::fs::remove_file(&mark_path).map_err(|e| Error::io("remove", &mark_path, e))?;
    let took_ms = t0.elapsed().as_millis() as u64;
    store::announce(
        spool,
        "checkpoint.rolledback",
        id,
        serde_json::json!({"checkpoint": c.id, "restarted": restart, "tookMs": took_ms}),
    );
    Ok(RolledBack { agent: id.clone(), checkpoint: c.id, restarted: restart, took_ms })
}

fn restore(spool: &Spool, id: &AgentId, c: &Checkpoint, reset_index: bool) -> Result<()> {
    let dir = spool.checkpoint_dir(id, &c.id);
    match &c.tree {
        Some(TreeSnapshot::Git { repo, tree, .. }) => {
            let repo = gittree::Repo::at(repo)?.with_cache(spool.index_cache_path(id, repo)).excluding(spool.root());
            repo.restore(&store::scratch(spool, id, "index"), tree, reset_index)?;
        }
        Some(TreeSnapshot::Archive { file, .. }) => {
            let workdir =
                c.workdir.as_deref().ok_or_else(|| Error::Invalid("the checkpoint names no workdir".into()))?;
            archive::restore(workdir, &dir.join(file), spool.root())?;
        }
        None => {}
    }
    inbox::restore(spool, id, &dir.join("inbox"))?;
    if let Some(config) = atomic::read_json::<AgentConfig>(&dir.join(af_spool::spool::CONFIG_FILE))? {
        if spool.read_config(id)? != config {
            atomic::write_json(&spool.config_path(id), &config, Durability::Durable)?;
        }
    }
    let conversation = match &c.conversation {
        Some(conv) => {
            if let (Some(copy), Some(path)) = (&conv.copy, &conv.transcript) {
                let from = dir.join(copy);
                let bytes = std::fs::read(&from).map_err(|e| Error::io("read", &from, e))?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
                }
                atomic::write(path, &bytes, Durability::Durable)?;
            }
            conv.transcript.clone().map(|transcript| Conversation { session_id: conv.session_id.clone(), transcript })
        }
        None => None,
    };
    spool.update_state(id, |s| s.conversation = conversation)?;
    Ok(())
}

/// The agent's status once no start or stop is under way (waiting up to 20 s for one to end).
fn settled(ctx: &Lifecycle, id: &AgentId) -> Result<Status> {
    let mut listener = af_spool::control::listen(&ctx.spool, id)?;
    let calm = |o: &af_spool::Observed| !matches!(o.status(), Status::Starting | Status::Stopping);
    match lifecycle::wait_until(ctx, id, &mut listener, Duration::from_secs(20), "settle", calm) {
        Ok(obs) => Ok(obs.status()),
        Err(Error::Timeout(_)) => Ok(ctx.spool.observe(id)?.status()),
        Err(e) => Err(e),
    }
}
