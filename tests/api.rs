//! af-api over real HTTP on loopback, with real agents in a private tmux server: every endpoint and
//! method, every error status, the token, Host and rate-limit rules, the event stream, the
//! dashboard in headless Chromium and schemathesis against the OpenAPI document.

mod util;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use util::Env;
use util::chromium::Browser;

/// A running af-api.
struct Api {
    child: Child,
    addr: String,
    token: String,
    /// What it printed on stdout.
    stdout: String,
}

/// One HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// Checks the status and that an error is `{error, detail}`.
    #[track_caller]
    fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "{self:?}");
        if status >= 400 {
            let v = self.json();
            assert!(v["error"].is_string() && v["detail"].is_string(), "{self:?}");
        }
        self
    }
}

impl Api {
    fn start(env: &Env, args: &[&str]) -> Api {
        Api::listen(env, "127.0.0.1:0", args)
    }

    fn listen(env: &Env, listen: &str, args: &[&str]) -> Api {
        Api::spawn(env, env.cmd("af-api"), listen, args)
    }

    /// Starts `c` (af-api) and reads the address from its stdout. Its stdout is a pipe, so it
    /// holds no token: that is read from the token file.
    fn spawn(env: &Env, mut c: std::process::Command, listen: &str, args: &[&str]) -> Api {
        c.args(["--listen", listen]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("af-api");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the URL line");
        let url = line.trim();
        let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("af-api printed {url:?}"));
        let addr = rest.split_once('/').map(|(addr, _)| addr).unwrap_or_else(|| panic!("af-api printed {url:?}"));
        let file = match args.iter().position(|a| *a == "--token-file") {
            Some(i) => std::path::PathBuf::from(args[i + 1]),
            None => env.home.join("api/token"),
        };
        let token = util::read(&file).lines().next().unwrap_or("").trim().to_owned();
        Api { child, addr: addr.to_owned(), token, stdout: url.to_owned() }
    }

    /// Sends raw request bytes, returns the answer.
    fn raw(&self, request: &[u8]) -> Resp {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(90))).expect("timeout");
        s.write_all(request).expect("send");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        parse(&buf)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.raw(req.as_bytes())
    }

    /// An authorized call with a JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        let text = body.map(|b| b.to_string());
        self.request(method, path, &[("Authorization", &auth), ("Content-Type", "application/json")], text.as_deref())
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut body = buf[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Resp { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 2 + size + 2..];
    }
    out
}

const SEED_CI: &str =
    r#"{"id": "deploy-1", "type": "claude-code", "projectId": "org/repo", "capabilities": ["deployment", "testing"]}"#;

fn worker(id: &str, project: &str) -> Value {
    json!({"id": id, "type": "worker", "projectId": project, "command": ["sleep", "300"]})
}

/// A claude-code agent of project web on the Claude Code CLI double.
fn claude_double(env: &Env, id: &str) -> Value {
    let double = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-double");
    json!({"id": id, "type": "claude-code", "projectId": "web", "command": [double.display().to_string()],
        "environment": {"CLAUDE_CONFIG_DIR": env.path("claude-config").display().to_string()}})
}

fn ids(list: &Value) -> Vec<String> {
    list["agents"].as_array().expect("agents").iter().map(|a| a["id"].as_str().unwrap_or("").to_owned()).collect()
}

#[test]
fn the_seeds_ci_example_works_as_written_and_crud_agrees_with_the_cli() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    let auth = format!("Bearer {}", api.token);
    let r = api.request(
        "POST",
        "/api/agents/create",
        &[("Content-Type", "application/json"), ("Authorization", &auth)],
        Some(SEED_CI),
    );
    assert_eq!(r.expect(201).json()["created"], json!(["deploy-1"]));
    assert_eq!(env.status("deploy-1"), "created", "the CLI sees what the API made");
    env.create(&worker("w1", "batch").to_string());

    let all = api.call("GET", "/api/agents", None).expect(200).json();
    assert_eq!(ids(&all), ["deploy-1", "w1"]);
    assert_eq!(all["count"], 2);
    let org = api.call("GET", "/api/agents?project=org%2Frepo", None).expect(200).json();
    assert_eq!(ids(&org), ["deploy-1"]);
    assert_eq!(ids(&api.call("GET", "/api/agents?type=worker", None).expect(200).json()), ["w1"]);
    assert_eq!(
        ids(&api.call("GET", "/api/agents?status=created&type=claude-code", None).expect(200).json()),
        ["deploy-1"]
    );
    assert!(ids(&api.call("GET", "/api/agents?status=running", None).expect(200).json()).is_empty());

    let one = api.call("GET", "/api/agents/deploy-1", None).expect(200).json();
    assert_eq!(one["config"]["capabilities"], json!(["deployment", "testing"]));
    assert_eq!(one["state"]["status"], "created");
    assert_eq!(api.call("GET", "/api/agents/deploy-1/status", None).expect(200).json()["status"], "created");

    // PUT replaces the config of an agent that does not run.
    let new = json!({"type": "claude-code", "projectId": "org/repo", "capabilities": ["testing"]});
    let put = api.call("PUT", "/api/agents/deploy-1", Some(new)).expect(200).json();
    assert_eq!(put["config"]["capabilities"], json!(["testing"]));
    assert_eq!(env.show("deploy-1")["config"]["capabilities"], json!(["testing"]));

    api.call("DELETE", "/api/agents/deploy-1", None).expect(200);
    api.call("GET", "/api/agents/deploy-1", None).expect(404);
    env.fails("af-spawn", &["show", "deploy-1"], None, 3);
    // An array creates several at once, and ?start=true starts them.
    let both = json!([worker("a1", "p"), worker("a2", "p")]);
    api.call("POST", "/api/agents/create?start=true", Some(both)).expect(201);
    assert_eq!(env.status("a1"), "running");
    assert_eq!(env.status("a2"), "running");
    // Orderly shutdown of every agent, then cleanup.
    let down = api.call("DELETE", "/api/orchestrator", None).expect(200).json();
    assert_eq!(down["stopped"].as_array().map(Vec::len), Some(2), "{down}");
    assert_eq!(env.status("a1"), "stopped");
    api.call("DELETE", "/api/agents", None).expect(200);
}

#[test]
fn lifecycle_operations_over_patch_put_and_bulk_with_real_agents() {
    let env = Env::new();
    // A session that outlives the agents' own, so restarting the only agent never races the
    // tmux server's exit (an af-spawn flake, not af-api's).
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    api.call("POST", "/api/agents/create", Some(worker("w1", "p"))).expect(201);
    api.call("POST", "/api/agents/create", Some(worker("w2", "p"))).expect(201);
    let patch = |id: &str, body: Value| api.call("PATCH", &format!("/api/agents/{id}"), Some(body));

    assert_eq!(patch("w1", json!({"action": "start"})).expect(200).json()["status"], "running");
    assert_eq!(env.status("w1"), "running");
    patch("w1", json!({"action": "start"})).expect(409);
    assert_eq!(patch("w1", json!({"action": "pause"})).expect(200).json()["status"], "paused");
    assert_eq!(env.status("w1"), "paused");
    assert_eq!(patch("w1", json!({"action": "resume"})).expect(200).json()["status"], "running");
    let pid = env.show("w1")["state"]["pid"].clone();
    assert_eq!(patch("w1", json!({"action": "restart"})).expect(200).json()["status"], "running");
    assert_ne!(env.show("w1")["state"]["pid"], pid, "restart runs a new process");
    assert_eq!(patch("w1", json!({"action": "stop", "graceful": false})).expect(200).json()["status"], "stopped");
    assert_eq!(env.status("w1"), "stopped");

    // Checkpoints go through af-checkpoint: a real one, listed by the CLI, and a real rollback.
    let file = env.work.join("notes.txt");
    std::fs::write(&file, "before").unwrap();
    let ck = patch("w1", json!({"action": "checkpoint", "description": "-before the refactor"})).expect(200).json();
    let ckpt = ck["result"]["id"].as_str().expect("the checkpoint's id").to_owned();
    let listed = env.json("af-checkpoint", &["ls", "w1"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], ckpt.as_str());
    assert_eq!(listed[0]["description"], "-before the refactor");
    std::fs::write(&file, "after").unwrap();
    let rb = patch("w1", json!({"action": "rollback", "checkpointId": ckpt})).expect(200).json();
    assert_eq!(rb["result"]["checkpoint"], ckpt.as_str(), "{rb}");
    assert_eq!(util::read(&file), "before", "the working tree is the checkpoint's again");
    assert_eq!(rb["status"], "stopped", "a stopped agent stays stopped");
    patch("w1", json!({"action": "rollback", "checkpointId": "ck-nope"})).expect(404);
    patch("w1", json!({"action": "rollback", "checkpointId": "../x"})).expect(400);
    patch("nobody", json!({"action": "checkpoint"})).expect(404);
    patch("w1", json!({"action": "rollback"})).expect(400);
    patch("w1", json!({"action": "explode"})).expect(400);
    patch("w1", json!({"action": "stop", "graceful": "no"})).expect(400);

    // PUT status: the status wanted.
    let put =
        |id: &str, status: &str| api.call("PUT", &format!("/api/agents/{id}/status"), Some(json!({"status": status})));
    assert_eq!(put("w2", "running").expect(200).json()["action"], "start");
    assert_eq!(put("w2", "running").expect(200).json()["action"], Value::Null, "already there: nothing to do");
    assert_eq!(put("w2", "paused").expect(200).json()["status"], "paused");
    put("w2", "failed").expect(400);
    let check = api.call("POST", "/api/agents/w2/status", None).expect(200).json();
    assert_eq!(check["check"]["id"], "w2", "{check}");
    assert_eq!(check["check"]["status"], "paused", "{check}");
    assert!(check["check"]["checks"].is_array(), "{check}");

    // Bulk: one action over several agents, a result for each.
    let bulk = api
        .call("POST", "/api/agents", Some(json!({"action": "start", "ids": ["w1", "w2", "nobody"]})))
        .expect(200)
        .json();
    let statuses: Vec<u64> =
        bulk["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 409, 404], "{bulk}");
    // Rolling back a running agent stops it, restores, and starts it again.
    std::fs::write(&file, "again").unwrap();
    let rb = patch("w1", json!({"action": "rollback", "checkpointId": ckpt})).expect(200).json();
    assert_eq!((rb["result"]["restarted"].clone(), rb["status"].clone()), (json!(true), json!("running")), "{rb}");
    assert_eq!(util::read(&file), "before");
    api.call("POST", "/api/agents", Some(json!({"action": "stop", "ids": ["w1", "w2"]}))).expect(200);
    assert_eq!(env.status("w1"), "stopped");
    assert_eq!(env.status("w2"), "stopped");
    api.call("POST", "/api/agents", Some(json!({"action": "stop", "ids": ["../x"]}))).expect(400);
    api.call("DELETE", "/api/agents/w1?force=maybe", None).expect(400);
    api.call("POST", "/api/agents", Some(json!({"action": "remove", "ids": ["w1", "w2"]}))).expect(200);
    assert!(env.json("af-spawn", &["ls"]).as_array().unwrap().is_empty());
}

/// The queue `name` in af-bus stats (as the API's /api/orchestrator shows it).
fn queue<'a>(orchestrator: &'a Value, name: &str) -> &'a Value {
    let queues = orchestrator["bus"]["queues"].as_array().unwrap_or_else(|| panic!("no queues: {orchestrator}"));
    queues.iter().find(|q| q["queue"] == name).unwrap_or_else(|| panic!("no queue {name}: {orchestrator}"))
}

