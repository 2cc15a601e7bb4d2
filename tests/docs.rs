//! Every program answers --help and --version; the committed man pages and completions are the
//! ones the clap definitions generate (regenerate with scripts/gen-docs).

mod util;

use std::path::Path;
use std::process::Command;

fn generate(program: &str, kind: &str) -> String {
    let out = Command::new(util::bin(program)).args(["--generate", kind]).output().unwrap();
    assert!(out.status.success(), "{program} --generate {kind}: {}", util::describe(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn committed(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{rel} is missing: run scripts/gen-docs"))
}

#[test]
fn every_program_has_help_and_version() {
    for p in util::PROGRAMS {
        let help = Command::new(util::bin(p)).arg("--help").output().unwrap();
        assert!(help.status.success(), "{p} --help");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Usage:") && text.contains("EXIT STATUS"), "{p} --help: {text}");
        let version = Command::new(util::bin(p)).arg("--version").output().unwrap();
        assert!(version.status.success());
        assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("{p} {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn man_pages_match_the_clap_definitions() {
    for p in util::PROGRAMS {
        assert!(generate(p, "man") == committed(&format!("man/{p}.1")), "man/{p}.1 drifted: run scripts/gen-docs");
    }
    for page in ["man/agentflow.7", "man/af-spool.5"] {
        let text = committed(page);
        for p in util::PROGRAMS {
            assert!(text.contains(p), "{page} does not mention {p}");
        }
    }
}

/// af-spool(5) names every entry of the layout the library documents on `Spool`.
#[test]
fn the_spool_page_lists_every_entry_of_the_layout() {
    let code = committed("af-spool/src/spool.rs");
    let block = code.split("/// ```text\n").nth(1).and_then(|b| b.split("/// ```\n").next()).expect("Spool's layout");
    // Unescaped, as a reader sees it.
    let page = committed("man/af-spool.5").replace("\\-", "-");
    let entries: Vec<&str> = block
        .lines()
        .filter_map(|l| l.trim_start_matches("///").split_whitespace().next())
        .filter(|e| *e != "$AF_HOME/")
        .collect();
    assert!(entries.len() > 20, "{entries:?}");
    for entry in entries {
        assert!(page.contains(entry), "man/af-spool.5 does not describe {entry}");
    }
}

#[test]
fn completions_match_the_clap_definitions() {
    for p in util::PROGRAMS {
        for (kind, file) in [("bash", format!("{p}.bash")), ("zsh", format!("_{p}")), ("fish", format!("{p}.fish"))] {
            let rel = format!("scripts/completions/{file}");
            assert!(generate(p, kind) == committed(&rel), "{rel} drifted: run scripts/gen-docs");
        }
    }
}

#[test]
fn an_unknown_generate_kind_is_a_usage_error() {
    let out = Command::new(util::bin("af-spawn")).args(["--generate", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_spool_page_documents_the_event_log_limits_the_code_has() {
    use af_spool::eventlog::{Limits, MAX_LINE};
    let d = Limits::default();
    for page in ["man/af-spool.5", "README.md"] {
        let text = committed(page);
        for var in ["AF_EVENTS_MAX_BYTES", "AF_EVENTS_KEEP"] {
            assert!(text.contains(var), "{page} does not mention {var}");
        }
        assert!(text.contains(&format!("default {}MB", d.max_bytes >> 20)), "{page}: the default size");
        assert!(text.contains(&format!("{} KiB", MAX_LINE >> 10)), "{page}: the line cap");
    }
    assert!(committed("man/af-spool.5").contains(&format!("(default {}, at least 1)", d.keep)));
}
