//! Starting af-api: the token, the listening socket, the limits its clients are held to (in our
//! patched tiny_http: a connection cap below the descriptor limit, read deadlines, a cap on the
//! request head), a bounded pool of workers, and the gate (Host, rate, token, method, size, media
//! type) every request passes before its handler.

use crate::cli::{Cli, Command};
use crate::guard::{self, Hosts, RateLimit, Token};
use crate::http::{ApiError, MAX_BODY, Reply, Req, split_target};
use crate::routes::{App, Resource, dispatch};
use af_spool::time::Timestamp;
use af_spool::{Error, ExitCode, Spool};
use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The largest request head (request line and headers) read; past it, 431.
pub const MAX_HEAD: usize = 16 << 10;
/// How long a keep-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request, head and body, may take to arrive from its first byte (slow clients).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to a client may block (a client that stops reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many client connections, whatever the descriptor limit (each is a thread).
const MAX_CONNECTIONS: u64 = 1024;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Token { show }) = cli.command {
        return token(cli.token_file.as_deref(), show, cli.json);
    }
    let addr = resolve(&cli.listen)?;
    if !addr.ip().is_loopback() && cli.token_file.is_none() {
        return Err(Error::Invalid(format!(
            "refusing to listen on {addr} (beyond loopback) without --token-file: create a token file (0600) and name it"
        ))
        .into());
    }
    let spool = Spool::open_default()?;
    let (token, token_path) = Token::load(&spool, cli.token_file.as_deref())?;
    let listener = TcpListener::bind(addr).map_err(|e| Error::System(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| Error::System(format!("cannot read the bound address: {e}")))?;
    let server = tiny_http::Server::from_listener_with_limits(listener, None, limits())
        .map_err(|e| Error::System(format!("cannot serve on {bound}: {e}")))?;
    let server = Arc::new(server);
    // The token goes to a person at a terminal only: a pipe or the journal keeps logs, so they
    // get the address and, on stderr, the token file's path.
    let url = if std::io::stdout().is_terminal() {
        format!("http://{}/#token={}", shown(bound), token.text())
    } else {
        format!("http://{}/", shown(bound))
    };
    let app = Arc::new(App {
        spool,
        hosts: Hosts::new(bound, &cli.allow_host),
        rate: RateLimit::new(cli.rate_limit.max(0.0), cli.burst),
        token,
        cache: Default::default(),
        started: Timestamp::now(),
        requests: Default::default(),
        limited: Default::default(),
        streams: Default::default(),
        host: crate::host::Host::new(),
        metrics_public: cli.metrics_public,
        http: Default::default(),
        pending: Default::default(),
    });
    let (fatal_tx, fatal_rx) = std::sync::mpsc::channel::<String>();
    for _ in 0..cli.workers {
        let (server, app, fatal) = (server.clone(), app.clone(), fatal_tx.clone());
        std::thread::spawn(move || {
            loop {
                match server.recv() {
                    Ok(rq) => handle(&app, rq),
                    Err(e) => {
                        let _ = fatal.send(e.to_string());
                        return;
                    }
                }
            }
        });
    }
    let _ = writeln!(std::io::stderr(), "af-api: listening on {bound}; bearer token in {}", token_path.display());
    let mut out = std::io::stdout().lock();
    if cli.json {
        let line = serde_json::json!({"url": url, "listen": bound.to_string(), "tokenFile": token_path});
        writeln!(out, "{}", af_cli::json_text(&line)?)?;
    } else {
        writeln!(out, "{url}")?;
    }
    out.flush()?;
    drop(out);
    let why = fatal_rx.recv().unwrap_or_else(|_| "every worker ended".into());
    Err(Error::System(format!("the accept loop ended: {why}")).into())
}

/// `af-api token`: where the token is (made as the server makes it on first start), or the token.
fn token(file: Option<&std::path::Path>, show: bool, json: bool) -> anyhow::Result<ExitCode> {
    let spool = Spool::open_default()?;
    let (token, path) = Token::load(&spool, file)?;
    let line = match (json, show) {
        (true, false) => af_cli::json_text(&serde_json::json!({"tokenFile": path}))?,
        (true, true) => af_cli::json_text(&serde_json::json!({"tokenFile": path, "token": token.text()}))?,
        (false, false) => path.display().to_string(),
        (false, true) => token.text(),
    };
    af_cli::print_line(&line)?;
    Ok(ExitCode::Ok)
}

/// What a client may do: tiny_http as shipped has no limits at all (see vendor/tiny_http).
fn limits() -> tiny_http::Limits {
    tiny_http::Limits {
        max_connections: Some(max_connections()),
        idle_timeout: Some(IDLE_TIMEOUT),
        request_timeout: Some(REQUEST_TIMEOUT),
        write_timeout: Some(WRITE_TIMEOUT),
        max_head_bytes: Some(MAX_HEAD),
    }
}

