//! `send` (one message, or a batch of JSON lines), `broadcast`, `publish`.

use super::{Ctx, address, line, make, payload, say, warn_if_idle};
use crate::cli::Make;
use af_ops::bus::Target;
use af_spool::bus::{Address, validate_project, validate_topic};
use af_spool::message::{Kind, Message, max_bytes};
use af_spool::{Error, ExitCode};
use std::io::BufRead;

/// How `send` sends.
pub struct How<'a> {
    /// Where responses go.
    pub reply_to: Option<&'a str>,
    /// JSON lines on stdin, one message each.
    pub batch: bool,
    /// No warning about an agent that is not running.
    pub queue_only: bool,
}

/// `send`.
pub fn send(
    ctx: &Ctx,
    to: Option<&str>,
    opts: &Make,
    kind: &str,
    how: &How,
    data: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let kind = Kind::parse(kind)?;
    let reply_to = how.reply_to;
    if let Some(r) = reply_to {
        address(ctx, r)?;
    }
    if how.batch {
        return send_batch(ctx, to, opts, kind, how);
    }
    let to = to.ok_or_else(|| Error::Invalid("send needs --to QUEUE (or --batch)".into()))?;
    let target = address(ctx, to)?;
    let mut m = make(opts, kind, payload(data.unwrap_or("-"))?)?;
    m.to = Some(target.to_string());
    m.reply_to = reply_to.map(|r| answer_at(r, &target)).transpose()?;
    if !how.queue_only {
        warn_if_idle(ctx, &target, kind);
    }
    let (m, _) = af_ops::bus::post(&ctx.spool, m, &Target::Queue(target), ctx.durable)?;
    say(&if ctx.json { line(&m) } else { m.id })?;
    Ok(ExitCode::Ok)
}

/// A reply-to queue as the receiver must name it: a local queue of a message to another host is
/// `QUEUE@<this host>`.
fn answer_at(reply_to: &str, target: &Address) -> af_spool::Result<String> {
    let (_, host) = af_spool::host::split_host(reply_to)?;
    Ok(match (target, host) {
        (Address::Remote { .. }, None) => format!("{reply_to}@{}", af_spool::host::own_host()?),
        _ => reply_to.to_owned(),
    })
}

/// One line of a batch without --to.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchLine {
    to: String,
    #[serde(default)]
    payload: serde_json::Value,
    priority: Option<String>,
    kind: Option<String>,
    reply_to: Option<String>,
    ttl: Option<f64>,
}

/// `send --batch`: every line is checked before anything is sent.
fn send_batch(ctx: &Ctx, to: Option<&str>, opts: &Make, kind: Kind, how: &How) -> anyhow::Result<ExitCode> {
    let reply_to = how.reply_to;
    let fixed = to.map(|t| address(ctx, t)).transpose()?;
    let mut planned = Vec::new();
    for (n, text) in std::io::stdin().lock().lines().enumerate() {
        let text = text.map_err(|e| Error::System(format!("cannot read standard input: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |e: String| Error::Invalid(format!("line {}: {e}", n + 1));
        let at = |e: Error| at_line(n + 1, e);
        if text.len() > max_bytes() {
            return Err(bad(format!("over the limit of {} bytes (AF_BUS_MAX_BYTES)", max_bytes())).into());
        }
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let (target, mut m) = match &fixed {
            Some(t) => (t.clone(), make(opts, kind, value).map_err(at)?),
            None => {
                let l: BatchLine = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
                let target = address(ctx, &l.to).map_err(at)?;
                let o = Make { priority: l.priority.unwrap_or_else(|| opts.priority.clone()), ttl: l.ttl.or(opts.ttl) };
                let k = l.kind.as_deref().map(Kind::parse).transpose().map_err(at)?;
                let mut m = make(&o, k.unwrap_or(kind), l.payload).map_err(at)?;
                m.reply_to = l.reply_to;
                (target, m)
            }
        };
        if m.reply_to.is_none() {
            m.reply_to = reply_to.map(str::to_owned);
        }
        m.reply_to = m.reply_to.map(|r| answer_at(&r, &target)).transpose().map_err(at)?;
        m.to = Some(target.to_string());
        m.encode().map_err(at)?;
        planned.push((m, Target::Queue(target)));
    }
    if !how.queue_only {
        // One word per idle agent, however many of its tasks the batch holds.
        let mut told = std::collections::BTreeSet::new();
        for (m, target) in &planned {
            if let Target::Queue(queue) = target {
                if matches!(m.kind, Kind::Task | Kind::Request) && told.insert(queue.to_string()) {
                    warn_if_idle(ctx, queue, m.kind);
                }
            }
        }
    }
    // Ids are printed once every message is delivered (and, durable, its directory synced).
    let mut out = String::new();
    for m in af_ops::bus::post_many(&ctx.spool, planned, ctx.durable)? {
        out.push_str(&if ctx.json { line(&m) } else { m.id });
        out.push('\n');
    }
    if !out.is_empty() {
        say(out.trim_end())?;
    }
    Ok(ExitCode::Ok)
}

/// `broadcast`.
pub fn broadcast(ctx: &Ctx, project: Option<String>, opts: &Make, data: &str) -> anyhow::Result<ExitCode> {
    if let Some(p) = &project {
        validate_project(p)?;
    }
    let mut m = make(opts, Kind::Broadcast, payload(data)?)?;
    m.to = Some(project.as_ref().map_or_else(|| "*".to_owned(), |p| format!("project:{p}")));
    let (m, n) = af_ops::bus::post(&ctx.spool, m, &Target::Broadcast(project), ctx.durable)?;
    print_fanout(ctx, &m, n)
}

/// `publish`: no subscriber is fine.
pub fn publish(ctx: &Ctx, topic: &str, opts: &Make, data: &str) -> anyhow::Result<ExitCode> {
    validate_topic(topic, false)?;
    let mut m = make(opts, Kind::Event, payload(data)?)?;
    m.topic = Some(topic.to_owned());
    let (m, n) = af_ops::bus::post(&ctx.spool, m, &Target::Topic, ctx.durable)?;
    print_fanout(ctx, &m, n)
}

fn print_fanout(ctx: &Ctx, m: &Message, n: usize) -> anyhow::Result<ExitCode> {
    if ctx.json {
        say(&af_cli::json_text(&serde_json::json!({"id": m.id, "delivered": n}))?)?;
    } else {
        say(&format!("{} (to {n} queue{})", m.id, if n == 1 { "" } else { "s" }))?;
    }
    Ok(ExitCode::Ok)
}

/// The same error, its message prefixed with the batch line it is about.
fn at_line(n: usize, e: Error) -> Error {
    let m = |t: String| format!("line {n}: {t}");
    match e {
        Error::Invalid(t) => Error::Invalid(m(t)),
        Error::NotFound(t) => Error::NotFound(m(t)),
        Error::Conflict(t) => Error::Conflict(m(t)),
        Error::Timeout(t) => Error::Timeout(m(t)),
        Error::System(t) => Error::System(m(t)),
        other => other,
    }
}
