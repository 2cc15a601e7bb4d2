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
use util::chromium::Browser;
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
    /// TLS only (rediss://), with a private CA, and a client certificate required.
    tls: bool,
}

impl Redis {
    /// Starts one; None (the test skips, visibly) without redis-server.
    fn start(dir: std::path::PathBuf) -> Option<Redis> {
        if !util::have_tool("redis-server", "apt-get install redis-server") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis { port, dir, child: None, tls: false };
        r.spawn();
        Some(r)
    }

    /// One that speaks TLS only, with a CA made here (`dir/ca.crt`), its own certificate for
    /// 127.0.0.1, and a client certificate required (`dir/client.crt`, `dir/client.key`).
    fn start_tls(dir: std::path::PathBuf) -> Option<Redis> {
        if !util::have_tool("redis-server", "apt-get install redis-server")
            || !util::have_tool("openssl", "apt-get install openssl")
        {
            return None;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let script = r#"set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key; key server.key; key client.key
openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj /CN=af-test-ca
openssl req -new -key server.key -out server.csr -subj /CN=localhost
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
openssl req -new -key client.key -out client.csr -subj /CN=af-test-client
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext 2>/dev/null
"#;
        let made = Command::new("sh").arg("-c").arg(script).current_dir(&dir).output().unwrap();
        assert!(made.status.success(), "making the certificates: {}", util::describe(&made));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = Redis { port, dir, child: None, tls: true };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let mut c = Command::new("redis-server");
        let port = self.port.to_string();
        if self.tls {
            c.args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "yes"]);
            for (flag, file) in
                [("--tls-cert-file", "server.crt"), ("--tls-key-file", "server.key"), ("--tls-ca-cert-file", "ca.crt")]
            {
                c.arg(flag).arg(self.dir.join(file));
            }
        } else {
            c.args(["--port", &port]);
        }
        let child = c
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        wait_for("redis-server to answer", Duration::from_secs(10), || match self.tls {
            true => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            false => self.query(&["PING"]).is_some(),
        });
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
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
        let mut b = Bridge { child };
        // Bridged once it holds its lock: from then on pool tasks and topic events of this spool
        // go through its outbox (a batch sent before would stay local, as on an unbridged spool).
        let lock = env.home.join("bridge/lock");
        wait_for("the bridge to take its lock", Duration::from_secs(10), || {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("af-bus bridge ended with {status}: {}", util::read(&env.path("bridge.err")));
            }
            lock.exists()
        });
        b
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
    // 3,000: twelve bundles of the outbox (256 messages a file), so that the kill can come between
    // two of them, or between a bundle's XADDs and its ack (sent again, a second copy in Redis).
    let n = 3000;
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "box@beta"], Some(&batch(n)));
    // Alpha's bridge killed while it adds the batch to Redis, beta's while it delivers it.
    let a = Bridge::start(&alpha, &redis);
    wait_for("entries in beta's stream", Duration::from_secs(30), || redis.int(&["XLEN", "af:host:beta:in"]) > 0);
    kill(a.pid(), Signal::SIGKILL).unwrap();
    eprintln!("alpha's bridge killed with {} of {n} in its outbox", depth(&alpha, "bridge:out"));
    let b = Bridge::start(&beta, &redis);
    wait_for("deliveries on beta", Duration::from_secs(30), || depth(&beta, "box") > 0);
    kill(b.pid(), Signal::SIGKILL).unwrap();
    drop((a, b));
    let _bridges = (Bridge::start(&alpha, &redis), Bridge::start(&beta, &redis));
    exactly_once(&drain(&alpha, &beta, &redis, "box", n as usize), n);
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
    let stopped = Instant::now();
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
    // Redis stays away for 30 s, while more is sent one message at a time.
    for i in 301..=310 {
        alpha.ok("af-bus", &["send", "--to", "box@beta", &i.to_string()]);
        std::thread::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed()) / (311 - i));
    }
    assert_eq!(depth(&alpha, "bridge:out"), 309, "all still in the outbox after {:?}", stopped.elapsed());
    kill(redis.pid(), Signal::SIGCONT).unwrap();
    exactly_once(&drain(&alpha, &beta, &redis, "box", 310), 310);
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

