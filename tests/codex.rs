//! codex agents: af-wrap drives a faithful test double of OpenAI's Codex CLI
//! (`tests/fixtures/codex-double`), one `codex exec --json` process per task, through real tmux,
//! real pipes, the real spool and the real bus; and, as a contract test, the real CLI without
//! credentials (`AF_CODEX_BIN`).

mod util;

use af_spool::{AgentId, Spool};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::{Env, wait_for};

const LONG: Duration = Duration::from_secs(20);

fn double() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex-double")
}

struct Agent<'a> {
    env: &'a Env,
    spool: Spool,
    id: AgentId,
    argv_log: PathBuf,
}

/// A codex agent running the double, with `extra` merged into its config and `vars` into its
/// environment; created, not started.
fn create<'a>(env: &'a Env, id: &str, extra: Value, vars: Value) -> Agent<'a> {
    let home = env.path("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut environment = json!({
        "CODEX_HOME": home.display().to_string(),
        "CODEX_DOUBLE_LOG": env.path(&format!("{id}.argv")).display().to_string(),
    });
    util::merge(&mut environment, &vars);
    let mut config = json!({"id": id, "type": "codex", "projectId": "proj",
        "command": [double().display().to_string()], "environment": environment});
    util::merge(&mut config, &extra);
    env.create(&config.to_string());
    let spool = Spool::open(&env.home).unwrap();
    Agent { env, spool, id: AgentId::new(id).unwrap(), argv_log: env.path(&format!("{id}.argv")) }
}

fn agent<'a>(env: &'a Env, id: &str, extra: Value, vars: Value) -> Agent<'a> {
    let a = create(env, id, extra, vars);
    env.ok("af-spawn", &["start", id]);
    a
}

impl Agent<'_> {
    /// `af-bus request --to ID`: the answer's payload (exit 1 when it says ok: false).
    #[track_caller]
    fn ask(&self, payload: Value) -> Value {
        self.env.request(self.id.as_str(), &payload)["payload"].clone()
    }

    fn state(&self) -> Value {
        serde_json::to_value(self.spool.read_state(&self.id).unwrap()).unwrap()
    }

    fn invocations(&self) -> Vec<Vec<String>> {
        util::argv_log(&self.argv_log)
    }

    fn alerts(&self, check: &str) -> Vec<Value> {
        self.env.alerts(self.id.as_str(), check)
    }
}

/// The answer to `task` published on `tasks.results`, read from the subscription `sub`.
#[track_caller]
fn published(env: &Env, sub: &str, task: &str) -> Value {
    let mut found = Value::Null;
    wait_for(&format!("the answer to {task}"), LONG, || {
        let out = env.run("af-bus", &["recv", sub, "--json", "--ack", "-n", "100"], None);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let payload = serde_json::from_str::<Value>(line).unwrap()["payload"].clone();
            if payload["taskId"] == task {
                found = payload;
            }
        }
        !found.is_null()
    });
    found
}

