//! af-health against real agents (af-spawn, af-wrap, tmux) with a 1 s interval: kill -9 caught
//! and restarted, a crash loop climbing the whole ladder, a hung supervisor, a memory hog, two
//! watch loops, kill -9 of af-health itself, alert hooks, and the error cases.

mod util;

use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::Duration;
use util::freezer::Freezer;
use util::{Env, alive, describe, wait_for};

/// A background `af-health watch`, killed (and reaped) on drop.
struct Watch(Child);

impl Watch {
    fn start(env: &Env, extra: &[&str]) -> Watch {
        let mut c = env.cmd("af-health");
        c.args(["watch", "--interval", "1"]).args(extra).stdout(Stdio::null()).stderr(Stdio::null());
        let child = c.spawn().expect("starting af-health watch");
        let pid = child.id();
        // Up once its listener is in the events fifodir.
        wait_for("af-health watch to subscribe", Duration::from_secs(10), || {
            std::fs::read_dir(env.home.join("events.d")).into_iter().flatten().flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&format!("fifo.{pid}."))
            }) || !alive(pid)
        });
        assert!(alive(pid), "af-health watch died at once");
        Watch(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A freezer cgroup, or a skip (see [`util::skip`]) where none can be made.
fn freezer(name: &str) -> Option<Freezer> {
    let made = Freezer::make(name);
    if made.is_none() {
        util::skip(
            util::Need::Cgroups,
            "no writable cgroup freezer (v2 cgroup.freeze or the v1 freezer): run as root, with cgroups mounted read-write",
        );
    }
    made
}

fn base_env() -> Env {
    let mut env = Env::new();
    env.set_env("AF_HEALTH_STALE", "2s");
    env.set_env("AF_HEALTH_PING_TIMEOUT", "500ms");
    env.set_env("AF_HEALTH_SETTLE", "1s");
    env
}

/// `af-health ARGS --json`, whatever its exit code: (code, document).
fn health_json(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let out = env.run("af-health", &a, None);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", describe(&out)));
    (out.status.code().unwrap_or(-1), doc)
}

fn events(env: &Env, kind: &str, agent: &str) -> Vec<Value> {
    std::fs::read_to_string(env.home.join("events.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == kind && e["agent"] == agent)
        .collect()
}

fn millis(t: &Value) -> u64 {
    let s = t.as_str().expect("a time");
    // 2026-11-24T14:18:03.123Z: compare within a day, which is all a test needs.
    let hms: Vec<f64> = s[11..23].split(':').map(|x| x.parse().unwrap()).collect();
    ((hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]) * 1000.0).round() as u64
}

fn pid_of(env: &Env, id: &str) -> u32 {
    env.show(id)["state"]["pid"].as_u64().expect("a pid") as u32
}

fn check_of<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["checks"].as_array()?.iter().find(|c| c["name"] == name)
}

/// The levels of the alerts of one agent and check, in the order they were logged.
fn alert_levels(env: &Env, agent: &str, check: &str) -> Vec<String> {
    let all = env.json("af-health", &["alerts", "--all"]);
    all.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["agent"] == agent && a["check"] == check && a["acknowledged"] == false)
        .map(|a| a["level"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn kill9_of_the_agent_is_caught_and_restarted_within_two_intervals() {
    let env = base_env();
    env.worker("w1", "exec sleep 300");
    let old = pid_of(&env, "w1");
    let _watch = Watch::start(&env, &[]);
    wait_for("a first healthy pass", Duration::from_secs(10), || {
        std::fs::read_to_string(env.home.join("agents/w1/health.log")).is_ok_and(|h| h.contains("\"healthy\""))
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    // Two intervals, plus the start itself (tmux, af-wrap) on a busy machine.
    wait_for("w1 restarted", Duration::from_secs(15), || {
        let s = env.show("w1");
        s["state"]["status"] == "running" && s["state"]["pid"].as_u64().is_some_and(|p| p as u32 != old)
    });
    assert_eq!(events(&env, "health.restart", "w1").len(), 1);
    wait_for("the recovery alert", Duration::from_secs(10), || {
        alert_levels(&env, "w1", "process") == ["warning", "recovery"]
    });
    let open = env.json("af-health", &["alerts"]);
    assert_eq!(open, serde_json::json!([]), "recovery closed it");
    let (code, doc) = health_json(&env, &["check", "w1"]);
    assert_eq!((code, doc["health"].as_str()), (0, Some("healthy")), "{doc}");
}

/// A SIGTERM to af-health while it waits for a ping ends the pass (exit 130) with no alert about
/// the agent; an alert of a check that a healthy pass no longer runs (the ping turned off) closes
/// with a recovery notice through every route: alert log, event log, bus topics, alert.d hooks.
#[test]
fn a_signal_is_no_alert_and_a_healthy_agent_closes_every_open_alert() {
    let env = base_env();
    let Some(mut freezer) = freezer("closing-alerts") else { return };
    std::fs::create_dir_all(env.home.join("alert.d/recovery")).unwrap();
    let hook = env.home.join("alert.d/recovery/10-save");
    std::fs::write(&hook, format!("#!/bin/sh\ncat >> {}\n", env.path("recovered.json").display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.ok("af-bus", &["subscribe", "rec", "--topic", "agent.recovered"]);
    env.worker("f1", "exec sleep 300");
    let wrap = env.show("f1")["state"]["wrapPid"].as_u64().unwrap();
    freezer.freeze(wrap as u32);
    // SIGTERM while the pass waits for f1's ping: the pass ends, and f1 is not blamed.
    let mut c = env.cmd("af-health");
    c.args(["check", "f1"]).env("AF_HEALTH_PING_TIMEOUT", "60s").stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let pid = child.id();
    wait_for("af-health to wait for the ping", Duration::from_secs(10), || env.waits(pid));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert_eq!(env.json("af-health", &["alerts", "--all"]), serde_json::json!([]), "no alert for af-health's own end");
    // A ping unanswered: the response alert opens.
    let (code, doc) = health_json(&env, &["check", "f1"]);
    assert_eq!((code, check_of(&doc["agents"][0], "response").unwrap()["level"].as_str()), (1, Some("critical")));
    freezer.thaw();
    // Healthy again, with the ping turned off: the response alert closes all the same.
    wait_for("the response alert to close", Duration::from_secs(15), || {
        let mut c = env.cmd("af-health");
        c.args(["check", "f1"]).env("AF_HEALTH_NO_PING", "true").output().unwrap();
        env.json("af-health", &["alerts"]) == serde_json::json!([])
    });
    assert_eq!(alert_levels(&env, "f1", "response"), ["critical", "recovery"]);
    let recovered = events(&env, "agent.recovered", "f1");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["detail"]["message"], "response recovered: the agent is healthy", "{recovered:?}");
    let m = env.json("af-bus", &["recv", "rec"]);
    assert_eq!((m["payload"]["check"].as_str(), m["payload"]["level"].as_str()), (Some("response"), Some("recovery")));
    wait_for("the recovery hook", Duration::from_secs(10), || env.path("recovered.json").exists());
    let told: Value = serde_json::from_str(&util::read(&env.path("recovered.json"))).unwrap();
    assert_eq!((told["agent"].as_str(), told["level"].as_str()), (Some("f1"), Some("recovery")));
}

#[test]
fn a_crash_loop_climbs_the_whole_ladder_then_recovers_after_reset() {
    let env = base_env();
    let config = serde_json::json!({"id": "loop", "type": "worker", "projectId": "test",
        "command": ["sh", "-c", "if [ -f ok ]; then exec sleep 300; fi; exit 1"]});
    env.create(&config.to_string());
    // The third rung rolls back to this checkpoint (it does not hold the file that would fix the
    // agent, so the ladder goes on to its last rung).
    std::fs::write(env.work.join("notes.txt"), "as checkpointed").unwrap();
    let ckpt = env.ok("af-checkpoint", &["create", "loop", "-m", "last known state"]).trim().to_owned();
    std::fs::write(env.work.join("notes.txt"), "changed since").unwrap();
    let _watch = Watch::start(&env, &[]);
    let _ = env.run("af-spawn", &["start", "loop"], None);
    wait_for("the ladder to give up", Duration::from_secs(40), || !events(&env, "health.failed", "loop").is_empty());
    let exits = events(&env, "agent.exited", "loop");
    let restarts = events(&env, "health.restart", "loop");
    let rollbacks = events(&env, "health.rollback", "loop");
    let failed = events(&env, "health.failed", "loop");
    assert_eq!(
        (exits.len(), restarts.len(), rollbacks.len(), failed.len()),
        (4, 3, 1, 1),
        "exits {exits:?} restarts {restarts:?}"
    );
    // Delays of 1 s, 2 s, then 4 s from each exit to its rung: restart, restart, rollback and start.
    let gaps: Vec<u64> = (0..3).map(|i| millis(&restarts[i]["time"]) - millis(&exits[i]["time"])).collect();
    // Never early; late by at most a watch pass and a loaded machine's scheduling (1.5 s).
    for (gap, want) in gaps.iter().zip([1000u64, 2000, 4000]) {
        assert!(
            gap * 10 >= want * 8 && *gap <= want + 1500,
            "delay {gap} ms, want {want} ms (-20 %, +1.5 s): {gaps:?}"
        );
    }
    assert_eq!(rollbacks[0]["detail"]["checkpoint"], ckpt.as_str(), "rolled back to the agent's checkpoint");
    assert_eq!(std::fs::read_to_string(env.work.join("notes.txt")).unwrap(), "as checkpointed", "the tree came back");
    let show = env.show("loop");
    assert_eq!(show["state"]["status"], "failed");
    assert!(show["state"]["reason"].as_str().unwrap().contains("gave up"), "{show}");
    assert_eq!(alert_levels(&env, "loop", "process"), ["warning", "critical"]);
    // The ladder's steps are counted for the metrics: two restarts, a rollback, the give-up (each
    // counted after its event is logged, so the count is waited for).
    let wanted = [
        (r#"agentflow_ladder_steps_total{step="restart",outcome="ok"}"#, 2.0),
        (r#"agentflow_ladder_steps_total{step="rollback",outcome="ok"}"#, 1.0),
        (r#"agentflow_ladder_steps_total{step="give-up",outcome="done"}"#, 1.0),
        (r#"agentflow_alerts_raised_total{level="critical"}"#, 1.0),
    ];
    let counted = |metrics: &str| {
        wanted.map(|(series, _)| metrics.lines().find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()))
    };
    let mut metrics = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        metrics = env.ok("af-health", &["metrics"]);
        if counted(&metrics).iter().zip(&wanted).all(|(got, (_, want))| got.is_some_and(|g| g >= *want)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let relevant: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("agentflow_ladder") || l.starts_with("agentflow_alerts")).collect();
    for (got, (series, want)) in counted(&metrics).iter().zip(&wanted) {
        assert_eq!(
            *got,
            Some(*want),
            "{series}: {relevant:#?}\nevents: {:#?}",
            util::read(&env.home.join("events.log"))
        );
    }
    // Given up: nothing more happens, until a person resets it.
    let (code, _) = health_json(&env, &["check", "loop"]);
    assert_eq!(code, 1);
    std::fs::write(env.work.join("ok"), "").unwrap();
    env.ok("af-spawn", &["reset", "loop"]);
    wait_for("running again", Duration::from_secs(10), || env.status("loop") == "running");
    wait_for("the recovery alert", Duration::from_secs(10), || {
        alert_levels(&env, "loop", "process") == ["warning", "critical", "recovery"]
    });
    let trends = env.json("af-health", &["trends", "loop"]);
    assert!(trends[0]["unhealthy"].as_u64().unwrap() >= 1, "{trends}");
    assert!(trends[0]["healthy"].as_u64().unwrap() >= 1, "{trends}");
}

#[test]
fn an_agent_stopped_from_outside_is_caught_and_restarted() {
    let env = base_env();
    env.worker("h1", "exec sleep 300");
    let pid = pid_of(&env, "h1");
    let (code, doc) = health_json(&env, &["check"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(check_of(&doc["agents"][0], "response").unwrap()["level"], "ok");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGSTOP).unwrap();
    wait_for("the stopped process to be caught", Duration::from_secs(10), || {
        let (code, doc) = health_json(&env, &["check", "h1"]);
        code == 1 && check_of(&doc["agents"][0], "process").is_some_and(|c| c["level"] == "critical")
    });
    let open = env.json("af-health", &["alerts"]);
    assert!(open.as_array().unwrap().iter().any(|a| a["check"] == "process" && a["level"] == "critical"), "{open}");
    wait_for("a new process", Duration::from_secs(15), || {
        let _ = env.run("af-health", &["check", "--recover", "h1"], None);
        let s = env.show("h1");
        s["state"]["status"] == "running" && s["state"]["pid"].as_u64().is_some_and(|p| p as u32 != pid)
    });
    assert!(!alive(pid), "the stopped process was ended");
}

/// A supervisor that no longer heartbeats while it lives, frozen in a cgroup (v2 or v1: see
/// [`util::freezer`]).
#[test]
fn a_frozen_supervisor_is_caught_by_its_stale_heartbeat() {
    let env = base_env();
    let Some(mut freezer) = freezer("frozen-supervisor") else { return };
    env.worker("f1", "exec sleep 300");
    let wrap = env.show("f1")["state"]["wrapPid"].as_u64().unwrap();
    freezer.freeze(wrap as u32);
    let mut caught = Value::Null;
    wait_for("a stale heartbeat", Duration::from_secs(10), || {
        let (code, doc) = health_json(&env, &["check", "f1"]);
        caught = doc;
        code == 1 && check_of(&caught["agents"][0], "heartbeat").is_some_and(|c| c["level"] == "critical")
    });
    assert_eq!(check_of(&caught["agents"][0], "response").unwrap()["level"], "critical", "{caught}");
    assert_eq!(check_of(&caught["agents"][0], "process").unwrap()["level"], "ok", "its processes live");
    freezer.thaw();
    wait_for("fresh heartbeats again", Duration::from_secs(10), || health_json(&env, &["check", "f1"]).0 == 0);
}

#[test]
fn a_memory_hog_is_caught_at_warning_and_critical() {
    let mut env = base_env();
    env.set_env("AF_CGROUP", "off");
    env.set_env("AF_RLIMIT", "off");
    env.set_env("AF_HEALTH_ESCALATE", "3s");
    let hog = "b=b'x'*(200<<20); import time; time.sleep(300)";
    for (id, limit) in [("hog", "100MB"), ("near", "240MB")] {
        let c = serde_json::json!({"id": id, "type": "worker", "projectId": "mem",
            "resourceLimits": {"memory": limit}, "command": ["python3", "-c", hog]});
        env.create(&c.to_string());
        env.ok("af-spawn", &["start", id]);
    }
    wait_for("both over their thresholds", Duration::from_secs(20), || {
        let (_, doc) = health_json(&env, &["check", "--project", "mem"]);
        let level = |i: usize| check_of(&doc["agents"][i], "memory").map(|c| c["level"].clone());
        level(0) == Some("critical".into()) && level(1) == Some("warning".into())
    });
    let open = env.json("af-health", &["alerts"]);
    let levels: Vec<(String, String)> = open
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["check"] == "memory")
        .map(|a| (a["agent"].as_str().unwrap().into(), a["level"].as_str().unwrap().into()))
        .collect();
    assert!(levels.contains(&("hog".into(), "critical".into())), "{open}");
    assert!(levels.contains(&("near".into(), "warning".into())), "{open}");
    // Deduplicated: checking again raises nothing new.
    let before = env.json("af-health", &["alerts", "--all"]).as_array().unwrap().len();
    let (_, doc) = health_json(&env, &["check", "--project", "mem"]);
    assert!(doc["agents"][0].get("alerts").is_none(), "{doc}");
    assert_eq!(env.json("af-health", &["alerts", "--all"]).as_array().unwrap().len(), before);
    // A warning that persists becomes critical.
    wait_for("the warning to escalate", Duration::from_secs(10), || {
        let _ = health_json(&env, &["check", "--project", "mem"]);
        alert_levels(&env, "near", "memory") == ["warning", "critical"]
    });
    // A stopped agent's and a removed agent's alerts close with a recovery, at once: no pass
    // runs between the stop and the look. A pass after them closes nothing twice.
    env.ok("af-spawn", &["stop", "--force", "hog"]);
    env.ok("af-spawn", &["rm", "--force", "near"]);
    assert_eq!(env.json("af-health", &["alerts"]), serde_json::json!([]));
    let _ = health_json(&env, &["check"]);
    assert_eq!(env.json("af-health", &["alerts"]), serde_json::json!([]));
    // (The hog may pass through a warning while it allocates.)
    let hog = alert_levels(&env, "hog", "memory");
    assert_eq!(hog[hog.len() - 2..], ["critical", "recovery"], "{hog:?}");
    assert_eq!(alert_levels(&env, "near", "memory"), ["warning", "critical", "recovery"]);
}

#[test]
fn a_cpu_hog_is_caught() {
    let mut env = base_env();
    env.set_env("AF_CGROUP", "off");
    let c = serde_json::json!({"id": "spin", "type": "worker", "projectId": "cpu",
        "resourceLimits": {"cpu": "0.05"}, "command": ["sh", "-c", "while :; do :; done"]});
    env.create(&c.to_string());
    env.ok("af-spawn", &["start", "spin"]);
    wait_for("the cpu check to fail", Duration::from_secs(10), || {
        let (code, doc) = health_json(&env, &["check", "spin"]);
        code == 1 && check_of(&doc["agents"][0], "cpu").is_some_and(|c| c["level"] == "critical")
    });
    env.ok("af-spawn", &["stop", "--force", "spin"]);
}

#[test]
fn two_watch_loops_never_double_restart() {
    let env = base_env();
    env.worker("d1", "exec sleep 300");
    let old = pid_of(&env, "d1");
    let _a = Watch::start(&env, &[]);
    let _b = Watch::start(&env, &[]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    // Generous waits (they end as soon as the condition holds) for a loaded machine.
    wait_for("d1 restarted", Duration::from_secs(30), || {
        let s = env.show("d1");
        s["state"]["status"] == "running" && s["state"]["pid"].as_u64().is_some_and(|p| p as u32 != old)
    });
    // Let both loops run a few more passes over the restarted agent.
    let passes = |env: &Env| util::read(&env.home.join("agents/d1/health.log")).lines().count();
    let seen = passes(&env);
    wait_for("more passes", Duration::from_secs(30), || passes(&env) >= seen + 4);
    assert_eq!(events(&env, "health.restart", "d1").len(), 1);
    assert_eq!(env.show("d1")["state"]["restarts"].as_u64(), Some(1), "restarted once, not twice");
    assert_eq!(events(&env, "agent.running", "d1").len(), 2);
}

#[test]
fn kill9_of_af_health_at_any_moment_leaves_the_spool_consistent() {
    let mut env = base_env();
    // Every round kills the agent again: keep the ladder on its first rung.
    env.set_env("AF_HEALTH_MAX_FAILURES", "100");
    env.set_env("AF_HEALTH_BACKOFF_MAX", "1s");
    env.worker("k1", "exec sleep 300");
    for round in 0..6u64 {
        wait_for("k1 running", Duration::from_secs(15), || env.status("k1") == "running");
        let pid = pid_of(&env, "k1");
        let mut watch = Watch::start(&env, &[]);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        // Kill af-health at a different moment of its pass each round (not a synchronization).
        std::thread::sleep(Duration::from_millis(150 * round + 100));
        watch.kill9();
        // Every record still reads.
        for f in ["agents/k1/health.json", "agents/k1/state.json"] {
            if let Ok(text) = std::fs::read_to_string(env.home.join(f)) {
                serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{f} corrupt after kill -9: {e}"));
            }
        }
        let _ = env.json("af-health", &["alerts", "--all"]);
        let _ = env.json("af-health", &["history", "k1"]);
        // A fresh loop picks up where the dead one stopped.
        let _watch = Watch::start(&env, &[]);
        wait_for("k1 running again", Duration::from_secs(15), || env.status("k1") == "running");
    }
    let wraps: Vec<u32> = env
        .processes()
        .into_iter()
        .filter(|&p| {
            let argv0 = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            argv0.split(|&b| b == 0).next().is_some_and(|a| a.ends_with(b"/af-wrap"))
        })
        .collect();
    assert_eq!(wraps.len(), 1, "one supervisor, never two: {wraps:?}");
    // The reply pipes of the killed loops are cleaned up by the next pass.
    let _ = health_json(&env, &["check"]);
    let left: Vec<_> = std::fs::read_dir(env.home.join("health.d")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.len() <= 8, "only the live loop's pipes remain: {left:?}");
    let ladder: Value = serde_json::from_str(&util::read(&env.home.join("agents/k1/health.json"))).unwrap();
    assert!(ladder.get("gaveUpAt").is_none(), "{ladder}");
}

#[test]
fn alert_hooks_get_the_json_and_a_failing_one_does_not_stop_the_others() {
    let env = base_env();
    let hooks = env.home.join("alert.d");
    std::fs::create_dir_all(hooks.join("critical")).unwrap();
    std::fs::create_dir_all(hooks.join("warning")).unwrap();
    let out = |n: &str| env.path(n).display().to_string();
    let script = |path: std::path::PathBuf, body: String| {
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    script(hooks.join("10-fails"), "cat >/dev/null; exit 3".into());
    script(hooks.join("20-all"), format!("cat > {}", out("all.json")));
    script(hooks.join("critical/30-crit"), format!("cat > {}", out("crit.json")));
    script(hooks.join("warning/30-warn"), format!("cat > {}", out("warn.json")));
    let c = serde_json::json!({"id": "bad", "type": "worker", "projectId": "p", "command": ["sh", "-c", "exit 1"]});
    env.create(&c.to_string());
    let _ = env.run("af-spawn", &["start", "bad"], None);
    wait_for("bad failed", Duration::from_secs(10), || env.status("bad") == "failed");
    let (code, doc) = health_json(&env, &["check"]);
    assert_eq!(code, 1, "{doc}");
    for f in ["all.json", "crit.json"] {
        let a: Value = serde_json::from_str(&util::read(&env.path(f))).unwrap();
        assert_eq!(
            (a["agent"].as_str(), a["level"].as_str(), a["check"].as_str()),
            (Some("bad"), Some("critical"), Some("process"))
        );
    }
    assert!(!env.path("warn.json").exists(), "warning hooks are not run for a critical alert");
    let id = doc["agents"][0]["alerts"][0]["id"].as_str().unwrap().to_owned();
    env.ok("af-health", &["ack", &id]);
    assert_eq!(env.json("af-health", &["alerts"])[0]["acknowledged"], true);
    // The error cases: one line on stderr, the shared exit codes, nothing changed.
    env.fails("af-health", &["ack", "../x"], None, 2);
    env.fails("af-health", &["ack", "al-0-00000000"], None, 3);
    env.fails("af-health", &["check", "nope"], None, 3);
    env.fails("af-health", &["check", "../etc"], None, 2);
    env.fails("af-health", &["history", "nope"], None, 3);
    env.fails("af-health", &["history", "bad", "--since", "yesterday-ish"], None, 2);
    env.fails("af-health", &["watch", "--interval=0"], None, 2);
    env.fails("af-health", &["trends", "--window", "lots"], None, 2);
    assert_eq!(env.json("af-health", &["alerts"]).as_array().unwrap().len(), 1);
}

#[test]
fn exit_0_is_done_a_permanent_exit_code_is_not_restarted_and_a_monitor_agent_recovers_its_project() {
    let env = base_env();
    let done = serde_json::json!({"id": "done", "type": "worker", "projectId": "m", "command": ["true"]});
    let perm = serde_json::json!({"id": "perm", "type": "worker", "projectId": "m",
        "command": ["sh", "-c", "exit 78"], "permanentExitCodes": [78]});
    env.create(&done.to_string());
    env.create(&perm.to_string());
    let _ = env.run("af-spawn", &["start", "done"], None);
    let _ = env.run("af-spawn", &["start", "perm"], None);
    wait_for("both ended", Duration::from_secs(10), || {
        env.status("done") == "stopped" && env.status("perm") == "failed"
    });
    let (_, doc) = health_json(&env, &["check", "--recover", "--project", "m"]);
    assert_eq!(doc["agents"][0]["health"], "unknown", "done is not checked: {doc}");
    assert!(doc["agents"][1]["action"].as_str().unwrap().contains("permanent"), "{doc}");
    assert!(events(&env, "health.restart", "perm").is_empty());
    assert!(events(&env, "health.restart", "done").is_empty());

    // The monitor agent type: af-wrap runs `af-health watch --project test` under supervision.
    env.worker("w2", "exec sleep 300");
    let w2 = serde_json::json!({"id": "mon", "type": "monitor", "projectId": "test"});
    env.create(&w2.to_string());
    env.ok("af-spawn", &["start", "mon"]);
    let mon = pid_of(&env, "mon");
    assert!(util::read(std::path::Path::new(&format!("/proc/{mon}/cmdline"))).contains("watch"));
    let old = pid_of(&env, "w2");
    wait_for("the monitor's first pass", Duration::from_secs(10), || env.home.join("agents/w2/health.log").exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for("w2 restarted by the monitor", Duration::from_secs(10), || {
        let s = env.show("w2");
        s["state"]["status"] == "running" && s["state"]["pid"].as_u64().is_some_and(|p| p as u32 != old)
    });
    assert!(!env.home.join("agents/mon/health.log").exists(), "the monitor does not check itself");

    // A monitor whose config names no project watches every project.
    env.create(r#"{"id": "mon-all", "type": "monitor"}"#);
    env.ok("af-spawn", &["start", "mon-all"]);
    let argv = util::read(std::path::Path::new(&format!("/proc/{}/cmdline", pid_of(&env, "mon-all"))));
    assert!(argv.contains("watch") && !argv.contains("--project"), "{argv:?}");
}

#[test]
fn rules_set_thresholds_per_project_type_and_agent_and_a_bad_field_is_named() {
    let env = base_env();
    // Validation: a good file passes; a bad field fails with exit 2 and its path.
    let good = serde_json::json!({
        "defaults": {"ping": {"enabled": false}},
        "projects": {"test": {"memory": {"warning": "1K", "critical": "1T"}}},
        "types": {"worker": {"deadLetters": {"warning": 1, "critical": 3}}},
        "agents": {"busy": {"silence": {"warning": "1s", "critical": "1h"}, "memory": {"warning": "1T"}}},
    });
    std::fs::write(env.work.join("rules.json"), good.to_string()).unwrap();
    let ok = env.json("af-health", &["rules", "check", env.work.join("rules.json").to_str().unwrap()]);
    assert_eq!((ok["ok"].as_bool(), ok["rules"].as_u64()), (Some(true), Some(4)), "{ok}");
    let bad = r#"{"agents": {"w1": {"memory": {"warning": "2G", "critical": "1G"}}}}"#;
    env.ok("af-spawn", &["ls"]);
    std::fs::write(env.home.join("rules.json"), bad).unwrap();
    let out = env.run("af-health", &["rules", "check", "--json"], None);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((doc["ok"].as_bool(), doc["path"].as_str()), (Some(false), Some("agents.w1.memory.warning")), "{doc}");
    let err: Value = serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim()).unwrap();
    assert_eq!(err["error"], "invalid");
    assert!(err["message"].as_str().unwrap().contains("agents.w1.memory.warning"), "{err}");
    // A pass refuses a bad rules file rather than ignore it.
    assert_eq!(env.run("af-health", &["check"], None).status.code(), Some(2));
    std::fs::write(env.home.join("rules.json"), good.to_string()).unwrap();

    // Applying: the project's memory warning (1K: any process), the type's dead letters, the
    // agent's silence; the defaults turn the ping off.
    env.worker("w1", "exec sleep 300");
    let tasker = serde_json::json!({"id": "busy", "type": "worker", "projectId": "other"});
    env.ok_in("af-spawn", &["create", "--start"], Some(&tasker.to_string()));
    env.ok("af-bus", &["send", "--to", "busy", "--kind", "task", r#"{"command": ["sleep", "60"]}"#]);
    wait_for("a task running", Duration::from_secs(20), || env.show("busy")["heartbeat"]["tasksRunning"] == 1);
    env.ok("af-bus", &["send", "--to", "w1", "\"to bury\""]);
    let claimed: Value = serde_json::from_str(&env.ok("af-bus", &["recv", "w1", "--json"])).unwrap();
    let mut c = env.cmd("af-bus");
    c.args(["nack", "w1", claimed["id"].as_str().unwrap()]).env("AF_BUS_MAX_ATTEMPTS", "1");
    assert!(c.output().unwrap().status.success());
    wait_for("a heartbeat with w1's memory", Duration::from_secs(20), || {
        env.show("w1")["heartbeat"]["rssBytes"].as_u64().is_some_and(|b| b > 0)
    });
    std::thread::sleep(Duration::from_millis(1200));
    let (code, doc) = health_json(&env, &["check"]);
    assert_eq!(code, 1, "{doc}");
    let agent = |id: &str| doc["agents"].as_array().unwrap().iter().find(|a| a["id"] == id).unwrap().clone();
    let (w1, busy) = (agent("w1"), agent("busy"));
    let level = |r: &Value, name: &str| check_of(r, name).map(|c| c["level"].as_str().unwrap().to_owned());
    assert_eq!(level(&w1, "memory").as_deref(), Some("warning"), "{w1}");
    assert!(check_of(&w1, "memory").unwrap()["message"].as_str().unwrap().contains("warning at 1.0KB"), "{w1}");
    assert_eq!(level(&w1, "dead-letters").as_deref(), Some("warning"), "{w1}");
    assert_eq!(level(&w1, "response"), None, "the defaults turned the ping off: {w1}");
    assert_eq!(level(&w1, "silence"), None, "w1 has no silence rule: {w1}");
    assert_eq!(level(&busy, "silence").as_deref(), Some("warning"), "{busy}");
    assert_eq!(
        level(&busy, "memory").as_deref(),
        Some("ok"),
        "busy is not of project test; its own rule is far off: {busy}"
    );
    assert_eq!(level(&busy, "dead-letters").as_deref(), Some("ok"), "{busy}");
    assert_eq!(alert_levels(&env, "w1", "dead-letters"), ["warning"]);
    assert_eq!(alert_levels(&env, "busy", "silence"), ["warning"]);
    // Rules taken away: the agent is healthy and the rules' alerts close.
    std::fs::remove_file(env.home.join("rules.json")).unwrap();
    env.ok("af-spawn", &["stop", "busy"]);
    let mut closed = false;
    let mut last = String::new();
    for _ in 0..50 {
        let mut c = env.cmd("af-health");
        c.args(["check", "w1", "--no-ping"]);
        last = describe(&c.output().unwrap());
        if alert_levels(&env, "w1", "dead-letters") == ["warning", "recovery"] {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed, "{:?} {last}", alert_levels(&env, "w1", "dead-letters"));
}

#[test]
fn an_agent_leaving_its_own_normal_gets_an_anomaly_warning_once_then_a_cool_down() {
    let mut env = base_env();
    env.set_env("AF_HEALTH_SAMPLE_EVERY", "0");
    env.set_env("AF_HEALTH_ANOMALY_MIN", "5");
    // Steady output (a line every 50 ms), and a burst of 300 KB whenever a file `burst` appears.
    let script = "while :; do if [ -f burst ]; then rm -f burst; head -c 300000 /dev/zero | tr '\\0' x; echo; fi; \
                  printf '%0100d\\n' 0; sleep 0.05; done";
    env.worker("talker", script);
    let output_rate = |env: &Env| {
        let (_, doc) = health_json(env, &["check", "talker", "--no-ping"]);
        check_of(&doc["agents"][0], "anomaly.output-rate").cloned()
    };
    // Too little history: not judged; then steady: within its band.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(output_rate(&env), None, "judged before its history is long enough");
    }
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let c = output_rate(&env).expect("judged now");
        assert_eq!(c["level"], "ok", "a steady agent is in its band: {c}");
    }
    std::fs::write(env.work.join("burst"), "").unwrap();
    wait_for("the burst", Duration::from_secs(10), || !env.work.join("burst").exists());
    std::thread::sleep(Duration::from_millis(700));
    let c = output_rate(&env).unwrap();
    assert_eq!(c["level"], "warning", "{c}");
    let text = c["message"].as_str().unwrap();
    assert!(
        text.starts_with("output-rate ") && text.contains("is outside its normal band") && text.contains("median"),
        "{text}"
    );
    assert_eq!(alert_levels(&env, "talker", "anomaly.output-rate"), ["warning"]);
    // Back in the band: the alert closes; a second burst within the cool-down raises nothing.
    wait_for("back in its band", Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(700));
        output_rate(&env).is_some_and(|c| c["level"] == "ok")
    });
    wait_for("the recovery", Duration::from_secs(10), || {
        output_rate(&env);
        alert_levels(&env, "talker", "anomaly.output-rate") == ["warning", "recovery"]
    });
    std::fs::write(env.work.join("burst"), "").unwrap();
    wait_for("the second burst", Duration::from_secs(10), || !env.work.join("burst").exists());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(output_rate(&env).unwrap()["level"], "ok", "cooling down");
    assert_eq!(alert_levels(&env, "talker", "anomaly.output-rate"), ["warning", "recovery"]);
}

/// The agent's last heartbeat as af-wrap wrote it; `None` while there is none (or met half written).
fn beat(env: &Env, id: &str) -> Option<Value> {
    let text = std::fs::read_to_string(env.home.join("agents").join(id).join("heartbeat.json")).ok()?;
    serde_json::from_str::<Value>(&text).ok().filter(|b| b["seq"] == b["seqEnd"])
}

/// The age af-health gives the agent's heartbeat, in seconds, and its level.
fn heartbeat_check(env: &Env, id: &str) -> (f64, String) {
    let (_, doc) = health_json(env, &["check", id]);
    let c = check_of(&doc["agents"][0], "heartbeat").unwrap_or_else(|| panic!("no heartbeat check: {doc}"));
    let text = c["message"].as_str().unwrap_or_else(|| panic!("{c}"));
    let age = text.trim_start_matches("last heartbeat ").split(' ').next().unwrap().parse().unwrap();
    (age, c["level"].as_str().unwrap().to_owned())
}

#[test]
fn an_idle_agent_beats_ever_more_rarely_a_busy_one_fast_and_a_hung_one_is_still_caught() {
    let mut env = base_env();
    env.set_env("AF_HEARTBEAT_INTERVAL", "100ms");
    env.set_env("AF_HEARTBEAT_IDLE_MAX", "2s");
    env.set_env("AF_HEALTH_STALE", "300ms");
    env.worker("idle", "exec sleep 300");
    env.worker("busy", "while :; do :; done");
    // Idle: the interval doubles at each beat up to the maximum, and says so.
    let mut intervals = Vec::new();
    wait_for("the idle agent's interval to reach 2 s", Duration::from_secs(30), || {
        let i = beat(&env, "idle").and_then(|b| b["intervalMs"].as_u64());
        if i.is_some_and(|i| intervals.last() != Some(&i)) {
            intervals.extend(i);
        }
        i == Some(2000)
    });
    assert!(intervals.windows(2).all(|w| w[0] < w[1]), "the interval only grows while idle: {intervals:?}");
    // A beat older than --stale (300 ms) but within the interval it promised is no warning, and the
    // agent stays healthy. Checked until af-health has seen such an old beat.
    let mut seen = Vec::new();
    wait_for("af-health to see a beat older than --stale", Duration::from_secs(30), || {
        let (age, level) = heartbeat_check(&env, "idle");
        seen.push((age, level.clone()));
        assert_eq!(level, "ok", "an idle agent's rare beat judged {level}: {seen:?}");
        let ls = env.json("af-spawn", &["ls"]);
        let me = ls.as_array().unwrap().iter().find(|a| a["id"] == "idle").cloned().unwrap();
        assert_eq!(me["health"], "healthy", "{me}");
        age > 0.3
    });
    // Busy: it keeps the short interval.
    wait_for("the busy agent's tenth beat", Duration::from_secs(30), || {
        beat(&env, "busy").is_some_and(|b| b["seq"].as_u64() >= Some(10) && b["intervalMs"] == 100)
    });
    env.ok("af-spawn", &["stop", "--force", "busy"]);
    // A hung supervisor is caught, but not before three of its advertised intervals.
    let Some(mut freezer) = freezer("idle-supervisor") else { return };
    let wrap = env.show("idle")["state"]["wrapPid"].as_u64().unwrap() as u32;
    freezer.freeze(wrap);
    let promised = beat(&env, "idle").unwrap()["intervalMs"].as_u64().unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.last().is_none_or(|(_, level): &(f64, String)| level != "critical") {
        assert!(std::time::Instant::now() < deadline, "never stale: {seen:?}");
        seen.push(heartbeat_check(&env, "idle"));
    }
    let last = seen.pop().unwrap();
    freezer.thaw();
    assert!(last.0 * 1000.0 >= (3 * promised) as f64, "stale before 3 × {promised} ms: {last:?}");
    env.ok("af-spawn", &["stop", "--force", "idle"]);
}

/// A supervisor slow to take its hangup (a loaded machine, 1,000 agents) may find a new tmux
/// server answering on the socket already, one the ladder started for another agent: the server
/// it ran under died all the same, so it is a crash the ladder restarts, not a stop it leaves.
#[test]
fn a_hangup_from_a_dead_tmux_server_is_a_crash_though_a_new_server_answers_on_its_socket() {
    let env = Env::new();
    let Some(mut freezer) = freezer("hangup") else { return };
    env.worker("w1", "sleep 600");
    let wrap = env.show("w1")["state"]["wrapPid"].as_u64().expect("wrapPid") as u32;
    let server = String::from_utf8_lossy(&env.tmux(&["display-message", "-p", "#{pid}"]).stdout).trim().parse::<i32>();
    freezer.freeze(wrap);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.expect("the tmux server's pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the old server to be gone", Duration::from_secs(10), || !env.tmux(&["ls"]).status.success());
    assert!(env.tmux(&["new-session", "-d", "-s", "other", "sleep", "600"]).status.success());
    freezer.thaw();
    wait_for("w1 to end", Duration::from_secs(15), || !matches!(env.status("w1").as_str(), "running" | "stopping"));
    let state = &env.show("w1")["state"];
    assert_eq!((state["status"].as_str(), state["reason"].as_str()), (Some("failed"), Some("the tmux server died")));
}
