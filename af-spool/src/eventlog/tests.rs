//! The event log as its writers and readers see it: rotation, generations, concurrent writers
//! (threads and processes), streaming and following readers, capped events.

use super::*;
use crate::atomic;
use crate::id::AgentId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};

/// A spool in a fresh temporary directory, removed on drop.
struct TempSpool {
    spool: Spool,
}

impl TempSpool {
    fn new() -> TempSpool {
        let root = std::env::temp_dir().join(atomic::unique_name("eventlog-test"));
        TempSpool { spool: Spool::open(&root).unwrap() }
    }
}

impl Drop for TempSpool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.spool.root());
    }
}

fn event(writer: usize, seq: usize, pad: usize) -> Event {
    Event::new("test.event", None, json!({"writer": writer, "seq": seq, "pad": "p".repeat(pad)}))
}

/// The lines of one file of the log, each checked to be one whole event.
fn file_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "{} ends inside a line", path.display());
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("split or glued line {l:?}: {e}"))).collect()
}

/// Every file of the log, oldest first, as `(path, lines)`.
fn files(spool: &Spool) -> Vec<(std::path::PathBuf, Vec<Value>)> {
    let mut out = Vec::new();
    for n in (1..=MAX_KEEP).rev() {
        let p = spool.events_generation_path(n);
        if p.exists() {
            out.push((p.clone(), file_lines(&p)));
        }
    }
    let live = spool.events_path();
    out.push((live.clone(), file_lines(&live)));
    out
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|l| l["detail"]["seq"].as_u64().unwrap()).collect()
}

#[test]
fn limits_come_from_human_settings() {
    assert_eq!(Limits::parse(None, None).unwrap(), Limits { max_bytes: 8 << 20, keep: 3 });
    assert_eq!(Limits::parse(Some("64KB"), Some("5")).unwrap(), Limits { max_bytes: 64 << 10, keep: 5 });
    assert_eq!(Limits::parse(Some(""), Some("0")).unwrap().keep, 1, "a late writer's generation is always kept");
    assert!(Limits::parse(Some("lots"), None).is_err());
    assert!(Limits::parse(None, Some("-1")).is_err());
    assert!(Limits::parse(None, Some("1001")).is_err());
}

#[test]
fn rotates_at_the_threshold_and_keeps_only_the_newest_generations() {
    let t = TempSpool::new();
    let limits = Limits { max_bytes: 1000, keep: 2 };
    // A model of the files, newest first: what each should hold after every append.
    let mut model: VecDeque<Vec<u64>> = VecDeque::from([vec![]]);
    let mut model_len = 0u64;
    for seq in 0..60 {
        let e = event(0, seq, seq % 7 * 20);
        let len = encode(&e).unwrap().len() as u64;
        if model_len > 0 && model_len + len > limits.max_bytes {
            model.push_front(vec![]);
            model.truncate(limits.keep + 1);
            model_len = 0;
        }
        model[0].push(seq as u64);
        model_len += len;
        append_with(&t.spool, &e, limits).unwrap();

        let on_disk = files(&t.spool);
        let want: Vec<Vec<u64>> = model.iter().rev().cloned().collect();
        let got: Vec<Vec<u64>> = on_disk.iter().map(|(_, l)| seqs(l)).collect();
        assert_eq!(got, want, "after event {seq}");
        let live = std::fs::metadata(t.spool.events_path()).unwrap().len();
        assert_eq!(live, model_len);
        assert!(live <= limits.max_bytes);
    }
    assert!(t.spool.events_generation_path(2).exists());
    assert!(!t.spool.events_generation_path(3).exists(), "the oldest generation is dropped");
    // A smaller keep later drops the generations beyond it at the next rotation.
    let fewer = Limits { max_bytes: 1000, keep: 1 };
    for seq in 60..80 {
        append_with(&t.spool, &event(0, seq, 200), fewer).unwrap();
    }
    assert!(t.spool.events_generation_path(1).exists());
    assert!(!t.spool.events_generation_path(2).exists());
}

#[test]
fn a_line_over_the_limit_gets_a_file_of_its_own() {
    let t = TempSpool::new();
    let limits = Limits { max_bytes: 100, keep: 3 };
    for seq in 0..3 {
        append_with(&t.spool, &event(0, seq, 500), limits).unwrap();
    }
    let got: Vec<Vec<u64>> = files(&t.spool).iter().map(|(_, l)| seqs(l)).collect();
    assert_eq!(got, [vec![0], vec![1], vec![2]]);
}

