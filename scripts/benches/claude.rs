//! claude-code agents: one task's round trip through af-wrap and the CLI (the test double, so the
//! figure is AgentFlow's own overhead, not a model's), beside the same turn driven straight over
//! the double's pipes; a burst of queued tasks; one hook event (`af-wrap --hook`). Tasks go
//! through the agent's bus inbox (the library calls `af-bus request` makes), answers come back on
//! a reply queue. In interactive mode (the CLI full-screen in the pane, tasks by bracketed paste):
//! the first task's round trip of a new agent, and later ones, beside print mode's.

#[path = "common.rs"]
mod common;

use af_ops::bus::Target;
use af_spool::bus::{Address, ReplyQueue};
use af_spool::message::{Kind, Message, Priority};
use af_spool::{AgentId, Spool};
use common::{Row, World, header, row, time};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn double() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-double").to_owned()
}

/// Sends a task to the agent's inbox with `replies` as its reply-to queue.
fn submit(spool: &Spool, id: &AgentId, replies: &ReplyQueue, text: String) {
    let mut m = Message::new("bench", Kind::Task, Priority::Normal, serde_json::json!(text));
    m.reply_to = Some(replies.address.to_string());
    af_ops::bus::post(spool, m, &Target::Queue(Address::Inbox(id.clone())), true).expect("send");
}

/// Waits for `n` responses on `replies`.
fn wait_responses(replies: &ReplyQueue, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listener = replies.queue.listen().expect("listen");
    let mut got = 0;
    while got < n {
        let claims = replies.queue.claim(n - got, Duration::from_secs(3600)).expect("claim");
        for c in &claims {
            replies.queue.ack_receipt(&c.receipt).expect("ack");
        }
        got += claims.len();
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(got >= n || !left.is_zero(), "{got} of {n} responses");
        if got < n {
            let _ = listener.wait(left.min(af_spool::queue::RESCAN));
        }
    }
}

