//! The one test harness: a temporary spool (`AF_HOME`), a private tmux server (`AF_TMUX_SOCKET`)
//! and a working directory per test, all torn down on drop (even when the test panics): the tmux
//! server is killed, every process that carries the spool in its environment is killed, the
//! directory is removed. Assertions print stdout and stderr when they fail. A test that needs a
//! tool or a cgroup the machine lacks skips through [`skip`], which makes it visible and counted.

#![allow(dead_code)]

pub mod chromium;
pub mod freezer;
mod skip;
pub mod tmpfs;

// Each test binary compiles this harness anew and uses only part of it.
#[allow(unused_imports)]
pub use skip::{Need, agent_cli, have_tool, note_at_exit, skip};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The path of one of AgentFlow's binaries, as cargo built it for this test run.
pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "af-spawn" => env!("CARGO_BIN_EXE_af-spawn"),
        "af-wrap" => env!("CARGO_BIN_EXE_af-wrap"),
        "af-bus" => env!("CARGO_BIN_EXE_af-bus"),
        "af-health" => env!("CARGO_BIN_EXE_af-health"),
        "af-checkpoint" => env!("CARGO_BIN_EXE_af-checkpoint"),
        "af-api" => env!("CARGO_BIN_EXE_af-api"),
        other => panic!("no binary {other}"),
    })
}

/// Every program, for tests that go over all of them.
pub const PROGRAMS: [&str; 6] = ["af-spawn", "af-wrap", "af-bus", "af-health", "af-checkpoint", "af-api"];

/// One test's world.
pub struct Env {
    /// The spool (`AF_HOME`).
    pub home: PathBuf,
    /// The private tmux server's socket name.
    pub socket: String,
    /// A working directory for agents.
    pub work: PathBuf,
    root: PathBuf,
    extra_env: Vec<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Env {
    /// A fresh spool, tmux server name and working directory.
    pub fn new() -> Env {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let root = std::env::temp_dir().join(format!("af-test-{tag}"));
        let _ = std::fs::remove_dir_all(&root);
        let home = root.join("home");
        let work = root.join("work");
        std::fs::create_dir_all(&work).expect("creating the test's work directory");
        Env {
            home,
            socket: format!("aft-{tag}"),
            work,
            root,
            // Idle agents beat rarely (af-wrap's --heartbeat-idle-max): 1 s keeps a hung
            // supervisor's stale heartbeat within a test's patience.
            extra_env: vec![
                ("AF_HEARTBEAT_INTERVAL".into(), "200ms".into()),
                ("AF_HEARTBEAT_IDLE_MAX".into(), "1s".into()),
            ],
        }
    }

    /// Sets an environment variable for every program this test runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.into(), value.into()));
    }

