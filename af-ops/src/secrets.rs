//! Handing an agent's `{"env": "NAME"}` secrets from the program that starts it to its af-wrap,
//! without the values landing on disk or in a long-lived environment.
//!
//! af-wrap is started by the tmux server, not by the starter, so nothing can be inherited; a
//! value put in the session's environment (`new-session -e`) would live in the tmux server and in
//! every process of the session. Instead the starter writes the values (JSON) into a pipe, closes
//! its write end, and names the read end to af-wrap as `/proc/<pid>/fd/<n>` in
//! [`HANDOFF_VAR`]; af-wrap opens that, drains it, keeps the values in its memory and gives them
//! to the agent's process alone. Why a pipe: it has no name in any filesystem (nothing to
//! unlink, nothing left behind by a crash, as a file in a tmpfs would be), the kernel lets only
//! the starter's user open it through `/proc` (the ptrace access check), a read drains it so a
//! second reader finds nothing, and it disappears when the starter closes it, which it does once
//! af-wrap has reported in. The pipe is close-on-exec, so no program the starter runs (tmux)
//! holds it.

use af_spool::record::{AgentConfig, SecretSource};
use af_spool::{Error, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

/// The variable naming the pipe af-wrap takes the values from.
pub const HANDOFF_VAR: &str = "AF_SECRETS_FROM";

/// The most bytes handed over (less than a pipe holds, so the write never waits for a reader).
const MAX_BYTES: usize = 60 * 1024;

/// The variables this process has taken secrets from: kept from every tmux client it runs, so
/// that a tmux server it starts (whose environment every session inherits) never holds them.
static TAKEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The variables secrets were taken from by this process (see [`TAKEN`]).
pub fn taken() -> Vec<String> {
    TAKEN.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default()
}

/// The values on their way: the pipe's read end, held until af-wrap has read it.
#[derive(Debug)]
pub struct Handoff {
    _read: OwnedFd,
    /// Where af-wrap opens it: `/proc/<pid>/fd/<n>`.
    pub path: String,
}

/// The agent's `env` secrets taken from this program's environment, in a pipe; None when the
/// agent has none. Err (invalid) names the first secret whose variable is unset or not text.
pub fn hand_off(config: &AgentConfig) -> Result<Option<Handoff>> {
    let mut values = BTreeMap::new();
    for (name, source) in &config.secrets {
        if let SecretSource::Env(var) = source {
            let value = std::env::var_os(var).ok_or_else(|| {
                Error::Invalid(format!(
                    "agent '{}': secret {name}: variable {var} is not set in the environment of the program starting it",
                    config.id
                ))
            })?;
            let value = value.into_string().map_err(|_| {
                Error::Invalid(format!("agent '{}': secret {name}: variable {var} is not UTF-8 text", config.id))
            })?;
            values.insert(name.clone(), value);
            if let Ok(mut t) = TAKEN.lock() {
                t.insert(var.clone());
            }
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    let text = serde_json::to_vec(&values).map_err(|e| Error::System(format!("cannot encode secrets: {e}")))?;
    if text.len() > MAX_BYTES {
        return Err(Error::Invalid(format!("agent '{}': env secrets exceed {MAX_BYTES} bytes together", config.id)));
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::System(format!("cannot make a pipe for secrets: {e}")))?;
    std::fs::File::from(write)
        .write_all(&text)
        .map_err(|e| Error::System(format!("cannot write secrets into their pipe: {e}")))?;
    let path = format!("/proc/{}/fd/{}", std::process::id(), read.as_raw_fd());
    Ok(Some(Handoff { _read: read, path }))
}

/// In af-wrap: the values handed over through the pipe named by [`HANDOFF_VAR`], by secret
/// name (none without the variable). Err says why they cannot be had, never a value.
pub fn take_handed() -> std::result::Result<BTreeMap<String, String>, String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let Some(path) = std::env::var_os(HANDOFF_VAR) else { return Ok(BTreeMap::new()) };
    let gone = |why: String| format!("env secrets: {why} (the program that started the agent must wait for it)");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| gone(format!("cannot open {}: {e}", path.to_string_lossy())))?;
    let meta = file.metadata().map_err(|e| gone(e.to_string()))?;
    if !meta.file_type().is_fifo() {
        return Err(gone(format!("{} is not a pipe", path.to_string_lossy())));
    }
    let mut text = Vec::new();
    (&mut file)
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| gone(format!("cannot read them: {e}")))?;
    serde_json::from_slice(&text).map_err(|_| gone("the pipe held no complete handoff".into()))
}
