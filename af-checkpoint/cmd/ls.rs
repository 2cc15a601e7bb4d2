//! `af-checkpoint ls` and `show`.

use super::{print_json, print_line};
use af_ops::checkpoint::store;
use af_spool::checkpoint::{Checkpoint, TreeSnapshot};
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, json: bool) -> anyhow::Result<ExitCode> {
    spool.require(id)?;
    let all = spool.checkpoints(id)?;
    if json {
        return print_json(&serde_json::to_value(&all)?).map(|()| ExitCode::Ok);
    }
    for c in &all {
        print_line(&format!("{}  {}  {:<28}  {}", c.id, c.created_at.rfc3339(), c.holds.join(","), c.description))?;
    }
    Ok(ExitCode::Ok)
}

pub fn show(spool: &Spool, id: &AgentId, ckpt: &str, json: bool) -> anyhow::Result<ExitCode> {
    let c = store::find(spool, id, ckpt)?;
    if json {
        return print_json(&serde_json::to_value(&c)?).map(|()| ExitCode::Ok);
    }
    for line in describe(&c) {
        print_line(&line)?;
    }
    Ok(ExitCode::Ok)
}

fn describe(c: &Checkpoint) -> Vec<String> {
    let mut lines = vec![
        format!("checkpoint   {}", c.id),
        format!("agent        {}", c.agent),
        format!("created      {} ({} ms)", c.created_at.rfc3339(), c.took_ms),
        format!("description  {}", c.description),
        format!("holds        {}", c.holds.join(", ")),
        format!("messages     {}", c.messages),
    ];
    if let Some(w) = &c.workdir {
        lines.push(format!("workdir      {}", w.display()));
    }
    match &c.tree {
        Some(TreeSnapshot::Git { repo, reference, commit, .. }) => {
            lines.push(format!("tree         git {} {reference} ({commit})", repo.display()));
        }
        Some(TreeSnapshot::Archive { file, bytes }) => {
            lines.push(format!("tree         archive {file} ({bytes} bytes)"))
        }
        None => {}
    }
    if let Some(conv) = &c.conversation {
        lines.push(format!("conversation {}", conv.session_id));
    }
    lines
}
