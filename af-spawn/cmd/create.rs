//! `af-spawn create`: agents from AgentConfig JSON (one object, an array, or JSON lines), all or
//! nothing; with `--start`, started together once created.

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::{Error, ExitCode};
use anyhow::Context;
use std::io::Read;
use std::path::Path;

/// The most a create reads at once (a batch of configs).
const MAX_INPUT_BYTES: u64 = 64 << 20;

pub fn run(ctx: &Ctx, source: &Path, start: bool, worktree: bool) -> anyhow::Result<ExitCode> {
    let input = read_input(source)?;
    let mut configs = lifecycle::parse_configs(&input)?;
    tracing::debug!(count = configs.len(), "configs parsed");
    for c in &mut configs {
        c.worktree |= worktree;
    }
    let mut progress = af_cli::progress::Progress::new("creating", configs.len());
    let created = lifecycle::create(ctx, configs, &mut || progress.step())?;
    drop(progress);
    if start {
        let mut progress = af_cli::progress::Progress::new("starting", created.len());
        lifecycle::start_many(ctx, &created, true, std::time::Duration::from_secs(10), &mut || progress.step())?;
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
