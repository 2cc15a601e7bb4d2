//! Hosts bridged through Redis Streams: `ID@HOST` addresses, the outbox, and `af-bus bridge`
//! between two hosts on one machine (each its own spool, tmux server and AF_HOST) meeting through
//! a real redis-server on a free loopback port, killed by pid at the end.

mod util;

use serde_json::{Value, json};
use util::Env;

/// A host: a test world with its own AF_HOST.
fn host(name: &str) -> Env {
    let mut env = Env::new();
    env.set_env("AF_HOST", name);
    env
}

fn stats(env: &Env, queue: &str) -> Value {
    let s = env.json("af-bus", &["stats"]);
    s["queues"].as_array().unwrap().iter().find(|q| q["queue"] == queue).cloned().unwrap_or(Value::Null)
}

#[test]
fn an_address_at_another_host_goes_to_the_outbox_and_at_this_host_stays_local() {
    let alpha = host("alpha");
    alpha.create(&json!({"id": "w1", "type": "worker", "projectId": "p"}).to_string());
    // This host's own name is the same as none.
    let id = alpha.ok("af-bus", &["send", "--to", "w1@alpha", "--priority", "high", "1"]).trim().to_owned();
    assert_eq!(stats(&alpha, "w1")["depth"], 1);
    assert_eq!(stats(&alpha, "bridge:out"), Value::Null, "no outbox yet");
    // Another host's: into the outbox, addressed there, whether or not such an agent exists here.
    let far =
        alpha.ok("af-bus", &["send", "--to", "w9@beta", "--ttl", "60", "--reply-to", "w1", "2"]).trim().to_owned();
    assert_eq!(stats(&alpha, "bridge:out")["depth"], 1);
    assert_eq!(stats(&alpha, "w1")["depth"], 1);
    let out = alpha.json("af-bus", &["recv", "bridge:out"]);
    assert_eq!((out["id"].as_str(), out["to"].as_str()), (Some(far.as_str()), Some("w9@beta")));
    assert!(out["expiresAt"].is_string() && out["replyTo"] == "w1", "{out}");
    assert_ne!(id, far);
    // Pools and reply queues of other hosts too; a batch line as well.
    alpha.ok("af-bus", &["send", "--to", "pool:a@b@beta", "3"]);
    alpha.ok_in("af-bus", &["send", "--batch"], Some(r#"{"to": "w2@gamma.example.org", "payload": 4}"#));
    assert_eq!(stats(&alpha, "bridge:out")["depth"], 2);
    // Bad hosts and queues are invalid input (2), an unknown local one is not found (3).
    for bad in ["w1@-x", "w1@", "@beta", "w1@a/b", "a.b@beta", "reply:x@beta"] {
        alpha.fails("af-bus", &["send", "--to", bad, "1"], None, 2);
    }
    alpha.fails("af-bus", &["send", "--to", "nobody@alpha", "1"], None, 3);
    alpha.fails("af-bus", &["request", "--to", "w1@-x", "--timeout", "1", "1"], None, 2);
    let mut bad_host = Env::new();
    bad_host.set_env("AF_HOST", "no/slash");
    bad_host.fails("af-bus", &["send", "--to", "w1@beta", "1"], None, 2);
}
