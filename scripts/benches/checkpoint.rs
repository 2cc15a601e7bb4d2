//! af-checkpoint: create and rollback on a repository of 2,000 files / 20 MB with 50 files
//! changed, beside `git add -A && git write-tree` on a temporary index and `tar` of the same tree
//! (create and extract), measured in the same run.

#[path = "common.rs"]
mod common;

use common::{Row, World, header, percentile_ms, row, time};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@b")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@b")
        .stdout(Stdio::null())
        .status()
        .expect("sh");
    assert!(st.success(), "{script} failed");
}

/// Changes 50 of the files (a different 50 and different contents each round).
fn change_50(repo: &Path, round: usize) {
    for k in 0..50 {
        let i = (round * 50 + k * 37) % FILES;
        std::fs::write(repo.join(format!("d{}/f{i}.txt", i % 20)), format!("round {round} file {i}\n").repeat(500))
            .expect("change");
    }
}

const FILES: usize = 2000;

fn main() {
    let rounds = common::count("AF_BENCH_ROUNDS", 10);
    header(&format!("af-checkpoint ({FILES} files, 20 MB, 50 changed; median of {rounds})"));
    let w = World::new("checkpoint");
    let repo = w.path("repo");
    for d in 0..20 {
        std::fs::create_dir_all(repo.join(format!("d{d}"))).expect("dir");
    }
    let block: String = (0..10_240).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    for i in 0..FILES {
        std::fs::write(repo.join(format!("d{}/f{i}.txt", i % 20)), format!("{i}{block}")).expect("file");
    }
    sh(&repo, "git init -q && git add -A && git commit -q -m init");
    let config = format!(r#"{{"id":"c1","type":"worker","workdir":"{}"}}"#, repo.display());
    w.run_with_input("af-spawn", &["create"], &config);

    // Baselines, on the same tree with 50 files changed (new contents each round, as for create).
    let tmp_index = w.path("bench-index");
    let index = repo.join(".git/index");
    let mut git_base: Vec<Duration> = (0..rounds)
        .map(|r| {
            change_50(&repo, 500 + r);
            time(|| {
                std::fs::copy(&index, &tmp_index).expect("copy index");
                sh(
                    &repo,
                    &format!(
                        "GIT_INDEX_FILE={} git add -A && GIT_INDEX_FILE={} git write-tree",
                        tmp_index.display(),
                        tmp_index.display()
                    ),
                );
            })
        })
        .collect();
    let tar_file = w.path("tree.tar");
    let mut tar_c: Vec<Duration> = (0..rounds)
        .map(|_| time(|| sh(&repo, &format!("tar --exclude=./.git -cf {} .", tar_file.display()))))
        .collect();
    let out = w.path("untar");
    std::fs::create_dir_all(&out).expect("untar dir");
    let mut tar_x: Vec<Duration> =
        (0..rounds).map(|_| time(|| sh(&out, &format!("tar -xf {}", tar_file.display())))).collect();

    // af-checkpoint create, each after 50 more files changed.
    let mut ids = Vec::new();
    let mut create: Vec<Duration> = (0..rounds)
        .map(|r| {
            change_50(&repo, r);
            let mut id = String::new();
            let d = time(|| {
                let o = w.cmd("af-checkpoint").args(["create", "c1"]).stdout(Stdio::piped()).output().expect("create");
                assert!(o.status.success(), "af-checkpoint create failed");
                id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            });
            ids.push(id);
            d
        })
        .collect();
    // rollback to the first checkpoint, each after 50 files changed.
    let mut rollback: Vec<Duration> = (0..rounds)
        .map(|r| {
            change_50(&repo, 100 + r);
            time(|| w.run("af-checkpoint", &["rollback", "c1", &ids[0]]))
        })
        .collect();

    // Baseline for rollback: the same git work by hand (a temporary index of the tree on disk,
    // then a two-way read-tree to the checkpoint's tree), after 50 files changed.
    let shown =
        w.cmd("af-checkpoint").args(["show", "c1", &ids[0], "--json"]).stdout(Stdio::piped()).output().expect("show");
    let record: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("show --json");
    let tree = record["tree"]["tree"].as_str().expect("a git tree").to_owned();
    let mut git_restore: Vec<Duration> = (0..rounds)
        .map(|r| {
            change_50(&repo, 200 + r);
            time(|| {
                std::fs::copy(&index, &tmp_index).expect("copy index");
                let i = tmp_index.display();
                sh(
                    &repo,
                    &format!("GIT_INDEX_FILE={i} git add -A && GIT_INDEX_FILE={i} git read-tree --reset -u {tree}"),
                );
            })
        })
        .collect();

    let git_ms = percentile_ms(&mut git_base, 50.0);
    let create_ms = percentile_ms(&mut create, 50.0);
    let rollback_ms = percentile_ms(&mut rollback, 50.0);
    row(Row {
        what: "create (git repository)",
        value: create_ms,
        unit: "ms",
        baseline: Some(("git add -A && write-tree, tmp index", git_ms)),
        higher_is_better: false,
        target: "< 150 ms",
    });
    row(Row {
        what: "create (git repository)",
        value: create_ms,
        unit: "ms",
        baseline: Some(("tar -cf of the same tree", percentile_ms(&mut tar_c, 50.0))),
        higher_is_better: false,
        target: "< 150 ms",
    });
    row(Row {
        what: "rollback (git repository, 50 files changed)",
        value: rollback_ms,
        unit: "ms",
        baseline: Some(("tar -xf of the same tree", percentile_ms(&mut tar_x, 50.0))),
        higher_is_better: false,
        target: "< 300 ms",
    });
    row(Row {
        what: "rollback (git repository, 50 files changed)",
        value: rollback_ms,
        unit: "ms",
        baseline: Some(("git add -A && read-tree -u, tmp index", percentile_ms(&mut git_restore, 50.0))),
        higher_is_better: false,
        target: "< 300 ms",
    });
}
