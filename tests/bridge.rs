//! Hosts bridged through Redis Streams: `ID@HOST` addresses, the outbox, and `af-bus bridge`
//! between two hosts on one machine (each its own spool, tmux server and AF_HOST) meeting through
//! a real redis-server on a free loopback port, killed by pid at the end.

mod util;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::{Env, wait_for};

/// A host: a test world with its own AF_HOST.
fn host(name: &str) -> Env {
    let mut env = Env::new();
    env.set_env("AF_HOST", name);
    env
}

fn stats(env: &Env, queue: &str) -> Value {
    let s = env.json("af-bus", &["stats"]);
    s["queues"].as_array().unwrap().iter().find(|q| q["queue"] == queue).cloned().unwrap_or(Value::Null)
}

#[test]
fn an_address_at_another_host_goes_to_the_outbox_and_at_this_host_stays_local() {
    let alpha = host("alpha");
    alpha.create(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string());
    // This host's own name is the same as none.
    let id = alpha.ok("af-bus", &["send", "--to", "w1@alpha", "--priority", "high", "1"]).trim().to_owned();
    assert_eq!(stats(&alpha, "w1")["depth"], 1);
    assert_eq!(stats(&alpha, "bridge:out"), Value::Null, "no outbox yet");
    // Another host's: into the outbox, addressed there, whether or not such an agent exists here.
    let far =
        alpha.ok("af-bus", &["send", "--to", "w9@beta", "--ttl", "60", "--reply-to", "w1", "2"]).trim().to_owned();
    assert_eq!(stats(&alpha, "bridge:out")["depth"], 1);
    assert_eq!(stats(&alpha, "w1")["depth"], 1);
    let out = alpha.json("af-bus", &["recv", "bridge:out"]);
    assert_eq!((out["id"].as_str(), out["to"].as_str()), (Some(far.as_str()), Some("w9@beta")));
    // Its local reply-to is named as this host's, for the other host to answer.
    assert!(out["expiresAt"].is_string() && out["replyTo"] == "w1@alpha", "{out}");
    assert_ne!(id, far);
    // Pools and reply queues of other hosts too; a batch line as well.
    alpha.ok("af-bus", &["send", "--to", "pool:a@b@beta", "3"]);
    alpha.ok_in("af-bus", &["send", "--batch"], Some(r#"{"to": "w2@gamma.example.org", "payload": 4}"#));
    assert_eq!(stats(&alpha, "bridge:out")["depth"], 2);
    // Bad hosts and queues are invalid input (2), an unknown local one is not found (3).
    for bad in ["w1@-x", "w1@", "@beta", "w1@a/b", "a.b@beta", "reply:x@beta"] {
        alpha.fails("af-bus", &["send", "--to", bad, "1"], None, 2);
    }
    alpha.fails("af-bus", &["send", "--to", "nobody@alpha", "1"], None, 3);
    alpha.fails("af-bus", &["request", "--to", "w1@-x", "--timeout", "1", "1"], None, 2);
    let mut bad_host = Env::new();
    bad_host.set_env("AF_HOST", "no/slash");
    bad_host.fails("af-bus", &["send", "--to", "w1@beta", "1"], None, 2);
}

/// A redis-server of this test's own on a free loopback port, its data (AOF, every write
/// fsynced) in a directory of its own; killed by pid when dropped.
struct Redis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts one; None (the test skips, visibly) without redis-server.
    fn start(dir: std::path::PathBuf) -> Option<Redis> {
        if !util::have_tool("redis-server", "apt-get install redis-server") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis { port, dir, child: None };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        wait_for("redis-server to answer", Duration::from_secs(10), || self.query(&["PING"]).is_some());
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("redis runs").id() as i32)
    }

    /// Kills it (SIGKILL) and starts it again on the same port and data.
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
    }

    /// One command in RESP; the first line of its reply (None when Redis does not answer).
    fn query(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }

    /// An integer reply.
    fn int(&self, args: &[&str]) -> i64 {
        let r = self.query(args).unwrap_or_default();
        r.strip_prefix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{args:?}: {r:?}"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `af-bus bridge` of one host; killed (SIGKILL) when dropped.
struct Bridge {
    child: Child,
}

impl Bridge {
    fn start(env: &Env, redis: &Redis) -> Bridge {
        Bridge::start_with(env, redis, &[])
    }

    fn start_with(env: &Env, redis: &Redis, args: &[&str]) -> Bridge {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(env.path("bridge.err")).unwrap();
        let child = env
            .cmd("af-bus")
            .arg("bridge")
            .args(args)
            .env("AF_REDIS_URL", redis.url())
            .env("AF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting af-bus bridge");
        Bridge { child }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// SIGTERM: it must end by itself with 0.
    fn stop(mut self) {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "af-bus bridge after SIGTERM");
                return;
            }
            assert!(Instant::now() < deadline, "af-bus bridge did not end after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn depth(env: &Env, queue: &str) -> u64 {
    let s = stats(env, queue);
    s["depth"].as_u64().unwrap_or(0) + s["inFlight"].as_u64().unwrap_or(0)
}

/// Takes every message of `queue` on `env` (acked), until `want` arrived; returns their payloads
/// in arrival order. Then, once nothing is left anywhere on the way (alpha's outbox, beta's
/// stream), checks that nothing more comes.
fn drain(alpha: &Env, env: &Env, redis: &Redis, queue: &str, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while got.len() < want {
        assert!(Instant::now() < deadline, "only {} of {want} arrived", got.len());
        got.extend(take(env, queue));
    }
    wait_for("the outbox and the stream to empty", Duration::from_secs(60), || {
        depth(alpha, "bridge:out") == 0 && redis.int(&["XLEN", "af:host:beta:in"]) == 0
    });
    got.extend(take(env, queue));
    got
}

fn take(env: &Env, queue: &str) -> Vec<Value> {
    let out = env.run("af-bus", &["recv", queue, "--json", "--ack", "-n", "1000", "--wait", "--timeout", "0.5"], None);
    match out.status.code() {
        Some(0) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["payload"].clone())
            .collect(),
        Some(5) => Vec::new(),
        _ => panic!("recv: {}", util::describe(&out)),
    }
}

/// Every one of 1..=n exactly once.
#[track_caller]
fn exactly_once(got: &[Value], n: u64) {
    let mut seen: Vec<u64> = got.iter().map(|v| v.as_u64().expect("a number")).collect();
    seen.sort_unstable();
    let want: Vec<u64> = (1..=n).collect();
    if seen != want {
        let dups = seen.windows(2).filter(|w| w[0] == w[1]).count();
        let lost = want.iter().filter(|w| seen.binary_search(w).is_err()).count();
        panic!("{} messages arrived of {n}: {dups} twice, {lost} lost", seen.len());
    }
}

/// Waits for one message on `queue` and takes it.
#[track_caller]
fn recv_one(env: &Env, queue: &str) -> Value {
    let out = env.run("af-bus", &["recv", queue, "--json", "--wait", "--timeout", "30"], None);
    assert!(out.status.success(), "nothing on {queue}: {}", util::describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn batch(n: u64) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// Two hosts, alpha and beta, each with its own spool and tmux server, and one Redis.
fn two_hosts() -> Option<(Env, Env, Redis)> {
    let alpha = host("alpha");
    let beta = host("beta");
    let redis = Redis::start(alpha.path("redis"))?;
    beta.create(&json!({"id": "box", "type": "worker", "projectId": "p"}).to_string());
    Some((alpha, beta, redis))
}

#[test]
fn a_request_to_a_worker_on_another_host_is_answered_on_this_one() {
    let Some((alpha, beta, redis)) = two_hosts() else { return };
    alpha.create(&json!({"id": "asker", "type": "worker", "projectId": "p"}).to_string());
    beta.ok_in(
        "af-spawn",
        &["create", "--start"],
        Some(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string()),
    );
    let (a, b) = (Bridge::start(&alpha, &redis), Bridge::start(&beta, &redis));
    let answer =
        alpha.json("af-bus", &["request", "--to", "w1@beta", "--timeout", "60", r#"{"command": ["echo", "7"]}"#]);
    assert_eq!((answer["kind"].as_str(), answer["from"].as_str()), (Some("response"), Some("w1")), "{answer}");
    assert_eq!(
        (answer["payload"]["ok"].as_bool(), answer["payload"]["stdout"].as_i64()),
        (Some(true), Some(7)),
        "{answer}"
    );
    // Priority, ttl, attempts, reply-to and correlation id survive the trip; a local reply-to
    // is named as this host's, and a reply on beta comes back to alpha's queue.
    let sent = alpha.json(
        "af-bus",
        &["send", "--to", "box@beta", "--priority", "critical", "--ttl", "600", "--reply-to", "asker", "42"],
    );
    let got = recv_one(&beta, "box");
    for field in ["id", "from", "kind", "priority", "expiresAt", "createdAt", "attempts", "payload"] {
        assert_eq!(got[field], sent[field], "{field}: {got} / {sent}");
    }
    assert_eq!((got["to"].as_str(), got["replyTo"].as_str()), (Some("box@beta"), Some("asker@alpha")), "{got}");
    beta.ok("af-bus", &["reply", got["id"].as_str().unwrap(), r#""pong""#]);
    let answer = recv_one(&alpha, "asker");
    assert_eq!((answer["kind"].as_str(), answer["payload"].as_str()), (Some("response"), Some("pong")), "{answer}");
    assert_eq!(
        (answer["correlationId"].as_str(), answer["priority"].as_str()),
        (sent["id"].as_str(), Some("critical"))
    );
    // A stop it was asked for ends the bridge with 0.
    a.stop();
    b.stop();
}

#[test]
fn bridges_killed_mid_batch_deliver_every_message_exactly_once() {
    let Some((alpha, beta, redis)) = two_hosts() else { return };
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "box@beta"], Some(&batch(500)));
    // Alpha's bridge killed while it adds the batch to Redis, beta's while it delivers it.
    let a = Bridge::start(&alpha, &redis);
    wait_for("entries in beta's stream", Duration::from_secs(30), || redis.int(&["XLEN", "af:host:beta:in"]) > 0);
    kill(a.pid(), Signal::SIGKILL).unwrap();
    let b = Bridge::start(&beta, &redis);
    wait_for("deliveries on beta", Duration::from_secs(30), || depth(&beta, "box") > 0);
    kill(b.pid(), Signal::SIGKILL).unwrap();
    drop((a, b));
    let _bridges = (Bridge::start(&alpha, &redis), Bridge::start(&beta, &redis));
    exactly_once(&drain(&alpha, &beta, &redis, "box", 500), 500);
    assert_eq!(
        stats(&beta, "bridge:in")["dead"].as_u64().unwrap_or(0),
        0,
        "nothing refused: {}",
        beta.ok("af-bus", &["dead", "bridge:in", "--json"])
    );
}

#[test]
fn a_restarted_redis_loses_nothing() {
    let Some((alpha, beta, mut redis)) = two_hosts() else { return };
    let _bridges = (Bridge::start(&alpha, &redis), Bridge::start(&beta, &redis));
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "box@beta"], Some(&batch(200)));
    wait_for("some deliveries on beta", Duration::from_secs(30), || depth(&beta, "box") > 0);
    redis.restart();
    let more: String = (201..=400).map(|i| format!("{i}\n")).collect();
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "box@beta"], Some(&more));
    exactly_once(&drain(&alpha, &beta, &redis, "box", 400), 400);
}

#[test]
fn while_redis_is_stopped_the_outbox_grows_and_then_drains() {
    let Some((alpha, beta, redis)) = two_hosts() else { return };
    let _bridges = (Bridge::start(&alpha, &redis), Bridge::start(&beta, &redis));
    // Both bridges are connected once a message made the trip.
    alpha.ok("af-bus", &["send", "--to", "box@beta", "1"]);
    wait_for("the first message on beta", Duration::from_secs(30), || depth(&beta, "box") == 1);
    kill(redis.pid(), Signal::SIGSTOP).unwrap();
    let rest: String = (2..=300).map(|i| format!("{i}\n")).collect();
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "box@beta"], Some(&rest));
    // The bridge claims and gives back batches while its Redis calls fail (each message is
    // counted once all the same): the outbox is looked at until all are there.
    wait_for("the outbox to hold them while Redis is away", Duration::from_secs(30), || {
        depth(&alpha, "bridge:out") == 299
    });
    let log = alpha.path("bridge.err");
    wait_for("the bridge to say Redis is away", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("redis unreachable"))
    });
    wait_for("them still there", Duration::from_secs(30), || depth(&alpha, "bridge:out") == 299);
    kill(redis.pid(), Signal::SIGCONT).unwrap();
    exactly_once(&drain(&alpha, &beta, &redis, "box", 300), 300);
    wait_for("the bridge to say it is back", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("connected to redis again"))
    });
}

