//! af-bus: one-shot `af-bus send` latency (to an agent's inbox, on a spool with one agent) beside
//! fork/exec of /bin/true, interleaved; end-to-end delivery latency from a send to a waiting
//! receiver (woken through the queue's named pipe); batch throughput of send+recv+ack through the
//! CLI, durable (every message fsynced) and not. Each beside the bare file-system path measured in
//! the same run: write+rename (+fsync of file and directory), and that plus a named-pipe wake-up.

#[path = "common.rs"]
mod common;

use af_ops::bus::Target;
use af_spool::bus::Address;
use af_spool::message::{Kind, Message, Priority};
use af_spool::{AgentId, Spool};
use common::{Row, World, header, percentile_ms, row, time};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() {
    let n = common::count("AF_BENCH_MESSAGES", 10_000);
    let lat_n = common::count("AF_BENCH_LATENCY", 500);
    header(&format!("af-bus ({n} messages per batch, {lat_n} latency samples)"));
    let w = World::new("bus");
    w.run_with_input("af-spawn", &["create"], r#"{"id":"q","type":"worker","projectId":"bench"}"#);

    // One-shot send, each right after a fork/exec of /bin/true (the baseline) and a bare durable
    // delivery in this process (write+fsync+rename+directory fsync): fork/exec plus that is the
    // floor of a durable one-shot send.
    let one_n = lat_n.min(300);
    let bare_dir = w.path("bare-one");
    fs::create_dir_all(bare_dir.join("new")).expect("dir");
    let mut bare_one = Vec::with_capacity(one_n);
    let (mut fork, mut samples) = common::beside_fork_exec(one_n, |i| {
        bare_one.push(time(|| bare_delivery(&bare_dir, i, true)));
        w.run("af-bus", &["send", "--to", "q", &i.to_string()]);
    });
    let fork_p50 = percentile_ms(&mut fork, 50.0);
    let floor = fork_p50 + percentile_ms(&mut bare_one, 50.0);
    for p in [50.0, 99.0] {
        row(Row {
            what: &format!("one-shot af-bus send, durable (p{p})"),
            value: percentile_ms(&mut samples, p),
            unit: "ms",
            baseline: Some(("fork/exec of /bin/true (p50)", fork_p50)),
            higher_is_better: false,
            target: if p == 50.0 { "p50 < 2 ms, <= 2x fork/exec" } else { "-" },
        });
    }
    row(Row {
        what: "  the same (p50), beside its floor",
        value: percentile_ms(&mut samples, 50.0),
        unit: "ms",
        baseline: Some(("fork/exec + bare durable write (p50s)", floor)),
        higher_is_better: false,
        target: "-",
    });
    let (mut fork, mut fast) = common::beside_fork_exec(one_n, |i| {
        w.run("af-bus", &["--no-fsync", "send", "--to", "q", &i.to_string()]);
    });
    row(Row {
        what: "one-shot af-bus send, no fsync (p50)",
        value: percentile_ms(&mut fast, 50.0),
        unit: "ms",
        baseline: Some(("fork/exec of /bin/true (p50)", percentile_ms(&mut fork, 50.0))),
        higher_is_better: false,
        target: "-",
    });
    w.run("af-bus", &["clear", "q"]);

    // End-to-end: post (library, durable) to a receiver thread waiting on the queue's pipe.
    let bare_e2e = bare_wakeup(&w.path("bare-e2e"), lat_n);
    let spool = Spool::open(&w.home).expect("spool");
    let mut e2e = delivery(&spool, lat_n, true);
    let mut e2e_fast = delivery(&spool, lat_n, false);
    let mut bare = bare_e2e;
    for p in [50.0, 99.0] {
        let b = percentile_ms(&mut bare, p);
        row(Row {
            what: &format!("send to waiting receiver, durable (p{p})"),
            value: percentile_ms(&mut e2e, p),
            unit: "ms",
            baseline: Some(("bare write+fsync+rename+pipe wake", b)),
            higher_is_better: false,
            target: if p == 99.0 { "p99 < 2 ms" } else { "-" },
        });
        row(Row {
            what: &format!("send to waiting receiver, no fsync (p{p})"),
            value: percentile_ms(&mut e2e_fast, p),
            unit: "ms",
            baseline: Some(("bare write+fsync+rename+pipe wake", b)),
            higher_is_better: false,
            target: "-",
        });
    }

    // Batch send+recv+ack through the CLI.
    let bare_fast = bare_renames(&w.path("bare-fast"), n, false);
    let bare_sync = bare_renames(&w.path("bare-sync"), n.min(2000), true);
    for durable in [false, true] {
        let rate = batch(&w, n, durable);
        row(Row {
            what: &format!("batch send+recv+ack{}", if durable { ", every message fsynced" } else { ", no fsync" }),
            value: rate,
            unit: "msg/s",
            baseline: Some(if durable {
                ("bare write+fsync+rename+dir fsync", bare_sync)
            } else {
                ("bare write+rename", bare_fast)
            }),
            higher_is_better: true,
            target: if durable { "> 2,000/s" } else { "> 10,000/s" },
        });
    }
}

/// Messages per second through `send --batch`, `recv -n N`, `ack -`.
fn batch(w: &World, n: usize, durable: bool) -> f64 {
    let input: String = (0..n).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let fsync: &[&str] = if durable { &[] } else { &["--no-fsync"] };
    let t = Instant::now();
    w.run_with_input("af-bus", &[fsync, &["send", "--batch", "--to", "q"]].concat(), &input);
    let mut recv = w.cmd("af-bus");
    recv.args(["recv", "q", "-n", &n.to_string(), "--json"]).stdout(Stdio::piped());
    let out = recv.output().expect("recv");
    assert!(out.status.success());
    let ids: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|m| format!("{}\n", m["id"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(ids.lines().count(), n);
    w.run_with_input("af-bus", &["ack", "q", "-"], &ids);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Latency of af_ops::bus::post to a thread waiting in Queue::receive.
fn delivery(spool: &Spool, n: usize, durable: bool) -> Vec<Duration> {
    let queue = Address::Inbox(AgentId::new("q").expect("id")).queue(spool);
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (got_tx, got_rx) = mpsc::channel::<Instant>();
    let rq = queue.clone();
    let receiver = std::thread::spawn(move || {
        for _ in 0..n {
            let _ = ready_tx.send(());
            let got = rq.receive(1, Duration::from_secs(30), Some(Some(Duration::from_secs(10)))).expect("receive");
            let at = Instant::now();
            for c in &got {
                let _ = rq.ack_receipt(&c.receipt);
            }
            let _ = got_tx.send(at);
        }
    });
    let target = Target::Queue(Address::Inbox(AgentId::new("q").expect("id")));
    let mut samples = Vec::new();
    for i in 0..n {
        let _ = ready_rx.recv();
        // Let the receiver reach its wait (it subscribes before looking at the queue anyway).
        std::thread::sleep(Duration::from_micros(300));
        let m = Message::new("bench", Kind::Event, Priority::Normal, serde_json::json!(i));
        let t = Instant::now();
        af_ops::bus::post(spool, m, &target, durable).expect("post");
        let at = got_rx.recv().expect("received");
        samples.push(at.duration_since(t));
    }
    let _ = receiver.join();
    samples
}

/// The bare path: write a file (fsync), rename it, fsync the directory, write a line to a named
/// pipe; a thread polling the pipe lists the directory and renames the file.
fn bare_wakeup(dir: &Path, n: usize) -> Vec<Duration> {
    fs::create_dir_all(dir.join("new")).expect("dir");
    fs::create_dir_all(dir.join("cur")).expect("dir");
    let fifo = dir.join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let (got_tx, got_rx) = mpsc::channel::<Instant>();
    let rdir = dir.to_path_buf();
    let rfifo = fifo.clone();
    let receiver = std::thread::spawn(move || {
        let mut pipe = fs::OpenOptions::new().read(true).write(true).open(&rfifo).expect("open pipe");
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let _ = pipe.read(&mut buf);
            for e in fs::read_dir(rdir.join("new")).expect("list").flatten() {
                let _ = fs::rename(e.path(), rdir.join("cur").join(e.file_name()));
            }
            let _ = got_tx.send(Instant::now());
        }
    });
    let mut samples = Vec::new();
    for i in 0..n {
        std::thread::sleep(Duration::from_micros(300));
        let t = Instant::now();
        let tmp = dir.join(format!("t{i}"));
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).expect("create");
        f.write_all(b"{\"n\":1}").expect("write");
        f.sync_data().expect("fsync");
        fs::rename(&tmp, dir.join("new").join(format!("m{i}"))).expect("rename");
        fs::File::open(dir.join("new")).and_then(|d| d.sync_all()).expect("fsync dir");
        let mut p = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&fifo).expect("pipe");
        let _ = p.write_all(b"x\n");
        samples.push(got_rx.recv().expect("woken").duration_since(t));
    }
    let _ = receiver.join();
    samples
}

/// Files per second: write + rename into place (with `sync`: fsync of the file and directory).
fn bare_renames(dir: &Path, n: usize, sync: bool) -> f64 {
    fs::create_dir_all(dir.join("new")).expect("dir");
    let t = Instant::now();
    for i in 0..n {
        bare_delivery(dir, i, sync);
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// One bare delivery into `dir/new` (made already): write a file, rename it into place (with
/// `sync`: fsync of the file before, of the directory after).
fn bare_delivery(dir: &Path, i: usize, sync: bool) {
    let tmp = dir.join(format!("t{i}"));
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).expect("create");
    f.write_all(b"{\"n\":1}").expect("write");
    if sync {
        f.sync_data().expect("fsync");
    }
    fs::rename(&tmp, dir.join("new").join(format!("m{i}"))).expect("rename");
    if sync {
        fs::File::open(dir.join("new")).and_then(|d| d.sync_all()).expect("fsync dir");
    }
}