#[test]
fn an_oversized_event_is_written_truncated() {
    let t = TempSpool::new();
    let id = AgentId::new("c1").unwrap();
    let input = json!({"hook_event_name": "PostToolUse", "tool_response": "r".repeat(150_000)});
    let detail = json!({"event": "PostToolUse", "input": input});
    append(&t.spool, &Event::new("agent.claude", Some(&id), detail.clone())).unwrap();
    let text = std::fs::read_to_string(t.spool.events_path()).unwrap();
    assert!(text.len() <= MAX_LINE, "{} bytes on disk", text.len());
    let events: Vec<Event> = history(&t.spool).unwrap().collect::<Result<_>>().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["truncated"], true);
    assert_eq!(events[0].detail["bytes"], serde_json::to_vec(&detail).unwrap().len());
    assert_eq!(events[0].detail["input"]["hook_event_name"], "PostToolUse");
}

#[test]
fn a_line_left_unfinished_by_a_dead_writer_does_not_swallow_the_next() {
    let t = TempSpool::new();
    append(&t.spool, &event(0, 0, 0)).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(t.spool.events_path())
        .unwrap()
        .write_all(b"{\"time\":1,\"ki")
        .unwrap();
    append(&t.spool, &event(0, 1, 0)).unwrap();
    let seen: Vec<u64> = history(&t.spool).unwrap().map(|e| e.unwrap().detail["seq"].as_u64().unwrap()).collect();
    assert_eq!(seen, [0, 1]);
}

