//! `af-spawn top`: the agent's process tree with CPU and memory, refreshed; what the `monitor`
//! window of each agent's session shows. It ends by itself once the agent is no longer live.

use super::Ctx;
use super::show::format_age;
use af_ops::procfs;
use af_spool::human::format_size;
use af_spool::{AgentId, Error, ExitCode, control};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How long top keeps watching an agent that is not (yet) live, for af-wrap to come up.
const PATIENCE: Duration = Duration::from_secs(3);

pub fn run(ctx: &Ctx, id: &AgentId, once: bool, interval: Duration) -> anyhow::Result<ExitCode> {
    let mut listener = control::listen(&ctx.spool, id)?;
    let began = Instant::now();
    let mut last: HashMap<u32, u64> = HashMap::new();
    let mut last_time = Instant::now();
    let clear = !once && std::io::stdout().is_terminal();
    loop {
        // Someone watches: af-wrap beats at its busy pace and reads the whole tree meanwhile.
        let _ = ctx.spool.mark_watched();
        let obs = match ctx.spool.observe(id) {
            Ok(o) => o,
            Err(Error::NotFound(_)) if !once => return Ok(ExitCode::Ok),
            Err(e) => return Err(e.into()),
        };
        let mut text = String::new();
        if clear {
            text.push_str("\x1b[H\x1b[2J");
        }
        text.push_str(&format!(
            "agent {id} ({}, project {})  status {}  health {:?}\n",
            obs.config.kind.as_str(),
            obs.config.project_id,
            obs.status().as_str(),
            af_ops::health::live::health(&ctx.spool, &obs)
        ));
        if let Ok(Some(b)) = ctx.spool.read_heartbeat(id) {
            text.push_str(&format!(
                "heartbeat {} ago  uptime {}  tree {} processes  {} RSS  {:.1}% CPU\n",
                format_age(b.time.age_ms()),
                format_age(b.uptime_ms),
                b.processes,
                format_size(b.rss_bytes),
                b.cpu_percent
            ));
        }
        text.push_str(&format!("\n{:>8} {:>1} {:>6} {:>9}  COMMAND\n", "PID", "S", "CPU%", "RSS"));
        let secs = last_time.elapsed().as_secs_f64().max(1e-3);
        last_time = Instant::now();
        let mut now_ticks = HashMap::new();
        if let Some(wrap) = obs.state.wrap_pid.filter(|_| obs.supervisor_alive) {
            for p in procfs::descendants_of(wrap) {
                let before = last.get(&p.pid).copied().unwrap_or(p.cpu_ticks);
                let cpu = p.cpu_ticks.saturating_sub(before) as f64 / procfs::ticks_per_second() as f64 / secs * 100.0;
                now_ticks.insert(p.pid, p.cpu_ticks);
                let mut cmd = procfs::cmdline(p.pid);
                cmd.truncate(80);
                text.push_str(&format!(
                    "{:>8} {:>1} {:>6.1} {:>9}  {cmd}\n",
                    p.pid,
                    p.state,
                    cpu,
                    format_size(p.rss_bytes)
                ));
            }
        }
        last = now_ticks;
        std::io::stdout().lock().write_all(text.as_bytes())?;
        if once || (!obs.status().is_live() && began.elapsed() > PATIENCE) {
            return Ok(ExitCode::Ok);
        }
        listener.wait(interval)?;
    }
}
