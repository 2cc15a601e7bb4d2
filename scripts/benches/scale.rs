//! Many agents on one machine (issue 19): N real agents (AF_BENCH_SCALE_AGENTS, default 200)
//! started in one call, then left idle. Figures, each beside a bare tmux fleet of N
//! `tmux new-session -d 'sleep'` sessions measured in the same run:
//! - create+start rate;
//! - idle CPU of AgentFlow's processes (every af-wrap and the tmux server) over a window
//!   (AF_BENCH_SCALE_IDLE_SECS, default 60), once the agents' heartbeats have slowed to their idle
//!   maximum, beside the bare fleet's tmux server and, where `pm2` is on PATH, pm2's daemon with N
//!   idle `sleep` processes, over the same window; CPU time is read from /proc, so other load on
//!   the machine does not bill it;
//! - PSS per af-wrap (RSS counts shared pages once per process) beside pm2's daemon's PSS per
//!   process, and the tmux server's RSS and descriptors per session;
//! - `ls --json`, `af-health check` and a forced stop of all.

#[path = "common.rs"]
mod common;

use common::{Row, World, header, row, time};
use std::time::{Duration, Instant};

fn main() {
    let n = common::count("AF_BENCH_SCALE_AGENTS", 200);
    let idle = Duration::from_secs(common::count("AF_BENCH_SCALE_IDLE_SECS", 60) as u64);
    header(&format!("scale ({n} agents)"));

    // The bare fleet: N sessions of sleep on a private tmux server.
    let bare = World::new("scale-bare");
    let _ = bare.tmux().args(["new-session", "-d", "-s", "warm"]).status();
    let bare_start = time(|| {
        for i in 0..n {
            let _ = bare.tmux().args(["new-session", "-d", "-s", &format!("s{i}"), "sleep", "3600"]).status();
        }
    });
    let bare_server = tmux_server_pid(&bare);
    let pm2 = Pm2::start(n);

    // AgentFlow: N workers running sleep, in one call.
    let w = World::new("scale");
    let _ = w.tmux().args(["new-session", "-d", "-s", "warm"]).status();
    let batch: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"a{i}\",\"type\":\"worker\",\"projectId\":\"scale\",\"command\":[\"sleep\",\"3600\"]}}\n"
            )
        })
        .collect();
    let af_start = time(|| w.run_with_input("af-spawn", &["create", "--start"], &batch));
    let server = tmux_server_pid(&w);
    let wraps: Vec<u32> = (0..n).filter_map(|i| wrap_pid(&w, &format!("a{i}"))).collect();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    row(Row {
        what: "create+start, one call",
        value: rate(af_start),
        unit: "agents/s",
        baseline: Some(("bare tmux new-session", rate(bare_start))),
        higher_is_better: true,
        target: "-",
    });

    // Idle: every fleet over the same window, once the heartbeats have slowed to their idle
    // maximum (each beat says its interval; a minute at most).
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(60) && !idle_pace(&w, n) {
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut ours: Vec<u32> = wraps.clone();
    ours.extend(server);
    let pm2_pid: Vec<u32> = pm2.as_ref().and_then(Pm2::daemon).into_iter().collect();
    let bare_pid: Vec<u32> = bare_server.into_iter().collect();
    let before = (cpu_ticks(&ours), cpu_ticks(&bare_pid), cpu_ticks(&pm2_pid));
    let began = Instant::now();
    std::thread::sleep(idle);
    let secs = began.elapsed().as_secs_f64();
    let after = (cpu_ticks(&ours), cpu_ticks(&bare_pid), cpu_ticks(&pm2_pid));
    let hz = af_ops::procfs::ticks_per_second() as f64;
    let core_pct = |t: u64| 100.0 * t as f64 / hz / secs;
    let (ours_pct, bare_pct) = (core_pct(after.0 - before.0), core_pct(after.1 - before.1));
    if !pm2_pid.is_empty() {
        row(Row {
            what: &format!("idle CPU, {n} agents (af-wrap + tmux)"),
            value: ours_pct,
            unit: "% core",
            baseline: Some(("pm2 daemon, N sleeps", core_pct(after.2 - before.2).max(0.01))),
            higher_is_better: false,
            target: "-",
        });
    }
    row(Row {
        what: &format!("idle CPU, {n} agents (af-wrap + tmux)"),
        value: ours_pct,
        unit: "% core",
        baseline: Some(("bare fleet's tmux server", bare_pct.max(0.01))),
        higher_is_better: false,
        target: if n >= 1000 {
            "<= 5 %"
        } else if n >= 200 {
            "<= 1 % at 200"
        } else {
            "-"
        },
    });
    row(Row {
        what: "  idle CPU per agent",
        value: ours_pct / n as f64,
        unit: "% core",
        baseline: None,
        higher_is_better: false,
        target: "-",
    });

    // Memory: PSS of the supervisors, the tmux servers' RSS and descriptors.
    let mut pss: Vec<f64> = wraps.iter().filter_map(|p| pss_kb(*p)).map(|kb| kb / 1024.0).collect();
    pss.sort_by(|a, b| a.total_cmp(b));
    row(Row {
        what: "af-wrap PSS (median)",
        value: pss.get(pss.len() / 2).copied().unwrap_or(0.0),
        unit: "MB",
        baseline: None,
        higher_is_better: false,
        target: "-",
    });
    let mb = |p: Option<u32>| p.and_then(af_ops::procfs::stat).map_or(0.0, |s| s.rss_bytes as f64 / 1048576.0);
    if let Some(pss) = pm2.as_ref().and_then(Pm2::daemon).and_then(pss_kb) {
        row(Row {
            what: "pm2 daemon PSS per process",
            value: pss / 1024.0 / n as f64,
            unit: "MB",
            baseline: None,
            higher_is_better: false,
            target: "-",
        });
    }
    drop(pm2);
    row(Row {
        what: "tmux server RSS",
        value: mb(server),
        unit: "MB",
        baseline: Some(("bare fleet's tmux server", mb(bare_server))),
        higher_is_better: false,
        target: "-",
    });
    let fds = |p: Option<u32>| p.and_then(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok()).map_or(0, |d| d.count());
    row(Row {
        what: "  tmux server descriptors per session",
        value: fds(server) as f64 / n as f64,
        unit: "fds",
        baseline: Some(("bare fleet's tmux server", fds(bare_server) as f64 / n as f64)),
        higher_is_better: false,
        target: "-",
    });

    // One-shot verbs over all of them.
    let fork = common::fork_exec_ms(200);
    let ls = time(|| w.run("af-spawn", &["ls", "--json"]));
    row(Row {
        what: &format!("ls --json over {n}"),
        value: ls.as_secs_f64() * 1e3,
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true", fork)),
        higher_is_better: false,
        target: "-",
    });
    let check = time(|| {
        let _ = w.cmd("af-health").arg("check").status();
    });
    row(Row {
        what: &format!("af-health check over {n}"),
        value: check.as_secs_f64() * 1e3,
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true", fork)),
        higher_is_better: false,
        target: "-",
    });
    let ids: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let mut args = vec!["stop", "--force"];
    args.extend(ids.iter().map(String::as_str));
    let stop = time(|| w.run("af-spawn", &args));
    let bare_stop = time(|| {
        for i in 0..n {
            let _ = bare.tmux().args(["kill-session", "-t", &format!("=s{i}")]).status();
        }
    });
    row(Row {
        what: "forced stop of all, one call",
        value: rate(stop),
        unit: "agents/s",
        baseline: Some(("bare tmux kill-session", rate(bare_stop))),
        higher_is_better: true,
        target: "-",
    });
}

