//! `recv`, `ack`, `nack`.

use super::{Ctx, address, human, line, say};
use af_spool::message::validate_id;
use af_spool::{Error, ExitCode};
use std::io::BufRead;
use std::time::Duration;

/// `recv`: exit 1 when there is nothing (without --wait), 5 when a wait times out.
pub fn recv(
    ctx: &Ctx,
    queue: &str,
    wait: Option<Option<Duration>>,
    max: usize,
    visibility: Duration,
    ack: bool,
) -> anyhow::Result<ExitCode> {
    if max == 0 {
        return Err(Error::Invalid("--max must be at least 1".into()).into());
    }
    let q = address(ctx, queue)?.queue(&ctx.spool);
    let got = q.receive(max, visibility, wait)?;
    if got.is_empty() {
        return match wait {
            Some(Some(t)) => Err(Error::Timeout(format!("nothing arrived in {queue} within {t:?}")).into()),
            _ => Ok(ExitCode::Negative),
        };
    }
    let mut out = String::new();
    for c in &got {
        out.push_str(&if ctx.json { line(&c.message) } else { human(&c.message) });
        out.push('\n');
    }
    say(out.trim_end())?;
    if ack {
        for c in &got {
            q.ack_receipt(&c.receipt)?;
        }
    }
    Ok(ExitCode::Ok)
}

/// `ack`: ids as arguments, or `-` for one a line on stdin.
pub fn ack(ctx: &Ctx, queue: &str, ids: &[String]) -> anyhow::Result<ExitCode> {
    let q = address(ctx, queue)?.queue(&ctx.spool);
    let mut all: Vec<String> = Vec::new();
    for id in ids {
        if id == "-" {
            for l in std::io::stdin().lock().lines() {
                let l = l.map_err(|e| Error::System(format!("cannot read standard input: {e}")))?;
                if !l.trim().is_empty() {
                    all.push(l.trim().to_owned());
                }
            }
        } else {
            all.push(id.clone());
        }
    }
    for id in &all {
        validate_id(id)?;
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let missing = q.ack(&refs)?;
    if let Some(first) = missing.first() {
        let more = if missing.len() > 1 { format!(" (and {} more)", missing.len() - 1) } else { String::new() };
        return Err(Error::NotFound(format!("message {first} is not claimed in {queue}{more}")).into());
    }
    Ok(ExitCode::Ok)
}

/// `nack`.
pub fn nack(ctx: &Ctx, queue: &str, id: &str, delay: Duration) -> anyhow::Result<ExitCode> {
    validate_id(id)?;
    let q = address(ctx, queue)?.queue(&ctx.spool);
    q.nack(id, delay)?;
    Ok(ExitCode::Ok)
}