/// The connection cap: each connection holds one descriptor, and a quarter of the limit (at
/// least 48) stays for the spool, event streams and the tools' pipes. Connections beyond the cap
/// wait in the listen backlog instead of running the process out of descriptors.
fn max_connections() -> usize {
    let soft =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let reserve = (soft / 4).max(48);
    soft.saturating_sub(reserve).clamp(8, MAX_CONNECTIONS) as usize
}

fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    let mut addrs =
        listen.to_socket_addrs().map_err(|e| Error::Invalid(format!("--listen {listen:?} is not ADDR:PORT: {e}")))?;
    Ok(addrs.next().ok_or_else(|| Error::Invalid(format!("--listen {listen:?} names no address")))?)
}

/// The address as a browser should reach it: a wildcard bind is reached through loopback.
fn shown(bound: SocketAddr) -> String {
    match bound {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        a => a.to_string(),
    }
}

fn header<'a>(rq: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    rq.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

/// Passes a request through the gate, answers it, and audits it when it changes something.
fn handle(app: &Arc<App>, mut rq: tiny_http::Request) {
    let began = std::time::Instant::now();
    app.requests.fetch_add(1, Ordering::Relaxed);
    let (path, query) = split_target(rq.url());
    let client_ip = rq.remote_addr().map(|a| a.ip()).unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut req = Req {
        method: rq.method().as_str().to_ascii_uppercase(),
        path,
        query,
        body: Vec::new(),
        client: client_ip.to_string(),
    };
    let mutating = !matches!(req.method.as_str(), "GET" | "HEAD");
    let res = match gate(app, &mut rq, &mut req, client_ip) {
        Ok(res) => res,
        Err(e) => {
            if e.status == 429 {
                app.limited.fetch_add(1, Ordering::Relaxed);
            } else if mutating {
                let authorized = !matches!(e.status, 401 | 403 | 404 | 405);
                guard::audit(&app.spool, &req, if authorized { &app.token.id } else { "-" }, e.status);
            }
            let route = Resource::of(&req.path).map_or("unknown", |r| r.route());
            app.http.record(route, e.status, began.elapsed());
            return respond(rq, e.reply());
        }
    };
    if res == Resource::Events {
        return crate::events::serve(app.clone(), rq, &req);
    }
    if let Resource::OutputStream(id) = &res {
        return crate::cockpit::output_stream(app.clone(), rq, id, &req);
    }
    let reply = dispatch(app, &res, &req).unwrap_or_else(ApiError::reply);
    if mutating {
        guard::audit(&app.spool, &req, &app.token.id, reply.status);
    }
    app.http.record(res.route(), reply.status, began.elapsed());
    respond(rq, reply);
}

/// The checks before a handler: Host, rate, route, method, token, size, media type; reads the body.
fn gate(app: &App, rq: &mut tiny_http::Request, req: &mut Req, client: std::net::IpAddr) -> Result<Resource, ApiError> {
    app.hosts.check(header(rq, "host"))?;
    app.rate.take(client)?;
    let res = Resource::of(&req.path).ok_or_else(|| ApiError::not_found(format!("no resource {}", req.path)))?;
    let methods = res.methods();
    if !methods.contains(&req.method.as_str()) {
        return Err(ApiError::new(
            405,
            format!("{} does not answer {}; it answers {}", req.path, req.method, methods.join(", ")),
        )
        .with("Allow", methods.join(", ")));
    }
    let open_metrics = res == Resource::Metrics && (app.metrics_public || client.is_loopback());
    if !res.public() && !open_metrics {
        // EventSource cannot send headers: streams take the token as a query parameter too.
        let stream = matches!(res, Resource::Events | Resource::OutputStream(_));
        let query_token = if stream { req.param("token") } else { None };
        guard::authorize(&app.token, header(rq, "authorization"), query_token)?;
    }
    if !matches!(req.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        return Ok(res);
    }
    let declared = rq.body_length();
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::new(413, format!("the body is larger than {MAX_BODY} bytes")));
    }
    if declared == Some(0) {
        return Ok(res);
    }
    let mut body = Vec::new();
    rq.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::bad(format!("cannot read the body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(ApiError::new(413, format!("the body is larger than {MAX_BODY} bytes")));
    }
    req.body = body;
    if !req.body.is_empty() {
        let media =
            header(rq, "content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media != "application/json" {
            return Err(ApiError::new(415, format!("send the body as application/json, not {media:?}")));
        }
    }
    Ok(res)
}

fn respond(rq: tiny_http::Request, reply: Reply) {
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", reply.content_type);
    add("Cache-Control", "no-store");
    add("X-Content-Type-Options", "nosniff");
    add("X-Frame-Options", "DENY");
    for (name, value) in &reply.headers {
        add(name, value);
    }
    let _ = rq.respond(response);
}
