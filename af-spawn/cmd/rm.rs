//! `af-spawn rm`: the agent's directory is renamed out of sight (atomic), then deleted.

use super::{Ctx, is_live, kill_our_session, print_json, print_line};
use af_spool::record::Event;
use af_spool::{AgentId, Error, ExitCode, atomic, eventlog, procfs};
use anyhow::Context;

pub fn run(ctx: &Ctx, ids: &[String], force: bool) -> anyhow::Result<ExitCode> {
    let ids: Vec<AgentId> = ids.iter().map(|s| super::agent_id(s)).collect::<Result<_, _>>()?;
    for id in &ids {
        let obs = ctx.spool.observe(id)?;
        if is_live(obs.status()) && !force {
            return Err(Error::Conflict(format!(
                "agent '{id}' is {}; stop it first or use rm --force",
                obs.status().as_str()
            ))
            .into());
        }
        if !force {
            if let Some(risk) = crate::worktree::at_risk(&ctx.spool, id)? {
                return Err(Error::Conflict(format!(
                    "agent '{id}' has {risk}; commit and push or merge it, or use rm --force (a checkpoint keeps it)"
                ))
                .into());
            }
        }
    }
    for id in &ids {
        remove_one(ctx, id)?;
    }
    if ctx.json {
        print_json(&serde_json::json!(ids))?;
    } else {
        for id in &ids {
            print_line(&format!("{id} removed"))?;
        }
    }
    Ok(ExitCode::Ok)
}

fn remove_one(ctx: &Ctx, id: &AgentId) -> anyhow::Result<()> {
    let obs = ctx.spool.observe(id)?;
    if obs.state.status.is_live() {
        super::stop::stop_one(ctx, id, true, std::time::Duration::ZERO)?;
    }
    let kept = keep_worktree_work(ctx, id)?;
    crate::worktree::remove(&ctx.spool, id)?;
    let lock = ctx.spool.lock_agent(id)?;
    let trash = ctx.spool.agents_dir().join(atomic::unique_name("trash"));
    let dir = ctx.spool.agent_dir(id);
    std::fs::rename(&dir, &trash).with_context(|| format!("moving {} aside", dir.display()))?;
    atomic::sync_dir(&ctx.spool.agents_dir())?;
    drop(lock);
    std::fs::remove_dir_all(&trash).with_context(|| format!("deleting {}", trash.display()))?;
    kill_our_session(ctx, id);
    procfs::remove_cgroups(&obs.state.limits.cgroups);
    let detail = kept.map_or(serde_json::Value::Null, |r| serde_json::json!({"keptIn": r}));
    eventlog::record(&ctx.spool, Event::new("agent.removed", Some(id), detail));
    Ok(())
}

/// Before a worktree holding work is removed (only with --force): a checkpoint, whose commit (in
/// the repository, under refs/agentflow/checkpoints/<id>/) keeps the work after the agent is gone.
fn keep_worktree_work(ctx: &Ctx, id: &AgentId) -> anyhow::Result<Option<String>> {
    let Some(risk) = crate::worktree::at_risk(&ctx.spool, id)? else { return Ok(None) };
    let program = af_spool::cli::sibling_program("af-checkpoint");
    let out = std::process::Command::new(&program)
        .args(["create", id.as_str(), "-m", &format!("before af-spawn rm --force: {risk}")])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::System(format!(
            "cannot take a checkpoint of agent '{id}' before removing its worktree, so nothing was removed: {}",
            err.lines().next().unwrap_or("").trim()
        ))
        .into());
    }
    let ckpt = af_spool::checkpoint::CheckpointId::new(String::from_utf8_lossy(&out.stdout).trim())?;
    let reference = af_spool::checkpoint::git_ref(id, &ckpt);
    tracing::warn!("agent '{id}' had {risk}; kept in {reference}");
    Ok(Some(reference))
}