/// An af-api of `env` on a free loopback port: the child (to kill) and its address.
fn start_api(env: &Env) -> (Child, String) {
    let mut api = env.cmd("af-api");
    api.args(["--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut api = api.spawn().expect("af-api");
    let mut line = String::new();
    BufReader::new(api.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().trim_start_matches("http://").split('/').next().unwrap().to_owned();
    (api, addr)
}

/// `GET path` from a running af-api of `env`, with its token: the status and the JSON body.
fn api_get(env: &Env, addr: &str, path: &str) -> (u16, Value) {
    let (status, body) = api_text(env, addr, path);
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

/// `GET path` from a running af-api of `env`, with its token: the status and the body.
fn api_text(env: &Env, addr: &str, path: &str) -> (u16, String) {
    let token = util::read(&env.home.join("api/token")).lines().next().unwrap_or("").trim().to_owned();
    let mut s = TcpStream::connect(addr).expect("connect to af-api");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut s, &mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
    (status, body.to_owned())
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
    // One agent of another host, as its bridge published it; an unknown one or host: not found.
    let shown = alpha.json("af-spawn", &["show", "box2@beta"]);
    assert_eq!(
        (shown["id"].as_str(), shown["host"].as_str(), shown["projectId"].as_str()),
        (Some("box2"), Some("beta"), Some("q"))
    );
    assert!(alpha.ok("af-spawn", &["show", "box2@beta"]).lines().any(|l| l == format!("{:<15}beta", "host:")));
    alpha.fails("af-spawn", &["show", "nobody@beta"], None, 3);
    alpha.fails("af-spawn", &["show", "box2@gamma"], None, 3);
    // af-api serves the same.
    let (mut api, addr) = start_api(&alpha);
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
    // The agent list: every host's with cluster=1, one host's with host=H (filters combine).
    let listed = |path: &str| -> Vec<(String, String)> {
        let (status, doc) = api_get(&alpha, &addr, path);
        assert_eq!(status, 200, "{path}: {doc}");
        assert_eq!(doc["count"].as_u64(), doc["agents"].as_array().map(|a| a.len() as u64), "{doc}");
        let mut got: Vec<(String, String)> = doc["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["host"].as_str().unwrap_or("-").to_owned(), a["id"].as_str().unwrap().to_owned()))
            .collect();
        got.sort();
        got
    };
    let pair = |h: &str, id: &str| (h.to_owned(), id.to_owned());
    assert_eq!(listed("/api/agents?cluster=1"), [pair("alpha", "a1"), pair("beta", "box"), pair("beta", "box2")]);
    assert_eq!(listed("/api/agents?cluster=1&host=beta"), [pair("beta", "box"), pair("beta", "box2")]);
    assert_eq!(listed("/api/agents?cluster=true&host=beta&project=q"), [pair("beta", "box2")]);
    assert_eq!(listed("/api/agents?cluster=1&host=gamma"), []);
    // Without cluster, the list is this host's own: another host's name lists none.
    assert_eq!(listed("/api/agents?host=alpha"), [pair("-", "a1")]);
    assert_eq!(listed("/api/agents?host=beta"), []);
    let (status, doc) = api_get(&alpha, &addr, "/api/agents?cluster=1&host=no%20such");
    assert_eq!((status, doc["error"].as_str()), (400, Some("bad_request")), "{doc}");
    // The dashboard, all hosts: grouped by host, this host first with its live cards.
    if util::have_tool("chromium", "Debian: apt-get install chromium") {
        let token = util::read(&alpha.home.join("api/token")).lines().next().unwrap_or("").trim().to_owned();
        let mut page = Browser::open(&alpha.path("chromium-profile"), &format!("http://{addr}/#token={token}"));
        page.wait_until("the host switch", "document.getElementById('cluster-box').hidden", json!(false));
        page.wait_until("alpha's own grid", "document.getElementById('shown').textContent", json!("1 of 1"));
        assert_eq!(page.eval("window.af.groups"), Value::Null, "one host's grid has no groups");
        page.eval("document.getElementById('f-cluster').click(); true");
        let groups = json!([{"host": "alpha", "ids": ["a1"]}, {"host": "beta", "ids": ["box", "box2"]}]);
        page.wait_until("the agents grouped by host", "window.af.groups", groups);
        assert_eq!(
            page.eval(
                "[...document.querySelectorAll('#grid .hostgroup')].map(g => g.dataset.host + ':' + g.dataset.count)"
            ),
            json!(["alpha:1", "beta:2"])
        );
        // beta's cards follow beta's header and have no controls here; alpha's has its own.
        assert_eq!(
            page.eval(
                "[...document.querySelectorAll('#grid .card.remote')].map(c => c.dataset.host + '/' + c.dataset.agent)"
            ),
            json!(["beta/box", "beta/box2"])
        );
        assert_eq!(page.eval("!!document.querySelector('.card.remote button')"), json!(false));
        assert_eq!(
            page.eval("!!document.querySelector('.card:not(.remote)[data-agent=\"a1\"] button[data-act=\"start\"]')"),
            json!(true)
        );
        page.wait_until("three of three", "document.getElementById('shown').textContent", json!("3 of 3"));
        // Filters apply across hosts; off again, the grid is this host's.
        page.eval("{ const p = document.getElementById('f-project'); p.value = 'q'; p.dispatchEvent(new Event('input')); true }");
        page.wait_until("project q", "window.af.groups", json!([{"host": "beta", "ids": ["box2"]}]));
        page.eval("{ const p = document.getElementById('f-project'); p.value = ''; p.dispatchEvent(new Event('input')); document.getElementById('f-cluster').click(); true }");
        page.wait_until("this host alone again", "window.af.groups", Value::Null);
        assert_eq!(page.eval("window.af.visible"), json!(["a1"]));
    }
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

/// The remote commands `env`'s bridge handled, as its event log has them (`control.remote`).
fn remote_commands(env: &Env) -> Vec<Value> {
    let events = std::fs::read_to_string(env.home.join("events.log")).unwrap_or_default();
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "control.remote")
        .collect()
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
    let remote = remote_commands(&beta);
    assert_eq!(remote.len(), 3, "{remote:?}");
    assert!(remote.iter().all(|e| e["detail"]["origin"] == "alpha"), "{remote:?}");
}

#[test]
fn checkpoints_pauses_and_alert_acks_travel_to_another_host() {
    let Some((alpha, beta, redis)) = two_hosts() else { return };
    let dir = beta.path("tree");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "first\n").unwrap();
    let w = json!({"id": "w1", "type": "worker", "projectId": "p", "workdir": dir, "command": ["sleep", "300"]});
    beta.ok_in("af-spawn", &["create", "--start"], Some(&w.to_string()));
    let bad = json!({"id": "bad", "type": "worker", "projectId": "p", "command": ["sh", "-c", "exit 1"]});
    beta.create(&bad.to_string());
    let _ = beta.run("af-spawn", &["start", "bad"], None);
    wait_for("bad failed", Duration::from_secs(10), || beta.status("bad") == "failed");
    let _ = beta.run("af-health", &["check"], None);
    let alert = beta.json("af-health", &["alerts"])[0]["id"].as_str().expect("an open alert on beta").to_owned();
    let _a = Bridge::start(&alpha, &redis);
    let b = Bridge::start(&beta, &redis);
    // Refused without --allow-control, as every remote verb is; nothing was taken.
    let out = alpha.run("af-checkpoint", &["create", "w1@beta", "--json"], None);
    assert_eq!(out.status.code(), Some(4), "{}", util::describe(&out));
    assert_eq!(beta.json("af-checkpoint", &["ls", "w1"]).as_array().map(Vec::len), Some(0));
    b.stop();
    let _b = Bridge::start_with(&beta, &redis, &["--allow-control"]);
    // A checkpoint taken from alpha is beta's, and its id comes back.
    let c = alpha.json("af-checkpoint", &["create", "w1@beta", "-m", "from alpha"]);
    assert_eq!((c["host"].as_str(), c["description"].as_str()), (Some("beta"), Some("from alpha")), "{c}");
    let ckpt = c["id"].as_str().unwrap().to_owned();
    assert_eq!(beta.json("af-checkpoint", &["ls", "w1"])[0]["id"], ckpt.as_str());
    // Rolled back from alpha: beta's tree is as it was, and w1 runs again.
    std::fs::write(dir.join("a.txt"), "changed\n").unwrap();
    std::fs::write(dir.join("b.txt"), "added\n").unwrap();
    let text = alpha.ok("af-checkpoint", &["rollback", "w1@beta", &ckpt]);
    assert_eq!(text.trim(), format!("w1@beta rolled back to {ckpt}, started again"));
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "first\n");
    assert!(!dir.join("b.txt").exists());
    assert_eq!(beta.status("w1"), "running");
    // Paused and resumed from alpha.
    assert_eq!(alpha.ok("af-spawn", &["pause", "w1@beta"]).trim(), "w1@beta paused");
    assert_eq!(beta.status("w1"), "paused");
    assert_eq!(alpha.json("af-spawn", &["resume", "w1@beta"])[0]["status"], "running");
    // beta's alert acknowledged from alpha; an unknown one is not found there (3), as on beta.
    assert_eq!(alpha.ok("af-health", &["ack", &format!("{alert}@beta")]).trim(), format!("{alert}@beta acknowledged"));
    assert_eq!(beta.json("af-health", &["alerts"])[0]["acknowledged"], true);
    alpha.fails("af-health", &["ack", "al-0-00000000@beta"], None, 3);
    // A rollback to a checkpoint beta lacks: not found, with beta's words.
    alpha.fails("af-checkpoint", &["rollback", "w1@beta", "nope"], None, 3);
    let verbs: Vec<String> = remote_commands(&beta)
        .iter()
        .filter(|e| e["detail"]["origin"] == "alpha")
        .map(|e| e["detail"]["verb"].as_str().unwrap_or_default().to_owned())
        .collect();
    for v in ["checkpoint.create", "checkpoint.rollback", "pause", "resume", "health.ack"] {
        assert!(verbs.iter().any(|x| x == v), "{v} in beta's event log: {verbs:?}");
    }
}

#[test]
fn hosts_meet_through_redis_over_tls_with_a_private_ca_and_client_certificates() {
    let (mut alpha, mut beta) = (host("alpha"), host("beta"));
    let Some(redis) = Redis::start_tls(alpha.path("redis")) else { return };
    for e in [&mut alpha, &mut beta] {
        e.set_env("AF_REDIS_URL", &redis.url());
        e.set_env("AF_REDIS_CA", &redis.dir.join("ca.crt").display().to_string());
        e.set_env("AF_REDIS_CERT", &redis.dir.join("client.crt").display().to_string());
        e.set_env("AF_REDIS_KEY", &redis.dir.join("client.key").display().to_string());
    }
    beta.ok_in(
        "af-spawn",
        &["create", "--start"],
        Some(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string()),
    );
    let _a = Bridge::start(&alpha, &redis);
    let _b = Bridge::start(&beta, &redis);
    let answer = alpha
        .json("af-bus", &["request", "--to", "w1@beta", "--timeout", "30", r#"{"command": ["echo", "over tls"]}"#]);
    let answer = &answer["payload"];
    assert_eq!((answer["ok"].as_bool(), answer["stdout"].as_str()), (Some(true), Some("over tls")), "{answer}");
    let listed = vec![("beta".to_owned(), "w1".to_owned(), true)];
    wait_for("beta's agent listed on alpha", Duration::from_secs(30), || cluster(&alpha) == listed);
    // Without the private CA the server's certificate is not trusted: one line, exit 111.
    let mut c = alpha.cmd("af-spawn");
    let out = c.args(["ls", "--cluster"]).env_remove("AF_REDIS_CA").output().unwrap();
    assert_eq!(out.status.code(), Some(111), "{}", util::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate") && err.lines().count() == 1, "{err}");
    // Without a client certificate the server refuses; half of one is invalid input (2).
    let out = alpha
        .cmd("af-spawn")
        .args(["ls", "--cluster"])
        .env_remove("AF_REDIS_CERT")
        .env_remove("AF_REDIS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(111), "{}", util::describe(&out));
    let out = alpha.cmd("af-spawn").args(["ls", "--cluster"]).env_remove("AF_REDIS_KEY").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
}

/// A task that waits until `n` tasks of the same barrier run at once (each leaves a file in `dir`),
/// so that `n` of them can only finish when `n` workers took one each.
fn barrier_task(dir: &std::path::Path, n: usize) -> String {
    let script = format!("touch \"$0/$AF_TASK_ID\"; while [ $(ls \"$0\" | wc -l) -lt {n} ]; do sleep 0.05; done");
    json!({"command": ["sh", "-c", script, dir], "timeout": "120s"}).to_string()
}

/// Makes `worker` of `env` busy with a task of its inbox until a file `release` appears in the
/// directory returned; returns once the task runs.
fn hold_worker(env: &Env, worker: &str) -> std::path::PathBuf {
    let hold = env.path(&format!("hold-{worker}"));
    std::fs::create_dir_all(&hold).unwrap();
    let script = "touch \"$0/started\"; while [ ! -e \"$0/release\" ]; do sleep 0.05; done";
    let busy = json!({"command": ["sh", "-c", script, &hold], "timeout": "120s"}).to_string();
    env.ok("af-bus", &["send", "--to", worker, "--kind", "task", &busy]);
    wait_for("the worker to be busy", Duration::from_secs(30), || hold.join("started").exists());
    hold
}

/// The `from` of each response in `got`, sorted; every one says ok.
#[track_caller]
fn answered_by(got: &[Value]) -> Vec<String> {
    let mut from: Vec<String> = got
        .iter()
        .map(|m| {
            assert_eq!((m["kind"].as_str(), m["payload"]["ok"].as_bool()), (Some("response"), Some(true)), "{m}");
            m["from"].as_str().unwrap().to_owned()
        })
        .collect();
    from.sort();
    from
}

#[test]
fn a_pool_is_taken_by_idle_workers_of_every_host_and_a_busy_host_takes_none() {
    let hosts = [host("alpha"), host("beta"), host("gamma")];
    let names = ["alpha", "beta", "gamma"];
    let Some(redis) = Redis::start(hosts[0].path("redis")) else { return };
    for (h, name) in hosts.iter().zip(names) {
        let w = json!({"id": format!("w-{name}"), "type": "worker", "projectId": "web", "maxConcurrentTasks": 1});
        h.ok_in("af-spawn", &["create", "--start"], Some(&w.to_string()));
    }
    let alpha = &hosts[0];
    alpha.create(&json!({"id": "box", "type": "worker", "projectId": "p"}).to_string());
    alpha.ok("af-bus", &["subscribe", "results", "--topic", "tasks.results"]);
    let _bridges: Vec<Bridge> = hosts.iter().map(|h| Bridge::start(h, &redis)).collect();
    wait_for("every host to join", Duration::from_secs(30), || redis.int(&["SCARD", "af:hosts"]) == 3);
    // Three tasks that can only finish together, each worker has one slot: one per host.
    let three = alpha.path("barrier3");
    std::fs::create_dir_all(&three).unwrap();
    let lines: String = (0..3).map(|_| barrier_task(&three, 3) + "\n").collect();
    alpha.ok_in(
        "af-bus",
        &["send", "--batch", "--to", "pool:web", "--kind", "task", "--reply-to", "box"],
        Some(&lines),
    );
    // The answers come to the reply-to queue on alpha, the results on tasks.results there.
    assert_eq!(answered_by(&take_messages(alpha, "box", 3)), ["w-alpha", "w-beta", "w-gamma"]);
    let mut results: Vec<String> =
        take_messages(alpha, "results", 3).iter().map(|m| m["payload"]["agent"].as_str().unwrap().to_owned()).collect();
    results.sort();
    assert_eq!(results, ["w-alpha", "w-beta", "w-gamma"]);
    // Alpha's worker busy with a task of its inbox: alpha's bridge takes no task of the pool, so
    // two more (sent on beta, answered on alpha) go to beta and gamma.
    let hold = hold_worker(alpha, "w-alpha");
    let two = alpha.path("barrier2");
    std::fs::create_dir_all(&two).unwrap();
    let lines: String = (0..2).map(|_| barrier_task(&two, 2) + "\n").collect();
    hosts[1].ok_in(
        "af-bus",
        &["send", "--batch", "--to", "pool:web", "--kind", "task", "--reply-to", "box@alpha"],
        Some(&lines),
    );
    assert_eq!(answered_by(&take_messages(alpha, "box", 2)), ["w-beta", "w-gamma"]);
    let pool = stats(alpha, "pool:web");
    assert_eq!(
        (pool["depth"].as_u64(), pool["inFlight"].as_u64(), pool["acked"].as_u64()),
        (Some(0), Some(0), Some(1))
    );
    std::fs::write(hold.join("release"), "").unwrap();
    for (h, name) in hosts.iter().zip(names) {
        assert_eq!(stats(h, "bridge:in")["dead"].as_u64().unwrap_or(0), 0, "nothing refused on {name}");
    }
}

#[test]
fn a_killed_bridge_loses_no_pool_task_and_runs_none_twice_and_a_gone_hosts_tasks_are_taken_over() {
    let Some((alpha, mut beta, redis)) = two_hosts() else { return };
    beta.set_env("AF_POOL_RECLAIM", "1");
    let w = json!({"id": "w1", "type": "worker", "projectId": "web", "maxConcurrentTasks": 8});
    beta.ok_in("af-spawn", &["create", "--start"], Some(&w.to_string()));
    beta.ok("af-bus", &["subscribe", "results", "--topic", "tasks.results"]);
    let a = Bridge::start(&alpha, &redis);
    let n = 100;
    let tasks: String = (0..n).map(|_| "{\"command\": [\"true\"]}\n").collect();
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "pool:web", "--kind", "task"], Some(&tasks));
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.int(&["XLEN", "af:pool:web"]) < n as i64 {
        assert!(
            Instant::now() < deadline,
            "the tasks in the pool's stream: {} of {n} (lanes {:?}); alpha's outbox {}, pool {}; XINFO {:?}; alpha's bridge said:\n{}",
            redis.int(&["XLEN", "af:pool:web"]),
            ["af:pool-critical:web", "af:pool-high:web", "af:pool-low:web"].map(|k| redis.int(&["XLEN", k])),
            stats(&alpha, "bridge:out"),
            stats(&alpha, "pool:web"),
            {
                let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
                redis::cmd("XINFO").arg("STREAM").arg("af:pool:web").query::<redis::Value>(&mut c)
            },
            util::read(&alpha.path("bridge.err"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The outbox is at least once into Redis: an XADD pipeline whose reply came too late (a
    // loaded machine, appendfsync always) is sent again. Nothing may be lost; a second copy of a
    // message is left to the delivery's dedup, but goes here, so that the take-over below counts
    // exactly the entries the ghost holds.
    let copies = remove_second_copies(&redis, "af:pool:web");
    assert_eq!(redis.int(&["XLEN", "af:pool:web"]), n as i64, "every task in the stream ({copies} second copies)");
    // Five read by a host that is gone since (ghost), five by beta's bridge before it was killed.
    redis.query(&["XGROUP", "CREATE", "af:pool:web", "af-bridge", "0", "MKSTREAM"]).expect("XGROUP");
    for consumer in ["ghost", "beta"] {
        redis.query(&["XREADGROUP", "GROUP", "af-bridge", consumer, "COUNT", "5", "STREAMS", "af:pool:web", ">"]);
    }
    assert_eq!(redis.query(&["XPENDING", "af:pool:web", "af-bridge"]).as_deref(), Some("*4"));
    let b = Bridge::start(&beta, &redis);
    wait_for("beta's worker to take tasks", Duration::from_secs(30), || {
        stats(&beta, "pool:web")["acked"].as_u64() > Some(0)
    });
    kill(b.pid(), Signal::SIGKILL).unwrap();
    drop(b);
    let _b = Bridge::start(&beta, &redis);
    let results = take_messages(&beta, "results", n);
    wait_for("the stream and beta's pool to empty", Duration::from_secs(60), || {
        redis.int(&["XLEN", "af:pool:web"]) == 0 && depth(&beta, "pool:web") == 0
    });
    let mut ids: Vec<String> = results.iter().map(|m| m["correlationId"].as_str().unwrap().to_owned()).collect();
    let more = beta.run("af-bus", &["recv", "results", "-n", "1000"], None);
    assert_eq!(more.status.code(), Some(1), "nothing more: {}", util::describe(&more));
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), results.len()), (n, n), "every task ran once");
    assert!(results.iter().all(|m| m["payload"]["ok"] == true));
    // The ghost's five were taken over as a second attempt; the rest, beta's own, as the first.
    let history = beta.json("af-bus", &["history", "pool:web", "--limit", "1000"]);
    let mut attempts: Vec<u64> = history.as_array().unwrap().iter().map(|m| m["attempts"].as_u64().unwrap()).collect();
    attempts.sort_unstable();
    assert_eq!(attempts.len(), n);
    assert_eq!(attempts.iter().filter(|a| **a == 1).count(), 5, "{attempts:?}");
    assert_eq!(attempts.iter().filter(|a| **a == 0).count(), n - 5, "{attempts:?}");
    assert_eq!(stats(&beta, "bridge:in")["dead"].as_u64().unwrap_or(0), 0, "nothing refused");
    a.stop();
}

/// Deletes every entry of `stream` whose message (by id) an earlier entry holds already; how many.
fn remove_second_copies(redis: &Redis, stream: &str) -> usize {
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE").arg(stream).arg("-").arg("+").query(&mut c).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut again = Vec::new();
    for e in r.ids {
        let Some(redis::Value::BulkString(raw)) = e.map.get("msg") else { panic!("no msg in {e:?}") };
        let m: Value = serde_json::from_slice(raw).unwrap();
        if !seen.insert(m["id"].as_str().unwrap().to_owned()) {
            again.push(e.id);
        }
    }
    if !again.is_empty() {
        redis::cmd("XDEL").arg(stream).arg(&again).query::<()>(&mut c).unwrap();
    }
    again.len()
}

/// A task that appends `name` to the file `order` when it runs.
fn named_task(order: &std::path::Path, name: &str) -> String {
    json!({"command": ["sh", "-c", "echo \"$1\" >> \"$0\"", order, name]}).to_string()
}

/// The cluster pools' lanes of `af-bus stats --cluster --json` on `env`, by "project/lane".
fn pool_lanes(env: &Env) -> Vec<(String, Value)> {
    let doc = env.json("af-bus", &["stats", "--cluster"]);
    let lanes = doc["clusterPools"].as_array().unwrap_or_else(|| panic!("no clusterPools: {doc}"));
    lanes
        .iter()
        .map(|l| (format!("{}/{}", l["project"].as_str().unwrap(), l["lane"].as_str().unwrap()), l.clone()))
        .collect()
}

#[test]
fn a_freed_slot_takes_the_most_urgent_lane_of_the_cluster_pool_first_and_its_figures_show() {
    let Some((mut alpha, mut beta, redis)) = two_hosts() else { return };
    beta.set_env("AF_POOL_RECLAIM", "1");
    alpha.set_env("AF_REDIS_URL", &redis.url());
    let w = json!({"id": "w1", "type": "worker", "projectId": "web", "maxConcurrentTasks": 1});
    beta.ok_in("af-spawn", &["create", "--start"], Some(&w.to_string()));
    let _a = Bridge::start(&alpha, &redis);
    wait_for("alpha to join", Duration::from_secs(30), || redis.int(&["SISMEMBER", "af:hosts", "alpha"]) == 1);
    // W1's one slot is busy with a task of its inbox before beta's bridge starts: it takes
    // nothing of the pool.
    let hold = hold_worker(&beta, "w1");
    // Three normal tasks, a low one, then a critical one and a high one, each in its lane.
    let order = beta.path("order");
    let normal: String = ["n1", "n2", "n3"].iter().map(|n| named_task(&order, n) + "\n").collect();
    alpha.ok_in("af-bus", &["send", "--batch", "--to", "pool:web", "--kind", "task"], Some(&normal));
    for (name, priority) in [("l1", "low"), ("c1", "critical"), ("h1", "high")] {
        alpha.ok(
            "af-bus",
            &["send", "--to", "pool:web", "--kind", "task", "--priority", priority, &named_task(&order, name)],
        );
    }
    let lanes = [("af:pool-critical:web", 1), ("af:pool-high:web", 1), ("af:pool:web", 3), ("af:pool-low:web", 1)];
    wait_for("the tasks in their lanes", Duration::from_secs(30), || {
        lanes.iter().all(|(key, n)| redis.int(&["XLEN", *key]) >= *n)
    });
    // Second copies from a retried XADD pipeline (the outbox is at least once into Redis) go.
    for (key, n) in lanes {
        remove_second_copies(&redis, key);
        assert_eq!(redis.int(&["XLEN", key]), n, "{key}");
    }
    // A host that is gone since (ghost) read the high one and never acked it.
    redis.query(&["XGROUP", "CREATE", "af:pool-high:web", "af-bridge", "0", "MKSTREAM"]);
    redis.query(&["XREADGROUP", "GROUP", "af-bridge", "ghost", "COUNT", "1", "STREAMS", "af:pool-high:web", ">"]);
    // The figures: per lane, most urgent first, what waits, what a host holds and since when.
    let figures = pool_lanes(&alpha);
    let names: Vec<&str> = figures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["web/critical", "web/high", "web/normal", "web/low"]);
    let got: Vec<(&str, u64, u64, Value, bool)> = figures
        .iter()
        .map(|(_, l)| {
            let (w, p) = (l["waiting"].as_u64().unwrap(), l["pending"].as_u64().unwrap());
            (l["stream"].as_str().unwrap(), w, p, l["pendingBy"].clone(), l["oldestWaitingMs"].is_u64())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("af:pool-critical:web", 1, 0, json!({}), true),
            ("af:pool-high:web", 0, 1, json!({"ghost": 1}), false),
            ("af:pool:web", 3, 0, json!({}), true),
            ("af:pool-low:web", 1, 0, json!({}), true),
        ]
    );
    let table = alpha.ok("af-bus", &["stats", "--cluster"]);
    let row = |lane: &str| -> Vec<String> {
        let line = table.lines().find(|l| l.starts_with("pool:web ") && l.split_whitespace().nth(1) == Some(lane));
        line.unwrap_or_else(|| panic!("no {lane} row: {table}")).split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(row("high")[2..4], ["0", "1"]);
    assert_eq!(row("high")[4..], ["-", "ghost=1"]);
    assert_eq!(row("normal")[2..4], ["3", "0"]);
    // Af-api's /api/cluster has the same lanes.
    let (mut api, addr) = start_api(&alpha);
    let (status, doc) = api_get(&alpha, &addr, "/api/cluster");
    let (metrics_status, metrics) = api_text(&alpha, &addr, "/metrics");
    let _ = api.kill();
    let _ = api.wait();
    assert_eq!(status, 200, "{doc}");
    assert_eq!(metrics_status, 200, "{metrics}");
    for sample in [
        r#"agentflow_cluster_pool_waiting{project="web",lane="critical"} 1"#,
        r#"agentflow_cluster_pool_waiting{project="web",lane="normal"} 3"#,
        r#"agentflow_cluster_pool_waiting{project="web",lane="high"} 0"#,
        r#"agentflow_cluster_pool_pending{project="web",lane="high",host="ghost"} 1"#,
        r#"agentflow_cluster_pool_oldest_waiting_seconds{project="web",lane="high"} 0"#,
    ] {
        assert!(metrics.lines().any(|l| l == sample), "{sample} in {metrics}");
    }
    let without_age = |l: &Value| {
        let mut l = l.clone();
        l.as_object_mut().unwrap().remove("oldestWaitingMs");
        l
    };
    let served: Vec<Value> = doc["pools"].as_array().unwrap().iter().map(without_age).collect();
    assert_eq!(served, figures.iter().map(|(_, l)| without_age(l)).collect::<Vec<_>>());
    // Beta's bridge starts, its worker busy: it takes nothing yet.
    let _b = Bridge::start(&beta, &redis);
    // The slot frees: the critical task runs first, then the normal ones in their order, the low
    // one last. The ghost's high one is taken over (a further attempt) once it has been pending
    // AF_POOL_RECLAIM, whenever beta's bridge next looks for stuck entries.
    std::fs::write(hold.join("release"), "").unwrap();
    let ran =
        || -> Vec<String> { std::fs::read_to_string(&order).unwrap_or_default().lines().map(str::to_owned).collect() };
    wait_for("every task to run", Duration::from_secs(90), || ran().len() == 6);
    let ran = ran();
    assert_eq!(ran.iter().filter(|n| *n == "h1").count(), 1, "{ran:?}");
    assert_eq!(ran.iter().filter(|n| *n != "h1").collect::<Vec<_>>(), ["c1", "n1", "n2", "n3", "l1"], "{ran:?}");
    wait_for("the lanes to empty", Duration::from_secs(30), || {
        pool_lanes(&alpha).iter().all(|(_, l)| l["waiting"] == 0 && l["pending"] == 0)
    });
    assert_eq!(stats(&beta, "bridge:in")["dead"].as_u64().unwrap_or(0), 0, "nothing refused");
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
