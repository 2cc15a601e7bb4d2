//! The README and docs/*.md are executed: every ```sh, ```bash and ```console block of a document
//! runs, in the document's order, in one bash with `set -o pipefail`, a fresh spool (`AF_HOME`), a
//! private tmux server (`AF_TMUX_SOCKET`), a fresh `HOME`, an empty working directory and the
//! built programs first on PATH. A document that lies fails its test.
//!
//! How a block reads:
//! - A block with lines starting with `$ ` is a session: each `$ ` line is a command (continued
//!   by a trailing `\` and through a here-document to its terminator), and the lines after it, up
//!   to the next `$ `, are what it prints. A block without any is one script.
//! - Every command must exit 0: an example that shows a failure shows its status,
//!   `af-bus recv w1; echo "exit $?"`.
//! - The output shown must appear, line by line in order, in what the command printed on stdout
//!   (a line not found there may be on stderr): lines that matter are shown, others may be left
//!   out. In a shown line, `…` (or `...`) stands for any text, a run of digits for any number, a
//!   word of hex digits with a digit in it (an id's `db6d`) for any such word, and a run of
//!   blanks for any. A line that is only `…` says more lines follow, and is not checked.
//! - `<!-- no-test: WHY -->` on a line before a block keeps the whole block from running;
//!   ``<!-- no-test `PREFIX`: WHY -->`` keeps its commands that begin with PREFIX from running
//!   (a terminal to attach to, a stream that never ends). The test names every example it
//!   did not run, and why, after libtest's summary.
//!
//! Claude Code agents run against the CLI double of tests/fixtures (no model, no credentials);
//! examples that show a model's answer are marked no-test.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::Env;

/// How long one document's examples may take, all together.
const DEADLINE: Duration = Duration::from_secs(240);

/// One command of an example and what it shows it prints.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    shown: Vec<String>,
}

/// What one document holds: the commands to run, and the examples not run, with why.
#[derive(Debug, Default)]
struct Examples {
    steps: Vec<Step>,
    not_run: Vec<String>,
}

/// A marker before a block: skip it all (`prefix` None) or the commands beginning with `prefix`.
struct NoTest {
    prefix: Option<String>,
    why: String,
}

fn parse_marker(line: &str) -> Option<NoTest> {
    let inner = line.trim().strip_prefix("<!--")?.strip_suffix("-->")?.trim();
    let rest = inner.strip_prefix("no-test")?.trim_start();
    if let Some(quoted) = rest.strip_prefix('`') {
        let (prefix, tail) = quoted.split_once('`')?;
        let why = tail.trim_start().strip_prefix(':')?.trim();
        return Some(NoTest { prefix: Some(prefix.to_owned()), why: why.to_owned() });
    }
    Some(NoTest { prefix: None, why: rest.strip_prefix(':')?.trim().to_owned() })
}

/// The word ending a here-document opened on this line (`<<'EOF'`, `<<EOF`, `<<-"END"`).
fn heredoc_end(line: &str) -> Option<String> {
    let at = line.find("<<")?;
    let rest = line[at + 2..].trim_start_matches('-').trim_start();
    let word: String =
        rest.trim_start_matches(['\'', '"']).chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!word.is_empty() && !rest.starts_with('<')).then_some(word)
}

/// Splits a session block (lines after the fence, with their line numbers) into steps.
fn session(lines: &[(usize, &str)]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (n, text) = lines[i];
        i += 1;
        let Some(first) = text.strip_prefix("$ ") else {
            let shown = text.trim();
            if let Some(step) = steps.last_mut().filter(|_| !shown.is_empty() && shown != "…" && shown != "...") {
                step.shown.push(shown.to_owned());
            }
            continue;
        };
        let mut command = first.to_owned();
        let mut ends: Vec<String> = heredoc_end(first).into_iter().collect();
        let mut continued = first.ends_with('\\');
        while i < lines.len() && (continued || !ends.is_empty()) {
            let next = lines[i].1;
            i += 1;
            command.push('\n');
            command.push_str(next);
            if continued {
                continued = next.ends_with('\\');
                ends.extend(heredoc_end(next));
            } else if next.trim() == ends[0] {
                ends.remove(0);
            }
        }
        steps.push(Step { line: n, command, shown: Vec::new() });
    }
    steps
}

