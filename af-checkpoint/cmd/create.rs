//! `af-checkpoint create`: the checkpoint operation, then its id (or the checkpoint as JSON).

use super::{print_json, print_line};
use af_spool::{AgentId, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, description: &str, json: bool) -> anyhow::Result<ExitCode> {
    let c = af_ops::checkpoint::create(spool, id, description)?;
    if json {
        print_json(&serde_json::to_value(&c)?)?;
    } else {
        print_line(c.id.as_str())?;
    }
    Ok(ExitCode::Ok)
}
