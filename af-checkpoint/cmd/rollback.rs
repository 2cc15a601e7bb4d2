//! `af-checkpoint rollback`: the rollback operation (stop, restore, start again), then a line.

use super::{print_json, print_line};
use af_ops::bridge::control::{self, Request};
use af_ops::lifecycle::Lifecycle;
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(
    spool: &Spool,
    id: &AgentId,
    ckpt: &str,
    restart: bool,
    reset_index: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ctx = Lifecycle::of(spool.clone());
    let done = af_ops::rollback::rollback(&ctx, id, ckpt, restart, reset_index)?;
    show(id.as_str(), &serde_json::to_value(&done)?, json)
}

/// `rollback ID@HOST CKPT`: HOST's bridge rolls its agent back (when it allows remote control).
pub fn remote(spool: &Spool, host: &str, request: &Request, json: bool) -> anyhow::Result<ExitCode> {
    AgentId::new(&request.agent)?;
    let mut done = control::remote(spool, host, request, super::REMOTE_TIMEOUT)?;
    done["host"] = host.into();
    show(&format!("{}@{host}", request.agent), &done, json)
}

fn show(who: &str, done: &serde_json::Value, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        print_json(done)?;
    } else {
        let again = if done["restarted"] == true { ", started again" } else { "" };
        print_line(&format!("{who} rolled back to {}{again}", done["checkpoint"].as_str().unwrap_or_default()))?;
    }
    Ok(ExitCode::Ok)
}
