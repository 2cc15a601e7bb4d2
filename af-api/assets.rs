//! What af-api carries in its binary: the dashboard page and the OpenAPI document.

use crate::http::Reply;

const DASHBOARD: &str = include_str!("dashboard.html");
const OPENAPI: &str = include_str!("openapi.json");

/// The dashboard: one page, no build step, nothing fetched from elsewhere.
pub fn dashboard() -> Reply {
    let mut r = Reply::bytes("text/html; charset=utf-8", DASHBOARD.as_bytes().to_vec());
    r.headers.push((
        "Content-Security-Policy",
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'".into(),
    ));
    r.headers.push(("Referrer-Policy", "no-referrer".into()));
    r
}

/// The OpenAPI 3 document.
pub fn openapi() -> Reply {
    Reply::bytes("application/json", OPENAPI.as_bytes().to_vec())
}
