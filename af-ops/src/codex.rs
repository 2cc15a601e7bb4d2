//! Codex CLI operations: where the CLI keeps its sessions (`$CODEX_HOME`, default `~/.codex`),
//! and the rollout file of one session (`sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The CLI's home for an agent's environment: its `CODEX_HOME`, else af-wrap's, else `~/.codex`.
pub fn home(environment: &BTreeMap<String, String>) -> PathBuf {
    if let Some(d) = environment.get("CODEX_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CODEX_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = environment.get("HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(PathBuf::from));
    home.unwrap_or_default().join(".codex")
}

/// The rollout file (the transcript) of session `thread` under `home`, if the CLI wrote one.
pub fn rollout_path(home: &Path, thread: &str) -> Option<PathBuf> {
    let suffix = format!("-{thread}.jsonl");
    let mut dirs = vec![home.join("sessions")];
    // sessions/YYYY/MM/DD: three levels, newest first is not needed (the id is unique).
    for _ in 0..3 {
        let mut next = Vec::new();
        for d in &dirs {
            let Ok(entries) = std::fs::read_dir(d) else { continue };
            next.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        dirs = next;
    }
    dirs.iter().find_map(|d| {
        std::fs::read_dir(d).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("rollout-") && n.ends_with(&suffix))
        })
    })
}
