//! Creating agents from AgentConfig JSON (one object, an array, or JSON lines), each
//! created atomically: its directory is built under a hidden name and renamed into place.

use super::{Lifecycle, worktree};
use af_spool::atomic::{self, Durability};
use af_spool::record::{AgentConfig, AgentState, Event, MAX_CONFIG_BYTES};
use af_spool::spool::{CONFIG_FILE, STATE_FILE};
use af_spool::{AgentId, Error, Result, eventlog};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Creates agents, all or nothing: every config is checked before anything changes, each agent's
/// directory is built under a hidden name, and all are published together. `step` is called once
/// per agent published (progress). Returns the ids created.
pub fn create(ctx: &Lifecycle, configs: Vec<AgentConfig>, step: &mut dyn FnMut()) -> Result<Vec<AgentId>> {
    // Check everything before changing anything.
    let mut seen = BTreeSet::new();
    for c in &configs {
        if !seen.insert(c.id.clone()) {
            return Err(Error::Invalid(format!("agent '{}' appears twice in the input", c.id)));
        }
        if ctx.spool.exists(&c.id) {
            return Err(Error::Conflict(format!("agent '{}' exists already (see: af-spawn show {})", c.id, c.id)));
        }
        if c.worktree {
            worktree::check(&ctx.spool, c)?;
        }
        crate::claude::check_root_bypass(c, nix::unistd::geteuid().is_root())?;
    }
    // A group commit: every agent's files are written, then all are fsynced (the first fsync
    // commits the journal for the rest), then each directory is renamed into place, and one fsync
    // of the agents directory makes them all durable.
    let mut staged: Vec<(AgentConfig, PathBuf)> = Vec::new();
    let mut created = Vec::new();
    let result = (|| -> Result<()> {
        for mut config in configs {
            if config.worktree {
                worktree::make(&ctx.spool, &mut config)?;
            }
            match stage(ctx, &config) {
                Ok(dir) => staged.push((config, dir)),
                Err(e) => {
                    if config.worktree {
                        let _ = worktree::remove(&ctx.spool, &config.id);
                    }
                    return Err(e);
                }
            }
        }
        for (_, dir) in &staged {
            sync_staged(dir)?;
        }
        for (config, dir) in &staged {
            publish(ctx, config, dir)?;
            created.push(config.id.clone());
            step();
        }
        Ok(())
    })();
    if let Err(e) = result {
        // What was not published is undone; what was stays (and is durable).
        for (config, dir) in &staged {
            if !created.contains(&config.id) {
                let _ = std::fs::remove_dir_all(dir);
                if config.worktree {
                    let _ = worktree::remove(&ctx.spool, &config.id);
                }
            }
        }
        let _ = atomic::sync_dir(&ctx.spool.agents_dir());
        return Err(e);
    }
    atomic::sync_dir(&ctx.spool.agents_dir())?;
    tracing::debug!(count = created.len(), "agents created");
    Ok(created)
}

/// Creates agents and starts them, all or nothing: when any fails to start (its program is
/// missing, its session cannot be built), every agent this call created is stopped and removed
/// again, so their ids are free and their files gone, and the start's error is returned (`Failed`
/// for an agent that failed, saying what was removed). `keep_failed` keeps them instead, as
/// `create` then `start` would. `created` and `started` are called per agent (progress).
pub fn create_started(
    ctx: &Lifecycle,
    configs: Vec<AgentConfig>,
    keep_failed: bool,
    timeout: std::time::Duration,
    created: &mut dyn FnMut(),
    started: &mut dyn FnMut(),
) -> Result<Vec<AgentId>> {
    let ids = create(ctx, configs, created)?;
    let Err(e) = super::start_many(ctx, &ids, true, timeout, started) else { return Ok(ids) };
    if keep_failed {
        return Err(e);
    }
    let names: Vec<&str> = ids.iter().map(AgentId::as_str).collect();
    let undone = match super::rm(ctx, &ids, true) {
        Ok(()) => format!("removed again: {} (--keep-failed keeps what fails)", names.join(", ")),
        Err(r) => format!("removing {} again failed too: {r}", names.join(", ")),
    };
    Err(match e {
        Error::Failed(m) => Error::Failed(format!("{m}; {undone}")),
        Error::Invalid(m) => Error::Invalid(format!("{m}; {undone}")),
        Error::Conflict(m) => Error::Conflict(format!("{m}; {undone}")),
        Error::Timeout(m) => Error::Timeout(format!("{m}; {undone}")),
        Error::System(m) => Error::System(format!("{m}; {undone}")),
        other => {
            tracing::warn!("{undone}");
            other
        }
    })
}

/// Parses one object, an array of objects, or JSON lines, and validates each config; a relative
/// (or missing) workdir is taken from the current directory.
pub fn parse_configs(input: &[u8]) -> Result<Vec<AgentConfig>> {
    let text = std::str::from_utf8(input).map_err(|_| Error::Invalid("the config is not UTF-8".into()))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(Error::Invalid("no agent config given (pipe JSON in, or use --config FILE)".into()));
    }
    let values: Vec<serde_json::Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?
    } else {
        serde_json::Deserializer::from_str(trimmed)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?
    };
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", Path::new("."), e))?;
    values
        .into_iter()
        .map(|v| {
            let raw = serde_json::to_vec(&v).map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?;
            if raw.len() > MAX_CONFIG_BYTES {
                return Err(Error::Invalid(format!("an agent config is larger than {MAX_CONFIG_BYTES} bytes")));
            }
            let mut config = AgentConfig::from_json(&raw)?;
            let dir = cwd.join(config.workdir.take().unwrap_or_else(|| cwd.clone()));
            if !dir.is_dir() {
                return Err(Error::Invalid(format!(
                    "agent '{}': workdir {} is not a directory",
                    config.id,
                    dir.display()
                )));
            }
            config.workdir = Some(dir);
            Ok(config)
        })
        .collect()
}

/// Writes the agent's records into a hidden directory of the agents folder (not yet synced).
fn stage(ctx: &Lifecycle, config: &AgentConfig) -> Result<PathBuf> {
    let tmp = ctx.spool.agents_dir().join(atomic::unique_name("new"));
    atomic::create_dir(&tmp)?;
    let written = (|| {
        atomic::write_json(&tmp.join(CONFIG_FILE), config, Durability::Volatile)?;
        // Until it starts (and its server is chosen): its family's first server.
        let base = config.tmux_socket.as_deref().or(ctx.tmux.socket());
        let state = AgentState::new(&config.id, base.map(str::to_owned));
        atomic::write_json(&tmp.join(STATE_FILE), &state, Durability::Volatile)
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// fsyncs a staged agent's records and its directory.
fn sync_staged(dir: &Path) -> Result<()> {
    for name in [CONFIG_FILE, STATE_FILE] {
        let path = dir.join(name);
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(|e| Error::io("fsync", &path, e))?;
    }
    atomic::sync_dir(dir)
}

/// Renames a staged agent into place (the caller fsyncs the agents directory) and records it.
fn publish(ctx: &Lifecycle, config: &AgentConfig, staged: &Path) -> Result<()> {
    let target = ctx.spool.agent_dir(&config.id);
    std::fs::rename(staged, &target).map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST) => {
            Error::Conflict(format!("agent '{}' exists already", config.id))
        }
        _ => Error::io("rename into", &target, e),
    })?;
    eventlog::record(
        &ctx.spool,
        Event::new(
            "agent.created",
            Some(&config.id),
            serde_json::json!({"type": config.kind, "projectId": config.project_id}),
        ),
    );
    Ok(())
}
