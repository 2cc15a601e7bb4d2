//! `af-spawn show`: config and state together (with the true status), and the last heartbeat.

use super::{Ctx, print_json};
use af_spool::human::format_size;
use af_spool::{AgentId, ExitCode};
use std::io::Write;

pub fn run(ctx: &Ctx, id: &AgentId) -> anyhow::Result<ExitCode> {
    let obs = ctx.spool.observe(id)?;
    let beat = ctx.spool.read_heartbeat(id).unwrap_or(None);
    let mut state = serde_json::to_value(&obs.state)?;
    state["status"] = serde_json::to_value(obs.status())?;
    state["reason"] = serde_json::to_value(obs.reason())?;
    let health = af_ops::health::live::judge(&obs, beat.as_ref(), &af_ops::health::Policy::default());
    state["health"] = serde_json::to_value(health)?;
    if ctx.json {
        let mut doc = serde_json::json!({
            "id": id,
            "config": obs.config.masked(),
            "state": state,
            "heartbeat": beat,
            "supervisorAlive": obs.supervisor_alive,
        });
        if obs.config.kind == af_spool::record::AgentType::ClaudeCode {
            if let Ok((cost, tokens)) = af_ops::claude::project_cost(&ctx.spool, &obs.config.project_id) {
                doc["projectCost"] = serde_json::json!({"costUsd": cost, "tokens": tokens});
            }
        }
        print_json(&doc)?;
        return Ok(ExitCode::Ok);
    }
    let mut out = std::io::stdout().lock();
    let c = &obs.config;
    let s = &obs.state;
    writeln!(out, "id:            {id}")?;
    writeln!(out, "type:          {}", c.kind.as_str())?;
    writeln!(out, "project:       {}", c.project_id)?;
    writeln!(out, "status:        {}", obs.status().as_str())?;
    if let Some(r) = obs.reason() {
        writeln!(out, "reason:        {r}")?;
    }
    writeln!(out, "health:        {}", state["health"].as_str().unwrap_or("unknown"))?;
    writeln!(out, "tmux session:  {}", s.tmux_session)?;
    if let Some(pid) = s.pid {
        writeln!(
            out,
            "pid:           {pid} (af-wrap {})",
            s.wrap_pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
        )?;
    }
    if let Some(cmd) = &c.command {
        writeln!(out, "command:       {}", cmd.join(" "))?;
    }
    if let Some(dir) = &c.workdir {
        writeln!(out, "workdir:       {}", dir.display())?;
    }
    let lim = &c.resource_limits;
    writeln!(
        out,
        "limits:        memory {} ({}), cpu {} ({}), task timeout {}s",
        lim.memory.as_deref().unwrap_or("none"),
        if s.limits.memory.is_empty() { "not applied yet" } else { &s.limits.memory },
        lim.cpu.as_deref().unwrap_or("none"),
        if s.limits.cpu.is_empty() { "not applied yet" } else { &s.limits.cpu },
        lim.timeout_ms() / 1000
    )?;
    writeln!(out, "restarts:      {} (failures {})", s.restarts, s.failures)?;
    if matches!(c.kind, af_spool::record::AgentType::ClaudeCode | af_spool::record::AgentType::Codex) {
        let budget = c.budget_usd.map(|b| format!(" of ${b:.2} budget")).unwrap_or_default();
        let t = &s.tokens;
        writeln!(
            out,
            "cost:          ${:.4}{budget}; tokens {} in, {} out, {} cache read, {} cache written",
            s.cost_usd, t.input, t.output, t.cache_read, t.cache_creation
        )?;
        if let Some(max) = c.codex.as_ref().and_then(|x| x.max_tokens) {
            writeln!(out, "token budget:  {} of {max} tokens", t.input + t.cache_read + t.output)?;
        }
        if let Ok((cost, _)) = af_ops::claude::project_cost(&ctx.spool, &c.project_id) {
            writeln!(out, "project cost:  ${cost:.4} ({})", c.project_id)?;
        }
        if let Some(conv) = &s.conversation {
            writeln!(out, "conversation:  {} ({})", conv.session_id, conv.transcript.display())?;
        }
        if let Some(a) = &s.activity {
            let until = s.waiting_until.map(|t| format!(" until {}", t.rfc3339())).unwrap_or_default();
            let asks = s.input_prompt.as_ref().map(|p| format!(": {p}")).unwrap_or_default();
            writeln!(out, "activity:      {a}{until}{asks}")?;
        }
    }
    writeln!(out, "created:       {}", s.created_at.rfc3339())?;
    if let Some(t) = s.started_at {
        writeln!(out, "started:       {}", t.rfc3339())?;
    }
    if let Some(t) = s.stopped_at {
        writeln!(out, "stopped:       {}", t.rfc3339())?;
    }
    if let Some(b) = beat {
        writeln!(
            out,
            "heartbeat:     {} ({} ago): {} processes, {} RSS, {:.1}% CPU",
            b.time.rfc3339(),
            format_age(b.time.age_ms()),
            b.processes,
            format_size(b.rss_bytes),
            b.cpu_percent
        )?;
    }
    Ok(ExitCode::Ok)
}

/// "3s", "2m", "1h".
pub fn format_age(ms: u64) -> String {
    match ms / 1000 {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// `show ID@HOST`: the agent as HOST's bridge last published it (JSON: the record of
/// `ls --cluster --json`; text: one `field: value` line each).
pub fn far(ctx: &Ctx, id: &str, host: &str, url: &str) -> anyhow::Result<ExitCode> {
    AgentId::new(id)?;
    let a = af_ops::bridge::cluster::agent(url, host, id)?;
    if ctx.json {
        print_json(&a)?;
        return Ok(ExitCode::Ok);
    }
    let mut out = std::io::stdout().lock();
    for (k, v) in a.as_object().into_iter().flatten() {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        writeln!(out, "{:<15}{v}", format!("{k}:"))?;
    }
    Ok(ExitCode::Ok)
}
