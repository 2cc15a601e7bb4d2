//! The gate every request passes: the Host allowlist (against DNS rebinding), per-client rate
//! limits (token buckets), the bearer token (compared in constant time), and the audit record of
//! every mutating call.

use crate::http::{ApiError, Req};
use af_spool::atomic::{self, Durability};
use af_spool::record::Event;
use af_spool::{Error, Spool, eventlog};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The bearer token and its public id (a digest prefix, safe to log).
pub struct Token {
    secret: Vec<u8>,
    /// The id written to the audit log.
    pub id: String,
}

impl Token {
    /// Reads the token from `file`, or from the spool's default file, creating that one (32
    /// random bytes, hex, mode 0600) on first start.
    pub fn load(spool: &Spool, file: Option<&Path>) -> af_spool::Result<(Token, PathBuf)> {
        let path = match file {
            Some(f) => f.to_path_buf(),
            None => {
                let path = spool.api_token_path();
                if !path.exists() {
                    atomic::create_dir(&spool.api_dir())?;
                    let mut bytes = [0u8; 32];
                    std::fs::File::open("/dev/urandom")
                        .and_then(|mut f| f.read_exact(&mut bytes))
                        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
                    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    atomic::write(&path, format!("{text}\n").as_bytes(), Durability::Durable)?;
                }
                path
            }
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(Error::Conflict(format!(
                "the token file {} is open to group or others; run: chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!("no token file {}", path.display())),
            _ => Error::io("read", &path, e),
        })?;
        let secret = text.lines().next().unwrap_or("").trim().as_bytes().to_vec();
        if secret.len() < 16 || secret.iter().any(|b| !b.is_ascii_graphic()) {
            return Err(Error::Invalid(format!(
                "the token in {} must be at least 16 printable characters on its first line",
                path.display()
            )));
        }
        let id = hex(&Sha256::digest(&secret)[..6]);
        Ok((Token { secret, id }, path))
    }

    /// The token as text (for the dashboard URL).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.secret).into_owned()
    }

    /// Whether `given` is the token; takes the same time wherever they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        constant_time_eq(&self.secret, given)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the `Authorization: Bearer` header (or, where allowed, a `token` query parameter).
pub fn authorize(token: &Token, header: Option<&str>, query_token: Option<&str>) -> Result<(), ApiError> {
    let given = match (header, query_token) {
        (Some(h), _) => match h.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(unauthorized("the Authorization header must be `Bearer TOKEN'")),
        },
        (None, Some(q)) => q,
        (None, None) => return Err(unauthorized("no bearer token: send `Authorization: Bearer TOKEN'")),
    };
    if token.matches(given.as_bytes()) { Ok(()) } else { Err(unauthorized("the bearer token is wrong")) }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(401, detail).with("WWW-Authenticate", "Bearer realm=\"af-api\"".into())
}

/// The Host names accepted: loopback names, the listen address, and those given.
pub struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// The allowlist for a server bound to `bound`.
    pub fn new(bound: SocketAddr, extra: &[String]) -> Self {
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()];
        let ip = match bound.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        if !bound.ip().is_unspecified() {
            names.push(ip);
        }
        names.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
        Hosts { names }
    }

    /// Checks a Host header (with or without a port).
    pub fn check(&self, host: Option<&str>) -> Result<(), ApiError> {
        let Some(host) = host else { return Err(ApiError::new(403, "no Host header")) };
        let host = host.trim().to_ascii_lowercase();
        let name = match host.rfind(':') {
            Some(i)
                if !host[i + 1..].is_empty()
                    && host[i + 1..].bytes().all(|b| b.is_ascii_digit())
                    && !host.ends_with(']') =>
            {
                &host[..i]
            }
            _ => host.as_str(),
        };
        if self.names.iter().any(|n| n == name) {
            Ok(())
        } else {
            Err(ApiError::new(403, format!("Host '{name}' is not allowed (see: af-api --allow-host)")))
        }
    }
}

/// Token buckets, one per client address.
pub struct RateLimit {
    inner: Mutex<Buckets>,
}

struct Buckets {
    rate: f64,
    burst: f64,
    by_client: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimit {
    /// `rate` requests per second, bursts of `burst`; a rate of 0 allows everything.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimit { inner: Mutex::new(Buckets { rate, burst: f64::from(burst.max(1)), by_client: HashMap::new() }) }
    }

    /// The rate and burst in force.
    pub fn settings(&self) -> (f64, u32) {
        let b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (b.rate, b.burst as u32)
    }

    /// Changes the rate and burst (buckets start full again).
    pub fn set(&self, rate: f64, burst: u32) {
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        b.rate = rate;
        b.burst = f64::from(burst.max(1));
        b.by_client.clear();
    }

    /// Takes one token for `client`, or says how many seconds to wait.
    pub fn take(&self, client: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (rate, burst) = (b.rate, b.burst);
        if rate <= 0.0 {
            return Ok(());
        }
        if b.by_client.len() > 10_000 {
            b.by_client.retain(|_, (tokens, last)| *tokens + now.duration_since(*last).as_secs_f64() * rate < burst);
        }
        let (tokens, last) = b.by_client.entry(client).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - *tokens) / rate).ceil().max(1.0) as u64;
        Err(ApiError::new(429, format!("too many requests from {client}: at most {rate} per second"))
            .with("Retry-After", wait.to_string()))
    }
}

/// Writes one mutating call to the event log: time, client, token id, endpoint, body digest,
/// outcome.
pub fn audit(spool: &Spool, req: &Req, token_id: &str, status: u16) {
    let detail = serde_json::json!({
        "client": req.client,
        "tokenId": token_id,
        "method": req.method,
        "endpoint": req.path,
        "bodySha256": hex(&Sha256::digest(&req.body)),
        "bodyBytes": req.body.len(),
        "status": status,
    });
    eventlog::record(spool, Event::new("api.request", None, detail));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_buckets() {
        let h = Hosts::new("127.0.0.1:3000".parse().unwrap(), &["dash.example".into()]);
        for ok in ["127.0.0.1:3000", "localhost", "LOCALHOST:1", "[::1]:3000", "dash.example:80"] {
            assert!(h.check(Some(ok)).is_ok(), "{ok}");
        }
        for bad in ["evil.example", "127.0.0.1.evil.example:3000", "localhost.:3000", ""] {
            assert!(h.check(Some(bad)).is_err(), "{bad}");
        }
        assert!(h.check(None).is_err());
        let r = RateLimit::new(1.0, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(r.take(ip).is_ok() && r.take(ip).is_ok());
        let e = r.take(ip).unwrap_err();
        assert_eq!(e.status, 429);
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab")
        );
    }
}
