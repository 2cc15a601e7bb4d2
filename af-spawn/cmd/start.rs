//! `af-spawn start` and `restart`: the lifecycle operations, then one line (or JSON) per agent.

use super::{Ctx, print_json, print_line};
use af_ops::lifecycle;
use af_spool::{AgentId, ExitCode};
use std::time::Duration;

pub fn run(ctx: &Ctx, ids: &[String], wait: bool, timeout: Duration, keep_going: bool) -> anyhow::Result<ExitCode> {
    let ids: Vec<AgentId> = ids.iter().map(|s| super::agent_id(s)).collect::<Result<_, _>>()?;
    let mut progress = af_cli::progress::Progress::new("starting", ids.len());
    if !keep_going {
        let started = lifecycle::start_many(ctx, &ids, wait, timeout, &mut || progress.step())?;
        drop(progress);
        return emit(ctx, started.iter().map(|(id, obs)| lifecycle::started_report(id, obs)).collect());
    }
    let outcomes = lifecycle::start_each(ctx, &ids, wait, timeout, &mut || progress.step());
    drop(progress);
    // Each failure is one line on stderr (a JSON error document with --json), as a program's own
    // error is; the exit code is the first failure's.
    let mut code = ExitCode::Ok;
    let mut started = Vec::new();
    for (id, outcome) in outcomes {
        match outcome {
            Ok(obs) => started.push(lifecycle::started_report(&id, &obs)),
            Err(e) => {
                if code == ExitCode::Ok {
                    code = e.exit_code();
                }
                af_cli::report(&anyhow::Error::from(e));
            }
        }
    }
    emit(ctx, started)?;
    Ok(code)
}

pub fn restart(ctx: &Ctx, id: &AgentId, grace: Duration) -> anyhow::Result<ExitCode> {
    let obs = lifecycle::restart(ctx, id, grace)?;
    emit(ctx, vec![lifecycle::started_report(id, &obs)])
}

fn emit(ctx: &Ctx, shown: Vec<serde_json::Value>) -> anyhow::Result<ExitCode> {
    if ctx.json {
        print_json(&serde_json::Value::Array(shown))?;
    } else {
        for s in shown {
            let pid = s["pid"].as_u64().map(|p| format!(" (pid {p})")).unwrap_or_default();
            print_line(&format!("{} {}{pid}", s["id"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))?;
        }
    }
    Ok(ExitCode::Ok)
}
