//! `af-spawn gc`: reconciles the spool with tmux and the processes (see the lifecycle's gc), and
//! applies the logs' retention.

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::human::{format_size, parse_duration, parse_size};
use af_spool::logfile::Retention;
use af_spool::{Error, ExitCode};

pub fn run(ctx: &Ctx, dry_run: bool, max_age: &str, max_size: &str) -> anyhow::Result<ExitCode> {
    let age = parse_duration(max_age).map_err(|e| Error::Invalid(format!("--max-age: {e}")))?;
    let size = parse_size(max_size).map_err(|e| Error::Invalid(format!("--max-size: {e}")))?;
    let retention = Retention {
        max_age: Some(age).filter(|a| !a.is_zero()),
        max_bytes: Some(size).filter(|s| *s > 0),
        ..Retention::default()
    };
    let report = lifecycle::gc_with(ctx, dry_run, &retention)?;
    if ctx.json {
        print_json(&report)?;
    } else {
        let (marked, killed, removed, compressed) = if dry_run {
            ("to mark", "to kill", "to remove", "to compress")
        } else {
            ("marked", "killed", "removed", "compressed")
        };
        print_line(&format!(
            "gc{}: {} agent(s) {marked} failed, {} session(s) and {} process(es) {killed}, {} leftover(s), \
             {} pipe(s), {} message file(s) and {} subscription(s) {removed}; {} log generation(s) {compressed}, \
             {} {removed} ({})",
            if dry_run { " --dry-run" } else { "" },
            report.marked_failed.len(),
            report.killed_sessions.len(),
            report.killed_processes,
            report.removed_leftovers,
            report.removed_fifos,
            report.removed_tmp_files,
            report.removed_subscriptions,
            report.logs.compressed,
            report.logs.removed,
            format_size(report.logs.freed_bytes),
        ))?;
    }
    Ok(ExitCode::Ok)
}
