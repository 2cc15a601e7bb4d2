//! `af-spawn create`: agents from AgentConfig JSON (one object, an array, or JSON lines), each
//! created atomically: its directory is built under a hidden name and renamed into place.

use super::{Ctx, print_json, print_line};
use af_spool::atomic::{self, Durability};
use af_spool::record::{AgentConfig, AgentState, Event, MAX_CONFIG_BYTES};
use af_spool::{Error, ExitCode, eventlog};
use anyhow::Context;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

/// The most a create reads at once (a batch of configs).
const MAX_INPUT_BYTES: u64 = 64 << 20;

pub fn run(ctx: &Ctx, source: &Path, start: bool, worktree: bool) -> anyhow::Result<ExitCode> {
    let input = read_input(source)?;
    let mut configs = parse(&input)?;
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
    let mut created = Vec::new();
    let mut progress = af_spool::progress::Progress::new("creating", configs.len());
    for mut config in configs {
        if config.worktree {
            crate::worktree::make(&ctx.spool, &mut config)?;
        }
        if let Err(e) = create_one(ctx, &config) {
            if config.worktree {
                let _ = crate::worktree::remove(&ctx.spool, &config.id);
            }
            return Err(e);
        }
        created.push(config.id);
        progress.step();
    }
    drop(progress);
    // One directory fsync makes every new agent durable (group commit).
    atomic::sync_dir(&ctx.spool.agents_dir())?;
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

fn create_one(ctx: &Ctx, config: &AgentConfig) -> anyhow::Result<()> {
    let spool = &ctx.spool;
    let agents = spool.agents_dir();
    let tmp = agents.join(atomic::unique_name("new"));
    atomic::create_dir(&tmp)?;
    let built = (|| -> af_spool::Result<()> {
        atomic::write_json(&tmp.join("config.json"), config, Durability::Contents)?;
        let state = AgentState::new(&config.id, ctx.tmux.socket().map(str::to_owned));
        atomic::write_json(&tmp.join("state.json"), &state, Durability::Contents)?;
        atomic::sync_dir(&tmp)?;
        let target = spool.agent_dir(&config.id);
        std::fs::rename(&tmp, &target).map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST) => {
                Error::Conflict(format!("agent '{}' exists already", config.id))
            }
            _ => Error::io("rename into", &target, e),
        })
        // The caller fsyncs the agents directory once for the whole batch.
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    eventlog::record(
        spool,
        Event::new(
            "agent.created",
            Some(&config.id),
            serde_json::json!({"type": config.kind, "projectId": config.project_id}),
        ),
    );
    Ok(())
}
