//! An agent CLI's conversation as messages, read from the transcript the CLI keeps (the state's
//! `conversation`): role, text, tool calls summarized, paged by a cursor (the transcript's line
//! number), with the agent's spending so far and its budget. Each CLI writes its own transcript
//! format: a [`Format`] reads one line of it; [`format_of`] picks the format of an agent type, so
//! another CLI plugs in with its own `Format` and one arm there.

use af_spool::record::{AgentConfig, AgentType};
use af_spool::{AgentId, Error, Result, Spool};
use serde::Serialize;
use serde_json::Value;
use std::io::{BufRead, BufReader};

/// The most messages one page holds.
pub const MAX_LIMIT: usize = 500;
/// How many characters of a message's text a page keeps (the rest is cut, marked `truncated`).
pub const MAX_TEXT: usize = 8000;
/// How many characters of a tool call's input or result its summary keeps.
const SUMMARY: usize = 160;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Its cursor: pass it as `after` to page on from it.
    pub cursor: u64,
    /// `user`, `assistant` or `tool` (a tool's result).
    pub role: String,
    /// Its text (tool results: their output, summarized).
    pub text: String,
    /// The tool calls it makes, summarized.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolCall>,
    /// When it was written, as the CLI says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Whether the CLI marked it an error (a failed tool, an API error).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    /// Whether its text was cut at [`MAX_TEXT`] characters.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A tool call, summarized: the tool and the gist of its input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The gist of its input (the command, the file, the pattern…).
    pub summary: String,
}

/// A page of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// The agent.
    pub id: AgentId,
    /// The CLI whose transcript this is (the agent's type).
    pub cli: String,
    /// The CLI's session, if the agent has one yet.
    pub session: Option<String>,
    /// The messages after the cursor asked for, oldest first.
    pub messages: Vec<Entry>,
    /// The cursor to ask for next (the last message's, or the one asked for when none came).
    pub next: u64,
    /// Whether more messages follow this page.
    pub more: bool,
    /// What the agent has spent so far (US dollars).
    pub cost_usd: f64,
    /// Its budget, if it has one.
    pub budget_usd: Option<f64>,
    /// What it is doing: `idle`, `busy`, `waiting`, `input`, `ended`.
    pub activity: Option<String>,
    /// While `waiting`: when it resumes.
    pub waiting_until: Option<String>,
    /// While `input`: what the CLI asks.
    pub input_prompt: Option<String>,
}

/// One CLI's transcript format.
pub trait Format: Sync {
    /// The CLI's name, as the agent type names it.
    fn name(&self) -> &'static str;
    /// The messages one transcript line holds (none for bookkeeping lines).
    fn read(&self, line: &Value) -> Vec<(String, String, Vec<ToolCall>, bool)>;
    /// When the line was written, if it says.
    fn time(&self, line: &Value) -> Option<String> {
        line.get("timestamp").and_then(Value::as_str).map(str::to_owned)
    }
}

/// The transcript format of an agent type; `None` for types that run no agent CLI.
pub fn format_of(kind: AgentType) -> Option<&'static dyn Format> {
    match kind {
        AgentType::ClaudeCode => Some(&ClaudeCode),
        _ => None,
    }
}

/// A page of agent `id`'s conversation: up to `limit` messages after cursor `after`.
pub fn page(spool: &Spool, id: &AgentId, after: u64, limit: usize) -> Result<Page> {
    let obs = spool.observe(id)?;
    let config: &AgentConfig = &obs.config;
    let format = format_of(config.kind).ok_or_else(|| {
        Error::Invalid(format!(
            "agent '{id}' is a {} agent: it runs no agent CLI, so it has no conversation",
            config.kind.as_str()
        ))
    })?;
    let limit = limit.clamp(1, MAX_LIMIT);
    let state = &obs.state;
    let mut page = Page {
        id: id.clone(),
        cli: format.name().to_owned(),
        session: state.conversation.as_ref().map(|c| c.session_id.clone()),
        messages: Vec::new(),
        next: after,
        more: false,
        cost_usd: state.cost_usd,
        budget_usd: config.budget_usd,
        activity: state.activity.clone(),
        waiting_until: state.waiting_until.map(|t| t.rfc3339()),
        input_prompt: state.input_prompt.clone(),
    };
    let Some(conv) = &state.conversation else { return Ok(page) };
    let Some(file) = af_spool::beneath::open_read(&conv.transcript)? else { return Ok(page) };
    let mut cursor = 0u64;
    'lines: for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| Error::io("read", &conv.transcript, e))?;
        cursor += 1;
        if cursor <= after {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&line) else { continue };
        for (role, text, tools, error) in format.read(&v) {
            if page.messages.len() == limit {
                page.more = true;
                break 'lines;
            }
            let truncated = text.chars().count() > MAX_TEXT;
            let text = if truncated { text.chars().take(MAX_TEXT).collect() } else { text };
            page.messages.push(Entry { cursor, role, text, tools, time: format.time(&v), error, truncated });
            page.next = cursor;
        }
    }
    Ok(page)
}

