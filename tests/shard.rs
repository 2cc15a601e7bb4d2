//! Agents spread over several tmux servers (`AF_TMUX_SESSIONS_PER_SERVER`, a config's
//! `tmuxSocket`): where they go, and every verb finding each on its own server (ls, attach, stop,
//! gc, af-health's ladder). Real tmux servers, all of one family, all killed at the end by pid.

mod util;

use std::time::Duration;
use util::{Env, wait_for};

/// Creates and starts workers `a1`…`aN` in one call (one batch) with a share of `share`
/// sessions per tmux server.
fn spread(share: usize, n: usize) -> Env {
    let mut env = Env::new();
    env.set_env("AF_TMUX_SESSIONS_PER_SERVER", &share.to_string());
    env.set_env("AF_HEALTH_BACKOFF", "10ms");
    let configs: Vec<serde_json::Value> = (1..=n)
        .map(|i| serde_json::json!({"id": format!("a{i}"), "type": "worker", "command": ["sleep", "600"]}))
        .collect();
    env.ok_in("af-spawn", &["create", "--start"], Some(&serde_json::Value::Array(configs).to_string()));
    env
}

/// The sessions of one tmux server of the test's family.
fn sessions(server: &str) -> Vec<String> {
    let out =
        std::process::Command::new("tmux").args(["-L", server, "list-sessions", "-F", "#{session_name}"]).output();
    let mut names: Vec<String> =
        out.map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect()).unwrap_or_default();
    names.sort();
    names
}

/// The pid of one tmux server.
fn server_pid(server: &str) -> i32 {
    let out = std::process::Command::new("tmux").args(["-L", server, "display-message", "-p", "#{pid}"]).output();
    String::from_utf8_lossy(&out.expect("running tmux").stdout).trim().parse().expect("the tmux server's pid")
}

/// Each agent's recorded server, from `ls --json`.
fn servers_of(env: &Env) -> std::collections::BTreeMap<String, String> {
    let ls = env.json("af-spawn", &["ls"]);
    ls.as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_owned(), a["tmuxSocket"].as_str().unwrap_or("default").to_owned()))
        .collect()
}

/// A share of 3 sessions per server puts 7 agents on 3 servers, filled in order; `ls` (text and
/// JSON) shows each agent's server, every server has the raised descriptor limit, a config's
/// `tmuxSocket` names a server of its own, gc finds a stray session on any server, and stop finds
/// each agent on its own.
#[test]
fn seven_agents_with_a_share_of_three_go_on_three_servers() {
    let env = spread(3, 7);
    let s = env.socket.clone();
    let (s2, s3) = (format!("{s}-2"), format!("{s}-3"));
    assert_eq!(env.servers(), vec![s.clone(), s2.clone(), s3.clone()]);
    assert_eq!(sessions(&s), ["agent-a1", "agent-a2", "agent-a3"]);
    assert_eq!(sessions(&s2), ["agent-a4", "agent-a5", "agent-a6"]);
    assert_eq!(sessions(&s3), ["agent-a7"]);
    let recorded = servers_of(&env);
    for (id, server) in &recorded {
        assert_eq!(env.status(id), "running", "{id}");
        assert!(sessions(server).contains(&format!("agent-{id}")), "{id} is on {server}");
    }
    assert_eq!(recorded["a5"], s2);
    let table = env.ok("af-spawn", &["ls"]);
    assert!(table.lines().next().unwrap().contains("SERVER"), "{table}");
    let a7 = table.lines().find(|l| l.starts_with("a7 ")).unwrap();
    assert!(a7.split_whitespace().any(|w| w == s3), "{table}");

    // Every server got the raised descriptor limit (soft = hard), as the first always did.
    for server in [&s, &s2, &s3] {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", server_pid(server))).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[3], words[4], "{server}: {line}");
    }

    // A config's tmuxSocket: a server of its own (here one of the family, so the clean-up finds it).
    let own = format!("{s}-77");
    let config = serde_json::json!({"id": "p1", "type": "worker", "command": ["sleep", "600"], "tmuxSocket": own});
    env.ok_in("af-spawn", &["create", "--start"], Some(&config.to_string()));
    assert_eq!(sessions(&own), ["agent-p1"]);
    assert_eq!(servers_of(&env)["p1"], own);

    // gc looks at every server: a stray session of this spool on the second is killed, the agents'
    // sessions stay.
    let home = env.home.display().to_string();
    let stray = std::process::Command::new("tmux")
        .args(["-L", &s2, "new-session", "-d", "-s", "agent-ghost", "sleep", "600", ";"])
        .args(["set-option", "-t", "=agent-ghost:", "@af_home", &home])
        .output()
        .unwrap();
    assert!(stray.status.success(), "{}", util::describe(&stray));
    let gc = env.json("af-spawn", &["gc"]);
    assert_eq!(gc["killedSessions"], serde_json::json!(["agent-ghost"]), "{gc}");
    assert_eq!(sessions(&s2), ["agent-a4", "agent-a5", "agent-a6"]);

    // rm --force finds a running agent's session on its server (after its records are gone).
    env.ok("af-spawn", &["rm", "--force", "a7"]);
    assert!(sessions(&s3).is_empty(), "{:?}", sessions(&s3));

    // stop finds each agent on its own server, and leaves no session anywhere.
    env.ok("af-spawn", &["stop", "a1", "a2", "a3", "a4", "a5", "a6", "p1"]);
    for (id, _) in servers_of(&env) {
        assert_eq!(env.status(&id), "stopped", "{id}");
    }
    for server in [&s, &s2, &s3, &own] {
        assert!(sessions(server).iter().all(|n| !n.starts_with("agent-")), "{server}: {:?}", sessions(server));
    }
}

