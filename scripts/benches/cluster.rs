//! Two hosts, alpha and beta, on one machine (each its own spool, tmux server and `af-bus
//! bridge`), meeting through one redis-server of the benchmark's own: a request round trip
//! alpha→beta→alpha (`af-bus request --to w1@beta`, beta's worker runs `true`), p50 and p99,
//! beside a bare XADD + XREADGROUP round trip with the redis crate (a thread reads the request from
//! one stream and adds the answer to another) and the same request on one host, measured in the
//! same run; and batch delivery alpha→beta (every message fsynced on both sides) in msg/s beside
//! bare pipelined XADDs; then the same batch split in two: `send --batch` into alpha's outbox
//! (alpha's bridge stopped), and the bridges alone moving it to beta's inbox; pool tasks through
//! both hosts (the cluster-wide `pool:PROJECT`) in tasks/s beside the same bare XADDs; and
//! `af-spawn ls --cluster` over 3 hosts x 300 agents (published records, see [`ls_cluster`]).

#[path = "common.rs"]
mod common;

use af_spool::Spool;
use af_spool::bus::Address;
use common::{Row, World, header, percentile_ms, row, time};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let n = common::count("AF_BENCH_ROUND_TRIPS", 200);
    let batch = common::count("AF_BENCH_MESSAGES", 5000);
    header(&format!("cluster ({n} round trips, a batch of {batch}; two hosts on one machine)"));
    let alpha = World::new("alpha");
    let beta = World::new("beta");
    let Some((url, mut redis)) = redis_server(&alpha) else {
        println!("skipped: redis-server is not on PATH (apt-get install redis-server)");
        return;
    };
    run(on(&beta, "beta", &url, "af-spawn").args(["create", "--start"]), r#"{"id":"w1","type":"worker"}"#);
    run(on(&beta, "beta", &url, "af-spawn").arg("create"), r#"{"id":"box","type":"worker"}"#);
    let mut bridges: Vec<Child> = [(&alpha, "alpha"), (&beta, "beta")]
        .into_iter()
        .map(|(w, h)| on(w, h, &url, "af-bus").arg("bridge").spawn().expect("af-bus bridge"))
        .collect();
    let request = |w: &World, host: &str, to: &str| {
        let st = on(w, host, &url, "af-bus")
            .args(["request", "--to", to, "--timeout", "30", r#"{"command":["true"]}"#])
            .status()
            .expect("af-bus request");
        assert!(st.success(), "request to {to} failed");
    };
    request(&alpha, "alpha", "w1@beta"); // both bridges connected, the worker warm

    // Interleaved, so that all three see the same machine.
    let (mut remote, mut local, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let mut bare_trip = bare_round_trips(&url);
    for _ in 0..n {
        remote.push(time(|| request(&alpha, "alpha", "w1@beta")));
        local.push(time(|| request(&beta, "beta", "w1")));
        bare.push(bare_trip());
    }
    let floor = percentile_ms(&mut bare, 50.0) + percentile_ms(&mut local, 50.0);
    for p in [50.0, 99.0] {
        row(Row {
            what: &format!("request alpha->beta->alpha (p{p})"),
            value: percentile_ms(&mut remote, p),
            unit: "ms",
            baseline: Some(("bare XADD+XREADGROUP trip (p50)", percentile_ms(&mut bare, 50.0))),
            higher_is_better: false,
            target: "-",
        });
    }
    row(Row {
        what: "  the same (p50), beside bare trip + local request",
        value: percentile_ms(&mut remote, 50.0),
        unit: "ms",
        baseline: Some(("bare trip + request on one host", floor)),
        higher_is_better: false,
        target: "<= 3x",
    });
    row(Row {
        what: "  request on one host, for reference (p50)",
        value: percentile_ms(&mut local, 50.0),
        unit: "ms",
        baseline: None,
        higher_is_better: false,
        target: "-",
    });

    // Batch: alpha's outbox to beta's inbox, durable on both sides.
    let input: String = (0..batch).map(|i| format!("{i}\n")).collect();
    let inbox =
        Address::Inbox(af_spool::AgentId::new("box").expect("id")).queue(&Spool::open(&beta.home).expect("spool"));
    let mut woken = inbox.listen().expect("listen to beta's inbox");
    let t = Instant::now();
    run(on(&alpha, "alpha", &url, "af-bus").args(["send", "--batch", "--to", "box@beta"]), &input);
    wait_for_depth(&inbox, &mut woken, batch, t);
    let rate = batch as f64 / t.elapsed().as_secs_f64();
    let bare = bare_xadds(&url, batch);
    row(Row {
        what: "batch alpha->beta, fsynced on both sides",
        value: rate,
        unit: "msg/s",
        baseline: Some(("bare pipelined XADD", bare)),
        higher_is_better: true,
        target: ">= 5,000/s",
    });
    // The same batch again, in two parts: `send --batch` into alpha's outbox while alpha's bridge
    // is stopped, then the bridges alone (alpha's started again) until beta's inbox holds it all.
    let _ = bridges[0].kill();
    let _ = bridges[0].wait();
    let t = Instant::now();
    run(on(&alpha, "alpha", &url, "af-bus").args(["send", "--batch", "--to", "box@beta"]), &input);
    let sending = t.elapsed();
    let t = Instant::now();
    bridges[0] = on(&alpha, "alpha", &url, "af-bus").arg("bridge").spawn().expect("af-bus bridge");
    wait_for_depth(&inbox, &mut woken, 2 * batch, t);
    row(Row {
        what: "  the bridges alone (the batch in alpha's outbox)",
        value: batch as f64 / t.elapsed().as_secs_f64(),
        unit: "msg/s",
        baseline: Some(("bare pipelined XADD", bare)),
        higher_is_better: true,
        target: ">= 5,000/s",
    });
    row(Row {
        what: "  send --batch into alpha's outbox alone",
        value: batch as f64 / sending.as_secs_f64(),
        unit: "msg/s",
        baseline: None,
        higher_is_better: true,
        target: "-",
    });
    pool(&alpha, &beta, &url, bare);
    ls_cluster(&alpha, &url);
    // redis-server rewrites its environment (its process title), so the worlds' cleanup, which
    // finds their processes by AF_HOME, cannot: it is killed here by pid.
    for c in bridges.iter_mut().chain([&mut redis]) {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The cluster-wide pool: `AF_BENCH_POOL_TASKS` (500) tasks running `true` sent with `send
/// --batch --to pool:bench` on alpha, taken by one worker on each host (8 slots each) through
/// `af:pool:bench`, until alpha has every result on `tasks.results` (beta's mirrored back); in
/// tasks/s, beside the bare pipelined XADDs of the same run.
fn pool(alpha: &World, beta: &World, url: &str, bare: f64) {
    let n = common::count("AF_BENCH_POOL_TASKS", 500);
    for (w, host) in [(alpha, "alpha"), (beta, "beta")] {
        let config = format!(r#"{{"id":"p-{host}","type":"worker","projectId":"bench","maxConcurrentTasks":8}}"#);
        run(on(w, host, url, "af-spawn").args(["create", "--start"]), &config);
    }
    run(on(alpha, "alpha", url, "af-bus").args(["subscribe", "pool-results", "--topic", "tasks.results"]), "");
    let results = Address::Sub("pool-results".into()).queue(&Spool::open(&alpha.home).expect("spool"));
    let input: String = (0..n).map(|_| "{\"command\":[\"true\"]}\n").collect();
    let t = Instant::now();
    run(on(alpha, "alpha", url, "af-bus").args(["send", "--batch", "--kind", "task", "--to", "pool:bench"]), &input);
    while results.stats().map(|s| s.depth).unwrap_or(0) < n {
        assert!(t.elapsed() < Duration::from_secs(600), "the pool's results did not all come");
        std::thread::sleep(Duration::from_millis(5));
    }
    row(Row {
        what: "pool tasks through two hosts, results back on alpha",
        value: n as f64 / t.elapsed().as_secs_f64(),
        unit: "tasks/s",
        baseline: Some(("bare pipelined XADD", bare)),
        higher_is_better: true,
        target: "-",
    });
}

/// A command of one host: its spool, tmux server, name and Redis.
fn on(w: &World, host: &str, url: &str, program: &str) -> Command {
    let mut c = w.cmd(program);
    c.env("AF_HOST", host).env("AF_REDIS_URL", url);
    c
}

/// Waits until `inbox` holds `n` messages, looking when a delivery wakes its listeners (as a
/// worker waits; a poll of the whole queue's figures every few ms took a share of the two cores
/// from the bridges it measures).
fn wait_for_depth(inbox: &af_spool::queue::Queue, woken: &mut af_spool::fifodir::Listener, n: usize, t: Instant) {
    while inbox.entries("new").map_or(0, |e| e.len()) < n {
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "the batch did not arrive: {} of {n}",
            inbox.entries("new").map_or(0, |e| e.len())
        );
        let _ = woken.wait(Duration::from_millis(100));
    }
}

/// Runs a command with `input` on its stdin; it must succeed.
fn run(c: &mut Command, input: &str) {
    use std::io::Write;
    let mut child = c.stdin(Stdio::piped()).spawn().expect("running a program");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing its input");
    assert!(child.wait().expect("waiting").success(), "{c:?} failed");
}

/// Starts a redis-server on a free loopback port (AOF on, every write fsynced), its data in `w`;
/// its URL and process, None without redis-server.
fn redis_server(w: &World) -> Option<(String, Child)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let dir = w.path("redis");
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .args(["--appendfsync", "always", "--dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    common::kill_with_worlds(child.id());
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str()).ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get_connection().is_err() {
        assert!(Instant::now() < deadline, "redis-server did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((url, child))
}

/// A bare round trip, one call each: XADD a request to one stream; a thread reading it through a
/// consumer group (XREADGROUP BLOCK) XACKs it and XADDs the answer to another, which this side
/// reads the same way.
fn bare_round_trips(url: &str) -> impl FnMut() -> Duration {
    let client = redis::Client::open(url).expect("url");
    let mut c = client.get_connection().expect("connection");
    for s in ["bare:req", "bare:ans"] {
        let _: redis::RedisResult<()> =
            redis::cmd("XGROUP").arg("CREATE").arg(s).arg("g").arg("$").arg("MKSTREAM").query(&mut c);
    }
    let mut server = client.get_connection().expect("connection");
    std::thread::spawn(move || {
        loop {
            let Some(id) = read_one(&mut server, "bare:req") else { return };
            let _: redis::RedisResult<()> = redis::cmd("XACK").arg("bare:req").arg("g").arg(&id).query(&mut server);
            let _: redis::RedisResult<String> =
                redis::cmd("XADD").arg("bare:ans").arg("*").arg("m").arg("a").query(&mut server);
        }
    });
    move || {
        let t = Instant::now();
        let _: String = redis::cmd("XADD").arg("bare:req").arg("*").arg("m").arg("q").query(&mut c).expect("XADD");
        let id = read_one(&mut c, "bare:ans").expect("an answer");
        let _: redis::RedisResult<()> = redis::cmd("XACK").arg("bare:ans").arg("g").arg(&id).query(&mut c);
        t.elapsed()
    }
}

/// The id of the next entry of `stream` for the group `g`, waiting up to 10 s.
fn read_one(c: &mut redis::Connection, stream: &str) -> Option<String> {
    let r: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "g", "c", "COUNT", "1", "BLOCK", "10000", "STREAMS", stream, ">"][..])
        .query(c)
        .ok()?;
    r?.keys.into_iter().flat_map(|k| k.ids).next().map(|e| e.id)
}

/// Entries per second added in pipelines of 256, as the bridge adds them.
fn bare_xadds(url: &str, n: usize) -> f64 {
    let mut c = redis::Client::open(url).expect("url").get_connection().expect("connection");
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("XADD").arg("bare:batch").arg("*").arg("msg").arg(i.to_string()).ignore();
        }
        let _: () = p.query(&mut c).expect("XADD");
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// `af-spawn ls --cluster --json` over 3 hosts x 300 agents. The records are published straight
/// to Redis as a bridge publishes them (a real summary of beta's, 300 times under other ids, for
/// each of 3 hosts with a live heartbeat), not run as real agents; beside the bare Redis reads
/// that listing makes (SMEMBERS, then a GET of every host's agents and heartbeat).
fn ls_cluster(alpha: &World, url: &str) {
    let mut c = redis::Client::open(url).expect("url").get_connection().expect("connection");
    let one = serde_json::json!({"id": "w0", "type": "worker", "projectId": "bench", "capabilities": [], "status": "running",
        "health": "healthy", "pid": 4242, "tmuxSession": "agent-w0", "restarts": 0, "failures": 0, "costUsd": 0.0,
        "activity": null, "inputPrompt": null, "reason": null, "createdAt": "2026-11-30T12:00:00.000Z",
        "startedAt": "2026-11-30T12:00:01.000Z", "heartbeat": null});
    let hosts = ["h1", "h2", "h3"];
    for h in hosts {
        let agents: Vec<serde_json::Value> = (0..300)
            .map(|i| {
                let mut a = one.clone();
                a["id"] = format!("w{i}").into();
                a["host"] = h.into();
                a
            })
            .collect();
        let _: () = redis::pipe()
            .cmd("SADD")
            .arg("af:hosts")
            .arg(h)
            .ignore()
            .cmd("SET")
            .arg(format!("af:host:{h}:agents"))
            .arg(serde_json::to_string(&agents).expect("json"))
            .ignore()
            .cmd("SET")
            .arg(format!("af:host:{h}:heartbeat"))
            .arg(1)
            .arg("PX")
            .arg(3_600_000)
            .ignore()
            .query(&mut c)
            .expect("publishing the records");
    }
    let n = 30;
    let (mut ls, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..n {
        ls.push(time(|| {
            let out = on(alpha, "alpha", url, "af-spawn").args(["ls", "--cluster", "--json"]).output().expect("ls");
            assert!(out.status.success(), "ls --cluster failed");
        }));
        bare.push(time(|| {
            let all: Vec<String> = redis::cmd("SMEMBERS").arg("af:hosts").query(&mut c).expect("SMEMBERS");
            let mut p = redis::pipe();
            for h in &all {
                p.cmd("GET").arg(format!("af:host:{h}:agents")).cmd("GET").arg(format!("af:host:{h}:heartbeat"));
            }
            let _: Vec<Option<String>> = p.query(&mut c).expect("GET");
        }));
    }
    for p in [50.0, 99.0] {
        row(Row {
            what: &format!("ls --cluster --json, 3 hosts x 300 published records (p{p})"),
            value: percentile_ms(&mut ls, p),
            unit: "ms",
            baseline: Some(("its bare Redis reads (p50)", percentile_ms(&mut bare, 50.0))),
            higher_is_better: false,
            target: "< 100 ms",
        });
    }
    for h in hosts {
        let _: redis::RedisResult<()> = redis::cmd("SREM").arg("af:hosts").arg(h).query(&mut c);
    }
}
