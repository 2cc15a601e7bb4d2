//! The JSONL events `codex exec --json` prints, one per line: what af-wrap needs from each, and
//! how each is shown in the tmux pane. As 0.171.0 prints them: `thread.started` (the session's
//! `thread_id`), `turn.started`, `item.started`/`item.updated`/`item.completed` (an `item` with
//! `id` and `type`: `agent_message` with `text`, `reasoning`, `command_execution`, `file_change`,
//! `mcp_tool_call`, `web_search`, `todo_list`, `error` with `message`), `error` (a notice with
//! `message`: the CLI also prints its reconnection attempts this way, so it does not end the
//! turn), `turn.completed` (with `usage`) and `turn.failed` (with `error.message`).

use af_spool::claude::Tokens;
use serde_json::Value;

/// One event, as af-wrap reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session (new or resumed) and its id.
    ThreadStarted(String),
    /// An item ended: its type and its text (the message, the command, the error).
    Item { kind: String, text: String },
    /// A notice (`error` event): the turn goes on.
    Notice(String),
    /// The turn ended well; the tokens it used.
    TurnCompleted(Tokens),
    /// The turn failed; the reason.
    TurnFailed(String),
    /// Anything else (`turn.started`, `item.started`, …).
    Other(String),
}

fn s(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Parses a line; `None` when it is not JSON.
pub fn parse(line: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(line).ok()?;
    let kind = s(&v, "/type");
    Some(match kind.as_str() {
        "thread.started" => Event::ThreadStarted(s(&v, "/thread_id")),
        "item.completed" => {
            let item = v.get("item").cloned().unwrap_or_default();
            let kind = s(&item, "/type");
            let text = ["/text", "/message", "/command", "/query"]
                .iter()
                .map(|p| s(&item, p))
                .find(|t| !t.is_empty())
                .unwrap_or_default();
            Event::Item { kind, text }
        }
        "error" => Event::Notice(s(&v, "/message")),
        "turn.completed" => {
            let n = |k: &str| v.pointer(&format!("/usage/{k}")).and_then(Value::as_u64).unwrap_or(0);
            let cached = n("cached_input_tokens");
            Event::TurnCompleted(Tokens {
                // The CLI's input_tokens include the cached ones; AgentFlow counts them apart.
                input: n("input_tokens").saturating_sub(cached),
                output: n("output_tokens") + n("reasoning_output_tokens"),
                cache_read: cached,
                cache_creation: 0,
            })
        }
        "turn.failed" => Event::TurnFailed(s(&v, "/error/message")),
        _ => Event::Other(kind),
    })
}

/// How an event is shown in the tmux pane; `None` for events not worth showing.
pub fn render(e: &Event) -> Option<String> {
    let clip = |t: &str| crate::claude::stream::clip(t, 200);
    match e {
        Event::ThreadStarted(id) => Some(format!("── session {id}")),
        Event::Item { kind, text } if kind == "agent_message" => {
            Some(format!("codex: {}", text.trim_end().replace('\n', "\n       ")))
        }
        Event::Item { kind, .. } if kind == "reasoning" => None,
        Event::Item { kind, text } => Some(format!("  ⚙ {kind} {}", clip(text))),
        Event::Notice(m) => Some(format!("  ! {}", clip(m))),
        Event::TurnCompleted(t) => {
            Some(format!("── turn done: {} input, {} cached, {} output tokens", t.input, t.cache_read, t.output))
        }
        Event::TurnFailed(m) => Some(format!("── turn failed: {}", clip(m))),
        Event::Other(_) => None,
    }
}

/// What a failed turn's message says, as an answer's `error`: `authentication_failed`,
/// `rate_limit`, else `turn_failed`.
pub fn classify(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if any(&["401", "unauthorized", "not logged in", "authentication", "api key", "login"]) {
        "authentication_failed"
    } else if any(&["429", "rate limit", "usage limit", "too many requests", "quota"]) {
        "rate_limit"
    } else {
        "turn_failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_events_of_a_turn() {
        assert_eq!(
            parse(r#"{"type":"thread.started","thread_id":"01a22df6-0a51-7d33-a571-fd10b0bf9e2d"}"#),
            Some(Event::ThreadStarted("01a22df6-0a51-7d33-a571-fd10b0bf9e2d".into()))
        );
        assert_eq!(
            parse(r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"done"}}"#),
            Some(Event::Item { kind: "agent_message".into(), text: "done".into() })
        );
        let done = parse(
            r#"{"type":"turn.completed","usage":{"input_tokens":1200,"cached_input_tokens":200,"output_tokens":345}}"#,
        );
        assert_eq!(
            done,
            Some(Event::TurnCompleted(Tokens { input: 1000, output: 345, cache_read: 200, cache_creation: 0 }))
        );
        assert_eq!(
            parse(r#"{"type":"turn.failed","error":{"message":"boom"}}"#),
            Some(Event::TurnFailed("boom".into()))
        );
        let notice = parse(r#"{"type":"error","message":"Reconnecting... 2/5 (stream disconnected)"}"#).unwrap();
        assert!(matches!(notice, Event::Notice(_)), "a notice does not end the turn");
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(classify("unexpected status 401 Unauthorized: Missing bearer"), "authentication_failed");
        assert_eq!(classify("You've hit your usage limit. Try again in 3 hours."), "rate_limit");
        assert_eq!(classify("stream disconnected before completion"), "turn_failed");
    }
}
