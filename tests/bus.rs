//! af-bus and the worker task loop against a real spool, real named pipes and real af-wrap
//! supervisors in a private tmux server: every verb, the seed's four communication patterns,
//! priority order, competing receivers, redelivery, dead letters, ttl, middleware, the pool, and
//! kill -9 of senders and receivers with a checker.

mod util;

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::{Env, wait_for};

fn agent(env: &Env, id: &str, project: &str) {
    env.create(&json!({"id": id, "type": "worker", "projectId": project}).to_string());
}

fn send(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["send"];
    a.extend_from_slice(args);
    env.ok("af-bus", &a).trim().to_owned()
}

/// Receives one message as JSON; None when there is none.
fn recv(env: &Env, queue: &str, extra: &[&str]) -> Option<Value> {
    let mut a = vec!["recv", queue, "--json"];
    a.extend_from_slice(extra);
    let out = env.run("af-bus", &a, None);
    match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).expect("recv --json prints one message")),
        Some(1) => None,
        _ => panic!("recv failed: {}", util::describe(&out)),
    }
}

fn stats(env: &Env, queue: &str) -> Value {
    let s = env.json("af-bus", &["stats"]);
    s["queues"].as_array().unwrap().iter().find(|q| q["queue"] == queue).cloned().unwrap_or(Value::Null)
}

