//! Many agents on one machine (issue 19): a batch of 600 agents started in one call from a shell
//! whose soft descriptor limit is 1,024, the default on many systems. No timings: all must run.

mod util;

use std::os::unix::process::CommandExt;
use std::time::Duration;
use util::{Env, wait_for};

/// The soft `RLIMIT_NOFILE` the programs are started with (the hard limit is left as it is).
const SOFT_NOFILE: u64 = 1024;

fn with_soft_limit(c: &mut std::process::Command) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, SOFT_NOFILE.min(hard), hard)?;
            Ok(())
        });
    }
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
