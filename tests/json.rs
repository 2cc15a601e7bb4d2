//! `--json` is one line per document in every program, whatever the verb; `--pretty` indents the
//! same documents for people (and implies `--json`).

mod util;

use util::{Env, describe};

/// Runs `program args --json` (which must succeed) and checks that every line of its stdout is one
/// JSON document; returns them.
#[track_caller]
fn lines(env: &Env, program: &str, args: &[&str], stdin: Option<&str>) -> Vec<serde_json::Value> {
    let mut a = args.to_vec();
    a.push("--json");
    let out = env.run(program, &a, stdin);
    assert!(out.status.success(), "{program} {a:?}: {}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.trim().is_empty(), "{program} {a:?} printed nothing");
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{program} {a:?}: a line that is no JSON document ({e}): {l:?}"))
        })
        .collect()
}

#[test]
fn every_json_verb_prints_one_document_per_line() {
    let env = Env::new();
    std::fs::write(env.work.join("file"), "one\n").unwrap();
    let config = r#"{"id":"j1","type":"worker","projectId":"jp","command":["sh","-c","exec sleep 300"]}"#;
    lines(&env, "af-spawn", &["create"], Some(config));
    lines(&env, "af-spawn", &["start", "j1"], None);
    for args in [&["ls"][..], &["ls", "--summary"], &["show", "j1"], &["gc"], &["pause", "j1"], &["resume", "j1"]] {
        lines(&env, "af-spawn", args, None);
    }
    lines(&env, "af-spawn", &["restart", "j1"], None);
    lines(&env, "af-spawn", &["reset", "j1"], None);
    lines(&env, "af-bus", &["subscribe", "js", "--topic", "t.*"], None);
    lines(&env, "af-bus", &["publish", "--topic", "t.x", r#"{"n":1}"#], None);
    lines(&env, "af-bus", &["send", "--to", "js", r#"{"n":2}"#], None);
    lines(&env, "af-bus", &["broadcast", r#""news""#], None);
    // Two messages received at once: two lines.
    assert_eq!(lines(&env, "af-bus", &["recv", "js", "--max", "5", "--ack"], None).len(), 2);
    for args in [&["stats"][..], &["history", "js"], &["dead", "js"], &["clear", "js"]] {
        lines(&env, "af-bus", args, None);
    }
    let check = env.run("af-health", &["check", "--json"], None);
    assert!(check.status.code().is_some_and(|c| c <= 1), "{}", describe(&check));
    for l in String::from_utf8_lossy(&check.stdout).lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("af-health check: {e}: {l:?}"));
    }
    for args in [&["history", "j1"][..], &["alerts"], &["alerts", "--all"], &["trends"]] {
        lines(&env, "af-health", args, None);
    }
    let ckpt =
        lines(&env, "af-checkpoint", &["create", "j1", "-m", "json"], None)[0]["id"].as_str().unwrap().to_owned();
    for args in [&["ls", "j1"][..], &["show", "j1", &ckpt], &["diff", "j1", &ckpt], &["rollback", "j1", &ckpt]] {
        lines(&env, "af-checkpoint", args, None);
    }
    lines(&env, "af-checkpoint", &["create", "j1", "-m", "second"], None);
    lines(&env, "af-checkpoint", &["prune", "j1", "--keep", "1"], None);
    let last = lines(&env, "af-checkpoint", &["ls", "j1"], None)[0][0]["id"].as_str().unwrap().to_owned();
    lines(&env, "af-checkpoint", &["rm", "j1", &last], None);
    lines(&env, "af-api", &["token"], None);
    lines(&env, "af-api", &["token", "--show"], None);
    lines(&env, "af-spawn", &["stop", "j1"], None);
    lines(&env, "af-spawn", &["rm", "j1"], None);
}

#[test]
fn pretty_indents_the_same_document_and_implies_json() {
    let env = Env::new();
    env.create(r#"{"id":"p1","type":"worker"}"#);
    let one_line = env.ok("af-spawn", &["show", "p1", "--json"]);
    assert_eq!(one_line.lines().count(), 1, "{one_line}");
    for args in [&["show", "p1", "--pretty"][..], &["--pretty", "show", "p1"], &["show", "p1", "--json", "--pretty"]] {
        let pretty = env.ok("af-spawn", args);
        assert!(pretty.lines().count() > 5, "{args:?}: {pretty}");
        let a: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        let b: serde_json::Value = serde_json::from_str(&one_line).unwrap();
        assert_eq!(a["config"], b["config"], "{args:?}");
    }
    let summary = env.ok("af-spawn", &["ls", "--summary", "--pretty"]);
    assert!(summary.lines().count() > 1, "{summary}");
    // Errors stay one JSON line on stderr.
    let out = env.run("af-spawn", &["show", "nobody", "--pretty"], None);
    assert_eq!(out.status.code(), Some(3));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "not-found", "{}", describe(&out));
}

#[test]
fn af_api_token_prints_the_token_files_path_or_the_token() {
    let env = Env::new();
    let path = env.ok("af-api", &["token"]);
    let path = std::path::Path::new(path.trim());
    assert_eq!(path, env.home.join("api/token"));
    let token = util::read(path);
    assert_eq!(env.ok("af-api", &["token", "--show"]), token, "the token itself, as its file has it");
    assert_eq!(env.ok("af-api", &["token"]).trim(), path.to_str().unwrap(), "made once, then the same");
    let doc = env.json("af-api", &["token", "--show"]);
    assert_eq!(doc["tokenFile"], path.to_str().unwrap());
    assert_eq!(doc["token"], token.trim());
    // A named file is read, never made.
    let missing = env.path("nope");
    env.fails("af-api", &["--token-file", missing.to_str().unwrap(), "token"], None, 3);
}
