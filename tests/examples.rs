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
    assert!(out.contains("warning") && out.contains("killed by signal 9"), "the alert: {out}");
}
