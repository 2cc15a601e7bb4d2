//! af-checkpoint against real git repositories and plain directories: rollback makes the tree
//! byte-identical (contents and modes) without touching HEAD, branch, index or stash; messages and
//! the conversation come back; kill -9 during create and rollback never leaves a broken
//! checkpoint, and a rerun rollback completes.

mod util;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use util::{Env, git, wait_for};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file under `dir` (but `.git`): its bytes and its mode.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if e.file_name() == ".git" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), (bytes, meta.permissions().mode() & 0o777));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A repository with a commit, an ignored file, a stash entry and a staged change.
fn repo(env: &Env) -> PathBuf {
    let r = env.path("repo");
    std::fs::create_dir_all(&r).unwrap();
    git(&r, &["init", "-q", "-b", "main"]);
    write(&r.join(".gitignore"), "*.log\nbuild/\n");
    write(&r.join("README"), "hello\n");
    write(&r.join("src/main.rs"), "fn main() {}\n");
    write(&r.join("src/lib.rs"), "pub fn f() {}\n");
    write(&r.join("run.sh"), "#!/bin/sh\necho hi\n");
    chmod(&r.join("run.sh"), 0o755);
    for i in 0..40 {
        write(&r.join(format!("data/f{i}.txt")), &format!("file {i}\n"));
    }
    git(&r, &["add", "-A"]);
    git(&r, &["commit", "-q", "-m", "init"]);
    write(&r.join("README"), "stashed change\n");
    git(&r, &["stash", "-q"]);
    write(&r.join("src/lib.rs"), "pub fn f() { /* staged */ }\n");
    git(&r, &["add", "src/lib.rs"]);
    write(&r.join("notes.txt"), "untracked, not ignored\n");
    write(&r.join("debug.log"), "ignored before\n");
    r
}

/// What the user's git state is: HEAD, branch, index (its bytes), stash.
fn git_state(r: &Path) -> (String, String, Vec<u8>, String) {
    (
        git(r, &["rev-parse", "HEAD"]),
        git(r, &["symbolic-ref", "HEAD"]),
        std::fs::read(r.join(".git/index")).unwrap(),
        git(r, &["stash", "list", "--format=%H"]),
    )
}

fn agent_in(env: &Env, id: &str, dir: &Path) {
    let config = serde_json::json!({"id": id, "type": "worker", "workdir": dir, "command": ["sleep", "300"]});
    env.create(&config.to_string());
}

/// Changes every kind of thing: modify, add (nested), delete, chmod, stage, ignored files.
fn mess_up(r: &Path, git_repo: bool) {
    write(&r.join("src/main.rs"), "fn main() { println!(\"changed\"); }\n");
    write(&r.join("new/deep/added.txt"), "added since\n");
    std::fs::remove_file(r.join("data/f3.txt")).unwrap();
    std::fs::remove_file(r.join("notes.txt")).unwrap();
    chmod(&r.join("run.sh"), 0o644);
    chmod(&r.join("data/f7.txt"), 0o755);
    if git_repo {
        write(&r.join("data/f9.txt"), "staged since\n");
        git(r, &["add", "data/f9.txt", "new/deep/added.txt"]);
        write(&r.join("debug.log"), "ignored, changed since\n");
        write(&r.join("build/out.bin"), "ignored, added since\n");
    }
}

fn ckpt(env: &Env, id: &str, msg: &str) -> String {
    env.ok("af-checkpoint", &["create", id, "-m", msg]).trim().to_owned()
}

