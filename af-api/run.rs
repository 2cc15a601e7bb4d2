//! Running the program a shell user would run for a change, and turning its exit code into an
//! HTTP status: 2 → 400, 3 → 404, 4 → 409, 5 → 504, other failures → 502.

use crate::http::ApiError;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a program may run before it is killed and the call answers 504.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(60);

/// What a program said.
pub struct Outcome {
    /// Its exit code (1 means a negative answer).
    pub code: i32,
    /// Its standard output.
    pub stdout: Vec<u8>,
}

impl Outcome {
    /// Its output as JSON (null when empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or(serde_json::Value::Null)
    }
}

/// Runs a sibling program (`af-spawn`, …) with `args` and optional standard input. Exit 0 and 1
/// are outcomes; every other exit is the matching error.
pub fn program(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Outcome, ApiError> {
    let path = af_cli::sibling_program(name);
    let mut cmd = Command::new(&path);
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| ApiError::new(502, format!("cannot run {name}: {e}")))?;
    let pid = child.id();
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(PROGRAM_TIMEOUT) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(ApiError::new(502, format!("cannot wait for {name}: {e}"))),
        Err(_) => {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            return Err(ApiError::new(504, format!("{name} {} did not finish in {PROGRAM_TIMEOUT:?}", args.join(" "))));
        }
    };
    let code = output.status.code().unwrap_or(111);
    if code == 0 || code == 1 {
        return Ok(Outcome { code, stdout: output.stdout });
    }
    // One line, as every error af-api answers: the program's own `af-x: …` line (log lines may
    // come before it), else the first line (clap's usage text after it is for a terminal).
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let own = lines.iter().rev().find(|l| l.starts_with(&format!("{name}: "))).or(lines.first());
    let detail = own.map_or_else(|| format!("{name} exited with status {code}"), |l| (*l).to_owned());
    let status = match code {
        2 => 400,
        3 => 404,
        4 => 409,
        5 => 504,
        _ => 502,
    };
    Err(ApiError::new(status, detail))
}

/// Runs a program that must answer 0 and returns its JSON output (1 is a 409: a negative answer
/// where a change was asked for).
pub fn change(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<serde_json::Value, ApiError> {
    let out = program(name, args, stdin)?;
    if out.code != 0 {
        return Err(ApiError::new(409, format!("{name} {} gave a negative answer", args.join(" "))));
    }
    Ok(out.json())
}
