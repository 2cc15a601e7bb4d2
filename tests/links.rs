//! The spool is opened beneath its root and never through a link (issue 13): for each path a
//! writer opens, a symlink planted there to a canary outside the spool (and, where a named pipe
//! belongs, a regular file) is refused, and the canary is unchanged.

mod util;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use util::Env;

const CANARY: &[u8] = b"canary\n";

/// A directory outside the spool, with a canary file in it.
fn outside(env: &Env) -> PathBuf {
    let dir = env.home.parent().expect("the test root").join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("canary"), CANARY).unwrap();
    dir
}

/// Plants a symlink at `link` (its directories made first) pointing at `target`.
fn plant(link: &Path, target: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(target, link).unwrap();
}

#[track_caller]
fn assert_untouched(outside: &Path, absent: &[&str]) {
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), CANARY, "the canary was written through a link");
    for name in absent {
        assert!(!outside.join(name).exists(), "{name} was created outside the spool, through a link");
    }
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn the_event_log_and_its_fifodir_are_written_only_when_they_are_what_they_should_be() {
    let env = Env::new();
    env.ok("af-spawn", &["ls"]);
    let out = outside(&env);
    plant(&env.home.join("events.d/fifo.link"), &out.join("canary"));
    plant(&env.home.join("events.d/fifo.dangling"), &out.join("made-by-notify"));
    std::fs::write(env.home.join("events.d/fifo.regular"), b"regular\n").unwrap();
    env.create(r#"{"id":"e1","type":"worker","projectId":"p"}"#);
    assert_untouched(&out, &["made-by-notify"]);
    assert_eq!(std::fs::read(env.home.join("events.d/fifo.regular")).unwrap(), b"regular\n");
    // The log itself.
    std::fs::rename(env.home.join("events.log"), out.join("events.log")).unwrap();
    plant(&env.home.join("events.log"), &out.join("canary"));
    let _ = env.run("af-spawn", &["create"], Some(r#"{"id":"e2","type":"worker","projectId":"p"}"#));
    assert_untouched(&out, &["made-by-notify"]);
}

/// Runs `af-bus` verbs that log a record at info (a message nacked to the dead letters), so its
/// log file is opened; returns the last run's output.
fn af_bus_logging(env: &Env) -> std::process::Output {
    let id = env.ok("af-bus", &["send", "--to", "w1", "1"]).trim().to_owned();
    env.ok("af-bus", &["recv", "w1"]);
    env.run("af-bus", &["nack", "w1", &id], None)
}

#[test]
fn program_logs_are_opened_after_the_spool_is_checked_and_never_through_a_link() {
    let mut env = Env::new();
    env.set_env("AF_BUS_MAX_ATTEMPTS", "1");
    env.create(r#"{"id":"w1","type":"worker","projectId":"p"}"#);
    let out = outside(&env);
    // A link at the log file: not followed (it would create the file outside).
    plant(&env.home.join("log/af-bus.log"), &out.join("af-bus.log"));
    let run = af_bus_logging(&env);
    assert!(run.status.success(), "{}", util::describe(&run));
    assert_untouched(&out, &["af-bus.log"]);
    // A link at the log folder.
    std::fs::remove_dir_all(env.home.join("log")).unwrap();
    plant(&env.home.join("log"), &out);
    assert!(af_bus_logging(&env).status.success());
    assert_untouched(&out, &["af-bus.log"]);
    // The control: with nothing planted, the same runs do write the log.
    std::fs::remove_file(env.home.join("log")).unwrap();
    assert!(af_bus_logging(&env).status.success());
    let log = util::read(&env.home.join("log/af-bus.log"));
    assert!(log.contains("dead letters"), "af-bus.log: {log}");
    // A spool that fails the checks: nothing in it is opened before the refusal.
    std::fs::remove_dir_all(env.home.join("log")).unwrap();
    plant(&env.home.join("log/af-bus.log"), &out.join("af-bus.log"));
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = env.fails("af-bus", &["stats"], None, 4);
    assert!(err.contains("writable by group or others"), "{err}");
    assert_untouched(&out, &["af-bus.log"]);
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A named pipe at the log file: not opened (an open for writing would wait for a reader).
    std::fs::remove_file(env.home.join("log/af-bus.log")).unwrap();
    assert!(Command::new("mkfifo").arg(env.home.join("log/af-bus.log")).status().unwrap().success());
    let id = env.ok("af-bus", &["send", "--to", "w1", "1"]).trim().to_owned();
    env.ok("af-bus", &["recv", "w1"]);
    let mut child = env.cmd("af-bus").args(["nack", "w1", &id]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.is_some_and(|s| s.success()), "af-bus hung on a named pipe at its log: {status:?}");
}

#[test]
fn an_agents_logs_records_and_fifodir_are_never_written_through_a_link() {
    let env = Env::new();
    let out = outside(&env);
    let config = r#"{"id":"w1","type":"worker","projectId":"p","command":["sleep","300"]}"#;
    env.create(config);
    let agent = env.home.join("agents/w1");
    plant(&agent.join("wrap.log"), &out.join("wrap.log"));
    plant(&agent.join("health.log"), &out.join("health.log"));
    plant(&agent.join("notify.d/fifo.link"), &out.join("canary"));
    plant(&agent.join("notify.d/fifo.dangling"), &out.join("made-by-notify"));
    std::fs::write(agent.join("notify.d/fifo.regular"), b"regular\n").unwrap();
    env.ok("af-spawn", &["start", "w1"]);
    util::wait_for("w1 running", Duration::from_secs(20), || env.status("w1") == "running");
    let _ = env.run("af-health", &["check"], None);
    env.ok("af-spawn", &["stop", "w1"]);
    assert_untouched(&out, &["wrap.log", "health.log", "made-by-notify"]);
    assert_eq!(std::fs::read(agent.join("notify.d/fifo.regular")).unwrap(), b"regular\n");

    // output.log is appended to by tmux's pipe-pane from a shell: a link there refuses the start.
    env.create(&config.replace("w1", "w2"));
    plant(&env.home.join("agents/w2/output.log"), &out.join("output.log"));
    let err = env.fails("af-spawn", &["start", "w2"], None, 111);
    assert!(err.contains("refusing to follow a symbolic link at") && err.contains("output.log"), "{err}");
    assert_untouched(&out, &["output.log"]);
    assert_eq!(env.status("w2"), "created");

    // A record that is a link is neither read nor replaced.
    env.create(&config.replace("w1", "w3"));
    let state = env.home.join("agents/w3/state.json");
    std::fs::rename(&state, out.join("state.json")).unwrap();
    symlink(out.join("state.json"), &state).unwrap();
    let before = std::fs::read(out.join("state.json")).unwrap();
    let err = env.fails("af-spawn", &["start", "w3"], None, 111);
    assert!(err.contains("refusing to follow a symbolic link at"), "{err}");
    assert!(std::fs::symlink_metadata(&state).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(std::fs::read(out.join("state.json")).unwrap(), before);
}

#[test]
fn the_control_pipe_is_written_only_when_it_is_a_pipe() {
    let env = Env::new();
    let out = outside(&env);
    env.worker("w1", "sleep 300");
    util::wait_for("w1 running", Duration::from_secs(20), || env.status("w1") == "running");
    let agent = env.home.join("agents/w1");
    // The control pipe replaced by a link, then by a regular file: requests are not written there.
    let control = agent.join("control");
    std::fs::rename(&control, agent.join("control.real")).unwrap();
    symlink(out.join("canary"), &control).unwrap();
    let _ = env.run("af-spawn", &["pause", "w1"], None);
    assert_untouched(&out, &[]);
    std::fs::remove_file(&control).unwrap();
    std::fs::write(&control, b"regular\n").unwrap();
    let _ = env.run("af-spawn", &["pause", "w1"], None);
    assert_eq!(std::fs::read(&control).unwrap(), b"regular\n", "a request was written into a regular file");
    std::fs::rename(agent.join("control.real"), &control).unwrap();
    env.ok("af-spawn", &["stop", "w1"]);
}

#[test]
fn a_queue_or_subscription_behind_a_link_is_refused() {
    let env = Env::new();
    env.ok("af-spawn", &["ls"]);
    let out = outside(&env);
    // A project's pool moved outside the spool and linked back.
    env.ok("af-bus", &["send", "--to", "pool:proj", "1"]);
    let pool = env.home.join("bus/pool/proj");
    std::fs::rename(&pool, out.join("proj")).unwrap();
    symlink(out.join("proj"), &pool).unwrap();
    let queued = entries(&out.join("proj/new"));
    let err = env.fails("af-bus", &["send", "--to", "pool:proj", "2"], None, 111);
    assert!(err.contains("refusing to follow a symbolic link at"), "{err}");
    assert_eq!(entries(&out.join("proj/new")), queued, "a message was delivered outside the spool");
    // A subscription likewise.
    env.ok("af-bus", &["subscribe", "s1", "--topic", "t"]);
    let sub = env.home.join("bus/sub/s1");
    std::fs::rename(&sub, out.join("s1")).unwrap();
    symlink(out.join("s1"), &sub).unwrap();
    let _ = env.run("af-bus", &["publish", "--topic", "t", "3"], None);
    assert_eq!(entries(&out.join("s1/new")), 0, "a message was delivered outside the spool");
    assert_untouched(&out, &[]);
}

#[test]
fn a_checkpoint_archive_is_0600_whatever_the_umask() {
    let env = Env::new();
    std::fs::write(env.work.join("file.txt"), b"work\n").unwrap();
    let config = serde_json::json!({"id": "c1", "type": "worker", "workdir": env.work, "command": ["sleep", "300"]});
    env.create(&config.to_string());
    let mut cmd = Command::new("sh");
    env.apply(&mut cmd);
    let out = cmd
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(util::bin("af-checkpoint"))
        .args(["create", "c1", "-m", "umask"])
        .output()
        .unwrap();
    assert!(out.status.success(), "af-checkpoint create failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut found = Vec::new();
    let mut stack = vec![env.home.join("agents/c1/checkpoints")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "tree.tar.gz" {
                found.push(e.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "one archive: {found:?}");
    let mode = std::fs::metadata(&found[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the archive is {mode:o}");
}
