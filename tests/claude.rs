//! claude-code agents: af-wrap drives a faithful test double of the Claude Code CLI
//! (`tests/fixtures/claude-double`) through real tmux, real pipes and the real spool; every task
//! goes through the real bus (`af-bus send --kind task`, `af-bus request`) and every answer is
//! read from it (the request's response, the `tasks.results` topic); and, as a contract test, the
//! real CLI without credentials.

mod util;

use af_spool::{AgentId, Spool, eventlog};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;
use util::{Env, wait_for};

const LONG: Duration = Duration::from_secs(20);

fn double() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-double")
}

/// A claude-code agent running the double, with `extra` merged into its config and `vars` into
/// its environment; started.
fn agent<'a>(env: &'a Env, id: &str, extra: Value, vars: Value) -> Agent<'a> {
    let mut environment = json!({
        "CLAUDE_CONFIG_DIR": env.path("claude-config").display().to_string(),
        "CLAUDE_DOUBLE_LOG": env.path(&format!("{id}.argv")).display().to_string(),
    });
    util::merge(&mut environment, &vars);
    let mut config = json!({"id": id, "type": "claude-code", "projectId": "proj",
        "command": [double().display().to_string()], "environment": environment});
    util::merge(&mut config, &extra);
    env.create(&config.to_string());
    let a = Agent::new(env, id);
    env.ok("af-spawn", &["start", id]);
    a
}

/// The answer to a task, as the bus carries it (the response's or the result event's payload).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TaskResponse {
    task_id: String,
    agent: String,
    ok: bool,
    is_error: bool,
    result: String,
    num_turns: u32,
    duration_ms: u64,
    timed_out: bool,
    cost_usd: f64,
    session_id: Option<String>,
    error: Option<String>,
    #[serde(default)]
    permission_denials: Vec<Value>,
}

struct Agent<'a> {
    env: &'a Env,
    spool: Spool,
    id: AgentId,
    argv_log: PathBuf,
    /// The subscription to `tasks.results` this test reads answers from.
    results: String,
    /// Answers read from it so far, by task id.
    seen: RefCell<HashMap<String, TaskResponse>>,
}

