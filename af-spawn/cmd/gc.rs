//! `af-spawn gc`: reconciles the spool with tmux and the processes (see the lifecycle's gc).

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::ExitCode;

pub fn run(ctx: &Ctx, dry_run: bool) -> anyhow::Result<ExitCode> {
    let report = lifecycle::gc(ctx, dry_run)?;
    if ctx.json {
        print_json(&report)?;
    } else {
        let (marked, killed, removed) =
            if dry_run { ("to mark", "to kill", "to remove") } else { ("marked", "killed", "removed") };
        print_line(&format!(
            "gc{}: {} agent(s) {marked} failed, {} session(s) and {} process(es) {killed}, {} leftover(s), \
             {} pipe(s), {} message file(s) and {} subscription(s) {removed}",
            if dry_run { " --dry-run" } else { "" },
            report.marked_failed.len(),
            report.killed_sessions.len(),
            report.killed_processes,
            report.removed_leftovers,
            report.removed_fifos,
            report.removed_tmp_files,
            report.removed_subscriptions,
        ))?;
    }
    Ok(ExitCode::Ok)
}