#[test]
fn send_recv_ack_history_clear_and_bad_input() {
    let env = Env::new();
    agent(&env, "w1", "p");
    let id = send(&env, &["--to", "w1", "--kind", "task", r#"{"n": 1}"#]);
    assert_eq!(stats(&env, "w1")["depth"], 1);
    let m = recv(&env, "w1", &[]).expect("a message");
    assert_eq!(m["id"], id.as_str());
    assert_eq!((m["kind"].as_str(), m["from"].as_str(), m["to"].as_str()), (Some("task"), Some("cli"), Some("w1")));
    assert_eq!(m["payload"], json!({"n": 1}));
    assert_eq!(stats(&env, "w1")["inFlight"], 1);
    env.ok("af-bus", &["ack", "w1", &id]);
    env.fails("af-bus", &["ack", "w1", &id], None, 3);
    let h = env.json("af-bus", &["history", "w1"]);
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["id"], id.as_str());
    assert!(recv(&env, "w1", &[]).is_none(), "nothing left: exit 1");
    env.fails("af-bus", &["recv", "w1", "--wait", "--timeout", "0.2"], None, 5);
    // Payload from stdin, then clear.
    env.ok_in("af-bus", &["send", "--to", "w1", "-"], Some(r#"{"from": "stdin"}"#));
    assert_eq!(env.json("af-bus", &["clear", "w1"])["removed"], 2);
    assert_eq!(stats(&env, "w1")["depth"], 0);

    // Bad input: one line, its exit code, nothing queued.
    env.fails("af-bus", &["send", "--to", "w1", "{not json"], None, 2);
    env.fails("af-bus", &["send", "--to", "w1", "--priority", "urgent", "1"], None, 2);
    env.fails("af-bus", &["send", "--to", "w1", "--kind", "shout", "1"], None, 2);
    env.fails("af-bus", &["send", "--to", "nobody", "1"], None, 3);
    env.fails("af-bus", &["send", "--to", "../x", "1"], None, 2);
    env.fails("af-bus", &["send", "1"], None, 2);
    env.fails("af-bus", &["ack", "w1", "../x"], None, 2);
    env.fails("af-bus", &["recv", "nobody"], None, 3);
    env.fails("af-bus", &["send", "--batch", "--to", "w1"], Some("1\n{oops\n3\n"), 2);
    env.fails("af-bus", &["send", "--batch"], Some(r#"{"to":"nobody","payload":1}"#), 3);
    let big = format!("\"{}\"", "x".repeat((1 << 20) + 10));
    env.fails("af-bus", &["send", "--to", "w1", "-"], Some(&big), 2);
    let mut small = Env::new();
    small.set_env("AF_BUS_MAX_BYTES", "300");
    agent(&small, "w1", "p");
    let err = small.fails("af-bus", &["send", "--to", "w1", &format!("\"{}\"", "y".repeat(400))], None, 2);
    assert!(err.contains("limit"), "{err}");
    assert_eq!(stats(&env, "w1")["depth"], 0, "nothing was queued by bad input");

    // A batch: ids in order, one a line.
    let ids = env.ok_in("af-bus", &["send", "--batch", "--to", "w1"], Some("1\n2\n3\n"));
    assert_eq!(ids.lines().count(), 3);
    let lines = env.ok_in(
        "af-bus",
        &["send", "--batch"],
        Some(r#"{"to":"w1","payload":4,"priority":"critical","kind":"task"}"#),
    );
    let first = recv(&env, "w1", &[]).unwrap();
    assert_eq!((first["id"].as_str(), first["payload"].as_i64()), (Some(lines.trim()), Some(4)));
}

#[test]
fn priority_order_then_fifo() {
    let env = Env::new();
    agent(&env, "w1", "p");
    for p in ["low", "normal", "high", "critical", "normal"] {
        send(&env, &["--to", "w1", "--priority", p, &json!(p).to_string()]);
    }
    let got: Vec<Value> = (0..5).map(|_| recv(&env, "w1", &["--ack"]).unwrap()["payload"].clone()).collect();
    assert_eq!(got, ["critical", "high", "normal", "normal", "low"].map(Value::from));
    let st = stats(&env, "w1");
    assert_eq!((st["depth"].as_u64(), st["inFlight"].as_u64(), st["acked"].as_u64()), (Some(0), Some(0), Some(5)));
}

#[test]
fn broadcast_and_topics() {
    let env = Env::new();
    agent(&env, "a1", "alpha");
    agent(&env, "a2", "alpha");
    agent(&env, "b1", "beta");
    let out = env.json("af-bus", &["broadcast", r#""all hands""#]);
    assert_eq!(out["delivered"], 3);
    env.ok("af-bus", &["broadcast", "--project", "beta", r#""beta only""#]);
    for a in ["a1", "a2"] {
        let m = recv(&env, a, &["--ack"]).unwrap();
        assert_eq!((m["kind"].as_str(), m["payload"].as_str()), (Some("broadcast"), Some("all hands")));
        assert!(recv(&env, a, &[]).is_none());
    }
    assert_eq!(env.ok("af-bus", &["recv", "b1", "-n", "5"]).lines().count(), 2);

    // Publish with no subscriber is fine.
    assert_eq!(env.json("af-bus", &["publish", "--topic", "health.a1", "{}"])["delivered"], 0);
    env.ok("af-bus", &["subscribe", "exact", "--topic", "health"]);
    env.ok("af-bus", &["subscribe", "tasks", "--topic", "tasks.*"]);
    env.ok("af-bus", &["subscribe", "everything", "--topic", "*"]);
    env.ok("af-bus", &["subscribe", "tasks", "--topic", "tasks.*"]);
    env.fails("af-bus", &["subscribe", "tasks", "--topic", "other"], None, 4);
    env.fails("af-bus", &["subscribe", "a1", "--topic", "x"], None, 4);
    env.fails("af-bus", &["subscribe", "bad", "--topic", "a b"], None, 2);
    env.ok("af-bus", &["publish", "--topic", "health", "1"]);
    env.ok("af-bus", &["publish", "--topic", "tasks.results", "2"]);
    env.ok("af-bus", &["publish", "-t", "agent.unhealthy", "3"]);
    let drain = |q: &str| -> Vec<i64> {
        let out = env.ok("af-bus", &["recv", q, "-n", "10", "--json", "--ack"]);
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["payload"].as_i64().unwrap()).collect()
    };
    assert_eq!(drain("exact"), [1]);
    assert_eq!(drain("tasks"), [2]);
    assert_eq!(drain("everything"), [1, 2, 3]);
    env.ok("af-bus", &["unsubscribe", "everything"]);
    env.fails("af-bus", &["unsubscribe", "everything"], None, 3);
    assert_eq!(env.json("af-bus", &["publish", "-t", "x", "4"])["delivered"], 0);
}

#[test]
fn tail_streams_published_messages() {
    let env = Env::new();
    let mut tail = env.cmd("af-bus");
    tail.args(["tail", "--topic", "health.*"]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = tail.spawn().unwrap();
    wait_for("tail's subscription", Duration::from_secs(5), || {
        env.json("af-bus", &["stats"])["subscriptions"].as_array().is_some_and(|s| !s.is_empty())
    });
    env.ok("af-bus", &["publish", "-t", "other", "0"]);
    env.ok("af-bus", &["publish", "-t", "health.w1", r#"{"cpu": 5}"#]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((first["topic"].as_str(), first["payload"]["cpu"].as_i64()), (Some("health.w1"), Some(5)));
    child.kill().unwrap();
    child.wait().unwrap();
    // Its subscription goes with it.
    env.ok("af-bus", &["publish", "-t", "health.w1", "1"]);
    assert_eq!(env.json("af-bus", &["stats"])["subscriptions"], json!([]));
}

/// SIGINT or SIGTERM while a verb waits ends it with exit 130 and one line, not death by the
/// signal; what it made for the wait (its pipe, a request's reply queue, a tail's subscription)
/// goes with it.
#[test]
fn a_signal_during_a_wait_exits_130() {
    use nix::sys::signal::Signal::{SIGINT, SIGTERM};
    let env = Env::new();
    agent(&env, "w1", "p");
    let waits: [(&[&str], _); 4] = [
        (&["recv", "w1", "--wait"], SIGINT),
        (&["recv", "w1", "--wait", "--timeout", "60"], SIGTERM),
        (&["request", "--to", "w1", "--timeout", "60", "--queue-only", "1"], SIGINT),
        (&["tail", "--topic", "health.*"], SIGTERM),
    ];
    for (args, signal) in waits {
        let mut c = env.cmd("af-bus");
        let child = c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        wait_for("af-bus to wait", Duration::from_secs(10), || env.waits(pid));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "af-bus {args:?} after {signal}: {}", util::describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err, format!("af-bus: interrupted by {signal} while waiting\n"), "af-bus {args:?}");
        assert!(!env.waits(pid), "af-bus {args:?} left its pipe");
    }
    // The request's reply queue and the tail's subscription went too.
    let replies = env.home.join("bus/reply");
    assert_eq!(std::fs::read_dir(&replies).map(|d| d.count()).unwrap_or(0), 0, "{}", replies.display());
    env.ok("af-bus", &["publish", "-t", "health.w1", "1"]);
    assert_eq!(env.json("af-bus", &["stats"])["subscriptions"], json!([]));
    // The request itself was delivered before the wait: it waits in w1's inbox.
    assert_eq!(recv(&env, "w1", &[]).unwrap()["kind"], "request");
}

#[test]
fn request_reply_and_timeout() {
    let env = Env::new();
    agent(&env, "svc", "p");
    let mut req = env.cmd("af-bus");
    req.args(["request", "--to", "svc", "--timeout", "20", "--queue-only", r#"{"q": "ping"}"#]).stdout(Stdio::piped());
    let child = req.spawn().unwrap();
    let m = recv(&env, "svc", &["--wait", "--timeout", "10"]).unwrap();
    assert_eq!(m["kind"], "request");
    assert!(m["replyTo"].as_str().unwrap().starts_with("reply:"));
    env.ok("af-bus", &["reply", m["id"].as_str().unwrap(), r#"{"a": "pong"}"#]);
    env.ok("af-bus", &["ack", "svc", m["id"].as_str().unwrap()]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!({"a": "pong"}));
    // Nobody answers: exit 5, and a late reply finds the requester gone.
    env.fails("af-bus", &["request", "--to", "svc", "--timeout", "0.3", "--queue-only", "1"], None, 5);
    let late = recv(&env, "svc", &[]).unwrap();
    env.fails("af-bus", &["reply", late["id"].as_str().unwrap(), "2"], None, 3);
    env.fails("af-bus", &["reply", "123-4-5", "2"], None, 3);
}

#[test]
fn a_request_answered_ok_false_exits_1_with_the_answer_on_stdout() {
    let env = Env::new();
    worker(&env, "w1", "p", json!({}));
    let fail = r#"{"command": ["sh", "-c", "echo broken; exit 3"]}"#;
    let out = env.run("af-bus", &["request", "--to", "w1", "--timeout", "20", fail], None);
    assert_eq!(out.status.code(), Some(1), "{}", util::describe(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer["ok"].as_bool(), answer["exitCode"].as_i64()), (Some(false), Some(3)), "{answer}");
    assert!(out.stderr.is_empty(), "the answer is the whole story: {}", util::describe(&out));
    // --no-fail: any answer is exit 0; an ok answer always is.
    let out = env.ok("af-bus", &["request", "--to", "w1", "--timeout", "20", "--no-fail", "--json", fail]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["payload"]["ok"], false);
    let out = env.ok("af-bus", &["request", "--to", "w1", "--timeout", "20", r#"{"command": ["true"]}"#]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["ok"], true);
}

#[test]
fn tasks_and_requests_for_an_agent_that_is_not_running_warn_and_wait_in_its_inbox() {
    let env = Env::new();
    agent(&env, "idle", "p");
    let warns = |args: &[&str]| {
        let out = env.run("af-bus", args, None);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let warning = err.lines().find(|l| l.contains("waits in its inbox")).map(str::to_owned);
        (out.status.code(), warning)
    };
    let (code, warning) = warns(&["send", "--to", "idle", "--kind", "task", "1"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        warning.as_deref(),
        Some("af-bus: agent 'idle' is created: the task waits in its inbox until it runs (af-spawn start idle)")
    );
    let (code, warning) = warns(&["request", "--to", "idle", "--timeout", "0.2", "2"]);
    assert_eq!(code, Some(5), "still a timeout");
    assert!(warning.unwrap().contains("is created: the request waits"));
    // Events, --queue-only, and a running agent: no word.
    assert_eq!(warns(&["send", "--to", "idle", "3"]), (Some(0), None));
    assert_eq!(warns(&["send", "--to", "idle", "--kind", "task", "--queue-only", "4"]), (Some(0), None));
    assert_eq!(warns(&["request", "--to", "idle", "--timeout", "0.2", "--queue-only", "5"]).1, None);
    // Every one of them is queued.
    let queued: Vec<Value> = (0..5).map(|_| recv(&env, "idle", &["--ack"]).unwrap()["payload"].clone()).collect();
    assert_eq!(queued, vec![json!(1), json!(2), json!(3), json!(4), json!(5)]);
    // A batch: one word per idle agent.
    let out = env.run("af-bus", &["send", "--batch", "--to", "idle", "--kind", "task"], Some("10\n11\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.lines().count() == 1 && err.contains("'idle' is created"), "{err}");
    worker(&env, "busy", "p", json!({}));
    env.ok("af-spawn", &["stop", "busy"]);
    assert!(warns(&["send", "--to", "busy", "--kind", "task", "6"]).1.unwrap().contains("'busy' is stopped"));
    env.ok("af-spawn", &["start", "busy"]);
    assert_eq!(warns(&["send", "--to", "busy", "--kind", "task", r#"{"command": ["true"]}"#]), (Some(0), None));
}

#[test]
fn send_without_data_on_a_terminal_says_it_reads_standard_input() {
    let env = Env::new();
    agent(&env, "w1", "p");
    // In a pipeline: no word, the payload is read.
    let out = env.run("af-bus", &["send", "--to", "w1"], Some("7"));
    assert!(out.status.success() && out.stderr.is_empty(), "{}", util::describe(&out));
    // On a terminal (a tmux pane): the word, then the payload typed.
    let script = format!("AF_HOME={} {} send --to w1; sleep 30", env.home.display(), util::bin("af-bus").display());
    assert!(env.tmux(&["new-session", "-d", "-s", "term", "-x", "200", "sh", "-c", &script]).status.success());
    let pane = || String::from_utf8_lossy(&env.tmux(&["capture-pane", "-p", "-t", "=term:"]).stdout).into_owned();
    wait_for("the word on the terminal", Duration::from_secs(10), || pane().contains("reading the payload"));
    env.tmux(&["send-keys", "-t", "=term:", "8", "Enter", "C-d"]);
    wait_for("the message", Duration::from_secs(10), || stats(&env, "w1")["depth"] == 2);
    assert_eq!(recv(&env, "w1", &[]).unwrap()["payload"], 7);
    assert_eq!(recv(&env, "w1", &[]).unwrap()["payload"], 8);
}

#[test]
fn redelivery_nack_dead_letters_retry_and_ttl() {
    let mut env = Env::new();
    env.set_env("AF_BUS_MAX_ATTEMPTS", "3");
    agent(&env, "w1", "p");
    let id = send(&env, &["--to", "w1", "1"]);
    let m = recv(&env, "w1", &["--visibility", "0.1"]).unwrap();
    assert_eq!(m["attempts"], 0);
    wait_for("redelivery after the visibility timeout", Duration::from_secs(5), || {
        env.run("af-bus", &["recv", "w1", "--json", "--visibility", "60"], None).status.success()
    });
    env.ok("af-bus", &["nack", "w1", &id]);
    let again = recv(&env, "w1", &[]).unwrap();
    assert_eq!((again["id"].as_str(), again["attempts"].as_u64()), (Some(id.as_str()), Some(2)));
    env.ok("af-bus", &["nack", "w1", &id]);
    assert_eq!(stats(&env, "w1")["dead"], 1, "the third failed attempt made it a dead letter");
    let dead = env.json("af-bus", &["dead", "w1"]);
    assert_eq!((dead[0]["id"].as_str(), dead[0]["reason"].as_str()), (Some(id.as_str()), Some("attempts")));
    env.ok("af-bus", &["retry", "w1", &id]);
    env.fails("af-bus", &["retry", "w1", &id], None, 3);
    let back = recv(&env, "w1", &[]).unwrap();
    assert_eq!((back["id"].as_str(), back["attempts"].as_u64()), (Some(id.as_str()), Some(0)));
    // A delayed nack: invisible until the delay passes, then back with attempts raised.
    env.ok("af-bus", &["nack", "w1", &id, "--delay", "0.3"]);
    assert!(recv(&env, "w1", &[]).is_none(), "hidden during the delay");
    let later = recv(&env, "w1", &["--wait", "--timeout", "5"]).unwrap();
    assert_eq!(later["attempts"], 1);

    // ttl: dropped to the dead letters with the reason, unread.
    let sent: Value =
        serde_json::from_str(&env.ok("af-bus", &["send", "--to", "w1", "--ttl", "0.2", "--json", "9"])).unwrap();
    let expires = sent["expiresAt"].as_str().unwrap().to_owned();
    wait_for("the ttl to pass", Duration::from_secs(5), || now_rfc3339() > expires);
    assert!(recv(&env, "w1", &[]).is_none(), "an expired message is not delivered");
    let dead = env.json("af-bus", &["dead", "w1"]);
    assert_eq!(dead[0]["reason"], "expired");
}

#[test]
fn a_log_file_is_opened_only_when_something_is_logged() {
    let mut env = Env::new();
    env.set_env("AF_LOG", "info");
    env.set_env("AF_BUS_MAX_ATTEMPTS", "1");
    agent(&env, "w1", "p");
    let id = send(&env, &["--to", "w1", "1"]);
    env.ok("af-spawn", &["show", "w1"]);
    recv(&env, "w1", &[]).unwrap();
    assert!(!env.home.join("log").exists(), "runs that logged nothing opened no log file");
    env.ok("af-bus", &["nack", "w1", &id]);
    let log = util::read(&env.home.join("log/af-bus.log"));
    assert!(log.contains("message to the dead letters") && log.contains(&id), "af-bus.log: {log}");
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    af_spool::time::Timestamp(ms).rfc3339()
}

#[test]
fn middleware_changes_and_rejects() {
    let env = Env::new();
    agent(&env, "w1", "p");
    let dir = env.home.join("bus.d");
    std::fs::create_dir_all(&dir).unwrap();
    let script = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    script("10-upgrade", r#"sed 's/"priority":"low"/"priority":"high"/; s/"payload":{/"payload":{"stamped":true,/'"#);
    script(
        "20-policy",
        "m=$(cat); case \"$m\" in *forbidden*) echo \"policy: no forbidden words\" >&2; exit 3;; esac; printf '%s' \"$m\"",
    );
    std::fs::write(dir.join("README"), "not executable: skipped").unwrap();
    send(&env, &["--to", "w1", "--priority", "low", r#"{"n": 1}"#]);
    let m = recv(&env, "w1", &[]).unwrap();
    assert_eq!((m["priority"].as_str(), m["payload"].clone()), (Some("high"), json!({"stamped": true, "n": 1})));
    let err = env.fails("af-bus", &["send", "--to", "w1", r#""forbidden""#], None, 2);
    assert!(err.contains("20-policy") && err.contains("policy: no forbidden words"), "{err}");
    assert_eq!(stats(&env, "w1")["depth"], 0, "a rejected message is not queued");
    script("30-garbage", "cat >/dev/null; echo not-json");
    env.fails("af-bus", &["send", "--to", "w1", "1"], None, 2);
}

#[test]
fn two_receivers_share_ten_thousand_messages_exactly_once() {
    let env = Env::new();
    agent(&env, "w1", "p");
    let n = 10_000;
    let input: String = (0..n).map(|i| format!("{i}\n")).collect();
    let sent = env.ok_in("af-bus", &["--no-fsync", "send", "--batch", "--to", "w1"], Some(&input));
    assert_eq!(sent.lines().count(), n);
    let receiver = || {
        let mut got = Vec::new();
        loop {
            let out = env.run("af-bus", &["recv", "w1", "-n", "200", "--json", "--visibility", "120"], None);
            if out.status.code() == Some(1) {
                return got;
            }
            assert!(out.status.success(), "{}", util::describe(&out));
            let text = String::from_utf8(out.stdout).unwrap();
            let ids: Vec<String> = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
                .collect();
            env.ok_in("af-bus", &["ack", "w1", "-"], Some(&ids.join("\n")));
            got.extend(ids);
        }
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(receiver);
        let b = s.spawn(receiver);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(!a.is_empty() && !b.is_empty(), "both receivers took some ({} and {})", a.len(), b.len());
    let all: HashSet<&String> = a.iter().chain(b.iter()).collect();
    assert_eq!(a.len() + b.len(), n, "no message delivered twice");
    assert_eq!(all, sent.lines().map(str::to_owned).collect::<Vec<_>>().iter().collect(), "every message delivered");
}

fn worker(env: &Env, id: &str, project: &str, extra: Value) {
    let mut config = json!({"id": id, "type": "worker", "projectId": project});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    env.create(&config.to_string());
    env.ok("af-spawn", &["start", id]);
}

/// Receives `n` task results from a subscription.
fn results(env: &Env, sub: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} results: {out:?}", out.len());
        let text = env.ok("af-bus", &["recv", sub, "-n", "100", "--json", "--ack", "--wait", "--timeout", "20"]);
        out.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["payload"].clone()));
    }
    out
}

#[test]
fn workers_run_tasks_with_timeouts_crashes_pause_and_stop() {
    let env = Env::new();
    env.ok("af-bus", &["subscribe", "results", "--topic", "tasks.results"]);
    worker(&env, "w1", "p", json!({"taskCommand": ["sh", "-c", "cat; echo from-stderr >&2"], "maxConcurrentTasks": 2}));
    // The task's own command; its stdout is JSON.
    let own = send(&env, &["--to", "w1", "--kind", "task", r#"{"command": ["sh", "-c", "echo '{\"sum\": 3}'"]}"#]);
    let r = &results(&env, "results", 1)[0];
    assert_eq!(
        (r["taskId"].as_str(), r["ok"].as_bool(), r["stdout"].clone()),
        (Some(own.as_str()), Some(true), json!({"sum": 3}))
    );
    // taskCommand with the task on stdin.
    send(&env, &["--to", "w1", "--kind", "task", r#"{"job": "echo me"}"#]);
    let r = &results(&env, "results", 1)[0];
    assert_eq!(r["stdout"]["payload"], json!({"job": "echo me"}));
    assert_eq!(r["stderrTail"], "from-stderr");
    // A crash and a timeout: reported, and the worker stays up.
    send(&env, &["--to", "w1", "--kind", "task", r#"{"command": ["sh", "-c", "echo bad >&2; exit 3"]}"#]);
    send(&env, &["--to", "w1", "--kind", "task", r#"{"command": ["sleep", "30"], "timeout": "300ms"}"#]);
    let mut rs = results(&env, "results", 2);
    rs.sort_by_key(|r| r["timedOut"].as_bool());
    assert_eq!(
        (rs[0]["exitCode"].as_i64(), rs[0]["ok"].as_bool(), rs[0]["stderrTail"].as_str()),
        (Some(3), Some(false), Some("bad"))
    );
    assert_eq!((rs[1]["timedOut"].as_bool(), rs[1]["signal"].as_i64()), (Some(true), Some(9)));
    assert_eq!(env.status("w1"), "running");
    // request/response with a worker: the result is the response.
    let out = env.ok("af-bus", &["request", "--to", "w1", "--timeout", "20", r#"{"command": ["echo", "42"]}"#]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["stdout"], 42);
    results(&env, "results", 1);
    // Non-task messages are left for other receivers.
    send(&env, &["--to", "w1", r#""just news""#]);
    // Paused: takes nothing.
    env.ok("af-spawn", &["pause", "w1"]);
    send(&env, &["--to", "w1", "--kind", "task", r#"{"command": ["true"]}"#]);
    std::thread::sleep(Duration::from_millis(800)); // an observation window, not a synchronization
    assert_eq!(stats(&env, "w1")["depth"], 2, "a paused worker takes nothing");
    env.ok("af-spawn", &["resume", "w1"]);
    results(&env, "results", 1);
    let news = recv(&env, "w1", &[]).unwrap();
    assert_eq!(news["payload"], "just news");
    // Stop: what it had claimed goes back to the queue, attempts unchanged.
    let long = send(&env, &["--to", "w1", "--kind", "task", r#"{"command": ["sleep", "30"]}"#]);
    wait_for("the long task to be claimed", Duration::from_secs(5), || stats(&env, "w1")["inFlight"] == 2);
    env.ok("af-spawn", &["stop", "w1"]);
    let st = stats(&env, "w1");
    assert_eq!((st["depth"].as_u64(), st["inFlight"].as_u64()), (Some(1), Some(1)), "{st}");
    let back = recv(&env, "w1", &["--max", "1"]).unwrap();
    assert_eq!((back["id"].as_str(), back["attempts"].as_u64()), (Some(long.as_str()), Some(0)));
}

#[test]
fn pool_queue_shared_by_three_workers() {
    let env = Env::new();
    env.ok("af-bus", &["subscribe", "results", "--topic", "tasks.*"]);
    for w in ["p1", "p2", "p3"] {
        worker(&env, w, "org/repo", json!({}));
    }
    worker(&env, "other", "elsewhere", json!({}));
    let n = 24;
    let lines: String =
        (0..n).map(|i| format!("{}\n", json!({"command": ["sh", "-c", format!("sleep 0.2; echo {i}")]}))).collect();
    let ids = env.ok_in("af-bus", &["send", "--batch", "--kind", "task", "--to", "pool:org/repo"], Some(&lines));
    let rs = results(&env, "results", n);
    let mut by_task: HashMap<String, usize> = HashMap::new();
    let mut by_agent: HashMap<String, usize> = HashMap::new();
    for r in &rs {
        *by_task.entry(r["taskId"].as_str().unwrap().to_owned()).or_default() += 1;
        *by_agent.entry(r["agent"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(by_task.len(), n, "every task ran");
    assert!(by_task.values().all(|&c| c == 1), "each exactly once");
    assert!(ids.lines().all(|id| by_task.contains_key(id)));
    let mut agents: Vec<_> = by_agent.keys().cloned().collect();
    agents.sort();
    assert_eq!(agents, ["p1", "p2", "p3"], "all three workers took from the pool, no one else: {by_agent:?}");
    assert_eq!(stats(&env, "pool:org/repo")["acked"], n);
}

/// 200 kill -9 of senders, receivers and ackers at random moments; then everything is drained
/// and checked: every confirmed message was acked, none twice, and none delivered after its ack.
#[test]
fn kill_dash_nine_loses_nothing() {
    let mut env = Env::new();
    env.set_env("AF_BUS_HISTORY", "1000000");
    // Killed receivers and ackers are failed attempts; here none may end as a dead letter.
    env.set_env("AF_BUS_MAX_ATTEMPTS", "1000");
    agent(&env, "q", "p");
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut confirmed: HashSet<String> = HashSet::new();
    // Every delivery seen: id -> when the receiver that got it started.
    let mut deliveries: Vec<(String, Instant)> = Vec::new();
    let mut acked_at: HashMap<String, Instant> = HashMap::new();
    let mut kills = 0;
    let mut serial = 0;
    while kills < 200 {
        serial += 1;
        let lines: String = (0..10).map(|i| format!("{}\n", serial * 100 + i)).collect();
        let mut sender = env.cmd("af-bus");
        sender
            .args(["send", "--batch", "--to", "q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut sender = sender.spawn().unwrap();
        sender.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        let started = Instant::now();
        let mut receiver = env.cmd("af-bus");
        receiver
            .args(["recv", "q", "-n", "8", "--json", "--visibility", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let receiver = receiver.spawn().unwrap();
        let victim = rand(3);
        std::thread::sleep(Duration::from_micros(rand(4000)));
        let mut kill = |c: &mut std::process::Child| {
            if c.try_wait().unwrap().is_none() {
                kills += 1;
            }
            let _ = c.kill();
        };
        let mut receiver = receiver;
        match victim {
            0 => kill(&mut sender),
            1 => kill(&mut receiver),
            _ => {}
        }
        let out = sender.wait_with_output().unwrap();
        if out.status.success() {
            confirmed.extend(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned));
        }
        let out = receiver.wait_with_output().unwrap();
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        deliveries.extend(got.iter().map(|id| (id.clone(), started)));
        if !got.is_empty() {
            let mut acker = env.cmd("af-bus");
            acker.args(["ack", "q", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
            let mut acker = acker.spawn().unwrap();
            acker.stdin.take().unwrap().write_all(got.join("\n").as_bytes()).unwrap();
            if victim == 2 {
                std::thread::sleep(Duration::from_micros(rand(3000)));
                kill(&mut acker);
            }
            let acked = acker.wait_with_output().unwrap();
            let status = acked.status;
            // An acker left alone acks what its receiver claimed, unless those claims (1 s of
            // visibility) ran out first on a loaded machine: then, and only then, 3.
            if victim != 2 {
                let late = started.elapsed() >= Duration::from_secs(1);
                assert!(
                    status.success() || (late && status.code() == Some(3)),
                    "ack of {got:?} exited with {status:?} after {:?}: {}",
                    started.elapsed(),
                    String::from_utf8_lossy(&acked.stderr)
                );
            }
            if status.success() {
                for id in got {
                    acked_at.entry(id).or_insert_with(Instant::now);
                }
            }
        }
    }
    // Drain: claims of killed receivers come back after their visibility timeout. Done when
    // nothing is waiting or claimed (or the deadline passes, and the checks below fail). The
    // deadline is generous for a loaded machine; a quiet one drains in a few seconds.
    let drain_began = Instant::now();
    let drain_deadline = drain_began + Duration::from_secs(120);
    let mut rounds = 0;
    while Instant::now() < drain_deadline {
        rounds += 1;
        let started = Instant::now();
        let out = env.run(
            "af-bus",
            &["recv", "q", "-n", "500", "--json", "--wait", "--timeout", "2", "--visibility", "60"],
            None,
        );
        if out.status.code() == Some(5) {
            let st = stats(&env, "q");
            if st["depth"] == 0 && st["inFlight"] == 0 {
                break;
            }
            continue;
        }
        assert!(out.status.success(), "{}", util::describe(&out));
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        deliveries.extend(got.iter().map(|id| (id.clone(), started)));
        let acker = env.run("af-bus", &["ack", "q", "-"], Some(&got.join("\n")));
        // These claims are this drain's own, for 60 s: every ack must take.
        assert_eq!(acker.status.code(), Some(0), "the drain's ack: {}", util::describe(&acker));
        for id in got {
            acked_at.entry(id).or_insert_with(Instant::now);
        }
    }
    let st = stats(&env, "q");
    assert_eq!(
        (st["depth"].as_u64(), st["inFlight"].as_u64(), st["dead"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{st} after {rounds} drain rounds in {:?}: {:?}",
        drain_began.elapsed(),
        ["new", "cur", "dead"].map(|p| std::fs::read_dir(env.home.join("agents/q/inbox").join(p))
            .map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>()))
    );
    let history = env.json("af-bus", &["history", "q", "--limit", "100000"]);
    let mut archived: HashMap<String, usize> = HashMap::new();
    for m in history.as_array().unwrap() {
        *archived.entry(m["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for id in &confirmed {
        assert!(archived.contains_key(id), "confirmed message {id} was lost");
    }
    assert!(archived.values().all(|&n| n == 1), "a message was acked twice");
    for (id, started) in &deliveries {
        if let Some(acked) = acked_at.get(id) {
            assert!(started < acked, "message {id} was delivered after it was acked");
        }
    }
    assert!(confirmed.len() > 100, "the loop sent something ({} confirmed)", confirmed.len());
}

/// af-wrap killed -9 while a task runs: the next af-wrap of the agent gives the claim back at
/// once (a failed attempt) and runs the task again.
#[test]
fn a_restarted_worker_reruns_the_task_its_killed_supervisor_held() {
    let env = Env::new();
    env.ok("af-bus", &["subscribe", "results", "--topic", "tasks.results"]);
    worker(&env, "w1", "p", json!({}));
    let marker = env.path("marker");
    let script = format!("if [ -e {0} ]; then echo again; else touch {0}; sleep 30; fi", marker.display());
    let id = send(&env, &["--to", "w1", "--kind", "task", &json!({"command": ["sh", "-c", script]}).to_string()]);
    wait_for("the task to start", Duration::from_secs(10), || marker.exists());
    let wrap = env.show("w1")["state"]["wrapPid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("the supervisor to be gone", Duration::from_secs(10), || env.status("w1") == "failed");
    assert_eq!(stats(&env, "w1")["inFlight"], 1, "the claim outlives its holder");
    env.ok("af-spawn", &["start", "w1"]);
    let r = &results(&env, "results", 1)[0];
    assert_eq!((r["taskId"].as_str(), r["stdout"].as_str()), (Some(id.as_str()), Some("again")));
    let h = env.json("af-bus", &["history", "w1"]);
    assert_eq!(h[0]["attempts"], 1, "the interrupted run counts as a failed attempt");
}
