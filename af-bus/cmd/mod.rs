//! af-bus's verbs, one module each, and what they share: the spool, payloads, printing.

mod admin;
mod bridge;
mod interrupt;
mod recv;
mod request;
mod send;
mod subscribe;

use crate::cli::{Cli, Command, Make};
use af_spool::bus::Address;
use af_spool::message::{Kind, Message, Priority, max_bytes};
use af_spool::record::Status;
use af_spool::time::Timestamp;
use af_spool::{Error, ExitCode, Spool};
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

/// What every verb works with.
pub struct Ctx {
    /// The spool.
    pub spool: Spool,
    /// Whether to print JSON.
    pub json: bool,
    /// Whether deliveries are fsynced.
    pub durable: bool,
}

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // SIGINT or SIGTERM during a wait (recv --wait, request, tail, interrupt) ends it with exit 130 and one line.
    // (The bridge handles them itself: it stops cleanly.)
    if !matches!(cli.command, Command::Bridge { .. }) {
        af_spool::fifodir::interrupt_waits()?;
    }
    let ctx = Ctx { spool: Spool::open_default()?, json: cli.json, durable: !cli.no_fsync };
    match cli.command {
        Command::Send { to, make, kind, reply_to, batch, queue_only, data } => {
            let how = send::How { reply_to: reply_to.as_deref(), batch, queue_only };
            send::send(&ctx, to.as_deref(), &make, &kind, &how, data.as_deref())
        }
        Command::Broadcast { project, make, data } => send::broadcast(&ctx, project, &make, &data),
        Command::Publish { topic, make, data } => send::publish(&ctx, &topic, &make, &data),
        Command::Subscribe { name, topic } => subscribe::subscribe(&ctx, &name, &topic),
        Command::Unsubscribe { name } => subscribe::unsubscribe(&ctx, &name),
        Command::Tail { topic } => subscribe::tail(&ctx, &topic),
        Command::Recv { queue, wait, timeout, max, visibility, ack } => {
            let timeout = timeout.map(seconds).transpose()?;
            recv::recv(&ctx, &queue, wait.then_some(timeout), max, seconds(visibility)?, ack)
        }
        Command::Ack { queue, ids } => recv::ack(&ctx, &queue, &ids),
        Command::Nack { queue, id, delay } => recv::nack(&ctx, &queue, &id, seconds(delay)?),
        Command::Request { to, timeout, no_fail, queue_only, make, data } => {
            let how = request::How { timeout: seconds(timeout)?, no_fail, queue_only };
            request::request(&ctx, &to, &how, &make, &data)
        }
        Command::Reply { id, data } => request::reply(&ctx, &id, &data),
        Command::History { queue, limit } => admin::history(&ctx, &queue, limit),
        Command::Clear { queue } => admin::clear(&ctx, &queue),
        Command::Stats { cluster, redis } => admin::stats(&ctx, cluster.then_some(redis.url.as_str())),
        Command::Dead { queue } => admin::dead(&ctx, &queue),
        Command::Retry { queue, id } => admin::retry(&ctx, &queue, &id),
        Command::Bridge { redis, allow_control, leave: false } => bridge::bridge(&ctx, &redis.url, allow_control),
        Command::Bridge { redis, leave: true, .. } => bridge::leave(&ctx, &redis.url),
        Command::Interrupt { id, timeout } => interrupt::interrupt(&ctx, &id, seconds(timeout)?),
    }
}

/// Seconds from the command line as a Duration.
pub fn seconds(s: f64) -> af_spool::Result<Duration> {
    if !s.is_finite() || !(0.0..=1e9).contains(&s) {
        return Err(Error::Invalid(format!("{s} is not a number of seconds")));
    }
    Ok(Duration::from_secs_f64(s))
}

/// The payload: DATA as JSON, or standard input for `-` (saying so on a terminal, where a
/// person might otherwise wait for af-bus while it waits for them).
pub fn payload(data: &str) -> af_spool::Result<serde_json::Value> {
    let text = if data == "-" {
        if std::io::stdin().is_terminal() {
            let _ = writeln!(
                std::io::stderr(),
                "af-bus: reading the payload (JSON) from standard input; end it with Ctrl-D"
            );
        }
        let mut buf = Vec::new();
        std::io::stdin()
            .take(max_bytes() as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::System(format!("cannot read standard input: {e}")))?;
        buf
    } else {
        data.as_bytes().to_vec()
    };
    if text.len() > max_bytes() {
        return Err(Error::Invalid(format!("message is over the limit of {} bytes (AF_BUS_MAX_BYTES)", max_bytes())));
    }
    serde_json::from_slice(&text).map_err(|e| Error::Invalid(format!("the payload is not valid JSON: {e}")))
}

/// Who is sending: the agent we run in (`AF_AGENT_ID`), else `cli`.
pub fn sender() -> String {
    std::env::var("AF_AGENT_ID").ok().filter(|s| af_spool::AgentId::new(s).is_ok()).unwrap_or_else(|| "cli".into())
}

/// A new message with the shared options applied.
pub fn make(make: &Make, kind: Kind, payload: serde_json::Value) -> af_spool::Result<Message> {
    let mut m = Message::new(&sender(), kind, Priority::parse(&make.priority)?, payload);
    if let Some(ttl) = make.ttl {
        m.expires_at = Some(Timestamp(m.created_at.0 + seconds(ttl)?.as_millis() as u64));
    }
    Ok(m)
}

/// Warns in one line on stderr when a task or request goes to the inbox of an agent that is not
/// running (created, stopped, failed): it waits there until the agent runs.
pub fn warn_if_idle(ctx: &Ctx, target: &Address, kind: Kind) {
    let Address::Inbox(id) = target else { return };
    if !matches!(kind, Kind::Task | Kind::Request) {
        return;
    }
    let Ok(obs) = ctx.spool.observe(id) else { return };
    let status = obs.status();
    if matches!(status, Status::Created | Status::Stopping | Status::Stopped | Status::Failed) {
        let _ = writeln!(
            std::io::stderr(),
            "af-bus: agent '{id}' is {}: the {} waits in its inbox until it runs (af-spawn start {id})",
            status.as_str(),
            kind_name(kind)
        );
    }
}

/// Resolves a queue name.
pub fn address(ctx: &Ctx, queue: &str) -> af_spool::Result<Address> {
    Address::resolve(&ctx.spool, queue)
}

/// Prints one line on stdout.
pub fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// One message as a person reads it.
pub fn human(m: &Message) -> String {
    let to = m.topic.as_deref().or(m.to.as_deref()).unwrap_or("-");
    let tries = if m.attempts > 0 { format!(" (attempt {})", m.attempts + 1) } else { String::new() };
    format!("{} {} {} {} -> {}{tries}: {}", m.id, m.priority.as_str(), kind_name(m.kind), m.from, to, m.payload)
}

fn kind_name(k: Kind) -> String {
    serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// One message as a JSON line.
pub fn line(m: &Message) -> String {
    af_cli::json_text(m).unwrap_or_default()
}