/// The pid of the world's tmux server.
fn tmux_server_pid(w: &World) -> Option<u32> {
    let out = w.tmux().args(["display-message", "-p", "#{pid}"]).stdout(std::process::Stdio::piped()).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// An agent's af-wrap, from its state.
fn wrap_pid(w: &World, id: &str) -> Option<u32> {
    let state = std::fs::read_to_string(w.home.join(format!("agents/{id}/state.json"))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&state).ok()?;
    v["wrapPid"].as_u64().map(|p| p as u32)
}

/// User plus system CPU ticks of these processes, together.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| af_ops::procfs::stat(*p)).map(|s| s.cpu_ticks).sum()
}

/// A process's proportional set size, in kB.
fn pss_kb(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Pss:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether every agent's last heartbeat says it beats at its idle maximum (or slower than 10 s).
fn idle_pace(w: &World, n: usize) -> bool {
    (0..n).all(|i| {
        let beat = std::fs::read_to_string(w.home.join(format!("agents/a{i}/heartbeat.json"))).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&beat).unwrap_or_default();
        v["intervalMs"].as_u64().is_some_and(|ms| ms >= 10_000)
    })
}

/// pm2's daemon with N idle `sleep` processes, in a home of its own; `pm2 kill` on drop. None
/// where pm2 is not installed (`npm install -g pm2`).
struct Pm2 {
    home: std::path::PathBuf,
}

impl Pm2 {
    fn start(n: usize) -> Option<Pm2> {
        let home = std::env::temp_dir().join(format!("af-bench-pm2-{}", std::process::id()));
        std::fs::create_dir_all(&home).ok()?;
        let apps: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({"name": format!("s{i}"), "script": "/bin/sleep", "args": "3600",
                    "interpreter": "none", "autorestart": false})
            })
            .collect();
        let eco = home.join("ecosystem.json");
        std::fs::write(&eco, serde_json::json!({"apps": apps}).to_string()).ok()?;
        let pm2 = Pm2 { home };
        let started = pm2.cmd().arg("start").arg(&eco).stdout(std::process::Stdio::null()).status();
        if !started.is_ok_and(|s| s.success()) {
            println!("  (no pm2 on PATH: its rows are left out; npm install -g pm2 adds them)");
            return None;
        }
        Some(pm2)
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new("pm2");
        c.env("PM2_HOME", &self.home).stderr(std::process::Stdio::null());
        c
    }

    /// The daemon's pid.
    fn daemon(&self) -> Option<u32> {
        std::fs::read_to_string(self.home.join("pm2.pid")).ok()?.trim().parse().ok()
    }
}

impl Drop for Pm2 {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill").stdout(std::process::Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
