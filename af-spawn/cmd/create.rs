//! `af-spawn create`: agents from AgentConfig JSON (one object, an array, or JSON lines), each
//! created atomically: its directory is built under a hidden name and renamed into place.

use super::{Ctx, print_json, print_line};
use af_spool::atomic::{self, Durability};
use af_spool::record::{AgentConfig, AgentState, Event, MAX_CONFIG_BYTES};
use af_spool::{Error, ExitCode, eventlog};
use anyhow::Context;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most a create reads at once (a batch of configs).
const MAX_INPUT_BYTES: u64 = 64 << 20;

pub fn run(ctx: &Ctx, source: &Path, start: bool, worktree: bool) -> anyhow::Result<ExitCode> {
    let input = read_input(source)?;
    let mut configs = parse(&input)?;
    tracing::debug!(count = configs.len(), "configs parsed");
    for c in &mut configs {
        c.worktree |= worktree;
    }
    // Check everything before changing anything.
    let mut seen = BTreeSet::new();
    for c in &configs {
        if !seen.insert(c.id.clone()) {
            return Err(Error::Invalid(format!("agent '{}' appears twice in the input", c.id)).into());
        }
        if ctx.spool.exists(&c.id) {
            return Err(
                Error::Conflict(format!("agent '{}' exists already (see: af-spawn show {})", c.id, c.id)).into()
            );
        }
        if c.worktree {
            crate::worktree::check(&ctx.spool, c)?;
        }
    }
    // A group commit: every agent's files are written, then all are fsynced (the first fsync
    // commits the journal for the rest), then each directory is renamed into place, and one fsync
    // of the agents directory makes them all durable.
    let mut progress = af_spool::progress::Progress::new("creating", configs.len());
    let mut staged: Vec<(AgentConfig, PathBuf)> = Vec::new();
    let mut created = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for mut config in configs {
            if config.worktree {
                crate::worktree::make(&ctx.spool, &mut config)?;
            }
            match stage(ctx, &config) {
                Ok(dir) => staged.push((config, dir)),
                Err(e) => {
                    if config.worktree {
                        let _ = crate::worktree::remove(&ctx.spool, &config.id);
                    }
                    return Err(e.into());
                }
            }
        }
        for (_, dir) in &staged {
            sync_staged(dir)?;
        }
        for (config, dir) in &staged {
            publish(ctx, config, dir)?;
            created.push(config.id.clone());
            progress.step();
        }
        Ok(())
    })();
    drop(progress);
    if let Err(e) = result {
        // What was not published is undone; what was stays (and is durable).
        for (config, dir) in &staged {
            if !created.contains(&config.id) {
                let _ = std::fs::remove_dir_all(dir);
                if config.worktree {
                    let _ = crate::worktree::remove(&ctx.spool, &config.id);
                }
            }
        }
        let _ = atomic::sync_dir(&ctx.spool.agents_dir());
        return Err(e);
    }
    atomic::sync_dir(&ctx.spool.agents_dir())?;
    tracing::debug!(count = created.len(), "agents created");
    if start {
        super::start::start_many(ctx, &created, true, std::time::Duration::from_secs(10))?;
    }
    if ctx.json {
        print_json(&serde_json::json!(created))?;
    } else {
        for id in &created {
            print_line(id.as_str())?;
        }
    }
    Ok(ExitCode::Ok)
}

fn read_input(source: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if source == Path::new("-") {
        std::io::stdin().take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).context("reading the config from stdin")?;
    } else {
        std::fs::File::open(source)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(format!("no config file {}", source.display())),
                _ => Error::io("open", source, e),
            })?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", source.display()))?;
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::Invalid(format!("the input is larger than {MAX_INPUT_BYTES} bytes")).into());
    }
    Ok(bytes)
}

/// Parses one object, an array of objects, or JSON lines, and validates each config.
fn parse(input: &[u8]) -> anyhow::Result<Vec<AgentConfig>> {
    let text = std::str::from_utf8(input).map_err(|_| Error::Invalid("the config is not UTF-8".into()))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(Error::Invalid("no agent config given (pipe JSON in, or use --config FILE)".into()).into());
    }
    let values: Vec<serde_json::Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?
    } else {
        serde_json::Deserializer::from_str(trimmed)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    values
        .into_iter()
        .map(|v| {
            let raw = serde_json::to_vec(&v).map_err(|e| Error::Invalid(format!("invalid agent config: {e}")))?;
            if raw.len() > MAX_CONFIG_BYTES {
                return Err(Error::Invalid(format!("an agent config is larger than {MAX_CONFIG_BYTES} bytes")).into());
            }
            let mut config = AgentConfig::from_json(&raw)?;
            let dir = cwd.join(config.workdir.take().unwrap_or_else(|| cwd.clone()));
            if !dir.is_dir() {
                return Err(Error::Invalid(format!(
                    "agent '{}': workdir {} is not a directory",
                    config.id,
                    dir.display()
                ))
                .into());
            }
            config.workdir = Some(dir);
            Ok(config)
        })
        .collect()
}

/// Writes the agent's records into a hidden directory of the agents folder (not yet synced).
fn stage(ctx: &Ctx, config: &AgentConfig) -> af_spool::Result<PathBuf> {
    let tmp = ctx.spool.agents_dir().join(atomic::unique_name("new"));
    atomic::create_dir(&tmp)?;
    let written = (|| {
        atomic::write_json(&tmp.join("config.json"), config, Durability::Volatile)?;
        let state = AgentState::new(&config.id, ctx.tmux.socket().map(str::to_owned));
        atomic::write_json(&tmp.join("state.json"), &state, Durability::Volatile)
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
fn sync_staged(dir: &Path) -> af_spool::Result<()> {
    for name in ["config.json", "state.json"] {
        let path = dir.join(name);
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(|e| Error::io("fsync", &path, e))?;
    }
    atomic::sync_dir(dir)
}

/// Renames a staged agent into place (the caller fsyncs the agents directory) and records it.
fn publish(ctx: &Ctx, config: &AgentConfig, staged: &Path) -> anyhow::Result<()> {
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
