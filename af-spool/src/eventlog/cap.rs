//! Oversized events. A Claude hook's input can be a megabyte (a whole prompt, a tool's output);
//! copied into every line, 200 of them made a 28 MiB log. An event whose line would be over
//! [`MAX_LINE`] keeps its shape, with its long strings cut to prefixes and its long lists and
//! maps cut to their first items, and says so in its detail: `"truncated": true, "bytes": N`,
//! N the size of the original detail's JSON. Keeping the whole payload in a file of its own
//! instead would need a bound and a cleanup of its own; where the whole of it matters, it is
//! somewhere else already (a hook's transcript, a message in a queue).

use crate::error::{Error, Result};
use crate::record::Event;
use serde_json::{Map, Value};

/// The longest line an event is written as, newline included: 16 KiB.
pub const MAX_LINE: usize = 16 << 10;

/// How far a detail is cut, tried in turn until its line fits: the longest string kept (bytes),
/// the most items kept of a list or a map.
const LEVELS: [(usize, usize); 4] = [(4096, 256), (1024, 64), (256, 16), (64, 8)];

/// The line `event` is written as (JSON and a newline), at most [`MAX_LINE`] bytes.
pub fn encode(event: &Event) -> Result<Vec<u8>> {
    let line = to_line(event)?;
    if line.len() <= MAX_LINE {
        return Ok(line);
    }
    let bytes = serde_json::to_vec(&event.detail).map_or(0, |d| d.len());
    for (max_str, max_items) in LEVELS {
        let line = to_line(&with_detail(event, marked(shrink(&event.detail, max_str, max_items), bytes)))?;
        if line.len() <= MAX_LINE {
            return Ok(line);
        }
    }
    // Nothing of it fits (a detail of thousands of nested maps): only what it was.
    to_line(&with_detail(event, marked(Value::Object(Map::new()), bytes)))
}

fn to_line(event: &Event) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(event).map_err(|e| Error::Invalid(format!("cannot serialize event: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

fn with_detail(event: &Event, detail: Value) -> Event {
    Event { time: event.time, kind: event.kind.clone(), agent: event.agent.clone(), by: event.by.clone(), detail }
}

/// The cut detail with the note: in place for a map (its own `truncated` and `bytes`, if any,
/// give way), around anything else as `value`.
fn marked(detail: Value, bytes: usize) -> Value {
    let mut map = match detail {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    map.insert("truncated".into(), Value::Bool(true));
    map.insert("bytes".into(), Value::from(bytes));
    Value::Object(map)
}

fn shrink(v: &Value, max_str: usize, max_items: usize) -> Value {
    match v {
        Value::String(s) if s.len() > max_str => Value::String(prefix(s, max_str).to_owned()),
        Value::Array(items) => {
            Value::Array(items.iter().take(max_items).map(|i| shrink(i, max_str, max_items)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .take(max_items)
                .map(|(k, i)| (prefix(k, max_str).to_owned(), shrink(i, max_str, max_items)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::AgentId;
    use serde_json::json;

    fn event(detail: Value) -> Event {
        Event::new("agent.claude", Some(&AgentId::new("c1").unwrap()), detail)
    }

    #[test]
    fn a_small_event_is_written_as_it_is() {
        let e = event(json!({"event": "Stop", "input": {"prompt": "hi"}}));
        let line = encode(&e).unwrap();
        assert_eq!(line, [serde_json::to_vec(&e).unwrap(), b"\n".to_vec()].concat());
    }

    #[test]
    fn an_oversized_hook_input_is_cut_and_says_how_big_it_was() {
        let prompt = "é".repeat(100_000); // two bytes each: cuts must fall between characters
        let detail = json!({"event": "UserPromptSubmit", "sessionId": "s1",
            "input": {"hook_event_name": "UserPromptSubmit", "prompt": prompt, "cwd": "/w"}});
        let original = serde_json::to_vec(&detail).unwrap().len();
        let line = encode(&event(detail)).unwrap();
        assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let back: Event = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.detail["truncated"], true);
        assert_eq!(back.detail["bytes"], original);
        // The small fields are whole; the prompt is a prefix of itself, as long as the cap allows.
        assert_eq!(back.detail["event"], "UserPromptSubmit");
        assert_eq!(back.detail["input"]["cwd"], "/w");
        let kept = back.detail["input"]["prompt"].as_str().unwrap();
        assert!(prompt.starts_with(kept) && kept.len() >= 1000, "{} bytes kept", kept.len());
    }

    #[test]
    fn any_detail_ends_up_under_the_cap() {
        let many: Vec<Value> = (0..5000).map(|i| json!({"n": i, "s": "x".repeat(50)})).collect();
        let deep = (0..60).fold(json!("leaf"), |v, i| json!({format!("k{i}"): [v, "y".repeat(300)]}));
        let escapes = "\u{1}".repeat(20_000); // six bytes each once escaped
        for detail in [json!(many), deep, json!(escapes), json!({"truncated": "mine", "a": "z".repeat(MAX_LINE)})] {
            let line = encode(&event(detail.clone())).unwrap();
            assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
            let back: Event = serde_json::from_slice(&line).unwrap();
            assert_eq!(back.detail["truncated"], true);
            assert_eq!(back.detail["bytes"], serde_json::to_vec(&detail).unwrap().len());
            assert_eq!(back.kind, "agent.claude");
        }
    }
}
