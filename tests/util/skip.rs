//! Tests that need what a machine may lack (Chromium, schemathesis, the real claude CLI,
//! systemd-analyze, a writable cgroup) skip without it, but never silently.
//!
//! libtest has no run-time "skipped" outcome: such a test returns early and counts as passed, and
//! libtest captures what it prints (`println!` goes through `std::io::set_output_capture`, shown
//! only with `--nocapture` or on failure). So [`skip`] prints `SKIPPED: <why>` for the captured
//! output and also records the skip; when the test binary exits (after libtest's own
//! `test result:` line, on success and on failure alike), an `atexit` handler writes every skip and
//! their count straight to file descriptor 1, which no capture intercepts. (Not at the moment of
//! the skip: with one test thread, libtest has just written `test NAME ... ` without its newline.)
//! `cargo test` then shows, under the binary's summary:
//!
//! ```text
//! test result: ok. 15 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 31.20s
//!
//! SKIPPED: the_real_cli_without_credentials_answers_authentication_failed: the claude CLI is not on PATH (…)
//! SKIPPED: 1 test of claude (libtest counted it as passed; AF_REQUIRE_TOOLS=1 makes that fail)
//! ```
//!
//! `#[ignore]` would make libtest count them itself, but whether a tool is there is known only
//! when the test runs (a build script could probe, yet its answer would go stale as tools come
//! and go, and root or not is a property of the run).
//!
//! Where a skip is not acceptable (CI), `AF_REQUIRE_TOOLS=1` turns a missing tool into a failure
//! and `AF_REQUIRE_CGROUPS=1` a missing cgroup: tools can be installed anywhere, cgroups need root
//! and a writable hierarchy, so `.ci/run` requires them only where it finds both.

use std::sync::{Mutex, Once, PoisonError};

/// What a test needs beyond tmux, git and python3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A program (Chromium, schemathesis, the claude CLI, systemd-analyze): required when
    /// `AF_REQUIRE_TOOLS=1`.
    Tool,
    /// A cgroup hierarchy this process may write (root, not read-only): required when
    /// `AF_REQUIRE_CGROUPS=1`.
    Cgroups,
    /// Mounting a filesystem (a small tmpfs to fill up, or to remount read-only): root, and a
    /// mount namespace that allows it; required when `AF_REQUIRE_MOUNT=1`.
    Mount,
}

impl Need {
    /// The variable that forbids skipping for want of this.
    pub fn variable(self) -> &'static str {
        match self {
            Need::Tool => "AF_REQUIRE_TOOLS",
            Need::Cgroups => "AF_REQUIRE_CGROUPS",
            Need::Mount => "AF_REQUIRE_MOUNT",
        }
    }

    /// Whether this run forbids skipping for want of this: the variable is exactly `1`.
    pub fn required(self) -> bool {
        std::env::var(self.variable()).is_ok_and(|v| v == "1")
    }
}

/// This binary's skips so far: what each needed, and its `SKIPPED:` line.
static SKIPPED: Mutex<Vec<(Need, String)>> = Mutex::new(Vec::new());
/// Lines a test wants seen whatever its outcome (the README test's examples it does not run).
static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static REPORT_AT_EXIT: Once = Once::new();

/// Prints `line` on stdout when the test binary exits, past libtest's capture, as [`skip`]'s
/// lines are: for what a passing test must still say (what it left out, and why).
pub fn note_at_exit(line: String) {
    NOTES.lock().unwrap_or_else(PoisonError::into_inner).push(line + "\n");
    report_at_exit();
}

fn report_at_exit() {
    REPORT_AT_EXIT.call_once(|| {
        // SAFETY: `report` is an `extern "C" fn()` that never unwinds.
        unsafe { nix::libc::atexit(report) };
    });
}

/// The test cannot run for want of `need`: `why` says what is missing and how to get it. Fails
/// the test when the need is required (see [`Need::required`]); otherwise records the skip, and
/// the caller returns at once.
#[track_caller]
pub fn skip(need: Need, why: &str) {
    assert!(!need.required(), "{why} ({}=1: this test may not skip)", need.variable());
    // libtest names each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    println!("SKIPPED: {why}");
    SKIPPED.lock().unwrap_or_else(PoisonError::into_inner).push((need, format!("SKIPPED: {test}: {why}\n")));
    report_at_exit();
}

/// An agent CLI to test against: the file `var` names (`AF_CLAUDE_BIN`, `AF_CODEX_BIN`), else
/// `program` on PATH; `None` (the test skipped, with `install` in the reason) without it.
#[track_caller]
pub fn agent_cli(var: &str, program: &str, install: &str) -> Option<std::path::PathBuf> {
    let found = match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(bin) => Some(std::path::PathBuf::from(bin)).filter(|p| p.is_file()),
        None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(program))
            .find(|p| p.is_file()),
    };
    if found.is_none() {
        let why = match std::env::var(var) {
            Ok(bin) if !bin.is_empty() => format!("the {program} CLI is not there: {var}={bin} is not a file"),
            _ => format!("the {program} CLI is not on PATH ({install}, or set {var})"),
        };
        skip(Need::Tool, &why);
    }
    found
}

/// Whether `program` is on PATH; when it is not, the test skips (see [`skip`]) with `install`,
/// the way to get it, in its reason.
#[track_caller]
pub fn have_tool(program: &str, install: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|d| is_executable(&d.join(program)));
    if !found {
        skip(Need::Tool, &format!("{program} is not on PATH ({install})"));
    }
    found
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes the notes, the skips and their count to file descriptor 1, past libtest's capture, as
/// the test binary exits.
extern "C" fn report() {
    let mut text: String = NOTES.lock().unwrap_or_else(PoisonError::into_inner).concat();
    if !text.is_empty() {
        text.insert(0, '\n');
    }
    let skipped = SKIPPED.lock().unwrap_or_else(PoisonError::into_inner);
    text.extend(skipped.iter().map(|(_, line)| line.as_str()));
    let mut variables: Vec<&str> = skipped.iter().map(|(need, _)| need.variable()).collect();
    variables.sort_unstable();
    variables.dedup();
    let strict = variables.iter().map(|v| format!("{v}=1")).collect::<Vec<_>>().join(" and ");
    // The binary is tests/NAME.rs built as deps/NAME-HASH.
    let exe = std::env::args().next().unwrap_or_default();
    let file = std::path::Path::new(&exe).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let binary = file.rsplit_once('-').map_or(file.as_str(), |(name, _)| name);
    let count = match skipped.len() {
        1 => format!("1 test of {binary} (libtest counted it as passed"),
        n => format!("{n} tests of {binary} (libtest counted them as passed"),
    };
    if !skipped.is_empty() {
        text.push_str(&format!("SKIPPED: {count}; {strict} makes that fail)\n"));
    }
    text.push('\n');
    let mut rest = text.as_bytes();
    while let Ok(n @ 1..) = nix::unistd::write(std::io::stdout(), rest) {
        rest = &rest[n..];
    }
}