#[test]
fn messages_go_through_the_real_af_bus_send_receive_ack_nack_history_clear() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    env.create(&worker("w1", "p").to_string());
    let msgs = "/api/agents/w1/messages";
    let first =
        api.call("POST", msgs, Some(json!({"payload": {"task": "build"}, "priority": "high"}))).expect(201).json();
    let first_id = first["sent"]["id"].as_str().expect("a message id").to_owned();
    assert_eq!(first["sent"]["payload"], json!({"task": "build"}));
    assert_eq!(first["sent"]["priority"], "high");
    let second = api.call("POST", msgs, Some(json!({"payload": "later", "kind": "task"}))).expect(201).json();
    let second_id = second["sent"]["id"].as_str().unwrap().to_owned();
    // The CLI and the orchestrator see the same queue: two waiting, one of them high.
    let stats = env.json("af-bus", &["stats"]);
    assert_eq!(stats["totals"]["depth"], 2, "{stats}");
    let o = api.call("GET", "/api/orchestrator", None).expect(200).json();
    assert_eq!(queue(&o, "w1")["depth"], 2);
    assert_eq!(queue(&o, "w1")["pending"]["high"], 1);

    // Receive by priority, ack; a second ack of the same message is 404 (not claimed).
    let got = api.call("PUT", msgs, None).expect(200).json();
    assert_eq!(got["message"]["id"], first_id.as_str(), "high priority first: {got}");
    let ack = json!({"action": "ack", "messageId": first_id});
    api.call("PATCH", msgs, Some(ack.clone())).expect(200);
    api.call("PATCH", msgs, Some(ack)).expect(404);
    let history = api.call("GET", msgs, None).expect(200).json();
    let seen: Vec<&str> = history["messages"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(seen, [first_id.as_str()]);
    let o = api.call("GET", "/api/orchestrator", None).expect(200).json();
    assert_eq!(queue(&o, "w1")["acked"], 1);
    assert!(queue(&o, "w1")["ackRate"].as_f64().unwrap() > 0.0, "{o}");

    // Nack gives it back, with its attempts raised.
    let got = api.call("PUT", msgs, None).expect(200).json();
    assert_eq!(got["message"]["id"], second_id.as_str());
    api.call("PATCH", msgs, Some(json!({"action": "nack", "messageId": second_id}))).expect(200);
    let again = api.call("PUT", msgs, None).expect(200).json();
    assert_eq!(again["message"]["id"], second_id.as_str());
    assert_eq!(again["message"]["attempts"], 1, "{again}");
    assert_eq!(api.call("PUT", msgs, None).expect(200).json()["message"], Value::Null, "nothing left to receive");

    // DELETE clears waiting, claimed and acked messages alike.
    let cleared = api.call("DELETE", msgs, None).expect(200).json();
    assert_eq!(cleared["cleared"]["removed"], 2, "{cleared}");
    assert_eq!(api.call("GET", msgs, None).expect(200).json()["messages"], json!([]));
    assert_eq!(env.json("af-bus", &["stats"])["totals"]["depth"], 0);

    // Input is checked (by af-api or the queue operations) and answered 400; a missing agent is 404.
    api.call("POST", msgs, Some(json!({"priority": "high"}))).expect(400);
    api.call("POST", msgs, Some(json!({"payload": 1, "priority": "urgent"}))).expect(400);
    api.call("POST", msgs, Some(json!({"payload": 1, "kind": "gossip"}))).expect(400);
    api.call("PATCH", msgs, Some(json!({"action": "ack", "messageId": "../m"}))).expect(400);
    let bad = api.call("PATCH", msgs, Some(json!({"action": "ack", "messageId": "m1"}))).expect(400).json();
    assert_eq!(bad["detail"], "'m1' is not a message id", "the queue's own one line, as af-bus says it");
    api.call("PATCH", msgs, Some(json!({"action": "settle", "messageId": second_id}))).expect(400);
    api.call("GET", "/api/agents/nobody/messages", None).expect(404);
    api.call("POST", "/api/agents/nobody/messages", Some(json!({"payload": 1}))).expect(404);

    // A broadcast reaches every agent's inbox.
    env.create(&worker("w2", "p").to_string());
    let b = api.call("POST", "/api/orchestrator", Some(json!({"action": "broadcast", "payload": {"hello": 1}})));
    assert_eq!(b.expect(200).json()["action"], "broadcast");
    let o = api.call("GET", "/api/orchestrator", None).expect(200).json();
    assert_eq!((queue(&o, "w1")["depth"].clone(), queue(&o, "w2")["depth"].clone()), (json!(1), json!(1)), "{o}");
}

#[test]
fn alerts_and_health_history_come_from_the_real_af_health() {
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    api.call("POST", "/api/agents/create?start=true", Some(worker("w1", "p"))).expect(201);
    util::wait_for("a heartbeat", Duration::from_secs(10), || !env.show("w1")["heartbeat"].is_null());
    let check = api.call("POST", "/api/agents/w1/status", None).expect(200).json();
    assert_eq!(check["check"]["id"], "w1", "{check}");
    assert_eq!(check["check"]["status"], "running", "{check}");
    let history = api.call("GET", "/api/agents/w1/health", None).expect(200).json();
    let h = history["history"].as_array().expect("history");
    assert!(!h.is_empty() && h[0]["rssBytes"].is_u64() && h[0]["cpuPercent"].is_f64(), "{history}");
    assert_eq!(api.call("GET", "/api/alerts", None).expect(200).json()["alerts"], json!([]));

    // The agent dies: a check pass (POST /api/orchestrator) raises a real alert.
    let pid = env.show("w1")["state"]["pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let mut report = Value::Null;
    util::wait_for("af-health to see w1 dead", Duration::from_secs(15), || {
        report = api.call("POST", "/api/orchestrator", Some(json!({"action": "check"}))).expect(200).json();
        report["result"]["healthy"] == false
    });
    assert_eq!(report["result"]["report"]["agents"][0]["health"], "unhealthy", "{report}");
    let alerts = api.call("GET", "/api/alerts", None).expect(200).json()["alerts"].clone();
    let open = alerts.as_array().unwrap();
    assert_eq!(open.len(), 1, "{alerts}");
    assert_eq!((open[0]["agent"].as_str(), open[0]["level"].as_str()), (Some("w1"), Some("critical")), "{alerts}");
    assert_eq!(env.json("af-health", &["alerts"]), alerts, "the CLI agrees");
    let id = open[0]["id"].as_str().unwrap().to_owned();
    let acked = api.call("POST", &format!("/api/alerts/{id}/ack"), None).expect(200).json();
    assert_eq!(acked["alert"]["acknowledged"], true, "{acked}");
    assert_eq!(env.json("af-health", &["alerts"])[0]["acknowledged"], true);
    assert!(!api.call("GET", "/api/alerts?all=true", None).expect(200).json()["alerts"].as_array().unwrap().is_empty());
    api.call("POST", "/api/alerts/al-nope/ack", None).expect(404);
    api.call("POST", "/api/alerts/..%2Fx/ack", None).expect(400);
    api.call("GET", "/api/alerts?all=maybe", None).expect(400);
    api.call("GET", "/api/agents/nobody/health", None).expect(404);
    api.call("POST", "/api/agents/nobody/status", None).expect(404);
}

#[test]
fn orchestrator_status_operations_and_configuration() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    env.create(&worker("w1", "p").to_string());
    let o = api.call("GET", "/api/orchestrator", None).expect(200).json();
    assert_eq!(o["agents"]["total"], 1);
    assert_eq!(o["agents"]["byStatus"]["created"], 1);
    assert!(o["system"]["memTotalBytes"].as_u64().unwrap() > 0);
    assert_eq!(o["bus"]["totals"]["depth"], 0, "{o}");
    assert_eq!(api.call("POST", "/api/orchestrator", Some(json!({"action": "gc"}))).expect(200).json()["action"], "gc");
    api.call("POST", "/api/orchestrator", Some(json!({"action": "reboot"}))).expect(400);
    api.call("POST", "/api/orchestrator", Some(json!({"action": "broadcast"}))).expect(400);
    let conf = api.call("PUT", "/api/orchestrator", Some(json!({"rateLimit": 50, "burst": 60}))).expect(200).json();
    assert_eq!(conf, json!({"rateLimit": 50.0, "burst": 60}));
    api.call("PUT", "/api/orchestrator", Some(json!({"rateLimit": -1}))).expect(400);
    api.call("PUT", "/api/orchestrator", Some(json!({"colour": "blue"}))).expect(400);
    assert_eq!(api.call("GET", "/api/orchestrator", None).json()["api"]["config"]["burst"], 60);
}

#[test]
fn orchestrator_reports_the_hosts_cpu_memory_load_and_the_spools_disk() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let api = Api::start(&env, &[]);
    let sys = api.call("GET", "/api/orchestrator", None).expect(200).json()["system"].clone();
    assert!(sys["cpus"].as_u64().unwrap() >= 1, "{sys}");
    let (total, available) = (sys["memTotalBytes"].as_u64().unwrap(), sys["memAvailableBytes"].as_u64().unwrap());
    assert!(total > 0 && available <= total, "{sys}");
    assert!(sys["swapUsedBytes"].as_u64().unwrap() <= sys["swapTotalBytes"].as_u64().unwrap(), "{sys}");
    let load = sys["loadAverage"].as_array().unwrap();
    assert!(load.len() == 3 && load.iter().all(|l| l.as_f64().is_some_and(|l| l >= 0.0)), "{sys}");
    // The spool's filesystem: the one whose mount point is on the spool's device, listed once.
    let spool = &sys["spoolDisk"];
    let mount = spool["mountPoint"].as_str().unwrap_or_else(|| panic!("no spoolDisk: {sys}"));
    let dev = |p: &std::path::Path| std::fs::metadata(p).unwrap().dev();
    assert_eq!(dev(std::path::Path::new(mount)), dev(&env.home), "{sys}");
    assert!(env.home.canonicalize().unwrap().starts_with(mount), "{sys}");
    assert!(spool["totalBytes"].as_u64().unwrap() > 0, "{sys}");
    assert!(spool["availableBytes"].as_u64().unwrap() <= spool["totalBytes"].as_u64().unwrap(), "{sys}");
    let disks = sys["disks"].as_array().unwrap();
    assert_eq!(disks.iter().filter(|d| d["mountPoint"] == mount).count(), 1, "{sys}");
    // CPU usage needs two readings apart: af-api takes the first when it starts, so the figure
    // comes within a sample or two (samples are at most a second apart).
    let mut cpu = sys["cpuUsagePercent"].clone();
    util::wait_for("a CPU usage figure", Duration::from_secs(10), || {
        cpu = api.call("GET", "/api/orchestrator", None).expect(200).json()["system"]["cpuUsagePercent"].clone();
        cpu.is_number()
    });
    assert!((0.0..=100.0).contains(&cpu.as_f64().unwrap()), "{cpu}");
}

