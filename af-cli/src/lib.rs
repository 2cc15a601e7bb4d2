//! What every program does the same way around its own work: the umask, logging through tracing,
//! man pages and completions from the clap definition, and turning errors into one line on stderr
//! and an exit code.

pub mod complete;
pub mod journald;
mod logging;
pub mod progress;

pub use logging::init_logging;

use af_spool::error::{Error, ExitCode};
use std::ffi::OsString;
use std::io::Write;

pub use af_ops::process::{sibling_program, user_umask};
pub use af_spool::record::program_name;

/// Prints a JSON document on stdout: one line, or indented for people with `--pretty`.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = json_text(value)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// A JSON document as the program prints it: one line, or indented with `--pretty`.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    if PRETTY.load(std::sync::atomic::Ordering::Relaxed) {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
}

static PRETTY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The program's command line: its own clap definition plus, where it has `--json`, the global
/// `--pretty` every such program shares.
pub fn command<C: clap::CommandFactory>() -> clap::Command {
    let cmd = C::command();
    if !cmd.get_arguments().any(|a| a.get_id() == "json") {
        return cmd;
    }
    cmd.arg(
        clap::Arg::new("pretty")
            .long("pretty")
            .global(true)
            .action(clap::ArgAction::SetTrue)
            .help("Print JSON indented over several lines, for people (implies --json)"),
    )
}

/// The Redis that hosts meet through (`af-bus bridge`, `af-spawn ls --cluster`).
#[derive(clap::Args, Debug, Clone)]
pub struct Redis {
    /// The Redis the hosts meet through: redis://[user:password@]host:port[/db], or rediss://
    /// for TLS (checked against the system's roots, or the CA in the PEM file AF_REDIS_CA;
    /// AF_REDIS_CERT and AF_REDIS_KEY give a client certificate). This host's name is AF_HOST,
    /// else the hostname.
    #[arg(
        long = "redis",
        env = "AF_REDIS_URL",
        hide_env_values = true,
        value_name = "URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub url: String,
}

/// Prints a line on stdout.
pub fn print_line(text: &str) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// Where a program's logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// To stderr (one-shot programs).
    Stderr,
    /// The program sets up its own (af-wrap logs to the agent's log file).
    Own,
}

/// Runs a program: raises the soft descriptor limit to the hard one, sets the umask to 077 (records 0600, directories 0700), answers
/// `--generate man|bash|zsh|fish|elvish|powershell`, parses the command line, sets up logging,
/// runs `run`, and maps its error to one line on stderr and the shared exit code.
pub fn main<C: clap::Parser>(logs: Logs, run: impl FnOnce(C) -> anyhow::Result<ExitCode>) -> std::process::ExitCode {
    af_ops::process::raise_nofile();
    let user = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    af_ops::process::remember_user_umask(user.bits() as u32);
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "--generate") {
        return generate(command::<C>(), args.get(2).and_then(|s| s.to_str()).unwrap_or(""));
    }
    // The completion scripts' hidden verb (see `complete`): before parsing, so no help shows it.
    if args.get(1).is_some_and(|a| a == "complete") {
        let word = |i: usize| args.get(i).and_then(|s| s.to_str());
        return complete::answer(word(2).unwrap_or(""), word(3));
    }
    let given = |flag: &str| args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == flag);
    let pretty = given("--pretty");
    let json = pretty || given("--json");
    if pretty && !given("--json") {
        // --pretty implies --json: every program with --pretty has --json at the top.
        args.insert(1, "--json".into());
    }
    PRETTY.store(pretty, std::sync::atomic::Ordering::Relaxed);
    JSON_ERRORS.store(json, std::sync::atomic::Ordering::Relaxed);
    let parsed = command::<C>().try_get_matches_from(&args).and_then(|m| C::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // Help and version are answers, not errors; a usage error is one JSON line with --json.
        Err(e) if json && e.use_stderr() => {
            let first = e.to_string().lines().next().unwrap_or("").trim_start_matches("error: ").to_owned();
            let _ = writeln!(std::io::stderr(), "{}", error_json("usage", &first));
            return std::process::ExitCode::from(ExitCode::Usage as u8);
        }
        Err(e) => e.exit(),
    };
    if logs == Logs::Stderr {
        init_logging(None);
    }
    match run(cli) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(err) => report(&err),
    }
}

static JSON_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The error document a program prints on stderr with `--json`: `{"error": KIND, "message": …}`,
/// one line. The kind is the typed error's (`invalid`, `not-found`, `conflict`, `timeout`,
/// `interrupted`, `io`, `corrupt`, `system`, `agent-failed`, `unrecorded`), or `usage` for the
/// command line.
pub fn error_json(kind: &str, message: &str) -> String {
    serde_json::json!({"error": kind, "message": message}).to_string()
}

/// The kind of an error chain: its first typed error's, else `invalid` for bad JSON input, else
/// `system`.
pub fn error_kind(err: &anyhow::Error) -> &'static str {
    match decisive_cause(err) {
        Cause::Typed(e) => e.kind(),
        Cause::Json => "invalid",
        Cause::Other => "system",
    }
}

/// What decides an error chain's exit code and kind: its first typed error, else a bare JSON
/// error (invalid input), else nothing we know.
enum Cause<'a> {
    Typed(&'a Error),
    Json,
    Other,
}

fn decisive_cause(err: &anyhow::Error) -> Cause<'_> {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return Cause::Typed(e);
        }
        if cause.downcast_ref::<serde_json::Error>().is_some() {
            return Cause::Json;
        }
    }
    Cause::Other
}

