//! `request` (send, wait for the correlated response) and `reply`.

use super::{Ctx, address, line, make, payload, say, warn_if_idle};
use crate::cli::Make;
use af_ops::bus::Target;
use af_spool::bus::{self, Address, ReplyQueue};
use af_spool::message::Kind;
use af_spool::{Error, ExitCode};
use std::time::{Duration, Instant};

/// How `request` waits and what it makes of the answer.
pub struct How {
    /// How long to wait for the response.
    pub timeout: Duration,
    /// Exit 0 whatever the answer says.
    pub no_fail: bool,
    /// No warning about an agent that is not running.
    pub queue_only: bool,
}

/// `request`: prints the response's payload (the whole response with --json); exit 1 when the
/// payload says `"ok": false` (unless `no_fail`), 5 on timeout.
pub fn request(ctx: &Ctx, to: &str, how: &How, opts: &Make, data: &str) -> anyhow::Result<ExitCode> {
    let timeout = how.timeout;
    let target = address(ctx, to)?;
    let mut m = make(opts, Kind::Request, payload(data)?)?;
    let replies = ReplyQueue::create(&ctx.spool, &m.id)?;
    let mut listener = replies.queue.listen()?;
    m.to = Some(target.to_string());
    m.correlation_id = Some(m.id.clone());
    // A requester on another host is answered through the bridges: `reply:ID@HOST`.
    m.reply_to = Some(match &target {
        Address::Remote { .. } => format!("{}@{}", replies.address, af_spool::host::own_host()?),
        _ => replies.address.to_string(),
    });
    if !how.queue_only {
        warn_if_idle(ctx, &target, Kind::Request);
    }
    let (sent, _) = af_ops::bus::post(&ctx.spool, m, &Target::Queue(target), ctx.durable)?;
    let deadline = Instant::now() + timeout;
    loop {
        for c in replies.queue.claim(16, Duration::from_secs(3600))? {
            if c.message.correlation_id.as_deref() == Some(sent.id.as_str()) {
                say(&if ctx.json { line(&c.message) } else { c.message.payload.to_string() })?;
                let failed = c.message.payload.get("ok") == Some(&serde_json::Value::Bool(false));
                return Ok(if failed && !how.no_fail { ExitCode::Negative } else { ExitCode::Ok });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(
                Error::Timeout(format!("no response from {to} within {timeout:?} (request {})", sent.id)).into()
            );
        }
        listener.wait(left.min(af_spool::queue::RESCAN))?;
    }
}

/// `reply`: a response to the request's reply-to queue, with its correlation id.
pub fn reply(ctx: &Ctx, id: &str, data: &str) -> anyhow::Result<ExitCode> {
    let value = payload(data)?;
    let (_, request) = bus::find_message(&ctx.spool, id)?;
    let Some(reply_to) = request.reply_to.clone() else {
        return Err(Error::Invalid(format!("message {id} has no reply-to queue")).into());
    };
    let target = Address::resolve(&ctx.spool, &reply_to)?;
    let m = request.response(&super::sender(), value);
    let (m, _) = af_ops::bus::post(&ctx.spool, m, &Target::Queue(target), ctx.durable)?;
    say(&if ctx.json { line(&m) } else { m.id })?;
    Ok(ExitCode::Ok)
}