#[test]
fn bad_entries_from_the_network_go_to_the_dead_letters_with_the_reason() {
    let Some((_alpha, mut beta, redis)) = two_hosts() else { return };
    beta.set_env("AF_BUS_MAX_BYTES", "1500");
    let _bridge = Bridge::start(&beta, &redis);
    let good = json!({"id": "1-2-3", "to": "box@beta", "createdAt": "2026-11-30T12:00:00.000Z", "payload": 1});
    let cases = [
        ("not json", "invalid"),
        (
            &*json!({"id": "1-2-4", "to": "nobody@beta", "createdAt": "2026-11-30T12:00:00.000Z"}).to_string(),
            "no-queue",
        ),
        (
            &*json!({"id": "1-2-5", "to": "box@gamma", "createdAt": "2026-11-30T12:00:00.000Z"}).to_string(),
            "wrong-host",
        ),
        (&*json!({"id": "../x", "to": "box@beta", "createdAt": "2026-11-30T12:00:00.000Z"}).to_string(), "invalid"),
        (&*"x".repeat(2000), "too-big"),
        (&*good.to_string(), ""),
    ];
    for (msg, _) in &cases {
        redis.query(&["XADD", "af:host:beta:in", "*", "msg", msg, "origin", "mallory"]).expect("XADD");
    }
    wait_for("every entry handled", Duration::from_secs(30), || redis.int(&["XLEN", "af:host:beta:in"]) == 0);
    let dead = beta.json("af-bus", &["dead", "bridge:in"]);
    let mut reasons: Vec<String> =
        dead.as_array().unwrap().iter().map(|d| d["reason"].as_str().unwrap_or("?").to_owned()).collect();
    reasons.sort();
    assert_eq!(reasons, ["invalid", "invalid", "no-queue", "too-big", "wrong-host"], "{dead}");
    assert_eq!(depth(&beta, "box"), 1, "the good one is delivered");
}