/// Prints `af-<tool>: <error>` (with `--json`, the error document of [`error_json`]) and returns
/// its exit code; a broken pipe on stdout ends quietly.
pub fn report(err: &anyhow::Error) -> std::process::ExitCode {
    let broken_pipe = err
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe));
    if broken_pipe {
        return std::process::ExitCode::SUCCESS;
    }
    let code = exit_code_of(err);
    if JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = writeln!(std::io::stderr(), "{}", error_json(error_kind(err), &format!("{err:#}")));
    } else {
        let _ = writeln!(std::io::stderr(), "{}: {err:#}", program_name());
    }
    std::process::ExitCode::from(code as u8)
}

/// Renders the program's man page, with the shared EXIT STATUS and ENVIRONMENT sections.
pub fn man_page(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    let name = cmd.get_name().to_owned();
    let man = clap_mangen::Man::new(cmd.clone());
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    // One page per program: each verb is a section of it, not a page of its own.
    let verbs: Vec<clap::Command> = cmd.get_subcommands().filter(|c| c.get_name() != "help").cloned().collect();
    if !verbs.is_empty() {
        out.extend_from_slice(b".SH COMMANDS\n");
    }
    for verb in verbs {
        let full = format!("{name} {}", verb.get_name());
        let about = verb.get_about().map(|a| a.to_string()).unwrap_or_default().replace('\\', "\\\\");
        let sub = clap_mangen::Man::new(verb.bin_name(full.clone()));
        let mut section = Vec::new();
        let _ = sub.render_synopsis_section(&mut section);
        let _ = sub.render_options_section(&mut section);
        let text = String::from_utf8_lossy(&section)
            .replace(".SH SYNOPSIS\n", &format!(".SS \"{full}\"\n{about}\n.PP\n"))
            .replace(".SH OPTIONS\n", "");
        out.extend_from_slice(text.as_bytes());
    }
    let _ = man.render_version_section(&mut out);
    out.extend_from_slice(
        b".SH \"EXIT STATUS\"\n.TP\n0\nok\n.TP\n1\na negative answer (unhealthy, nothing to receive, \"ok\": false from af-bus request)\n\
.TP\n2\nusage error or invalid input (bad JSON, bad id, unknown type)\n.TP\n3\nnot found (no such agent)\n\
.TP\n4\nconflict (exists already, wrong state)\n.TP\n5\ntimeout\n.TP\n111\na system call, tmux or another program failed\n\
.TP\n130\ninterrupted\n\
.PP\nAn error is one line on stderr: `PROGRAM: message'. With \\-\\-json it is one JSON line instead, \
{\"error\": KIND, \"message\": TEXT}, KIND one of usage, invalid, not-found, conflict, timeout, interrupted, \
io, corrupt, system, agent-failed, unrecorded: scripts branch on the exit code and the kind, never on the wording.\n\
.SH ENVIRONMENT\n.TP\nAF_HOME\nthe spool directory (default: $XDG_STATE_HOME/agentflow, else ~/.local/state/agentflow)\n\
.TP\nAF_TMUX_SOCKET\nuse the private tmux server `tmux -L NAME' instead of the default one\n\
.TP\nAF_TMUX_SESSIONS_PER_SERVER\nhow many sessions one tmux server takes before a start uses the next, NAME-2, NAME-3, ... (default 400, 0 for no limit); each agent is then found on the server it was started on\n\
.TP\nAF_HOST\nthis host's name, in addresses QUEUE@HOST (default: the hostname)\n\
.TP\nAF_LOG\nlog level: error, warn, info, debug, trace\n.TP\nAF_LOG_FORMAT\njson for JSON log lines; journald to send records to journald with their fields \
(the default when systemd connected stderr to the journal, as JOURNAL_STREAM tells); text for plain lines\n\
.TP\nAF_JOURNAL_SOCKET\njournald's socket (default /run/systemd/journal/socket): for tests and journal namespaces\n\
.SH \"SEE ALSO\"\nagentflow(7), af-spool(5), af-spawn(1), af-wrap(1), af-bus(1), af-health(1), af-checkpoint(1), af-api(1)\n",
    );
    out
}

fn generate(mut cmd: clap::Command, kind: &str) -> std::process::ExitCode {
    use clap_complete::Shell;
    let name = cmd.get_name().to_owned();
    let mut stdout = std::io::stdout();
    let shell = match kind {
        "man" => {
            let _ = stdout.write_all(&man_page(cmd));
            return std::process::ExitCode::SUCCESS;
        }
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        "elvish" => Shell::Elvish,
        "powershell" => Shell::PowerShell,
        other => {
            let _ = writeln!(
                std::io::stderr(),
                "{name}: --generate takes man, bash, zsh, fish, elvish or powershell, not '{other}'"
            );
            return std::process::ExitCode::from(ExitCode::Usage as u8);
        }
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    // Agent ids, queues, topics and checkpoints come from the spool when the user presses TAB.
    let script = match shell {
        Shell::Bash => complete::bash(&cmd, script),
        Shell::Zsh => complete::zsh(&cmd, script),
        Shell::Fish => complete::fish(&cmd, script),
        _ => script,
    };
    let _ = stdout.write_all(script.as_bytes());
    std::process::ExitCode::SUCCESS
}

/// Finds the exit code for any error chain: the first typed [`Error`] in it decides; a bare JSON
/// error is invalid input (records read from the spool never get here bare: a corrupt one is
/// [`Error::Corrupt`]); anything else is a system failure.
pub fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    match decisive_cause(err) {
        Cause::Typed(e) => e.exit_code(),
        Cause::Json => ExitCode::Usage,
        Cause::Other => ExitCode::System,
    }
}
