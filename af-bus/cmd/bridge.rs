//! `bridge`: runs until SIGTERM or SIGINT; `bridge --leave`.

use super::{Ctx, say};
use af_ops::bridge::Bridge;
use af_spool::{Error, ExitCode};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// `bridge`: exit 0 after a stop it was asked for.
pub fn bridge(ctx: &Ctx, url: &str, allow_control: bool) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| Error::System(format!("cannot handle signal {signal}: {e}")))?;
    }
    let host = af_spool::host::own_host()?;
    let mut bridge = Bridge::new(ctx.spool.clone(), host, url, ctx.durable)?;
    bridge.allow_control = allow_control;
    bridge.run(&stop)?;
    Ok(ExitCode::Ok)
}

/// `bridge --leave`: this host leaves the cluster.
pub fn leave(ctx: &Ctx, url: &str) -> anyhow::Result<ExitCode> {
    let host = af_spool::host::own_host()?;
    let bridge = Bridge::new(ctx.spool.clone(), host, url, ctx.durable)?;
    let left = af_ops::bridge::leave::leave(&bridge)?;
    if ctx.json {
        say(&af_cli::json_text(&left)?)?;
    } else {
        let n = |n: u64, one: &str, more: &str| format!("{n} {}", if n == 1 { one } else { more });
        say(&format!(
            "{} left the cluster; bridge:out keeps {} for other hosts and moved {} to its dead letters; {} in its inbound stream",
            left.host,
            n(left.outbox as u64, "message", "messages"),
            n(left.dropped as u64, "mirrored copy", "mirrored copies"),
            n(left.inbound, "entry waits", "entries wait"),
        ))?;
    }
    Ok(ExitCode::Ok)
}
