//! `GET /api/events`: the spool's event log as Server-Sent Events, tailed from the file and woken
//! by the `events.d` fifodir. Each stream has its own thread (at most [`MAX_STREAMS`]), so slow
//! readers never hold a worker. `?since=OFFSET` or `Last-Event-ID` resumes where a stream left
//! off, `?recent=N` starts with the last N events; `?audit=true` includes the API's own audit
//! records.

use crate::http::{ApiError, Req};
use crate::routes::App;
use af_spool::fifodir::Fifodir;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The most event streams open at once.
pub const MAX_STREAMS: usize = 64;

/// Answers with a stream of events, on a thread of its own.
pub fn serve(app: Arc<App>, rq: tiny_http::Request, req: &Req) {
    let resume = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Last-Event-ID"))
        .map(|h| h.value.as_str().to_owned())
        .or_else(|| req.param("since").map(str::to_owned));
    let since = match resume.map(|s| s.parse::<u64>()) {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return reject(rq, ApiError::bad("since (or Last-Event-ID) must be a byte offset")),
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
    if app.streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        app.streams.fetch_sub(1, Ordering::SeqCst);
        return reject(
            rq,
            ApiError::new(429, format!("at most {MAX_STREAMS} event streams at once")).with("Retry-After", "5".into()),
        );
    }
    std::thread::spawn(move || {
        let _busy = app.busy.hold(rq.remote_addr().copied());
        let _ = stream(&app, rq, since, recent, audit);
        app.streams.fetch_sub(1, Ordering::SeqCst);
    });
}

fn reject(rq: tiny_http::Request, e: ApiError) {
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

fn stream(app: &App, rq: tiny_http::Request, since: Option<u64>, recent: usize, audit: bool) -> std::io::Result<()> {
    // Subscribe before looking at the log, so nothing appended in between is missed.
    let mut listener = Fifodir::new(app.spool.events_notify_dir()).subscribe().ok();
    let path = app.spool.events_path();
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut offset = since.unwrap_or_else(|| tail_offset(&path, len, recent)).min(len);
    let mut out = rq.into_writer();
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 2000\n: connected\n\n",
    )?;
    out.flush()?;
    loop {
        offset = send_new(&path, offset, audit, &mut out)?;
        let woken = match listener.as_mut() {
            Some(l) => l.wait(Duration::from_secs(15)).map(|lines| !lines.is_empty()).unwrap_or(false),
            None => {
                std::thread::sleep(Duration::from_secs(1));
                true
            }
        };
        if !woken {
            out.write_all(b": keep-alive\n\n")?;
            out.flush()?;
        }
    }
}

/// The offset of the last `n` lines of the log (looking at its last 256 KiB at most).
fn tail_offset(path: &std::path::Path, len: u64, n: usize) -> u64 {
    if n == 0 {
        return len;
    }
    let start = len.saturating_sub(256 << 10);
    let mut buf = Vec::new();
    let read = std::fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(start))?;
        f.take(len - start).read_to_end(&mut buf)
    });
    if read.is_err() {
        return len;
    }
    // The newline ending each of the last n lines, then the one before them.
    let newlines: Vec<usize> = buf.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
    match newlines.len().checked_sub(n + 1) {
        Some(i) => start + newlines[i] as u64 + 1,
        None if start == 0 => 0,
        None => start + newlines.first().map_or(0, |&i| i as u64 + 1),
    }
}

/// Sends the whole lines appended since `offset`; returns the new offset.
fn send_new(path: &std::path::Path, offset: u64, audit: bool, out: &mut dyn Write) -> std::io::Result<u64> {
    let Ok(mut f) = std::fs::File::open(path) else { return Ok(offset) };
    let len = f.metadata()?.len();
    let offset = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(4 << 20).read_to_end(&mut buf)?;
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else { return Ok(offset) };
    let mut at = offset;
    for line in buf[..=end].split(|&b| b == b'\n') {
        at += line.len() as u64 + 1;
        if line.is_empty() {
            continue;
        }
        const AUDIT: &[u8] = b"\"kind\":\"api.request\"";
        if !audit && line.windows(AUDIT.len()).any(|w| w == AUDIT) {
            continue;
        }
        out.write_all(format!("id: {at}\ndata: ").as_bytes())?;
        out.write_all(line)?;
        out.write_all(b"\n\n")?;
    }
    out.flush()?;
    Ok(offset + end as u64 + 1)
}
