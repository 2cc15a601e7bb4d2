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
    let lock = ctx.spool.lock_agent(id)?;
    let trash = ctx.spool.agents_dir().join(atomic::unique_name("trash"));
    let dir = ctx.spool.agent_dir(id);
    std::fs::rename(&dir, &trash).with_context(|| format!("moving {} aside", dir.display()))?;
    atomic::sync_dir(&ctx.spool.agents_dir())?;
    drop(lock);
    std::fs::remove_dir_all(&trash).with_context(|| format!("deleting {}", trash.display()))?;
    kill_our_session(ctx, id);
    procfs::remove_cgroups(&obs.state.limits.cgroups);
    eventlog::record(&ctx.spool, Event::new("agent.removed", Some(id), serde_json::Value::Null));
    Ok(())
}
