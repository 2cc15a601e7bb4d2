//! `af-checkpoint create`: the checkpoint operation, then its id (or the checkpoint as JSON).

use super::{print_json, print_line};
use af_ops::bridge::control::{self, Request};
use af_spool::host::own_host;
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, description: &str, json: bool) -> anyhow::Result<ExitCode> {
    let c = af_ops::checkpoint::create(spool, id, description)?;
    show(&serde_json::to_value(&c)?, json)
}

/// `create ID@HOST`: HOST's bridge takes the checkpoint (when it allows remote control).
pub fn remote(spool: &Spool, id: &str, host: &str, description: &str, json: bool) -> anyhow::Result<ExitCode> {
    AgentId::new(id)?;
    let request =
        Request { description: Some(description.to_owned()), ..Request::new("checkpoint.create", id, &own_host()?) };
    let mut c = control::remote(spool, host, &request, super::REMOTE_TIMEOUT)?;
    c["host"] = host.into();
    show(&c, json)
}

fn show(c: &serde_json::Value, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        print_json(c)?;
    } else {
        print_line(c["id"].as_str().unwrap_or_default())?;
    }
    Ok(ExitCode::Ok)
}
