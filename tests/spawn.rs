//! af-spawn against a real private tmux server and a temporary spool: every verb, the error cases,
//! the seed's example configs, and kill -9 at awkward moments.

mod util;

use std::process::{Command, Stdio};
use std::time::Duration;
use util::{Env, alive, bin, proc_state, wait_for};

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
    assert_eq!(windows(&env, "agent-w1"), ["main"], "the monitor window waits for someone to look");
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
    wait_for("process state T", Duration::from_secs(10), || proc_state(pid) == Some('T'));
    env.ok("af-spawn", &["resume", "w1"]);
    assert_eq!(env.status("w1"), "running");
    wait_for("process running again", Duration::from_secs(10), || proc_state(pid) != Some('T'));

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

/// From its first heartbeat an agent is `healthy` in `ls`, before any af-health pass; once stopped
/// it is `unknown` again.
#[test]
fn health_is_known_from_the_first_heartbeats_without_an_af_health_pass() {
    let env = Env::new();
    env.worker("w1", "exec sleep 300");
    let health = || env.json("af-spawn", &["ls"])[0]["health"].as_str().unwrap_or_default().to_owned();
    wait_for("ls --json says healthy", Duration::from_secs(30), || health() == "healthy");
    let table = env.ok("af-spawn", &["ls"]);
    assert!(
        table.lines().any(|l| l.starts_with("w1 ") && l.contains(" running ") && l.contains(" healthy ")),
        "{table}"
    );
    assert_eq!(env.show("w1")["state"]["health"], "healthy");
    assert!(!env.home.join("agents/w1/health.log").exists(), "no af-health pass ran");
    env.ok("af-spawn", &["stop", "w1"]);
    assert_eq!(health(), "unknown");
}

