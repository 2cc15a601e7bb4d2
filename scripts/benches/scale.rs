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
//! - `ls --json`, `af-health check` and `GET /api/agents` (af-api on a free loopback port)
//!   beside fork/exec of /bin/true and `GET /healthz` on the same server;
//! - the time to recover every agent after its tmux server is killed (`kill -9`), through the
//!   health ladder (`af-health check --recover` passes, as cron or `watch` runs them), beside
//!   recreating the bare fleet after the same kill;
//! - a forced stop of all.
//!
//! The bench runs its children with a soft descriptor limit of 1,024 (AF_BENCH_SCALE_NOFILE), as
//! from a `ulimit -Sn 1024` shell, the hard limit left as it is; its tmux servers are started by
//! the bench, as a user's shell would. Every pm2 call has a deadline: a pm2 that dies or hangs
//! prints "pm2 failed at N processes: why" instead of its rows.

#[path = "common.rs"]
mod common;

use common::{Row, World, header, row, time};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

fn main() {
    let n = common::count("AF_BENCH_SCALE_AGENTS", 200);
    let idle = Duration::from_secs(common::count("AF_BENCH_SCALE_IDLE_SECS", 60) as u64);
    let soft = common::count("AF_BENCH_SCALE_NOFILE", 1024) as u64;
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |l| l.1);
    // Every child (tmux servers, AgentFlow's programs, pm2) starts as from a `ulimit -Sn` shell.
    let _ = setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard);
    header(&format!("scale ({n} agents)"));
    println!("  (children start with descriptors soft {} hard {hard}; load average {})", soft.min(hard), loadavg());

    // The bare fleet: N sessions of sleep on a private tmux server, started with the hard limit
    // (a baseline that holds N sessions whatever the shell's soft limit).
    let bare = World::new("scale-bare");
    let mut warm = bare.tmux();
    warm.args(["new-session", "-d", "-s", "warm"]);
    // SAFETY: setrlimit between fork and exec only.
    unsafe {
        warm.pre_exec(move || setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from));
    }
    let _ = warm.status();
    let bare_fleet = || {
        for i in 0..n {
            let _ = bare.tmux().args(["new-session", "-d", "-s", &format!("s{i}"), "sleep", "3600"]).status();
        }
    };
    let bare_start = time(bare_fleet);
    let bare_server = tmux_server_pid(&bare);
    let pm2 = Pm2::start(&bare.path("pm2"), n);

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
    if let Some(p) = &pm2 {
        row(Row {
            what: "create+start, one call",
            value: rate(af_start),
            unit: "agents/s",
            baseline: Some(("pm2 start of N sleeps", rate(p.started))),
            higher_is_better: true,
            target: "-",
        });
    }

    // Idle: every fleet over the same window, once the heartbeats have slowed to their idle
    // maximum (each beat says its interval; a minute at most).
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(60) && !idle_pace(&w, n) {
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut ours: Vec<u32> = wraps.clone();
    ours.extend(server);
    let pm2_pid: Vec<u32> = pm2.as_ref().and_then(Pm2::daemon).into_iter().collect();
    println!("  (load average before the idle window: {})", loadavg());
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
    api_rows(&w, n);
    recovery_rows(&w, &bare, n, &bare_fleet);

    // Those running (after the recovery, an agent may be left stopped: stop refuses it).
    let ids: Vec<String> = (0..n).map(|i| format!("a{i}")).filter(|id| is_running(&w, id)).collect();
    let mut args = vec!["stop", "--force"];
    args.extend(ids.iter().map(String::as_str));
    let stopped = ids.len();
    let stop = time(|| w.run("af-spawn", &args));
    let bare_stop = time(|| {
        for i in 0..n {
            let _ = bare.tmux().args(["kill-session", "-t", &format!("=s{i}")]).status();
        }
    });
    row(Row {
        what: &format!("forced stop of all {stopped} running, one call"),
        value: stopped as f64 / stop.as_secs_f64(),
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

/// The load average over the last minute, five and fifteen (the machine may be shared).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or("?".into(), |l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

/// One HTTP/1.1 request (the connection closed after it); its status and how long it took.
fn http(addr: &str, token: &str, path: &str) -> (u16, Duration) {
    let t = Instant::now();
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return (0, t.elapsed()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    let mut body = Vec::new();
    if s.write_all(req.as_bytes()).is_err() || s.read_to_end(&mut body).is_err() {
        return (0, t.elapsed());
    }
    let status = String::from_utf8_lossy(&body).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, t.elapsed())
}

/// `GET /api/agents` over every agent (median of 5) beside `GET /healthz` on the same server.
fn api_rows(w: &World, n: usize) {
    use std::io::BufRead;
    let mut api = w.cmd("af-api");
    api.args(["--listen", "127.0.0.1:0", "--rate-limit", "0", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let Ok(mut server) = api.spawn() else {
        println!("  (af-api did not start: its rows are left out)");
        return;
    };
    let mut line = String::new();
    let _ = std::io::BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line);
    let start: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    let addr = start["listen"].as_str().unwrap_or_default().to_owned();
    let token = start["tokenFile"].as_str().and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
    let median = |path: &str| {
        let mut samples = Vec::new();
        for _ in 0..5 {
            let (status, took) = http(&addr, token.trim(), path);
            if status != 200 {
                println!("  (GET {path} answered {status}: its row is left out)");
                return None;
            }
            samples.push(took);
        }
        Some(common::percentile_ms(&mut samples, 50.0))
    };
    if let (Some(floor), Some(agents)) = (median("/healthz"), median("/api/agents")) {
        row(Row {
            what: &format!("GET /api/agents over {n} (median of 5)"),
            value: agents,
            unit: "ms",
            baseline: Some(("GET /healthz, same server", floor)),
            higher_is_better: false,
            target: "-",
        });
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// How many agents run with a live session, from `ls --json`.
fn running(w: &World) -> usize {
    let out = w.cmd("af-spawn").args(["ls", "--json"]).stdout(std::process::Stdio::piped()).output();
    let v: serde_json::Value = out.ok().and_then(|o| serde_json::from_slice(&o.stdout).ok()).unwrap_or_default();
    v.as_array().map_or(0, |a| a.iter().filter(|a| a["status"] == "running").count())
}

/// kill -9 of the tmux server, then `af-health check --recover` passes (what cron or `watch`
/// runs) until every agent runs again; beside kill -9 of the bare fleet's server and
/// recreating its N sessions.
fn recovery_rows(w: &World, bare: &World, n: usize, bare_fleet: &dyn Fn()) {
    let kill = |p: Option<u32>| {
        if let Some(p) = p {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
            while std::path::Path::new(&format!("/proc/{p}")).exists()
                && af_ops::procfs::stat(p).is_some_and(|s| s.state != 'Z')
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let limit = Duration::from_secs(common::count("AF_BENCH_SCALE_RECOVERY_SECS", 900) as u64);
    kill(tmux_server_pid(w));
    let _ = std::fs::remove_file(af_ops::tmux::socket_path(&w.socket));
    let began = Instant::now();
    let mut passes = 0;
    let mut up = 0;
    while began.elapsed() < limit {
        let mut c = w.cmd("af-health");
        c.args(["check", "--recover", "--json"]);
        let _ = c.status();
        passes += 1;
        up = running(w);
        if up == n && tmux_sessions(w) >= n {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let ours = began.elapsed();
    kill(tmux_server_pid(bare));
    let _ = std::fs::remove_file(af_ops::tmux::socket_path(&bare.socket));
    let base = time(bare_fleet);
    if up < n {
        println!(
            "  recovery after kill -9 of the tmux server: {up} of {n} running after {:.0} s ({passes} passes)",
            ours.as_secs_f64()
        );
        return;
    }
    row(Row {
        what: &format!("recover all after kill -9 of tmux ({passes} passes)"),
        value: ours.as_secs_f64(),
        unit: "s",
        baseline: Some(("recreate the bare fleet", base.as_secs_f64())),
        higher_is_better: false,
        target: "-",
    });
}

/// Whether an agent's state says it runs.
fn is_running(w: &World, id: &str) -> bool {
    let state = std::fs::read_to_string(w.home.join(format!("agents/{id}/state.json"))).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&state).is_ok_and(|v| v["status"] == "running")
}

/// How many sessions the world's tmux server holds.
fn tmux_sessions(w: &World) -> usize {
    let out = w.tmux().args(["list-sessions", "-F", "#{session_name}"]).stdout(std::process::Stdio::piped()).output();
    out.map_or(0, |o| String::from_utf8_lossy(&o.stdout).lines().count())
}

/// pm2's daemon with N idle `sleep` processes, in a home of its own (in the bench's world); on
/// drop `pm2 kill`, then the daemon and its children killed by pid. Every pm2 call has a
/// deadline. None where pm2 is not installed (`npm install -g pm2`) or failed, said in a line.
struct Pm2 {
    home: std::path::PathBuf,
    /// How long `pm2 start` of the N took.
    started: Duration,
}

impl Pm2 {
    fn start(home: &std::path::Path, n: usize) -> Option<Pm2> {
        std::fs::create_dir_all(home).ok()?;
        let apps: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({"name": format!("s{i}"), "script": "/bin/sleep", "args": "3600",
                    "interpreter": "none", "autorestart": false})
            })
            .collect();
        let eco = home.join("ecosystem.json");
        std::fs::write(&eco, serde_json::json!({"apps": apps}).to_string()).ok()?;
        let mut pm2 = Pm2 { home: home.to_owned(), started: Duration::ZERO };
        let deadline = Duration::from_secs(60) + Duration::from_millis(200 * n as u64);
        let t = Instant::now();
        let started = pm2.call(&[eco.to_str()?], "start", deadline);
        pm2.started = t.elapsed();
        let why = match started {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("  (no pm2 on PATH: its rows are left out; npm install -g pm2 adds them)");
                return None;
            }
            Err(e) => e.to_string(),
            Ok(_) if pm2.daemon().is_none() => "its daemon died".into(),
            Ok(_) if pm2.processes() < n => format!("{} of {n} started", pm2.processes()),
            Ok(_) => return Some(pm2),
        };
        println!("  pm2 failed at {} processes: {why} (its rows are left out)", pm2.processes());
        None
    }

    /// One pm2 call with a deadline: killed (its process group) when late.
    fn call(&self, args: &[&str], verb: &str, deadline: Duration) -> std::io::Result<()> {
        if !std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join("pm2").is_file()) {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        let mut c = std::process::Command::new("pm2");
        c.arg(verb).args(args).env("PM2_HOME", &self.home);
        match af_ops::process::run(&mut c, "pm2", None, 1 << 20, deadline) {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(std::io::Error::other(format!(
                "pm2 {verb} exited with {}: {}",
                out.describe_exit(),
                out.last_error_line().unwrap_or_default()
            ))),
            Err(af_spool::Error::Timeout(_)) => {
                Err(std::io::Error::other(format!("pm2 {verb} did not answer within {deadline:?}")))
            }
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// The daemon's pid, while it lives.
    fn daemon(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.home.join("pm2.pid")).ok()?.trim().parse().ok()?;
        af_ops::procfs::stat(pid).filter(|s| s.state != 'Z').map(|_| pid)
    }

    /// How many processes the daemon runs.
    fn processes(&self) -> usize {
        self.daemon().map_or(0, |d| af_ops::procfs::all().iter().filter(|p| p.ppid == d && p.state != 'Z').count())
    }
}

impl Drop for Pm2 {
    fn drop(&mut self) {
        let daemon = self.daemon();
        let _ = self.call(&[], "kill", Duration::from_secs(30));
        if let Some(d) = daemon {
            let kill = |p: u32| {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
            };
            for p in af_ops::procfs::all().iter().filter(|p| p.ppid == d) {
                kill(p.pid);
            }
            kill(d);
        }
    }
}