impl<'a> Agent<'a> {
    fn new(env: &'a Env, id: &str) -> Agent<'a> {
        let spool = Spool::open(&env.home).unwrap();
        let id = AgentId::new(id).unwrap();
        let results = format!("results-{id}");
        env.ok("af-bus", &["subscribe", &results, "--topic", "tasks.results"]);
        Agent { env, spool, argv_log: env.path(&format!("{id}.argv")), id, results, seen: Default::default() }
    }

    /// `af-bus send --to ID --kind task`: the task's message id.
    #[track_caller]
    fn send(&self, payload: Value) -> String {
        self.send_with(payload, "normal")
    }

    #[track_caller]
    fn send_with(&self, payload: Value, priority: &str) -> String {
        let data = payload.to_string();
        let out = self.env.ok("af-bus", &["send", "--to", self.id.as_str(), "--kind", "task", "-p", priority, &data]);
        out.trim().to_owned()
    }

    /// `af-bus request --to ID`: the response, checked to be one (exit 1 when it says ok: false).
    #[track_caller]
    fn ask(&self, payload: Value) -> TaskResponse {
        let m = self.env.request(self.id.as_str(), &payload);
        serde_json::from_value(m["payload"].clone()).unwrap()
    }

    /// `af-bus request` in the background: its answer comes with [`Agent::answer`].
    fn ask_later(&self, payload: Value) -> Child {
        let mut c = self.env.cmd("af-bus");
        c.args(["request", "--to", self.id.as_str(), "--timeout", "60", "--json", &payload.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    }

    #[track_caller]
    fn answer(&self, child: Child) -> TaskResponse {
        let out = child.wait_with_output().unwrap();
        let m: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", util::describe(&out)));
        let code = if m["payload"]["ok"] == false { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(code), "af-bus request: {}", util::describe(&out));
        serde_json::from_value(m["payload"].clone()).unwrap()
    }

    /// Reads what the agent published on `tasks.results` (`af-bus recv --ack`).
    fn read_results(&self) {
        let out = self.env.run("af-bus", &["recv", &self.results, "--json", "--ack", "-n", "100"], None);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let m: Value = serde_json::from_str(line).unwrap();
            let r: TaskResponse = serde_json::from_value(m["payload"].clone()).unwrap();
            assert_eq!(m["correlationId"].as_str(), Some(r.task_id.as_str()), "{m}");
            self.seen.borrow_mut().insert(r.task_id.clone(), r);
        }
    }

    /// The answer to a task sent with [`Agent::send`], once it is published.
    #[track_caller]
    fn result(&self, task: &str) -> TaskResponse {
        wait_for(&format!("the result of {task}"), LONG, || {
            self.read_results();
            self.seen.borrow().contains_key(task)
        });
        self.seen.borrow()[task].clone()
    }

    fn answered(&self, task: &str) -> bool {
        self.read_results();
        self.seen.borrow().contains_key(task)
    }

    fn state(&self) -> Value {
        serde_json::to_value(self.spool.read_state(&self.id).unwrap()).unwrap()
    }

    /// The CLI's argument lists, one per invocation.
    fn invocations(&self) -> Vec<Vec<String>> {
        util::argv_log(&self.argv_log)
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        eventlog::history(&self.spool)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.kind == kind && e.agent.as_ref() == Some(&self.id))
            .map(|e| e.detail)
            .collect()
    }

    fn hook_events(&self) -> Vec<String> {
        self.events("agent.claude").iter().map(|d| d["event"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// Every alert of this agent's `check` raised so far, from `af-health alerts --all`.
    fn alerts(&self, check: &str) -> Vec<Value> {
        self.env.alerts(self.id.as_str(), check)
    }

    /// The open alert of `check`, from `af-health alerts`.
    fn open_alert(&self, check: &str) -> Option<Value> {
        let open: Value = serde_json::from_str(&self.env.ok("af-health", &["alerts", "--json"])).unwrap();
        open.as_array().unwrap().iter().find(|a| a["agent"] == self.id.as_str() && a["check"] == check).cloned()
    }

    /// The ids of the tasks waiting in the agent's inbox.
    fn waiting(&self) -> Vec<String> {
        let q = af_spool::bus::Address::Inbox(self.id.clone()).queue(&self.spool);
        q.pending().unwrap().into_iter().map(|m| m.id).collect()
    }
}

fn arg_after<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter().position(|a| a == flag).and_then(|i| argv.get(i + 1)).map(String::as_str)
}

#[test]
fn tasks_become_turns_and_cost_is_every_process_s_spending_summed_across_restarts() {
    let env = Env::new();
    let a = agent(
        &env,
        "c1",
        json!({"claude": {"permissionMode": "acceptEdits", "allowedTools": ["Read", "Bash(git:*)"],
            "maxTurns": 5, "appendSystemPrompt": "Be brief."}}),
        json!({"CLAUDE_MODEL": "claude-opus-4-1", "GREETING": "hi"}),
    );
    env.ok("af-bus", &["subscribe", "hooks", "--topic", "agent.c1.claude"]);
    let r1 = a.ask(json!("hello there"));
    assert!(!r1.is_error && r1.ok, "{r1:?}");
    assert_eq!(r1.result, "echo: hello there");
    assert_eq!(r1.num_turns, 1);
    assert_eq!(r1.agent, "c1");
    assert!(!r1.timed_out);
    assert!((r1.cost_usd - 0.01).abs() < 1e-9, "{r1:?}");
    // The same answer is published on tasks.results, and the request is acked (in the history).
    assert_eq!(a.result(&r1.task_id).result, "echo: hello there");
    let history = env.ok("af-bus", &["history", "c1", "--json"]);
    assert!(history.contains(&r1.task_id), "{history}");
    let t2 = a.send(json!({"type": "code-generation", "action": "Write a parser",
        "requirements": ["no panics"], "files": ["src/parse.rs"]}));
    let r2 = a.result(&t2);
    assert_eq!(r2.result, "echo: Write a parser");
    assert!((r2.cost_usd - 0.02).abs() < 1e-9, "latest total, not a sum of totals: {r2:?}");

    let state = a.state();
    assert!((state["costUsd"].as_f64().unwrap() - 0.02).abs() < 1e-9, "{state}");
    assert_eq!(state["tokens"]["input"], 20, "{state}");
    assert_eq!(state["tokens"]["output"], 10, "{state}");
    let session = state["conversation"]["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(r2.session_id.as_deref(), Some(session.as_str()));
    let transcript = PathBuf::from(state["conversation"]["transcript"].as_str().unwrap());
    assert!(transcript.is_file(), "the transcript is where the CLI keeps it: {}", transcript.display());
    assert!(util::read(&transcript).contains("Write a parser"));

    let argv = &a.invocations()[0];
    for (flag, value) in [
        ("--input-format", "stream-json"),
        ("--output-format", "stream-json"),
        ("--session-id", session.as_str()),
        ("--model", "claude-opus-4-1"),
        ("--permission-mode", "acceptEdits"),
        ("--allowedTools", "Read,Bash(git:*)"),
        ("--max-turns", "5"),
    ] {
        assert_eq!(arg_after(argv, flag), Some(value), "{flag} in {argv:?}");
    }
    let system = arg_after(argv, "--append-system-prompt").unwrap();
    assert!(system.contains("af-bus send --to") && system.ends_with("Be brief."), "{system}");
    let pid = a.state()["pid"].as_u64().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    for want in [&b"GREETING=hi"[..], b"AF_AGENT_ID=c1"] {
        assert!(environ.split(|&b| b == 0).any(|v| v == want), "{:?} in the CLI's environment", want);
    }

    // The hooks reached the event log and the bus's topic agent.c1.claude.
    let pane = env.tmux(&["capture-pane", "-p", "-t", "=agent-c1:main"]);
    let pane = String::from_utf8_lossy(&pane.stdout);
    assert!(pane.contains("claude: echo: hello there") && pane.contains("── turn done"), "the pane: {pane}");
    let hooks = a.hook_events();
    for want in ["SessionStart", "UserPromptSubmit", "Stop"] {
        assert!(hooks.iter().any(|h| h == want), "{want} in {hooks:?}");
    }
    let mut published = Vec::new();
    wait_for("the hooks on the bus", LONG, || {
        let out = env.run("af-bus", &["recv", "hooks", "--json", "--ack", "-n", "100"], None);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let m: Value = serde_json::from_str(line).unwrap();
            assert_eq!(m["topic"], "agent.c1.claude", "{m}");
            published.push(m["payload"]["event"].as_str().unwrap_or_default().to_owned());
        }
        ["SessionStart", "UserPromptSubmit", "Stop"].iter().all(|w| published.iter().any(|p| p == w))
    });

    // A restart resumes the same session in a new process, which counts its cost from zero (as
    // the real CLI does): the agent's cost is the earlier processes' plus the new one's.
    env.ok("af-spawn", &["restart", "c1"]);
    let r3 = a.ask(json!("again"));
    assert!(!r3.is_error, "{r3:?}");
    assert!((r3.cost_usd - 0.03).abs() < 1e-9, "{r3:?}");
    let last = a.invocations().last().unwrap().clone();
    assert_eq!(arg_after(&last, "--resume"), Some(session.as_str()), "{last:?}");
    assert_eq!(a.state()["conversation"]["sessionId"], session.as_str());
    let (cost, tokens) = af_ops::claude::project_cost(&a.spool, "proj").unwrap();
    assert!((cost - 0.03).abs() < 1e-9);
    assert_eq!(tokens.input, 30);
    let shown = env.show("c1");
    assert!((shown["projectCost"]["costUsd"].as_f64().unwrap() - 0.03).abs() < 1e-9, "{shown}");
    assert_eq!(shown["projectCost"]["tokens"]["output"], 15);
    let shown = env.ok("af-spawn", &["show", "c1"]);
    assert!(shown.contains("$0.0300") && shown.contains(&session), "{shown}");
    // Three turns, all successes, counted across the restart (af-wrap's, not a process's, count).
    let metrics = env.ok("af-health", &["metrics"]);
    let turns = metrics.lines().find_map(|l| l.strip_prefix(r#"agentflow_claude_turns_total{outcome="success"} "#));
    assert_eq!(turns, Some("3"), "{metrics}");
}

#[test]
fn the_budget_is_enforced_between_turns() {
    let env = Env::new();
    let a = agent(&env, "b1", json!({"budgetUsd": 0.015}), json!({}));
    let r1 = a.ask(json!("one"));
    assert!(!r1.is_error);
    let r2 = a.ask(json!("two"));
    assert!(!r2.is_error, "under budget when it started: {r2:?}");
    let r3 = a.ask(json!("three"));
    assert!(r3.is_error && !r3.ok);
    assert_eq!(r3.error.as_deref(), Some("budget"));
    assert!(r3.result.contains("budget spent"), "{r3:?}");
    let r4 = a.result(&a.send(json!("four")));
    assert_eq!(r4.error.as_deref(), Some("budget"));
    assert_eq!(a.alerts("claude.budget").len(), 1, "one alert once spent");
    let open = a.open_alert("claude.budget").expect("af-health alerts lists it");
    assert_eq!(open["level"], "warning");
    assert!(open["message"].as_str().unwrap().contains("raise budgetUsd"), "{open}");
    assert_eq!(arg_after(&a.invocations()[0], "--max-budget-usd"), Some("0.015"));
    assert_eq!(a.invocations().len(), 1);
    assert_eq!(env.status("b1"), "running");
}

#[test]
fn the_budget_holds_across_cli_restarts_crashes_and_a_killed_af_wrap() {
    let env = Env::new();
    let a = agent(&env, "b2", json!({"budgetUsd": 0.035}), json!({}));
    let cost = |r: &TaskResponse| (r.cost_usd * 1e6).round() / 1e6;
    assert_eq!(cost(&a.ask(json!("one"))), 0.01);
    // A restart: the new process counts from zero and gets only what is left of the budget.
    env.ok("af-spawn", &["restart", "b2"]);
    assert_eq!(cost(&a.ask(json!("two"))), 0.02);
    assert_eq!(arg_after(a.invocations().last().unwrap(), "--max-budget-usd"), Some("0.025"));
    // The CLI killed between turns: its spending stays counted.
    let pid = a.state()["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    // Gone, and its figures folded into the base (costUsd counts them all along).
    wait_for("the CLI to be gone and its figures folded", LONG, || {
        let s = a.state();
        s["pid"].is_null() && s["process"].is_null()
    });
    assert_eq!(cost(&a.ask(json!("three"))), 0.03);
    assert_eq!(arg_after(a.invocations().last().unwrap(), "--max-budget-usd"), Some("0.015"));
    // af-wrap killed outright, its CLI with it: nothing recorded the end, yet the next af-wrap
    // finds the running figure in the state and keeps it.
    let state = a.state();
    assert_eq!(state["process"]["pid"], state["pid"], "{state}");
    for pid in [state["wrapPid"].as_i64().unwrap(), state["pid"].as_i64().unwrap()] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    wait_for("af-wrap to be gone", LONG, || !util::alive(state["wrapPid"].as_u64().unwrap() as u32));
    wait_for("a fresh start", LONG, || env.run("af-spawn", &["start", "b2"], None).status.success());
    assert_eq!(cost(&a.ask(json!("four"))), 0.04, "over the budget only by the last turn");
    assert_eq!(arg_after(a.invocations().last().unwrap(), "--max-budget-usd"), Some("0.005"));
    let refused = a.ask(json!("five"));
    assert_eq!(refused.error.as_deref(), Some("budget"), "{refused:?}");
    let state = a.state();
    assert!((state["costUsd"].as_f64().unwrap() - 0.04).abs() < 1e-9, "{state}");
    assert_eq!(state["tokens"]["input"], 40, "{state}");
    let (project, tokens) = af_ops::claude::project_cost(&a.spool, "proj").unwrap();
    assert!((project - 0.04).abs() < 1e-9 && tokens.output == 20, "{project} {tokens:?}");
    assert!(env.ok("af-spawn", &["show", "b2"]).contains("$0.0400 of $0.04 budget"));
}

#[test]
fn a_running_turn_can_be_interrupted_and_tasks_wait_by_priority() {
    let env = Env::new();
    let a = agent(&env, "i1", json!({}), json!({"CLAUDE_DOUBLE_TURN_SECS": "30"}));
    let long = a.ask_later(json!("a long job"));
    wait_for("the turn to run", LONG, || a.hook_events().iter().any(|h| h == "UserPromptSubmit"));
    assert_eq!(a.state()["activity"], "busy");
    let low = a.send_with(json!("low"), "low");
    let high = a.send_with(json!("high"), "high");
    assert_eq!(a.waiting(), [high.clone(), low.clone()], "the inbox in priority order");
    env.ok("af-bus", &["interrupt", "i1"]);
    let r = a.answer(long);
    assert!(r.is_error);
    assert_eq!(r.error.as_deref(), Some("interrupted"));
    // The next turn is the high-priority task, which is interrupted in turn.
    wait_for("the high task's turn", LONG, || a.hook_events().iter().filter(|h| *h == "UserPromptSubmit").count() == 2);
    assert!(!a.answered(&low));
    assert_eq!(a.waiting(), std::slice::from_ref(&low));
    env.ok("af-bus", &["interrupt", "i1"]);
    assert_eq!(a.result(&high).error.as_deref(), Some("interrupted"));
    // Nothing to interrupt is a negative answer (exit 1), unless the low task's turn already runs.
    let out = env.run("af-bus", &["interrupt", "i1"], None);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", util::describe(&out));
    if out.status.code() == Some(1) {
        assert!(String::from_utf8_lossy(&out.stderr).contains("no turn is running"), "{}", util::describe(&out));
    }
    // An unknown agent, and a worker (no turns at all).
    env.fails("af-bus", &["interrupt", "nobody"], None, 3);
    env.worker("w1", "sleep 30");
    env.fails("af-bus", &["interrupt", "w1"], None, 4);
    assert_eq!(a.invocations().len(), 1, "the same CLI process ran every turn");
}

#[test]
fn a_cli_killed_mid_turn_is_resumed_and_the_task_sent_again() {
    let env = Env::new();
    let a = agent(&env, "k1", json!({}), json!({"CLAUDE_DOUBLE_TURN_SECS": "1.5"}));
    let first = a.ask(json!("warm up"));
    assert!(!first.is_error);
    let task = a.send(json!("survive this"));
    wait_for("the second turn to run", LONG, || {
        a.hook_events().iter().filter(|h| *h == "UserPromptSubmit").count() == 2
    });
    let pid = a.state()["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let r = a.result(&task);
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.result, "echo: survive this");
    let runs = a.invocations();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let session = a.state()["conversation"]["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(arg_after(&runs[1], "--resume"), Some(session.as_str()));
    assert_eq!(env.status("k1"), "running");
    assert!(!a.alerts("claude.cli").is_empty());
    assert_ne!(a.state()["pid"].as_u64(), Some(pid as u64));
}

#[test]
fn without_login_or_without_the_cli_tasks_fail_with_the_reason_and_nothing_loops() {
    let env = Env::new();
    let a = agent(&env, "u1", json!({}), json!({"CLAUDE_DOUBLE_MODE": "unauth"}));
    let r = a.ask(json!("hello"));
    assert!(r.is_error);
    assert_eq!(r.error.as_deref(), Some("authentication_failed"));
    assert!(r.result.contains("Not logged in"), "{r:?}");
    let alerts = a.alerts("claude.task");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["level"], "critical");
    let pid = a.state()["pid"].clone();
    let r = a.ask(json!("again"));
    assert_eq!(r.error.as_deref(), Some("authentication_failed"));
    assert_eq!(a.invocations().len(), 1, "the same CLI answered both: no restart, no loop");
    assert_eq!(a.state()["pid"], pid);
    assert_eq!(env.status("u1"), "running");
    assert_eq!(a.alerts("claude.task").len(), 2);
    let open = a.open_alert("claude.task").expect("af-health alerts lists it");
    assert_eq!(open["id"], alerts[0]["id"], "one open alert per check, raised again");
    assert!(open["message"].as_str().unwrap().contains("Not logged in"), "{open}");

    let config = json!({"id": "m1", "type": "claude-code", "command": ["/nonexistent/claude"]});
    env.create(&config.to_string());
    let m = Agent::new(&env, "m1");
    env.ok("af-spawn", &["start", "m1"]);
    let r = m.ask(json!("hello"));
    assert_eq!(r.error.as_deref(), Some("cli_missing"));
    assert!(r.result.contains("not found"), "{r:?}");
    assert_eq!(m.open_alert("claude.task").expect("the alert")["level"], "critical");
    assert_eq!(env.status("m1"), "running");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_root_bypass_permissions_agent_needs_is_sandbox() {
    let env = Env::new();
    let config = |id: &str, environment: Value| {
        json!({"id": id, "type": "claude-code", "command": [double().display().to_string()],
            "claude": {"permissionMode": "bypassPermissions"}, "environment": environment})
        .to_string()
    };
    let root = nix::unistd::geteuid().is_root();
    // Whatever this test's own environment holds.
    let create = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut c = env.cmd("af-spawn");
        c.args(args).env_remove("IS_SANDBOX").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = create(&["create", "--json"], &config("bp", json!({})));
    if root {
        assert_eq!(out.status.code(), Some(2), "refused: {}", util::describe(&out));
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["error"], "invalid", "{err}");
        assert!(err["message"].as_str().unwrap().contains(r#"needs "IS_SANDBOX": "1" in environment"#), "{err}");
        let out = create(&["create"], &config("bp", json!({})));
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.starts_with("af-spawn: agent 'bp': claude.permissionMode bypassPermissions as root"), "{text}");
        assert!(!env.run("af-spawn", &["show", "bp"], None).status.success(), "nothing created");
    } else {
        assert!(out.status.success(), "not root: allowed: {}", util::describe(&out));
        env.ok("af-spawn", &["rm", "bp"]);
    }
    env.create(&config("bp", json!({"IS_SANDBOX": "1"})));
    let a = Agent::new(&env, "bp");
    env.ok("af-spawn", &["start", "bp"]);
    assert!(!a.ask(json!("hello")).is_error, "the CLI runs in the sandbox");
}

/// `af-health check --recover ID --json`: its exit code and the agent's report.
fn health_check(env: &Env, id: &str) -> (i32, Value) {
    let out = env.run("af-health", &["check", "--recover", id, "--json"], None);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", util::describe(&out)));
    (out.status.code().unwrap(), doc["agents"][0].clone())
}

fn check_named<'v>(report: &'v Value, name: &str) -> &'v Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{report}"))
}

#[test]
fn health_tells_the_driver_s_truth_and_the_ladder_leaves_alone_what_a_restart_cannot_fix() {
    let env = Env::new();
    // Not logged in: unhealthy, and no restart.
    let u = agent(&env, "hu", json!({}), json!({"CLAUDE_DOUBLE_MODE": "unauth"}));
    let (code, report) = health_check(&env, "hu");
    assert_eq!((code, &report["health"]), (0, &json!("healthy")), "before any task: {report}");
    assert_eq!(u.ask(json!("hello")).error.as_deref(), Some("authentication_failed"));
    let (code, report) = health_check(&env, "hu");
    assert_eq!((code, &report["health"]), (1, &json!("unhealthy")), "{report}");
    let claude = check_named(&report, "claude");
    assert_eq!(claude["level"], "critical");
    assert!(claude["message"].as_str().unwrap().contains("authentication_failed: Not logged in"), "{claude}");
    assert!(report["action"].is_null(), "the ladder leaves it alone: {report}");
    assert_eq!(u.state()["restarts"], 0);
    assert_eq!(u.invocations().len(), 1);
    assert!(u.alerts("claude").is_empty(), "af-wrap's claude.task alert is the one");
    // The CLI missing: unhealthy from the start, no restart loop.
    let config = json!({"id": "hm", "type": "claude-code", "command": ["/nonexistent/claude"]});
    env.create(&config.to_string());
    env.ok("af-spawn", &["start", "hm"]);
    let m = Agent::new(&env, "hm");
    wait_for("the driver fault", LONG, || !m.state()["driverFault"].is_null());
    for _ in 0..3 {
        let (code, report) = health_check(&env, "hm");
        assert_eq!((code, &report["health"]), (1, &json!("unhealthy")), "{report}");
        assert!(check_named(&report, "claude")["message"].as_str().unwrap().starts_with("cli_missing"), "{report}");
    }
    assert_eq!(m.state()["restarts"], 0);
    assert_eq!(env.status("hm"), "running");
    // Waiting for a usage limit: degraded.
    let flag = env.path("limit");
    std::fs::write(&flag, (now_secs() + 3600).to_string()).unwrap();
    let w = agent(
        &env,
        "hw",
        json!({}),
        json!({"CLAUDE_DOUBLE_RATE_LIMIT_FILE": flag.display().to_string(), "CLAUDE_CONFIG_DIR": env.path("other-account").display().to_string()}),
    );
    w.send(json!("limited"));
    wait_for("the agent to wait", LONG, || w.state()["activity"] == "waiting");
    let (code, report) = health_check(&env, "hw");
    assert_eq!((code, &report["health"]), (1, &json!("degraded")), "{report}");
    assert!(check_named(&report, "claude")["message"].as_str().unwrap().contains("usage limit"), "{report}");
}

#[test]
fn a_usage_limit_makes_the_agents_of_the_account_wait_for_its_reset_and_send_the_task_again() {
    let env = Env::new();
    let flag = env.path("limit");
    let vars = json!({"CLAUDE_DOUBLE_RATE_LIMIT_FILE": flag.display().to_string()});
    let a = agent(&env, "r1", json!({}), vars.clone());
    let b = agent(&env, "r2", json!({}), vars);
    // Informational rate_limit_events (status allowed) change nothing.
    assert!(!b.ask(json!("warm up")).is_error);
    assert_eq!(b.state()["activity"], "idle");
    let reset = now_secs() + 6;
    std::fs::write(&flag, reset.to_string()).unwrap();
    let task = a.send(json!("limited"));
    wait_for("the agent to wait", LONG, || a.state()["activity"] == "waiting");
    assert_eq!(a.state()["waitingUntil"], Value::from(af_spool::time::Timestamp(reset * 1000).rfc3339()));
    assert_eq!(a.alerts("claude.ratelimit").len(), 1);
    assert!(a.alerts("claude.ratelimit")[0]["message"].as_str().unwrap().contains("five_hour"));
    assert_eq!(a.waiting(), std::slice::from_ref(&task), "the task is back in the inbox while the agent waits");
    // The other agent of the account (the same config dir) waits for the same reset, without
    // a turn that would fail, and without an alert of its own.
    let other = b.send(json!("not now"));
    wait_for("the other agent to wait", LONG, || b.state()["activity"] == "waiting");
    assert_eq!(b.state()["waitingUntil"], a.state()["waitingUntil"]);
    assert_eq!(b.waiting(), std::slice::from_ref(&other));
    assert!(b.alerts("claude.ratelimit").is_empty());
    let r = a.result(&task);
    assert!(!r.is_error, "{r:?}");
    assert!(now_secs() >= reset, "sent again only after the reset");
    assert!(!b.result(&other).is_error);
    assert_eq!(a.state()["activity"], "idle");
    assert!(a.open_alert("claude.ratelimit").is_none(), "the success closed the alert");
    let levels: Vec<Value> = a.alerts("claude.ratelimit").iter().map(|x| x["level"].clone()).collect();
    assert_eq!(levels, ["warning", "recovery"]);
    assert_eq!(a.invocations().len(), 1, "no restart");
    let submitted = b.hook_events().iter().filter(|h| *h == "UserPromptSubmit").count();
    assert_eq!(submitted, 2, "the other agent spent no turn on the limit");
}

#[test]
fn without_a_rate_limit_event_the_reset_is_read_from_the_text() {
    let env = Env::new();
    let flag = env.path("limit");
    // A reset on a minute, in a zone half an hour off UTC: the text names it exactly.
    let reset = (now_secs() / 60 + 90) * 60;
    std::fs::write(&flag, reset.to_string()).unwrap();
    let vars = json!({"CLAUDE_DOUBLE_RATE_LIMIT_FILE": flag.display().to_string(),
        "CLAUDE_DOUBLE_RATE_LIMIT": "text", "CLAUDE_DOUBLE_TZ": "Asia/Kolkata"});
    let a = agent(&env, "r3", json!({}), vars);
    let task = a.send(json!("limited"));
    wait_for("the agent to wait", LONG, || a.state()["activity"] == "waiting");
    assert_eq!(a.state()["waitingUntil"], Value::from(af_spool::time::Timestamp(reset * 1000).rfc3339()));
    assert_eq!(a.waiting(), [task]);
    let alert = a.open_alert("claude.ratelimit").expect("an alert");
    assert!(alert["message"].as_str().unwrap().contains("(Asia/Kolkata)"), "{alert}");
}

#[test]
fn print_mode_hooks_follow_the_2_1_cli() {
    let env = Env::new();
    let a = agent(&env, "h1", json!({"claude": {"permissionMode": "acceptEdits"}}), json!({}));
    // The CLI runs from the start, but in print mode its session starts with the first message.
    wait_for("the CLI to run", LONG, || a.invocations().len() == 1 && a.state()["pid"].is_u64());
    assert!(a.hook_events().is_empty(), "no hook before the first message: {:?}", a.hook_events());
    a.ask(json!("hi"));
    // The CLI runs its Stop hook (a process of its own, `af-wrap --hook`) after the result line
    // af-wrap answers from: the answer can come before the Stop record.
    wait_for("the Stop hook's record", LONG, || a.hook_events().iter().any(|h| h == "Stop"));
    let events = a.events("agent.claude");
    let names: Vec<&str> = events.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(names[..3], ["SessionStart", "UserPromptSubmit", "Stop"], "{names:?}");
    let session = a.state()["conversation"]["sessionId"].clone();
    assert_eq!(events[0]["sessionId"], session);
    let (submit, stop) = (&events[1]["input"], &events[2]["input"]);
    assert_eq!(submit["permission_mode"], "acceptEdits", "{submit}");
    assert!(submit["prompt_id"].is_string() && submit["prompt_id"] == stop["prompt_id"], "{submit} {stop}");
    assert!(stop["effort"]["level"].is_string(), "{stop}");
    assert_eq!(a.state()["activity"], "idle");
    env.ok("af-spawn", &["stop", "h1"]);
    assert!(!a.hook_events().iter().any(|h| h == "Notification"), "no idle_prompt in print mode");
}

/// The real CLI (`AF_CLAUDE_BIN`, else `claude` on PATH); `None` (the test skipped) without it.
fn real_cli() -> Option<PathBuf> {
    util::agent_cli("AF_CLAUDE_BIN", "claude", "npm install -g @anthropic-ai/claude-code")
}

/// One run of a CLI in streaming print mode, without credentials: its stdout lines as they come.
struct PrintRun {
    child: Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl PrintRun {
    fn start(env: &Env, cli: &Path, args: &[&str]) -> PrintRun {
        let mut c = std::process::Command::new(cli);
        c.args(["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]).args(args);
        c.current_dir(&env.work).env("CLAUDE_CONFIG_DIR", env.path("claude-config")).env("HOME", env.path("cli-home"));
        c.env("DISABLE_AUTOUPDATER", "1").env("CLAUDE_DOUBLE_MODE", "unauth");
        for key in ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"] {
            c.env_remove(key);
        }
        std::fs::create_dir_all(env.path("cli-home")).unwrap();
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(out).map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        PrintRun { child, lines }
    }

    fn send(&mut self, v: Value) {
        use std::io::Write;
        writeln!(self.child.stdin.as_mut().unwrap(), "{v}").unwrap();
    }

    /// The lines up to and including the first of `kind`.
    #[track_caller]
    fn until(&self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let v = self.lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}: {seen:?}"));
            let done = v["type"] == kind;
            seen.push(v);
            if done {
                return seen;
            }
        }
    }

    /// Ends the input; the exit code.
    fn finish(mut self) -> Option<i32> {
        drop(self.child.stdin.take());
        self.child.wait().unwrap().code()
    }
}

impl Drop for PrintRun {
    /// A run a failed assertion left behind is killed, not left to write into a removed directory.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What af-wrap relies on in the CLI's print mode, checked alike against the double and the real
/// CLI (without credentials, so no model answers: successful turns, costs, rate-limit events,
/// permission denials and Notification hooks cannot be observed this way).
fn print_mode_contract(cli: &Path) {
    let env = Env::new();
    let hooks_log = env.path("hooks.jsonl");
    // One write a record: hooks the CLI runs at once (StopFailure is fire-and-forget) must not
    // interleave their lines.
    let command = format!("line=$(cat); printf '%s\\n' \"$line\" >> '{}'", hooks_log.display());
    let hooks: serde_json::Map<String, Value> =
        ["SessionStart", "UserPromptSubmit", "Stop", "StopFailure", "SessionEnd"]
            .iter()
            .map(|e| (e.to_string(), json!([{"hooks": [{"type": "command", "command": command}]}])))
            .collect();
    let settings = env.path("settings.json");
    std::fs::write(&settings, json!({"hooks": hooks}).to_string()).unwrap();
    let settings = settings.display().to_string();
    let hook_inputs = || -> Vec<Value> {
        util::read(&hooks_log)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // An unknown flag: one line on stderr, exit 1.
    let mut bogus = std::process::Command::new(cli);
    bogus.args(["-p", "--bogus"]).env("HOME", env.path("cli-home")).env("CLAUDE_CONFIG_DIR", env.path("claude-config"));
    let bogus = bogus.stdin(Stdio::null()).output().unwrap();
    assert_eq!(bogus.status.code(), Some(1), "{}", util::describe(&bogus));
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("unknown option '--bogus'"), "{}", util::describe(&bogus));
    // Every flag af-wrap passes.
    let session = af_ops::claude::new_session_id().unwrap();
    let flags = [
        "--session-id",
        &session,
        "--model",
        "opus",
        "--max-budget-usd",
        "0.25",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Read,Bash(git diff:*)",
        "--max-turns",
        "3",
        "--append-system-prompt",
        "Be brief.",
        "--settings",
        &settings,
    ];
    let mut run = PrintRun::start(&env, cli, &flags);
    // An interrupt with no turn running: answered success.
    run.send(json!({"type": "control_request", "request_id": "r1", "request": {"subtype": "interrupt"}}));
    let first = run.until("control_response");
    assert_eq!(first.len(), 1, "the answer is the first line: nothing at process start: {first:?}");
    assert_eq!(first[0]["response"]["subtype"], "success", "{first:?}");
    assert_eq!(first[0]["response"]["request_id"], "r1", "{first:?}");
    // The first message: the session starts (its hook), init, then a turn that fails for want of
    // a login.
    run.send(json!({"type": "user", "message": {"role": "user", "content": "Say hello."}}));
    let turn = run.until("result");
    let started = turn.iter().position(|v| v["subtype"] == "hook_started" && v["hook_event"] == "SessionStart");
    let init = turn.iter().position(|v| v["subtype"] == "init");
    assert!(started.is_some() && started < init, "SessionStart, after the first input, before init: {turn:?}");
    let init = turn.iter().find(|v| v["type"] == "system" && v["subtype"] == "init").expect("an init line");
    assert_eq!(init["session_id"], session.as_str(), "{init}");
    assert_eq!(init["permissionMode"], "acceptEdits", "{init}");
    let assistant = turn.iter().find(|v| v["type"] == "assistant").expect("an assistant line");
    assert_eq!(assistant["error"], "authentication_failed", "{assistant}");
    let result = turn.last().unwrap();
    assert_eq!((&result["is_error"], &result["session_id"]), (&json!(true), &json!(session)), "{result}");
    assert_eq!(result["permission_denials"], json!([]), "{result}");
    assert!(result["total_cost_usd"].is_number(), "{result}");
    assert_eq!(run.finish(), Some(1), "exits 1 after a failed turn");
    // SessionStart and UserPromptSubmit are awaited, in order; StopFailure is fire-and-forget
    // (the CLI's own hook list says so), so its record may come after SessionEnd's, or after the
    // CLI's exit.
    wait_for("the StopFailure and SessionEnd records", LONG, || hook_inputs().len() >= 4);
    let inputs = hook_inputs();
    let names: Vec<&str> = inputs.iter().map(|h| h["hook_event_name"].as_str().unwrap()).collect();
    assert_eq!(names[..2], ["SessionStart", "UserPromptSubmit"], "{inputs:?}");
    let mut last = names[2..].to_vec();
    last.sort_unstable();
    assert_eq!(last, ["SessionEnd", "StopFailure"], "{inputs:?}");
    assert_eq!(inputs[0]["source"], "startup");
    let failure = inputs.iter().find(|h| h["hook_event_name"] == "StopFailure").unwrap();
    let submit = &inputs[1];
    assert_eq!(
        (&submit["prompt"], &submit["permission_mode"]),
        (&json!("Say hello."), &json!("acceptEdits")),
        "{submit}"
    );
    assert!(submit["prompt_id"].is_string() && submit["prompt_id"] == failure["prompt_id"], "{submit} {failure}");
    assert_eq!(failure["error"], "authentication_failed", "{failure}");
    assert!(failure["effort"]["level"].is_string(), "a model with effort levels: {failure}");
    for h in &inputs {
        assert_eq!(h["session_id"], session.as_str(), "{h}");
    }
    // An unknown --resume: a result naming the error, then exit 1.
    let unknown = af_ops::claude::new_session_id().unwrap();
    let run = PrintRun::start(&env, cli, &["--resume", &unknown, "--settings", &settings]);
    let result = run.until("result").pop().unwrap();
    assert_eq!((&result["subtype"], &result["is_error"]), (&json!("error_during_execution"), &json!(true)), "{result}");
    let errors = result["errors"].as_array().expect("errors");
    assert!(errors[0].as_str().unwrap().contains(&format!("No conversation found with session ID: {unknown}")));
    assert_eq!(run.finish(), Some(1));
    let last = hook_inputs().pop().unwrap();
    assert_eq!((&last["hook_event_name"], &last["session_id"]), (&json!("SessionEnd"), &json!(unknown)), "{last}");
}

#[test]
fn the_double_keeps_the_print_mode_contract() {
    print_mode_contract(&double());
}

#[test]
fn the_real_cli_keeps_the_print_mode_contract() {
    if let Some(cli) = real_cli() {
        print_mode_contract(&cli);
    }
}

/// The contract test: the real CLI (`AF_CLAUDE_BIN`, else `claude` on PATH), without credentials.
#[test]
fn the_real_cli_without_credentials_answers_authentication_failed() {
    let Some(cli) = real_cli() else { return };
    let mut env = Env::new();
    // No credentials may reach it: an empty config directory, and no key in its environment.
    for key in ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"] {
        env.set_env(key, "");
    }
    let home = env.path("cli-home");
    std::fs::create_dir_all(&home).unwrap();
    let config = json!({"id": "real", "type": "claude-code", "command": [cli.display().to_string()],
        "environment": {"CLAUDE_CONFIG_DIR": env.path("claude-config").display().to_string(),
            "HOME": home.display().to_string(), "DISABLE_AUTOUPDATER": "1"}});
    env.create(&config.to_string());
    let a = Agent::new(&env, "real");
    env.ok("af-spawn", &["start", "real"]);
    let task = a.send(json!("Say hello."));
    wait_for("the real CLI's answer", Duration::from_secs(60), || a.answered(&task));
    let r = a.result(&task);
    assert!(r.is_error, "{r:?}");
    assert_eq!(r.error.as_deref(), Some("authentication_failed"), "{r:?}");
    let state = a.state();
    let session = state["conversation"]["sessionId"].as_str().unwrap();
    assert!(af_spool::claude::is_uuid(session), "{state}");
    assert_eq!(r.session_id.as_deref(), Some(session));
    assert!(!a.alerts("claude.task").is_empty());
    let pid = a.state()["pid"].clone();
    let again = a.send(json!("Say hello again."));
    wait_for("the second answer", Duration::from_secs(60), || a.answered(&again));
    assert_eq!(a.result(&again).error.as_deref(), Some("authentication_failed"));
    assert_eq!(a.state()["pid"], pid, "the same CLI process: nothing restarted");
    assert_eq!(env.status("real"), "running", "af-wrap does not crash-loop");
    assert_eq!(a.state()["restarts"], 0);
    let hooks = a.hook_events();
    for want in ["SessionStart", "UserPromptSubmit", "StopFailure"] {
        assert!(hooks.iter().any(|h| h == want), "the real CLI ran our {want} hook: {hooks:?}");
    }
}

#[test]
fn after_a_rollback_the_agent_resumes_the_checkpointed_conversation() {
    let env = Env::new();
    let a = agent(&env, "cp", json!({}), json!({}));
    assert!(!a.ask(json!("remember the word apple")).is_error);
    // A checkpoint holds the conversation (the state's field) and a copy of its transcript.
    let ckpt = env.ok("af-checkpoint", &["create", "cp", "-m", "knows apple"]).trim().to_owned();
    let saved: af_spool::claude::Conversation = serde_json::from_value(a.state()["conversation"].clone()).unwrap();
    assert!(!a.ask(json!("now forget it and say pear")).is_error);
    assert!(util::read(&saved.transcript).contains("pear"));
    // The rollback stops the agent, puts the transcript and the conversation back, starts it again.
    env.ok("af-checkpoint", &["rollback", "cp", &ckpt]);
    assert_eq!(env.status("cp"), "running");
    assert!(!a.ask(json!("what was the word?")).is_error);
    let last = a.invocations().last().unwrap().clone();
    assert_eq!(arg_after(&last, "--resume"), Some(saved.session_id.as_str()), "{last:?}");
    let transcript = util::read(&saved.transcript);
    assert!(transcript.contains("apple") && transcript.contains("what was the word"), "{transcript}");
    assert!(!transcript.contains("pear"), "the rolled-back turn is gone: {transcript}");
    // The money spent on the forgotten turn stays spent.
    assert!((a.state()["costUsd"].as_f64().unwrap() - 0.03).abs() < 1e-9, "{}", a.state());
}

#[test]
fn a_turn_over_the_task_timeout_is_interrupted() {
    let env = Env::new();
    let a = agent(&env, "t1", json!({"resourceLimits": {"timeout": "1s"}}), json!({"CLAUDE_DOUBLE_TURN_SECS": "60"}));
    let r = a.ask(json!("forever"));
    assert!(r.is_error && r.timed_out);
    assert_eq!(r.error.as_deref(), Some("timeout"));
    assert_eq!(a.alerts("claude.timeout").len(), 1);
    assert_eq!(a.invocations().len(), 1);
}

fn prompts(a: &Agent<'_>) -> Vec<String> {
    a.events("agent.claude")
        .into_iter()
        .filter(|d| d["event"] == "UserPromptSubmit")
        .map(|d| d["input"]["prompt"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn pane(env: &Env, id: &str) -> String {
    let out = env.tmux(&["capture-pane", "-p", "-t", &format!("=agent-{id}:main")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_interactive_permission_prompt_shows_as_input_and_alerts_after_the_configured_wait() {
    let env = Env::new();
    let a = agent(&env, "ip", json!({"claude": {"interactive": true, "inputAlertAfter": "1s"}}), json!({}));
    let asked = a.send(json!("ask: rm -rf build"));
    wait_for("the permission prompt", LONG, || a.state()["activity"] == "input");
    let asks = "Claude needs your permission to use Bash";
    assert_eq!(a.state()["inputPrompt"], asks, "{}", a.state());
    let rows: Value = serde_json::from_str(&env.ok("af-spawn", &["ls", "--json"])).unwrap();
    assert_eq!(rows[0]["inputPrompt"], asks, "{rows}");
    assert_eq!(rows[0]["activity"], "input", "{rows}");
    assert!(env.ok("af-spawn", &["show", "ip"]).contains(&format!("activity:      input: {asks}")));
    // No task is pasted into the dialog; after the configured wait, one warning alert.
    let next = a.send(json!("the next task"));
    wait_for("the alert", LONG, || a.open_alert("claude.input").is_some());
    let alert = a.open_alert("claude.input").unwrap();
    assert_eq!(alert["level"], "warning");
    assert!(alert["message"].as_str().unwrap().contains(asks), "{alert}");
    assert_eq!(prompts(&a), ["ask: rm -rf build"], "nothing pasted into the permission dialog");
    // A person allows it: the turn ends, the next task runs, the alert closes.
    env.tmux(&["send-keys", "-t", "=agent-ip:main", "1"]);
    assert!(!a.result(&asked).is_error);
    assert!(!a.result(&next).is_error);
    assert!(a.open_alert("claude.input").is_none());
    assert_eq!(a.alerts("claude.input").len(), 2, "one warning, one recovery");
    assert!(a.state()["inputPrompt"].is_null(), "{}", a.state());
}

#[test]
fn interactive_tasks_arrive_by_bracketed_paste_and_are_confirmed() {
    let mut env = Env::new();
    env.set_env("AF_CLAUDE_CONFIRM", "1s");
    let a = agent(&env, "ia", json!({"claude": {"interactive": true}}), json!({"CLAUDE_DOUBLE_SWALLOW": "1"}));
    wait_for("the CLI to start", LONG, || !a.invocations().is_empty());
    let argv = &a.invocations()[0];
    assert!(!argv.iter().any(|x| x == "-p" || x == "--output-format"), "{argv:?}");
    assert!(arg_after(argv, "--settings").is_some() && arg_after(argv, "--session-id").is_some(), "{argv:?}");
    // Two lines: with bracketed paste the newline stays in the prompt instead of submitting it.
    let r = a.ask(json!("first line\nsecond line"));
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.result, "echo: first line");
    assert_eq!(prompts(&a), ["first line\nsecond line"], "one prompt, whole");
    assert_eq!(a.events("agent.task.retry").len(), 1, "the swallowed paste was delivered again");
    assert!(pane(&env, "ia").contains("⏺ echo: first line"));
}

#[test]
fn an_interactive_prompt_too_long_for_the_event_log_is_still_confirmed() {
    let env = Env::new();
    let a = agent(&env, "il", json!({"claude": {"interactive": true}}), json!({}));
    wait_for("the CLI to start", LONG, || a.hook_events().iter().any(|h| h == "SessionStart"));
    // The log keeps only the beginning of the UserPromptSubmit hook's prompt: that confirms it.
    let prompt: String = (0..3000).map(|i| format!("w{i} ")).collect();
    let r = a.ask(json!(prompt));
    assert!(!r.is_error, "{r:?}");
    assert_eq!(r.result, format!("echo: {prompt}"), "the whole answer, from the transcript");
    let logged = prompts(&a);
    assert!(logged.len() == 1 && logged[0].len() < prompt.len() && prompt.starts_with(&logged[0]), "{logged:.80?}");
    assert!(a.events("agent.task.retry").is_empty(), "confirmed at the first delivery");
}

#[test]
fn interactive_mode_never_pastes_over_what_a_person_is_typing() {
    let env = Env::new();
    let a = agent(&env, "ib", json!({"claude": {"interactive": true}}), json!({}));
    wait_for("the CLI to start", LONG, || a.hook_events().iter().any(|h| h == "SessionStart"));
    assert!(env.tmux(&["send-keys", "-t", "=agent-ib:main", "-l", "half a thought"]).status.success());
    wait_for("the typing to show", LONG, || pane(&env, "ib").contains("> half a thought"));
    let task = a.send(json!("the task"));
    wait_for("af-wrap to hold the task", LONG, || !a.events("agent.task.held").is_empty());
    assert!(prompts(&a).is_empty());
    assert_eq!(a.waiting(), std::slice::from_ref(&task), "still in the inbox, unclaimed");
    assert!(env.tmux(&["send-keys", "-t", "=agent-ib:main", "C-u"]).status.success());
    let r = a.result(&task);
    assert!(!r.is_error, "{r:?}");
    assert_eq!(prompts(&a), ["the task"]);
}

#[test]
fn a_cli_that_dies_at_once_is_tried_a_bounded_number_of_times_and_its_error_kept() {
    let env = Env::new();
    let config = json!({"id": "bad", "type": "claude-code", "command": [double().display().to_string(), "--bogus"],
        "environment": {"CLAUDE_CONFIG_DIR": env.path("claude-config").display().to_string(),
            "CLAUDE_DOUBLE_LOG": env.path("bad.argv").display().to_string()}});
    env.create(&config.to_string());
    let a = Agent::new(&env, "bad");
    env.ok("af-spawn", &["start", "bad"]);
    // The run at start dies at once; the task then gets its own attempts.
    wait_for("the first run to end", LONG, || a.invocations().len() == 1 && a.state()["pid"].is_null());
    let r = a.ask(json!("hello"));
    assert!(r.is_error);
    assert_eq!(r.error.as_deref(), Some("cli_exited"));
    assert!(r.result.contains("unknown option '--bogus'"), "the CLI's own words: {r:?}");
    let runs = a.invocations().len();
    assert_eq!(runs, 4, "one run at start, then 3 attempts for the task");
    assert_eq!(env.status("bad"), "running");
    assert!(a.state()["pid"].is_null());
}

#[test]
fn a_stop_gives_the_task_back_and_a_killed_af_wrap_s_claim_returns_at_the_next_start() {
    let env = Env::new();
    let a = agent(&env, "s1", json!({}), json!({"CLAUDE_DOUBLE_TURN_SECS": "30"}));
    let inbox = af_spool::bus::Address::Inbox(a.id.clone()).queue(&a.spool);
    let turns = || a.hook_events().iter().filter(|h| *h == "UserPromptSubmit").count();
    let task = a.send(json!("a long job"));
    wait_for("the turn to run", LONG, || turns() == 1);
    assert!(a.waiting().is_empty(), "claimed");
    env.ok("af-spawn", &["stop", "s1"]);
    assert_eq!(a.waiting(), std::slice::from_ref(&task), "given back by the stop");
    assert_eq!(inbox.entries("new").unwrap()[0].attempts, 0, "a stop is not a failed attempt");
    assert!(!a.answered(&task));

    env.ok("af-spawn", &["start", "s1"]);
    wait_for("the task's turn again", LONG, || turns() == 2);
    assert!(a.waiting().is_empty());
    // af-wrap and its CLI killed outright: the claim stays behind, until the next af-wrap.
    let state = a.state();
    for pid in [state["wrapPid"].as_i64().unwrap(), state["pid"].as_i64().unwrap()] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    wait_for("af-wrap to be gone", LONG, || !util::alive(state["wrapPid"].as_u64().unwrap() as u32));
    assert!(a.waiting().is_empty(), "still claimed by the dead af-wrap");
    wait_for("a fresh start", LONG, || env.run("af-spawn", &["start", "s1"], None).status.success());
    wait_for("the task's turn a third time", LONG, || turns() == 3);
    env.ok("af-bus", &["interrupt", "s1"]);
    let r = a.result(&task);
    assert_eq!(r.error.as_deref(), Some("interrupted"));
    assert!(a.waiting().is_empty());
    let history = env.ok("af-bus", &["history", "s1", "--json"]);
    let acked: Vec<Value> = serde_json::from_str(&history).unwrap();
    assert_eq!(acked.len(), 1, "{history}");
    assert_eq!(acked[0]["attempts"], 1, "the killed af-wrap's claim was one failed attempt: {history}");
}

#[test]
fn refused_tool_calls_are_in_the_answer_and_fail_the_task_unless_accepted() {
    let env = Env::new();
    let a = agent(&env, "d1", json!({"claude": {"allowedTools": ["Read", "Bash(echo:*)"]}}), json!({}));
    let marker = env.path("touched");
    let r = a.ask(json!(format!("$ touch {}", marker.display())));
    assert!(!r.ok && r.is_error, "{r:?}");
    assert_eq!(r.error.as_deref(), Some("permission_denied"));
    assert_eq!(r.permission_denials, [json!({"tool": "Bash", "input": format!("touch {}", marker.display())})]);
    assert!(!marker.exists(), "the CLI refused it");
    assert_eq!(a.open_alert("claude.task").expect("an alert")["level"], "warning");
    let allowed = a.ask(json!("$ echo allowed"));
    assert!(allowed.ok && allowed.permission_denials.is_empty(), "{allowed:?}");
    assert_eq!(allowed.result, "allowed");
    // An agent whose config accepts denials answers ok, with the denials.
    let b = agent(&env, "d2", json!({"claude": {"acceptDenials": true}}), json!({}));
    let r = b.ask(json!("$ rm -rf /nothing"));
    assert!(r.ok && r.error.is_none(), "{r:?}");
    assert_eq!(r.permission_denials, [json!({"tool": "Bash", "input": "rm -rf /nothing"})]);
    // The key is validated.
    let bad = json!({"id": "d3", "type": "claude-code", "claude": {"acceptDenials": "yes"}});
    let out = env.run("af-spawn", &["create", "--json"], Some(&bad.to_string()));
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "invalid", "{err}");
    assert!(err["message"].as_str().unwrap().contains("expected a boolean"), "{err}");
    let bad = json!({"id": "d3", "type": "claude-code", "claude": {"inputAlertAfter": "soon"}});
    let err = env.fails("af-spawn", &["create", "--json"], Some(&bad.to_string()), 2);
    assert!(err.contains("claude.inputAlertAfter"), "{err}");
}

#[test]
fn one_agent_asks_another_over_the_bus_from_inside_its_turn() {
    let env = Env::new();
    let _reviewer = agent(&env, "reviewer", json!({}), json!({}));
    let author = agent(&env, "author", json!({"claude": {"allowedTools": ["Bash(af-bus request:*)"]}}), json!({}));
    // What the author's model runs with its Bash tool, as its system prompt tells it.
    let r = author.ask(json!("$ af-bus request --to reviewer --timeout 20 '\"Review src/form.ts\"'"));
    assert!(!r.is_error, "{r:?}");
    let review: Value = serde_json::from_str(&r.result).unwrap_or_else(|e| panic!("{e}: {}", r.result));
    assert_eq!(review["agent"], "reviewer");
    assert_eq!(review["result"], "echo: Review src/form.ts");
    let asked: Vec<Value> = serde_json::from_str(&env.ok("af-bus", &["history", "reviewer", "--json"])).unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!((&asked[0]["from"], &asked[0]["kind"]), (&json!("author"), &json!("request")), "{asked:?}");
}

/// The CLI's global config (`$CLAUDE_CONFIG_DIR/.claude.json`) as the real CLI keeps it: with it,
/// the double shows the real CLI's screens before its prompt (onboarding until
/// `hasCompletedOnboarding`, the trust dialog for a folder not in `projects`).
fn cli_config(env: &Env, config: Value) -> PathBuf {
    let path = env.path("claude-config/.claude.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

#[test]
fn the_trust_dialog_of_a_plain_workdir_waits_for_a_person_as_input_with_a_critical_alert() {
    let env = Env::new();
    cli_config(&env, json!({"hasCompletedOnboarding": true}));
    let dir = env.path("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let a = agent(&env, "tp", json!({"workdir": dir, "claude": {"interactive": true}}), json!({}));
    let task = a.send(json!("hello"));
    wait_for("the trust dialog as input", LONG, || a.state()["activity"] == "input");
    let asks = a.state()["inputPrompt"].as_str().unwrap().to_owned();
    assert!(asks.starts_with(&format!("Accessing workspace: {}", dir.display())), "{asks}");
    assert!(asks.contains("Quick safety check: Is this a project you created or one you trust?"), "{asks}");
    let alert = a.open_alert("claude.setup").expect("a critical alert");
    assert_eq!(alert["level"], "critical", "{alert}");
    assert!(alert["message"].as_str().unwrap().contains("trust dialog"), "{alert}");
    // Shown where a person looks: show, ls, the API's agent document.
    assert!(env.ok("af-spawn", &["show", "tp"]).contains(&format!("activity:      input: {asks}")));
    let rows: Value = serde_json::from_str(&env.ok("af-spawn", &["ls", "--json"])).unwrap();
    assert_eq!((&rows[0]["activity"], rows[0]["inputPrompt"].as_str()), (&json!("input"), Some(asks.as_str())));
    assert_eq!(a.waiting(), std::slice::from_ref(&task), "the task waits, unclaimed");
    assert_eq!(a.invocations().len(), 1, "no restart");
    // A person trusts the folder: the CLI reaches its prompt, the task runs, the alert closes.
    env.tmux(&["send-keys", "-t", "=agent-tp:main", "Enter"]);
    assert!(!a.result(&task).is_error);
    assert!(a.open_alert("claude.setup").is_none());
    assert!(a.state()["inputPrompt"].is_null(), "{}", a.state());
    assert!(a.events("agent.claude.trusted").is_empty(), "af-wrap did not answer it");
}

#[test]
fn the_trust_dialog_of_a_worktree_agentflow_made_is_answered_and_the_first_task_runs() {
    let env = Env::new();
    let cli = cli_config(&env, json!({"hasCompletedOnboarding": true}));
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    util::git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "hi\n").unwrap();
    util::git(&repo, &["add", "README"]);
    util::git(&repo, &["commit", "-q", "-m", "init"]);
    let a = agent(&env, "tw", json!({"workdir": repo, "worktree": true, "claude": {"interactive": true}}), json!({}));
    let r = a.ask(json!("hello"));
    assert!(!r.is_error, "{r:?}");
    let wt = env.home.join("worktrees/tw");
    let trusted = a.events("agent.claude.trusted");
    assert_eq!(trusted.len(), 1, "{trusted:?}");
    assert_eq!(trusted[0]["workdir"], wt.display().to_string());
    assert!(trusted[0]["text"].as_str().unwrap().contains("Is this a project you created or one you trust?"));
    assert!(a.alerts("claude.setup").is_empty());
    // The CLI remembers it, as the real one does.
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(cli).unwrap()).unwrap();
    assert_eq!(kept["projects"][wt.display().to_string()]["hasTrustDialogAccepted"], true, "{kept}");
}

#[test]
fn onboarding_and_login_screens_are_input_with_a_critical_alert_and_no_restart() {
    let env = Env::new();
    cli_config(&env, json!({}));
    let a = agent(&env, "ob", json!({"claude": {"interactive": true}}), json!({"CLAUDE_DOUBLE_MODE": "unauth"}));
    let task = a.send(json!("hello"));
    wait_for("the theme picker as input", LONG, || a.state()["activity"] == "input");
    let asks = a.state()["inputPrompt"].as_str().unwrap().to_owned();
    assert!(asks.starts_with("Choose the text style that looks best with your terminal"), "{asks}");
    let alert = a.open_alert("claude.setup").expect("a critical alert");
    assert_eq!(alert["level"], "critical");
    assert!(alert["message"].as_str().unwrap().contains("onboarding"), "{alert}");
    // A person picks the theme: the login method follows, and is shown and alerted in turn.
    env.tmux(&["send-keys", "-t", "=agent-ob:main", "Enter"]);
    wait_for("the login screen as input", LONG, || {
        a.state()["inputPrompt"].as_str().is_some_and(|p| p.contains("Select login method:"))
    });
    let login = a.alerts("claude.setup");
    assert!(login.last().unwrap()["message"].as_str().unwrap().contains("login"), "{login:?}");
    assert_eq!(a.invocations().len(), 1, "no restart loop");
    assert_eq!(env.status("ob"), "running");
    assert_eq!(a.waiting(), [task], "the task waits, unclaimed");
}

#[test]
fn an_interactive_cli_that_exits_before_its_prompt_is_a_crash_for_the_ladder_with_an_alert() {
    let env = Env::new();
    cli_config(&env, json!({"hasCompletedOnboarding": true}));
    let a = agent(&env, "of", json!({"claude": {"interactive": true}}), json!({"CLAUDE_DOUBLE_MODE": "offline"}));
    wait_for("the agent to fail", LONG, || env.status("of") == "failed");
    let reason = a.state()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("exited with code 1 before its prompt"), "{reason}");
    assert!(reason.contains("Unable to connect to Anthropic services"), "{reason}");
    assert!(reason.contains("Failed to connect to api.anthropic.com: ENOTFOUND"), "{reason}");
    let alert = a.open_alert("claude.cli").expect("a critical alert");
    assert_eq!(alert["level"], "critical");
    assert!(alert["message"].as_str().unwrap().contains("Unable to connect"), "{alert}");
    assert_eq!(a.invocations().len(), 1, "af-wrap does not start it again itself");
    // The ladder does, with its backoff: the failure is counted and a restart scheduled.
    health_check(&env, "of");
    let ladder: Value = serde_json::from_str(&util::read(&env.home.join("agents/of/health.json"))).unwrap();
    assert_eq!(ladder["consecutiveFailures"], 1, "{ladder}");
    let restarted = a.state()["restarts"] == 1;
    assert!(restarted || ladder["next"] == "restart", "{ladder}");
}

#[test]
fn the_first_interactive_task_is_taken_at_its_first_delivery() {
    let mut env = Env::new();
    env.set_env("AF_CLAUDE_CONFIRM", "2s");
    let a = agent(&env, "i1", json!({"claude": {"interactive": true}}), json!({"CLAUDE_DOUBLE_PASTE_MS": "300"}));
    let r = a.ask(json!("first task"));
    assert!(!r.is_error, "{r:?}");
    assert!(a.events("agent.task.retry").is_empty(), "the Enter after the paste was not lost");
    let r = a.ask(json!("two\nlines"));
    assert!(!r.is_error && r.result == "echo: two", "{r:?}");
    assert!(a.events("agent.task.retry").is_empty());
}
