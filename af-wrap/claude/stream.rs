//! The CLI's stream-json output, one line at a time: what af-wrap needs from each line, and how
//! the line is shown to a person watching the tmux pane.

use af_spool::claude::Tokens;
use serde_json::Value;

/// The end of one turn (`type: "result"`).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnResult {
    /// Whether the turn failed (the only field to trust: a failed turn may say "success").
    pub is_error: bool,
    /// `success`, `error_max_turns`, `error_during_execution`, …
    pub subtype: String,
    /// The result text.
    pub text: String,
    /// Model turns.
    pub num_turns: u32,
    /// Wall time of the turn.
    pub duration_ms: u64,
    /// The session's running total cost, when given.
    pub total_cost_usd: Option<f64>,
    /// The session.
    pub session_id: Option<String>,
    /// Tokens from `modelUsage` (summed over models), when given.
    pub tokens: Option<Tokens>,
    /// The tool calls the CLI refused during the turn (`permission_denials`).
    pub permission_denials: Vec<PermissionDenial>,
}

/// A tool call the CLI refused: the tool and a summary of its input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PermissionDenial {
    /// The tool (`Bash`, `Edit`, …).
    pub tool: String,
    /// What it was asked to do (the command, the file, …), cut to 200 characters.
    pub input: String,
}

/// One line of the CLI's output, as af-wrap reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `system/init`: the session has started (or resumed).
    Init { session_id: String, model: String },
    /// A message of the model: its text blocks, tool uses, and an `error` code when the turn failed
    /// before reaching the model (`authentication_failed`, `rate_limit`, …).
    Assistant { text: String, tools: Vec<String>, error: Option<String> },
    /// Tool results going back to the model.
    User { results: usize },
    /// The end of a turn.
    Result(TurnResult),
    /// `rate_limit_event`: the account's usage limit, `status` `allowed` (informational, sometimes
    /// without a reset) or `rejected` (the turn fails; `resets_at` in Unix seconds).
    RateLimit { status: String, resets_at: Option<u64>, kind: Option<String> },
    /// The answer to a control request (an interrupt).
    ControlResponse { request_id: String, ok: bool },
    /// Anything else (other system messages, stream events).
    Other(String),
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Parses a line; `None` when it is not JSON.
pub fn parse(line: &str) -> Option<Line> {
    let v: Value = serde_json::from_str(line).ok()?;
    let kind = s(&v, "type");
    Some(match kind.as_str() {
        "system" if s(&v, "subtype") == "init" => Line::Init { session_id: s(&v, "session_id"), model: s(&v, "model") },
        "assistant" => {
            let content = v.pointer("/message/content").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut text = Vec::new();
            let mut tools = Vec::new();
            for block in &content {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => text.push(s(block, "text")),
                    Some("tool_use") => tools.push(tool_summary(block)),
                    _ => {}
                }
            }
            let error = v.get("error").and_then(Value::as_str).map(str::to_owned);
            Line::Assistant { text: text.join("\n"), tools, error }
        }
        "user" => Line::User {
            results: v.pointer("/message/content").and_then(Value::as_array).map_or(0, |c| {
                c.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")).count()
            }),
        },
        "result" => Line::Result(TurnResult {
            is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(true),
            subtype: s(&v, "subtype"),
            text: match v.get("result") {
                Some(Value::String(t)) => t.clone(),
                _ => v.get("errors").map(|e| e.to_string()).unwrap_or_default(),
            },
            num_turns: v.get("num_turns").and_then(Value::as_u64).unwrap_or(0) as u32,
            duration_ms: v.get("duration_ms").and_then(Value::as_u64).unwrap_or(0),
            total_cost_usd: v.get("total_cost_usd").and_then(Value::as_f64).filter(|c| c.is_finite() && *c >= 0.0),
            session_id: v.get("session_id").and_then(Value::as_str).map(str::to_owned),
            tokens: v.get("modelUsage").and_then(Value::as_object).map(|models| {
                let n = |m: &Value, k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
                models.values().fold(Tokens::default(), |t, m| {
                    t.plus(Tokens {
                        input: n(m, "inputTokens"),
                        output: n(m, "outputTokens"),
                        cache_read: n(m, "cacheReadInputTokens"),
                        cache_creation: n(m, "cacheCreationInputTokens"),
                    })
                })
            }),
            permission_denials: v.get("permission_denials").and_then(Value::as_array).map_or(Vec::new(), |ds| {
                ds.iter()
                    .map(|d| PermissionDenial {
                        tool: s(d, "tool_name"),
                        input: input_summary(d.get("tool_input").unwrap_or(&Value::Null), 200),
                    })
                    .collect()
            }),
        }),
        "rate_limit_event" => Line::RateLimit {
            status: v.pointer("/rate_limit_info/status").and_then(Value::as_str).unwrap_or_default().to_owned(),
            resets_at: v.pointer("/rate_limit_info/resetsAt").and_then(Value::as_u64),
            kind: v.pointer("/rate_limit_info/rateLimitType").and_then(Value::as_str).map(str::to_owned),
        },
        "control_response" => Line::ControlResponse {
            request_id: v.pointer("/response/request_id").and_then(Value::as_str).unwrap_or_default().to_owned(),
            ok: v.pointer("/response/subtype").and_then(Value::as_str) == Some("success"),
        },
        _ => Line::Other(kind),
    })
}

