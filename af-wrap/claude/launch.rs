//! How the CLI is started: its argument list, the hooks settings file, the appended system prompt
//! telling the model how to reach other agents.

use af_spool::claude::Conversation;
use af_spool::record::AgentConfig;
use af_spool::{AgentId, Spool, atomic};
use std::path::Path;

/// The hook events the CLI fires in print mode; each is published on the bus.
pub const HOOK_EVENTS: [&str; 6] =
    ["SessionStart", "UserPromptSubmit", "Stop", "StopFailure", "Notification", "SessionEnd"];

/// What AgentFlow appends to the system prompt of every claude-code agent.
pub fn system_prompt(id: &AgentId, config: &AgentConfig) -> String {
    let mut p = format!(
        "You are AgentFlow agent '{id}' in project '{}'. Other agents are reachable with the af-bus \
program (on PATH; AF_AGENT_ID and AF_HOME are set). A message's data is JSON, so quote text as a JSON \
string: `af-bus request --to AGENT --timeout 540 '\"TEXT\"'` gives another agent a task and waits for \
its answer (printed as JSON; its `result` field is the agent's reply, `isError` says whether it \
failed), `af-bus send --to AGENT --kind task '\"TEXT\"'` hands a task over without waiting, and \
`af-spawn ls` lists the agents. The tasks you receive come the same way: your final message of each \
is sent back to whoever asked, so answer in it directly.",
        config.project_id
    );
    if let Some(extra) = config.claude.as_ref().and_then(|c| c.append_system_prompt.as_deref()) {
        p.push_str("\n\n");
        p.push_str(extra);
    }
    p
}

/// The CLI's argument list (program first): streaming print mode, the agent's own session (new,
/// or resumed when its transcript exists), and the config's model, limits and `remaining` budget
/// (the CLI counts `--max-budget-usd` per process, so it gets what is left of `budgetUsd`).
pub fn argv(
    id: &AgentId,
    config: &AgentConfig,
    conv: &Conversation,
    settings: &Path,
    remaining: Option<f64>,
) -> Vec<String> {
    let mut a: Vec<String> = config.command.clone().unwrap_or_else(|| vec!["claude".into()]);
    for s in ["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"] {
        a.push(s.into());
    }
    let resume = conv.transcript.is_file();
    a.push(if resume { "--resume" } else { "--session-id" }.into());
    a.push(conv.session_id.clone());
    if let Some(model) = config.environment.get("CLAUDE_MODEL").filter(|m| !m.is_empty()) {
        a.extend(["--model".into(), model.clone()]);
    }
    if let Some(b) = remaining {
        a.extend(["--max-budget-usd".into(), dollars(b)]);
    }
    let c = config.claude.clone().unwrap_or_default();
    if let Some(mode) = c.permission_mode {
        a.extend(["--permission-mode".into(), mode]);
    }
    if !c.allowed_tools.is_empty() {
        a.extend(["--allowedTools".into(), c.allowed_tools.join(",")]);
    }
    if let Some(n) = c.max_turns {
        a.extend(["--max-turns".into(), n.to_string()]);
    }
    a.extend(["--append-system-prompt".into(), system_prompt(id, config)]);
    a.extend(["--settings".into(), settings.display().to_string()]);
    a
}

/// The argument list of the CLI as its interactive self: no print mode, the same session, model,
/// permissions, system prompt and hooks.
pub fn interactive_argv(id: &AgentId, config: &AgentConfig, conv: &Conversation, settings: &Path) -> Vec<String> {
    let print_only = ["-p", "--input-format", "--output-format", "--verbose", "--max-budget-usd", "--max-turns"];
    let full = argv(id, config, conv, settings, None);
    let mut out = Vec::new();
    let mut args = full.into_iter().enumerate().peekable();
    while let Some((i, a)) = args.next() {
        if i > 0 && print_only.contains(&a.as_str()) {
            if !matches!(a.as_str(), "-p" | "--verbose") {
                args.next();
            }
            continue;
        }
        out.push(a);
    }
    out
}

/// Dollars as the CLI reads them: up to six decimals, no float noise (`0.005`, not
/// `0.0050000000000000001`).
fn dollars(b: f64) -> String {
    let s = format!("{b:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Writes the settings file whose hooks run `af-wrap --hook ID` on every event.
pub fn write_settings(spool: &Spool, id: &AgentId) -> af_spool::Result<std::path::PathBuf> {
    let path = spool.claude_settings_path(id);
    let me = std::env::current_exe().unwrap_or_else(|_| af_cli::sibling_program("af-wrap"));
    let command = format!(
        "AF_HOME={} {} --hook {}",
        shell_quote(&spool.root().display().to_string()),
        shell_quote(&me.display().to_string()),
        shell_quote(id.as_str())
    );
    let mut hooks = serde_json::Map::new();
    for event in HOOK_EVENTS {
        hooks.insert(
            event.into(),
            serde_json::json!([{"hooks": [{"type": "command", "command": command, "timeout": 10}]}]),
        );
    }
    atomic::write_json(&path, &serde_json::json!({ "hooks": hooks }), atomic::Durability::Volatile)?;
    Ok(path)
}
