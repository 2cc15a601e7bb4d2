//! An agent's `secrets`: values read from their files each time af-wrap starts a process of the
//! agent (so a rotated file is picked up at the next start), given to that process's environment
//! and to nothing else. af-wrap's own environment, the tmux session's, the spool, the logs and
//! every output hold their names only; an error names the secret and its file, never a value.

use af_spool::record::AgentConfig;

/// The largest secret read (a key, a token, a password; not a file of data).
const MAX_BYTES: u64 = 64 * 1024;

/// The secrets' variables for a process of the agent; Err names the first that cannot be read.
pub fn load(config: &AgentConfig) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(config.secrets.len());
    for (name, source) in &config.secrets {
        let path = &source.file;
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
        out.push((name.clone(), value));
    }
    Ok(out)
}
