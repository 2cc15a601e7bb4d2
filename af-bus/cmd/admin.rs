//! `history`, `clear`, `stats`, `dead`, `retry`.

use super::{Ctx, address, human, line, say};
use af_spool::ExitCode;
use af_spool::bus;
use af_spool::message::validate_id;

/// `history`: acked messages, oldest first.
pub fn history(ctx: &Ctx, queue: &str, limit: usize) -> anyhow::Result<ExitCode> {
    let q = address(ctx, queue)?.queue(&ctx.spool);
    let msgs = q.history(limit)?;
    if ctx.json {
        say(&af_cli::json_text(&msgs)?)?;
    } else {
        for m in &msgs {
            say(&human(m))?;
        }
    }
    Ok(ExitCode::Ok)
}

/// `clear`.
pub fn clear(ctx: &Ctx, queue: &str) -> anyhow::Result<ExitCode> {
    let q = address(ctx, queue)?.queue(&ctx.spool);
    let n = q.clear()?;
    if ctx.json {
        say(&af_cli::json_text(&serde_json::json!({"queue": queue, "removed": n}))?)?;
    } else {
        say(&format!("{queue}: removed {n} message{}", if n == 1 { "" } else { "s" }))?;
    }
    Ok(ExitCode::Ok)
}

/// `stats`: one row per queue.
pub fn stats(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for (a, q) in bus::all_queues(&ctx.spool)? {
        rows.push((a.to_string(), q.stats()?));
    }
    if ctx.json {
        say(&af_cli::json_text(&af_ops::bus::stats(&ctx.spool)?)?)?;
        return Ok(ExitCode::Ok);
    }
    say(&format!(
        "{:<24} {:>8} {:>6} {:>6} {:>6} {:>9} {:>6} {:>7} {:>8}",
        "QUEUE", "CRITICAL", "HIGH", "NORMAL", "LOW", "IN-FLIGHT", "DEAD", "ACKED", "ACKS/S"
    ))?;
    for (name, s) in &rows {
        let p = |k: &str| s.pending.get(k).copied().unwrap_or(0);
        say(&format!(
            "{name:<24} {:>8} {:>6} {:>6} {:>6} {:>9} {:>6} {:>7} {:>8.2}",
            p("critical"),
            p("high"),
            p("normal"),
            p("low"),
            s.in_flight,
            s.dead,
            s.acked,
            s.ack_rate
        ))?;
    }
    Ok(ExitCode::Ok)
}

/// `dead`: dead letters with their reasons.
pub fn dead(ctx: &Ctx, queue: &str) -> anyhow::Result<ExitCode> {
    let q = address(ctx, queue)?.queue(&ctx.spool);
    let letters = q.dead_letters()?;
    if ctx.json {
        let rows: Vec<serde_json::Value> = letters
            .iter()
            .map(|(e, m)| serde_json::json!({"id": e.id, "reason": e.extra, "attempts": e.attempts, "message": m}))
            .collect();
        say(&af_cli::json_text(&rows)?)?;
    } else {
        for (e, m) in &letters {
            let what = m.as_ref().map_or_else(|| "(unreadable)".to_owned(), line);
            say(&format!("{} {} after {} attempts: {what}", e.id, e.extra.as_deref().unwrap_or("?"), e.attempts))?;
        }
    }
    Ok(ExitCode::Ok)
}

/// `retry`.
pub fn retry(ctx: &Ctx, queue: &str, id: &str) -> anyhow::Result<ExitCode> {
    validate_id(id)?;
    address(ctx, queue)?.queue(&ctx.spool).retry(id)?;
    Ok(ExitCode::Ok)
}
