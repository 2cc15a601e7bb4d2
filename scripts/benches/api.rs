//! af-api: `GET /api/agents` over 100 agents, 10 of them running (requests/s and p99 with
//! concurrent keep-alive clients on loopback; unfiltered, then filtered) beside `GET /healthz` on the same server (tiny_http's own floor);
//! `PATCH` lifecycle operations/s beside running the same `af-spawn` verb directly; messages sent
//! with `POST /api/agents/{id}/messages` beside `af-bus send` directly; and how long a
//! real request takes while 100 idle connections (half of them with half a request) are open;
//! the cockpit: how long a line an agent prints takes to reach a client of
//! `GET /api/agents/{id}/output/stream` (p99) beside the same line reaching `output.log` (the
//! tmux pipe-pane floor), and `GET /api/agents/{id}/output?lines=100` beside `GET /healthz`.

#[path = "../../tests/util/chromium.rs"]
mod chromium;
#[path = "common.rs"]
mod common;

use common::{Row, World, header, percentile_ms, row};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One keep-alive client.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
    token: String,
}

impl Client {
    fn new(addr: &str, token: &str) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Client {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
            host: addr.into(),
            token: token.into(),
        }
    }

    /// Sends one request and reads the whole answer; returns its status.
    fn call(&mut self, method: &str, path: &str, body: &str) -> u16 {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        );
        self.writer.write_all(req.as_bytes()).expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line).expect("chunk size");
                let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut skip = vec![0u8; size + 2];
                self.reader.read_exact(&mut skip).expect("chunk");
                if size == 0 {
                    break;
                }
            }
        } else {
            let mut skip = vec![0u8; length];
            self.reader.read_exact(&mut skip).expect("body");
        }
        status
    }
}

/// Runs `clients` keep-alive clients for `secs` against `path`; returns (requests/s, p99 ms).
fn load(addr: &str, token: &str, path: &str, clients: usize, secs: f64) -> (f64, f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, token, path) = (addr.to_owned(), token.to_owned(), path.to_owned());
            std::thread::spawn(move || {
                let mut c = Client::new(&addr, &token);
                let mut samples = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    let status = c.call("GET", &path, "");
                    assert_eq!(status, 200, "GET {path}");
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let t0 = Instant::now();
    let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().expect("client")).collect();
    let rate = all.len() as f64 / t0.elapsed().as_secs_f64();
    (rate, percentile_ms(&mut all, 99.0))
}

