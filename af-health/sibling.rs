//! Running other programs: AgentFlow's siblings (af-spawn, af-bus, af-checkpoint) for their
//! actions, and alert hooks. Every child gets its own process group and a deadline.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command for `program` with the identity of the agent we may run inside (a monitor agent)
/// removed, so that what we start is not mistaken for part of that agent.
pub fn command(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_remove("AF_AGENT_ID").env_remove("AF_PROJECT_ID").env_remove("AF_AGENT_TYPE").process_group(0);
    c
}

/// Runs a sibling program (by name) with `args`; its stdout, or its error in one line.
pub fn run(name: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let program = af_spool::cli::sibling_program(name);
    let mut c = command(&program);
    c.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().map_err(|e| format!("cannot run {name}: {e}"))?;
    let (status, out, err) =
        wait(child, timeout).map_err(|e| format!("{name} {}: {e}", args.first().unwrap_or(&"")))?;
    if status == Some(0) {
        Ok(out)
    } else {
        let msg = err.lines().last().unwrap_or("").trim().to_owned();
        Err(match status {
            Some(code) => format!("{name} exited with {code}: {msg}"),
            None => format!("{name} was killed by a signal"),
        })
    }
}

/// Starts `program` with `input` on its stdin (for alert hooks); output goes to `log`.
pub fn start_hook(program: &Path, input: &[u8], log: Option<&std::fs::File>) -> std::io::Result<Child> {
    let mut c = command(program);
    let out = || log.and_then(|f| f.try_clone().ok()).map_or(Stdio::null(), Stdio::from);
    c.stdin(Stdio::piped()).stdout(out()).stderr(out());
    let mut child = c.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // Small (an alert); a hook that does not read it must not stop us: ignore EPIPE.
        let _ = stdin.write_all(input);
    }
    Ok(child)
}

/// Waits for hooks until `deadline`, killing those that overrun; returns each one's exit code.
pub fn wait_all(children: Vec<Child>, deadline: Instant) -> Vec<Option<i32>> {
    children
        .into_iter()
        .map(|mut c| {
            loop {
                match c.try_wait() {
                    Ok(Some(st)) => break st.code(),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break None;
                    }
                }
            }
        })
        .collect()
}

/// Waits for a child up to `timeout` (killing it then), collecting stdout and stderr.
fn wait(mut child: Child, timeout: Duration) -> Result<(Option<i32>, String, String), String> {
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = reader(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                return Err(format!("did not finish within {timeout:?}"));
            }
            Err(e) => return Err(format!("cannot wait: {e}")),
        }
    };
    Ok((status, out.join().unwrap_or_default(), err.join().unwrap_or_default()))
}