fn tool_summary(block: &Value) -> String {
    let name = s(block, "name");
    format!("{name}({})", input_summary(block.get("input").unwrap_or(&Value::Null), 100))
}

/// What a tool's input asks, in at most `n` characters: its command, file, pattern or URL, else
/// the input as JSON.
fn input_summary(input: &Value, n: usize) -> String {
    let detail = ["command", "file_path", "pattern", "url", "description"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| if input.is_null() { String::new() } else { input.to_string() });
    clip(&detail, n)
}

/// At most `n` characters of the first line of `text`, marked when cut.
pub fn clip(text: &str, n: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    let cut: String = first.chars().take(n).collect();
    if cut.len() < text.trim_end().len() { format!("{cut}…") } else { cut }
}

/// How a line is shown in the tmux pane; `None` for lines not worth showing.
pub fn render(line: &Line) -> Option<String> {
    match line {
        Line::Init { session_id, model } => Some(format!("── session {session_id} ({model})")),
        Line::Assistant { text, tools, error } => {
            let mut out = Vec::new();
            if !text.is_empty() {
                out.push(format!("claude: {}", text.trim_end().replace('\n', "\n        ")));
            }
            out.extend(tools.iter().map(|t| format!("  ⚙ {t}")));
            if let Some(e) = error {
                out.push(format!("  ✗ error: {e}"));
            }
            (!out.is_empty()).then(|| out.join("\n"))
        }
        Line::User { results } if *results > 0 => Some(format!("  ← {results} tool result(s)")),
        Line::Result(r) => Some(format!(
            "── turn {}: {} turn(s), {:.1}s, session cost ${:.4}",
            if r.is_error { "failed" } else { "done" },
            r.num_turns,
            r.duration_ms as f64 / 1000.0,
            r.total_cost_usd.unwrap_or(0.0)
        )),
        Line::RateLimit { status, resets_at, kind } if status != "allowed" => Some(format!(
            "── usage limit {status} ({}), resets at {}",
            kind.as_deref().unwrap_or("?"),
            resets_at.map_or("?".into(), |s| af_spool::time::Timestamp(s * 1000).rfc3339())
        )),
        Line::ControlResponse { request_id, ok } => {
            Some(format!("── control {request_id}: {}", if *ok { "ok" } else { "refused" }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_result_with_model_usage() {
        let line = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"num_turns":2,
            "result":"done","session_id":"s1","total_cost_usd":0.25,
            "modelUsage":{"a":{"inputTokens":10,"outputTokens":5,"cacheReadInputTokens":100,"cacheCreationInputTokens":7},
                          "b":{"inputTokens":1,"outputTokens":1}}}"#
            .replace('\n', "");
        let Some(Line::Result(r)) = parse(&line) else { panic!("not a result") };
        assert!(!r.is_error);
        assert_eq!(r.total_cost_usd, Some(0.25));
        assert_eq!(r.tokens, Some(Tokens { input: 11, output: 6, cache_read: 100, cache_creation: 7 }));
        assert!(r.permission_denials.is_empty());
    }

    #[test]
    fn reads_permission_denials() {
        let line = r#"{"type":"result","subtype":"success","is_error":false,"result":"I could not","permission_denials":[{"tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"rm -rf build","description":"Clean"}},{"tool_name":"Write","tool_use_id":"t2","tool_input":{"file_path":"/etc/x","content":"y"}}]}"#;
        let Some(Line::Result(r)) = parse(line) else { panic!("not a result") };
        let d = |tool: &str, input: &str| PermissionDenial { tool: tool.into(), input: input.into() };
        assert_eq!(r.permission_denials, [d("Bash", "rm -rf build"), d("Write", "/etc/x")]);
    }

    #[test]
    fn trusts_is_error_over_the_subtype() {
        let Some(Line::Result(r)) = parse(r#"{"type":"result","subtype":"success","is_error":true,"result":"x"}"#)
        else {
            panic!()
        };
        assert!(r.is_error);
    }

    #[test]
    fn reads_assistant_errors_and_tools() {
        let l = parse(
            r#"{"type":"assistant","error":"authentication_failed","message":{"content":[{"type":"text","text":"Not logged in"},{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}"#,
        );
        assert_eq!(
            l,
            Some(Line::Assistant {
                text: "Not logged in".into(),
                tools: vec!["Bash(ls)".into()],
                error: Some("authentication_failed".into())
            })
        );
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn reads_rate_limit_events() {
        let l = parse(
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1767225600,"rateLimitType":"five_hour","overageStatus":"rejected","isUsingOverage":false},"uuid":"u","session_id":"s"}"#,
        );
        let want = Line::RateLimit {
            status: "rejected".into(),
            resets_at: Some(1_767_225_600),
            kind: Some("five_hour".into()),
        };
        assert_eq!(l, Some(want));
        let allowed = parse(r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#).unwrap();
        assert_eq!(allowed, Line::RateLimit { status: "allowed".into(), resets_at: None, kind: None });
        assert_eq!(render(&allowed), None, "allowed is not worth showing");
    }
}
