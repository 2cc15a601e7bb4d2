//! A full disk and a read-only spool (a small tmpfs as AF_HOME) change nothing, and gc reconciles
//! the whole spool: a batch is all or nothing, a stop reports what happened to the agent, a failed
//! subscribe leaves nothing half-made, a health pass that checked nothing fails, and gc removes
//! what killed writers left behind.

mod util;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use util::tmpfs::Tmpfs;
use util::{Env, alive, wait_for};

/// The names in a directory (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A pid that was alive a moment ago and is not now.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("running true");
    let pid = child.id();
    child.wait().expect("waiting for true");
    pid
}

#[test]
fn a_batch_on_a_full_disk_queues_nothing_and_a_retry_queues_each_once() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env, "8m") else { return };
    env.ok("af-bus", &["send", "--to", "pool:p", "0"]);
    let queue = env.home.join("bus/pool/p");
    let first = names(&queue.join("new"));
    assert_eq!(first.len(), 1);
    std::fs::remove_file(queue.join("new").join(&first[0])).unwrap();
    // Room for a few dozen messages, not for a thousand.
    disk.fill();
    disk.free(100 * 1024);
    let input: String = (0..1000).map(|n| format!("{n}\n")).collect();
    let err = env.fails("af-bus", &["send", "--batch", "--to", "pool:p"], Some(&input), 111);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(names(&queue.join("new")), Vec::<String>::new(), "a failed batch queues nothing");
    assert_eq!(names(&queue.join("tmp")), Vec::<String>::new(), "and leaves nothing staged");
    // Space back, the same batch again, by the same program: each message exactly once.
    disk.free_all();
    let ids = env.ok_in("af-bus", &["send", "--batch", "--to", "pool:p"], Some(&input));
    assert_eq!(ids.lines().count(), 1000);
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for name in names(&queue.join("new")) {
        let m: serde_json::Value = serde_json::from_str(&util::read(&queue.join("new").join(name))).unwrap();
        *seen.entry(m["payload"].as_i64().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 1000, "every message queued");
    assert!(seen.values().all(|&n| n == 1), "none twice");
}

#[test]
fn stop_on_a_full_disk_says_the_agent_stopped() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env, "2m") else { return };
    env.worker("w1", "sleep 300");
    let pid = env.show("w1")["state"]["pid"].as_u64().unwrap() as u32;
    disk.fill();
    let out = env.run("af-spawn", &["stop", "--timeout", "2", "w1"], None);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(111), "not a timeout: {}", util::describe(&out));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("stopped") && err.contains("state.json"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!alive(pid), "the agent's process is gone");
    // Once there is room again, a second stop records it.
    disk.free_all();
    env.ok("af-spawn", &["stop", "w1"]);
    assert_eq!(env.status("w1"), "stopped");
}

#[test]
fn a_failed_subscribe_leaves_nothing_half_made() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env, "2m") else { return };
    env.ok("af-bus", &["subscribe", "first", "--topic", "tasks.*"]);
    disk.fill();
    let err = env.fails("af-bus", &["subscribe", "second", "--topic", "tasks.*"], None, 111);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(names(&env.home.join("bus/sub")), vec!["first".to_owned()], "no .sub.* left");
    disk.free_all();
    env.ok("af-bus", &["subscribe", "second", "--topic", "tasks.*"]);
}