fn main() {
    if std::env::var_os("AF_BENCH_API_ONLY_DASHBOARD").is_some() {
        header("af-api: the dashboard");
        dashboard_rows();
        return;
    }
    let agents = common::count("AF_BENCH_API_AGENTS", 100);
    let clients = common::count("AF_BENCH_API_CLIENTS", 8);
    header(&format!("af-api ({agents} agents, {clients} keep-alive clients on loopback)"));
    let w = World::new("api");
    let _ = w.tmux().args(["new-session", "-d", "-s", "keep", "sleep", "3600"]).status();
    let mut batch = String::new();
    for i in 0..agents {
        batch.push_str(&format!(
            "{{\"id\":\"a{i}\",\"type\":\"worker\",\"projectId\":\"p{}\",\"command\":[\"sleep\",\"3600\"]}}\n",
            i % 10
        ));
    }
    w.run_with_input("af-spawn", &["create"], &batch);
    // Ten of them run (heartbeats change their records while we read).
    let running: Vec<String> = (0..10.min(agents)).map(|i| format!("a{i}")).collect();
    let mut args = vec!["start"];
    args.extend(running.iter().map(String::as_str));
    w.run("af-spawn", &args);

    let (mut server, addr, token) = start_api(&w);
    let (addr, token) = (addr.as_str(), token.as_str());

    let secs = 5.0;
    let (floor_rate, floor_p99) = load(addr, token, "/healthz", clients, secs);
    let (rate, p99) = load(addr, token, "/api/agents", clients, secs);
    row(Row {
        what: &format!("GET /api/agents ({agents} agents)"),
        value: rate,
        unit: "req/s",
        baseline: Some(("GET /healthz, same server", floor_rate)),
        higher_is_better: true,
        target: "> 5000 req/s",
    });
    row(Row {
        what: "GET /api/agents p99",
        value: p99,
        unit: "ms",
        baseline: Some(("GET /healthz p99", floor_p99)),
        higher_is_better: false,
        target: "< 20 ms",
    });

    let (frate, fp99) = load(addr, token, "/api/agents?status=running", clients, secs);
    row(Row {
        what: "GET /api/agents?status=running (filtered)",
        value: frate,
        unit: "req/s",
        baseline: Some(("GET /healthz, same server", floor_rate)),
        higher_is_better: true,
        target: "-",
    });
    row(Row {
        what: "GET /api/agents?status=running p99",
        value: fp99,
        unit: "ms",
        baseline: Some(("GET /healthz p99", floor_p99)),
        higher_is_better: false,
        target: "-",
    });

    // PATCH pause/resume through the API, beside the same verbs run directly.
    let ops = 40;
    let direct = common::time(|| {
        for i in 0..ops {
            let verb = if i % 2 == 0 { "pause" } else { "resume" };
            w.run("af-spawn", &[verb, &running[(i / 2) % running.len()]]);
        }
    });
    let mut cl = Client::new(addr, token);
    let via_api = common::time(|| {
        for i in 0..ops {
            let action = if i % 2 == 0 { "pause" } else { "resume" };
            let id = &running[(i / 2) % running.len()];
            let status = cl.call("PATCH", &format!("/api/agents/{id}"), &format!("{{\"action\":\"{action}\"}}"));
            assert_eq!(status, 200, "PATCH {action} {id}");
        }
    });
    row(Row {
        what: "PATCH pause/resume",
        value: ops as f64 / via_api.as_secs_f64(),
        unit: "ops/s",
        baseline: Some(("af-spawn pause/resume directly", ops as f64 / direct.as_secs_f64())),
        higher_is_better: true,
        target: "-",
    });

    // POST messages through the API (af-bus send), beside af-bus send directly, to an agent that
    // does not run (nothing takes them), then the queue is cleared.
    let quiet = format!("a{}", agents - 1);
    let sends = 100;
    let direct = common::time(|| {
        for i in 0..sends {
            w.run("af-bus", &["send", "--to", &quiet, &i.to_string()]);
        }
    });
    // A fresh connection: the last one may have gone idle (5 s) while af-bus ran.
    let mut cl = Client::new(addr, token);
    let via_api = common::time(|| {
        for i in 0..sends {
            let status = cl.call("POST", &format!("/api/agents/{quiet}/messages"), &format!("{{\"payload\":{i}}}"));
            assert_eq!(status, 201, "POST a message to {quiet}");
        }
    });
    assert_eq!(cl.call("DELETE", &format!("/api/agents/{quiet}/messages"), ""), 200);
    row(Row {
        what: "POST /api/agents/{id}/messages",
        value: sends as f64 / via_api.as_secs_f64(),
        unit: "msg/s",
        baseline: Some(("af-bus send directly", sends as f64 / direct.as_secs_f64())),
        higher_is_better: true,
        target: "-",
    });

    // 100 idle connections, then a real request.
    let idle: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = TcpStream::connect(addr).expect("idle connect");
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /api/agents HTTP/1.1\r\nHost: loc");
            }
            s
        })
        .collect();
    let mut fresh = Client::new(addr, token);
    let t = Instant::now();
    assert_eq!(fresh.call("GET", "/api/agents", ""), 200);
    let with_idle = t.elapsed().as_secs_f64() * 1000.0;
    drop(idle);
    row(Row {
        what: "GET /api/agents behind 100 idle connections",
        value: with_idle,
        unit: "ms",
        baseline: Some(("GET /api/agents p99 (no idle ones)", p99)),
        higher_is_better: false,
        target: "< 1000 ms",
    });
    output_rows(&w, addr, token, floor_p99);
    let _ = server.kill();
    let _ = server.wait();
    drop(w);
    dashboard_rows();
}

