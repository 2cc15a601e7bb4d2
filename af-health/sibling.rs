//! Running other programs: AgentFlow's siblings (af-spawn, af-bus, af-checkpoint) for their
//! actions. Every child gets its own process group and a deadline.

use std::io::Read;
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