#[test]
fn every_error_status_and_bad_input_changes_nothing() {
    let env = Env::new();
    let api = Api::start(&env, &["--rate-limit", "0"]);
    env.create(&worker("w1", "p").to_string());
    let before = env.json("af-spawn", &["ls"]);
    let auth = format!("Bearer {}", api.token);
    let json_ct = ("Content-Type", "application/json");
    // 400: malformed JSON, wrong types, bad ids, unknown fields.
    api.request("POST", "/api/agents/create", &[("Authorization", &auth), json_ct], Some("{\"id\": ")).expect(400);
    api.call("POST", "/api/agents/create", Some(json!({"id": "x", "type": "robot"}))).expect(400);
    api.call("POST", "/api/agents/create", Some(json!({"id": "../x", "type": "worker"}))).expect(400);
    api.call("POST", "/api/agents/create", Some(json!({"id": "x", "type": "worker", "maxConcurrentTasks": "3"})))
        .expect(400);
    api.call("POST", "/api/agents/create", Some(json!("just a string"))).expect(400);
    api.call("POST", "/api/agents/create", None).expect(400);
    api.call("GET", "/api/agents/..%2F..%2Fetc", None).expect(400);
    api.call("GET", "/api/agents/%2Dflag", None).expect(400);
    api.call("GET", "/api/agents?type=robot", None).expect(400);
    api.call("GET", "/api/agents?status=asleep", None).expect(400);
    api.call("GET", "/api/agents?host=-flag", None).expect(400);
    api.call("GET", "/api/agents?cluster=maybe", None).expect(400);
    api.call("PATCH", "/api/agents/w1", Some(json!([1, 2]))).expect(400);
    api.call("PUT", "/api/agents/w1", Some(json!({"id": "other", "type": "worker"}))).expect(400);
    api.call("PUT", "/api/agents/w1", Some(json!({"type": "worker", "surprise": 1}))).expect(400);
    // 401: no token, a wrong one, another scheme.
    api.request("GET", "/api/agents", &[], None).expect(401);
    let r = api.request("GET", "/api/agents", &[("Authorization", "Bearer wrong-token-wrong-token")], None).expect(401);
    assert!(r.header("WWW-Authenticate").is_some());
    api.request("GET", "/api/agents", &[("Authorization", &format!("Basic {}", api.token))], None).expect(401);
    api.request("GET", &format!("/api/agents?token={}", api.token), &[], None).expect(401);
    // 403: a Host that is not ours (DNS rebinding), even with the token.
    let rebinding = format!(
        "GET /api/agents HTTP/1.1\r\nHost: evil.example:{}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n",
        api.addr.rsplit(':').next().unwrap()
    );
    api.raw(rebinding.as_bytes()).expect(403);
    api.raw(b"GET /healthz HTTP/1.0\r\n\r\n").expect(403);
    // 404 and 405.
    api.call("GET", "/api/nothing", None).expect(404);
    api.call("GET", "/api/agents/nobody", None).expect(404);
    // No AF_REDIS_URL: no cluster to list.
    api.call("GET", "/api/agents?cluster=1", None).expect(404);
    api.call("PATCH", "/api/agents/nobody", Some(json!({"action": "start"}))).expect(404);
    let r = api.call("DELETE", "/api/orchestrator/x", None).expect(404);
    assert_eq!(r.json()["error"], "not_found");
    let r = api.call("PATCH", "/api/agents/create", None).expect(405);
    assert_eq!(r.header("Allow"), Some("POST"));
    assert_eq!(api.call("POST", "/api/agents/w1/status/x", None).status, 404);
    assert_eq!(api.call("DELETE", "/api/agents/w1/status", None).expect(405).header("Allow"), Some("GET, POST, PUT"));
    // 409: exists already.
    api.call("POST", "/api/agents/create", Some(worker("w1", "p"))).expect(409);
    // 413: judged from Content-Length, before reading (no body is sent at all here).
    let huge = format!(
        "POST /api/agents/create HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n",
        api.addr
    );
    api.raw(huge.as_bytes()).expect(413);
    let big = format!("{{\"id\":\"big\",\"type\":\"worker\",\"taskId\":\"{}\"}}", "x".repeat(1 << 20));
    api.request("POST", "/api/agents/create", &[("Authorization", &auth), json_ct], Some(&big)).expect(413);
    // 415: not JSON.
    api.request(
        "POST",
        "/api/agents/create",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        Some(SEED_CI),
    )
    .expect(415);
    api.request("POST", "/api/agents/create", &[("Authorization", &auth)], Some(SEED_CI)).expect(415);
    assert_eq!(env.json("af-spawn", &["ls"]), before, "bad input changed nothing");

    // 429 with Retry-After, per client.
    let slow = Api::start(&env, &["--rate-limit", "0.5", "--burst", "3"]);
    for _ in 0..3 {
        slow.call("GET", "/api/agents", None).expect(200);
    }
    let r = slow.call("GET", "/api/agents", None).expect(429);
    assert!(r.header("Retry-After").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{r:?}");
    // /healthz answers without a token.
    assert_eq!(api.request("GET", "/healthz", &[], None).expect(200).json(), json!({"ok": true}));
}

#[test]
fn token_is_made_once_with_mode_0600_loopback_is_the_default_and_changes_are_audited() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let first = Api::start(&env, &[]);
    // stdout is a pipe here, as under systemd: the address, never the token (it is in its file).
    assert_eq!(first.stdout, format!("http://{}/", first.addr));
    let unit = util::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/systemd/af-api.service"));
    assert!(unit.contains("\nStandardOutput=null\n"), "the unit keeps af-api's stdout out of the journal");
    let token_path = env.home.join("api/token");
    let mode = std::fs::metadata(&token_path).expect("token file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(first.token.len() >= 32);
    drop(first);
    let again = Api::start(&env, &[]);
    assert_eq!(util::read(&token_path).trim(), again.token, "the token is kept across starts");

    // Beyond loopback only with a token file.
    let out = env.run("af-api", &["--listen", "0.0.0.0:0"], None);
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("af-api: ") && err.trim_end().lines().count() == 1 && err.contains("--token-file"),
        "{err}"
    );
    let file = env.path("token");
    std::fs::write(&file, "0123456789abcdef-this-is-a-test-token\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run("af-api", &["--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(4), "a token others can read is refused: {}", util::describe(&out));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wide = Api::listen(&env, "0.0.0.0:0", &["--token-file", file.to_str().unwrap()]);
    assert_eq!(wide.token, "0123456789abcdef-this-is-a-test-token");
    wide.call("GET", "/api/agents", None).expect(200);
    std::fs::write(&file, "short\n").unwrap();
    let out = env.run("af-api", &["--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    let out = env.run("af-api", &["--listen", "not an address"], None);
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));

    // Audit: every mutating call (accepted or not), never a read.
    again.call("POST", "/api/agents/create", Some(worker("w1", "p"))).expect(201);
    again.call("PATCH", "/api/agents/w1", Some(json!({"action": "explode"}))).expect(400);
    again.request("DELETE", "/api/agents/w1", &[], None).expect(401);
    again.call("GET", "/api/agents", None).expect(200);
    let audit: Vec<Value> = util::read(&env.home.join("events.log"))
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "api.request")
        .collect();
    let seen: Vec<(String, u64)> = audit
        .iter()
        .map(|e| (e["detail"]["method"].as_str().unwrap().to_owned(), e["detail"]["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, [("POST".into(), 201), ("PATCH".into(), 400), ("DELETE".into(), 401)]);
    let d = &audit[0]["detail"];
    assert_eq!(d["client"], "127.0.0.1");
    assert_eq!(d["endpoint"], "/api/agents/create");
    assert_eq!(d["bodySha256"].as_str().unwrap().len(), 64);
    assert_eq!(d["tokenId"].as_str().unwrap().len(), 12);
    assert!(!d["tokenId"].as_str().unwrap().is_empty() && !again.token.contains(d["tokenId"].as_str().unwrap()));
    assert_eq!(audit[2]["detail"]["tokenId"], "-");
    assert!(audit[0]["time"].is_string());
}

/// Reads Server-Sent Events until `want` shows in a `data:` line.
fn read_events_until(stream: &mut BufReader<TcpStream>, want: &str) -> Vec<String> {
    read_sse_until(stream, |_, d| d.contains(want)).into_iter().map(|(_, _, d)| d).collect()
}

#[test]
fn events_stream_live_from_the_event_log_and_slow_clients_starve_nobody() {
    let env = Env::new();
    let api = Api::start(&env, &["--workers", "4"]);
    // 100 idle connections (some with half a request) do not hold the 4 workers.
    let idle: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = TcpStream::connect(&api.addr).expect("connect");
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /api/agents HTTP/1.1\r\nHost: loc");
            }
            s
        })
        .collect();
    api.call("GET", "/api/agents", None).expect(200);
    api.request("GET", "/api/events", &[], None).expect(401);

    let mut s = TcpStream::connect(&api.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    write!(s, "GET /api/events?token={} HTTP/1.1\r\nHost: {}\r\n\r\n", api.token, api.addr).unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // A change made with the CLI shows up on the stream, with its id (a byte offset).
    env.create(&worker("w1", "p").to_string());
    let seen = read_events_until(&mut reader, "agent.created");
    let ev: Value = serde_json::from_str(seen.last().unwrap()).unwrap();
    assert_eq!(ev["agent"], "w1");
    env.ok("af-spawn", &["start", "w1"]);
    read_events_until(&mut reader, "agent.running");
    // API calls are audited, but the audit stays off the stream unless asked for.
    api.call("PATCH", "/api/agents/w1", Some(json!({"action": "stop"}))).expect(200);
    let seen = read_events_until(&mut reader, "agent.stopped");
    assert!(seen.iter().all(|d| !d.contains("api.request")), "{seen:?}");
    // Resuming from an offset replays what came after it.
    let r = api.call("GET", "/api/events?since=x", None).expect(400);
    drop(r);
    let mut s2 = TcpStream::connect(&api.addr).expect("connect");
    s2.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    write!(
        s2,
        "GET /api/events?since=0&audit=true HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        api.addr, api.token
    )
    .unwrap();
    let replay = read_events_until(&mut BufReader::new(s2), "api.request");
    assert!(replay[0].contains("agent.created"), "{replay:?}");
    // ?recent=N starts with the last N events.
    let last = util::read(&env.home.join("events.log")).lines().last().unwrap().to_owned();
    let mut s3 = TcpStream::connect(&api.addr).expect("connect");
    s3.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    write!(
        s3,
        "GET /api/events?recent=1&audit=true HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        api.addr, api.token
    )
    .unwrap();
    let kind: Value = serde_json::from_str(&last).unwrap();
    let tail = read_events_until(&mut BufReader::new(s3), kind["kind"].as_str().unwrap());
    assert_eq!(tail, [last], "only the last event is replayed");
    drop(idle);
}

/// Opens an event stream with `query` and reads its status line.
fn open_events(api: &Api, query: &str) -> BufReader<TcpStream> {
    open_sse(api, &format!("/api/events?{query}"), "")
}

