//! Completion of what only the spool knows: agent ids, queue names, topics and checkpoint ids.
//!
//! clap_complete writes static scripts; an argument whose value name is one of [`KINDS`]' gets,
//! in the generated bash, zsh and fish scripts, a call of the program's hidden verb
//! `PROGRAM complete KIND [AGENT]`, which prints the candidates one a line (nothing, and exit 0,
//! when there is no spool yet). The verb is answered before the command line is parsed, so it
//! is in no help, man page or completion.

use af_spool::{AgentId, Spool};
use std::io::Write;

/// Value names of arguments, and the kind of candidates each completes to.
pub const KINDS: [(&str, &str); 4] =
    [("AGENT", "agents"), ("QUEUE", "queues"), ("TOPIC", "topics"), ("CHECKPOINT", "checkpoints")];

/// Topics AgentFlow publishes on by itself, besides `health.<agent>` and the subscriptions'.
const TOPICS: [&str; 3] = ["tasks.results", "agent.unhealthy", "agent.recovered"];

/// Answers `PROGRAM complete KIND [AGENT]`: the candidates, one a line.
pub fn answer(kind: &str, agent: Option<&str>) -> std::process::ExitCode {
    // Never makes a spool: without one there is nothing to offer.
    let spool = Spool::default_root().ok().filter(|r| r.is_dir()).and_then(|r| Spool::open(&r).ok());
    let candidates = spool.map(|s| candidates(&s, kind, agent)).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for c in candidates {
        if writeln!(out, "{c}").is_err() {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

fn candidates(spool: &Spool, kind: &str, agent: Option<&str>) -> Vec<String> {
    let agents = || spool.agent_ids().unwrap_or_default();
    match kind {
        "agents" => agents().iter().map(ToString::to_string).collect(),
        "queues" => {
            let mut names: Vec<String> = agents().iter().map(ToString::to_string).collect();
            for (address, _) in af_spool::bus::all_queues(spool).unwrap_or_default() {
                names.push(address.to_string());
            }
            for id in agents() {
                if let Ok(config) = spool.read_config(&id) {
                    names.push(format!("pool:{}", config.project_id));
                }
            }
            names.sort();
            names.dedup();
            names
        }
        "topics" => {
            let mut topics: Vec<String> = TOPICS.iter().map(|t| (*t).to_owned()).collect();
            topics.extend(agents().iter().map(|id| format!("health.{id}")));
            topics.extend(af_spool::bus::subscriptions(spool).unwrap_or_default().into_iter().map(|s| s.topic));
            topics.sort();
            topics.dedup();
            topics
        }
        "checkpoints" => match agent.and_then(|a| AgentId::new(a).ok()) {
            Some(id) => {
                af_ops::checkpoint::list(spool, &id).unwrap_or_default().into_iter().map(|c| c.id.to_string()).collect()
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// One argument whose values the spool knows: its verb, its id (as clap_complete names it), the
/// long and short option when it is one, and its kind.
struct Dynamic {
    verb: String,
    id: String,
    long: Option<String>,
    short: Option<char>,
    kind: &'static str,
}

fn dynamic_args(cmd: &clap::Command) -> Vec<Dynamic> {
    let mut out = Vec::new();
    for verb in cmd.get_subcommands() {
        for arg in verb.get_arguments() {
            let name = arg.get_value_names().and_then(|v| v.first()).map(|n| n.as_str().to_owned());
            let Some(kind) = KINDS.iter().find(|(v, _)| name.as_deref() == Some(*v)).map(|(_, k)| *k) else {
                continue;
            };
            out.push(Dynamic {
                verb: verb.get_name().to_owned(),
                id: arg.get_id().as_str().to_owned(),
                long: arg.get_long().map(str::to_owned),
                short: arg.get_short(),
                kind,
            });
        }
    }
    out
}

/// The shell command that prints a kind's candidates; checkpoints are an agent's, the verb's
/// first positional (`agent` is how the shell spells that word).
fn call(program: &str, kind: &str, agent: &str) -> String {
    match kind {
        "checkpoints" => format!("{program} complete checkpoints {agent} 2>/dev/null"),
        _ => format!("{program} complete {kind} 2>/dev/null"),
    }
}

/// The generated bash script, mended, with each verb's candidates joined by what `complete`
/// prints: a positional's into the verb's `opts`, an option's where its value is completed.
pub fn bash(cmd: &clap::Command, script: String) -> String {
    let program = cmd.get_name();
    // clap_complete (4.6) names a hyphenated program's cases `af__subcmd__spawn…` while setting
    // `cmd="af__spawn…"`, so no verb of af-spawn ever completed: the cases get the name `cmd` has.
    let script = script.replace(&program.replace('-', "__subcmd__"), &program.replace('-', "__"));
    let mut lines: Vec<String> = script.lines().map(str::to_owned).collect();
    for d in dynamic_args(cmd) {
        let words = format!("$({})", call(program, d.kind, "\"${COMP_WORDS[2]}\""));
        let head = format!("__subcmd__{})", d.verb);
        let Some(start) = lines.iter().position(|l| l.trim_end().ends_with(&head) && !l.contains("__subcmd__help__"))
        else {
            continue;
        };
        let end = (start + 1..lines.len()).find(|&i| lines[i].trim() == ";;" && lines[i].starts_with("            ;;"));
        let end = end.unwrap_or(lines.len());
        if d.long.is_none() && d.short.is_none() {
            if let Some(opts) = lines[start + 1].strip_suffix('"') {
                lines[start + 1] = format!("{opts} {words}\"");
            }
            continue;
        }
        let flags: Vec<String> =
            d.long.iter().map(|l| format!("--{l})")).chain(d.short.iter().map(|s| format!("-{s})"))).collect();
        for i in start..end.saturating_sub(1) {
            if flags.iter().any(|f| lines[i].trim() == f) && lines[i + 1].contains("compgen -f") {
                lines[i + 1] = format!("                    COMPREPLY=($(compgen -W \"{words}\" -- \"${{cur}}\"))");
            }
        }
    }
    lines.join("\n") + "\n"
}

/// The generated zsh script, each argument's `_default` action replaced by the candidates.
pub fn zsh(cmd: &clap::Command, script: String) -> String {
    let program = cmd.get_name();
    let mut lines: Vec<String> = script.lines().map(str::to_owned).collect();
    for d in dynamic_args(cmd) {
        let action = format!("{{compadd -- $({})}}", call(program, d.kind, "${words[2]}"));
        let Some(start) = lines.iter().position(|l| l.trim() == format!("({})", d.verb)) else { continue };
        let end = (start..lines.len()).find(|&i| lines[i].starts_with("&& ret=0")).unwrap_or(lines.len());
        // clap_complete writes a positional as ':ID -- HELP:ACTION' ('*::' when repeated, '::'
        // when optional), an option as '--LONG=[HELP]:VALUE:ACTION' and '-S+[HELP]:VALUE:ACTION'.
        let mut starts: Vec<String> = Vec::new();
        if d.long.is_none() && d.short.is_none() {
            starts.extend([":", "*::", "::"].map(|p| format!("'{p}{} -- ", d.id)));
        }
        starts.extend(d.long.iter().map(|l| format!("'--{l}=")));
        starts.extend(d.short.iter().map(|c| format!("'-{c}+")));
        for line in &mut lines[start..end] {
            if starts.iter().any(|p| line.starts_with(p.as_str())) {
                if let Some(cut) = line.rfind(":_default'") {
                    *line = format!("{}:{action}'{}", &line[..cut], &line[cut + ":_default'".len()..]);
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

/// The generated fish script, with a line per argument completing it from the candidates.
pub fn fish(cmd: &clap::Command, mut script: String) -> String {
    let program = cmd.get_name();
    let function = format!("__fish_{}_using_subcommand", program.replace('-', "_"));
    for d in dynamic_args(cmd) {
        let words = format!("({})", call(program, d.kind, "(commandline -opc)[3]"));
        let mut line = format!("complete -c {program} -n \"{function} {}\" -f", d.verb);
        match (&d.long, d.short) {
            (None, None) => {}
            (long, short) => {
                if let Some(l) = long {
                    line.push_str(&format!(" -l {l}"));
                }
                if let Some(s) = short {
                    line.push_str(&format!(" -s {s}"));
                }
                line.push_str(" -r");
            }
        }
        script.push_str(&format!("{line} -a \"{words}\"\n"));
    }
    script
}