#[test]
fn one_bridge_per_spool_and_a_bad_url_is_invalid_input() {
    let mut alpha = host("alpha");
    // Nothing listens on port 1: the bridge keeps trying, holding the spool's bridge lock.
    alpha.set_env("AF_REDIS_URL", "redis://127.0.0.1:1");
    alpha.ok("af-bus", &["stats"]); // (a program logs to the spool's log/ once the spool exists)
    let mut first = alpha.cmd("af-bus");
    first.arg("bridge").stdout(Stdio::null()).stderr(Stdio::null());
    let first = Bridge { child: first.spawn().unwrap() };
    let log = alpha.home.join("log/af-bus.log");
    wait_for("the first bridge to try Redis", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("redis unreachable"))
    });
    let err = alpha.fails("af-bus", &["bridge", "--json"], None, 4);
    assert!(err.contains("another af-bus bridge"), "{err}");
    alpha.fails("af-bus", &["bridge", "--redis", "http://x"], None, 2);
    first.stop();
}

/// Every message of `queue` on `env` (acked, whole), until `want` arrived.
fn take_messages(env: &Env, queue: &str, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want {
        assert!(Instant::now() < deadline, "only {} of {want} arrived on {queue}: {got:?}", got.len());
        let out =
            env.run("af-bus", &["recv", queue, "--json", "--ack", "-n", "100", "--wait", "--timeout", "0.5"], None);
        match out.status.code() {
            Some(0) => {
                got.extend(String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()))
            }
            Some(5) => {}
            _ => panic!("recv: {}", util::describe(&out)),
        }
    }
    got
}

