//! `af-spawn gc`: reconciles the spool with tmux and the processes (see the lifecycle's gc).

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::ExitCode;

pub fn run(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let report = lifecycle::gc(ctx)?;
    if ctx.json {
        print_json(&report)?;
    } else {
        print_line(&format!(
            "gc: {} agent(s) marked failed, {} session(s) and {} process(es) killed, {} leftover(s) removed",
            report.marked_failed.len(),
            report.killed_sessions.len(),
            report.killed_processes,
            report.removed_leftovers
        ))?;
    }
    Ok(ExitCode::Ok)
}