/// The examples of a markdown document, in order.
fn examples(doc: &str, text: &str) -> Examples {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Examples::default();
    let mut markers: Vec<NoTest> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if let Some(marker) = parse_marker(line) {
            markers.push(marker);
            continue;
        }
        let Some(lang) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                markers.clear();
            }
            continue;
        };
        let start = i;
        while i < lines.len() && !lines[i].starts_with("```") {
            i += 1;
        }
        let body: Vec<(usize, &str)> = (start..i).map(|k| (k + 1, lines[k])).collect();
        i += 1;
        let found = std::mem::take(&mut markers);
        if !matches!(lang.trim(), "sh" | "bash" | "console") {
            continue;
        }
        if let Some(m) = found.iter().find(|m| m.prefix.is_none()) {
            out.not_run.push(format!("{doc}:{start}: the block: {}", m.why));
            continue;
        }
        let steps = if body.iter().any(|(_, l)| l.starts_with("$ ")) {
            session(&body)
        } else {
            let command = body.iter().map(|(_, l)| *l).collect::<Vec<_>>().join("\n");
            vec![Step { line: start + 1, command, shown: Vec::new() }]
        };
        for step in steps {
            match found.iter().find(|m| m.prefix.as_deref().is_some_and(|p| step.command.starts_with(p))) {
                Some(m) => out.not_run.push(format!("{doc}:{}: `{}`: {}", step.line, step.command, m.why)),
                None => out.steps.push(step),
            }
        }
    }
    out
}

/// A shown line, as pieces to match.
#[derive(Debug, PartialEq)]
enum Piece {
    Char(char),
    Any,
    Blank,
    Number,
    Hex,
}

fn pieces(shown: &str) -> Vec<Piece> {
    let chars: Vec<char> = shown.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '…' || chars[i..].starts_with(&['.', '.', '.']) {
            out.push(Piece::Any);
            i += if c == '…' { 1 } else { 3 };
        } else if c.is_whitespace() {
            out.push(Piece::Blank);
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
        } else if let Some(end) = hex_word(&chars, i) {
            out.push(Piece::Hex);
            i = end;
        } else if c.is_ascii_digit() {
            out.push(Piece::Number);
            i = (i..chars.len()).find(|&k| !chars[k].is_ascii_digit()).unwrap_or(chars.len());
        } else {
            out.push(Piece::Char(c));
            i += 1;
        }
    }
    out
}

/// Where the word starting at `i` ends, when it is a whole word of at least four hex digits
/// with a digit in it (it stands for any such word).
fn hex_word(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && chars[i - 1].is_alphanumeric() {
        return None;
    }
    let end = (i..chars.len()).find(|&k| !chars[k].is_alphanumeric()).unwrap_or(chars.len());
    let word = &chars[i..end];
    (word.len() >= 4 && word.iter().all(|c| c.is_ascii_hexdigit()) && word.iter().any(|c| c.is_ascii_digit()))
        .then_some(end)
}

fn match_here(p: &[Piece], s: &[char]) -> bool {
    let Some((first, rest)) = p.split_first() else { return s.is_empty() };
    let run = |ok: &dyn Fn(char) -> bool| {
        let n = s.iter().take_while(|c| ok(**c)).count();
        (1..=n).rev().any(|k| match_here(rest, &s[k..]))
    };
    match first {
        Piece::Char(c) => s.first() == Some(c) && match_here(rest, &s[1..]),
        Piece::Any => (0..=s.len()).any(|k| match_here(rest, &s[k..])),
        Piece::Blank => run(&|c| c.is_whitespace()),
        Piece::Number => run(&|c| c.is_ascii_digit()),
        Piece::Hex => run(&|c| c.is_ascii_hexdigit()),
    }
}

/// Whether a line printed matches a line shown (both trimmed, the whole line).
fn matches(shown: &str, printed: &str) -> bool {
    let chars: Vec<char> = printed.trim().chars().collect();
    match_here(&pieces(shown.trim()), &chars)
}

