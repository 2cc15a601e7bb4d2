//! The config's `setup` command: run once in the workdir before the agent first starts (a fresh
//! worktree's `npm install`, say), its output appended to the agent's log (wrap.log). A mark in
//! the spool says it ran, so restarts do not run it again; a failed setup fails the start.

use af_spool::atomic::{self, Durability};
use af_spool::record::AgentConfig;
use af_spool::{AgentId, Spool};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the setup command unless it has run already. Err is why the agent cannot start. A
/// SIGTERM, SIGINT or SIGHUP (`term`) ends it.
pub fn run_once(
    spool: &Spool,
    id: &AgentId,
    config: &AgentConfig,
    term: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let Some(script) = &config.setup else { return Ok(()) };
    let done = spool.setup_done_path(id);
    if done.exists() {
        return Ok(());
    }
    let log_path = spool.wrap_log_path(id);
    let open = || af_spool::beneath::open_append(&log_path);
    let (mut log, out, err) = match (open(), open(), open()) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => return Err(format!("cannot open the agent's log {}", log_path.display())),
    };
    let _ = writeln!(log, "af-wrap: setup: running sh -c {script:?}");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .envs(&config.environment)
        .env("AF_AGENT_ID", id.as_str())
        .env("AF_HOME", spool.root())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    if let Some(dir) = &config.workdir {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run the setup command: {e}"))?;
    let deadline = Instant::now() + Duration::from_millis(config.resource_limits.timeout_ms());
    let status = loop {
        // In slices, so that a SIGTERM to af-wrap is noticed while the setup runs.
        let slice = deadline.min(Instant::now() + Duration::from_millis(50));
        match af_ops::process::wait_by(&mut child, slice) {
            Some(status) => break status,
            None if Instant::now() >= deadline || term.load(std::sync::atomic::Ordering::Relaxed) => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                let why = if Instant::now() >= deadline { "ran out of time" } else { "was interrupted by a signal" };
                let _ = writeln!(log, "af-wrap: setup: {why}");
                return Err(format!("the setup command {why}; see {}", log_path.display()));
            }
            None => {}
        }
    };
    if !status.success() {
        let _ = writeln!(log, "af-wrap: setup: failed ({status})");
        return Err(format!("the setup command failed ({status}); see {}", log_path.display()));
    }
    let _ = writeln!(log, "af-wrap: setup: done");
    atomic::write(&done, b"", Durability::Durable).map_err(|e| format!("cannot mark the setup done: {e}"))
}
