//! AgentFlow's patch: the limits a server holds its clients to, over real sockets on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use tiny_http::{Limits, Response, Server};

fn server(limits: Limits) -> (std::sync::Arc<Server>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server =
        std::sync::Arc::new(Server::from_listener_with_limits(listener, None, limits).unwrap());
    let answering = server.clone();
    thread::spawn(move || {
        for rq in answering.incoming_requests() {
            let _ = rq.respond(Response::from_string("hello"));
        }
    });
    (server, addr)
}

fn strict() -> Limits {
    Limits {
        max_connections: Some(4),
        idle_timeout: Some(Duration::from_millis(300)),
        request_timeout: Some(Duration::from_millis(600)),
        write_timeout: Some(Duration::from_secs(5)),
        max_head_bytes: Some(1024),
    }
}

/// Sends `request`, returns everything the server says until it closes (at most 5 s).
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_head_past_the_limit_gets_431_without_being_read_whole() {
    let (_server, addr) = server(strict());
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut writer = s.try_clone().unwrap();
    // 64 MiB of one header: the server must answer long before it could have read it.
    let sender = thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 431");
    sender.join().unwrap();
}

#[test]
fn ambiguous_framing_gets_400() {
    let (_server, addr) = server(strict());
    for framing in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 0\r\nContent-Length: 0\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: five\r\n",
    ] {
        let answer = exchange(
            &addr,
            format!("POST / HTTP/1.1\r\nHost: x\r\n{framing}\r\nhello").as_bytes(),
        );
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?}: {:?}",
            framing,
            answer
        );
    }
    let answer = exchange(
        &addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{:?}", answer);
}

#[test]
fn a_slow_request_gets_408_and_an_idle_keep_alive_is_closed() {
    let (_server, addr) = server(strict());
    // A byte every 100 ms: every read is quick, the request is not.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789" {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(start.elapsed() < Duration::from_secs(4));
    // A keep-alive that says nothing more is closed, without an answer.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 200") && out.matches("HTTP/1.1").count() == 1,
        "{:?}",
        out
    );
}

#[test]
fn connections_beyond_the_cap_wait_in_the_backlog_and_are_served_after() {
    let (server, addr) = server(Limits {
        idle_timeout: Some(Duration::from_secs(30)),
        ..strict()
    });
    let silent: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.num_connections() < 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(server.num_connections(), 4, "the cap holds");
    drop(silent);
    let answer = exchange(
        &addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{:?}", answer);
}

#[test]
fn silent_connections_do_not_hold_up_a_real_request_without_limits() {
    // Upstream queued a burst of connections behind one idle thread: a client that never spoke
    // held it, and the requests queued behind waited for ever.
    let (_server, addr) = server(Limits::default());
    let _silent: Vec<TcpStream> = (0..32)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let start = Instant::now();
    let answer = exchange(
        &addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{:?}", answer);
    assert!(start.elapsed() < Duration::from_secs(2));
}