#[test]
fn git_rollback_is_exact_and_leaves_head_branch_index_stash_alone() {
    let env = Env::new();
    let r = repo(&env);
    agent_in(&env, "g1", &r);
    let before = fingerprint(&r);
    let user_before = git_state(&r);
    let ck = ckpt(&env, "g1", "before the mess");
    assert!(ck.starts_with("ck-"), "{ck}");
    assert_eq!(git_state(&r), user_before, "create touches nothing of the user's");
    assert_eq!(fingerprint(&r), before, "create touches no file");
    assert!(git(&r, &["for-each-ref", "refs/agentflow/"]).contains(&format!("refs/agentflow/checkpoints/g1/{ck}")));

    mess_up(&r, true);
    let diff = env.json("af-checkpoint", &["diff", "g1", &ck]);
    let changed: Vec<String> = diff
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d["status"].as_str().unwrap(), d["path"].as_str().unwrap()))
        .collect();
    for want in [
        "M src/main.rs",
        "A new/deep/added.txt",
        "D data/f3.txt",
        "D notes.txt",
        "M run.sh",
        "M data/f7.txt",
        "M data/f9.txt",
    ] {
        assert!(changed.contains(&want.to_owned()), "diff lacks {want}: {changed:?}");
    }
    assert!(
        !changed.iter().any(|c| c.contains(".log") || c.contains("build/")),
        "ignored files are not in it: {changed:?}"
    );
    let patch = env.ok("af-checkpoint", &["diff", "g1", &ck, "--patch"]);
    assert!(patch.contains("+fn main() { println!(\"changed\"); }"), "{patch}");
    let user_after_mess = git_state(&r);
    let ignored = (std::fs::read(r.join("debug.log")).unwrap(), std::fs::read(r.join("build/out.bin")).unwrap());

    env.ok("af-checkpoint", &["rollback", "g1", &ck]);
    let mut now = fingerprint(&r);
    let mut want = before.clone();
    for f in [Path::new("debug.log"), Path::new("build/out.bin")] {
        now.remove(f);
        want.remove(f);
    }
    assert_eq!(now, want, "the tree is byte- and mode-identical to the checkpoint");
    assert!(!r.join("new").exists(), "added directories are gone");
    assert_eq!(git_state(&r), user_after_mess, "HEAD, branch, index and stash are as the user left them");
    assert_eq!(
        (std::fs::read(r.join("debug.log")).unwrap(), std::fs::read(r.join("build/out.bin")).unwrap()),
        ignored,
        "ignored files are left alone"
    );
    assert_eq!(env.json("af-checkpoint", &["diff", "g1", &ck]), serde_json::json!([]), "nothing differs now");

    // Asked for, the index becomes the checkpoint's tree too (HEAD and branch still stay).
    mess_up(&r, true);
    env.ok("af-checkpoint", &["rollback", "g1", &ck, "--reset-index"]);
    let commit = env.json("af-checkpoint", &["show", "g1", &ck])["tree"]["commit"].as_str().unwrap().to_owned();
    assert_eq!(git(&r, &["diff-index", "--cached", "--name-only", &commit]), "", "index = checkpoint");
    assert_eq!(git_state(&r).0, user_after_mess.0);
    assert_eq!(git_state(&r).1, user_after_mess.1);

    // The event log has both.
    let log = util::read(&env.home.join("events.log"));
    assert!(log.contains("\"checkpoint.created\"") && log.contains("\"checkpoint.rolledback\""), "{log}");
}

#[test]
fn rollback_outside_git_is_exact() {
    let env = Env::new();
    let d = env.path("plain");
    write(&d.join("README"), "hello\n");
    write(&d.join("run.sh"), "#!/bin/sh\n");
    chmod(&d.join("run.sh"), 0o755);
    write(&d.join("notes.txt"), "notes\n");
    for i in 0..20 {
        write(&d.join(format!("data/f{i}.txt")), &format!("{i}\n"));
    }
    write(&d.join("src/main.rs"), "fn main() {}\n");
    agent_in(&env, "p1", &d);
    let before = fingerprint(&d);
    let ck = ckpt(&env, "p1", "plain");
    let shown = env.json("af-checkpoint", &["show", "p1", &ck]);
    assert_eq!(shown["tree"]["kind"], "archive", "{shown}");
    mess_up(&d, false);
    let diff = env.ok("af-checkpoint", &["diff", "p1", &ck]);
    assert!(diff.contains("A\tnew/deep/added.txt") && diff.contains("D\tdata/f3.txt"), "{diff}");
    env.ok("af-checkpoint", &["rollback", "p1", &ck]);
    assert_eq!(fingerprint(&d), before);
    // Even a workdir deleted since comes back.
    std::fs::remove_dir_all(&d).unwrap();
    env.ok("af-checkpoint", &["rollback", "p1", &ck]);
    assert_eq!(fingerprint(&d), before);
}