#[test]
fn a_health_check_on_a_read_only_spool_fails() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env, "2m") else { return };
    env.create(r#"{"id":"h1","type":"worker","projectId":"p"}"#);
    env.create(r#"{"id":"h2","type":"worker","projectId":"p"}"#);
    env.ok("af-health", &["check"]);
    disk.remount(true);
    let err = env.fails("af-health", &["check"], None, 111);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(err.contains("checked none of 2 agents"), "{err}");
    let msg = env.fails("af-health", &["check", "--json"], None, 111);
    assert!(msg.contains("Read-only file system"), "{msg}");
    disk.remount(false);
    env.ok("af-health", &["check"]);
}

#[test]
fn a_health_check_of_no_agents_is_still_fine() {
    let env = Env::new();
    env.ok("af-health", &["check"]);
}

#[test]
fn gc_removes_what_dead_writers_left_and_dry_run_removes_nothing() {
    let env = Env::new();
    env.create(r#"{"id":"g1","type":"worker","projectId":"p"}"#);
    env.ok("af-bus", &["send", "--to", "g1", "1"]);
    env.ok("af-bus", &["send", "--to", "pool:p", "1"]);
    env.ok("af-bus", &["subscribe", "s1", "--topic", "tasks.*"]);
    // A listener killed while it waited: its pipe stays in the queue's fifodir.
    let mut recv = env.cmd("af-bus");
    recv.args(["recv", "--wait", "s1"]).stdout(std::process::Stdio::null());
    let mut recv = recv.spawn().unwrap();
    wait_for("the receiver to wait", Duration::from_secs(10), || env.waits(recv.id()));
    recv.kill().unwrap();
    recv.wait().unwrap();
    // What writers killed half-way leave: hidden names that carry their pid.
    let dead = dead_pid();
    let me = std::process::id();
    let fifo = |dir: &Path, pid: u32| {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(format!(".fifo.{pid}.12345.0"));
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p
    };
    let file = |dir: &Path, name: String| {
        let p = dir.join(name);
        std::fs::write(&p, b"{\"half\":").unwrap();
        p
    };
    let home = &env.home;
    let garbage = [
        fifo(&home.join("events.d"), dead),
        fifo(&home.join("agents/g1/notify.d"), dead),
        fifo(&home.join("agents/g1/inbox/notify.d"), dead),
        fifo(&home.join("bus/pool/p/notify.d"), dead),
        file(&home.join("agents/g1/inbox/tmp"), format!(".m.{dead}.1.0")),
        file(&home.join("bus/pool/p/tmp"), format!(".m.{dead}.2.0")),
        file(&home.join("bus/sub/s1/tmp"), format!(".m.{dead}.3.0")),
    ];
    let half_sub = home.join(format!("bus/sub/.sub.{dead}.4.0"));
    std::fs::create_dir_all(half_sub.join("tmp")).unwrap();
    // A live writer's are kept.
    let kept = [fifo(&home.join("events.d"), me), file(&home.join("bus/pool/p/tmp"), format!(".m.{me}.5.0"))];
    let listener_pipes = || names(&home.join("bus/sub/s1/notify.d"));
    assert_eq!(listener_pipes().len(), 1, "the killed listener's pipe");

    let dry = env.json("af-spawn", &["gc", "--dry-run"]);
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(dry["removedFifos"], 5, "{dry}");
    assert_eq!(dry["removedTmpFiles"], 3, "{dry}");
    assert_eq!(dry["removedSubscriptions"], 1, "{dry}");
    for p in garbage.iter().chain(&kept) {
        assert!(p.exists(), "--dry-run removes nothing: {}", p.display());
    }
    assert!(half_sub.exists());
    assert_eq!(listener_pipes().len(), 1);

    let done = env.json("af-spawn", &["gc"]);
    assert_eq!(done["dryRun"], false, "{done}");
    assert_eq!((done["removedFifos"].clone(), done["removedTmpFiles"].clone()), (5.into(), 3.into()), "{done}");
    assert_eq!(done["removedSubscriptions"], 1, "{done}");
    for p in &garbage {
        assert!(!p.exists(), "gc removes {}", p.display());
    }
    assert!(!half_sub.exists());
    assert!(listener_pipes().is_empty());
    for p in &kept {
        assert!(p.exists(), "a live writer's file is kept: {}", p.display());
    }
    // The queues still work.
    env.ok("af-bus", &["recv", "g1"]);
    assert_eq!(env.json("af-spawn", &["gc"])["removedFifos"], 0);
}

/// A shell with a low soft descriptor limit (`ulimit -n 32`, the hard one higher) can still
/// start a batch that needs more: every program raises its soft limit to the hard one. The
/// agents themselves get the user's 32 back.
#[test]
fn a_low_soft_descriptor_limit_is_no_ceiling() {
    let env = Env::new();
    let configs: String =
        (0..40).map(|i| format!("{{\"id\":\"n{i}\",\"type\":\"worker\",\"command\":[\"sleep\",\"600\"]}}\n")).collect();
    let mut c = env.cmd("af-spawn");
    c.args(["create", "--start"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    c.stderr(std::process::Stdio::piped());
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 32, hard.max(4096))?;
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), configs.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 40);
    let pid = env.show("n7")["state"]["pid"].as_u64().unwrap();
    let limits = util::read(std::path::Path::new(&format!("/proc/{pid}/limits")));
    let soft = limits.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3));
    assert_eq!(soft, Some("32"), "the agent has the user's own soft limit: {limits}");
}