#[test]
fn bad_input_changes_nothing() {
    let env = Env::new();
    env.create(r#"{"id":"w1","type":"worker"}"#);
    let before = std::fs::read_dir(env.home.join("agents")).unwrap().count();
    for (input, code) in [
        ("{not json", 2),
        (r#"{"id":"x","type":"robot"}"#, 2),
        (r#"{"id":"x","type":"worker","maxConcurrentTasks":"three"}"#, 2),
        (r#"{"id":"x","type":"worker","capabilites":[]}"#, 2),
        (r#"{"id":"../x","type":"worker"}"#, 2),
        (r#"{"id":"a/b","type":"worker"}"#, 2),
        (r#"{"id":"","type":"worker"}"#, 2),
        (r#"{"id":"x","type":"worker","resourceLimits":{"memory":"lots"}}"#, 2),
        (r#"{"id":"x","type":"worker","workdir":"/does/not/exist"}"#, 2),
        (r#"{"id":"w1","type":"worker"}"#, 4),
        (r#"[{"id":"y","type":"worker"},{"id":"y","type":"worker"}]"#, 2),
        ("", 2),
    ] {
        let err = env.fails("af-spawn", &["create"], Some(input), code);
        assert!(!err.contains("panicked"), "{err}");
    }
    let huge = format!(r#"{{"id":"x","type":"worker","capabilities":["{}"]}}"#, "a".repeat(2 << 20));
    env.fails("af-spawn", &["create"], Some(&huge), 2);
    assert_eq!(std::fs::read_dir(env.home.join("agents")).unwrap().count(), before, "nothing was created");
    assert!(!env.path("home/agents/x").exists());

    env.fails("af-spawn", &["start", "nope"], None, 3);
    env.fails("af-spawn", &["show", "../x"], None, 2);
    env.fails("af-spawn", &["stop", "w1"], None, 4);
    env.fails("af-spawn", &["pause", "w1"], None, 4);
    env.fails("af-spawn", &["rm", "nope"], None, 3);
    env.fails("af-spawn", &["create", "--config", "/no/such/file.json"], None, 3);
    let usage = env.run("af-spawn", &["frobnicate"], None);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(env.status("w1"), "created");
}

#[test]
fn create_start_is_all_or_nothing_unless_keep_failed() {
    let env = Env::new();
    let batch = concat!(
        r#"{"id":"good","type":"worker","command":["sleep","300"]}"#,
        "\n",
        r#"{"id":"svc","type":"worker","command":["./serve.sh"]}"#,
        "\n"
    );
    let err = env.fails("af-spawn", &["create", "--start"], Some(batch), 111);
    assert!(err.contains("agent 'svc' failed to start") && err.contains("removed again: good, svc"), "{err}");
    // Both ids are free, their files gone, their sessions too.
    assert_eq!(env.json("af-spawn", &["ls"]), serde_json::json!([]));
    let left: Vec<_> = std::fs::read_dir(env.home.join("agents")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!env.has_session("agent-good") && !env.has_session("agent-svc"));
    // --json: the error's kind is agent-failed.
    let msg = env.fails("af-spawn", &["create", "--start", "--json"], Some(batch), 111);
    assert!(msg.contains("removed again"), "{msg}");
    let out = env.run("af-spawn", &["create", "--start", "--json"], Some(batch));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stderr).unwrap()["error"], "agent-failed");
    // --keep-failed keeps them to look at, as create then start would.
    let err = env.fails("af-spawn", &["create", "--start", "--keep-failed"], Some(batch), 111);
    assert!(!err.contains("removed"), "{err}");
    assert_eq!(env.status("svc"), "failed");
    assert_eq!(env.status("good"), "running");
    assert_eq!(env.run("af-spawn", &["create", "--keep-failed"], Some(batch)).status.code(), Some(2), "needs --start");
}

#[test]
fn conflicts_on_running_agents() {
    let env = Env::new();
    env.worker("w1", "exec sleep 300");
    env.fails("af-spawn", &["start", "w1"], None, 4);
    env.fails("af-spawn", &["resume", "w1"], None, 4);
    env.fails("af-spawn", &["rm", "w1"], None, 4);
    env.fails("af-spawn", &["create"], Some(r#"{"id":"w1","type":"worker"}"#), 4);
    assert_eq!(env.status("w1"), "running");
    env.ok("af-spawn", &["rm", "--force", "w1"]);
    env.fails("af-spawn", &["show", "w1"], None, 3);
    wait_for("the session to go", Duration::from_secs(5), || !env.has_session("agent-w1"));
    assert!(env.processes().is_empty(), "{:?}", env.processes());
}

/// A process group that ignores SIGTERM, with a child that ignores it too.
const STUBBORN: &str =
    "trap '' TERM; sh -c \"trap '' TERM; while :; do sleep 0.05; done\" & while :; do sleep 0.05; done";

fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
        if f[2] == pgid.to_string() && f[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

#[test]
fn graceful_stop_of_a_stubborn_agent_kills_the_whole_group() {
    let env = Env::new();
    env.worker("s1", STUBBORN);
    let pid = env.show("s1")["state"]["pid"].as_u64().unwrap() as u32;
    wait_for("the child in the group", Duration::from_secs(5), || group_members(pid).len() >= 2);
    env.ok("af-spawn", &["stop", "--timeout", "0.5", "s1"]);
    let state = env.show("s1")["state"].clone();
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["exitSignal"], 9, "SIGTERM was ignored, so SIGKILL ended it");
    assert!(group_members(pid).is_empty(), "no survivor in the group");
}

#[test]
fn forced_stop_is_immediate() {
    let env = Env::new();
    env.worker("s2", STUBBORN);
    let pid = env.show("s2")["state"]["pid"].as_u64().unwrap() as u32;
    wait_for("the child in the group", Duration::from_secs(5), || group_members(pid).len() >= 2);
    let t = std::time::Instant::now();
    env.ok("af-spawn", &["stop", "--force", "--timeout", "60", "s2"]);
    assert!(t.elapsed() < Duration::from_secs(30), "force does not wait for the grace period");
    assert_eq!(env.show("s2")["state"]["exitSignal"], 9);
    assert!(group_members(pid).is_empty());
}

#[test]
fn kill_9_of_the_agent_process_is_recorded() {
    let env = Env::new();
    env.worker("k1", "exec sleep 300");
    let pid = env.show("k1")["state"]["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("failed with signal 9", Duration::from_secs(5), || env.status("k1") == "failed");
    let state = env.show("k1")["state"].clone();
    assert_eq!(state["exitSignal"], 9);
    assert_eq!(state["failures"], 1);
    assert_eq!(state["reason"], "killed by signal 9");
    wait_for("the session to close by itself", Duration::from_secs(10), || !env.has_session("agent-k1"));
    env.ok("af-spawn", &["start", "k1"]);
    assert_eq!(env.status("k1"), "running");
}

#[test]
fn kill_9_of_af_wrap_then_ls_tells_the_truth_and_gc_cleans_up() {
    let env = Env::new();
    env.worker("k2", "sleep 300 & wait");
    let show = env.show("k2");
    let wrap = show["state"]["wrapPid"].as_u64().unwrap() as i32;
    let pid = show["state"]["pid"].as_u64().unwrap() as u32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("ls to say failed", Duration::from_secs(5), || env.json("af-spawn", &["ls"])[0]["status"] == "failed");
    let gc = env.json("af-spawn", &["gc"]);
    assert_eq!(gc["markedFailed"], serde_json::json!(["k2"]));
    wait_for("no orphan left", Duration::from_secs(5), || env.processes().is_empty() && !alive(pid));
    assert!(!env.has_session("agent-k2"));
    assert_eq!(env.status("k2"), "failed");
    // Starting again gives exactly one session.
    env.ok("af-spawn", &["start", "k2"]);
    let sessions = env.tmux(&["list-sessions", "-F", "#{session_name}"]);
    let names = String::from_utf8_lossy(&sessions.stdout);
    assert_eq!(names.lines().filter(|l| *l == "agent-k2").count(), 1);
}

#[test]
fn a_batch_start_that_stops_half_way_leaves_nothing_starting() {
    let env = Env::new();
    for id in ["b1", "b2"] {
        env.create(&format!(r#"{{"id":"{id}","type":"worker","projectId":"p","command":["sleep","300"]}}"#));
    }
    // b2 cannot be prepared (a link where its output.log goes), after b1 was.
    let outside = env.home.parent().unwrap().join("outside.log");
    std::os::unix::fs::symlink(&outside, env.home.join("agents/b2/output.log")).unwrap();
    let err = env.fails("af-spawn", &["start", "b1", "b2"], None, 111);
    assert!(err.contains("output.log"), "{err}");
    assert_eq!((env.status("b1"), env.status("b2")), ("created".into(), "created".into()));
    assert!(!env.has_session("agent-b1") && !outside.exists());
    // Once the link is gone the batch starts whole.
    std::fs::remove_file(env.home.join("agents/b2/output.log")).unwrap();
    env.ok("af-spawn", &["start", "b1", "b2"]);
    assert_eq!((env.status("b1"), env.status("b2")), ("running".into(), "running".into()));
    env.ok("af-spawn", &["stop", "--force", "b1", "b2"]);
}

#[test]
fn a_missing_program_fails_with_the_reason() {
    let env = Env::new();
    env.create(r#"{"id":"m1","type":"worker","command":["/no/such/program","--flag"]}"#);
    let err = env.fails("af-spawn", &["start", "m1"], None, 111);
    assert!(err.contains("not found"), "{err}");
    let state = env.show("m1")["state"].clone();
    assert_eq!(state["status"], "failed");
    assert!(state["reason"].as_str().unwrap().contains("/no/such/program"), "{state}");
    wait_for("no crash loop: the session goes away", Duration::from_secs(10), || !env.has_session("agent-m1"));
    assert_eq!(env.show("m1")["state"]["restarts"], 0);
}

#[test]
fn a_clean_exit_is_stopped_not_failed() {
    let env = Env::new();
    env.create(r#"{"id":"d1","type":"worker","command":["sh","-c","exit 0"]}"#);
    env.ok("af-spawn", &["start", "d1"]);
    wait_for("stopped", Duration::from_secs(5), || env.status("d1") == "stopped");
    assert_eq!(env.show("d1")["state"]["exitCode"], 0);
    env.create(r#"{"id":"d2","type":"worker","command":["sh","-c","exit 3"]}"#);
    env.run("af-spawn", &["start", "d2"], None);
    wait_for("failed", Duration::from_secs(5), || env.status("d2") == "failed");
    assert_eq!(env.show("d2")["state"]["exitCode"], 3);
}

#[test]
fn gc_leaves_foreign_sessions_alone_and_kills_strays() {
    let env = Env::new();
    assert!(env.tmux(&["new-session", "-d", "-s", "agent-mine", "sleep", "300"]).status.success());
    assert!(env.tmux(&["new-session", "-d", "-s", "users-own", "sleep", "300"]).status.success());
    env.create(r#"{"id":"mine","type":"worker"}"#);
    env.fails("af-spawn", &["start", "mine"], None, 4);
    env.create(r#"{"id":"g1","type":"worker"}"#);
    env.ok("af-spawn", &["start", "g1"]);
    // The spool entry vanishes behind our back: its session is a stray now.
    let wrap = env.show("g1")["state"]["wrapPid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap), nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::fs::rename(env.home.join("agents/g1"), env.path("g1-aside")).unwrap();
    let gc = env.json("af-spawn", &["gc"]);
    assert_eq!(gc["killedSessions"], serde_json::json!(["agent-g1"]));
    assert!(env.has_session("agent-mine"), "a session we did not create is never touched");
    assert!(env.has_session("users-own"));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap), nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn gc_removes_leftovers_of_killed_creates() {
    let env = Env::new();
    env.create(r#"{"id":"x1","type":"worker"}"#);
    // What a create killed half-way leaves: a hidden directory named after a dead pid.
    let leftover = env.home.join("agents/.new.999999999.1.0");
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("config.json"), "{").unwrap();
    let ls = env.json("af-spawn", &["ls"]);
    assert_eq!(ls.as_array().unwrap().len(), 1, "half-created agents are never listed");
    assert_eq!(env.json("af-spawn", &["gc"])["removedLeftovers"], 1);
    assert!(!leftover.exists());
}

#[test]
fn kill_9_of_af_spawn_mid_verb_leaves_a_consistent_spool() {
    let env = Env::new();
    for round in 0..20u64 {
        let id = format!("r{round}");
        let config = format!(r#"{{"id":"{id}","type":"worker","command":["sleep","300"]}}"#);
        let mut c = env.cmd("af-spawn");
        c.args(["create", "--start"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(config.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_micros(500 + round * 700));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever happened, the spool reads, and the agent either does not exist or can be
        // brought to a clean stop and started again with exactly one session.
        let ls = env.json("af-spawn", &["ls"]);
        if ls.as_array().unwrap().iter().any(|r| r["id"] == id.as_str()) {
            let status = env.status(&id);
            if status == "running" || status == "starting" {
                let _ = env.run("af-spawn", &["stop", "--force", &id], None);
            }
            wait_for("a non-live status", Duration::from_secs(15), || {
                let s = env.status(&id);
                s != "starting" && s != "running"
            });
            env.ok("af-spawn", &["start", &id]);
            env.ok("af-spawn", &["stop", "--force", &id]);
        }
    }
    env.ok("af-spawn", &["gc"]);
    let sessions = env.tmux(&["list-sessions", "-F", "#{session_name}"]);
    assert!(String::from_utf8_lossy(&sessions.stdout).lines().all(|l| !l.starts_with("agent-")), "no stray session");
}

#[test]
fn script_prints_the_layout() {
    let env = Env::new();
    env.create(r#"{"id":"sc1","type":"worker","command":["sleep","300"],"environment":{"A":"it's"}}"#);
    let script = env.ok("af-spawn", &["script", "sc1"]);
    assert!(script.starts_with("#!/bin/sh"));
    assert!(script.contains("new-session -d -s agent-sc1 -n main"), "{script}");
    assert!(script.contains(r"'A=it'\''s'"), "{script}");
    // The script really builds the layout.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("AF_HOME", &env.home)
        .env("AF_TMUX_SOCKET", &env.socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    wait_for("the agent to run from the script", Duration::from_secs(5), || env.status("sc1") == "running");
    let hooks = String::from_utf8_lossy(&env.tmux(&["show-hooks", "-t", "=agent-sc1:"]).stdout).into_owned();
    assert!(hooks.contains("client-session-changed") && hooks.contains("top sc1"), "the monitor hook: {hooks}");
}

#[test]
fn the_seed_wrapper_shim_runs_an_agent() {
    let env = Env::new();
    let shim = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/agent-wrapper.sh");
    let mut c = std::process::Command::new("bash");
    env.apply(&mut c);
    let path = format!("{}:{}", util::bin("af-wrap").parent().unwrap().display(), std::env::var("PATH").unwrap());
    c.arg(&shim).args(["worker-001", "worker"]).env("PATH", path).stdout(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_for("the shim's agent to run", Duration::from_secs(10), || {
        env.run("af-spawn", &["show", "worker-001", "--json"], None).status.success()
            && env.status("worker-001") == "running"
    });
    assert_eq!(env.show("worker-001")["config"]["type"], "worker");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert_eq!(env.status("worker-001"), "stopped");
}

#[test]
fn logs_show_what_the_agent_printed_and_follow_it() {
    let env = Env::new();
    env.worker("lg", "echo hello-from-the-agent; i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done");
    wait_for("the first line in the log", Duration::from_secs(5), || {
        env.ok("af-spawn", &["logs", "lg"]).contains("hello-from-the-agent")
    });
    assert_eq!(env.ok("af-spawn", &["logs", "-n", "1", "lg"]).lines().count(), 1);
    let wrap_log = env.ok("af-spawn", &["logs", "--supervisor", "lg"]);
    assert!(wrap_log.is_empty() || !wrap_log.contains("hello-from-the-agent"), "the supervisor's log is separate");
    // --follow keeps printing new lines.
    let mut c = env.cmd("af-spawn");
    c.args(["logs", "--follow", "-n", "0", "lg"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    use std::io::Read;
    while !String::from_utf8_lossy(&seen).contains("tick-") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "follow ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    // Ctrl-C ends it with 130, as every wait.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", util::describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "af-spawn: interrupted by SIGINT while waiting\n");
}

/// A record in the spool that does not parse is a system failure (111) naming its file, not a
/// usage error; a malformed config from the user still is one (2).
#[test]
fn a_corrupt_record_exits_111_naming_its_file() {
    let env = Env::new();
    env.create(r#"{"id":"w1","type":"worker"}"#);
    env.create(r#"{"id":"w2","type":"worker"}"#);
    let state = env.home.join("agents/w1/state.json");
    std::fs::write(&state, "garbage\n").unwrap();
    for args in [&["show", "w1"][..], &["show", "w1", "--json"], &["start", "w1"]] {
        let err = env.fails("af-spawn", args, None, 111);
        assert!(err.contains(&format!("corrupt record {}", state.display())), "{args:?}: {err}");
    }
    let config = env.home.join("agents/w2/config.json");
    std::fs::write(&config, r#"{"id":"w2","type":"robot"}"#).unwrap();
    let err = env.fails("af-spawn", &["show", "w2"], None, 111);
    assert!(err.contains(&config.display().to_string()), "{err}");
    env.fails("af-spawn", &["create"], Some("{not json"), 2);
    env.fails("af-spawn", &["create"], Some(r#"{"id":"w3","type":"robot"}"#), 2);
}

#[test]
fn restarting_the_only_agent_over_and_over_never_trips_on_the_exiting_server() {
    let env = Env::new();
    env.worker("solo", "exec sleep 300");
    for _ in 0..10 {
        env.ok("af-spawn", &["stop", "--force", "solo"]);
        env.ok("af-spawn", &["start", "solo"]);
        env.ok("af-spawn", &["restart", "solo"]);
    }
    assert_eq!(env.status("solo"), "running");
}

#[test]
fn starting_many_at_once_builds_every_session_and_reports_each_failure() {
    let env = Env::new();
    let batch: String =
        (0..12).map(|i| format!("{{\"id\":\"b{i}\",\"type\":\"worker\",\"command\":[\"sleep\",\"300\"]}}\n")).collect();
    env.ok_in("af-spawn", &["create", "--start"], Some(&batch));
    for row in env.json("af-spawn", &["ls"]).as_array().unwrap() {
        assert_eq!(row["status"], "running", "{row}");
        assert!(env.has_session(&format!("agent-{}", row["id"].as_str().unwrap())));
    }
    let ids: Vec<String> = (0..12).map(|i| format!("b{i}")).collect();
    let mut args = vec!["stop", "--force"];
    args.extend(ids.iter().map(String::as_str));
    env.ok("af-spawn", &args);
    // A session of someone else's in the middle of the batch, and a program that is missing.
    assert!(env.tmux(&["new-session", "-d", "-s", "agent-b5", "sleep", "300"]).status.success());
    env.create(r#"{"id":"nope","type":"worker","command":["/no/such/program"]}"#);
    let mut args = vec!["start"];
    args.extend(ids.iter().map(String::as_str));
    args.push("nope");
    let out = env.run("af-spawn", &args, None);
    assert!(!out.status.success(), "{}", util::describe(&out));
    for id in &ids {
        let want = if id == "b5" { "failed" } else { "running" };
        assert_eq!(env.status(id), want, "{id}");
    }
    assert_eq!(env.status("nope"), "failed");
    // Nothing is started when one of the agents is already running.
    env.ok("af-spawn", &["stop", "b0"]);
    env.fails("af-spawn", &["start", "b0", "b1"], None, 4);
    assert_eq!(env.status("b0"), "stopped");
}

#[test]
fn keep_going_starts_every_agent_it_can_and_reports_each_failure_on_a_line() {
    let env = Env::new();
    let gone = env.work.join("gone");
    std::fs::create_dir(&gone).unwrap();
    let batch = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        r#"{"id":"k1","type":"worker","command":["sleep","300"]}"#,
        r#"{"id":"up","type":"worker","command":["sleep","300"]}"#,
        serde_json::json!({"id": "nowhere", "type": "worker", "workdir": gone, "command": ["sleep", "300"]}),
        r#"{"id":"nope","type":"worker","command":["/no/such/program"]}"#,
        r#"{"id":"k2","type":"worker","command":["sleep","300"]}"#,
    );
    env.ok_in("af-spawn", &["create"], Some(&batch));
    env.ok("af-spawn", &["start", "up"]);
    std::fs::remove_dir(&gone).unwrap();
    let all = ["k1", "up", "nowhere", "nope", "k2"];
    // Without --keep-going the batch stops at the first agent it cannot start, before any other.
    env.fails("af-spawn", &[&["start"][..], &all].concat(), None, 4);
    assert_eq!(env.status("k1"), "created");
    // With it: the three failures (already running, no workdir, no program) one JSON line each on
    // stderr, in the order given; the others run; nothing is left starting.
    let out = env.run("af-spawn", &[&["start", "--keep-going", "--json"][..], &all].concat(), None);
    assert_eq!(out.status.code(), Some(4), "the first failure's code: {}", util::describe(&out));
    let errors: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = errors.iter().map(|e| e["error"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["conflict", "invalid", "agent-failed"], "{}", util::describe(&out));
    for (e, id) in errors.iter().zip(["up", "nowhere", "nope"]) {
        assert!(e["message"].as_str().unwrap().contains(&format!("'{id}'")), "{e}");
    }
    let started: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = started.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["k1", "k2"]);
    let status: Vec<String> = all.iter().map(|id| env.status(id)).collect();
    assert_eq!(status, ["running", "running", "created", "failed", "running"]);
    env.ok("af-spawn", &["stop", "--force", "k1", "up", "k2"]);
}

fn windows(env: &Env, session: &str) -> Vec<String> {
    let out = env.tmux(&["list-windows", "-t", &format!("={session}"), "-F", "#{window_name}"]);
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

#[test]
fn attach_opens_the_monitor_window_once() {
    let env = Env::new();
    env.create(r#"{"id":"m1","type":"worker","projectId":"p","command":["sleep","300"]}"#);
    env.ok("af-spawn", &["start", "m1"]);
    assert_eq!(windows(&env, "agent-m1"), ["main"]);
    // `af-spawn attach` on a terminal: script(1) gives it one.
    let attach = |env: &Env| {
        let mut c = Command::new("script");
        c.args(["-qfc", &format!("{} attach m1", bin("af-spawn").display()), "/dev/null"]);
        env.apply(&mut c);
        c.env("TERM", "xterm").stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().expect("script(1) from util-linux")
    };
    let mut first = attach(&env);
    wait_for("the monitor window", Duration::from_secs(5), || windows(&env, "agent-m1") == ["main", "monitor"]);
    wait_for("af-spawn top in it", Duration::from_secs(5), || {
        let out = env.tmux(&["capture-pane", "-p", "-t", "=agent-m1:monitor"]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.contains("agent m1 (worker, project p)") && text.contains("sleep 300")
    });
    // A second client, and a switch back into the session, leave one monitor window.
    let mut second = attach(&env);
    wait_for("two clients", Duration::from_secs(5), || {
        String::from_utf8_lossy(&env.tmux(&["list-clients", "-F", "#{client_name}"]).stdout).lines().count() == 2
    });
    env.tmux(&["new-session", "-d", "-s", "elsewhere", "sleep", "300"]);
    let client = String::from_utf8_lossy(&env.tmux(&["list-clients", "-F", "#{client_name}"]).stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    env.tmux(&["switch-client", "-c", &client, "-t", "=elsewhere"]);
    env.tmux(&["switch-client", "-c", &client, "-t", "=agent-m1"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(windows(&env, "agent-m1"), ["main", "monitor"]);
    // Closed, it comes back on the next look.
    env.tmux(&["kill-window", "-t", "=agent-m1:monitor"]);
    env.tmux(&["switch-client", "-c", &client, "-t", "=elsewhere"]);
    env.tmux(&["switch-client", "-c", &client, "-t", "=agent-m1"]);
    wait_for("the monitor window again", Duration::from_secs(5), || windows(&env, "agent-m1") == ["main", "monitor"]);
    env.tmux(&["detach-client", "-a", "-t", &client]);
    env.tmux(&["detach-client", "-t", &client]);
    for child in [&mut first, &mut second] {
        wait_for("the clients to leave", Duration::from_secs(5), || child.try_wait().ok().flatten().is_some());
    }
    env.ok("af-spawn", &["stop", "m1"]);
}

/// The race of a killed `start`: its af-wrap is on its way (here: held before it takes its lock)
/// when a `stop` finds no supervisor and records the agent stopped. A stop is final: the late
/// af-wrap must find its start overtaken, run nothing and write nothing.
#[test]
fn a_stop_is_final_for_an_af_wrap_still_on_its_way() {
    let mut env = Env::new();
    let ran = env.work.join("ran");
    let config = serde_json::json!({"id": "late", "type": "worker",
        "command": ["sh", "-c", format!("touch {}; sleep 30", ran.display())]});
    env.create(&config.to_string());
    env.set_env("AF_TEST_HOLD", "before-lock");
    env.ok("af-spawn", &["start", "--no-wait", "late"]);
    let dir = env.home.join("agents/late");
    let held = |pid: Option<u32>| {
        std::fs::read_dir(&dir).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("hold.before-lock.").is_some_and(|p| pid.is_none_or(|want| p == want.to_string()))
        })
    };
    wait_for("the session's af-wrap to reach its hold", Duration::from_secs(10), || held(None));
    let generation = env.show("late")["state"]["generation"].as_u64().expect("a generation");
    // The launch still in flight: an af-wrap for the same start that the stop cannot see (tmux
    // has not made its session yet, so no process carries the agent's identity).
    let mut late = env.cmd("af-wrap");
    late.arg("late")
        .env("AF_START_GENERATION", generation.to_string())
        .env("AF_TEST_HOLD", "before-lock")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let late = late.spawn().unwrap();
    let marker = dir.join(format!("hold.before-lock.{}", late.id()));
    wait_for("the late af-wrap to reach its hold", Duration::from_secs(10), || marker.exists());
    env.ok("af-spawn", &["stop", "late"]);
    assert_eq!(env.status("late"), "stopped");
    std::fs::remove_file(&marker).unwrap();
    let out = late.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "the late af-wrap: {}", util::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("overtaken"), "{}", util::describe(&out));
    assert_eq!(env.status("late"), "stopped", "the stop stands");
    assert!(!ran.exists(), "the agent's command never ran");
    let log = util::read(&env.home.join("events.log"));
    let after_stop = log.rsplit("\"agent.stopped\"").next().unwrap_or("");
    assert!(!after_stop.contains("agent.running"), "nothing ran after the stop: {log}");
}

/// With `--json`, an error is one JSON line on stderr, `{"error": KIND, "message": …}`, beside
/// the documented exit code: what a script branches on, never the wording.
#[test]
fn json_errors_are_one_line_with_a_kind() {
    let env = Env::new();
    let cases: [(&str, &[&str], i32, &str); 4] = [
        ("af-spawn", &["show", "nobody", "--json"], 3, "not-found"),
        ("af-spawn", &["--json", "show", "../x"], 2, "invalid"),
        ("af-spawn", &["stop", "--json", "--bogus", "x"], 2, "usage"),
        ("af-checkpoint", &["ls", "nobody", "--json"], 3, "not-found"),
    ];
    for (program, args, code, kind) in cases {
        let out = env.run(program, args, None);
        assert_eq!(out.status.code(), Some(code), "{program} {args:?}: {}", util::describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        let doc: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON error");
        assert_eq!(doc["error"], kind, "{program} {args:?}: {doc}");
        assert!(doc["message"].as_str().is_some_and(|m| !m.is_empty()), "{doc}");
    }
    // Without --json, the one line a person reads.
    let out = env.run("af-spawn", &["show", "nobody"], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("af-spawn: no agent 'nobody'"),
        "{}",
        util::describe(&out)
    );
}

/// The pid of this test's tmux server.
fn tmux_server_pid(env: &Env) -> i32 {
    let out = env.tmux(&["display-message", "-p", "#{pid}"]);
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("the tmux server's pid")
}

/// Sends SIGCONT to a stopped process when dropped, even when the test fails (a stopped tmux
/// server would hang the clean-up's kill-server).
struct Continue(i32);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGCONT);
    }
}

/// A wedged (SIGSTOPped) tmux server hangs nothing: every tmux call has a deadline, and a verb
/// that needs tmux ends within 15 s with one line naming tmux and exit 5.
#[test]
fn a_wedged_tmux_server_hangs_no_verb() {
    let mut env = Env::new();
    env.set_env("AF_TMUX_TIMEOUT", "1s");
    env.worker("w1", "sleep 600");
    env.create(r#"{"id":"w2","type":"worker","command":["sleep","600"]}"#);
    let server = tmux_server_pid(&env);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let _cont = Continue(server);
    let cases: [(&str, &[&str]); 3] =
        [("af-spawn", &["start", "w2"]), ("af-spawn", &["gc"]), ("af-health", &["check"])];
    for (program, args) in cases {
        let began = std::time::Instant::now();
        let out = env.run(program, args, None);
        let took = began.elapsed();
        assert!(took < Duration::from_secs(15), "{program} {args:?} took {took:?}");
        assert_eq!(out.status.code(), Some(5), "{program} {args:?}: {}", util::describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("tmux did not answer"), "{program} {args:?}: {stderr}");
    }
    // rm needs tmux only to kill a session it may have: it removes the agent without hanging.
    let began = std::time::Instant::now();
    env.ok("af-spawn", &["rm", "--force", "w2"]);
    assert!(began.elapsed() < Duration::from_secs(15));
}

/// A tmux server that dies under running agents is a crash, not a stop: the agents are failed
/// ("the tmux server died"), and af-health's ladder starts them again on a new server.
#[test]
fn a_dead_tmux_server_fails_its_agents_and_the_ladder_restarts_them() {
    let mut env = Env::new();
    env.set_env("AF_HEALTH_BACKOFF", "10ms");
    env.worker("w1", "sleep 600");
    let first = env.show("w1")["state"]["pid"].as_u64().unwrap();
    let server = tmux_server_pid(&env);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("w1 to be failed", Duration::from_secs(15), || env.status("w1") == "failed");
    assert_eq!(env.show("w1")["state"]["reason"], "the tmux server died");
    let checked = env.run("af-health", &["check"], None);
    assert_eq!(checked.status.code(), Some(1), "a dead agent is unhealthy: {}", util::describe(&checked));
    wait_for("the ladder to start w1 again", Duration::from_secs(30), || {
        let _ = env.run("af-health", &["check", "--recover", "w1"], None);
        env.status("w1") == "running"
    });
    assert_ne!(env.show("w1")["state"]["pid"].as_u64().unwrap(), first, "a new process");
    assert!(env.has_session("agent-w1"), "on a new tmux server");
}