/// The bash script that runs the steps, each with its output and status in `results`.
fn script(steps: &[Step], results: &Path) -> String {
    let r = results.display();
    let mut s = String::from("set -o pipefail\n");
    for (k, step) in steps.iter().enumerate() {
        s.push_str(&format!(
            "echo {k} > '{r}/current'\n{{\n{}\n}} > '{r}/{k}.out' 2> '{r}/{k}.err' < /dev/null\necho $? > '{r}/{k}.rc'\n\
             [ \"$(cat '{r}/{k}.rc')\" = 0 ] || exit 0\n",
            step.command
        ));
    }
    s
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs one document's examples and checks them; names what it did not run (at exit).
fn run_document(rel: &str) {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap();
    if let Err(lie) = run_text(rel, &text) {
        panic!("{lie}");
    }
}

/// Runs the examples of a document's text; the first one that fails or does not print what it
/// shows is the error.
fn run_text(rel: &str, text: &str) -> Result<(), String> {
    let found = examples(rel, text);
    for line in &found.not_run {
        util::note_at_exit(format!("NOT RUN: {line}"));
    }
    if found.steps.is_empty() {
        return Ok(());
    }
    let mut env = Env::new();
    // The examples run at the pace a user sees, with heartbeats every 2 s.
    env.set_env("AF_HEARTBEAT_INTERVAL", "2s");
    env.set_env("CLAUDE_BIN", repo().join("tests/fixtures/claude-double").to_str().unwrap());
    let user = env.path("user");
    let results = env.path("results");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    let bins = util::bin("af-spawn").parent().unwrap().to_path_buf();
    // A claude-code agent without a command runs `claude` from PATH: here, the double.
    let double = env.path("double-bin");
    std::fs::create_dir_all(&double).unwrap();
    std::os::unix::fs::symlink(repo().join("tests/fixtures/claude-double"), double.join("claude")).unwrap();
    let mut c = Command::new("bash");
    env.apply(&mut c);
    c.arg("-c")
        .arg(script(&found.steps, &results))
        .env("HOME", &user)
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env("PATH", format!("{}:{}:{}", bins.display(), double.display(), std::env::var("PATH").unwrap_or_default()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + DEADLINE;
    let finished = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGKILL);
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |k: usize, ext: &str| std::fs::read_to_string(results.join(format!("{k}.{ext}"))).unwrap_or_default();
    for (k, step) in found.steps.iter().enumerate() {
        let what = format!("{rel}:{}: `{}`", step.line, step.command);
        let (out, err) = (read(k, "out"), read(k, "err"));
        let rc = read(k, "rc");
        let output = format!("\n--- stdout\n{out}\n--- stderr\n{err}");
        if rc.is_empty() {
            return Err(match finished {
                false => format!("{what} did not finish within {DEADLINE:?}{output}"),
                true => format!("{what} never ran"),
            });
        }
        if rc.trim() != "0" {
            return Err(format!("{what} failed with exit status {}{output}", rc.trim()));
        }
        let mut printed = out.lines();
        for shown in &step.shown {
            let found = printed.any(|l| matches(shown, l)) || err.lines().any(|l| matches(shown, l));
            if !found {
                return Err(format!("{what} does not print (in this order) {shown:?}{output}"));
            }
            if !out.lines().any(|l| matches(shown, l)) {
                printed = out.lines();
            }
        }
    }
    Ok(())
}

#[test]
fn the_readme_runs_as_written() {
    run_document("README.md");
}

#[test]
fn every_page_of_docs_runs_as_written() {
    let mut pages: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    pages.sort();
    for page in pages {
        run_document(&format!("docs/{page}"));
    }
}

/// A document that lies fails: a command that fails, output that differs, output out of order.
#[test]
fn a_document_that_lies_fails() {
    let run = |body: &str| run_text("lies.md", &format!("```console\n{body}\n```\n"));
    assert_eq!(run("$ cd /tmp\n$ printf 'w1 31 ok\\nsvc ab12 done\\n'\nw1 7 ok\nsvc 9f0e done"), Ok(()));
    let err = run("$ printf 'w1 unknown\\n'\nw1 healthy").unwrap_err();
    assert!(err.contains("does not print (in this order) \"w1 healthy\""), "{err}");
    let err = run("$ printf 'two\\none\\n'\none\ntwo").unwrap_err();
    assert!(err.contains("\"two\""), "{err}");
    let err = run("$ echo fine\n$ af-spawn show nobody\n$ echo never").unwrap_err();
    assert!(err.contains("`af-spawn show nobody` failed with exit status 3"), "{err}");
    assert!(err.contains("no agent 'nobody'"), "its stderr is shown: {err}");
}

#[test]
fn the_reader_of_examples_splits_sessions_and_matches_shown_output() {
    let doc = "<!-- no-test `af-spawn attach`: it needs a terminal -->\n```console\n$ af-spawn create --start <<'EOF'\n{\"id\": \"w1\"}\nEOF\nw1\n$ af-bus send --to w1 \\\n    '\"hi\"'\n0179-26-0\n…\n$ af-spawn attach w1\n```\n\n<!-- no-test: a server -->\n```sh\naf-api\n```\n```text\nnot run\n```\n";
    let found = examples("x.md", doc);
    assert_eq!(found.steps.len(), 2, "{found:?}");
    assert_eq!(found.steps[0].command, "af-spawn create --start <<'EOF'\n{\"id\": \"w1\"}\nEOF");
    assert_eq!(found.steps[0].shown, ["w1"]);
    assert_eq!(found.steps[1].command, "af-bus send --to w1 \\\n    '\"hi\"'");
    assert_eq!(found.not_run.len(), 2, "{found:?}");
    assert!(matches("01795531182548482706-2671-0", "01795531999999999999-17-0"));
    assert!(matches("ck-1795534570499-db6d", "ck-1795534599999-0af3"));
    assert!(matches("svc  worker   web  running   healthy      41522   0", "svc worker web running healthy 7 0"));
    assert!(matches("{\"agent\":\"w1\",\"ok\":true,...}", "{\"agent\":\"w1\",\"ok\":true,\"exitCode\":0}"));
    assert!(!matches("svc worker web running healthy 41522 0", "svc worker web running unknown 41522 0"));
    assert!(!matches("dead", "beef"));
}