/// Starts af-api in `w` on a free loopback port: the child, its address and its token.
fn start_api(w: &World) -> (std::process::Child, String, String) {
    let mut api = w.cmd("af-api");
    api.args(["--listen", "127.0.0.1:0", "--rate-limit", "0", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut server = api.spawn().expect("af-api");
    let mut url = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut url).expect("url");
    // stdout is a pipe: the startup line names the token file, not the token.
    let start: serde_json::Value = serde_json::from_str(&url).expect("the startup line as JSON");
    let addr = start["listen"].as_str().expect("listen").to_owned();
    let token_file = start["tokenFile"].as_str().expect("tokenFile");
    let token = std::fs::read_to_string(token_file).expect("the token file");
    (server, addr, token.trim().to_owned())
}

/// An agent that echoes each line written to its fifo; each line's time to the SSE client of its
/// output stream, beside its time to `output.log` (polled every 0.2 ms: tmux's own delay).
fn output_rows(w: &World, addr: &str, token: &str, floor_p99: f64) {
    let fifo = w.path("echo.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let script = format!("exec 3<>{}; while read -r l <&3; do echo \"$l\"; done", fifo.display());
    let config =
        serde_json::json!({"id": "echo", "type": "worker", "projectId": "bench", "command": ["sh", "-c", script]});
    w.run_with_input("af-spawn", &["create", "--start"], &config.to_string());
    let log = w.home.join("agents/echo/output.log");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    write!(s, "GET /api/agents/echo/output/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
        .expect("open the stream");
    let (tx, rx) = std::sync::mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut line = String::new();
        // A chunk may end in the middle of a line: its rest comes with the next chunk.
        let mut partial = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(data) = line.strip_prefix("data: ") {
                let at = Instant::now();
                let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
                partial.push_str(v["text"].as_str().unwrap_or(""));
                while let Some(end) = partial.find('\n') {
                    let l: String = partial.drain(..=end).collect();
                    if tx.send((l.trim().to_owned(), at)).is_err() {
                        return;
                    }
                }
            }
            line.clear();
        }
    });
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).expect("the fifo");
    let lines = common::count("AF_BENCH_API_LINES", 200);
    let (mut to_log, mut to_client) = (Vec::new(), Vec::new());
    for i in 0..lines {
        let marker = format!("line-{i}-x");
        let t0 = Instant::now();
        writeln!(writer, "{marker}").expect("write a line");
        let deadline = t0 + Duration::from_secs(10);
        loop {
            let text = std::fs::read(&log).unwrap_or_default();
            if text.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                to_log.push(t0.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "{marker} never reached output.log");
            std::thread::sleep(Duration::from_micros(200));
        }
        loop {
            let (l, at) = rx.recv_timeout(Duration::from_secs(10)).expect("the line on the stream");
            if l == marker {
                to_client.push(at - t0);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    row(Row {
        what: "output line to an SSE client p99",
        value: percentile_ms(&mut to_client, 99.0),
        unit: "ms",
        baseline: Some(("the line to output.log p99", percentile_ms(&mut to_log, 99.0))),
        higher_is_better: false,
        target: "< 500 ms",
    });
    let secs = 3.0;
    let (_, out_p99) = load(addr, token, "/api/agents/echo/output?lines=100", 4, secs);
    row(Row {
        what: "GET /api/agents/{id}/output?lines=100 p99",
        value: out_p99,
        unit: "ms",
        baseline: Some(("GET /healthz p99", floor_p99)),
        higher_is_better: false,
        target: "-",
    });
}

/// CPU ticks (user + system) of these processes, together, from /proc.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| af_ops::procfs::stat(*p)).map(|s| s.cpu_ticks).sum()
}

/// Every live process of the world's spool (its environment names `AF_HOME`) but `except`.
fn spool_pids(w: &World, except: u32) -> Vec<u32> {
    let needle = format!("AF_HOME={}", w.home.display());
    af_ops::procfs::all()
        .into_iter()
        .filter(|p| p.pid != except && p.state != 'Z' && af_ops::procfs::environ_has(p.pid, &needle))
        .map(|p| p.pid)
        .collect()
}

/// The CPU of af-api and of the rest of the spool over `secs`, in % of one core.
fn cpu_window(w: &World, api: u32, secs: f64) -> (f64, f64) {
    let others = spool_pids(w, api);
    let before = (cpu_ticks(&[api]), cpu_ticks(&others));
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let took = began.elapsed().as_secs_f64();
    let after = (cpu_ticks(&[api]), cpu_ticks(&others));
    let pct = |t: u64| 100.0 * t as f64 / af_ops::procfs::ticks_per_second() as f64 / took;
    (pct(after.0.saturating_sub(before.0)), pct(after.1.saturating_sub(before.1)))
}

/// Reloads the page `n` times; the median of `af.firstPaint` (ms from navigation start to the
/// grid filled with every agent).
fn first_paint_ms(page: &mut chromium::Browser, n: usize, agents: usize) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..n {
        let before = page.eval("window.af ? window.af.loadedAt : 0");
        page.send("Page.reload", serde_json::json!({"ignoreCache": true}));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = page.eval(&format!(
                "window.af && window.af.loadedAt !== {before} && window.af.firstPaint !== null && document.getElementById('shown').textContent === '{agents} of {agents}' ? window.af.firstPaint : null"
            ));
            if let Some(ms) = v.as_f64() {
                samples.push(Duration::from_secs_f64(ms / 1000.0));
                break;
            }
            assert!(Instant::now() < deadline, "the dashboard never painted {agents} agents");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    percentile_ms(&mut samples, 50.0)
}

/// The dashboard's first paint at many agents, and af-api's CPU with many dashboards open.
fn dashboard_rows() {
    let n = common::count("AF_BENCH_API_DASH_AGENTS", 500);
    let dashboards = common::count("AF_BENCH_API_DASHBOARDS", 10);
    let paints = common::count("AF_BENCH_API_PAINTS", 5);
    let secs = common::count("AF_BENCH_API_CPU_SECS", 20) as f64;
    if std::process::Command::new("chromium").arg("--version").output().is_err() {
        println!("  (no chromium on PATH: the dashboard rows are left out; apt-get install chromium)");
        return;
    }
    let w = World::new("api-dash");
    let _ = w.tmux().args(["new-session", "-d", "-s", "keep", "sleep", "3600"]).status();
    let config = |i: usize| {
        format!(
            "{{\"id\":\"d{i:04}\",\"type\":\"worker\",\"projectId\":\"p{}\",\"command\":[\"sleep\",\"3600\"]}}\n",
            i % 10
        )
    };
    w.run_with_input("af-spawn", &["create", "--start"], &config(0));
    let (mut server, addr, token) = start_api(&w);
    let url = format!("http://{addr}/#token={token}");
    let mut page = chromium::Browser::open(&w.path("chromium-profile"), &url);
    page.wait_until("the grid", "document.getElementById('shown').textContent", serde_json::json!("1 of 1"));
    let one = first_paint_ms(&mut page, paints, 1);
    // The rest, in one call.
    let batch: String = (1..n).map(config).collect();
    w.run_with_input("af-spawn", &["create", "--start"], &batch);
    let many = first_paint_ms(&mut page, paints, n);
    row(Row {
        what: &format!("dashboard first paint, {n} agents"),
        value: many,
        unit: "ms",
        baseline: Some(("the same page, 1 agent", one)),
        higher_is_better: false,
        target: "< 1000 ms",
    });
    drop(page);

    // af-api's CPU: no dashboard (once the agents have left the busy pace a watched spool asks
    // for), then `dashboards` of them, each a page with its event stream and its polls.
    std::thread::sleep(Duration::from_secs(10));
    let api = server.id();
    let (bare, agents_bare) = cpu_window(&w, api, secs);
    let mut browser = chromium::Browser::open(&w.path("chromium-profile"), &url);
    for _ in 1..dashboards {
        browser.open_tab(&url);
    }
    // Ten pages of 500 cards load slowly on a small machine: each page's grid, before measuring.
    let deadline = Instant::now() + Duration::from_secs(300);
    let full = serde_json::json!(format!("{n} of {n}"));
    while browser.eval("document.getElementById('shown').textContent") != full {
        assert!(Instant::now() < deadline, "the dashboard never showed {n} agents");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(10));
    let (watched, agents_watched) = cpu_window(&w, api, secs);
    row(Row {
        what: &format!("af-api CPU, {dashboards} dashboards, {n} idle agents"),
        value: watched,
        unit: "% core",
        baseline: Some(("af-api, no dashboard", bare.max(0.01))),
        higher_is_better: false,
        target: "< 5 %",
    });
    row(Row {
        what: &format!("  the {n} agents' own CPU meanwhile"),
        value: agents_watched,
        unit: "% core",
        baseline: Some(("theirs with no dashboard", agents_bare.max(0.01))),
        higher_is_better: false,
        target: "-",
    });
    drop(browser);
    let _ = server.kill();
    let _ = server.wait();
}
