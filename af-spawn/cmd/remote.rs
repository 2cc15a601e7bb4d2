//! `af-spawn stop|start|restart|pause|resume ID@HOST`: the verb travels to HOST's af-bus bridge as a control
//! request (af-ops `bridge::control`), which runs it only with `--allow-control`; its answer is
//! printed as a local run prints, and its error ends this run with the same exit code (4 with
//! error `conflict` when HOST refuses remote control, 5 when no answer came in time).

use super::{Ctx, print_json, print_line};
use af_ops::bridge::control::{self, Request, remote};
use af_spool::ExitCode;
use af_spool::host::own_host;
use std::time::Duration;

/// How much longer than the operation itself a caller waits for the answer from another host.
pub const SLACK: Duration = Duration::from_secs(30);

/// The operation's own time for a verb without a timeout of its own (pause, resume).
pub const QUICK: Duration = Duration::from_secs(5);

/// An agent of another host: its id there, and the host.
pub type Far = (String, String);

/// Splits the arguments into this host's agents (an `@` naming this host dropped) and the
/// `(ID, HOST)` of other hosts'.
pub fn split(args: &[String]) -> anyhow::Result<(Vec<String>, Vec<Far>)> {
    let (mut local, mut far) = (Vec::new(), Vec::new());
    for a in args {
        match control::far(a)? {
            Some((id, host)) => {
                af_spool::AgentId::new(&id)?;
                far.push((id, host));
            }
            None => local.push(control::local(a)?.to_owned()),
        }
    }
    Ok((local, far))
}

/// Runs `verb` on each agent of another host, one after the other; prints what each reported
/// (with `host`), as the local verb prints.
pub fn run(ctx: &Ctx, verb: &str, far: &[Far], force: bool, grace: Duration) -> anyhow::Result<ExitCode> {
    let origin = own_host()?;
    let mut shown = Vec::new();
    for (id, host) in far {
        let request = Request { force, grace_ms: Some(grace.as_millis() as u64), ..Request::new(verb, id, &origin) };
        let mut result = remote(&ctx.spool, host, &request, grace + SLACK)?;
        if result.is_object() {
            result["host"] = host.clone().into();
        }
        shown.push(result);
    }
    if ctx.json {
        print_json(&serde_json::Value::Array(shown))?;
    } else {
        for s in shown {
            print_line(&format!(
                "{}@{} {}",
                s["id"].as_str().unwrap_or(""),
                s["host"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or("")
            ))?;
        }
    }
    Ok(ExitCode::Ok)
}
