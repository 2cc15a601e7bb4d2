//! An agent's `secrets`: `file` values read from their files each time af-wrap starts a process
//! of the agent (so a rotated file is picked up at the next start), `env` values handed over once
//! by the program that started the agent (through a pipe: af_ops::secrets) and kept in this
//! process's memory. Both are given to the agent's processes' environment and to nothing else.
//! af-wrap's own environment, the tmux session's, the spool, the logs and every output hold
//! their names only; an error names the secret and its source, never a value.

use af_spool::record::{AgentConfig, SecretSource};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The largest secret read (a key, a token, a password; not a file of data).
const MAX_BYTES: u64 = 64 * 1024;

/// The `env` secrets handed over at start, or why they could not be had.
static HANDED: OnceLock<Result<BTreeMap<String, String>, String>> = OnceLock::new();

/// Takes the `env` secrets handed over by the start, once, before anything else (the starter
/// waits for this supervisor to report in, then closes the pipe).
pub fn take_handed() {
    HANDED.get_or_init(af_ops::secrets::take_handed);
}

/// The secrets' variables for a process of the agent; Err names the first that cannot be had.
pub fn load(config: &AgentConfig) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(config.secrets.len());
    for (name, source) in &config.secrets {
        let value = match source {
            SecretSource::File(path) => read_file(name, path)?,
            SecretSource::Env(var) => {
                let handed = HANDED
                    .get_or_init(af_ops::secrets::take_handed)
                    .as_ref()
                    .map_err(|e| format!("secret {name}: {e}"))?;
                handed.get(name).cloned().ok_or_else(|| {
                    format!(
                        "secret {name}: variable {var} was not handed over by the start (af-wrap takes env secrets \
                         only from the program that starts the agent)"
                    )
                })?
            }
        };
        out.push((name.clone(), value));
    }
    Ok(out)
}

/// A `file` secret's value (one trailing newline dropped).
fn read_file(name: &str, path: &std::path::Path) -> Result<String, String> {
    let read = std::fs::metadata(path).and_then(|m| {
        if m.len() > MAX_BYTES {
            return Err(std::io::Error::other(format!("it is larger than {MAX_BYTES} bytes")));
        }
        std::fs::read(path)
    });
    let bytes = read.map_err(|e| format!("secret {name}: cannot read {}: {e}", path.display()))?;
    let mut value =
        String::from_utf8(bytes).map_err(|_| format!("secret {name}: {} is not UTF-8 text", path.display()))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.contains('\0') {
        return Err(format!("secret {name}: {} holds a NUL byte", path.display()));
    }
    Ok(value)
}
