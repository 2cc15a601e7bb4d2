//! The event log stays bounded: the real programs write many large events (Claude hook events,
//! through `af-wrap --hook`) under a small `AF_EVENTS_MAX_BYTES`, and the files on disk are
//! checked: rotated generations, the oldest dropped, every line whole and capped.

mod util;

use serde_json::{Value, json};
use std::path::Path;
use util::Env;

/// The size of each hook's tool output: over the 128 KiB a single argument may have.
const OUTPUT: usize = 150_000;

fn hook_input(session: &str) -> String {
    json!({"hook_event_name": "PostToolUse", "session_id": session, "tool_name": "Bash",
        "tool_response": "o".repeat(OUTPUT)})
    .to_string()
}

/// Runs `af-wrap --hook ID` as the Claude Code CLI would.
#[track_caller]
fn hook(env: &Env, id: &str, session: &str) {
    env.ok_in("af-wrap", &["--hook", id], Some(&hook_input(session)));
}

/// The lines of one file of the log, each a whole event.
#[track_caller]
fn events_in(path: &Path) -> Vec<Value> {
    let text = util::read(path);
    assert!(text.ends_with('\n'), "{} ends inside a line", path.display());
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a broken line ({e}): {l:.200}"))).collect()
}

/// The sessions of the hook events in the files, oldest first.
fn sessions(files: &[Vec<Value>]) -> Vec<String> {
    files
        .iter()
        .flatten()
        .filter(|e| e["kind"] == "agent.claude")
        .map(|e| e["detail"]["input"]["session_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn many_large_hook_events_rotate_the_log_and_keep_it_bounded() {
    let mut env = Env::new();
    env.set_env("AF_EVENTS_MAX_BYTES", "16KB");
    env.set_env("AF_EVENTS_KEEP", "2");
    env.create(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string());
    env.ok("af-bus", &["subscribe", "hooks", "--topic", "agent.w1.claude"]);
    let n = 40;
    for i in 0..n {
        hook(&env, "w1", &format!("s-{i:02}"));
    }

    let live = env.home.join("events.log");
    let gens: Vec<_> = [".2", ".1", ""].iter().map(|s| env.home.join(format!("events.log{s}"))).collect();
    for g in &gens {
        assert!(g.exists(), "{} is there", g.display());
        let size = std::fs::metadata(g).unwrap().len();
        assert!(size <= 16 << 10, "{} is {size} bytes, over AF_EVENTS_MAX_BYTES", g.display());
    }
    assert!(!env.home.join("events.log.3").exists(), "only AF_EVENTS_KEEP=2 older generations are kept");
    let files: Vec<Vec<Value>> = gens.iter().map(|g| events_in(g)).collect();
    assert!(!events_in(&live).is_empty());

    // What is kept is the newest events, in order, with none missing in between.
    let kept = sessions(&files);
    let want: Vec<String> = (n - kept.len()..n).map(|i| format!("s-{i:02}")).collect();
    assert_eq!(kept, want);
    assert!(kept.len() < n, "the oldest events were dropped with their generation");
    // Each was capped, and says how big it was.
    for e in files.iter().flatten().filter(|e| e["kind"] == "agent.claude") {
        let d = &e["detail"];
        assert_eq!(d["truncated"], true, "{}", d["input"]["session_id"]);
        assert!(d["bytes"].as_u64().unwrap() > OUTPUT as u64, "{}", d["bytes"]);
        assert_eq!(d["event"], "PostToolUse");
        let cut = d["input"]["tool_response"].as_str().unwrap();
        assert!(!cut.is_empty() && cut.len() < OUTPUT);
    }

    // The bus got every event whole (on af-bus's stdin: too big for an argument).
    let out = env.run("af-bus", &["recv", "hooks", "--json", "--ack", "-n", "100"], None);
    let published: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(published.len(), n, "{}", util::describe(&out));
    assert!(published.iter().all(|m| m["payload"]["input"]["tool_response"].as_str().map(str::len) == Some(OUTPUT)));
}

#[test]
fn hooks_run_at_once_lose_no_event_across_rotations() {
    let mut env = Env::new();
    env.set_env("AF_EVENTS_MAX_BYTES", "12KB");
    // Enough generations that nothing is dropped: every event must be found.
    env.set_env("AF_EVENTS_KEEP", "100");
    env.create(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string());
    let (writers, each) = (4, 10);
    std::thread::scope(|s| {
        for w in 0..writers {
            let env = &env;
            s.spawn(move || {
                for i in 0..each {
                    hook(env, "w1", &format!("w{w}-{i}"));
                }
            });
        }
    });

    let mut files = Vec::new();
    for n in (1..=100).rev() {
        let g = env.home.join(format!("events.log.{n}"));
        if g.exists() {
            files.push(events_in(&g));
        }
    }
    assert!(files.len() >= 3, "the log rotated: {} older generations", files.len());
    files.push(events_in(&env.home.join("events.log")));
    let seen = sessions(&files);
    for w in 0..writers {
        let mine: Vec<&String> = seen.iter().filter(|s| s.starts_with(&format!("w{w}-"))).collect();
        let want: Vec<String> = (0..each).map(|i| format!("w{w}-{i}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>(), "writer {w}: each event once, in its order");
    }
}
