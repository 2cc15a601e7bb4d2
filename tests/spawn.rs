//! af-spawn against a real private tmux server and a temporary spool: every verb, the error cases,
//! the seed's example configs, and kill -9 at awkward moments.

mod util;

use std::time::Duration;
use util::{Env, alive, proc_state, wait_for};

const SEED_CLAUDE: &str = r#"{
  "id": "claude-dev-001", "type": "claude-code", "projectId": "web-app-project",
  "capabilities": ["code-generation", "code-analysis", "documentation", "testing", "refactoring"],
  "maxConcurrentTasks": 3,
  "resourceLimits": {"memory": "4GB", "cpu": "2", "timeout": 1800000},
  "environment": {"CLAUDE_MODEL": "claude-3-sonnet", "PROJECT_TYPE": "typescript-react", "CODING_STYLE": "functional", "TEST_FRAMEWORK": "jest"}
}"#;

const SEED_WORKER: &str = r#"{
  "id": "worker-batch-001", "type": "worker", "projectId": "data-processing",
  "capabilities": ["file-processing", "data-transformation", "batch-operations"],
  "maxConcurrentTasks": 10,
  "resourceLimits": {"memory": "2GB", "cpu": "4", "timeout": 600000},
  "environment": {"BATCH_SIZE": "100", "WORKER_POOL_SIZE": "4", "OUTPUT_FORMAT": "json"}
}"#;

#[test]
fn seed_configs_are_accepted_as_they_are() {
    let env = Env::new();
    env.create(SEED_CLAUDE);
    env.create(SEED_WORKER);
    env.create(r#"{"id": "worker-001", "type": "worker", "projectId": "batch-job"}"#);
    env.create(
        r#"{"id":"deploy-42","type":"claude-code","projectId":"org/repo","capabilities":["deployment","testing"]}"#,
    );
    let claude = env.show("claude-dev-001");
    assert_eq!(claude["config"]["maxConcurrentTasks"], 3);
    assert_eq!(claude["config"]["resourceLimits"]["memory"], "4GB");
    assert_eq!(claude["config"]["environment"]["CODING_STYLE"], "functional");
    let short = env.show("worker-001");
    assert_eq!(short["config"]["maxConcurrentTasks"], 1, "documented default");
    assert_eq!(short["config"]["capabilities"], serde_json::json!([]));
    assert_eq!(short["state"]["status"], "created");
    assert_eq!(short["config"]["workdir"], env.work.display().to_string(), "workdir defaults to where create ran");
    let ls = env.json("af-spawn", &["ls"]);
    assert_eq!(ls.as_array().unwrap().len(), 4);
    for row in ls.as_array().unwrap() {
        for key in ["id", "type", "projectId", "status", "health", "pid", "tmuxSession"] {
            assert!(row.get(key).is_some(), "ls --json row lacks {key}: {row}");
        }
    }
    let batch = env.json("af-spawn", &["ls", "--project", "batch-job"]);
    assert_eq!(batch.as_array().unwrap().len(), 1);
    assert_eq!(batch[0]["tmuxSession"], "agent-worker-001");
}

#[test]
fn lifecycle_start_pause_resume_stop_restart_rm() {
    let env = Env::new();
    env.create(r#"{"id":"w1","type":"worker","projectId":"p","command":["sleep","300"],"environment":{"GREETING":"hi there"}}"#);
    env.ok("af-spawn", &["start", "w1"]);
    let show = env.show("w1");
    assert_eq!(show["state"]["status"], "running");
    let pid = show["state"]["pid"].as_u64().unwrap() as u32;
    assert!(alive(pid));
    assert!(env.has_session("agent-w1"));
    let windows = env.tmux(&["list-windows", "-t", "=agent-w1", "-F", "#{window_name}"]);
    assert_eq!(String::from_utf8_lossy(&windows.stdout).split_whitespace().collect::<Vec<_>>(), ["main", "monitor"]);
    let env_out = env.tmux(&["show-environment", "-t", "=agent-w1", "GREETING"]);
    assert_eq!(
        String::from_utf8_lossy(&env_out.stdout).trim(),
        "GREETING=hi there",
        "config environment is in the session"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(environ.split(|&b| b == 0).any(|v| v == b"GREETING=hi there"), "and in the agent's process");
    wait_for("a heartbeat", Duration::from_secs(5), || env.show("w1")["heartbeat"]["pid"].as_u64() == Some(pid as u64));

    env.ok("af-spawn", &["pause", "w1"]);
    assert_eq!(env.status("w1"), "paused");
    wait_for("process state T", Duration::from_secs(2), || proc_state(pid) == Some('T'));
    env.ok("af-spawn", &["resume", "w1"]);
    assert_eq!(env.status("w1"), "running");
    wait_for("process running again", Duration::from_secs(2), || proc_state(pid) != Some('T'));

    env.ok("af-spawn", &["restart", "w1"]);
    let after = env.show("w1");
    assert_eq!(after["state"]["status"], "running");
    assert_eq!(after["state"]["restarts"], 1);
    let pid2 = after["state"]["pid"].as_u64().unwrap() as u32;
    assert_ne!(pid, pid2);
    assert!(!alive(pid), "the old process is gone");

    env.ok("af-spawn", &["stop", "w1"]);
    let stopped = env.show("w1");
    assert_eq!(stopped["state"]["status"], "stopped");
    assert_eq!(stopped["state"]["exitSignal"], 15);
    assert!(!alive(pid2));
    wait_for("the session to go", Duration::from_secs(5), || !env.has_session("agent-w1"));

    env.ok("af-spawn", &["rm", "w1"]);
    env.fails("af-spawn", &["show", "w1"], None, 3);
    assert!(env.processes().is_empty(), "nothing left running: {:?}", env.processes());
}
