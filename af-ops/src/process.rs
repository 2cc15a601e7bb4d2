//! Child programs: where AgentFlow's own programs are, the user's umask, and the one way to run a
//! child with a deadline (its own process group, its output read, killed whole when late).

use af_spool::{Error, Result};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The path of a sibling program: next to the running executable when it is there, else the bare
/// name (found on PATH).
pub fn sibling_program(name: &str) -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(name)
}

/// The variable that carries the user's own soft descriptor limit past the raise, so that the
/// agents af-wrap starts get it back (a program written for 1,024 descriptors, `select` say,
/// must not meet higher ones).
pub const NOFILE_VAR: &str = "AF_NOFILE_SOFT";

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: a batch of agents, a tmux server of
/// hundreds of sessions or af-api's clients must not hit a ceiling the machine does not have.
/// The soft limit found is kept in [`NOFILE_VAR`] (unless an AgentFlow program up the chain kept
/// it already). Call it first thing, while the program has one thread.
pub fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if std::env::var_os(NOFILE_VAR).is_none() {
        // SAFETY: called at the start of main, before any thread exists.
        unsafe { std::env::set_var(NOFILE_VAR, soft.to_string()) };
    }
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The user's own soft descriptor limit, when a raise kept it: what an agent gets back.
pub fn user_nofile() -> Option<u64> {
    std::env::var(NOFILE_VAR).ok().and_then(|v| v.parse().ok())
}

static USER_UMASK: AtomicU32 = AtomicU32::new(0o022);

/// Remembers the umask the program was started with, before it set 077 for the spool.
pub fn remember_user_umask(mask: u32) {
    USER_UMASK.store(mask, Ordering::Relaxed);
}

/// The umask the program was started with: programs that write the user's own files (a restored
/// working tree) give it to those children.
pub fn user_umask() -> u32 {
    USER_UMASK.load(Ordering::Relaxed)
}

/// What a finished child left.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (at most the limit asked for).
    pub stdout: Vec<u8>,
    /// Its standard error (at most the limit asked for).
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The last non-empty line of its stderr (trimmed, at most 300 characters): why it failed.
    pub fn last_error_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().chars().take(300).collect())
    }

    /// "code N" or "a signal", for messages.
    pub fn describe_exit(&self) -> String {
        self.status.code().map_or("a signal".into(), |c| format!("code {c}"))
    }
}

/// Runs `cmd` in its own process group with `input` on its stdin (or /dev/null), reading at most
/// `max_output` bytes of each of stdout and stderr, and waits at most `timeout`: a child still
/// running then is killed with its whole group and the call fails with Timeout. `what` names it in
/// errors ("middleware x", "alert hook y").
pub fn run(
    cmd: &mut Command,
    what: &str,
    input: Option<Vec<u8>>,
    max_output: u64,
    timeout: Duration,
) -> Result<Finished> {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| Error::System(format!("cannot run {what}: {e}")))?;
    let pid = child.id();
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
            let _ = pipe.write_all(&bytes);
        }
    });
    let deadline = std::time::Instant::now() + timeout;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(max_output).read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    // A thread waits (no polling); the deadline is a receive with a timeout.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let late = || Error::Timeout(format!("{what} took longer than {timeout:?} and was killed"));
    let status = match rx.recv_timeout(timeout) {
        Ok(status) => status.map_err(|e| Error::System(format!("cannot wait for {what}: {e}")))?,
        Err(_) => {
            kill_group(pid);
            let _ = rx.recv();
            return Err(late());
        }
    };
    // Something it left in its group may still hold the pipes: it gets until the deadline.
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        rx.recv_timeout(left).or_else(|_| {
            kill_group(pid);
            rx.recv()
        })
    };
    let stdout = collect(out).unwrap_or_default();
    let stderr = collect(err).unwrap_or_default();
    drop(writer);
    Ok(Finished { status, stdout, stderr })
}

/// Waits for `child` until `deadline`: its status, or None if it still runs then (or cannot be
/// waited for). Checks often at first and less often later, so quick children cost little.
pub fn wait_by(child: &mut std::process::Child, deadline: std::time::Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// SIGKILL to a process group (gone already is fine).
pub fn kill_group(pgid: u32) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), nix::sys::signal::Signal::SIGKILL);
}

/// Whether `path` names an executable file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_input_and_exit_code() {
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo oops >&2; exit 3"]);
        let f = run(&mut c, "sh", Some(b"hello".to_vec()), 1024, Duration::from_secs(10)).unwrap();
        assert_eq!(f.stdout, b"hello");
        assert_eq!(f.last_error_line().as_deref(), Some("oops"));
        assert_eq!(f.status.code(), Some(3));
    }

    #[test]
    fn a_late_child_is_killed_with_its_group() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & sleep 30"]);
        let started = std::time::Instant::now();
        let e = run(&mut c, "sleeper", None, 1024, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