#[test]
fn topics_and_broadcasts_reach_every_bridged_host_once_and_never_loop() {
    let hosts = [host("alpha"), host("beta"), host("gamma")];
    let Some(redis) = Redis::start(hosts[0].path("redis")) else { return };
    for h in &hosts {
        h.ok("af-bus", &["subscribe", "news", "--topic", "news.*"]);
        h.create(&json!({"id": "box", "type": "worker", "projectId": "p"}).to_string());
    }
    let _bridges: Vec<Bridge> = hosts.iter().map(|h| Bridge::start(h, &redis)).collect();
    wait_for("every host to join", Duration::from_secs(30), || redis.int(&["SCARD", "af:hosts"]) == 3);
    let names = ["alpha", "beta", "gamma"];
    for (i, h) in hosts.iter().enumerate() {
        h.ok("af-bus", &["publish", "--topic", "news.today", &(i + 1).to_string()]);
    }
    hosts[2].ok("af-bus", &["broadcast", "--project", "p", r#""all""#]);
    hosts[1].ok("af-bus", &["publish", "--topic", "weather", r#""nobody listens""#]);
    for (h, name) in hosts.iter().zip(names) {
        let news = take_messages(h, "news", 3);
        let mut got: Vec<(u64, String)> = news
            .iter()
            .map(|m| (m["payload"].as_u64().unwrap(), m["origin"].as_str().unwrap_or("-").to_owned()))
            .collect();
        got.sort();
        let want: Vec<(u64, String)> = names.iter().enumerate().map(|(i, n)| (i as u64 + 1, n.to_string())).collect();
        assert_eq!(got, want, "on {name}: each host's event once, carrying its origin");
        let all = take_messages(h, "box", 1);
        assert_eq!((all[0]["payload"].as_str(), all[0]["origin"].as_str()), (Some("all"), Some("gamma")), "{all:?}");
    }
    // Once nothing is on its way anywhere, nothing more comes: no message went round again.
    wait_for("the outboxes and streams to empty", Duration::from_secs(60), || {
        hosts
            .iter()
            .zip(names)
            .all(|(h, n)| depth(h, "bridge:out") == 0 && redis.int(&["XLEN", &format!("af:host:{n}:in")]) == 0)
    });
    for h in &hosts {
        assert_eq!(depth(h, "news") + depth(h, "box"), 0, "nothing came twice");
        assert_eq!(stats(h, "bridge:in")["dead"].as_u64().unwrap_or(0), 0, "nothing refused");
    }
}

/// The lines of `env`'s alert log about `check`, as (level, agent).
fn alerts(env: &Env, check: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(env.home.join("alerts.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| a["check"] == check)
        .map(|a| (a["level"].as_str().unwrap_or("").to_owned(), a["agent"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// `af-spawn ls --cluster --json` on `env`: (host, id, hostReachable) of every agent, sorted.
fn cluster(env: &Env) -> Vec<(String, String, bool)> {
    let v = env.json("af-spawn", &["ls", "--cluster"]);
    let mut out: Vec<(String, String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (a["host"].as_str().unwrap().to_owned(), a["id"].as_str().unwrap().to_owned(), a["hostReachable"] == true)
        })
        .collect();
    out.sort();
    out
}

/// `GET path` from a running af-api of `env`, with its token: the status and the JSON body.
fn api_get(env: &Env, addr: &str, path: &str) -> (u16, Value) {
    let token = util::read(&env.home.join("api/token")).lines().next().unwrap_or("").trim().to_owned();
    let mut s = TcpStream::connect(addr).expect("connect to af-api");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut s, &mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

#[test]
fn every_hosts_agents_are_listed_and_a_silent_host_raises_one_alert_until_it_returns() {
    let Some((mut alpha, mut beta, redis)) = two_hosts() else { return };
    for e in [&mut alpha, &mut beta] {
        e.set_env("AF_CLUSTER_TTL", "2");
        e.set_env("AF_REDIS_URL", &redis.url());
    }
    alpha.create(&json!({"id": "a1", "type": "worker", "projectId": "p"}).to_string());
    let _a = Bridge::start(&alpha, &redis);
    let b = Bridge::start(&beta, &redis);
    let both = vec![("alpha".to_owned(), "a1".to_owned(), true), ("beta".to_owned(), "box".to_owned(), true)];
    wait_for("both hosts' agents", Duration::from_secs(30), || cluster(&alpha) == both);
    let table = alpha.ok("af-spawn", &["ls", "--cluster"]);
    assert!(table.starts_with("HOST") && table.contains("beta") && table.contains("box"), "{table}");
    // A new agent on beta shows at once (a change is published without waiting for the period).
    beta.create(&json!({"id": "box2", "type": "worker", "projectId": "q"}).to_string());
    wait_for("beta's new agent", Duration::from_secs(30), || cluster(&alpha).len() == 3);
    let only_q = alpha.json("af-spawn", &["ls", "--cluster", "--project", "q"]);
    assert_eq!(only_q.as_array().map(Vec::len), Some(1), "{only_q}");
    // af-api serves the same.
    let mut api = alpha.cmd("af-api");
    api.args(["--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut api = api.spawn().expect("af-api");
    let mut line = String::new();
    BufReader::new(api.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let (status, doc) = api_get(&alpha, &addr, "/api/cluster");
    assert_eq!(status, 200, "{doc}");
    let hosts: Vec<(&str, bool, u64)> = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["reachable"] == true, h["agents"].as_u64().unwrap()))
        .collect();
    assert_eq!(hosts, [("alpha", true, 1), ("beta", true, 2)], "{doc}");
    assert_eq!(doc["agents"].as_array().map(Vec::len), Some(3), "{doc}");
    let _ = api.kill();
    let _ = api.wait();
    // Beta goes silent: one alert on alpha, beta's agents marked unreachable (as last known).
    kill(b.pid(), Signal::SIGKILL).unwrap();
    drop(b);
    wait_for("the host.unreachable alert", Duration::from_secs(30), || !alerts(&alpha, "host.unreachable").is_empty());
    assert_eq!(alerts(&alpha, "host.unreachable"), [("critical".to_owned(), "host-beta".to_owned())]);
    wait_for("beta's agents unreachable, alpha's not", Duration::from_secs(30), || {
        cluster(&alpha).iter().all(|(h, _, up)| (h == "alpha") == *up)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(alerts(&alpha, "host.unreachable").len(), 1, "raised once, not again while it stays away");
    // Beta is back: the alert closes.
    let _b = Bridge::start(&beta, &redis);
    wait_for("the recovery", Duration::from_secs(30), || alerts(&alpha, "host.unreachable").len() == 2);
    assert_eq!(alerts(&alpha, "host.unreachable")[1].0, "recovery");
    // Beta's records come with its next publication, which may follow its heartbeat.
    wait_for("every host's agents reachable", Duration::from_secs(30), || cluster(&alpha).iter().all(|(_, _, up)| *up));
}

#[test]
fn a_remote_stop_runs_only_where_the_bridge_allows_control() {
    let Some((alpha, beta, redis)) = two_hosts() else { return };
    beta.ok_in(
        "af-spawn",
        &["create", "--start"],
        Some(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string()),
    );
    let _a = Bridge::start(&alpha, &redis);
    let b = Bridge::start(&beta, &redis);
    // Refused: the caller exits 4 with a JSON error, and w1 runs on.
    let out = alpha.run("af-spawn", &["stop", "w1@beta", "--json"], None);
    assert_eq!(out.status.code(), Some(4), "{}", util::describe(&out));
    let e: Value = serde_json::from_slice(&out.stderr).unwrap_or_else(|_| panic!("{}", util::describe(&out)));
    assert_eq!(e["error"], "conflict", "{e}");
    assert!(e["message"].as_str().unwrap().contains("--allow-control"), "{e}");
    assert_eq!(beta.status("w1"), "running");
    b.stop();
    // Allowed: beta's bridge stops it and says so; the answer comes back to alpha.
    let _b = Bridge::start_with(&beta, &redis, &["--allow-control"]);
    let out = alpha.json("af-spawn", &["stop", "w1@beta", "--timeout", "5"]);
    assert_eq!((out[0]["id"].as_str(), out[0]["host"].as_str()), (Some("w1"), Some("beta")), "{out}");
    assert_eq!(out[0]["status"], "stopped", "{out}");
    assert_eq!(beta.status("w1"), "stopped");
    // An unknown agent there: not found (3), as on beta itself.
    alpha.fails("af-spawn", &["stop", "nobody@beta"], None, 3);
    // Each remote command is in beta's event log with its origin host.
    let events = std::fs::read_to_string(beta.home.join("events.log")).unwrap_or_default();
    let remote: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "control.remote")
        .collect();
    assert_eq!(remote.len(), 3, "{remote:?}");
    assert!(remote.iter().all(|e| e["detail"]["origin"] == "alpha"), "{remote:?}");
}

#[test]
fn a_host_that_leaves_is_mirrored_to_no_more_and_raises_no_alert() {
    let Some((mut alpha, mut beta, redis)) = two_hosts() else { return };
    for e in [&mut alpha, &mut beta] {
        e.set_env("AF_CLUSTER_TTL", "2");
        e.set_env("AF_REDIS_URL", &redis.url());
        e.ok("af-bus", &["subscribe", "news", "--topic", "news.*"]);
    }
    let a = Bridge::start(&alpha, &redis);
    let _b = Bridge::start(&beta, &redis);
    wait_for("both hosts to join", Duration::from_secs(30), || redis.int(&["SCARD", "af:hosts"]) == 2);
    beta.ok("af-bus", &["publish", "--topic", "news.one", "1"]);
    assert_eq!(take_messages(&alpha, "news", 1)[0]["payload"], 1, "mirrored while alpha is in the cluster");
    // Alpha's bridge dies: beta raises host.unreachable about it.
    kill(a.pid(), Signal::SIGKILL).unwrap();
    drop(a);
    wait_for("the alert about alpha", Duration::from_secs(30), || !alerts(&beta, "host.unreachable").is_empty());
    // Not while a bridge runs on the spool.
    let running = Bridge::start(&alpha, &redis);
    wait_for("alpha's bridge to rejoin", Duration::from_secs(30), || alerts(&beta, "host.unreachable").len() == 2);
    let err = alpha.fails("af-bus", &["bridge", "--leave", "--json"], None, 4);
    assert!(err.contains("stop it before leaving"), "{err}");
    kill(running.pid(), Signal::SIGKILL).unwrap();
    drop(running);
    // A copy for the other hosts waiting in alpha's outbox, and a message for beta's box.
    alpha.ok("af-bus", &["publish", "--topic", "news.two", "2"]);
    alpha.ok("af-bus", &["send", "--to", "box@beta", "3"]);
    let left = alpha.json("af-bus", &["bridge", "--leave"]);
    // What waits in alpha's stream (beta's alert events, mirrored while alpha's bridge was away).
    let inbound = redis.int(&["XLEN", "af:host:alpha:in"]);
    assert_eq!(left, json!({"host": "alpha", "outbox": 1, "dropped": 1, "inbound": inbound}), "{left}");
    assert_eq!(redis.int(&["SISMEMBER", "af:hosts", "alpha"]), 0);
    for key in ["heartbeat", "agents", "unreachable"] {
        assert_eq!(redis.int(&["EXISTS", &format!("af:host:alpha:{key}")]), 0, "{key}");
    }
    // Beta closes its alert and raises none again; its listing no longer names alpha.
    wait_for("beta to close the alert", Duration::from_secs(30), || alerts(&beta, "host.unreachable").len() == 2);
    assert_eq!(alerts(&beta, "host.unreachable")[1].0, "recovery");
    assert!(cluster(&beta).iter().all(|(h, _, _)| h == "beta"), "{:?}", cluster(&beta));
    // Beta's topics are mirrored to alpha no more.
    beta.ok("af-bus", &["publish", "--topic", "news.three", "3"]);
    wait_for("beta's outbox to drain", Duration::from_secs(30), || depth(&beta, "bridge:out") == 0);
    assert_eq!(redis.int(&["XLEN", "af:host:alpha:in"]), inbound, "nothing more mirrored to alpha");
    // Alpha's own topics stay home: nothing more in its outbox.
    alpha.ok("af-bus", &["publish", "--topic", "news.four", "4"]);
    assert_eq!(depth(&alpha, "bridge:out"), 1, "only the message for beta's box waits");
    assert_eq!(stats(&alpha, "bridge:out")["dead"], 1, "the copy for the cluster left went to the dead letters");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(alerts(&beta, "host.unreachable").len(), 2, "no alert about a host that left");
    // Joining again: the bridge sends what waited.
    let _a = Bridge::start(&alpha, &redis);
    assert_eq!(take_messages(&beta, "box", 1)[0]["payload"], 3);
    wait_for("alpha back in the cluster", Duration::from_secs(30), || {
        redis.int(&["SISMEMBER", "af:hosts", "alpha"]) == 1
    });
}