/// Reads Server-Sent Events until the hook event of `session`; returns the hook events' ids and
/// sessions.
fn read_hooks_until(stream: &mut BufReader<TcpStream>, session: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut id = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut line = String::new();
        match stream.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                if let Some(i) = line.strip_prefix("id: ") {
                    id = i.trim().to_owned();
                }
                if let Some(d) = line.strip_prefix("data: ") {
                    let e: Value = serde_json::from_str(d).unwrap();
                    if e["kind"] == "agent.claude" {
                        let s = e["detail"]["input"]["session_id"].as_str().unwrap_or_default().to_owned();
                        seen.push((id.clone(), s.clone()));
                        if s == session {
                            return seen;
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading events: {e}"),
        }
    }
    panic!("never saw the hook of {session} in the event stream; saw {seen:?}");
}

#[test]
fn the_event_stream_follows_the_log_across_rotations_and_resumes_by_id() {
    let mut env = Env::new();
    env.set_env("AF_EVENTS_MAX_BYTES", "16KB");
    env.set_env("AF_EVENTS_KEEP", "20");
    env.create(&worker("w1", "p").to_string());
    let api = Api::start(&env, &[]);
    let mut stream = open_events(&api, "audit=false");
    // Hook events of 100 KB each: a few fit in a generation, capped.
    let sessions: Vec<String> = (0..20).map(|i| format!("s-{i:02}")).collect();
    for s in &sessions {
        let input = json!({"hook_event_name": "PostToolUse", "session_id": s, "tool_response": "o".repeat(100_000)});
        env.ok_in("af-wrap", &["--hook", "w1"], Some(&input.to_string()));
    }
    let seen = read_hooks_until(&mut stream, "s-19");
    assert!(env.home.join("events.log.3").exists(), "the log rotated under the stream");
    assert_eq!(seen.iter().map(|(_, s)| s).collect::<Vec<_>>(), sessions.iter().collect::<Vec<_>>());
    // An id from before the rotations resumes right after its event, in a generation since rotated.
    let mut resumed = open_events(&api, &format!("since={}", seen[4].0));
    let replay = read_hooks_until(&mut resumed, "s-19");
    assert_eq!(replay.iter().map(|(_, s)| s).collect::<Vec<_>>(), sessions[5..].iter().collect::<Vec<_>>());
    assert_eq!(replay, seen[5..], "the same ids on every stream");
    // The last N events, over the generations.
    let mut recent = open_events(&api, "recent=7");
    let tail = read_hooks_until(&mut recent, "s-19");
    assert_eq!(tail, seen[13..]);
}

#[test]
fn openapi_document_matches_the_routes_and_the_dashboard_is_self_contained() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    let doc = api.request("GET", "/api/openapi.json", &[], None).expect(200).json();
    assert_eq!(doc["openapi"], "3.0.3");
    let all = ["get", "put", "post", "delete", "patch"];
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/api/events" {
            continue; // a stream: checked above
        }
        let concrete = path
            .replace("{id}", "nobody")
            .replace("{alertId}", "a1")
            .replace("{ckpt}", "ck-1")
            .replace("{requestId}", "r1");
        for m in all {
            let r = api.call(&m.to_uppercase(), &concrete, Some(json!({})));
            if let Some(op) = item.get(m) {
                operations += 1;
                let documented = op["responses"].as_object().unwrap();
                assert!(
                    documented.contains_key(&r.status.to_string()),
                    "{m} {path}: {} is not documented: {r:?}",
                    r.status
                );
                assert_ne!(r.status, 405, "{m} {path}");
            } else {
                assert_eq!(r.status, 405, "{m} {path} is not documented, so it must be 405: {r:?}");
            }
        }
    }
    assert_eq!(operations, 39);
    let page = api.request("GET", "/", &[], None).expect(200);
    assert!(page.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(page.header("Content-Security-Policy").unwrap().contains("default-src 'self'"));
    let body = page.body.replace("http://www.w3.org/2000/svg", "");
    for external in ["http://", "https://", "//cdn", "<script src", "<link", "@import"] {
        assert!(!body.contains(external), "the dashboard fetches {external} from elsewhere");
    }
    assert!(page.body.contains("new EventSource(\"/api/events?"));
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    if !util::have_tool("schemathesis", "pip install schemathesis") {
        return;
    }
    let env = Env::new();
    let api = Api::start(&env, &["--rate-limit", "0"]);
    // Every operation is fuzzed: af-bus, af-health and af-checkpoint are real tools now. The
    // document's PATCH examples name deploy-1: it exists, so its checkpoint is a real one.
    env.create(&worker("deploy-1", "p").to_string());
    // The event stream never ends: schemathesis reads it for 2 s or 3 events, then checks each
    // event against the document's schema of one event.
    let config = env.work.join("schemathesis.toml");
    std::fs::write(
        &config,
        "[[operations]]\ninclude-path = \"/api/events\"\nrequest-timeout = 2\nmax-stream-events = 3\n\
         [[operations]]\ninclude-path = \"/api/agents/{id}/output/stream\"\nrequest-timeout = 2\nmax-stream-events = 3\n",
    )
    .expect("schemathesis.toml");
    let mut st = std::process::Command::new("schemathesis");
    st.args(["--config-file", config.to_str().expect("path")]);
    st.args(["run", &format!("http://{}/api/openapi.json", api.addr)]);
    let out = st
        .args(["-H", &format!("Authorization: Bearer {}", api.token)])
        .args(["-n", "4", "--phases", "examples,coverage,fuzzing,stateful"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--request-timeout", "70", "--generation-deterministic", "--max-failures", "5"])
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        .current_dir(&env.work)
        .output()
        .expect("schemathesis");
    assert!(out.status.success(), "schemathesis found problems:\n{}", util::describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    let count = |label: &str| {
        report.lines().find_map(|l| l.trim().strip_prefix(label)).map(|n| n.trim().to_owned()).unwrap_or_default()
    };
    assert_eq!(count("Selected:"), "39/39", "every operation, the event streams too:\n{report}");
    assert_eq!(count("Tested:"), "39", "every operation was tested:\n{report}");
    let events = util::read(&env.home.join("events.log"));
    assert!(
        events.lines().any(|l| l.contains("\"checkpoint.created\"") && l.contains("deploy-1")),
        "PATCH checkpoint made a real checkpoint during the fuzzing"
    );
}

#[test]
fn the_dashboard_in_chromium_starts_an_agent_and_shows_it_live() {
    if !util::have_tool("chromium", "Debian: apt-get install chromium") {
        return;
    }
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    env.create(&worker("w1", "web").to_string());
    let mut page = Browser::open(&env.path("chromium-profile"), &format!("http://{}/#token={}", api.addr, api.token));
    let status = r#"(document.querySelector('[data-agent="w1"] .status') || {}).textContent || null"#;
    page.wait_until("w1 as created", status, json!("created"));
    page.wait_until("the event stream open", "document.getElementById('live').textContent", json!("live"));
    assert_eq!(page.eval("location.hash"), json!(""), "the token leaves the address bar");
    let loaded = page.eval("window.af.loadedAt");
    // Start it with the page's own button.
    page.eval(r#"document.querySelector('button[data-act="start"][data-id="w1"]').click(); true"#);
    page.wait_until("w1 running", status, json!("running"));
    assert_eq!(env.status("w1"), "running", "the page started it for real");
    page.wait_until(
        "the start in the event timeline",
        "!!document.querySelector('#events [data-kind=\"agent.running\"]')",
        json!(true),
    );
    // A change made elsewhere (the CLI) shows up live, without a reload.
    env.ok("af-spawn", &["stop", "w1"]);
    page.wait_until("w1 stopped", status, json!("stopped"));
    assert_eq!(page.eval("window.af.loadedAt"), loaded, "the page was not reloaded");
    assert!(page.eval("window.af.sseEvents").as_u64().unwrap_or(0) >= 2);
}

#[test]
fn a_cli_waiting_for_a_person_shows_its_prompt_in_the_api_and_on_the_dashboard_card() {
    if !util::have_tool("chromium", "Debian: apt-get install chromium") {
        return;
    }
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    // An interactive claude-code agent (the test double) in a folder its CLI does not trust yet:
    // the trust dialog waits for a person.
    let config_dir = env.path("claude-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join(".claude.json"), r#"{"hasCompletedOnboarding": true}"#).unwrap();
    let dir = env.path("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let double = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-double");
    let claude = json!({"id": "c1", "type": "claude-code", "workdir": dir, "claude": {"interactive": true},
        "command": [double.display().to_string()],
        "environment": {"CLAUDE_CONFIG_DIR": config_dir.display().to_string()}});
    api.call("POST", "/api/agents/create?start=true", Some(claude)).expect(201);
    let asks = "Quick safety check: Is this a project you created or one you trust?";
    util::wait_for("the trust dialog in the API", Duration::from_secs(20), || {
        let doc = api.call("GET", "/api/agents/c1", None).expect(200).json();
        doc["state"]["activity"] == "input" && doc["state"]["inputPrompt"].as_str().is_some_and(|p| p.contains(asks))
    });
    let mut page = Browser::open(&env.path("chromium-profile"), &format!("http://{}/#token={}", api.addr, api.token));
    let card = r#"((document.querySelector('[data-agent="c1"] .asks') || {}).textContent || '')"#;
    page.wait_until("the prompt on c1's card", &format!("{card}.includes({})", json!(asks)), json!(true));
}

#[test]
fn the_dashboard_shows_real_queues_alerts_health_history_and_cost() {
    if !util::have_tool("chromium", "Debian: apt-get install chromium") {
        return;
    }
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    // A queue with two waiting messages (q1 is never started, so nothing takes them).
    env.create(&worker("q1", "web").to_string());
    for n in 0..2 {
        api.call("POST", "/api/agents/q1/messages", Some(json!({"payload": n}))).expect(201);
    }
    // A claude-code agent (the Claude Code test double) that has done one task: it cost $0.01.
    let claude = claude_double(&env, "c1");
    api.call("POST", "/api/agents/create?start=true", Some(claude)).expect(201);
    // A task through the bus, as anyone would send it; request waits for the turn's answer.
    let answer = env.ok("af-bus", &["request", "--to", "c1", "--timeout", "20", r#""hello""#]);
    assert!(answer.contains("\"isError\":false"), "{answer}");
    util::wait_for("c1's cost", Duration::from_secs(10), || env.show("c1")["state"]["costUsd"] == 0.01);
    // A worker with health history, then dead, with an open alert.
    api.call("POST", "/api/agents/create?start=true", Some(worker("w1", "web"))).expect(201);
    util::wait_for("a heartbeat", Duration::from_secs(10), || !env.show("w1")["heartbeat"].is_null());
    // One check pass records CPU and RSS in the history (its verdict does not matter here).
    env.run("af-health", &["check", "w1"], None);
    let pid = env.show("w1")["state"]["pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    util::wait_for("an alert on w1", Duration::from_secs(15), || {
        env.run("af-health", &["check", "w1"], None).status.code() == Some(1)
            && env.json("af-health", &["alerts"]).as_array().is_some_and(|a| !a.is_empty())
    });
    let alert = env.json("af-health", &["alerts"])[0]["id"].as_str().unwrap().to_owned();

    let mut page = Browser::open(&env.path("chromium-profile"), &format!("http://{}/#token={}", api.addr, api.token));
    let depth = r#"(document.querySelector('[data-queue="q1"] .depth') || {}).textContent || null"#;
    page.wait_until("q1's depth from af-bus stats", depth, json!("2"));
    page.wait_until(
        "c1's cost",
        r#"(document.querySelector('[data-agent="c1"] .cost') || {}).textContent || null"#,
        json!("$0.0100"),
    );
    assert_eq!(
        page.eval(r#"!!document.querySelector('[data-agent="q1"] .cost')"#),
        json!(false),
        "workers have no cost"
    );
    page.wait_until(
        "w1's sparklines seeded from af-health history",
        r#"Number((document.querySelector('[data-agent="w1"] .spark') || {dataset: {}}).dataset.seeded || 0) > 0"#,
        json!(true),
    );
    let row = format!(
        r#"(document.querySelector('[data-alert="{alert}"]') || {{dataset: {{}}}}).dataset.acknowledged || null"#
    );
    page.wait_until("the open alert", &row, json!("false"));
    page.eval(&format!(r#"document.querySelector('button[data-ack="{alert}"]').click(); true"#));
    page.wait_until("the alert acknowledged", &row, json!("true"));
    assert_eq!(env.json("af-health", &["alerts"])[0]["acknowledged"], true, "the page acked it for real");
    // A message sent elsewhere (the CLI) shows in the depth without a reload.
    env.ok("af-bus", &["send", "--to", "q1", "3"]);
    page.wait_until("q1's new depth", depth, json!("3"));
    // The host panel: the machine's memory and the spool's disk, as the API reports them.
    let sys = api.call("GET", "/api/orchestrator", None).expect(200).json()["system"].clone();
    page.wait_until(
        "the host's memory",
        r#"(document.querySelector('#host [data-host="memory"]') || {dataset: {}}).dataset.total || null"#,
        json!(sys["memTotalBytes"].to_string()),
    );
    page.wait_until(
        "the spool's disk",
        r#"(document.querySelector('#host [data-spool="true"]') || {dataset: {}}).dataset.disk || null"#,
        sys["spoolDisk"]["mountPoint"].clone(),
    );
    assert_eq!(page.eval(r#"!!document.querySelector('#host [data-spool="true"] .bar')"#), json!(true), "its bar");
}

/// Makes the docs' screenshots from a real run (`scripts/screenshots`, which runs this ignored
/// test): `dashboard.png` (the grid), `dashboard-detail.png` (a claude-code agent's detail view on
/// the CLI double: output, conversation, cost, checkpoints with a diff) and `dashboard-flow.png`
/// (the message flow after a burst), in `$AF_SCREENSHOTS_DIR` (default docs/).
#[test]
#[ignore]
fn screenshots_of_the_grid_the_detail_view_and_the_message_flow() {
    let mut env = Env::new();
    env.set_env("AF_HEARTBEAT_INTERVAL", "500ms");
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &["--rate-limit", "0"]);
    // A claude-code agent on the CLI double with a budget, in a working tree with a checkpoint.
    let dir = env.path("web-app");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/app.js"), "export function greet(name) {\n  return 'Hello ' + name;\n}\n").unwrap();
    std::fs::write(dir.join("README.md"), "# web-app\n\nA small web app.\n").unwrap();
    let mut claude = claude_double(&env, "claude-dev-001");
    claude["projectId"] = json!("web-app");
    claude["workdir"] = json!(dir);
    claude["budgetUsd"] = json!(2.0);
    api.call("POST", "/api/agents/create?start=true", Some(claude)).expect(201);
    for ask in ["summarize src/app.js", "add a farewell function"] {
        env.ok("af-bus", &["request", "--to", "claude-dev-001", "--timeout", "20", &json!(ask).to_string()]);
    }
    api.call("POST", "/api/agents/claude-dev-001/checkpoints", Some(json!({"description": "before the farewell"})))
        .expect(201);
    std::fs::write(
        dir.join("src/app.js"),
        "export function greet(name) {\n  return `Hello, ${name}!`;\n}\n\nexport function farewell(name) {\n  return `Goodbye, ${name}.`;\n}\n",
    )
    .unwrap();
    // Workers: one printing coloured progress, a task worker, a paused one, a monitor.
    let printer = r#"i=0; while :; do i=$((i+1)); printf '\033[32m✔\033[0m batch %d: \033[1m%d\033[0m rows \033[36m(%d ms)\033[0m\n' $i $((i*128)) $((40+i%17)); j=0; while [ $j -lt 20000 ]; do j=$((j+1)); done; sleep 0.4; done"#;
    let agents = [
        json!({"id": "worker-batch-001", "type": "worker", "projectId": "data-processing", "command": ["sh", "-c", printer]}),
        json!({"id": "build-worker", "type": "worker", "projectId": "web-app", "taskCommand": ["sh", "-c", "sleep 0.05; cat"]}),
        json!({"id": "worker-002", "type": "worker", "projectId": "data-processing", "command": ["sleep", "600"]}),
        json!({"id": "monitor", "type": "monitor", "projectId": "ops", "command": ["sleep", "600"]}),
    ];
    api.call("POST", "/api/agents/create?start=true", Some(Value::Array(agents.to_vec()))).expect(201);
    api.call("PATCH", "/api/agents/worker-002", Some(json!({"action": "pause"}))).expect(200);
    // A bus burst: a planner and the CLI hand build-worker tasks it answers; one message to the
    // monitor expires unread (a dead letter: a stuck queue).
    let tasks =
        |n: usize| -> String { (0..n).map(|i| format!("{}\n", json!({"job": format!("build-{i}")}))).collect() };
    for (sender, lines) in [("planner", tasks(24)), ("claude-dev-001", tasks(12))] {
        let mut c = env.cmd("af-bus");
        c.env("AF_AGENT_ID", sender).args(["send", "--batch", "--kind", "task", "--to", "build-worker"]);
        c.stdin(Stdio::piped()).stdout(Stdio::null());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
    }
    env.ok("af-bus", &["send", "--to", "monitor", "--ttl", "0.01", r#""disk check""#]);
    std::thread::sleep(Duration::from_millis(50));
    api.call("PUT", "/api/agents/monitor/messages", None).expect(200);
    util::wait_for("the burst answered", Duration::from_secs(60), || {
        let flow = api.call("GET", "/api/flow?window=300", None).expect(200).json();
        flow["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["to"] == "build-worker")
            .map(|e| e["count"].as_u64().unwrap())
            .sum::<u64>()
            == 36
    });

    let out = std::env::var_os("AF_SCREENSHOTS_DIR")
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"), std::path::PathBuf::from);
    std::fs::create_dir_all(&out).unwrap();
    let url = format!("http://{}/#token={}", api.addr, api.token);
    let mut page = Browser::open_sized(&env.path("chromium-profile"), &url, 1440, 900);
    page.wait_until("the grid", "document.getElementById('shown').textContent", json!("5 of 5"));
    std::thread::sleep(Duration::from_secs(12)); // sparklines fill from heartbeats as they come
    std::fs::write(out.join("dashboard.png"), page.screenshot()).unwrap();

    page.eval("location.hash = 'agent=claude-dev-001'; true");
    page.wait_until(
        "the conversation",
        "document.querySelectorAll('#conv-list [data-role=\"assistant\"]').length",
        json!(2),
    );
    page.wait_until("the checkpoint", "!!document.querySelector('#ckpts button.diff')", json!(true));
    page.eval("document.querySelector('#ckpts button.diff').click(); true");
    page.wait_until("the diff", "document.getElementById('diff').dataset.state", json!("shown"));
    std::thread::sleep(Duration::from_secs(2)); // the health charts
    std::fs::write(out.join("dashboard-detail.png"), page.screenshot()).unwrap();

    page.eval("closeAgent(); document.getElementById('flow-window').value = '300'; document.getElementById('tab-flow').click(); true");
    page.wait_until(
        "the burst's edges",
        "document.querySelectorAll('#flow-svg path[data-edge]').length >= 3",
        json!(true),
    );
    page.wait_until(
        "the monitor's queue stuck",
        "(document.querySelector('#flow-svg [data-node=\"monitor\"]') || {dataset: {}}).dataset.stuck || null",
        json!("true"),
    );
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(out.join("dashboard-flow.png"), page.screenshot()).unwrap();
}

#[test]
fn killing_af_api_mid_change_loses_nothing_and_a_new_one_carries_on() {
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let mut api = Api::start(&env, &[]);
    api.call("POST", "/api/agents/create", Some(worker("w1", "p"))).expect(201);
    let (addr, token) = (api.addr.clone(), api.token.clone());
    // A start under way when af-api dies: af-spawn runs in its own process group and finishes.
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).expect("connect");
        let body = r#"{"action":"start"}"#;
        let req = format!(
            "PATCH /api/agents/w1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    });
    util::wait_for("the start to begin", Duration::from_secs(10), || {
        env.json("af-spawn", &["ls"])[0]["status"] != "created"
    });
    let _ = api.child.kill();
    let _ = api.child.wait();
    client.join().expect("client");
    util::wait_for("w1 running without af-api", Duration::from_secs(15), || env.status("w1") == "running");
    let again = Api::start(&env, &[]);
    assert_eq!(again.token, api.token);
    let list = again.call("GET", "/api/agents", None).expect(200).json();
    assert_eq!(list["agents"][0]["status"], "running");
}

// Faults found by attacking af-api (issue 13): descriptors, giant and slow requests, ambiguous
// framing, keep-alive under load. Real af-api, real sockets, loopback only.

/// A figure from /proc/PID/status, in kB.
fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = util::read(std::path::Path::new(&format!("/proc/{pid}/status")));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// How many sockets a process holds.
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn running_out_of_descriptors_neither_ends_af_api_nor_locks_a_client_out() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let mut c = env.cmd("af-api");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_NOFILE, 64, 64).map_err(std::io::Error::from)
        });
    }
    let mut api = Api::spawn(&env, c, "127.0.0.1:0", &["--rate-limit", "0"]);
    let pid = api.child.id();
    let addr: std::net::SocketAddr = api.addr.parse().expect("address");
    // 200 connections against 64 descriptors: those past the cap wait in the listen backlog, and
    // those past the backlog are not accepted (connect times out); none may end af-api.
    let held: Vec<TcpStream> =
        (0..200).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()).collect();
    util::wait_for("af-api to take the connections it may hold", Duration::from_secs(10), || sockets_of(pid) > 8);
    let holding = sockets_of(pid) - 1;
    eprintln!("{} connections open, af-api holds {holding} of them at RLIMIT_NOFILE 64", held.len());
    assert!(holding < 64, "af-api holds {holding} sockets at a limit of 64");
    assert!(api.child.try_wait().expect("wait").is_none(), "af-api ended: {:?}", api.child.try_wait());
    drop(held);
    let r = api.call("GET", "/api/agents", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(api.child.try_wait().expect("wait").is_none(), "af-api ended");
}

#[test]
fn a_giant_header_gets_431_at_once_and_af_api_stays_small() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    let pid = api.child.id();
    let before = proc_status_kb(pid, "VmHWM");
    let mut s = TcpStream::connect(&api.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let host = api.addr.clone();
    // 300 MiB of one header, sent until af-api closes.
    let sender = std::thread::spawn(move || {
        let _ = write!(w, "GET /api/agents HTTP/1.1\r\nHost: {host}\r\nX-Big: ");
        let chunk = vec![b'a'; 1 << 20];
        (0..300).take_while(|_| w.write_all(&chunk).is_ok()).count()
    });
    let start = Instant::now();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("an answer");
    let took = start.elapsed();
    assert_eq!(String::from_utf8_lossy(&head), "HTTP/1.1 431");
    assert!(took < Duration::from_secs(2), "431 took {took:?}");
    let sent = sender.join().expect("sender");
    let peak = proc_status_kb(pid, "VmHWM");
    eprintln!("431 after {took:?}; {sent} MiB sent; af-api's peak RSS {before} kB before, {peak} kB after");
    assert!(peak < before + 16 * 1024, "af-api's peak RSS grew from {before} kB to {peak} kB");
    api.call("GET", "/api/agents", None).expect(200);
}

#[test]
fn a_slow_client_is_cut_off_by_the_request_deadline_while_others_are_served() {
    let env = Env::new();
    let api = Api::start(&env, &["--rate-limit", "0"]);
    let mut s = TcpStream::connect(&api.addr).expect("connect");
    let mut reader = s.try_clone().expect("clone");
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let closed_too = closed.clone();
    let start = Instant::now();
    // What af-api says before it closes; read_to_end returns once it closes.
    let watcher = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        closed_too.store(true, std::sync::atomic::Ordering::SeqCst);
        (start.elapsed(), String::from_utf8_lossy(&out).into_owned())
    });
    // A byte every half second: never silent for long, never done.
    let host = api.addr.clone();
    let trickle = std::thread::spawn(move || {
        let head = format!("GET /api/agents HTTP/1.1\r\nHost: {host}\r\nX-Slow: ");
        for b in head.bytes().chain(std::iter::repeat(b'z')).take(120) {
            if closed.load(std::sync::atomic::Ordering::SeqCst) || s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while !watcher.is_finished() && start.elapsed() < Duration::from_secs(40) {
        let t = Instant::now();
        api.call("GET", "/api/agents", None).expect(200);
        slowest = slowest.max(t.elapsed());
        served += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(watcher.is_finished(), "the slow client was never cut off");
    let (after, said) = watcher.join().expect("watcher");
    trickle.join().expect("trickle");
    eprintln!(
        "the slow client was cut off after {after:?} ({said:?}); {served} others served, the slowest in {slowest:?}"
    );
    assert!(after < Duration::from_secs(15), "cut off after {after:?}");
    assert!(said.is_empty() || said.starts_with("HTTP/1.1 408"), "{said:?}");
    assert!(served > 10 && slowest < Duration::from_secs(3), "{served} served, the slowest in {slowest:?}");
}

#[test]
fn ambiguous_framing_gets_400() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    for framing in [
        "Content-Length: 2\r\nContent-Length: 5\r\n",
        "Content-Length: 2\r\nContent-Length: 2\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let r = api.raw(
            format!(
                "PUT /api/orchestrator HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{framing}\r\n{{}}",
                api.addr, api.token
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 400, "{framing:?}: {r:?}");
    }
    api.call("PUT", "/api/orchestrator", Some(json!({}))).expect(200);
}

#[test]
fn keep_alive_clients_under_load_get_every_answer() {
    let env = Env::new();
    let api = Api::start(&env, &["--rate-limit", "0"]);
    let (addr, token) = (api.addr.clone(), api.token.clone());
    let until = Instant::now() + Duration::from_secs(4);
    // 200 keep-alive clients, each pausing now and then as a person or a poller does (up to
    // 900 ms, well inside the idle timeout): every request must get its answer.
    let clients: Vec<_> = (0..200u64)
        .map(|i| {
            let (addr, token) = (addr.clone(), token.clone());
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || keep_alive_client(&addr, &token, until, Duration::from_millis(300 * (i % 4))))
                .expect("thread")
        })
        .collect();
    let (mut ok, mut errors) = (0u64, Vec::new());
    for c in clients {
        let (n, errs) = c.join().expect("client");
        ok += n;
        errors.extend(errs);
    }
    eprintln!("200 keep-alive clients: {ok} answers, {} errors", errors.len());
    assert!(ok > 200, "only {ok} answers");
    assert!(errors.is_empty(), "{} errors, first: {:?}", errors.len(), &errors[..errors.len().min(5)]);
}

/// Requests on one keep-alive connection until `until`; returns the answers and the errors.
fn keep_alive_client(addr: &str, token: &str, until: Instant, pause: Duration) -> (u64, Vec<String>) {
    let (mut ok, mut errors) = (0u64, Vec::new());
    let mut conn: Option<BufReader<TcpStream>> = None;
    while Instant::now() < until {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match TcpStream::connect(addr) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                    conn.insert(BufReader::new(s))
                }
                Err(e) => {
                    errors.push(format!("connect: {e}"));
                    continue;
                }
            },
        };
        let req = format!("GET /api/agents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
        match c.get_mut().write_all(req.as_bytes()).map_err(|e| e.to_string()).and_then(|()| read_answer(c)) {
            Ok(200) => ok += 1,
            Ok(status) => errors.push(format!("status {status}")),
            Err(e) => {
                errors.push(e);
                conn = None;
            }
        }
        std::thread::sleep(pause);
    }
    (ok, errors)
}

/// Reads one answer with a Content-Length; returns its status.
fn read_answer(c: &mut BufReader<TcpStream>) -> Result<u16, String> {
    let mut line = String::new();
    c.read_line(&mut line).map_err(|e| format!("status line: {e}"))?;
    if line.is_empty() {
        return Err("closed without an answer".into());
    }
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(format!("status line {line:?}"))?;
    let mut length = None;
    loop {
        let mut h = String::new();
        c.read_line(&mut h).map_err(|e| format!("header: {e}"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length.ok_or("no Content-Length")?];
    c.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    Ok(status)
}

/// Runs `promtool check metrics` on `text` (when promtool is there) and fails on any problem.
fn promtool_passes(text: &str) {
    if !util::have_tool("promtool", "Debian: apt-get install prometheus") {
        return;
    }
    let mut c = std::process::Command::new("promtool");
    c.args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "promtool check metrics: {}\n{text}", util::describe(&out));
}

/// The value of the sample written exactly as `series` (name and labels), if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_are_prometheus_text_from_af_api_and_af_health() {
    let env = Env::new();
    env.worker("m1", "exec sleep 300");
    env.create(&worker("m2", "p").to_string());
    for i in 0..20 {
        env.ok("af-bus", &["send", "--to", "m2", &i.to_string()]);
    }
    // The first heartbeat may come before the tree's memory can be read: wait for one that has it.
    util::wait_for("a heartbeat with m1's memory", Duration::from_secs(20), || {
        env.show("m1")["heartbeat"]["rssBytes"].as_u64().is_some_and(|b| b > 0)
    });
    let api = Api::start(&env, &[]);
    api.call("GET", "/api/agents", None).expect(200);
    api.request("GET", "/api/agents", &[], None).expect(401);
    // A loopback client needs no token.
    let r = api.request("GET", "/metrics", &[], None).expect(200);
    assert_eq!(r.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = r.body;
    promtool_passes(&text);
    assert_eq!(sample(&text, r#"agentflow_agent_up{agent="m1",project="test"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"agentflow_agent_up{agent="m2",project="p"}"#), Some(0.0), "{text}");
    assert_eq!(sample(&text, r#"agentflow_agents{status="created",health="unknown",type="worker"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"agentflow_queue_depth{queue="m2"}"#), Some(20.0), "{text}");
    assert!(sample(&text, r#"agentflow_agent_resident_memory_bytes{agent="m1"}"#).is_some_and(|v| v > 0.0), "{text}");
    assert_eq!(sample(&text, r#"agentflow_api_requests_total{route="agents",status="200"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"agentflow_api_requests_total{route="agents",status="401"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"agentflow_api_request_duration_seconds_count{route="agents"}"#), Some(2.0), "{text}");
    // af-health prints the spool's part, for node_exporter's textfile collector.
    let printed = env.ok("af-health", &["metrics"]);
    promtool_passes(&printed);
    assert_eq!(sample(&printed, r#"agentflow_queue_depth{queue="m2"}"#), Some(20.0), "{printed}");
    assert!(!printed.contains("agentflow_api_"), "af-health has no requests to count");
    // Bus counters: 5 taken and acked, one given back and then dead; they outlive the messages
    // (the queue cleared) and every process that counted them.
    env.ok("af-bus", &["recv", "m2", "-n", "5", "--ack"]);
    let one: Value = serde_json::from_str(&env.ok("af-bus", &["recv", "m2", "--json"])).unwrap();
    let id = one["id"].as_str().unwrap().to_owned();
    env.ok("af-bus", &["nack", "m2", &id]);
    let again: Value = serde_json::from_str(&env.ok("af-bus", &["recv", "m2", "--json"])).unwrap();
    let mut c = env.cmd("af-bus");
    c.args(["nack", "m2", again["id"].as_str().unwrap()]).env("AF_BUS_MAX_ATTEMPTS", "2");
    assert!(c.output().unwrap().status.success());
    api.call("DELETE", "/api/agents/m2/messages", None).expect(200);
    let printed = env.ok("af-health", &["metrics"]);
    promtool_passes(&printed);
    for (what, want) in [("sent", 20.0), ("delivered", 7.0), ("acked", 5.0), ("retried", 1.0), ("dead", 1.0)] {
        let series = format!(r#"agentflow_bus_messages_{what}_total{{queue="m2"}}"#);
        assert_eq!(sample(&printed, &series), Some(want), "{series}: {printed}");
    }
    // Latency: the first claim of each message taken (5 + 1), not the second claim of the same one.
    assert_eq!(sample(&printed, r#"agentflow_bus_delivery_latency_seconds_count{queue="m2"}"#), Some(6.0));
    assert_eq!(sample(&printed, r#"agentflow_bus_delivery_latency_seconds_bucket{queue="m2",le="+Inf"}"#), Some(6.0));
    drop(api);
    let api = Api::start(&env, &[]);
    let text = api.request("GET", "/metrics", &[], None).expect(200).body;
    assert_eq!(sample(&text, r#"agentflow_bus_messages_sent_total{queue="m2"}"#), Some(20.0), "{text}");
    // --output: replaced by rename, folders made, with the mode the user's umask gives (the
    // textfile collector reads it as another user).
    let file = env.work.join("collector/agentflow.prom");
    let mut c = std::process::Command::new("sh");
    env.apply(&mut c);
    c.args([
        "-c",
        &format!("umask 022 && exec {} metrics --output {}", util::bin("af-health").display(), file.display()),
    ]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(util::read(&file).contains("# TYPE agentflow_agents gauge"));
    use std::os::unix::fs::PermissionsExt;
    let modes = [&file, file.parent().unwrap()].map(|p| std::fs::metadata(p).unwrap().permissions().mode() & 0o777);
    assert_eq!(modes, [0o644, 0o755]);
}

#[test]
fn the_grafana_dashboard_asks_only_for_metrics_that_exist() {
    let env = Env::new();
    env.worker("g1", "exec sleep 300");
    let api = Api::start(&env, &[]);
    api.call("GET", "/api/agents", None).expect(200);
    let text = api.request("GET", "/metrics", &[], None).expect(200).body;
    let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    let dashboard: Value = serde_json::from_str(&util::read(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/grafana/agentflow.json"),
    ))
    .unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("agentflow_"))
                .collect();
            assert!(!names.is_empty(), "{expr} asks for no AgentFlow metric");
            for name in names {
                let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
                assert!(families.contains(&family), "the dashboard asks for {name}, which /metrics does not have");
                asked += 1;
            }
        }
    }
    assert!(asked >= 15, "{asked}");
}

#[test]
fn an_env_secret_reaches_the_agents_process_alone_never_the_spool_logs_api_or_environs() {
    let env = Env::new();
    let marker = format!("envs3cr3t-{}-{}", std::process::id(), af_spool::time::Timestamp::now().0);
    std::fs::write(env.work.join("expected"), &marker).unwrap();
    // The process compares what it got with the file outside the spool (its command holds no value).
    let config = json!({
        "id": "envsec", "type": "worker", "projectId": "p",
        "command": ["sh", "-c", "[ \"$MY_TOKEN\" = \"$(cat expected)\" ] && echo same >> got; exec sleep 300"],
        "secrets": {"MY_TOKEN": {"env": "AF_TEST_MARKER_VAR"}},
    });
    env.ok_in("af-spawn", &["create"], Some(&config.to_string()));
    // Without the variable, the start is refused before anything changes, naming secret and variable.
    let err = env.fails("af-spawn", &["start", "envsec"], None, 2);
    assert!(err.contains("secret MY_TOKEN") && err.contains("AF_TEST_MARKER_VAR") && !err.contains(&marker), "{err}");
    assert_eq!(env.status("envsec"), "created");
    // With it in the caller's environment alone (the tmux server starts from this very call).
    let start = |args: &[&str]| {
        let mut c = env.cmd("af-spawn");
        c.args(args).env("AF_TEST_MARKER_VAR", &marker);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", util::describe(&out));
    };
    start(&["start", "envsec", "--no-wait"]);
    util::wait_for("the process saw its secret", Duration::from_secs(20), || env.work.join("got").exists());
    // A restart by the caller hands it over again (to a new af-wrap).
    start(&["restart", "envsec"]);
    util::wait_for("the restarted process saw it", Duration::from_secs(20), || {
        std::fs::read_to_string(env.work.join("got")).is_ok_and(|t| t.lines().count() == 2)
    });
    env.ok("af-checkpoint", &["create", "envsec"]);
    env.ok("af-health", &["check", "envsec"]);
    env.ok("af-health", &["metrics", "--output", env.home.join("metrics.prom").to_str().unwrap()]);
    // Every answer of af-api (run without the variable: a start through it is refused by name).
    let api = Api::start(&env, &[]);
    let mut bodies = Vec::new();
    for path in ["/api/agents", "/api/agents/envsec", "/api/agents/envsec/status", "/api/agents/envsec/health"] {
        bodies.push(api.call("GET", path, None).expect(200).body);
    }
    for path in ["/api/orchestrator", "/api/alerts", "/metrics", "/api/agents/envsec/messages"] {
        bodies.push(api.call("GET", path, None).body);
    }
    let agent = api.call("GET", "/api/agents/envsec", None).json();
    assert_eq!(agent["config"]["secrets"]["MY_TOKEN"], json!({"env": "AF_TEST_MARKER_VAR"}), "{agent}");
    env.ok("af-spawn", &["stop", "envsec"]);
    let refused = api.call("PATCH", "/api/agents/envsec", Some(json!({"action": "start"})));
    assert!(refused.status >= 400 && refused.body.contains("AF_TEST_MARKER_VAR"), "{refused:?}");
    bodies.push(refused.body);
    for body in &bodies {
        assert!(!body.contains(&marker), "an API answer holds the secret: {body}");
    }
    let shown = env.ok("af-spawn", &["show", "envsec", "--json"]);
    assert!(!shown.contains(&marker) && shown.contains("MY_TOKEN"), "{shown}");
    // Nowhere in the spool (records, checkpoints, logs, events, metrics), nor in any af-* or tmux
    // process's environment (the agent's own process had it; it is stopped now, so start it again
    // and look while it runs).
    start(&["start", "envsec"]);
    util::wait_for("the third process saw it", Duration::from_secs(20), || {
        std::fs::read_to_string(env.work.join("got")).is_ok_and(|t| t.lines().count() == 3)
    });
    assert_eq!(util::files_holding(&env.home, marker.as_bytes()), Vec::<std::path::PathBuf>::new());
    let mut agent_had_it = false;
    let mut holders = Vec::new();
    for pid in env.processes() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let holds = environ.windows(marker.len()).any(|w| w == marker.as_bytes());
        if comm.starts_with("af-") || comm.starts_with("tmux") {
            if holds {
                holders.push(format!("{} {pid}", comm.trim()));
            }
        } else {
            agent_had_it |= holds;
        }
    }
    assert_eq!(holders, Vec::<String>::new(), "af-* or tmux processes hold the secret in their environment");
    assert!(agent_had_it, "the agent's process holds it in its environment");
    drop(api);
    env.ok("af-spawn", &["stop", "envsec"]);
}

// The cockpit's endpoints: output, conversation, checkpoints, requests, flow, agent deltas.

/// Opens a Server-Sent Events stream at `target` (path and query), with extra header lines.
fn open_sse(api: &Api, target: &str, extra: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(&api.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}\r\n", api.addr, api.token)
        .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    reader
}

/// Reads events (`(event, id, data)`) until one's data satisfies `done`.
fn read_sse_until(
    r: &mut BufReader<TcpStream>,
    mut done: impl FnMut(&str, &str) -> bool,
) -> Vec<(String, String, String)> {
    let mut seen = Vec::new();
    let (mut event, mut id, mut data) = (String::from("message"), String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                let line = line.trim_end_matches(['\r', '\n']);
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_owned();
                } else if line.is_empty() && !data.is_empty() {
                    let finished = done(&event, &data);
                    seen.push((std::mem::replace(&mut event, "message".into()), id.clone(), std::mem::take(&mut data)));
                    if finished {
                        return seen;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading events: {e}"),
        }
    }
    panic!("the stream never gave what was awaited; saw {seen:?}");
}

#[test]
fn an_agents_output_is_served_with_its_colours_and_streamed_live_resuming_by_last_event_id() {
    let env = Env::new();
    let api = Api::start(&env, &[]);
    env.worker(
        "o1",
        r#"printf '\033[31mred-marker\033[0m\n'; i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.2; done"#,
    );
    util::wait_for("red-marker in the output", Duration::from_secs(10), || {
        api.call("GET", "/api/agents/o1/output?lines=1000", None).json()["text"]
            .as_str()
            .unwrap_or("")
            .contains("red-marker")
    });
    let out = api.call("GET", "/api/agents/o1/output?lines=1000", None).expect(200).json();
    assert!(out["text"].as_str().unwrap().contains("\u{1b}[31mred-marker"), "ANSI kept: {out}");
    let two = api.call("GET", "/api/agents/o1/output?lines=2", None).expect(200).json();
    assert_eq!(two["text"].as_str().unwrap().trim_end().lines().count(), 2, "{two}");
    assert!(two["offset"].as_u64().unwrap() > 0);
    api.call("GET", "/api/agents/o1/output?lines=x", None).expect(400);
    api.call("GET", "/api/agents/nobody/output", None).expect(404);

    // Live: new ticks come as events, each id the place in the log after its text.
    let mut s = open_sse(&api, "/api/agents/o1/output/stream", "");
    let first = read_sse_until(&mut s, |_, d| d.contains("tick-"));
    let (_, id, data) = first.last().unwrap().clone();
    let chunk: Value = serde_json::from_str(&data).unwrap();
    let log = std::fs::read(env.home.join("agents/o1/output.log")).unwrap();
    let end: usize = id.parse().unwrap();
    assert!(log[..end].ends_with(chunk["text"].as_str().unwrap().as_bytes()), "the id is where the text ends");
    // Resuming after that id gives exactly what followed it.
    let mut again = open_sse(&api, "/api/agents/o1/output/stream", &format!("Last-Event-ID: {id}\r\n"));
    let next = read_sse_until(&mut again, |_, d| d.contains("tick-"));
    let (_, id2, data2) = next[0].clone();
    let text2 = serde_json::from_str::<Value>(&data2).unwrap()["text"].as_str().unwrap().to_owned();
    let log = std::fs::read(env.home.join("agents/o1/output.log")).unwrap();
    assert_eq!(&log[end..id2.parse::<usize>().unwrap()], text2.as_bytes());
    // ?lines=N starts with the past; a bad Last-Event-ID is a 400.
    let mut past = open_sse(&api, "/api/agents/o1/output/stream?lines=1000", "");
    read_sse_until(&mut past, |_, d| d.contains("red-marker"));
    api.call("GET", "/api/agents/o1/output/stream?since=nope", None).expect(400);
}

#[test]
fn the_cockpit_serves_conversations_checkpoints_requests_flow_and_agent_deltas() {
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    // The conversation of a claude-code agent on the CLI double, paged.
    let mut claude = claude_double(&env, "c1");
    claude["budgetUsd"] = json!(5.0);
    api.call("POST", "/api/agents/create?start=true", Some(claude)).expect(201);
    env.ok("af-bus", &["request", "--to", "c1", "--timeout", "20", r#""hello there""#]);
    util::wait_for("c1's cost", Duration::from_secs(10), || env.show("c1")["state"]["costUsd"] == 0.01);
    let conv = api.call("GET", "/api/agents/c1/conversation", None).expect(200).json();
    assert_eq!(conv["cli"], "claude-code");
    assert_eq!((conv["costUsd"].as_f64(), conv["budgetUsd"].as_f64()), (Some(0.01), Some(5.0)), "{conv}");
    let msgs = conv["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant"], "{conv}");
    assert!(msgs[0]["text"].as_str().unwrap().contains("hello there"), "{conv}");
    assert_eq!(msgs[1]["text"], "echo: hello there");
    let one = api.call("GET", "/api/agents/c1/conversation?limit=1", None).expect(200).json();
    assert_eq!((one["messages"].as_array().unwrap().len(), &one["more"]), (1, &json!(true)));
    let rest = api.call("GET", &format!("/api/agents/c1/conversation?after={}", one["next"]), None).expect(200).json();
    assert_eq!(rest["messages"][0]["role"], "assistant");
    assert_eq!(rest["more"], false);
    api.call("GET", "/api/agents/c1/conversation?limit=0", None).expect(400);
    let idle = api.call("POST", "/api/agents/c1/interrupt", None).expect(200).json();
    assert_eq!(idle["interrupted"], false, "no turn runs: {idle}");

    // A task from the API to a task worker, and its answer read apart.
    let tw = json!({"id": "tw", "type": "worker", "projectId": "web", "taskCommand": ["sh", "-c", "cat"]});
    api.call("POST", "/api/agents/create?start=true", Some(tw)).expect(201);
    api.call("GET", "/api/agents/tw/conversation", None).expect(400);
    api.call("POST", "/api/agents/tw/interrupt", None).expect(409);
    let sent = api
        .call(
            "POST",
            "/api/agents/tw/requests",
            Some(json!({"payload": {"job": "x"}, "priority": "high", "timeoutSecs": 30})),
        )
        .expect(201)
        .json();
    let rid = sent["request"].as_str().unwrap().to_owned();
    assert_eq!(sent["sent"]["kind"], "task");
    let mut answer = Value::Null;
    util::wait_for("the task's answer", Duration::from_secs(20), || {
        answer = api.call("GET", &format!("/api/agents/tw/requests/{rid}"), None).expect(200).json();
        answer["state"] == "answered"
    });
    assert_eq!(answer["answer"]["payload"]["ok"], true, "{answer}");
    assert_eq!(answer["answer"]["payload"]["stdout"]["payload"], json!({"job": "x", "timeout": 30000}), "{answer}");
    api.call("GET", "/api/agents/tw/requests/nope", None).expect(404);
    api.call("GET", &format!("/api/agents/c1/requests/{rid}"), None).expect(404);
    api.call("POST", "/api/agents/tw/requests", Some(json!({"payload": 1, "kind": "event"}))).expect(400);

    // Checkpoints: list, diff since one (files and unified diff, capped), rollback.
    let dir = env.path("ckwork");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    let ck = json!({"id": "k1", "type": "worker", "projectId": "web", "workdir": dir, "command": ["sleep", "300"]});
    api.call("POST", "/api/agents/create", Some(ck)).expect(201);
    let made =
        api.call("POST", "/api/agents/k1/checkpoints", Some(json!({"description": "before"}))).expect(201).json();
    let ckpt = made["checkpoint"]["id"].as_str().unwrap().to_owned();
    let list = api.call("GET", "/api/agents/k1/checkpoints", None).expect(200).json();
    assert_eq!(list["checkpoints"][0]["id"], ckpt.as_str());
    assert_eq!(list["checkpoints"][0]["description"], "before");
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    std::fs::write(dir.join("b.txt"), "new\n").unwrap();
    let d = api.call("GET", &format!("/api/agents/k1/checkpoints/{ckpt}/diff"), None).expect(200).json();
    assert_eq!(d["files"], json!([{"status": "M", "path": "a.txt"}, {"status": "A", "path": "b.txt"}]), "{d}");
    let text = d["diff"].as_str().unwrap();
    for want in ["--- a/a.txt", "+++ b/a.txt", "-one", "+two", "+++ b/b.txt", "+new"] {
        assert!(text.lines().any(|l| l == want), "{want} in {text}");
    }
    assert_eq!(d["truncated"], false);
    let cut = api.call("GET", &format!("/api/agents/k1/checkpoints/{ckpt}/diff?maxBytes=10"), None).expect(200).json();
    assert_eq!((cut["diff"].as_str().unwrap().len(), &cut["truncated"]), (10, &json!(true)));
    api.call("GET", "/api/agents/k1/checkpoints/ck-nope/diff", None).expect(404);
    api.call("POST", &format!("/api/agents/k1/checkpoints/{ckpt}/rollback"), None).expect(200);
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "one\n");
    assert!(!dir.join("b.txt").exists(), "the rollback removed what came after");

    // The flow: five messages to q1, acked, one waiting.
    env.create(&worker("q1", "web").to_string());
    for n in 0..5 {
        api.call("POST", "/api/agents/q1/messages", Some(json!({"payload": n, "kind": "request"}))).expect(201);
    }
    for _ in 0..5 {
        let m = api.call("PUT", "/api/agents/q1/messages", None).expect(200).json();
        let id = m["message"]["id"].as_str().unwrap().to_owned();
        api.call("PATCH", "/api/agents/q1/messages", Some(json!({"action": "ack", "messageId": id}))).expect(200);
    }
    api.call("POST", "/api/agents/q1/messages", Some(json!({"payload": "late"}))).expect(201);
    let flow = api.call("GET", "/api/flow?window=600", None).expect(200).json();
    let edge = flow["edges"].as_array().unwrap().iter().find(|e| e["to"] == "q1").cloned().expect("an edge to q1");
    assert_eq!((&edge["from"], &edge["kind"], &edge["count"]), (&json!("cli"), &json!("request"), &json!(5)), "{flow}");
    assert!(edge["bytes"].as_u64().unwrap() > 0 && edge["p99Ms"].as_u64() >= edge["p50Ms"].as_u64(), "{edge}");
    let q = flow["queues"].as_array().unwrap().iter().find(|q| q["queue"] == "q1").cloned().unwrap();
    assert_eq!((&q["depth"], &q["acked"]), (&json!(1), &json!(5)), "{q}");
    assert!(q["oldestWaitingMs"].is_u64(), "{q}");
    api.call("GET", "/api/flow?window=0", None).expect(400);

    // Filters: health too.
    let unknown = api.call("GET", "/api/agents?health=unknown", None).expect(200).json();
    assert!(ids(&unknown).contains(&"q1".to_owned()), "{unknown}");
    api.call("GET", "/api/agents?health=bad", None).expect(400);

    // Agent deltas on the event stream: first every agent, then only what changed.
    let mut s = open_sse(&api, "/api/events?agents=true", "");
    let first = read_sse_until(&mut s, |e, _| e == "agents");
    let reset: Value = serde_json::from_str(&first.last().unwrap().2).unwrap();
    assert_eq!(reset["reset"], true);
    assert_eq!(reset["agents"].as_array().unwrap().len(), 4, "{reset}");
    env.ok("af-spawn", &["start", "q1"]);
    let delta = read_sse_until(&mut s, |e, d| e == "agents" && d.contains("\"running\"") && d.contains("\"q1\""));
    let delta: Value = serde_json::from_str(&delta.last().unwrap().2).unwrap();
    assert_eq!(delta["reset"], false);
    assert!(delta["agents"].as_array().unwrap().len() < 4, "only what changed: {delta}");
}

/// Presses a key in the page, as a person would (keyDown, then keyUp).
fn press(page: &mut Browser, key: &str) {
    let code = match key {
        "Enter" => 13,
        "Escape" => 27,
        k => k.chars().next().map_or(0, |c| c.to_ascii_uppercase() as i64),
    };
    let text = if key.chars().count() == 1 {
        key
    } else if key == "Enter" {
        "\r"
    } else {
        ""
    };
    let mut down = json!({"type": "keyDown", "key": key, "windowsVirtualKeyCode": code});
    if !text.is_empty() {
        down["text"] = json!(text);
    }
    page.send("Input.dispatchKeyEvent", down);
    page.send("Input.dispatchKeyEvent", json!({"type": "keyUp", "key": key, "windowsVirtualKeyCode": code}));
}

#[test]
fn the_cockpit_in_chromium_shows_live_output_a_task_and_its_answer_a_conversation_and_checkpoints() {
    if !util::have_tool("chromium", "Debian: apt-get install chromium") {
        return;
    }
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &[]);
    // An agent that prints whatever lands in its marker file.
    env.worker("o1", "while :; do if [ -f marker ]; then cat marker; rm -f marker; fi; sleep 0.05; done");
    // A task worker, a claude-code agent on the CLI double with one turn done, and an agent with
    // a checkpoint of its working tree.
    let tw = json!({"id": "tw", "type": "worker", "projectId": "web", "taskCommand": ["sh", "-c", "cat"]});
    api.call("POST", "/api/agents/create?start=true", Some(tw)).expect(201);
    let mut claude = claude_double(&env, "c1");
    claude["budgetUsd"] = json!(5.0);
    api.call("POST", "/api/agents/create?start=true", Some(claude)).expect(201);
    env.ok("af-bus", &["request", "--to", "c1", "--timeout", "20", r#""hello page""#]);
    let dir = env.path("ckwork");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    let k1 = json!({"id": "k1", "type": "worker", "projectId": "web", "workdir": dir, "command": ["sleep", "300"]});
    api.call("POST", "/api/agents/create", Some(k1)).expect(201);
    let made = api.call("POST", "/api/agents/k1/checkpoints", Some(json!({"description": "the start"}))).expect(201);
    let ckpt = made.json()["checkpoint"]["id"].as_str().unwrap().to_owned();
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();

    // The deep link opens o1's detail view; its output follows the stream, as a terminal shows it.
    let mut page =
        Browser::open(&env.path("chromium-profile"), &format!("http://{}/#token={}&agent=o1", api.addr, api.token));
    page.wait_until(
        "o1's detail view",
        "!document.getElementById('detail').hidden && document.getElementById('d-id').textContent",
        json!("o1"),
    );
    assert_eq!(page.eval("location.hash"), json!("#agent=o1"), "the token leaves the address bar, the deep link stays");
    page.wait_until("the output stream open", "document.getElementById('term-state').textContent", json!("live"));
    // Written whole, then renamed: the agent must never cat (and remove) a half-written marker.
    std::fs::write(env.work.join("marker.tmp"), "\x1b[32mMARK-7731\x1b[0m done\r\nprogress 10%\rprogress 99%\n")
        .unwrap();
    std::fs::rename(env.work.join("marker.tmp"), env.work.join("marker")).unwrap();
    page.wait_until(
        "the marker in green",
        "[...document.querySelectorAll('#term span')].some(s => s.textContent === 'MARK-7731' && s.style.color === 'rgb(78, 154, 6)')",
        json!(true),
    );
    page.wait_until(
        "the carriage return rewriting its line",
        "(window.af.termText || '').includes('progress 99%')",
        json!(true),
    );
    assert_eq!(
        page.eval("window.af.termText.includes('progress 10%')"),
        json!(false),
        "{}",
        page.eval("window.af.termText")
    );

    // A task from the composer, and its answer.
    page.eval("location.hash = 'agent=tw'; true");
    page.wait_until("tw's detail view", "document.getElementById('d-id').textContent", json!("tw"));
    page.eval(r#"document.getElementById('c-payload').value = '{"job": "from-the-page"}'; document.getElementById('c-priority').value = 'high'; document.getElementById('c-send').click(); true"#);
    page.wait_until("the task's answer", "document.getElementById('c-answer').dataset.state", json!("answered"));
    let answer = page.eval("document.getElementById('c-answer').textContent");
    assert!(answer.as_str().unwrap().contains("from-the-page"), "{answer}");
    // The task went with the priority chosen, as a task (tw's bus history of what it took).
    let taken = api.call("GET", "/api/agents/tw/messages", None).expect(200).json();
    let task = taken["messages"].as_array().unwrap().iter().find(|m| m["payload"]["job"] == "from-the-page").cloned();
    assert_eq!(
        task.as_ref().map(|m| (m["kind"].clone(), m["priority"].clone())),
        Some((json!("task"), json!("high"))),
        "{taken}"
    );
    assert_eq!(page.eval("document.getElementById('conv').hidden"), json!(true), "a worker has no conversation");

    // The conversation of the claude-code agent, its cost against its budget, its activity.
    page.eval("location.hash = 'agent=c1'; true");
    page.wait_until(
        "c1's answer in the conversation",
        "(document.querySelector('#conv-list [data-role=\"assistant\"]') || {}).textContent || null",
        json!("assistantecho: hello page"),
    );
    page.wait_until("c1's cost", "document.getElementById('d-cost').textContent", json!("$0.0100"));
    assert_eq!(page.eval("document.getElementById('d-budget').textContent"), json!("of $5.00"));
    page.wait_until("c1's activity", "document.getElementById('d-activity').dataset.activity", json!("idle"));
    page.eval("document.getElementById('d-interrupt').click(); true");
    page.wait_until(
        "the interrupt's answer",
        "document.getElementById('error').textContent.startsWith('interrupt: ')",
        json!(true),
    );

    // The checkpoint timeline: a diff on click, a rollback after confirmation.
    page.eval("location.hash = 'agent=k1'; true");
    let diff_button = format!("document.querySelector('#ckpts [data-ckpt=\"{ckpt}\"] button.diff')");
    page.wait_until("k1's checkpoint", &format!("!!{diff_button}"), json!(true));
    page.eval(&format!("{diff_button}.click(); true"));
    page.wait_until("the diff", "document.getElementById('diff').dataset.state", json!("shown"));
    assert_eq!(page.eval("[...document.querySelectorAll('#diff .add')].map(d => d.textContent).join()"), json!("+two"));
    assert_eq!(page.eval("[...document.querySelectorAll('#diff .del')].map(d => d.textContent).join()"), json!("-one"));
    page.eval(&format!("document.querySelector('#ckpts [data-ckpt=\"{ckpt}\"] button.rollback').click(); true"));
    page.wait_until("the confirmation", "document.getElementById('confirm').hidden", json!(false));
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "two\n", "nothing before the confirmation");
    page.eval("document.getElementById('confirm-yes').click(); true");
    page.wait_until("the rollback", "window.af.rolledBack || null", json!(ckpt));
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "one\n", "the page rolled back for real");
    // Esc closes the detail view.
    press(&mut page, "Escape");
    page.wait_until("the detail view closed", "document.getElementById('detail').hidden", json!(true));
}

#[test]
fn the_cockpit_in_chromium_draws_the_message_flow_and_filters_many_agents_by_keyboard() {
    if !util::have_tool("chromium", "Debian: apt-get install chromium") {
        return;
    }
    let env = Env::new();
    env.tmux(&["new-session", "-d", "-s", "keep", "sleep", "600"]);
    let api = Api::start(&env, &["--rate-limit", "0"]);
    // 500 agents (created, not started: the page's work is the same), in two projects.
    const MANY: usize = 500;
    let configs: Vec<Value> = (0..MANY)
        .map(|i| json!({"id": format!("f-{i:04}"), "type": "worker", "projectId": if i % 5 == 0 { "five" } else { "rest" }, "command": ["sleep", "300"]}))
        .collect();
    api.call("POST", "/api/agents/create", Some(Value::Array(configs))).expect(201);
    // A burst of messages to f-0001, received and acked; one dead letter in f-0002.
    for n in 0..20 {
        api.call("POST", "/api/agents/f-0001/messages", Some(json!({"payload": n, "kind": "task"}))).expect(201);
    }
    for _ in 0..20 {
        let m = api.call("PUT", "/api/agents/f-0001/messages", None).expect(200).json();
        let id = m["message"]["id"].as_str().unwrap().to_owned();
        api.call("PATCH", "/api/agents/f-0001/messages", Some(json!({"action": "ack", "messageId": id}))).expect(200);
    }
    env.ok("af-bus", &["send", "--to", "f-0002", "--ttl", "0.01", r#""late""#]);
    std::thread::sleep(Duration::from_millis(50));
    api.call("PUT", "/api/agents/f-0002/messages", None).expect(200);

    let mut page = Browser::open(&env.path("chromium-profile"), &format!("http://{}/#token={}", api.addr, api.token));
    page.wait_until("every agent", "document.getElementById('shown').textContent", json!(format!("{MANY} of {MANY}")));
    // Only a window of the grid is built; scrolling to its end brings the rest, a page at a time.
    let cards = "document.querySelectorAll('#grid .card').length";
    let first = page.eval(cards).as_u64().unwrap();
    assert!(first > 0 && first < MANY as u64, "{first} cards built at first, of {MANY}");
    page.wait_until(
        "every card after scrolling",
        &format!(
            "(() => {{ const m = document.getElementById('more'); if (m) m.scrollIntoView(); return {cards}; }})()"
        ),
        json!(MANY),
    );
    assert_eq!(page.eval("document.getElementById('more') === null"), json!(true), "no 'more below' left");
    page.eval("window.scrollTo(0, 0); true");
    // The flow view: the burst as an edge, the dead letter as a stuck queue.
    page.eval("document.getElementById('tab-flow').click(); true");
    page.wait_until(
        "the burst's edge",
        "(document.querySelector('#flow-svg path[data-edge=\"cli>f-0001\"]') || {dataset: {}}).dataset.count || null",
        json!("20"),
    );
    page.wait_until(
        "f-0002 marked stuck",
        "(document.querySelector('#flow-svg [data-node=\"f-0002\"]') || {dataset: {}}).dataset.stuck || null",
        json!("true"),
    );
    assert_eq!(page.eval("document.querySelector('#flow-svg [data-node=\"f-0001\"]').dataset.stuck"), json!("false"));
    page.eval("document.getElementById('tab-agents').click(); true");
    // Filters: project, then free text typed after '/'.
    page.eval(
        "const p = document.getElementById('f-project'); p.value = 'five'; p.dispatchEvent(new Event('input')); true",
    );
    page.wait_until(
        "project five",
        "document.getElementById('shown').textContent",
        json!(format!("{} of {MANY}", MANY / 5)),
    );
    press(&mut page, "/");
    assert_eq!(page.eval("document.activeElement.id"), json!("filter"), "'/' goes to the filter");
    page.send("Input.insertText", json!({"text": "f-004"}));
    page.wait_until("free text", "document.getElementById('shown').textContent", json!(format!("2 of {MANY}")));
    assert_eq!(page.eval("window.af.visible"), json!(["f-0040", "f-0045"]));
    press(&mut page, "Escape");
    // j and k move, Enter opens, Esc closes.
    press(&mut page, "j");
    press(&mut page, "j");
    press(&mut page, "k");
    assert_eq!(page.eval("window.af.selected"), json!("f-0040"));
    press(&mut page, "Enter");
    page.wait_until("f-0040 opened", "location.hash", json!("#agent=f-0040"));
    press(&mut page, "Escape");
    page.wait_until("closed", "document.getElementById('detail').hidden", json!(true));
    // Sorting, and a change made elsewhere arriving as a delta.
    page.eval("const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); true");
    page.eval(
        "const s = document.getElementById('sort'); s.value = 'status'; s.dispatchEvent(new Event('input')); true",
    );
    env.ok("af-spawn", &["start", "f-0045"]);
    page.wait_until("f-0045 running, first by status", "window.af.visible[0]", json!("f-0045"));
    // The status, type and health filters.
    let pick = |id: &str, v: &str| {
        format!(
            "{{ const s = document.getElementById('{id}'); s.value = '{v}'; s.dispatchEvent(new Event('input')); true }}"
        )
    };
    page.eval(&pick("f-project", ""));
    page.eval(&pick("f-status", "running"));
    page.wait_until("the running one", "window.af.visible", json!(["f-0045"]));
    page.eval(&pick("f-status", ""));
    page.eval(&pick("f-type", "worker"));
    page.wait_until("every worker", "document.getElementById('shown').textContent", json!(format!("{MANY} of {MANY}")));
    page.eval(&pick("f-health", "unhealthy"));
    page.wait_until("no unhealthy one", "document.getElementById('shown').textContent", json!(format!("0 of {MANY}")));
    page.eval(&pick("f-health", ""));
    page.eval(&pick("f-type", ""));
    // The create form shows the server's verdict inline.
    page.eval(r#"document.getElementById('create-config').value = '{"id": "-bad", "type": "worker"}'; document.getElementById('create-btn').click(); true"#);
    page.wait_until("the create error", "document.getElementById('create-error').dataset.state", json!("error"));
}

/// Sets a file's modification time `secs` seconds back.
fn age_file(path: &std::path::Path, secs: u64) {
    let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(secs)).unwrap();
}

#[test]
fn gc_compresses_and_prunes_old_log_generations_and_the_readers_still_see_the_kept_history() {
    let mut env = Env::new();
    env.set_env("AF_EVENTS_MAX_BYTES", "1KB");
    env.set_env("AF_EVENTS_KEEP", "5");
    for i in 0..60 {
        env.create(&format!(r#"{{"id":"r{i}","type":"worker","command":["sleep","1"]}}"#));
    }
    let plain = |n: usize| env.home.join(format!("events.log.{n}"));
    let gz = |n: usize| env.home.join(format!("events.log.{n}.gz"));
    assert!(plain(5).exists() && !plain(6).exists(), "five generations");
    // Two generations a month old, two an hour old, the newest just written.
    for (n, secs) in [(5, 30 * 86_400), (4, 29 * 86_400), (3, 3_600), (2, 3_500)] {
        age_file(&plain(n), secs);
    }
    let kept: Vec<String> = [plain(3), plain(2), plain(1), env.home.join("events.log")]
        .iter()
        .flat_map(|p| util::read(p).lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // A program's log and an agent's output log with generations as rotation leaves them.
    let log = env.home.join("log/af-x.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "live\n").unwrap();
    std::fs::write(env.home.join("log/af-x.log.1"), "an hour ago\n".repeat(100)).unwrap();
    std::fs::write(env.home.join("log/af-x.log.2"), "a month ago\n").unwrap();
    age_file(&env.home.join("log/af-x.log.1"), 3_600);
    age_file(&env.home.join("log/af-x.log.2"), 30 * 86_400);
    let output = env.home.join("agents/r0/output.log.1");
    std::fs::write(&output, "what r0 printed\n".repeat(100)).unwrap();
    age_file(&output, 3_600);

    let dry = env.json("af-spawn", &["gc", "--dry-run"]);
    assert_eq!(dry["logs"], json!({"compressed": 4, "removed": 3, "freedBytes": dry["logs"]["freedBytes"]}), "{dry}");
    assert!(plain(5).exists() && !gz(3).exists(), "a dry run changes nothing");
    let done = env.json("af-spawn", &["gc"]);
    assert_eq!((done["logs"]["compressed"].as_u64(), done["logs"]["removed"].as_u64()), (Some(4), Some(3)), "{done}");
    assert!(!plain(5).exists() && !plain(4).exists() && !gz(4).exists(), "the month-old ones are gone");
    assert!(
        gz(3).exists() && gz(2).exists() && !plain(3).exists() && !plain(2).exists(),
        "the hour-old ones compressed"
    );
    assert!(plain(1).exists() && !gz(1).exists(), "the newest is left alone for now");
    assert!(env.home.join("log/af-x.log.1.gz").exists() && !env.home.join("log/af-x.log.2").exists());
    assert!(env.home.join("agents/r0/output.log.1.gz").exists() && !output.exists());
    let text = String::from_utf8(
        std::process::Command::new("gzip")
            .arg("-dc")
            .arg(env.home.join("agents/r0/output.log.1.gz"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(text, "what r0 printed\n".repeat(100), "plain gzip");
    // A second gc finds nothing more to do.
    let again = env.json("af-spawn", &["gc"]);
    assert_eq!((again["logs"]["compressed"].as_u64(), again["logs"]["removed"].as_u64()), (Some(0), Some(0)));

    // af-api replays the kept history, compressed generations included, in order (from a
    // position in no generation: the oldest kept).
    let api = Api::start(&env, &[]);
    let last = kept.last().unwrap().clone();
    let mut all = open_events(&api, &format!("since={}:0&audit=true", u64::MAX));
    let replay = read_sse_until(&mut all, |_, d| d == last);
    let data: Vec<String> = replay.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(data, kept, "every kept line once, oldest first");
    // A position inside a compressed generation, given back: what came after it.
    let (_, id, _) = &replay[2];
    let mut resumed = open_events(&api, &format!("since={id}&audit=true"));
    let after: Vec<String> = read_sse_until(&mut resumed, |_, d| d == last).into_iter().map(|(_, _, d)| d).collect();
    assert_eq!(after, kept[3..], "resumed after {id}");
    // The log goes on rotating over its compressed generations.
    for i in 60..80 {
        env.create(&format!(r#"{{"id":"r{i}","type":"worker","command":["sleep","1"]}}"#));
    }
    assert!((1..=5).all(|n| plain(n).exists() || gz(n).exists()) && !plain(6).exists() && !gz(6).exists());
    let lines: usize =
        (1..=5).filter(|n| plain(*n).exists()).map(|n| util::read(&plain(n)).lines().count()).sum::<usize>();
    assert!(lines > 0);
}
