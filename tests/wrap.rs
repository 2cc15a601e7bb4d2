//! af-wrap: resource limits, heartbeats, the control pipe, signals, one supervisor per agent.

mod util;

use af_spool::control::{self, Request};
use af_spool::{AgentId, Spool};
use std::time::Duration;
use util::{Env, wait_for};

/// A process that touches `mb` megabytes and then sleeps.
fn hog(mb: u32) -> String {
    format!(r#"python3 -c "b = b'x' * ({mb} << 20); import time; time.sleep(300)""#)
}

/// Whether this process may make the cgroups af-wrap makes: v2 when `cgroup.controllers` is at the
/// root (af-wrap's test too), else v1's memory and cpu hierarchies.
fn cgroups_writable() -> bool {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let probe = |hierarchy: &str| {
        let dir = root.join(hierarchy).join(format!("af-probe-{}", std::process::id()));
        let made = std::fs::create_dir(&dir).is_ok();
        let _ = std::fs::remove_dir(&dir);
        made
    };
    if root.join("cgroup.controllers").exists() { probe("") } else { probe("memory") && probe("cpu") }
}

#[test]
fn a_memory_hog_is_stopped_at_its_cgroup_limit() {
    if !cgroups_writable() {
        util::skip(
            util::Need::Cgroups,
            "no writable cgroup under /sys/fs/cgroup (run as root, with cgroups mounted read-write)",
        );
        return;
    }
    let env = Env::new();
    let config = serde_json::json!({"id": "hog", "type": "worker",
        "resourceLimits": {"memory": "64MB", "cpu": "0.5"}, "command": ["sh", "-c", hog(256)]});
    env.create(&config.to_string());
    env.ok("af-spawn", &["start", "hog"]);
    wait_for("the hog to be killed", Duration::from_secs(20), || env.status("hog") == "failed");
    let state = env.show("hog")["state"].clone();
    let limits = &state["limits"];
    assert!(limits["memory"].as_str().unwrap().starts_with("cgroup"), "{state}");
    assert!(limits["cpu"].as_str().unwrap().starts_with("cgroup"), "{state}");
    assert!(state["reason"].as_str().unwrap().contains("memory limit"), "{state}");
    let cgroups: Vec<String> =
        limits["cgroups"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert!(!cgroups.is_empty());
    wait_for("its cgroups to be removed", Duration::from_secs(5), || {
        cgroups.iter().all(|c| !std::path::Path::new(c).exists())
    });
}

#[test]
fn without_cgroups_memory_falls_back_to_rlimit_and_cpu_to_affinity() {
    let mut env = Env::new();
    env.set_env("AF_CGROUP", "off");
    let config = serde_json::json!({"id": "rl", "type": "worker",
        "resourceLimits": {"memory": "64MB", "cpu": "1"}, "command": ["sh", "-c", hog(256)]});
    env.create(&config.to_string());
    env.run("af-spawn", &["start", "rl"], None);
    wait_for("the hog to fail its allocation", Duration::from_secs(20), || env.status("rl") == "failed");
    let state = env.show("rl")["state"].clone();
    assert_eq!(state["limits"]["memory"], "rlimit-as", "{state}");
    assert_eq!(state["limits"]["cpu"], "affinity", "{state}");
    assert_eq!(state["exitCode"], 1, "python's MemoryError: {state}");

    let config = serde_json::json!({"id": "aff", "type": "worker", "resourceLimits": {"cpu": "1"},
        "command": ["sleep", "300"]});
    env.create(&config.to_string());
    env.ok("af-spawn", &["start", "aff"]);
    let pid = env.show("aff")["state"]["pid"].as_u64().unwrap();
    let status = util::read(std::path::Path::new(&format!("/proc/{pid}/status")));
    let allowed = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")).unwrap();
    let list = allowed.split(':').nth(1).unwrap().trim();
    assert!(!list.contains(',') && !list.contains('-'), "one CPU only: {allowed}");
}

#[test]
fn heartbeats_describe_the_process_tree() {
    let env = Env::new();
    env.worker("hb", "sleep 300 & sleep 300 & wait");
    let first = env.show("hb")["heartbeat"]["time"].as_str().unwrap().to_owned();
    wait_for("a newer heartbeat with both children", Duration::from_secs(5), || {
        let beat = env.show("hb")["heartbeat"].clone();
        beat["time"].as_str() != Some(first.as_str()) && beat["processes"].as_u64() == Some(3)
    });
    let beat = env.show("hb")["heartbeat"].clone();
    assert!(beat["rssBytes"].as_u64().unwrap() > 0);
    assert!(beat["uptimeMs"].as_u64().unwrap() > 0);
    assert_eq!(beat["wrapPid"], env.show("hb")["state"]["wrapPid"]);
    // Beats are rewritten in place: the same file (no new inode per beat), its count rising.
    let path = env.home.join("agents/hb/heartbeat.json");
    let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let (ino, seq) = (inode(), beat["seq"].as_u64().unwrap());
    wait_for("two more beats", Duration::from_secs(10), || {
        env.show("hb")["heartbeat"]["seq"].as_u64() >= Some(seq + 2)
    });
    assert_eq!(inode(), ino, "a beat replaced the heartbeat file");
}

#[test]
fn af_wrap_answers_pings_and_refuses_a_second_supervisor() {
    let env = Env::new();
    env.worker("p1", "exec sleep 300");
    let spool = Spool::open(&env.home).unwrap();
    let id = AgentId::new("p1").unwrap();
    let reply = control::ask(&spool, &id, Request::Ping, Duration::from_secs(5)).unwrap();
    assert!(reply.ok);
    let err = env.fails("af-wrap", &["p1"], None, 4);
    assert!(err.contains("already has a supervisor"), "{err}");
    assert_eq!(env.status("p1"), "running");
    // Garbage on the control pipe does not hurt it.
    std::fs::write(spool.control_path(&id), b"not json\n{\"op\":\"explode\"}\n").unwrap();
    let reply = control::ask(&spool, &id, Request::Ping, Duration::from_secs(5)).unwrap();
    assert!(reply.ok);
}

#[test]
fn sigterm_and_sighup_to_af_wrap_stop_the_agent_gracefully() {
    let env = Env::new();
    for (id, sig) in [("t1", nix::sys::signal::Signal::SIGTERM), ("t2", nix::sys::signal::Signal::SIGHUP)] {
        env.worker(id, "exec sleep 300");
        let show = env.show(id);
        let wrap = show["state"]["wrapPid"].as_u64().unwrap() as i32;
        let pid = show["state"]["pid"].as_u64().unwrap() as u32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(wrap), sig).unwrap();
        wait_for("stopped", Duration::from_secs(5), || env.status(id) == "stopped");
        assert!(!util::alive(pid));
        assert_eq!(env.show(id)["state"]["reason"], "stopped by request");
    }
}

#[test]
fn killing_the_tmux_session_stops_the_agent() {
    let env = Env::new();
    env.worker("ks", "exec sleep 300");
    let pid = env.show("ks")["state"]["pid"].as_u64().unwrap() as u32;
    assert!(env.tmux(&["kill-session", "-t", "=agent-ks"]).status.success());
    wait_for("the agent to stop", Duration::from_secs(5), || !util::alive(pid) && env.status("ks") != "running");
}

#[test]
fn idle_agents_run_without_a_command() {
    let env = Env::new();
    env.create(r#"{"id":"idle","type":"worker"}"#);
    env.ok("af-spawn", &["start", "idle"]);
    assert_eq!(env.status("idle"), "running");
    assert!(env.show("idle")["state"]["pid"].is_null());
    env.ok("af-spawn", &["stop", "idle"]);
    assert_eq!(env.status("idle"), "stopped");
}

#[test]
fn secrets_reach_the_agents_process_and_nothing_else() {
    let env = Env::new();
    let marker = format!("s3cr3t-{}-{}", std::process::id(), af_spool::time::Timestamp::now().0);
    let file = env.work.join("token.txt");
    std::fs::write(&file, format!("{marker}\n")).unwrap();
    // The process compares what it got with the file (its command holds no value).
    let config = serde_json::json!({
        "id": "sec", "type": "worker", "projectId": "p",
        "command": ["sh", "-c", "[ \"$MY_TOKEN\" = \"$(cat token.txt)\" ] && echo same > got; exec sleep 300"],
        "secrets": {"MY_TOKEN": {"file": file}},
        "environment": {"SERVICE_API_KEY": "plain-value-1"},
    });
    let out = env.run("af-spawn", &["create", "--start"], Some(&config.to_string()));
    assert!(out.status.success(), "{}", util::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SERVICE_API_KEY (sec) looks like a secret") && err.lines().count() == 1, "{err}");
    wait_for("the process saw its secret", Duration::from_secs(20), || env.work.join("got").exists());
    // A task gets it too (from a worker that takes tasks).
    let tasker = serde_json::json!({"id": "tasker", "type": "worker", "projectId": "p", "secrets": {"MY_TOKEN": {"file": file}}});
    env.ok_in("af-spawn", &["create", "--start"], Some(&tasker.to_string()));
    let answer = env.ok(
        "af-bus",
        &[
            "request",
            "--to",
            "tasker",
            "--timeout",
            "20",
            r#"{"command": ["sh", "-c", "[ \"$MY_TOKEN\" = \"$(cat token.txt)\" ] && echo 42"]}"#,
        ],
    );
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer).unwrap()["stdout"], 42, "{answer}");
    // Shown by name only; a plain value that looks like a secret is masked.
    let shown = env.ok("af-spawn", &["show", "sec", "--json"]);
    assert!(!shown.contains(&marker) && shown.contains("MY_TOKEN") && !shown.contains("plain-value-1"), "{shown}");
    assert_eq!(env.show("sec")["config"]["environment"]["SERVICE_API_KEY"], "********");
    // Nowhere in the spool (records, logs, events, the bus), nor in any af-* process or tmux.
    env.ok("af-health", &["check", "sec"]);
    assert_eq!(util::files_holding(&env.home, marker.as_bytes()), Vec::<std::path::PathBuf>::new());
    for pid in env.processes() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.starts_with("af-") || comm.starts_with("tmux") {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            assert!(!environ.windows(marker.len()).any(|w| w == marker.as_bytes()), "{comm} {pid} holds the secret");
        }
    }
    env.ok("af-spawn", &["stop", "sec", "tasker"]);
    // A secret that cannot be read fails the start, naming the secret and its file.
    std::fs::remove_file(&file).unwrap();
    env.ok("af-spawn", &["reset", "sec"]);
    let err = env.fails("af-spawn", &["start", "sec"], None, 111);
    assert!(err.contains("secret MY_TOKEN: cannot read") && err.contains("token.txt"), "{err}");
    // And a relative file or a bad name is refused at create.
    let bad = r#"{"id":"b","type":"worker","secrets":{"MY-TOKEN":{"file":"/x"}}}"#;
    assert!(env.fails("af-spawn", &["create"], Some(bad), 2).contains("not a variable name"));
    let bad = r#"{"id":"b","type":"worker","secrets":{"T":{"file":"rel/x"}}}"#;
    assert!(env.fails("af-spawn", &["create"], Some(bad), 2).contains("absolute path"));
}
