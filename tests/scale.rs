//! Many agents on one machine (issue 19): a batch of 600 agents started in one call from a shell
//! whose soft descriptor limit is 1,024, the default on many systems. No timings: all must run.

mod util;

use std::os::unix::process::CommandExt;
use std::time::Duration;
use util::{Env, wait_for};

/// The soft `RLIMIT_NOFILE` the programs are started with (the hard limit is left as it is).
const SOFT_NOFILE: u64 = 1024;

fn with_soft_limit(c: &mut std::process::Command) {
    with_soft_nofile(c, SOFT_NOFILE);
}

/// Starts the command with this soft `RLIMIT_NOFILE` (the hard limit is left as it is).
fn with_soft_nofile(c: &mut std::process::Command, soft: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, soft.min(hard), hard)?;
            Ok(())
        });
    }
}

/// A batch start onto a tmux server AgentFlow did not start, one with a low soft descriptor
/// limit (the user's shell started it), as in `scripts/bench scale`: each session costs the server
/// two descriptors, and a server out of them stops answering, so every tmux call hangs. The start
/// raises the server's soft limit to its hard one first, and all agents run.
#[test]
fn a_batch_fits_on_a_tmux_server_started_with_a_low_soft_descriptor_limit() {
    let env = Env::new();
    let (soft, n) = (128, 100);
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap().1;
    if hard < 1024 {
        util::skip(
            util::Need::Tool,
            &format!("the hard descriptor limit is {hard}: too low to raise a server past {soft}"),
        );
        return;
    }
    let mut server = std::process::Command::new("tmux");
    server.args(["-L", &env.socket, "new-session", "-d", "-s", "users-own", "sleep", "600"]);
    with_soft_nofile(&mut server, soft);
    assert!(server.status().unwrap().success(), "the user's tmux server starts");
    let configs: String =
        (0..n).map(|i| format!("{{\"id\":\"l{i}\",\"type\":\"worker\",\"command\":[\"sleep\",\"600\"]}}\n")).collect();
    let mut c = env.cmd("af-spawn");
    c.args(["create", "--start"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    c.stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), configs.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "create --start of {n}: {}", util::describe(&out));
    let ls = env.json("af-spawn", &["ls"]);
    let running = ls.as_array().expect("ls --json is an array").iter().filter(|a| a["status"] == "running").count();
    assert_eq!(running, n, "every agent runs");
    let sessions = env.tmux(&["list-sessions", "-F", "#{session_name}"]);
    assert_eq!(String::from_utf8_lossy(&sessions.stdout).lines().count(), n + 1, "the server still answers");
}

#[test]
fn six_hundred_agents_start_in_one_call_under_a_soft_limit_of_1024_descriptors() {
    let env = Env::new();
    let n = 600;
    let configs: String = (0..n)
        .map(|i| {
            format!("{{\"id\":\"s{i}\",\"type\":\"worker\",\"projectId\":\"scale\",\"command\":[\"sleep\",\"600\"]}}\n")
        })
        .collect();
    let mut c = env.cmd("af-spawn");
    c.args(["create", "--start"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    c.stderr(std::process::Stdio::piped());
    with_soft_limit(&mut c);
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), configs.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "create --start of {n}: {}", util::describe(&out));
    let ls = env.json("af-spawn", &["ls"]);
    let ls = ls.as_array().expect("ls --json is an array");
    let running = ls.iter().filter(|a| a["status"] == "running").count();
    assert_eq!((ls.len(), running), (n, n), "every agent runs");
    // The tmux servers hold every session, at most 400 each (AF_TMUX_SESSIONS_PER_SERVER's
    // default), and still answer.
    let servers = env.servers();
    assert_eq!(servers.len(), 2, "{servers:?}");
    let mut total = 0;
    for server in &servers {
        let out = std::process::Command::new("tmux")
            .args(["-L", server, "list-sessions", "-F", "#{session_name}"])
            .output()
            .unwrap();
        let count = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(count <= 400, "{server}: {count} sessions");
        total += count;
    }
    assert_eq!(total, n);
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let mut stop = env.cmd("af-spawn");
    stop.arg("stop").arg("--force").args(&ids);
    with_soft_limit(&mut stop);
    let out = stop.output().unwrap();
    assert!(out.status.success(), "stop of {n}: {}", util::describe(&out));
    wait_for("no supervisor left", Duration::from_secs(60), || env.processes().is_empty());
}
