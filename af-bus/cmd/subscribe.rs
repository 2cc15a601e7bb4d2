//! `subscribe`, `unsubscribe`, and `tail` (a stream over its own ephemeral subscription).

use super::{Ctx, line, say};
use af_spool::ExitCode;
use af_spool::bus;
use std::time::Duration;

/// `subscribe`.
pub fn subscribe(ctx: &Ctx, name: &str, topic: &str) -> anyhow::Result<ExitCode> {
    bus::subscribe(&ctx.spool, name, topic, false)?;
    if ctx.json {
        say(&af_cli::json_text(&serde_json::json!({"name": name, "topic": topic}))?)?;
    }
    Ok(ExitCode::Ok)
}

/// `unsubscribe`.
pub fn unsubscribe(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    bus::unsubscribe(&ctx.spool, name)?;
    Ok(ExitCode::Ok)
}

/// `tail`: JSON lines of every message published on a matching topic, until SIGINT or SIGTERM
/// (exit 130, see `fifodir::interrupt_waits`), SIGKILL, or its reader goes away. Its subscription
/// lives as long as it does.
pub fn tail(ctx: &Ctx, topic: &str) -> anyhow::Result<ExitCode> {
    let name = format!("tail-{}", std::process::id());
    let _owner = bus::subscribe(&ctx.spool, &name, topic, true)?;
    let q = bus::Address::Sub(name).queue(&ctx.spool);
    loop {
        let got = q.receive(256, Duration::from_secs(60), Some(None))?;
        let mut out = String::new();
        for c in &got {
            out.push_str(&line(&c.message));
            out.push('\n');
        }
        if !out.is_empty() {
            say(out.trim_end())?;
        }
        for c in &got {
            q.ack_receipt(&c.receipt)?;
        }
    }
}
