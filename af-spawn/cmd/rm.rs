//! `af-spawn rm`: the lifecycle's remove, then the ids removed.

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::{AgentId, ExitCode};

pub fn run(ctx: &Ctx, ids: &[String], force: bool) -> anyhow::Result<ExitCode> {
    let ids: Vec<AgentId> = ids.iter().map(|s| super::agent_id(s)).collect::<Result<_, _>>()?;
    lifecycle::rm(ctx, &ids, force)?;
    if ctx.json {
        print_json(&serde_json::json!(ids))?;
    } else {
        for id in &ids {
            print_line(&format!("{id} removed"))?;
        }
    }
    Ok(ExitCode::Ok)
}
