//! Removing agents: the agent's directory is renamed out of sight (atomic), then deleted. A
//! worktree holding work is kept in a checkpoint first (only with `force`).

use super::{Lifecycle, kill_our_session_on, worktree};
use crate::{checkpoint, procfs};
use af_spool::record::Event;
use af_spool::{AgentId, Error, Result, atomic, eventlog};

/// Removes agents, checking them all first: a live one, or a worktree with unsaved work, is a
/// conflict unless `force` (which stops it at once and checkpoints the work).
pub fn rm(ctx: &Lifecycle, ids: &[AgentId], force: bool) -> Result<()> {
    for id in ids {
        let obs = ctx.spool.observe(id)?;
        if obs.status().is_live() && !force {
            return Err(Error::Conflict(format!(
                "agent '{id}' is {}; stop it first or use rm --force",
                obs.status().as_str()
            )));
        }
        if !force {
            if let Some(risk) = worktree::at_risk(&ctx.spool, id)? {
                return Err(Error::Conflict(format!(
                    "agent '{id}' has {risk}; commit and push or merge it, or use rm --force (a checkpoint keeps it)"
                )));
            }
        }
    }
    for id in ids {
        remove_one(ctx, id)?;
    }
    Ok(())
}

fn remove_one(ctx: &Lifecycle, id: &AgentId) -> Result<()> {
    let obs = ctx.spool.observe(id)?;
    if obs.state.status.is_live() {
        super::stop::stop_one(ctx, id, true, std::time::Duration::ZERO)?;
    }
    let kept = keep_worktree_work(ctx, id)?;
    worktree::remove(&ctx.spool, id)?;
    let lock = ctx.spool.lock_agent(id)?;
    let trash = ctx.spool.agents_dir().join(atomic::unique_name("trash"));
    let dir = ctx.spool.agent_dir(id);
    std::fs::rename(&dir, &trash).map_err(|e| Error::io("move aside", &dir, e))?;
    atomic::sync_dir(&ctx.spool.agents_dir())?;
    drop(lock);
    std::fs::remove_dir_all(&trash).map_err(|e| Error::io("delete", &trash, e))?;
    // Its records are gone: the server is the one they named.
    kill_our_session_on(ctx, &crate::shard::of(&ctx.tmux, &obs.state), id);
    procfs::remove_cgroups(&obs.state.limits.cgroups);
    let detail = kept.map_or(serde_json::Value::Null, |r| serde_json::json!({"keptIn": r}));
    eventlog::record(&ctx.spool, Event::new("agent.removed", Some(id), detail));
    crate::alert::close_all(&ctx.spool, id, "was removed");
    Ok(())
}

/// Before a worktree holding work is removed (only with --force): a checkpoint, whose commit (in
/// the repository, under refs/agentflow/checkpoints/<id>/) keeps the work after the agent is gone.
fn keep_worktree_work(ctx: &Lifecycle, id: &AgentId) -> Result<Option<String>> {
    let Some(risk) = worktree::at_risk(&ctx.spool, id)? else { return Ok(None) };
    let made = checkpoint::create(&ctx.spool, id, &format!("before af-spawn rm --force: {risk}")).map_err(|e| {
        Error::System(format!(
            "cannot take a checkpoint of agent '{id}' before removing its worktree, so nothing was removed: {e}"
        ))
    })?;
    let reference = af_spool::checkpoint::git_ref(id, &made.id);
    tracing::warn!(agent_id = %id, "agent '{id}' had {risk}; kept in {reference}");
    Ok(Some(reference))
}