#[test]
fn tasks_are_exec_turns_resume_keeps_the_session_and_tokens_are_counted() {
    let env = Env::new();
    let a = agent(
        &env,
        "x1",
        json!({"codex": {"model": "gpt-5-codex", "sandbox": "workspace-write", "config": ["model_reasoning_effort=\"low\""]}}),
        json!({}),
    );
    let r1 = a.ask(json!("hello there"));
    assert_eq!(r1["ok"], true, "{r1}");
    assert_eq!(r1["result"], "echo: hello there");
    assert_eq!(r1["numTurns"], 1);
    let session = r1["sessionId"].as_str().unwrap().to_owned();
    assert!(af_spool::claude::is_uuid(&session), "{r1}");
    // A task sent without waiting is answered on tasks.results; it resumes the same session.
    env.ok("af-bus", &["subscribe", "res", "--topic", "tasks.results"]);
    let t2 =
        env.ok("af-bus", &["send", "--to", "x1", "--kind", "task", r#"{"prompt":"second task"}"#]).trim().to_owned();
    let r2 = published(&env, "res", &t2);
    assert_eq!(r2["ok"], true, "{r2}");
    assert_eq!(r2["result"], "echo: second task");
    assert_eq!(r2["sessionId"], session.as_str());

    let argv = a.invocations();
    assert_eq!(argv.len(), 2, "one process per task: {argv:?}");
    let first: Vec<&str> = argv[0][1..].iter().map(String::as_str).collect();
    assert_eq!(first[..3], ["exec", "--json", "--skip-git-repo-check"], "{first:?}");
    assert!(first.windows(2).any(|w| w == ["--model", "gpt-5-codex"]), "{first:?}");
    assert!(first.windows(2).any(|w| w == ["-c", "sandbox_mode=\"workspace-write\""]), "{first:?}");
    assert!(first.windows(2).any(|w| w == ["-c", "model_reasoning_effort=\"low\""]), "{first:?}");
    assert_eq!(first.last(), Some(&"-"), "the prompt comes on stdin");
    let second: Vec<&str> = argv[1][1..].iter().map(String::as_str).collect();
    assert_eq!(second[..2], ["exec", "resume"], "{second:?}");
    assert_eq!(second[second.len() - 2..], [session.as_str(), "-"], "{second:?}");

    // Tokens: each turn's usage (100 input of which 20 cached, 5 output), summed.
    let state = a.state();
    assert_eq!(state["tokens"]["input"], 160, "{state}");
    assert_eq!(state["tokens"]["cacheRead"], 40, "{state}");
    assert_eq!(state["tokens"]["output"], 10, "{state}");
    assert_eq!(state["conversation"]["sessionId"], session.as_str());
    let transcript = PathBuf::from(state["conversation"]["transcript"].as_str().unwrap());
    let text = util::read(&transcript);
    assert!(text.contains("hello there") && text.contains("second task"), "one session file: {text}");
    assert!(transcript.starts_with(env.path("codex-home").join("sessions")), "{}", transcript.display());

    // A restart resumes the session; the tokens already spent stay counted.
    env.ok("af-spawn", &["restart", "x1"]);
    let r3 = a.ask(json!("third"));
    assert_eq!(r3["sessionId"], session.as_str(), "{r3}");
    assert_eq!(a.state()["tokens"]["input"], 240);
    let shown = env.ok("af-spawn", &["show", "x1"]);
    assert!(shown.contains(&session) && shown.contains("tokens 240 in"), "{shown}");
    let health = env.json("af-health", &["check", "x1"]);
    let check = health["agents"][0]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "codex").cloned();
    assert_eq!(check.map(|c| c["level"].clone()), Some(json!("ok")), "{health}");
}

#[test]
fn a_failed_turn_answers_ok_false_with_an_alert_and_the_next_success_clears_it() {
    let env = Env::new();
    let fail = env.path("fail-next");
    let a = agent(&env, "x2", json!({}), json!({"CODEX_DOUBLE_FAIL_FILE": fail.display().to_string()}));
    std::fs::write(&fail, "stream error: the model broke").unwrap();
    let r = a.ask(json!("one"));
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["isError"], true);
    assert_eq!(r["error"], "turn_failed");
    assert!(r["result"].as_str().unwrap().contains("the model broke"), "{r}");
    assert_eq!(a.alerts("codex.task").len(), 1);
    let r = a.ask(json!("two"));
    assert_eq!(r["ok"], true, "{r}");
    let levels: Vec<Value> = a.alerts("codex.task").iter().map(|x| x["level"].clone()).collect();
    assert_eq!(levels, [json!("warning"), json!("recovery")]);
    assert_eq!(a.invocations().len(), 2, "a failed turn is answered, not sent again");
    assert_eq!(env.status("x2"), "running");
    // Both turns are counted by outcome, as codex turns, not as Claude Code's.
    let metrics = env.ok("af-health", &["metrics"]);
    let count = |l: &str| metrics.lines().find_map(|m| m.strip_prefix(l)).map(str::to_owned);
    assert_eq!(count(r#"agentflow_codex_turns_total{outcome="success"} "#).as_deref(), Some("1"), "{metrics}");
    assert_eq!(count(r#"agentflow_codex_turns_total{outcome="turn_failed"} "#).as_deref(), Some("1"), "{metrics}");
    assert!(!metrics.contains("agentflow_claude_turns_total{"), "{metrics}");
}

#[test]
fn without_credentials_tasks_fail_as_authentication_failed_and_health_says_unhealthy() {
    let env = Env::new();
    let a = agent(&env, "x3", json!({}), json!({"CODEX_DOUBLE_MODE": "unauth"}));
    let r = a.ask(json!("hello"));
    assert_eq!(r["error"], "authentication_failed", "{r}");
    assert!(r["result"].as_str().unwrap().contains("401"), "{r}");
    assert_eq!(a.alerts("codex.task")[0]["level"], "critical");
    assert_eq!(a.state()["driverFault"]["kind"], "authentication_failed");
    let out = env.run("af-health", &["check", "x3", "--json"], None);
    assert_eq!(out.status.code(), Some(1), "{}", util::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["agents"][0]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "codex").cloned();
    assert_eq!(check.map(|c| c["level"].clone()), Some(json!("critical")), "{report}");
    let r = a.ask(json!("again"));
    assert_eq!(r["error"], "authentication_failed");
    assert_eq!(a.invocations().len(), 2, "one process per task, nothing loops");
    assert_eq!(a.state()["restarts"], 0);
}

#[test]
fn the_token_budget_refuses_tasks_once_spent_and_budget_usd_is_refused() {
    let env = Env::new();
    let a = agent(&env, "x4", json!({"codex": {"maxTokens": 200}}), json!({}));
    assert_eq!(a.ask(json!("one"))["ok"], true);
    assert_eq!(a.ask(json!("two"))["ok"], true, "105 of 200 spent when it started");
    let r = a.ask(json!("three"));
    assert_eq!(r["error"], "budget", "{r}");
    assert!(r["result"].as_str().unwrap().contains("raise codex.maxTokens"), "{r}");
    assert_eq!(a.invocations().len(), 2);
    assert_eq!(a.alerts("codex.budget").len(), 1);
    let shown = env.ok("af-spawn", &["show", "x4"]);
    assert!(shown.contains("token budget:  210 of 200 tokens"), "{shown}");
    let bad = json!({"id": "x5", "type": "codex", "budgetUsd": 1.0});
    let err = env.fails("af-spawn", &["create", "--json"], Some(&bad.to_string()), 2);
    assert!(err.contains("codex.maxTokens"), "{err}");
    let bad = json!({"id": "x6", "type": "codex", "codex": {"sandbox": "none"}});
    env.fails("af-spawn", &["create"], Some(&bad.to_string()), 2);
}

#[test]
fn a_turn_over_the_timeout_is_interrupted_and_answered() {
    let env = Env::new();
    // Offline, the CLI retries for ever (as the real one does without a network).
    let a = agent(&env, "x7", json!({"resourceLimits": {"timeout": "2s"}}), json!({"CODEX_DOUBLE_MODE": "offline"}));
    let r = a.ask(json!("hello"));
    assert_eq!(r["error"], "timeout", "{r}");
    assert_eq!(r["timedOut"], true);
    assert!(r["sessionId"].as_str().is_some_and(af_spool::claude::is_uuid), "{r}");
    assert_eq!(a.alerts("codex.timeout").len(), 1);
    wait_for("the CLI gone", LONG, || a.state()["pid"].is_null());
    assert_eq!(env.status("x7"), "running");
}

#[test]
fn a_session_the_cli_does_not_have_is_replaced_by_a_new_one() {
    let env = Env::new();
    let a = create(&env, "x8", json!({}), json!({}));
    let lost = "7f9f9a2e-1b3c-4c6f-9e2d-000000000000";
    let conv = af_spool::claude::Conversation { session_id: lost.into(), transcript: env.path("nowhere.jsonl") };
    a.spool.update_state(&a.id, |s| s.conversation = Some(conv)).unwrap();
    env.ok("af-spawn", &["start", "x8"]);
    let r = a.ask(json!("hello"));
    assert_eq!(r["ok"], true, "{r}");
    assert_ne!(r["sessionId"], lost);
    let argv = a.invocations();
    assert_eq!(argv.len(), 2, "{argv:?}");
    assert!(argv[0].contains(&lost.to_owned()) && !argv[1].contains(&"resume".to_owned()), "{argv:?}");
    let alerts = a.alerts("codex.cli");
    assert_eq!(alerts[0]["level"], "warning", "{alerts:?}");
    assert!(alerts[0]["message"].as_str().unwrap().contains(lost), "{alerts:?}");
    assert_eq!(alerts.len(), 2, "then its recovery: {alerts:?}");
}

/// The real CLI (`AF_CODEX_BIN`, else `codex` on PATH); `None` (the test skipped) without it.
fn real_cli() -> Option<PathBuf> {
    util::agent_cli("AF_CODEX_BIN", "codex", "npm install -g @openai/codex")
}

/// The CLI as the contract runs it: a fresh CODEX_HOME and HOME, no credentials in reach.
fn cli(env: &Env, bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    let home = env.path("cli-home");
    std::fs::create_dir_all(home.join("codex")).unwrap();
    c.current_dir(dir).env("HOME", &home).env("CODEX_HOME", home.join("codex")).env("CODEX_DOUBLE_MODE", "offline");
    for key in ["OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"] {
        c.env_remove(key);
    }
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn run(mut c: Command, stdin: &str) -> (Option<i32>, String, String) {
    c.stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Starts a turn (`args` after `exec`), reads its events up to `turn.started`, interrupts it
/// (SIGINT) and returns the events and the exit code.
fn turn(env: &Env, bin: &Path, dir: &Path, args: &[&str]) -> (Vec<Value>, Option<i32>) {
    let mut c = cli(env, bin, dir);
    c.arg("exec").args(args).stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"Say hello.\n").unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let started = v["type"] == "turn.started";
        seen.push(v);
        if started {
            break;
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    // Whatever it prints after (a failure when it has a network: no credentials) is read too.
    seen.extend(lines.map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()));
    (seen, child.wait().unwrap().code())
}

/// What af-wrap relies on in `codex exec`, checked alike against the double and the real CLI
/// (without credentials: no model answers, so answers, usage and turn.completed cannot be seen).
fn contract(bin: &Path) {
    let env = Env::new();
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    assert!(Command::new("git").args(["init", "-q"]).current_dir(&repo).status().unwrap().success());
    let plain = env.path("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let mut version = cli(&env, bin, &plain);
    version.arg("--version");
    let (code, out, _) = run(version, "");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("codex-cli "), "{out}");
    let mut help = cli(&env, bin, &plain);
    help.args(["exec", "--help"]);
    let (code, out, _) = run(help, "");
    assert_eq!(code, Some(0));
    for flag in ["--json", "--skip-git-repo-check", "resume", "--model", "--config", "--sandbox"] {
        assert!(out.contains(flag), "{flag} in exec --help: {out}");
    }
    let mut bogus = cli(&env, bin, &plain);
    bogus.args(["exec", "--bogus"]);
    let (code, _, err) = run(bogus, "");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    // Outside a git repository it refuses without --skip-git-repo-check.
    let mut untrusted = cli(&env, bin, &plain);
    untrusted.args(["exec", "--json", "-"]);
    let (code, out, err) = run(untrusted, "hi");
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains("Not inside a trusted directory"), "{err}");
    // A CODEX_HOME that does not exist.
    let mut homeless = cli(&env, bin, &repo);
    homeless.env("CODEX_HOME", env.path("missing")).args(["exec", "--json", "-"]);
    let (code, out, err) = run(homeless, "hi");
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains("Error finding codex home"), "{err}");
    // No prompt on stdin.
    let mut empty = cli(&env, bin, &repo);
    empty.args(["exec", "--json", "-"]);
    let (code, _, err) = run(empty, "");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("No prompt provided via stdin."), "{err}");
    // A session it does not have.
    let lost = "7f9f9a2e-1b3c-4c6f-9e2d-000000000000";
    let mut unknown = cli(&env, bin, &repo);
    unknown.args(["exec", "resume", "--json", "--skip-git-repo-check", lost, "-"]);
    let (code, out, err) = run(unknown, "hi");
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains(&format!("no rollout found for thread id {lost}")), "{err}");
    // A turn: thread.started (the session's UUID), turn.started, the rollout file written at
    // once; SIGINT ends the process with 1 and no turn.completed.
    let (events, code) = turn(&env, bin, &plain, &["--json", "--skip-git-repo-check", "-"]);
    assert_eq!(events[0]["type"], "thread.started", "{events:?}");
    assert_eq!(events[1]["type"], "turn.started", "{events:?}");
    let thread = events[0]["thread_id"].as_str().unwrap().to_owned();
    assert!(af_spool::claude::is_uuid(&thread), "{thread}");
    assert_eq!(code, Some(1), "{events:?}");
    assert!(!events.iter().any(|e| e["type"] == "turn.completed"), "{events:?}");
    for e in &events[2..] {
        let kind = e["type"].as_str().unwrap();
        assert!(["error", "item.started", "item.completed", "turn.failed"].contains(&kind), "{e}");
        if kind == "error" {
            assert!(e["message"].is_string(), "an error notice has a message: {e}");
        }
    }
    let home = env.path("cli-home").join("codex");
    let rollout = af_ops::codex::rollout_path(&home, &thread).expect("the session's rollout file");
    assert!(rollout.starts_with(home.join("sessions")), "{}", rollout.display());
    assert!(util::read(&rollout).contains("session_meta"));
    // Resuming it continues the same thread.
    let (events, code) = turn(&env, bin, &plain, &["resume", "--json", "--skip-git-repo-check", &thread, "-"]);
    assert_eq!(events[0]["type"], "thread.started", "{events:?}");
    assert_eq!(events[0]["thread_id"], thread.as_str());
    assert_eq!(code, Some(1));
}

#[test]
fn the_double_keeps_the_exec_contract() {
    contract(&double());
}

#[test]
fn the_real_cli_keeps_the_exec_contract() {
    let Some(bin) = real_cli() else { return };
    contract(&bin);
}

#[test]
fn a_running_turn_can_be_interrupted() {
    let env = Env::new();
    let a = agent(&env, "x9", json!({}), json!({"CODEX_DOUBLE_TURN_SECS": "30"}));
    env.ok("af-bus", &["subscribe", "res", "--topic", "tasks.results"]);
    let task = env.ok("af-bus", &["send", "--to", "x9", "--kind", "task", r#""a long job""#]).trim().to_owned();
    wait_for("the turn to run", LONG, || a.state()["activity"] == "busy" && !a.state()["pid"].is_null());
    env.ok("af-bus", &["interrupt", "x9"]);
    let r = published(&env, "res", &task);
    assert_eq!(r["error"], "interrupted", "{r}");
    let out = env.run("af-bus", &["interrupt", "x9"], None);
    assert_eq!(out.status.code(), Some(1), "nothing runs now: {}", util::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no turn is running"), "{}", util::describe(&out));
}

#[test]
fn a_usage_limit_gives_the_task_back_and_the_agent_waits_before_sending_it_again() {
    let mut env = Env::new();
    env.set_env("AF_CODEX_RETRY_BASE", "1s");
    let fail = env.path("fail-next");
    std::fs::write(&fail, "You've hit your usage limit. Upgrade to Pro or try again in 3 hours.").unwrap();
    let a = agent(&env, "xa", json!({}), json!({"CODEX_DOUBLE_FAIL_FILE": fail.display().to_string()}));
    let r = a.ask(json!("hello"));
    assert_eq!(r["ok"], true, "sent again after the wait: {r}");
    assert_eq!(a.invocations().len(), 2);
    let alerts = a.alerts("codex.ratelimit");
    assert_eq!(alerts[0]["level"], "warning", "{alerts:?}");
    assert!(alerts[0]["message"].as_str().unwrap().contains("usage limit"), "{alerts:?}");
    assert!(a.alerts("codex.task").is_empty(), "not a failed task");
    let waits = af_spool::eventlog::history(&a.spool)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.kind == "agent.task.started")
        .count();
    assert_eq!(waits, 2);
}

#[test]
fn after_a_rollback_the_agent_resumes_the_checkpointed_session() {
    let env = Env::new();
    let a = agent(&env, "xb", json!({}), json!({}));
    let first = a.ask(json!("remember the word apple"));
    let session = first["sessionId"].as_str().unwrap().to_owned();
    let ckpt = env.ok("af-checkpoint", &["create", "xb", "-m", "knows apple"]).trim().to_owned();
    let saved: af_spool::claude::Conversation = serde_json::from_value(a.state()["conversation"].clone()).unwrap();
    assert_eq!(a.ask(json!("now say pear"))["ok"], true);
    assert!(util::read(&saved.transcript).contains("pear"));
    env.ok("af-checkpoint", &["rollback", "xb", &ckpt]);
    assert_eq!(a.ask(json!("what was the word?"))["sessionId"], session.as_str());
    let last = a.invocations().last().unwrap().clone();
    assert!(last.contains(&session) && last.contains(&"resume".to_owned()), "{last:?}");
    let transcript = util::read(&saved.transcript);
    assert!(transcript.contains("apple") && transcript.contains("what was the word"), "{transcript}");
    assert!(!transcript.contains("pear"), "the rolled-back turn is gone: {transcript}");
    assert_eq!(a.state()["tokens"]["input"], 240, "the tokens of the forgotten turn stay spent");
}

#[test]
fn a_codex_agent_on_the_real_cli_without_credentials_answers_and_keeps_its_session() {
    let Some(bin) = real_cli() else { return };
    let mut env = Env::new();
    for key in ["OPENAI_API_KEY", "CODEX_API_KEY"] {
        env.set_env(key, "");
    }
    let home = env.path("cli-home");
    std::fs::create_dir_all(home.join("codex")).unwrap();
    let config = json!({"id": "real", "type": "codex", "command": [bin.display().to_string()],
        "resourceLimits": {"timeout": "5s"},
        "environment": {"HOME": home.display().to_string(), "CODEX_HOME": home.join("codex").display().to_string()}});
    env.create(&config.to_string());
    env.ok("af-spawn", &["start", "real"]);
    let a = Agent {
        env: &env,
        spool: Spool::open(&env.home).unwrap(),
        id: AgentId::new("real").unwrap(),
        argv_log: env.path("none"),
    };
    // Without a network the CLI retries until the timeout; with one, it is refused (401).
    let r = a.ask(json!("Say hello."));
    assert_eq!(r["ok"], false, "{r}");
    assert!(["timeout", "authentication_failed"].contains(&r["error"].as_str().unwrap()), "{r}");
    let session = r["sessionId"].as_str().expect("the CLI's thread").to_owned();
    let state = a.state();
    assert_eq!(state["conversation"]["sessionId"], session.as_str(), "{state}");
    let transcript = PathBuf::from(state["conversation"]["transcript"].as_str().unwrap());
    assert!(transcript.is_file() && transcript.starts_with(home.join("codex/sessions")), "{state}");
    // The next task resumes the same session.
    let r = a.ask(json!("Say hello again."));
    assert_eq!(r["sessionId"], session.as_str(), "{r}");
    assert_eq!(env.status("real"), "running");
    assert_eq!(a.state()["restarts"], 0);
}

#[test]
fn without_the_cli_tasks_are_answered_cli_missing_and_nothing_loops() {
    let env = Env::new();
    let a = agent(&env, "xc", json!({"command": [env.path("no-such-codex").display().to_string()]}), json!({}));
    let r = a.ask(json!("hello"));
    assert_eq!(r["error"], "cli_missing", "{r}");
    assert!(r["result"].as_str().unwrap().contains("not found"), "{r}");
    assert_eq!(a.state()["driverFault"]["kind"], "cli_missing");
    assert_eq!(a.alerts("codex.task")[0]["level"], "critical");
    assert_eq!(a.ask(json!("again"))["error"], "cli_missing");
    assert_eq!(env.status("xc"), "running", "af-wrap stays up and answers");
}
