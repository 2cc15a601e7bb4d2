//! `af-checkpoint rollback`: stop the agent if it runs, restore its working tree, messages, config
//! and conversation, start it again. A mark written first makes a rerun after an interruption
//! finish the job (and still restart an agent that ran when the first attempt began).

use super::{print_json, print_line};
use crate::{archive, gittree, inbox, store};
use af_spool::atomic::{self, Durability};
use af_spool::checkpoint::{Checkpoint, RollbackMark, TreeSnapshot};
use af_spool::record::{AgentConfig, Conversation, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, ExitCode, Spool};
use std::process::Stdio;
use std::time::Instant;

pub fn run(
    spool: &Spool,
    id: &AgentId,
    ckpt: &str,
    restart: bool,
    reset_index: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let _lock = store::lock(spool, id)?;
    let c = store::find(spool, id, ckpt)?;
    let mark_path = spool.rollback_mark_path(id);
    let earlier: Option<RollbackMark> = atomic::read_json(&mark_path).unwrap_or(None);
    let live = spool.observe(id)?.status().is_live();
    let restart = restart && (live || earlier.is_some_and(|m| m.restart));
    let mark = RollbackMark { checkpoint: c.id.clone(), restart, started_at: Timestamp::now() };
    atomic::write_json(&mark_path, &mark, Durability::Durable)?;
    // A stop or start left running by a killed earlier attempt may beat ours to it: what
    // matters is the status afterwards.
    if live {
        if let Err(e) = sibling("af-spawn", &["stop", id.as_str()]) {
            if settled(spool, id)?.is_live() {
                return Err(e);
            }
        }
    }
    restore(spool, id, &c, reset_index)?;
    if restart {
        if let Err(e) = sibling("af-spawn", &["start", id.as_str()]) {
            if settled(spool, id)? != Status::Running {
                return Err(e);
            }
        }
    }
    std::fs::remove_file(&mark_path).map_err(|e| Error::io("remove", &mark_path, e))?;
    let took_ms = t0.elapsed().as_millis() as u64;
    store::announce(
        spool,
        "checkpoint.rolledback",
        id,
        serde_json::json!({"checkpoint": c.id, "restarted": restart, "tookMs": took_ms}),
    );
    if json {
        print_json(&serde_json::json!({"agent": id, "checkpoint": c.id, "restarted": restart, "tookMs": took_ms}))?;
    } else {
        let again = if restart { ", started again" } else { "" };
        print_line(&format!("{id} rolled back to {}{again}", c.id))?;
    }
    Ok(ExitCode::Ok)
}

fn restore(spool: &Spool, id: &AgentId, c: &Checkpoint, reset_index: bool) -> anyhow::Result<()> {
    let dir = spool.checkpoint_dir(id, &c.id);
    match &c.tree {
        Some(TreeSnapshot::Git { repo, tree, .. }) => {
            let repo = gittree::Repo::at(repo)?.with_cache(spool.index_cache_path(id, repo)).excluding(spool.root());
            repo.restore(&store::scratch(spool, id, "index"), tree, reset_index)?;
        }
        Some(TreeSnapshot::Archive { file, .. }) => {
            let workdir =
                c.workdir.as_deref().ok_or_else(|| Error::Invalid("the checkpoint names no workdir".into()))?;
            archive::restore(workdir, &dir.join(file), spool.root())?;
        }
        None => {}
    }
    inbox::restore(spool, id, &dir.join("inbox"))?;
    if let Some(config) = atomic::read_json::<AgentConfig>(&dir.join("config.json"))? {
        if spool.read_config(id)? != config {
            atomic::write_json(&spool.config_path(id), &config, Durability::Durable)?;
        }
    }
    let conversation = match &c.conversation {
        Some(conv) => {
            if let (Some(copy), Some(path)) = (&conv.copy, &conv.transcript) {
                let from = dir.join(copy);
                let bytes = std::fs::read(&from).map_err(|e| Error::io("read", &from, e))?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
                }
                atomic::write(path, &bytes, Durability::Durable)?;
            }
            conv.transcript.clone().map(|transcript| Conversation { session_id: conv.session_id.clone(), transcript })
        }
        None => None,
    };
    spool.update_state(id, |s| s.conversation = conversation)?;
    Ok(())
}

/// The agent's status once no start or stop is under way (waiting up to 20 s for one to end).
fn settled(spool: &Spool, id: &AgentId) -> anyhow::Result<Status> {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = spool.observe(id)?.status();
        if !matches!(status, Status::Starting | Status::Stopping) || Instant::now() >= deadline {
            return Ok(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs a sibling program (af-spawn stop/start); its first line of stderr tells why it failed.
fn sibling(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let path = af_spool::cli::sibling_program(program);
    let out = std::process::Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::System(format!("cannot run {}: {e}", path.display())))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::System(format!(
            "{program} {} failed: {}",
            args.join(" "),
            err.lines().next().unwrap_or("").trim()
        ))
        .into());
    }
    Ok(())
}