/// Checks that the log holds every writer's events exactly once, whole, in each writer's order,
/// and that it was rotated without growing a generation far past the limit.
fn check_every_line_once(spool: &Spool, writers: usize, per_writer: usize, limits: Limits) {
    let on_disk = files(spool);
    assert!(on_disk.len() > 3, "the log rotated: {} files", on_disk.len());
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (path, lines) in &on_disk {
        let size = std::fs::metadata(path).unwrap().len();
        // Writers that checked the size at once may each add a line past the limit.
        assert!(size <= limits.max_bytes + (writers as u64) * 400, "{} is {size} bytes", path.display());
        // A generation is rotated only once the next line would not fit, never again by a writer
        // that found it due at the same time: none is left small.
        if *path != spool.events_path() {
            assert!(size + 400 > limits.max_bytes, "{} is only {size} bytes", path.display());
        }
        for l in lines {
            seen.entry(l["detail"]["writer"].as_u64().unwrap()).or_default().push(l["detail"]["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seen.len(), writers);
    let want: Vec<u64> = (0..per_writer as u64).collect();
    for (w, s) in &seen {
        assert_eq!(s, &want, "writer {w}: every line once, in order");
    }
    // The streaming reader sees the same.
    let streamed = history(spool).unwrap().filter(|e| e.as_ref().is_ok_and(|e| e.kind == "test.event")).count();
    assert_eq!(streamed, writers * per_writer);
}

#[test]
fn concurrent_threads_lose_no_line_and_split_none() {
    let t = TempSpool::new();
    // Enough generations kept that nothing is dropped: every line must be found.
    let limits = Limits { max_bytes: 8 << 10, keep: MAX_KEEP };
    let (writers, per_writer) = (8, 300);
    std::thread::scope(|s| {
        for w in 0..writers {
            let spool = &t.spool;
            s.spawn(move || {
                for seq in 0..per_writer {
                    append_with(spool, &event(w, seq, (w * 37 + seq) % 200), limits).unwrap();
                }
            });
        }
    });
    check_every_line_once(&t.spool, writers, per_writer, limits);
}

/// The environment variable that makes [`child_writer`] write (when the test binary runs it for
/// [`concurrent_processes_lose_no_line_and_split_none`]).
const CHILD_ENV: &str = "AF_EVENTLOG_TEST_CHILD";
const CHILD_LIMITS: Limits = Limits { max_bytes: 8 << 10, keep: MAX_KEEP };
const CHILD_EVENTS: usize = 300;

#[test]
#[ignore = "run by concurrent_processes_lose_no_line_and_split_none in child processes"]
fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (writer, root) = spec.split_once(':').unwrap();
    let spool = Spool::open(Path::new(root)).unwrap();
    for seq in 0..CHILD_EVENTS {
        append_with(&spool, &event(writer.parse().unwrap(), seq, seq % 150), CHILD_LIMITS).unwrap();
    }
}

#[test]
fn concurrent_processes_lose_no_line_and_split_none() {
    let t = TempSpool::new();
    let exe = std::env::current_exe().unwrap();
    let writers = 4;
    let children: Vec<_> = (0..writers)
        .map(|w| {
            std::process::Command::new(&exe)
                .args(["--exact", "eventlog::tests::child_writer", "--ignored", "--test-threads=1", "--quiet"])
                .env(CHILD_ENV, format!("{w}:{}", t.spool.root().display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    check_every_line_once(&t.spool, writers, CHILD_EVENTS, CHILD_LIMITS);
}

#[test]
fn readers_stream_the_generations_oldest_first() {
    let t = TempSpool::new();
    let limits = Limits { max_bytes: 2000, keep: 3 };
    for seq in 0..40 {
        append_with(&t.spool, &event(0, seq, 100), limits).unwrap();
    }
    let kept: Vec<u64> = files(&t.spool).iter().flat_map(|(_, l)| seqs(l)).collect();
    assert!(t.spool.events_generation_path(3).exists() && kept.len() < 40 && kept.last() == Some(&39));
    let streamed: Vec<u64> = history(&t.spool).unwrap().map(|e| e.unwrap().detail["seq"].as_u64().unwrap()).collect();
    assert_eq!(streamed, kept);
    let tail: Vec<u64> = last(&t.spool, 5, |e| e.detail["seq"].as_u64().unwrap() % 2 == 0)
        .unwrap()
        .iter()
        .map(|e| e.detail["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(tail, [30, 32, 34, 36, 38]);
    // Each line's cursor is where the next one starts.
    let lines: Vec<Line> = lines(&t.spool).unwrap().map(|l| l.unwrap()).collect();
    let mut follower = Follower::open(&t.spool, Start::At(lines[10].cursor)).unwrap();
    assert_eq!(follower.events().unwrap().len(), lines.len() - 11);
    assert!(disk_bytes(&t.spool) > std::fs::metadata(t.spool.events_path()).unwrap().len());
}

fn follow_seqs(f: &mut Follower) -> Vec<u64> {
    f.events().unwrap().iter().map(|e| e.detail["seq"].as_u64().unwrap()).collect()
}

#[test]
fn a_follower_survives_rotation_and_truncation() {
    let t = TempSpool::new();
    let limits = Limits { max_bytes: 1500, keep: 3 };
    append_with(&t.spool, &event(0, 0, 100), limits).unwrap();
    let mut from_end = Follower::open(&t.spool, Start::End).unwrap();
    let mut recent = Follower::open(&t.spool, Start::Last(1)).unwrap();
    assert_eq!(follow_seqs(&mut recent), [0]);
    // Several rotations between two looks: the generations in between are read too.
    for seq in 1..30 {
        append_with(&t.spool, &event(0, seq, 100), limits).unwrap();
        if seq == 5 {
            assert_eq!(follow_seqs(&mut from_end), [1, 2, 3, 4, 5]);
        }
    }
    assert!(t.spool.events_generation_path(2).exists());
    assert_eq!(follow_seqs(&mut from_end), (6..30).collect::<Vec<_>>());
    assert_eq!(follow_seqs(&mut recent), (1..30).collect::<Vec<_>>());
    // The last N over the generations; a position in a dropped generation starts at the oldest.
    let mut last12 = Follower::open(&t.spool, Start::Last(12)).unwrap();
    assert_eq!(follow_seqs(&mut last12), (18..30).collect::<Vec<_>>());
    let oldest = history(&t.spool).unwrap().next().unwrap().unwrap().detail["seq"].as_u64().unwrap();
    let gone = Cursor { file: u64::MAX, offset: 10 };
    assert_eq!(follow_seqs(&mut Follower::open(&t.spool, Start::At(gone)).unwrap())[0], oldest);
    // Cut short under it: read again from the start.
    std::fs::OpenOptions::new().write(true).open(t.spool.events_path()).unwrap().set_len(0).unwrap();
    append_with(&t.spool, &event(0, 30, 0), limits).unwrap();
    assert_eq!(follow_seqs(&mut from_end), [30]);
    // A live offset (an id given before the log rotated) is clamped to the live file.
    assert!(follow_seqs(&mut Follower::open(&t.spool, Start::LiveOffset(1 << 40)).unwrap()).is_empty());
    assert_eq!(follow_seqs(&mut Follower::open(&t.spool, Start::LiveOffset(0)).unwrap()), [30]);
}

#[test]
fn a_follower_waits_for_a_log_that_does_not_exist_yet() {
    let t = TempSpool::new();
    let mut f = Follower::open(&t.spool, Start::Last(10)).unwrap();
    assert!(f.poll(1 << 20).unwrap().is_empty());
    append(&t.spool, &event(0, 7, 0)).unwrap();
    assert_eq!(follow_seqs(&mut f), [7]);
}

#[test]
fn cursors_read_back() {
    let c = Cursor { file: 1234, offset: 56 };
    assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
    assert!("56".parse::<Cursor>().is_err());
    assert!("a:b".parse::<Cursor>().is_err());
}

use std::io::Write;
use std::path::Path;

#[test]
fn compressed_generations_are_read_and_rotated_like_plain_ones_and_positions_in_them_hold() {
    let t = TempSpool::new();
    let limits = Limits { max_bytes: 1500, keep: 4 };
    for seq in 0..40 {
        append_with(&t.spool, &event(0, seq, 100), limits).unwrap();
    }
    let before: Vec<Line> = lines(&t.spool).unwrap().map(Result::unwrap).collect();
    // A position in generation 3, taken before it is compressed.
    let in_third =
        before.iter().find(|l| l.cursor.file == read::open(&t.spool.events_generation_path(3)).unwrap().unwrap().ino);
    let in_third = in_third.unwrap().clone();
    let lock = t.spool.events_lock_path();
    for n in [2, 3, 4] {
        assert!(crate::logfile::compress(&t.spool.events_generation_path(n), Some(&lock)).unwrap());
    }
    assert!(!t.spool.events_generation_path(3).exists());
    let after: Vec<Line> = lines(&t.spool).unwrap().map(Result::unwrap).collect();
    assert_eq!(after, before, "the same lines at the same positions");
    let resumed = follow_seqs(&mut Follower::open(&t.spool, Start::At(in_third.cursor)).unwrap());
    let expected: Vec<u64> = before
        .iter()
        .skip_while(|l| l.cursor != in_third.cursor)
        .skip(1)
        .map(|l| l.event().unwrap().detail["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(resumed, expected);
    assert_eq!(follow_seqs(&mut Follower::open(&t.spool, Start::Last(25)).unwrap()), (15..40).collect::<Vec<_>>());
    // Rotation moves them up, and drops the oldest, compressed or not.
    for seq in 40..60 {
        append_with(&t.spool, &event(0, seq, 100), limits).unwrap();
    }
    let seqs_now: Vec<u64> = history(&t.spool).unwrap().map(|e| e.unwrap().detail["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs_now.last(), Some(&59));
    assert!(seqs_now.windows(2).all(|w| w[1] == w[0] + 1), "{seqs_now:?}");
    assert!((1..=4).all(|n| crate::logfile::has_generation(&t.spool.events_path(), n)));
    assert!(!crate::logfile::has_generation(&t.spool.events_path(), 5));
    assert!(disk_bytes(&t.spool) > 0);
}

#[test]
fn a_follower_past_a_rotation_opens_only_the_newer_generations() {
    let t = TempSpool::new();
    let limits = Limits { max_bytes: 1500, keep: 4 };
    for seq in 0..30 {
        append_with(&t.spool, &event(0, seq, 100), limits).unwrap();
    }
    let lock = t.spool.events_lock_path();
    assert!(crate::logfile::compress(&t.spool.events_generation_path(3), Some(&lock)).unwrap());
    let mut f = Follower::open(&t.spool, Start::End).unwrap();
    // The old compressed generation is unreadable now: a follower that opened it would fail.
    std::fs::write(crate::logfile::compressed(&t.spool.events_path(), 3), b"not gzip").unwrap();
    let mut seen = Vec::new();
    for seq in 30..45 {
        append_with(&t.spool, &event(0, seq, 100), limits).unwrap();
        seen.extend(follow_seqs(&mut f));
    }
    assert_eq!(seen, (30..45).collect::<Vec<_>>());
}
