//! `GET /api/events`: the spool's event log as Server-Sent Events, followed across its rotations
//! and woken by the `events.d` fifodir. Each stream has its own thread (at most [`MAX_STREAMS`]),
//! so slow readers never hold a worker. Each event's id is its place in the log (`INODE:OFFSET`,
//! which survives rotation); `?since=ID` or `Last-Event-ID` resumes after it (a bare number is a
//! byte offset in the live file, as ids were before the log rotated), `?recent=N` starts with the
//! last N events; `?audit=true` includes the API's own audit records; `?agents=true` adds `agents`
//! events, the agents that changed (the first: all of them), so a page never polls the list.

use crate::http::{ApiError, Req};
use crate::routes::App;
use af_spool::eventlog::{Cursor, Follower, Start};
use af_spool::fifodir::Fifodir;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The most event streams open at once.
pub const MAX_STREAMS: usize = 64;

/// The `Last-Event-ID` header of a request, if it has one.
pub fn last_event_id(rq: &tiny_http::Request) -> Option<String> {
    rq.headers().iter().find(|h| h.field.equiv("Last-Event-ID")).map(|h| h.value.as_str().to_owned())
}

/// One of the [`MAX_STREAMS`] streams, given back when dropped.
pub struct Slot(Arc<App>);

impl Slot {
    /// A slot, if one is free.
    pub fn take(app: &Arc<App>) -> Option<Slot> {
        if app.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            app.streams.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(app.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer when every stream slot is taken.
pub fn busy() -> ApiError {
    ApiError::new(429, format!("at most {MAX_STREAMS} event streams at once")).with("Retry-After", "5".into())
}

/// Answers with a stream of events, on a thread of its own.
pub fn serve(app: Arc<App>, rq: tiny_http::Request, req: &Req) {
    let resume = last_event_id(&rq).or_else(|| req.param("since").map(str::to_owned));
    let since = match resume.as_deref().map(parse_since) {
        Some(Ok(start)) => Some(start),
        Some(Err(e)) => return reject(rq, e),
        None => None,
    };
    let recent = match req.param("recent").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) if n <= 1000 => n,
        Some(_) => return reject(rq, ApiError::bad("recent must be a number of events from 0 to 1000")),
    };
    let audit = match crate::agent::flag(req.param("audit"), "audit") {
        Ok(a) => a,
        Err(e) => return reject(rq, e),
    };
    let agents = match crate::agent::flag(req.param("agents"), "agents") {
        Ok(a) => a,
        Err(e) => return reject(rq, e),
    };
    let Some(slot) = Slot::take(&app) else { return reject(rq, busy()) };
    let start = since.unwrap_or(if recent == 0 { Start::End } else { Start::Last(recent) });
    std::thread::spawn(move || {
        let _slot = slot;
        let _ = stream(&app, rq, start, audit, agents);
    });
}

/// Where `since` (or `Last-Event-ID`) says to resume.
fn parse_since(s: &str) -> Result<Start, ApiError> {
    if let Ok(offset) = s.parse::<u64>() {
        return Ok(Start::LiveOffset(offset));
    }
    s.parse::<Cursor>()
        .map(Start::At)
        .map_err(|_| ApiError::bad("since (or Last-Event-ID) must be an event id from this stream"))
}

/// Answers a stream's request with an error instead.
pub fn reject(rq: tiny_http::Request, e: ApiError) {
    let reply = e.reply();
    let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        resp.add_header(h);
    }
    for (k, v) in reply.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = rq.respond(resp);
}

/// Takes over the request's connection and writes the head of an event stream.
pub fn open_stream(rq: tiny_http::Request) -> std::io::Result<Box<dyn Write + Send>> {
    let mut out = rq.into_writer();
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n: connected\n\n",
    )?;
    out.flush()?;
    Ok(out)
}

/// How often a stream with `?agents=true` looks for changed agents (heartbeats) when nothing else
/// woke it: the old page polled the list every 2 s.
const AGENTS_EVERY: Duration = Duration::from_secs(2);

