//! af-health: `af-health check ID` of one agent started by `af-spawn start` (in tmux, so every
//! check runs: process, tmux session, heartbeat, ping), beside fork/exec of /bin/true,
//! interleaved, and beside that plus the bare `tmux list-windows` the check runs; then one
//! `check` pass over 200 and over 1,000 running agents (each a real af-wrap supervising `sleep`,
//! answering the ping), beside reading /proc/<pid>/stat of the same processes in this process.
//!
//! The agents' af-wraps run outside tmux (1,000 tmux sessions would measure tmux), so their tmux
//! check fails: the first pass (not measured) raises those alerts; the measured passes find them
//! open already, as in a steady state.
//!
//! Then the honest row: one `check` pass over N agents really in tmux (`af-spawn create --start`,
//! workers running `sleep`, all healthy; N from AF_BENCH_HEALTH_TMUX_AGENTS, default 200, 0 skips
//! it), interleaved with its floor measured in the same run (`tmux list-windows -a` of that server
//! plus reading /proc/<pid>/stat of the agents' processes, here), and with a `--no-ping` pass
//! (what the pings cost).

#[path = "common.rs"]
mod common;

use common::{Row, World, header, percentile_ms, row, time};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

fn main() {
    let sizes: Vec<usize> = match std::env::var("AF_BENCH_HEALTH_AGENTS") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![200, 1000],
    };
    header("af-health (one check pass)");
    one_agent();
    for n in sizes {
        bench(n);
    }
    let in_tmux = common::count("AF_BENCH_HEALTH_TMUX_AGENTS", 200);
    if in_tmux > 0 {
        bench_in_tmux(in_tmux);
    }
}

/// `af-health check ID` of one healthy agent in tmux, each run right after a fork/exec.
fn one_agent() {
    let w = World::new("health1");
    let config = r#"{"id":"one","type":"worker","projectId":"bench","command":["sleep","600"]}"#;
    w.run_with_input("af-spawn", &["create", "--start"], config);
    let check = || {
        let mut c = w.cmd("af-health");
        c.args(["check", "one"]);
        let _ = c.status();
    };
    check(); // the first pass writes the agent's health once
    // The check lists the tmux server's windows, a tmux client's run, measured alone too: the
    // check's floor is a program start plus that.
    let mut tmux = Vec::new();
    let (mut fork, mut samples) = common::beside_fork_exec(common::count("AF_BENCH_LATENCY", 200), |_| {
        tmux.push(time(|| {
            let _ =
                w.tmux().args(["list-windows", "-a", "-F", "#{session_name}\t#{window_name}\t#{@af_home}"]).status();
        }));
        check();
    });
    let fork_p50 = percentile_ms(&mut fork, 50.0);
    row(Row {
        what: "check of one agent in tmux (p50)",
        value: percentile_ms(&mut samples, 50.0),
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true (p50)", fork_p50)),
        higher_is_better: false,
        target: "<= 3x fork/exec",
    });
    row(Row {
        what: "  the same (p50), beside its floor",
        value: percentile_ms(&mut samples, 50.0),
        unit: "ms",
        baseline: Some(("fork/exec + tmux list-windows (p50s)", fork_p50 + percentile_ms(&mut tmux, 50.0))),
        higher_is_better: false,
        target: "-",
    });
}

