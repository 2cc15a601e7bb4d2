//! `af-spawn create`: agents from AgentConfig JSON (one object, an array, or JSON lines), all or
//! nothing; with `--start`, started together once created.

use super::{Ctx, print_json, print_line};
use af_cli::progress::Progress;
use af_ops::lifecycle;
use af_spool::{Error, ExitCode};
use anyhow::Context;
use std::io::Read;
use std::io::Write;
use std::path::Path;

/// The most a create reads at once (a batch of configs).
const MAX_INPUT_BYTES: u64 = 64 << 20;

/// `--start`, and what to do with agents that fail to.
pub struct Start {
    /// Keep them (failed) instead of removing them again.
    pub keep_failed: bool,
}

pub fn run(ctx: &Ctx, source: &Path, start: Option<Start>, worktree: bool) -> anyhow::Result<ExitCode> {
    let input = read_input(source)?;
    let mut configs = lifecycle::parse_configs(&input)?;
    tracing::debug!(count = configs.len(), "configs parsed");
    for c in &mut configs {
        c.worktree |= worktree;
    }
    warn_plain_secrets(&configs);
    // The creating line ends (its newline) where the starting line begins.
    let creating = std::cell::RefCell::new(Some(Progress::new("creating", configs.len())));
    let mut created = || creating.borrow_mut().as_mut().map_or((), Progress::step);
    let created = match start {
        None => lifecycle::create(ctx, configs, &mut created)?,
        Some(Start { keep_failed }) => {
            let mut starting = Progress::new("starting", configs.len());
            let timeout = lifecycle::DEFAULT_START_TIMEOUT;
            lifecycle::create_started(ctx, configs, keep_failed, timeout, &mut created, &mut || {
                creating.borrow_mut().take();
                starting.step()
            })?
        }
    };
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

/// Says once, on stderr, which environment values look like secrets: they are kept in
/// `config.json` in plain text (and masked in every output), where `secrets` would keep them out
/// of the spool.
fn warn_plain_secrets(configs: &[af_spool::record::AgentConfig]) {
    let found: Vec<String> =
        configs.iter().flat_map(|c| c.plain_secrets().into_iter().map(move |k| format!("{k} ({})", c.id))).collect();
    if let Some(first) = found.first() {
        let name = first.split(' ').next().unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "af-spawn: environment {} looks like a secret, kept in config.json in plain text (masked in output); \"secrets\": {{\"{name}\": {{\"file\": \"/path/to/it\"}}}} keeps it out of the spool",
            found.join(", ")
        );
    }
}
