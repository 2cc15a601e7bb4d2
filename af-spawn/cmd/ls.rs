//! `af-spawn ls`: every agent with its true status (a dead supervisor shows as failed).

use super::{Ctx, print_json};
use af_ops::health::live;
use af_spool::{Error, ExitCode, Observed};
use std::io::Write;

pub fn run(ctx: &Ctx, project: Option<&str>, summary: bool) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for id in ctx.spool.agent_ids()? {
        match ctx.spool.observe(&id) {
            Ok(obs) if project.is_none_or(|p| obs.config.project_id == p) => rows.push(obs),
            Ok(_) | Err(Error::NotFound(_)) => {} // another project, or removed as we looked
            Err(e) => return Err(e.into()),
        }
    }
    if summary {
        return counts(ctx, &rows);
    }
    if ctx.json {
        print_json(&serde_json::Value::Array(rows.iter().map(|o| live::summary(&ctx.spool, o)).collect()))?;
    } else {
        table(ctx, &rows)?;
    }
    Ok(ExitCode::Ok)
}

/// `ls --cluster`: every host's agents from Redis, hosts in name order.
pub fn cluster(ctx: &Ctx, project: Option<&str>, url: &str) -> anyhow::Result<ExitCode> {
    let hosts = af_ops::bridge::cluster::read(url)?;
    let mut agents = af_ops::bridge::cluster::agents(&hosts);
    agents.retain(|a| project.is_none_or(|p| a["projectId"] == p));
    if ctx.json {
        print_json(&serde_json::Value::Array(agents))?;
        return Ok(ExitCode::Ok);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<16} {:<24} {:<12} {:<16} {:<9} {:<9} {:>3}  REASON",
        "HOST", "ID", "TYPE", "PROJECT", "STATUS", "HEALTH", "RST"
    )?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    for a in &agents {
        writeln!(
            out,
            "{:<16} {:<24} {:<12} {:<16} {:<9} {:<9} {:>3}  {}",
            text(&a["host"]),
            text(&a["id"]),
            text(&a["type"]),
            text(&a["projectId"]),
            text(&a["status"]),
            text(&a["health"]),
            a["restarts"].as_u64().unwrap_or(0),
            a["reason"].as_str().unwrap_or_default()
        )?;
    }
    for h in hosts.iter().filter(|h| !h.reachable) {
        writeln!(out, "host {} is unreachable: its heartbeat expired (its agents as last published)", h.host)?;
    }
    Ok(ExitCode::Ok)
}

/// Counts by status: `2 running, 1 failed` (or `no agents`), or a JSON object.
fn counts(ctx: &Ctx, rows: &[Observed]) -> anyhow::Result<ExitCode> {
    let mut by: std::collections::BTreeMap<&'static str, usize> = std::collections::BTreeMap::new();
    for o in rows {
        *by.entry(o.status().as_str()).or_default() += 1;
    }
    if ctx.json {
        print_json(&serde_json::json!(by))?;
    } else if by.is_empty() {
        super::print_line("no agents")?;
    } else {
        let parts: Vec<String> = by.iter().map(|(s, n)| format!("{n} {s}")).collect();
        super::print_line(&parts.join(", "))?;
    }
    Ok(ExitCode::Ok)
}

fn table(ctx: &Ctx, rows: &[Observed]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // The tmux server of each agent, when any is on a server other than AF_TMUX_SOCKET's (spread
    // over several, or a config's tmuxSocket).
    let spread = rows.iter().any(|o| o.state.tmux_socket.as_deref() != ctx.tmux.socket());
    let server = |o: &Observed| {
        if spread { format!(" {:<16}", o.state.tmux_socket.as_deref().unwrap_or("default")) } else { String::new() }
    };
    writeln!(
        out,
        "{:<24} {:<12} {:<16} {:<9} {:<9} {:>8} {:>3}{}  REASON",
        "ID",
        "TYPE",
        "PROJECT",
        "STATUS",
        "HEALTH",
        "PID",
        "RST",
        if spread { format!(" {:<16}", "SERVER") } else { String::new() }
    )?;
    for o in rows {
        let health = live::health(&ctx.spool, o).as_str();
        writeln!(
            out,
            "{:<24} {:<12} {:<16} {:<9} {:<9} {:>8} {:>3}{}  {}",
            o.config.id,
            o.config.kind.as_str(),
            o.config.project_id,
            o.status().as_str(),
            health,
            o.state.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            o.state.restarts,
            server(o),
            o.reason().unwrap_or_default()
        )?;
    }
    Ok(())
}