fn bench(n: usize) {
    let w = World::new(&format!("health{n}"));
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!(
            "{{\"id\":\"h{i}\",\"type\":\"worker\",\"projectId\":\"bench\",\"command\":[\"sleep\",\"600\"]}}\n"
        ));
    }
    w.run_with_input("af-spawn", &["create"], &batch);
    let mut wraps = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = w.cmd("af-wrap");
        c.arg(format!("h{i}")).env("AF_HEARTBEAT_INTERVAL", "600s").process_group(0);
        wraps.push(c.spawn().expect("af-wrap"));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..n {
        let state = w.home.join(format!("agents/h{i}/state.json"));
        while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"running\"")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let check = || {
        let mut c = w.cmd("af-health");
        c.args(["check", "--json"]).env("AF_HEALTH_STALE", "1h");
        let _ = c.status();
    };
    check(); // the warm-up pass raises the tmux alerts
    let cpu = || {
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
            .map(|u| {
                let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 * 1e3 + v.tv_usec() as f64 / 1e3;
                t(u.user_time()) + t(u.system_time())
            })
            .unwrap_or(0.0)
    };
    let cpu_before = cpu();
    let mut samples: Vec<Duration> = (0..5).map(|_| time(check)).collect();
    let cpu_ms = (cpu() - cpu_before) / 5.0;
    let pass_ms = percentile_ms(&mut samples, 50.0);

    // Baseline: /proc/<pid>/stat of every process of these agents, read here.
    let pids = w.pids();
    let mut base: Vec<Duration> = (0..5)
        .map(|_| {
            time(|| {
                for p in &pids {
                    let _ = std::fs::read_to_string(format!("/proc/{p}/stat"));
                }
            })
        })
        .collect();
    let base_ms = percentile_ms(&mut base, 50.0);
    let what = format!("check pass over {n} running agents (median)");
    let target = if n <= 200 { "< 50 ms" } else { "< 250 ms" };
    row(Row {
        what: &what,
        value: pass_ms,
        unit: "ms",
        baseline: Some((&format!("read {} /proc/<pid>/stat", pids.len()), base_ms)),
        higher_is_better: false,
        target,
    });
    row(Row {
        what: "  CPU time of that pass (user+sys, mean)",
        value: cpu_ms,
        unit: "ms",
        baseline: None,
        higher_is_better: false,
        target: "-",
    });
    drop(w);
    for mut c in wraps {
        let _ = c.wait();
    }
}

/// One `check` pass over `n` healthy agents in tmux, as `af-spawn create --start` runs them.
fn bench_in_tmux(n: usize) {
    let w = World::new(&format!("healthtmux{n}"));
    // As scale.rs: the server is started first, so the batch measures no server start.
    let _ = w.tmux().args(["new-session", "-d", "-s", "warm"]).status();
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!(
            "{{\"id\":\"t{i}\",\"type\":\"worker\",\"projectId\":\"bench\",\"command\":[\"sleep\",\"100000\"]}}\n"
        ));
    }
    w.run_with_input("af-spawn", &["create", "--start"], &batch);
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..n {
        let beat = w.home.join(format!("agents/t{i}/heartbeat.json"));
        while !beat.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let check = |extra: &[&str]| {
        let mut c = w.cmd("af-health");
        c.args(["check", "--json"]).args(extra);
        let _ = c.status();
    };
    check(&[]); // the first pass writes every agent's health once
    let pids = w.pids();
    let floor = || {
        let _ = w.tmux().args(["list-windows", "-a", "-F", "#{session_name}\t#{window_name}\t#{@af_home}"]).status();
        for p in &pids {
            let _ = std::fs::read_to_string(format!("/proc/{p}/stat"));
        }
    };
    let rounds = common::count("AF_BENCH_HEALTH_TMUX_ROUNDS", 7);
    let (mut pass, mut no_ping, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        base.push(time(floor));
        pass.push(time(|| check(&[])));
        no_ping.push(time(|| check(&["--no-ping"])));
    }
    let pass_ms = percentile_ms(&mut pass, 50.0);
    row(Row {
        what: &format!("check pass over {n} agents in tmux (median)"),
        value: pass_ms,
        unit: "ms",
        baseline: Some((&format!("tmux list-windows + {} /proc stats", pids.len()), percentile_ms(&mut base, 50.0))),
        higher_is_better: false,
        target: if n <= 200 { "< 50 ms" } else { "< 250 ms" },
    });
    row(Row {
        what: "  the same pass with --no-ping (median)",
        value: percentile_ms(&mut no_ping, 50.0),
        unit: "ms",
        baseline: Some(("the pass with pings", pass_ms)),
        higher_is_better: false,
        target: "-",
    });
}