fn stream(app: &App, rq: tiny_http::Request, start: Start, audit: bool, agents: bool) -> std::io::Result<()> {
    // Subscribe before looking at the log, so nothing appended in between is missed.
    let mut listener = Fifodir::new(app.spool.events_notify_dir()).subscribe().ok();
    let mut follower = match Follower::open(&app.spool, start) {
        Ok(f) => f,
        Err(e) => {
            reject(rq, e.into());
            return Ok(());
        }
    };
    let mut out = open_stream(rq)?;
    let mut seen: Option<Deltas> = agents.then(Deltas::default);
    let mut quiet = std::time::Instant::now();
    loop {
        // Someone watches live: agents beat at their busy pace while the stream is open.
        let _ = app.spool.mark_watched();
        send_new(&mut follower, audit, &mut out)?;
        if let Some(d) = seen.as_mut() {
            if d.send(app, &mut out)? {
                quiet = std::time::Instant::now();
            }
        }
        let wait = if agents { AGENTS_EVERY } else { Duration::from_secs(15) };
        let woken = match listener.as_mut() {
            Some(l) => l.wait(wait).map(|lines| !lines.is_empty()).unwrap_or(false),
            None => {
                std::thread::sleep(Duration::from_secs(1));
                true
            }
        };
        if woken {
            quiet = std::time::Instant::now();
        } else if quiet.elapsed() >= Duration::from_secs(15) {
            out.write_all(b": keep-alive\n\n")?;
            out.flush()?;
            quiet = std::time::Instant::now();
        }
    }
}

/// What a stream last sent of each agent, to send only what changed: an `agents` event
/// `{"reset", "agents": [summaries], "removed": [ids]}` (the first one resets: every agent).
#[derive(Default)]
struct Deltas {
    sent: Option<std::collections::HashMap<String, serde_json::Value>>,
}

impl Deltas {
    /// Sends the agents that changed since the last call; whether it sent anything.
    fn send(&mut self, app: &App, out: &mut dyn Write) -> std::io::Result<bool> {
        // A snapshot up to a pace old: the streams share one read of the spool per pace.
        let Ok(rows) = app.cache.rows_within(&app.spool, AGENTS_EVERY) else { return Ok(false) };
        let reset = self.sent.is_none();
        let sent = self.sent.get_or_insert_with(Default::default);
        let mut changed = Vec::new();
        let mut now = std::collections::HashSet::new();
        for r in rows.iter() {
            let Some(id) = r["id"].as_str() else { continue };
            now.insert(id.to_owned());
            if sent.get(id) != Some(r) {
                sent.insert(id.to_owned(), r.clone());
                changed.push(r);
            }
        }
        let removed: Vec<String> = sent.keys().filter(|k| !now.contains(*k)).cloned().collect();
        for k in &removed {
            sent.remove(k);
        }
        if !reset && changed.is_empty() && removed.is_empty() {
            return Ok(false);
        }
        let data = serde_json::json!({"reset": reset, "agents": changed, "removed": removed});
        out.write_all(b"event: agents\ndata: ")?;
        out.write_all(&serde_json::to_vec(&data).unwrap_or_default())?;
        out.write_all(b"\n\n")?;
        out.flush()?;
        Ok(true)
    }
}

/// Sends every whole line appended since the last call, each with its place in the log as its id.
fn send_new(follower: &mut Follower, audit: bool, out: &mut dyn Write) -> std::io::Result<()> {
    loop {
        let lines = follower.poll(4 << 20).map_err(std::io::Error::other)?;
        if lines.is_empty() {
            return out.flush();
        }
        for line in lines {
            const AUDIT: &[u8] = b"\"kind\":\"api.request\"";
            if line.bytes.is_empty() || (!audit && line.bytes.windows(AUDIT.len()).any(|w| w == AUDIT)) {
                continue;
            }
            out.write_all(format!("id: {}\ndata: ", line.cursor).as_bytes())?;
            out.write_all(&line.bytes)?;
            out.write_all(b"\n\n")?;
        }
    }
}
