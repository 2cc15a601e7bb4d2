//! `bridge`: runs until SIGTERM or SIGINT.

use super::Ctx;
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