fn cut(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        return one_line;
    }
    let mut out: String = one_line.chars().take(n).collect();
    out.push('…');
    out
}

/// Claude Code's transcript (`~/.claude/projects/<cwd>/<session>.jsonl`): one JSON line per
/// entry; `user` and `assistant` entries carry the API's `message` (`content`: a string, or
/// blocks: `text`, `tool_use`, `tool_result`, `thinking`).
pub struct ClaudeCode;

impl ClaudeCode {
    fn tool_summary(input: &Value) -> String {
        let field = ["command", "file_path", "path", "pattern", "url", "query", "description", "prompt"]
            .iter()
            .find_map(|k| input.get(*k).and_then(Value::as_str));
        let gist = match field {
            Some(s) => s.to_owned(),
            None if input.is_null() => String::new(),
            None => input.to_string(),
        };
        cut(&gist, SUMMARY)
    }

    fn block_text(content: &Value) -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                    Some("text") => b.get("text").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
}

impl Format for ClaudeCode {
    fn name(&self) -> &'static str {
        "claude-code"
    }

    fn read(&self, line: &Value) -> Vec<(String, String, Vec<ToolCall>, bool)> {
        let kind = line.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "user" && kind != "assistant" || line.get("isMeta") == Some(&Value::Bool(true)) {
            return Vec::new();
        }
        let content = &line["message"]["content"];
        let line_error = line.get("error").is_some_and(|e| !e.is_null())
            || line.get("isApiErrorMessage") == Some(&Value::Bool(true));
        let mut out = Vec::new();
        let blocks = content.as_array().cloned().unwrap_or_default();
        // Tool results come back in user entries: each one its own `tool` message.
        for b in blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")) {
            let text = match b.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(c) => Self::block_text(c),
                None => String::new(),
            };
            let error = b.get("is_error") == Some(&Value::Bool(true));
            out.push(("tool".to_owned(), cut(&text, SUMMARY * 4), Vec::new(), error));
        }
        let tools: Vec<ToolCall> = blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .map(|b| {
                let name = b.get("name").and_then(Value::as_str).unwrap_or("tool").to_owned();
                let summary = Self::tool_summary(b.get("input").unwrap_or(&Value::Null));
                ToolCall { name, summary }
            })
            .collect();
        let text = Self::block_text(content);
        if !text.is_empty() || !tools.is_empty() {
            out.push((kind.to_owned(), text, tools, line_error));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claude_code_lines_become_messages_with_tool_calls_summarized() {
        let f = ClaudeCode;
        let user = json!({"type": "user", "message": {"role": "user", "content": "hello"}, "timestamp": "2026-01-01T00:00:00Z"});
        assert_eq!(f.read(&user), vec![("user".into(), "hello".into(), vec![], false)]);
        assert_eq!(f.time(&user).as_deref(), Some("2026-01-01T00:00:00Z"));
        let call = json!({"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la\n  /tmp", "description": "list"}}]}});
        let got = f.read(&call);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "Let me look.");
        assert_eq!(got[0].2, vec![ToolCall { name: "Bash".into(), summary: "ls -la /tmp".into() }]);
        let result = json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a\nb", "is_error": true}]}});
        assert_eq!(f.read(&result), vec![("tool".into(), "a b".into(), vec![], true)]);
        for skipped in [
            json!({"type": "summary", "summary": "x"}),
            json!({"type": "system", "content": "x"}),
            json!({"type": "user", "isMeta": true, "message": {"content": "caveat"}}),
        ] {
            assert!(f.read(&skipped).is_empty(), "{skipped}");
        }
        let failed = json!({"type": "assistant", "error": "rate_limit", "message": {"content": [{"type": "text", "text": "You've hit your limit"}]}});
        assert!(f.read(&failed)[0].3);
    }

    #[test]
    fn only_agent_clis_have_a_format() {
        assert_eq!(format_of(AgentType::ClaudeCode).map(|f| f.name()), Some("claude-code"));
        assert!(format_of(AgentType::Worker).is_none());
    }
}
