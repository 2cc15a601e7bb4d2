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

/// `stats`: one row per queue; with `cluster` (the Redis URL), one per lane of every
/// cluster-wide pool too.
pub fn stats(ctx: &Ctx, cluster: Option<&str>) -> anyhow::Result<ExitCode> {
    let pools = cluster.map(af_ops::bridge::pool::figures).transpose()?;
    if ctx.json {
        let mut doc = af_ops::bus::stats(&ctx.spool)?;
        if let Some(pools) = &pools {
            doc["clusterPools"] = serde_json::to_value(pools)?;
        }
        say(&af_cli::json_text(&doc)?)?;
        return Ok(ExitCode::Ok);
    }
    let mut rows = Vec::new();
    for (a, q) in bus::all_queues(&ctx.spool)? {
        rows.push((a.to_string(), q.stats()?));
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
    if let Some(pools) = pools {
        say("")?;
        say(&format!(
            "{:<24} {:<8} {:>7} {:>7} {:>9}  {}",
            "CLUSTER POOL", "LANE", "WAITING", "PENDING", "OLDEST", "TAKEN BY"
        ))?;
        for l in &pools {
            let oldest = l.oldest_waiting_ms.map_or("-".to_owned(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
            let by: Vec<String> = l.pending_by.iter().map(|(h, n)| format!("{h}={n}")).collect();
            say(&format!(
                "{:<24} {:<8} {:>7} {:>7} {:>9}  {}",
                format!("pool:{}", l.project),
                l.lane.as_str(),
                l.waiting,
                l.pending,
                oldest,
                if by.is_empty() { "-".to_owned() } else { by.join(",") }
            ))?;
        }
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