#[test]
fn messages_conversation_and_config_come_back() {
    let env = Env::new();
    let d = env.path("plain");
    write(&d.join("x"), "x\n");
    agent_in(&env, "c1", &d);
    let agent = env.home.join("agents/c1");
    let transcript = env.path("claude/projects/p/sess-1.jsonl");
    write(&transcript, "{\"turn\":1}\n{\"turn\":2}\n");
    let set_conversation = |session: &str| {
        let path = agent.join("state.json");
        let mut state: serde_json::Value = serde_json::from_str(&util::read(&path)).unwrap();
        state["conversation"] = serde_json::json!({"sessionId": session, "transcript": transcript});
        std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    };
    set_conversation("sess-1");
    // Real messages: two pending, one claimed (in flight).
    let send = |n: &str| env.ok("af-bus", &["send", "--to", "c1", &format!("{{\"n\":\"{n}\"}}")]).trim().to_owned();
    let (m0, m1, m2) = (send("m0"), send("m1"), send("m2"));
    let claimed: serde_json::Value = serde_json::from_str(&env.ok("af-bus", &["recv", "c1", "--json"])).unwrap();
    assert_eq!(claimed["id"], m0.as_str());
    let ck = ckpt(&env, "c1", "talking");
    let shown = env.json("af-checkpoint", &["show", "c1", &ck]);
    assert_eq!(shown["messages"], 3);
    assert_eq!(shown["conversation"]["sessionId"], "sess-1");

    // Since: m0 given back as a failed attempt (pending again, under another file name), one
    // arrived, the conversation moved on, the config changed.
    env.ok("af-bus", &["nack", "c1", &m0]);
    let m9 = send("m9");
    write(&transcript, "{\"turn\":1}\n{\"turn\":2}\n{\"turn\":3}\n");
    set_conversation("sess-2");
    let cfg_path = agent.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&util::read(&cfg_path)).unwrap();
    cfg["projectId"] = "changed".into();
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();

    env.ok("af-checkpoint", &["rollback", "c1", &ck]);
    let mut pending: Vec<String> = std::fs::read_dir(agent.join("inbox/new"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .map(|n| n.split_once('-').and_then(|(_, rest)| rest.split(',').next()).unwrap_or("").to_owned())
        .collect();
    pending.sort();
    let mut want = vec![m0.clone(), m1, m2, m9];
    want.sort();
    assert_eq!(pending, want, "the checkpoint's messages are pending again, once each, the new one kept");
    assert_eq!(std::fs::read_dir(agent.join("inbox/cur")).unwrap().count(), 0);
    assert_eq!(util::read(&transcript), "{\"turn\":1}\n{\"turn\":2}\n", "the transcript is as it was");
    let show = env.show("c1");
    assert_eq!(show["state"]["conversation"]["sessionId"], "sess-1");
    assert_eq!(show["config"]["projectId"], "default", "the config is as it was");
}

#[test]
fn rollback_restarts_a_running_agent_unless_told_not_to() {
    let env = Env::new();
    let d = env.path("plain");
    write(&d.join("x"), "one\n");
    agent_in(&env, "r1", &d);
    env.ok("af-spawn", &["start", "r1"]);
    let pid = env.show("r1")["state"]["pid"].as_u64().unwrap();
    let ck = ckpt(&env, "r1", "running");
    write(&d.join("x"), "two\n");
    let out = env.json("af-checkpoint", &["rollback", "r1", &ck]);
    assert_eq!(out["restarted"], true);
    assert_eq!(util::read(&d.join("x")), "one\n");
    let show = env.show("r1");
    assert_eq!(show["state"]["status"], "running");
    assert_ne!(show["state"]["pid"].as_u64().unwrap(), pid, "a new process");
    env.ok("af-checkpoint", &["rollback", "r1", &ck, "--no-restart"]);
    assert_eq!(env.status("r1"), "stopped");
}

#[test]
fn ls_show_rm_prune_and_bad_input() {
    let env = Env::new();
    let r = repo(&env);
    agent_in(&env, "l1", &r);
    let ids: Vec<String> = (0..4).map(|i| ckpt(&env, "l1", &format!("n{i}"))).collect();
    let ls = env.json("af-checkpoint", &["ls", "l1"]);
    let listed: Vec<&str> = ls.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>(), "oldest first");
    assert_eq!(ls[2]["description"], "n2");
    env.ok("af-checkpoint", &["rm", "l1", &ids[1]]);
    env.fails("af-checkpoint", &["show", "l1", &ids[1]], None, 3);
    let pruned = env.json("af-checkpoint", &["prune", "l1", "--keep", "1"]);
    assert_eq!(pruned, serde_json::json!([ids[0], ids[2]]));
    let refs = git(&r, &["for-each-ref", "--format=%(refname)", "refs/agentflow/"]);
    assert_eq!(refs.trim(), format!("refs/agentflow/checkpoints/l1/{}", ids[3]), "removed ones lose their ref");

    env.fails("af-checkpoint", &["create", "nobody"], None, 3);
    env.fails("af-checkpoint", &["create", "../x"], None, 2);
    env.fails("af-checkpoint", &["show", "l1", "../../config.json"], None, 2);
    env.fails("af-checkpoint", &["rollback", "l1", "ck-0-0000"], None, 3);
    env.fails("af-checkpoint", &["ls", "nobody"], None, 3);
}