#[test]
fn gc_killed_mid_compression_loses_no_log_line() {
    let env = Env::new();
    env.create(r#"{"id":"k1","type":"worker","command":["sleep","1"]}"#);
    let dir = env.home.join("agents/k1");
    let plain = dir.join("output.log.1");
    let gz = dir.join("output.log.1.gz");
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 4 << 20 {
        text.push_str(&format!("line {i} of what k1 printed, {}\n", i.wrapping_mul(2654435761) % 100_000));
        i += 1;
    }
    let gunzip = |p: &Path| {
        let out = std::process::Command::new("gzip").arg("-dc").arg(p).output().unwrap();
        assert!(out.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    for delay_ms in [0, 100, 400] {
        let _ = std::fs::remove_file(&gz);
        std::fs::write(&plain, &text).unwrap();
        let f = std::fs::OpenOptions::new().append(true).open(&plain).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).unwrap();
        let mut gc = env.cmd("af-spawn");
        gc.arg("gc").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let mut child = gc.spawn().unwrap();
        let part = dir.join(format!(".output.log.1.gz.part.{}", child.id()));
        wait_for("gc to start compressing", Duration::from_secs(30), || part.exists() || gz.exists());
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // Whenever it died: the lines are whole in the plain file, or in a complete .gz.
        let whole_plain = plain.exists() && std::fs::read_to_string(&plain).unwrap() == text;
        let whole_gz = gz.exists() && gunzip(&gz) == text;
        assert!(whole_plain || whole_gz, "killed after {delay_ms} ms: {:?}", names(&dir));
        if gz.exists() {
            assert!(whole_gz, "a .gz under its final name is whole");
        }
        // The next gc finishes the job and clears what the killed one left.
        env.ok("af-spawn", &["gc"]);
        assert!(!plain.exists() && gunzip(&gz) == text, "{:?}", names(&dir));
        assert!(names(&dir).iter().all(|n| !n.contains(".part.")), "{:?}", names(&dir));
    }
}

/// The committed batches in a spool's `bus/batch/`: directories without a leading dot.
fn committed_batches(home: &Path) -> usize {
    names(&home.join("bus/batch")).iter().filter(|n| !n.starts_with('.')).count()
}

/// `af-bus send --batch` killed (SIGKILL) at any moment queues its batch whole or not at all,
/// every message whole. Every other round the kill comes once the batch is committed (its
/// directory in `bus/batch/` lost its dot) while its messages are being renamed into the queue;
/// the others at a pseudo-random moment of the send. The next look at the queue (`stats`)
/// finishes a committed batch.
#[test]
fn a_batch_sender_killed_at_any_moment_queues_all_or_nothing() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let env = Env::new();
    env.create(r#"{"id":"q","type":"worker","projectId":"p"}"#);
    let n = 2000;
    let lines = |round: usize| -> String { (0..n).map(|i| format!("{{\"round\":{round},\"i\":{i}}}\n")).collect() };
    let depth = || env.json("af-bus", &["stats"])["queues"][0]["depth"].as_u64().unwrap_or(0) as usize;
    // A first batch, whole: how long a send takes.
    let started = std::time::Instant::now();
    env.ok_in("af-bus", &["send", "--batch", "--to", "q"], Some(&lines(0)));
    let took = started.elapsed();
    assert_eq!(depth(), n);
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rand = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below.max(1)
    };
    let (mut queued, mut after_commit, mut rounds) = (n, 0, 0);
    while rounds < 12 || (after_commit < 3 && rounds < 60) {
        rounds += 1;
        let mut sender = env.cmd("af-bus");
        sender.args(["send", "--batch", "--to", "q"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut sender = sender.spawn().unwrap();
        sender.stdin.take().unwrap().write_all(lines(rounds).as_bytes()).unwrap();
        if rounds % 2 == 0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while committed_batches(&env.home) == 0 && sender.try_wait().unwrap().is_none() {
                assert!(std::time::Instant::now() < deadline, "the send neither committed nor ended");
                std::thread::sleep(Duration::from_micros(100));
            }
        } else {
            std::thread::sleep(Duration::from_micros(rand(took.as_micros() as u64)));
        }
        let _ = sender.kill();
        let status = sender.wait().unwrap();
        if committed_batches(&env.home) > 0 {
            after_commit += 1;
        }
        let now = depth();
        assert!(
            now == queued || now == queued + n,
            "round {rounds} (killed: {:?}): {} of a batch of {n} queued",
            status.signal(),
            now as i64 - queued as i64
        );
        if status.success() {
            assert_eq!(now, queued + n, "round {rounds}: the send said it was done");
        }
        queued = now;
        assert_eq!(committed_batches(&env.home), 0, "the look at the queue finished the batch");
    }
    assert!(after_commit > 0, "no kill came after a commit in {rounds} rounds");
    // Every message whole (none unreadable), each batch all or nothing.
    let out = env.ok("af-bus", &["recv", "q", "--json", "-n", "1000000"]);
    let mut per_round: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for l in out.lines() {
        let m: serde_json::Value = serde_json::from_str(l).unwrap();
        let p = &m["payload"];
        per_round.entry(p["round"].as_u64().unwrap()).or_default().push(p["i"].as_u64().unwrap());
    }
    for (round, mut got) in per_round {
        got.sort_unstable();
        assert_eq!(got, (0..n as u64).collect::<Vec<_>>(), "round {round}: each message once");
    }
    let st = env.json("af-bus", &["stats"]);
    assert_eq!(st["totals"]["dead"], 0, "no message torn: {st}");
}