/// The median time of `n` turns driven straight over the double's pipes (with `extra` flags).
fn direct_turns(w: &World, config_dir: &std::path::Path, n: usize, extra: &[&str]) -> f64 {
    let mut child = Command::new(double())
        .args(["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"])
        .args(extra)
        .env("CLAUDE_CONFIG_DIR", config_dir)
        .env("AF_HOME", &w.home)
        .current_dir(w.path("work"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the double");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut samples: Vec<Duration> = (0..n)
        .map(|i| {
            time(|| {
                writeln!(stdin, r#"{{"type":"user","message":{{"role":"user","content":"task {i}"}}}}"#)
                    .expect("write");
                let mut line = String::new();
                loop {
                    line.clear();
                    if out.read_line(&mut line).expect("read") == 0 || line.starts_with(r#"{"type": "result""#) {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(stdin);
    let _ = child.wait();
    common::percentile_ms(&mut samples, 50.0)
}

/// Waits until the agent's CLI reached its prompt (its SessionStart hook is in the event log).
fn wait_prompt(spool: &Spool, id: &AgentId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = af_spool::eventlog::history(spool)
            .expect("event log")
            .filter_map(Result::ok)
            .any(|e| e.kind == "agent.claude" && e.agent.as_ref() == Some(id) && e.detail["event"] == "SessionStart");
        if started {
            return;
        }
        assert!(Instant::now() < deadline, "the CLI of {id} did not reach its prompt");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Interactive mode: the first task's round trip for each of `agents` new agents (at their
/// prompt), then `n` more tasks' on the last one. The double takes a paste in
/// `CLAUDE_DOUBLE_PASTE_MS` (20 ms here) and loses an Enter sent before.
fn interactive(w: &World, replies: &ReplyQueue, agents: usize, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let spool = Spool::open(&w.home).expect("spool");
    let mut first = Vec::new();
    let mut id = AgentId::new("ci0").expect("id");
    for a in 0..agents {
        id = AgentId::new(&format!("ci{a}")).expect("id");
        let config = serde_json::json!({"id": id, "type": "claude-code", "projectId": "bench", "command": [double()],
            "claude": {"interactive": true},
            "environment": {"CLAUDE_CONFIG_DIR": w.path("claude-config").display().to_string(),
                "CLAUDE_DOUBLE_PASTE_MS": "20"}});
        w.run_with_input("af-spawn", &["create"], &config.to_string());
        w.run("af-spawn", &["start", id.as_str()]);
        wait_prompt(&spool, &id);
        first.push(time(|| {
            submit(&spool, &id, replies, "first task".into());
            wait_responses(replies, 1);
        }));
        if a + 1 < agents {
            w.run("af-spawn", &["stop", id.as_str()]);
        }
    }
    let later = (0..n)
        .map(|i| {
            time(|| {
                submit(&spool, &id, replies, format!("task {i}"));
                wait_responses(replies, 1);
            })
        })
        .collect();
    w.run("af-spawn", &["stop", id.as_str()]);
    (first, later)
}

fn main() {
    let n = common::count("AF_BENCH_TASKS", 50);
    header(&format!("claude-code agents ({n} tasks, test double of the CLI)"));
    let w = World::new("claude");
    let config_dir = w.path("claude-config");

    // Baseline: the double driven directly, one turn at a time over its pipes.
    let direct_ms = direct_turns(&w, &config_dir, n, &[]);

    // AgentFlow: a claude-code agent under af-wrap, tasks through its queue.
    let config = serde_json::json!({"id": "cc", "type": "claude-code", "projectId": "bench", "command": [double()],
        "environment": {"CLAUDE_CONFIG_DIR": config_dir.display().to_string()}});
    w.run_with_input("af-spawn", &["create"], &config.to_string());
    w.run("af-spawn", &["start", "cc"]);
    let spool = Spool::open(&w.home).expect("spool");
    let id = AgentId::new("cc").expect("id");
    let replies = ReplyQueue::create(&spool, &af_spool::message::new_id()).expect("reply queue");
    submit(&spool, &id, &replies, "warm up".into());
    wait_responses(&replies, 1);
    let mut rounds: Vec<Duration> = (0..n)
        .map(|i| {
            time(|| {
                submit(&spool, &id, &replies, format!("task {i}"));
                wait_responses(&replies, 1);
            })
        })
        .collect();
    row(Row {
        what: "task round trip through af-wrap (median)",
        value: common::percentile_ms(&mut rounds, 50.0),
        unit: "ms",
        baseline: Some(("the same turn straight over pipes", direct_ms)),
        higher_is_better: false,
        target: "overhead small beside a model's seconds",
    });
    row(Row {
        what: "task round trip through af-wrap (p95)",
        value: common::percentile_ms(&mut rounds, 95.0),
        unit: "ms",
        baseline: Some(("the same turn straight over pipes", direct_ms)),
        higher_is_better: false,
        target: "-",
    });

    // The same turns straight over pipes, running the agent's hooks (as the CLI does under af-wrap):
    // what af-wrap itself adds is the difference.
    let settings = w.home.join("agents/cc/claude-settings.json").display().to_string();
    let hooked_ms = direct_turns(&w, &config_dir, n, &["--settings", &settings]);
    row(Row {
        what: "round trip (median) beside hooks alone",
        value: common::percentile_ms(&mut rounds, 50.0),
        unit: "ms",
        baseline: Some(("same turn over pipes, with hooks", hooked_ms)),
        higher_is_better: false,
        target: "-",
    });

    let burst = time(|| {
        for i in 0..n {
            submit(&spool, &id, &replies, format!("burst {i}"));
        }
        wait_responses(&replies, n);
    });
    row(Row {
        what: &format!("burst of {n} queued tasks"),
        value: n as f64 / burst.as_secs_f64(),
        unit: "tasks/s",
        baseline: Some(("turns straight over pipes", 1000.0 / direct_ms.max(0.001))),
        higher_is_better: true,
        target: "-",
    });

    let print_ms = common::percentile_ms(&mut rounds, 50.0);
    let agents = common::count("AF_BENCH_INTERACTIVE_AGENTS", 5);
    let (mut first, mut later) = interactive(&w, &replies, agents, n.min(20));
    row(Row {
        what: &format!("interactive: first task, new agent (median of {agents})"),
        value: common::percentile_ms(&mut first, 50.0),
        unit: "ms",
        baseline: Some(("print mode's round trip", print_ms)),
        higher_is_better: false,
        target: "taken at the first delivery (no 10 s re-delivery)",
    });
    row(Row {
        what: "interactive: later tasks (median)",
        value: common::percentile_ms(&mut later, 50.0),
        unit: "ms",
        baseline: Some(("print mode's round trip", print_ms)),
        higher_is_better: false,
        target: "-",
    });

    let hook_input = r#"{"session_id":"x","transcript_path":"/dev/null","cwd":"/","hook_event_name":"Stop"}"#;
    let mut hooks: Vec<Duration> = (0..20)
        .map(|_| {
            time(|| {
                let mut h = w.cmd("af-wrap");
                h.args(["cc", "--hook"]).stdin(Stdio::piped());
                let mut p = h.spawn().expect("hook");
                p.stdin.take().expect("stdin").write_all(hook_input.as_bytes()).expect("input");
                let _ = p.wait();
            })
        })
        .collect();
    row(Row {
        what: "one hook event (af-wrap --hook, median)",
        value: common::percentile_ms(&mut hooks, 50.0),
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true", common::fork_exec_ms(20))),
        higher_is_better: false,
        target: "well under the hook's 10 s timeout",
    });
    w.run("af-spawn", &["stop", "cc"]);
}