    /// A command for one of the programs, aimed at this test's spool and tmux server.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(bin(program));
        self.apply(&mut c);
        c
    }

    /// Points any command at this test's spool and tmux server.
    pub fn apply(&self, c: &mut Command) {
        c.env("AF_HOME", &self.home)
            .env("AF_TMUX_SOCKET", &self.socket)
            .env_remove("TMUX")
            .env_remove("AF_LOG_FORMAT")
            .env_remove("AF_JOURNAL_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .current_dir(&self.work)
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
    }

    /// Runs a program with arguments and optional stdin.
    pub fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(program);
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            let _ = pipe.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("waiting for the program")
    }

    /// Runs a program that must succeed; returns its stdout.
    #[track_caller]
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        self.ok_in(program, args, None)
    }

    /// Runs a program with stdin that must succeed; returns its stdout.
    #[track_caller]
    pub fn ok_in(&self, program: &str, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(program, args, stdin);
        assert!(out.status.success(), "{program} {args:?} failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a program that must fail with `code`; returns its stderr.
    #[track_caller]
    pub fn fails(&self, program: &str, args: &[&str], stdin: Option<&str>, code: i32) -> String {
        let out = self.run(program, args, stdin);
        assert_eq!(out.status.code(), Some(code), "{program} {args:?}: wrong exit status: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.trim_end().lines().count(), 1, "{program} {args:?}: want one line on stderr: {err:?}");
        if args.contains(&"--json") || args.contains(&"--pretty") {
            // With --json (or --pretty) the one line is {"error": KIND, "message": …}; the message is returned.
            let doc: serde_json::Value = serde_json::from_str(&err)
                .unwrap_or_else(|e| panic!("{program} {args:?}: stderr is no JSON error ({e}): {err:?}"));
            assert!(doc["error"].is_string(), "{program} {args:?}: {doc}");
            return doc["message"].as_str().unwrap_or_default().to_owned();
        }
        assert!(err.starts_with(&format!("{program}: ")), "{program} {args:?}: stderr {err:?}");
        err
    }

    /// Runs a program that must succeed with `--json`; returns the parsed document.
    #[track_caller]
    pub fn json(&self, program: &str, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let text = self.ok(program, &a);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{program} {args:?} gave bad JSON ({e}): {text}"))
    }

    /// Creates an agent from a JSON config.
    #[track_caller]
    pub fn create(&self, config: &str) {
        self.ok_in("af-spawn", &["create"], Some(config));
    }

    /// Creates a worker running `command` (a shell snippet) and starts it.
    #[track_caller]
    pub fn worker(&self, id: &str, script: &str) {
        let config =
            serde_json::json!({"id": id, "type": "worker", "projectId": "test", "command": ["sh", "-c", script]});
        self.create(&config.to_string());
        self.ok("af-spawn", &["start", id]);
    }

    /// `af-spawn show ID --json`.
    #[track_caller]
    pub fn show(&self, id: &str) -> serde_json::Value {
        self.json("af-spawn", &["show", id])
    }

    /// The agent's status as `show` tells it.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.show(id)["state"]["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Runs tmux against this test's server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("running tmux")
    }

    /// The socket names of this test's tmux servers that have a socket: its own and the others
    /// of its family (`SOCKET-2`, `SOCKET-3`, …, where agents spread past a server's share).
    pub fn servers(&self) -> Vec<String> {
        let path = af_ops::tmux::socket_path(&self.socket);
        let dir = path.parent().expect("a socket directory");
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n == &self.socket
                    || n.strip_prefix(&format!("{}-", self.socket))
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        found.sort();
        found
    }

    /// Whether the tmux server has a session of exactly this name.
    pub fn has_session(&self, name: &str) -> bool {
        self.tmux(&["has-session", "-t", &format!("={name}")]).status.success()
    }

    /// The processes that carry this test's spool in their environment.
    pub fn processes(&self) -> Vec<u32> {
        let needle = format!("AF_HOME={}", self.home.display());
        let me = std::process::id();
        af_ops::procfs::all()
            .into_iter()
            .filter(|p| p.pid != me && p.state != 'Z' && af_ops::procfs::environ_has(p.pid, &needle))
            .map(|p| p.pid)
            .collect()
    }

    /// Whether process `pid` waits on the spool: it has a listener's named pipe in a fifodir
    /// (`fifo.PID.…`), which it makes before it first looks at what it waits for.
    pub fn waits(&self, pid: u32) -> bool {
        let prefix = format!("fifo.{pid}.");
        let mut dirs = vec![self.home.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    return true;
                }
            }
        }
        false
    }

    /// A path under the test's root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Env {
    /// Kills the test's tmux server and every process that carries its spool in its
    /// environment, and waits (up to 5 s) until they are gone: what Drop does first, for a test
    /// that must let go of the spool earlier (to unmount a filesystem under it).
    pub fn kill_everything(&self) {
        // Every server of the family (`SOCKET`, `SOCKET-2`, …: agents spread over several), by pid.
        for name in self.servers() {
            let pid = Command::new("tmux").args(["-L", &name, "display-message", "-p", "#{pid}"]).output();
            let pid = pid.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<i32>().ok());
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = Command::new("tmux").arg("-L").arg(&name).arg("kill-server").output();
        }
        let left = self.processes();
        for &pid in &left {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while left.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_everything();
        let _ = std::fs::remove_file(af_ops::tmux::socket_path(&self.socket));
        for name in self.servers() {
            let _ = std::fs::remove_file(af_ops::tmux::socket_path(&name));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The state letter of a process (R, S, T, Z…), `None` when it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 2..].chars().next()
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Waits for `cond` up to `timeout`, checking every 20 ms; panics with `what` if it never holds.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cond(), "timed out after {timeout:?} waiting for: {what}");
}

/// stdout and stderr of a finished program, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reads a file to a string, panicking with its path.
#[track_caller]
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The argument lists a test double logged (one JSON array a line), one per invocation.
pub fn argv_log(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

impl Env {
    /// Every alert of `agent`'s `check` raised so far, from `af-health alerts --all`.
    pub fn alerts(&self, agent: &str, check: &str) -> Vec<serde_json::Value> {
        let all: serde_json::Value =
            serde_json::from_str(&self.ok("af-health", &["alerts", "--all", "--json"])).unwrap();
        all.as_array().unwrap().iter().filter(|a| a["agent"] == agent && a["check"] == check).cloned().collect()
    }
}

/// Sets every field of the object `extra` in the object `target`.
pub fn merge(target: &mut serde_json::Value, extra: &serde_json::Value) {
    for (k, v) in extra.as_object().expect("an object to merge") {
        target[k] = v.clone();
    }
}

impl Env {
    /// `af-bus request --to AGENT --json PAYLOAD`: the response message, checked to be the
    /// agent's response to the request, af-bus exiting 1 exactly when it says `ok: false`.
    #[track_caller]
    pub fn request(&self, agent: &str, payload: &serde_json::Value) -> serde_json::Value {
        let data = payload.to_string();
        let out = self.run("af-bus", &["request", "--to", agent, "--timeout", "30", "--json", &data], None);
        let m: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
        let code = if m["payload"]["ok"] == false { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
        assert_eq!(m["kind"], "response", "{m}");
        assert_eq!(m["from"], agent, "{m}");
        assert_eq!(m["correlationId"], m["payload"]["taskId"], "{m}");
        m
    }
}

/// Runs git in `dir` (with an author and committer of its own); asserts it succeeds; its stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` (not following links) that holds `needle`.
pub fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else { return found };
    for entry in read.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if kind.is_file() && std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path);
        }
    }
    found
}
