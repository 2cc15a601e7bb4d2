//! The seed's example workflows, as the runnable scripts in examples/, run end to end.

mod util;

use std::process::Command;
use util::{Env, describe};

/// Runs an example script with the test's spool and tmux server and the built programs on PATH.
fn example(env: &Env, name: &str, args: &[&str]) -> String {
    let bins = util::bin("af-spawn").parent().unwrap().to_path_buf();
    let mut c = Command::new("bash");
    env.apply(&mut c);
    c.arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name))
        .args(args)
        .env("PATH", format!("{}:{}", bins.display(), std::env::var("PATH").unwrap_or_default()));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{name}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn batch_processing_distributes_and_collects_every_result() {
    let env = Env::new();
    let out = example(&env, "batch-processing.sh", &["12"]);
    assert_eq!(out.lines().filter(|l| l.starts_with("result ")).count(), 12, "{out}");
    assert!(out.contains("sum of squares 1..12 = 650"), "{out}");
    // Round-robin by hand reached every worker.
    for w in ["worker-001", "worker-002", "worker-003"] {
        assert!(out.contains(&format!("from {w}")), "{w} got no task: {out}");
    }
    for w in env.json("af-spawn", &["ls", "--project", "batch-job"]).as_array().unwrap() {
        assert_eq!(w["status"], "stopped");
    }
}

#[test]
fn monitoring_and_recovery_brings_a_killed_agent_back() {
    let env = Env::new();
    let out = example(&env, "monitoring-recovery.sh", &[]);
    assert!(out.contains("agent:unhealthy -> {"), "the seed's event reached the subscriber: {out}");
    assert!(out.contains("api-server is running again"), "{out}");
    assert!(out.contains("restarts: 1"), "{out}");
    // The first pass finds the process gone, or af-wrap has already recorded how it ended.
    let alerted = out.contains("killed by signal 9") || out.contains("is gone");
    assert!(out.contains("warning") && alerted, "the alert: {out}");
    // Healthy again: the alert closed, with a notice on agent.recovered; the log keeps both.
    assert!(out.contains("agent:recovered -> process recovered: af-wrap and agent process"), "{out}");
    assert!(out.contains("recovery api-server"), "{out}");
    assert!(out.contains("open alerts: []"), "{out}");
    assert_eq!(env.json("af-health", &["alerts"]), serde_json::json!([]), "nothing left open after the stop");
}

#[test]
fn development_runs_a_task_on_a_claude_code_agent_and_checkpoints_it() {
    let mut env = Env::new();
    let double = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-double");
    env.set_env("CLAUDE_BIN", double.to_str().unwrap());
    env.set_env("CLAUDE_CONFIG_DIR", env.path("claude-config").to_str().unwrap());
    let out = example(&env, "development.sh", &[]);
    let answer: serde_json::Value =
        serde_json::from_str(out.lines().find_map(|l| l.strip_prefix("answer: ")).expect("an answer")).unwrap();
    assert_eq!(answer["isError"], false, "{answer}");
    assert!(answer["result"].as_str().unwrap().contains("implement_feature"), "{answer}");
    // The whole task, turned into a prompt, is in the transcript the CLI keeps.
    let projects = env.path("claude-config/projects");
    let transcripts: Vec<String> = std::fs::read_dir(&projects)
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| util::read(&f.path()))
        .collect();
    assert!(
        transcripts
            .iter()
            .any(|t| t.contains("Add user authentication system") && t.contains("src/components/Login.tsx"))
    );
    assert!(answer["costUsd"].as_f64().unwrap() > 0.0, "{answer}");
    let ckpt = out.lines().find_map(|l| l.strip_prefix("checkpoint ")).expect("a checkpoint id");
    let shown = env.json("af-checkpoint", &["show", "dev-session-001", ckpt]);
    assert_eq!(shown["description"], "Auth system implementation complete");
    assert!(shown["holds"].as_array().unwrap().iter().any(|h| h == "conversation"), "{shown}");
    assert_eq!(env.status("dev-session-001"), "stopped");
}
