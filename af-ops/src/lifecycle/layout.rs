//! An agent's tmux layout: the session `agent-<id>`, window `main` running af-wrap, and window
//! `monitor` running `af-spawn top`, opened by a session hook when a client attaches or switches
//! to the session. One description serves both `start` (run) and `script` (printed).

use crate::process;
use crate::tmux::{self, Tmux};
use af_spool::Spool;
use af_spool::record::{AgentConfig, SecretSource};
use std::path::PathBuf;

/// The tmux commands (each an argv without `tmux`) that build the agent's session.
pub fn commands(spool: &Spool, tmux: &Tmux, config: &AgentConfig, workdir: &std::path::Path) -> Vec<Vec<String>> {
    let session = config.id.session();
    let wrap = process::sibling_program("af-wrap");
    let spawn = process::sibling_program("af-spawn");
    let mut new_session: Vec<String> =
        vec!["new-session".into(), "-d".into(), "-s".into(), session.clone(), "-n".into(), "main".into()];
    new_session.extend(["-c".into(), workdir.display().to_string()]);
    for (k, v) in environment(spool, tmux, config) {
        new_session.extend(["-e".into(), format!("{k}={v}")]);
    }
    new_session.extend(["--".into(), wrap.display().to_string(), config.id.to_string()]);
    let target = format!("{}:", tmux::exact(&session));
    // `-S -d`: nothing happens when the window is there already.
    let monitor = format!(
        "new-window -d -S -n monitor -t {} -- {} top {}",
        tmux::shell_quote(&target),
        tmux::shell_quote(&spawn.display().to_string()),
        tmux::shell_quote(config.id.as_str())
    );
    // A shell opens the file, and a shell cannot open without following a symlink: `start` makes
    // the file first (refusing a link), and the shell appends only to a regular file, not a link.
    let log = tmux::shell_quote(&spool.output_log_path(&config.id).display().to_string());
    let capture = format!("test -f {log} && test ! -h {log} && exec cat >> {log}");
    let mut commands = vec![
        new_session,
        // In the same tmux call, so the server attaches the pipe before it reads any output.
        vec!["pipe-pane".into(), "-t".into(), format!("{}:main", tmux::exact(&session)), capture],
        vec!["set-option".into(), "-t".into(), target.clone(), tmux::MARKER.into(), spool.root().display().to_string()],
    ];
    // The monitor window opens when a client looks: attaching to the session or switching to it.
    // An agent nobody watches costs one pane and no `top` process.
    for hook in ["client-attached", "client-session-changed"] {
        commands.push(vec!["set-hook".into(), "-t".into(), target.clone(), hook.into(), monitor.clone()]);
    }
    commands
}

/// What a session never takes from the caller's environment: the spool and server are set
/// explicitly, and the identity is the new agent's, not that of an agent we may run in.
const NOT_INHERITED: [&str; 7] = [
    "AF_HOME",
    "AF_TMUX_SOCKET",
    "AF_AGENT_ID",
    "AF_PROJECT_ID",
    "AF_AGENT_TYPE",
    GENERATION_VAR,
    crate::secrets::HANDOFF_VAR,
];

/// The session's environment: the spool and tmux server, this shell's PATH and AF_* settings,
/// then the config's environment.
fn environment(spool: &Spool, tmux: &Tmux, config: &AgentConfig) -> Vec<(String, String)> {
    // A variable a secret is taken from reaches the agent's process through af-wrap alone.
    let taken = crate::secrets::taken();
    let secret = |k: &str| {
        taken.iter().any(|t| t == k) || config.secrets.values().any(|s| matches!(s, SecretSource::Env(v) if v == k))
    };
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| (k.starts_with("AF_") && !NOT_INHERITED.contains(&k.as_str())) || k == "PATH")
        .filter(|(k, _)| !secret(k))
        .collect();
    env.push(("AF_HOME".into(), spool.root().display().to_string()));
    if let Some(s) = tmux.socket() {
        env.push(("AF_TMUX_SOCKET".into(), s.to_owned()));
    }
    env.push(("AF_AGENT_ID".into(), config.id.to_string()));
    env.push(("AF_PROJECT_ID".into(), config.project_id.clone()));
    env.extend(config.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// The variable that tells af-wrap which start launched it (the agent's generation then).
pub const GENERATION_VAR: &str = "AF_START_GENERATION";

/// Adds the start's generation to the session's environment (the first command makes it), so
/// that af-wrap claims that start and no later one.
pub fn set_generation(commands: &mut [Vec<String>], generation: u64) {
    set_var(commands, GENERATION_VAR, &generation.to_string());
}

/// Adds a variable to the session's environment (the first command makes the session).
pub fn set_var(commands: &mut [Vec<String>], name: &str, value: &str) {
    if let Some(new_session) = commands.first_mut() {
        let at = new_session.iter().position(|a| a == "--").unwrap_or(new_session.len());
        new_session.splice(at..at, ["-e".to_owned(), format!("{name}={value}")]);
    }
}

/// Joins the commands into one tmux invocation (`a ; b ; c`), so the layout appears at once.
pub fn chained(commands: Vec<Vec<String>>) -> Vec<String> {
    let mut args = Vec::new();
    for (i, c) in commands.into_iter().enumerate() {
        if i > 0 {
            args.push(";".into());
        }
        args.extend(c);
    }
    args
}

/// The agent's working directory: its config's, else the spool root's parent is no good guess, so
/// the directory recorded at create time (always set by `create`).
pub fn workdir(config: &AgentConfig) -> PathBuf {
    config.workdir.clone().unwrap_or_else(|| PathBuf::from("/"))
}
