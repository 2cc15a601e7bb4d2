//! af-spawn: `af-spawn show` of one running agent beside fork/exec of /bin/true, interleaved; N
//! agents created and started (to their first heartbeat), beside bare `tmux new-session -d` of N
//! sessions; af-wrap's RSS; `af-spawn ls --json` over 1,000 agents.

#[path = "common.rs"]
mod common;

use common::{Row, World, header, row, time};
use std::time::{Duration, Instant};

fn main() {
    let n = common::count("AF_BENCH_AGENTS", 100);
    header(&format!("af-spawn ({n} agents)"));
    show_one();

    // Baseline: bare tmux sessions, one call each, measured before and after the batch (the mean).
    let bare_before = bare_sessions(n);
    // Each measurement runs with no other agents alive, as its baseline does.
    // AgentFlow, one call for all: `af-spawn create --start` with N configs (JSON lines).
    let wb = World::new("spawn-batch");
    let _ = wb.tmux().args(["new-session", "-d", "-s", "warm"]).status();
    let batch: String = (0..n)
        .map(|i| {
            format!("{{\"id\":\"c{i}\",\"type\":\"worker\",\"projectId\":\"bench\",\"command\":[\"sleep\",\"600\"]}}\n")
        })
        .collect();
    let batch_time = time(|| wb.run_with_input("af-spawn", &["create", "--start"], &batch));

    // af-wrap's resident memory (median over the running agents).
    let mut rss: Vec<f64> = Vec::new();
    for i in 0..n {
        let state = std::fs::read_to_string(wb.home.join(format!("agents/c{i}/state.json"))).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
        if let Some(pid) = v["wrapPid"].as_u64() {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = status.lines().find_map(|l| l.strip_prefix("VmRSS:")) {
                    rss.push(kb.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap_or(0.0) / 1024.0);
                }
            }
        }
    }
    rss.sort_by(|a, b| a.total_cmp(b));
    let sleep_rss = {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep");
        std::thread::sleep(Duration::from_millis(50));
        let s = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let _ = child.kill();
        let _ = child.wait();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .map(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap_or(0.0) / 1024.0)
            .unwrap_or(0.0)
    };
    let stop_time = time(|| {
        let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let mut args = vec!["stop", "--force"];
        args.extend(ids.iter().map(String::as_str));
        wb.run("af-spawn", &args);
    });
    drop(wb);
    let bare_after = bare_sessions(n);
    let bare_rate = 2.0 * n as f64 / (bare_before + bare_after).as_secs_f64();
    row(Row {
        what: "create+start, one call for all",
        value: n as f64 / batch_time.as_secs_f64(),
        unit: "agents/s",
        baseline: Some(("bare tmux new-session -d, before+after", bare_rate)),
        higher_is_better: true,
        target: ">= 50 agents/s, <= 3x bare tmux",
    });
    row(Row {
        what: "af-wrap RSS (median)",
        value: rss.get(rss.len() / 2).copied().unwrap_or(0.0),
        unit: "MB",
        baseline: Some(("a bare `sleep` process", sleep_rss)),
        higher_is_better: false,
        target: "< 4 MB",
    });

    row(Row {
        what: "forced stop (one call for all)",
        value: n as f64 / stop_time.as_secs_f64(),
        unit: "agents/s",
        baseline: None,
        higher_is_better: true,
        target: "-",
    });

    // AgentFlow, one call per agent: `af-spawn create --start` (the seed's spawnAgent), which returns
    // once af-wrap reports running, right after its first heartbeat. Its baseline is measured in
    // the same loop, a bare session before each agent, so both see the same machine.
    let w = World::new("spawn");
    let (bare_time, one_time) = interleaved(n, |i| {
        let config = format!(r#"{{"id":"b{i}","type":"worker","projectId":"bench","command":["sleep","600"]}}"#);
        w.run_with_input("af-spawn", &["create", "--start"], &config);
    });
    wait_heartbeats(&w, "b", n);
    row(Row {
        what: "create --start, one call per agent",
        value: n as f64 / one_time.as_secs_f64(),
        unit: "agents/s",
        baseline: Some(("bare tmux new-session -d, interleaved", n as f64 / bare_time.as_secs_f64())),
        higher_is_better: true,
        target: ">= 50 agents/s, <= 3x bare tmux",
    });
    drop(w);

    // And as two calls per agent: `create`, then `start`.
    let w = World::new("spawn2");
    let (bare_time, two_time) = interleaved(n, |i| {
        let config = format!(r#"{{"id":"t{i}","type":"worker","projectId":"bench","command":["sleep","600"]}}"#);
        w.run_with_input("af-spawn", &["create"], &config);
        w.run("af-spawn", &["start", &format!("t{i}")]);
    });
    wait_heartbeats(&w, "t", n);
    row(Row {
        what: "create, then start: two calls per agent",
        value: n as f64 / two_time.as_secs_f64(),
        unit: "agents/s",
        baseline: Some(("bare tmux new-session -d, interleaved", n as f64 / bare_time.as_secs_f64())),
        higher_is_better: true,
        target: ">= 50 agents/s",
    });
    drop(w);

    // ls --json over 1,000 agents (created, not started).
    let many = common::count("AF_BENCH_LS_AGENTS", 1000);
    let w = World::new("ls");
    let mut batch = String::new();
    for i in 0..many {
        batch.push_str(&format!("{{\"id\":\"l{i}\",\"type\":\"worker\",\"projectId\":\"p{}\"}}\n", i % 10));
    }
    w.run_with_input("af-spawn", &["create"], &batch);
    let mut samples: Vec<Duration> = (0..10).map(|_| time(|| w.run("af-spawn", &["ls", "--json"]))).collect();
    let ls_ms = common::percentile_ms(&mut samples, 50.0);
    row(Row {
        what: &format!("ls --json over {many} agents (median)"),
        value: ls_ms,
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true", common::fork_exec_ms(20))),
        higher_is_better: false,
        target: "< 50 ms",
    });
}

/// `af-spawn show ID` of the one agent of a spool (running), each right after a fork/exec.
fn show_one() {
    let w = World::new("show");
    let config = r#"{"id":"one","type":"worker","projectId":"bench","command":["sleep","600"]}"#;
    w.run_with_input("af-spawn", &["create", "--start"], config);
    let (mut fork, mut samples) =
        common::beside_fork_exec(common::count("AF_BENCH_LATENCY", 200), |_| w.run("af-spawn", &["show", "one"]));
    row(Row {
        what: "show of one running agent (p50)",
        value: common::percentile_ms(&mut samples, 50.0),
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true (p50)", common::percentile_ms(&mut fork, 50.0))),
        higher_is_better: false,
        target: "<= 3x fork/exec",
    });
}

/// Waits until agents PREFIX0..PREFIX(n-1) each have a heartbeat (start already waited for it).
fn wait_heartbeats(w: &World, prefix: &str, n: usize) {
    for i in 0..n {
        let hb = w.home.join(format!("agents/{prefix}{i}/heartbeat.json"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !hb.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs `agent(i)` for i in 0..n, each right after one bare `tmux new-session -d` on a private
/// server; returns the total time of the bare sessions and of the agents.
fn interleaved(n: usize, mut agent: impl FnMut(usize)) -> (Duration, Duration) {
    let bare = bare_world("bare-interleaved");
    let (mut bare_time, mut agent_time) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        bare_time += time(|| bare_session(&bare, i));
        agent_time += time(|| agent(i));
    }
    (bare_time, agent_time)
}

/// The time of N bare `tmux new-session -d` calls on a private server.
fn bare_sessions(n: usize) -> Duration {
    let bare = bare_world("bare");
    time(|| (0..n).for_each(|i| bare_session(&bare, i)))
}

/// A private tmux server with one session already (so no measured call starts the server).
fn bare_world(name: &str) -> World {
    let w = World::new(name);
    let _ = w.tmux().args(["new-session", "-d", "-s", "warm"]).status();
    w
}

/// One bare `tmux new-session -d` running `sleep`, the baseline's unit.
fn bare_session(w: &World, i: usize) {
    let _ = w.tmux().args(["new-session", "-d", "-s", &format!("s{i}"), "sleep", "600"]).status();
}
