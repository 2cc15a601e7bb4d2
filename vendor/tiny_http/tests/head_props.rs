//! AgentFlow's patch: generated request heads sent over real sockets on loopback. Whatever a
//! client sends, the server answers with a status line or closes, never panics, and serves the
//! next client; a well-formed head reaches the handler exactly as it was sent.

use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use tiny_http::{Limits, Response, Server};

/// A server whose handler answers with the request's method, URL and headers, one per line.
fn echo_server() -> (Arc<Server>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let limits = Limits {
        max_connections: Some(16),
        idle_timeout: Some(Duration::from_millis(200)),
        request_timeout: Some(Duration::from_millis(200)),
        write_timeout: Some(Duration::from_secs(5)),
        max_head_bytes: Some(4096),
    };
    let server = Arc::new(Server::from_listener_with_limits(listener, None, limits).unwrap());
    let answering = server.clone();
    thread::spawn(move || {
        for rq in answering.incoming_requests() {
            let mut echo = format!("{}\n{}\n", rq.method(), rq.url());
            for h in rq.headers() {
                echo.push_str(&format!("{}\t{}\n", h.field, h.value));
            }
            let _ = rq.respond(Response::from_string(echo));
        }
    });
    (server, addr)
}

/// Sends `request` and returns what the server says until it closes (at most 5 s).
fn exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The body of the first response in `out`.
fn body(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Bytes that look like a head often enough to reach past the request line.
fn hostile_head() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        "[A-Z]{1,8} /[ -~]{0,20} HTTP/1\\.[01]".prop_map(String::into_bytes),
        "[!-~]{1,20}:[ -~]{0,40}".prop_map(String::into_bytes),
        "(Content-Length|Transfer-Encoding|Expect|Connection): [ -~]{0,12}"
            .prop_map(String::into_bytes),
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| {
        let mut head = lines.join(&b"\r\n"[..]);
        head.extend_from_slice(b"\r\n\r\n");
        head
    })
}

/// A header a client may send that does not change the framing or the connection.
fn plain_header() -> impl Strategy<Value = (String, String)> {
    ("X-[A-Za-z0-9-]{1,15}", "[!-~]([ -~]{0,40}[!-~])?")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_head_gets_a_status_line_or_a_close_and_the_server_lives_on(head in hostile_head()) {
        let (_server, addr) = echo_server();
        let out = exchange(&addr, &head);
        if !out.is_empty() {
            let text = String::from_utf8_lossy(&out);
            let status = text.get(..12).unwrap_or("");
            prop_assert!(
                status.starts_with("HTTP/1.") && status[9..12].bytes().all(|b| b.is_ascii_digit()),
                "not a status line: {:?}", text
            );
        }
        let next = exchange(&addr, b"GET /next HTTP/1.1\r\nConnection: close\r\n\r\n");
        prop_assert!(String::from_utf8_lossy(&next).starts_with("HTTP/1.1 200"), "the server did not serve the next client");
        prop_assert_eq!(body(&next), "GET\n/next\nConnection\tclose\n");
    }

    #[test]
    fn a_well_formed_head_reaches_the_handler_as_sent(
        method in prop_oneof![Just("GET"), Just("DELETE"), Just("OPTIONS")],
        path in "/[!-~]{0,40}",
        headers in proptest::collection::vec(plain_header(), 0..10),
    ) {
        let (_server, addr) = echo_server();
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        for (n, v) in &headers {
            request.push_str(&format!("{n}: {v}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        let out = exchange(&addr, request.as_bytes());
        prop_assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
        let mut expected = format!("{method}\n{path}\n");
        for (n, v) in &headers {
            expected.push_str(&format!("{n}\t{v}\n"));
        }
        expected.push_str("Connection\tclose\n");
        prop_assert_eq!(body(&out), expected);
    }
}
