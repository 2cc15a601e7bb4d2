//! `af-wrap --hook ID`: run by the Claude Code CLI for each hook event (the settings file af-wrap
//! writes for the agent). It reads the event's JSON on stdin, records what the agent is doing in
//! its state (`activity`), logs the event (`agent.claude`), and publishes it on the bus topic
//! `agent.<id>.claude`. It always exits 0: a hook's failure must never block the CLI.

use af_spool::message::{Kind, Message, Priority};
use af_spool::record::Event;
use af_spool::{AgentId, ExitCode, Spool, eventlog};
use std::io::Read;

/// The most a hook's input may hold.
const MAX_INPUT: u64 = 1 << 20;

/// Handles one hook event for agent `id`.
pub fn run(id: &str) -> anyhow::Result<ExitCode> {
    if let Err(e) = record(id) {
        tracing::warn!("hook for {id}: {e:#}");
    }
    Ok(ExitCode::Ok)
}

fn record(id: &str) -> anyhow::Result<()> {
    let id = AgentId::new(id)?;
    let spool = Spool::open_default()?;
    let mut text = String::new();
    std::io::stdin().take(MAX_INPUT).read_to_string(&mut text)?;
    let input: serde_json::Value = serde_json::from_str(&text)?;
    let event = input.get("hook_event_name").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let kind = input.get("notification_type").and_then(|v| v.as_str()).unwrap_or_default();
    let asks = event == "Notification" && crate::claude::ASKING.contains(&kind);
    let activity = match event.as_str() {
        "SessionStart" | "Stop" => Some("idle"),
        "UserPromptSubmit" => Some("busy"),
        "StopFailure" => Some("idle"),
        "Notification" if asks || kind == "idle_prompt" || kind.is_empty() => Some("input"),
        "SessionEnd" => Some("ended"),
        _ => None,
    };
    if let Some(a) = activity {
        // A prompt to a person (a permission, a question) is shown with the activity.
        let prompt = asks.then(|| input.get("message").and_then(|m| m.as_str()).unwrap_or(kind).to_owned());
        // While af-wrap waits out a rate limit, that is what the agent is doing, whatever the CLI
        // says about the failed turn.
        spool.update_state(&id, |s| {
            if s.activity.as_deref() != Some("waiting") || a == "ended" {
                s.activity = Some(a.into());
                s.input_since = prompt.is_some().then(af_spool::time::Timestamp::now);
                s.input_prompt = prompt;
            }
        })?;
    }
    let detail = serde_json::json!({
        "event": event,
        "sessionId": input.get("session_id"),
        "transcript": input.get("transcript_path"),
        "input": input,
    });
    // The log keeps a cut-down copy of an oversized input (see af_spool::eventlog::encode); the
    // bus gets it whole, up to its own size limit.
    eventlog::append(&spool, &Event::new("agent.claude", Some(&id), detail.clone()))?;
    publish(&spool, &id, detail);
    Ok(())
}

/// Publishes the event on the bus topic `agent.<id>.claude`, in process (the bus's own size
/// limit applies); a bus that cannot take it is not the hook's problem.
fn publish(spool: &Spool, id: &AgentId, detail: serde_json::Value) {
    let mut m = Message::new(id.as_str(), Kind::Event, Priority::Normal, detail);
    m.topic = Some(format!("agent.{id}.claude"));
    if let Err(e) = af_ops::bus::post(spool, m, &af_ops::bus::Target::Topic, true) {
        tracing::info!("hook event not published on the bus: {e}");
    }
}