fn random_ms(max: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish() % max
}

/// Runs af-checkpoint and SIGKILLs it after a random moment (or lets it finish).
fn killed(env: &Env, args: &[&str], max_ms: u64) {
    let mut child = env.cmd("af-checkpoint").args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(random_ms(max_ms)));
    let _ = child.kill();
    let _ = child.wait();
}

fn hidden_entries(env: &Env, id: &str) -> Vec<String> {
    std::fs::read_dir(env.home.join(format!("agents/{id}/checkpoints")))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn kill_9_during_create_never_lists_a_broken_checkpoint() {
    let env = Env::new();
    let r = repo(&env);
    for i in 0..300 {
        write(&r.join(format!("bulk/b{i}.txt")), &"x".repeat(2000 + i));
    }
    agent_in(&env, "k1", &r);
    let d = env.path("plain");
    write(&d.join("x"), "x\n");
    agent_in(&env, "k2", &d);
    for i in 0..50 {
        write(&r.join("bulk/b0.txt"), &format!("round {i}"));
        killed(&env, &["create", "k1", "-m", "maybe"], 120);
        killed(&env, &["create", "k2", "-m", "maybe"], 30);
    }
    for id in ["k1", "k2"] {
        for c in env.json("af-checkpoint", &["ls", id]).as_array().unwrap() {
            let ck = c["id"].as_str().unwrap();
            let shown = env.json("af-checkpoint", &["show", id, ck]);
            if id == "k1" {
                let commit = shown["tree"]["commit"].as_str().unwrap();
                git(&r, &["cat-file", "-e", commit]);
            } else {
                assert!(env.home.join(format!("agents/k2/checkpoints/{ck}/tree.tar.gz")).is_file());
            }
        }
        let listed = env.json("af-checkpoint", &["ls", id]).as_array().unwrap().len();
        eprintln!("{id}: {listed} of 50 killed creates finished; {} leftovers", hidden_entries(&env, id).len());
        ckpt(&env, id, "after the storm");
        assert!(hidden_entries(&env, id).is_empty(), "leftovers cleaned: {:?}", hidden_entries(&env, id));
    }
    let mut listed: Vec<String> = env
        .json("af-checkpoint", &["ls", "k1"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("refs/agentflow/checkpoints/k1/{}", c["id"].as_str().unwrap()))
        .collect();
    listed.sort();
    let refs: Vec<String> =
        git(&r, &["for-each-ref", "--format=%(refname)", "refs/agentflow/"]).lines().map(str::to_owned).collect();
    assert_eq!(refs, listed, "a ref for every listed checkpoint and no stray one");
}

#[test]
fn kill_9_during_rollback_then_rerun_completes() {
    let env = Env::new();
    let r = repo(&env);
    for i in 0..300 {
        write(&r.join(format!("bulk/b{i}.txt")), &"y".repeat(1000 + i));
    }
    agent_in(&env, "k3", &r);
    let want = fingerprint(&r);
    let ck = ckpt(&env, "k3", "target");
    for i in 0..50 {
        write(&r.join(format!("bulk/b{}.txt", i % 300)), "changed");
        write(&r.join(format!("extra/e{i}.txt")), "added");
        std::fs::remove_file(r.join(format!("bulk/b{}.txt", (i + 100) % 300))).ok();
        killed(&env, &["rollback", "k3", &ck], 80);
        env.ok("af-checkpoint", &["rollback", "k3", &ck]);
        let mut now = fingerprint(&r);
        now.remove(Path::new("debug.log"));
        let mut w = want.clone();
        w.remove(Path::new("debug.log"));
        assert_eq!(now.len(), w.len(), "round {i}: same files");
        let differ: Vec<_> = w
            .iter()
            .filter(|(p, v)| now.get(*p) != Some(v))
            .map(|(p, v)| (p, v.1, now.get(p).map(|n| (n.1, n.0.len()))))
            .collect();
        assert!(differ.is_empty(), "round {i}: the tree is the checkpoint's; differs: {differ:?}");
        assert!(!env.home.join("agents/k3/checkpoints/rollback.json").exists());
    }
    wait_for("nothing left running", Duration::from_secs(5), || env.processes().is_empty());
}

#[test]
fn agents_with_worktrees_do_not_see_each_other_and_rm_keeps_their_work() {
    let env = Env::new();
    let r = repo(&env);
    write(&r.join(".worktreeinclude"), ".env\n");
    write(&r.join(".gitignore"), "*.log\nbuild/\n.env\n");
    git(&r, &["add", ".gitignore", ".worktreeinclude"]);
    git(&r, &["commit", "-q", "-m", "include .env in worktrees"]);
    write(&r.join(".env"), "SECRET=1\n");
    let user_before = git_state(&r);
    let status_before = git(&r, &["status", "--porcelain"]);
    for id in ["wa", "wb"] {
        let config = serde_json::json!({"id": id, "type": "worker", "workdir": r, "command": ["sleep", "300"],
            "setup": "echo setting-up $AF_AGENT_ID; touch .setup-ran"});
        env.ok_in("af-spawn", &["create", "--worktree"], Some(&config.to_string()));
    }
    let wt = |id: &str| env.home.join("worktrees").join(id);
    for id in ["wa", "wb"] {
        let show = env.show(id);
        assert_eq!(show["config"]["workdir"], wt(id).display().to_string());
        assert_eq!(show["config"]["worktree"], true);
        assert_eq!(git(&wt(id), &["symbolic-ref", "--short", "HEAD"]).trim(), format!("af/{id}"));
        assert_eq!(util::read(&wt(id).join(".env")), "SECRET=1\n", ".worktreeinclude files are copied");
        assert!(!wt(id).join("debug.log").exists(), "other ignored files are not");
    }
    env.ok("af-spawn", &["start", "wa"]);
    assert!(wt("wa").join(".setup-ran").exists(), "setup ran in the worktree before the agent started");
    assert!(util::read(&env.home.join("agents/wa/wrap.log")).contains("setting-up wa"), "its output is in the log");

    write(&wt("wa").join("src/main.rs"), "fn main() { /* wa */ }\n");
    write(&wt("wa").join("only-wa.txt"), "wa\n");
    write(&wt("wb").join("src/main.rs"), "fn main() { /* wb */ }\n");
    assert_eq!(util::read(&wt("wb").join("src/main.rs")), "fn main() { /* wb */ }\n");
    assert!(!wt("wb").join("only-wa.txt").exists() && !r.join("only-wa.txt").exists());
    assert_eq!(util::read(&r.join("src/main.rs")), "fn main() {}\n", "the user's tree does not see them");
    assert_eq!(git(&r, &["status", "--porcelain"]), status_before);
    assert_eq!(git_state(&r).0, user_before.0);

    // A checkpoint in a worktree rolls back there only.
    let ck = ckpt(&env, "wb", "in a worktree");
    write(&wt("wb").join("src/main.rs"), "broken\n");
    env.ok("af-checkpoint", &["rollback", "wb", &ck, "--no-restart"]);
    assert_eq!(util::read(&wt("wb").join("src/main.rs")), "fn main() { /* wb */ }\n");

    // rm refuses while work would be lost: uncommitted, then committed but on no other branch.
    let err = env.fails("af-spawn", &["rm", "wb"], None, 4);
    assert!(err.contains("uncommitted"), "{err}");
    git(&wt("wb"), &["commit", "-q", "-am", "wb's work"]);
    let err = env.fails("af-spawn", &["rm", "wb"], None, 4);
    assert!(err.contains("commit(s) on no other branch"), "{err}");
    assert!(wt("wb").is_dir());
    env.ok("af-spawn", &["rm", "--force", "wb"]);
    assert!(!wt("wb").exists(), "the worktree is gone");
    assert!(git(&r, &["branch", "--list", "af/wb"]).trim().is_empty(), "and its branch");
    let kept = git(&r, &["for-each-ref", "--format=%(refname)", "refs/agentflow/checkpoints/wb/"]);
    let newest = kept.lines().last().expect("a checkpoint ref keeps wb's work");
    assert_eq!(git(&r, &["show", &format!("{newest}:src/main.rs")]), "fn main() { /* wb */ }\n");

    // An agent whose work is all on other branches goes without --force.
    git(&wt("wa"), &["checkout", "-q", "--", "src/main.rs"]);
    std::fs::remove_file(wt("wa").join("only-wa.txt")).unwrap();
    std::fs::remove_file(wt("wa").join(".setup-ran")).unwrap();
    env.ok("af-spawn", &["stop", "wa"]);
    env.ok("af-spawn", &["rm", "wa"]);
    assert!(!wt("wa").exists());
    assert_eq!(git(&r, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    env.fails("af-spawn", &["create", "--worktree"], Some(r#"{"id":"wc","type":"worker","workdir":"/"}"#), 2);
}

#[test]
fn a_repository_without_commits_is_snapshotted_too() {
    let env = Env::new();
    let r = env.path("fresh");
    std::fs::create_dir_all(&r).unwrap();
    git(&r, &["init", "-q"]);
    write(&r.join("a.txt"), "a\n");
    agent_in(&env, "f1", &r);
    let before = fingerprint(&r);
    let ck = ckpt(&env, "f1", "no commits yet");
    let shown = env.json("af-checkpoint", &["show", "f1", &ck]);
    assert_eq!(shown["tree"]["kind"], "git");
    assert!(shown["tree"].get("head").is_none(), "{shown}");
    write(&r.join("a.txt"), "changed\n");
    write(&r.join("b.txt"), "b\n");
    env.ok("af-checkpoint", &["rollback", "f1", &ck]);
    assert_eq!(fingerprint(&r), before);
    assert!(git(&r, &["status", "--porcelain"]).contains("?? a.txt"), "the index is still empty");
}

#[test]
fn a_home_directory_outside_git_is_refused() {
    let mut env = Env::new();
    let home = env.path("fakehome");
    write(&home.join("precious.txt"), "keep me\n");
    env.set_env("HOME", home.to_str().unwrap());
    agent_in(&env, "h1", &home);
    let err = env.fails("af-checkpoint", &["create", "h1"], None, 2);
    assert!(err.contains("not in a git repository"), "{err}");
    assert!(env.json("af-checkpoint", &["ls", "h1"]).as_array().unwrap().is_empty());
    assert_eq!(util::read(&home.join("precious.txt")), "keep me\n");
}

#[test]
fn kill_9_during_rollback_of_a_running_agent_then_rerun_restarts_it() {
    let env = Env::new();
    let d = env.path("plain");
    write(&d.join("x"), "one\n");
    agent_in(&env, "kr", &d);
    env.ok("af-spawn", &["start", "kr"]);
    let ck = ckpt(&env, "kr", "running");
    for i in 0..6 {
        write(&d.join("x"), &format!("round {i}\n"));
        killed(&env, &["rollback", "kr", &ck], 400);
        env.ok("af-checkpoint", &["rollback", "kr", &ck]);
        assert_eq!(util::read(&d.join("x")), "one\n", "round {i}");
        assert_eq!(env.status("kr"), "running", "round {i}: it ran before, so it runs after");
    }
    env.ok("af-spawn", &["stop", "kr"]);
}

#[test]
fn a_failing_setup_fails_the_start_and_snapshots_survive_gc() {
    let env = Env::new();
    let r = repo(&env);
    let config = serde_json::json!({"id": "s1", "type": "worker", "workdir": r, "command": ["sleep", "300"],
        "setup": "echo broken setup; exit 3"});
    env.ok_in("af-spawn", &["create", "--worktree"], Some(&config.to_string()));
    let out = env.run("af-spawn", &["start", "s1"], None);
    assert!(!out.status.success(), "{}", util::describe(&out));
    wait_for("the start to fail", Duration::from_secs(5), || env.status("s1") == "failed");
    assert!(env.show("s1")["state"]["reason"].as_str().unwrap_or("").contains("setup"), "{}", env.show("s1"));
    assert!(util::read(&env.home.join("agents/s1/wrap.log")).contains("broken setup"));

    let wt = env.home.join("worktrees/s1");
    write(&wt.join("src/main.rs"), "fn main() { /* kept through gc */ }\n");
    let ck = ckpt(&env, "s1", "before gc");
    write(&wt.join("src/main.rs"), "lost?\n");
    git(&r, &["gc", "-q", "--prune=now"]);
    env.ok("af-checkpoint", &["rollback", "s1", &ck]);
    assert_eq!(util::read(&wt.join("src/main.rs")), "fn main() { /* kept through gc */ }\n");
}

#[test]
fn a_spool_inside_the_repository_is_left_out() {
    let env = Env::new();
    let root = env.path("");
    git(&root, &["init", "-q"]);
    write(&root.join("work/code.txt"), "v1\n");
    agent_in(&env, "in1", &root);
    let ck = ckpt(&env, "in1", "spool inside");
    let shown = env.json("af-checkpoint", &["show", "in1", &ck]);
    let commit = shown["tree"]["commit"].as_str().unwrap();
    let files = git(&root, &["ls-tree", "-r", "--name-only", commit]);
    assert!(!files.contains("home/"), "the spool is not in the snapshot: {files}");
    write(&root.join("work/code.txt"), "v2\n");
    env.ok("af-checkpoint", &["rollback", "in1", &ck]);
    assert_eq!(util::read(&root.join("work/code.txt")), "v1\n");
    assert_eq!(env.json("af-checkpoint", &["ls", "in1"]).as_array().unwrap().len(), 1, "the spool is intact");
    assert_eq!(env.status("in1"), "created");
}