/// `af-spawn attach` goes to the agent's own server: from a pane of another server it runs a
/// client of the agent's server there (nested); from a client of the agent's server it switches
/// that client. Both checked with `list-clients` on the agent's server.
#[test]
fn attach_goes_to_the_agents_own_server() {
    let env = spread(1, 2);
    let s = env.socket.clone();
    let s2 = format!("{s}-2");
    assert_eq!(servers_of(&env)["a2"], s2);
    let spawn = util::bin("af-spawn").display().to_string();
    let home = format!("AF_HOME={}", env.home.display());
    let socket = format!("AF_TMUX_SOCKET={s}");
    let clients = |server: &str| {
        let out = std::process::Command::new("tmux")
            .args(["-L", server, "list-clients", "-F", "#{client_session}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };

    // From a pane of the first server, to a2 on the second: a nested client of the second.
    let viewer =
        env.tmux(&["new-session", "-d", "-s", "viewer", "-e", &home, "-e", &socket, "--", &spawn, "attach", "a2"]);
    assert!(viewer.status.success(), "{}", util::describe(&viewer));
    wait_for("a client of the second server on agent-a2", Duration::from_secs(15), || {
        clients(&s2).contains(&"agent-a2".to_owned())
    });

    // From a client of the first server, to a1 on it: that client switches to agent-a1.
    let shell = env.tmux(&["new-session", "-d", "-s", "shell", "-e", &home, "-e", &socket, "--", "sh"]);
    assert!(shell.status.success(), "{}", util::describe(&shell));
    // The client runs in a pane of a third server (a terminal for it), the family's so it is cleaned up.
    let outer = format!("{s}-9");
    let attach_shell = format!("env -u TMUX tmux -L {s} attach-session -t =shell");
    let made = std::process::Command::new("tmux")
        .args(["-L", &outer, "new-session", "-d", "-s", "outer", "-x", "120", "-y", "40", &attach_shell])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", util::describe(&made));
    wait_for("a client of the first server on shell", Duration::from_secs(15), || {
        clients(&s).contains(&"shell".to_owned())
    });
    env.tmux(&["send-keys", "-t", "=shell:", &format!("exec {spawn} attach a1"), "Enter"]);
    wait_for("the client switched to agent-a1", Duration::from_secs(15), || {
        clients(&s).contains(&"agent-a1".to_owned())
    });
}

/// Killing one tmux server fails only its agents ("the tmux server died"); af-health's ladder
/// starts them again on a server with room (the same name: the dead one has none left), and the
/// agents of the other servers keep their processes.
#[test]
fn a_dead_server_fails_only_its_agents_and_the_ladder_restarts_them() {
    let env = spread(3, 7);
    let s2 = format!("{}-2", env.socket);
    let pids: std::collections::BTreeMap<String, u64> = (1..=7)
        .map(|i| format!("a{i}"))
        .map(|id| {
            let pid = env.show(&id)["state"]["pid"].as_u64().unwrap();
            (id, pid)
        })
        .collect();
    let dead = ["a4", "a5", "a6"];
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server_pid(&s2)), nix::sys::signal::Signal::SIGKILL).unwrap();
    for id in dead {
        wait_for(&format!("{id} to be failed"), Duration::from_secs(15), || {
            matches!(env.status(id).as_str(), "failed" | "stopped")
        });
        assert_eq!(env.show(id)["state"]["reason"], "the tmux server died", "{id}: {}", env.show(id));
    }
    wait_for("the ladder to start a4, a5 and a6 again", Duration::from_secs(60), || {
        let _ = env.run("af-health", &["check", "--recover"], None);
        dead.iter().all(|id| env.status(id) == "running")
    });
    let recorded = servers_of(&env);
    for (id, pid) in &pids {
        let state = &env.show(id)["state"];
        assert_eq!(state["status"], "running", "{id}");
        if dead.contains(&id.as_str()) {
            assert_ne!(state["pid"].as_u64().unwrap(), *pid, "{id}: a new process");
            assert_eq!(recorded[id], s2, "{id}: back on the server with room");
        } else {
            assert_eq!(state["pid"].as_u64().unwrap(), *pid, "{id} was left alone");
            assert_eq!(state["restarts"], 0, "{id}");
        }
    }
    assert_eq!(sessions(&s2), ["agent-a4", "agent-a5", "agent-a6"]);
}
