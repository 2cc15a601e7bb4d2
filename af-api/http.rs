//! What a request and an answer are to af-api: the parsed request, JSON replies, and errors as
//! `{error, detail}` with their HTTP status.

use serde_json::Value;

/// The largest request body accepted, in bytes (checked from Content-Length before reading).
pub const MAX_BODY: usize = 1 << 20;

/// A request, read and checked: method, path, query, body, who sent it.
pub struct Req {
    /// The method, upper case.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The body (empty when none).
    pub body: Vec<u8>,
    /// The client's address.
    pub client: String,
}

impl Req {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as a JSON value; an empty body is `None`.
    pub fn json(&self) -> Result<Option<Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body).map(Some).map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))
    }

    /// The body as a JSON object; anything else is a 400.
    pub fn object(&self) -> Result<serde_json::Map<String, Value>, ApiError> {
        match self.json()? {
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(ApiError::bad("the body must be a JSON object")),
            None => Err(ApiError::bad("a JSON object body is required")),
        }
    }
}

/// An answer.
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Its media type.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// An answer of raw bytes.
    pub fn bytes(content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply { status: 200, body, content_type, headers: Vec::new() }
    }
}

/// An error answer: `{"error": kind, "detail": text}` with its status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Details in words.
    pub detail: String,
    /// Extra headers (Allow, Retry-After, WWW-Authenticate).
    pub headers: Vec<(&'static str, String)>,
}

/// What a handler returns.
pub type Answer = Result<Reply, ApiError>;

impl ApiError {
    /// An error of `status` with `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), headers: Vec::new() }
    }

    /// 400: malformed or invalid input.
    pub fn bad(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The short name of the error, by status.
    pub fn kind(&self) -> &'static str {
        match self.status {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            429 => "too_many_requests",
            502 => "bad_gateway",
            504 => "gateway_timeout",
            _ => "internal_error",
        }
    }

    /// The answer for this error.
    pub fn reply(self) -> Reply {
        let mut r = Reply::json(self.status, &serde_json::json!({"error": self.kind(), "detail": self.detail}));
        r.headers = self.headers;
        r
    }
}

/// Operations' errors keep their meaning: invalid 400, not found 404, conflict 409, timeout
/// 504; an agent that failed to start is a 409 (the request was fine, the agent is not); tmux or
/// another program failing is a 502; a corrupt record, a record that could not be written (the
/// agent stopped all the same) or a failure of ours is 500.
impl From<af_spool::Error> for ApiError {
    fn from(e: af_spool::Error) -> Self {
        use af_spool::Error as E;
        let status = match &e {
            E::Invalid(_) => 400,
            E::NotFound(_) => 404,
            E::Conflict(_) | E::Failed(_) => 409,
            E::Timeout(_) => 504,
            E::System(_) => 502,
            E::Io { .. } | E::Corrupt { .. } | E::Interrupted(_) | E::Unrecorded(_) => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Splits a request target into its path and decoded query.
pub fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_owned(), params)
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_and_decode() {
        let (p, q) = split_target("/api/agents?project=org%2Frepo&status=running&x");
        assert_eq!(p, "/api/agents");
        assert_eq!(q[0], ("project".into(), "org/repo".into()));
        assert_eq!(q[2], ("x".into(), "".into()));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41+b"), "%zzA b");
    }

    proptest::proptest! {
        #[test]
        fn any_target_splits_without_panic_and_escapes_read_back(
            target in "\\PC{0,120}",
            key in "[a-z]{1,8}",
            value in "\\PC{0,40}",
        ) {
            let _ = split_target(&target);
            let _ = percent_decode(&target);
            let encoded: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
            let (path, q) = split_target(&format!("/api/x?{key}={encoded}"));
            proptest::prop_assert_eq!(path, "/api/x");
            proptest::prop_assert_eq!(&q[0], &(key.clone(), value.clone()));
        }
    }
}
