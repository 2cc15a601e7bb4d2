//! `af-checkpoint rollback`: the rollback operation (stop, restore, start again), then a line.

use super::{print_json, print_line};
use af_ops::lifecycle::Lifecycle;
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(
    spool: &Spool,
    id: &AgentId,
    ckpt: &str,
    restart: bool,
    reset_index: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ctx = Lifecycle::of(spool.clone());
    let done = af_ops::rollback::rollback(&ctx, id, ckpt, restart, reset_index)?;
    if json {
        print_json(&done)?;
    } else {
        let again = if done.restarted { ", started again" } else { "" };
        print_line(&format!("{id} rolled back to {}{again}", done.checkpoint))?;
    }
    Ok(ExitCode::Ok)
}
