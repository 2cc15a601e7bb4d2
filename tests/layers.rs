//! The house's layers, checked from its sources: af-spool (the on-disk contract) depends on no
//! other AgentFlow crate and on neither clap nor tmux; af-ops (the operations) only on af-spool;
//! af-cli (what programs share) on those two; and inside each library crate the top-level modules
//! form no cycle (a module's `crate::x` uses are its edges). docs/architecture.md says why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The `[dependencies]` names of a crate's manifest.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let text = read(&root().join(krate).join("Cargo.toml"));
    let section = text.split("[dependencies]").nth(1).unwrap_or("");
    let section = section.split("\n[").next().unwrap_or("");
    section.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k.trim().to_owned()).collect()
}

#[test]
fn crates_depend_downward_only() {
    let spool = dependencies("af-spool");
    for forbidden in ["af-ops", "af-cli", "clap", "clap_complete", "clap_mangen", "tracing-subscriber", "anyhow"] {
        assert!(!spool.contains(forbidden), "af-spool must not depend on {forbidden}: {spool:?}");
    }
    let ops = dependencies("af-ops");
    assert!(ops.contains("af-spool"), "{ops:?}");
    for forbidden in ["af-cli", "clap", "anyhow", "tracing-subscriber"] {
        assert!(!ops.contains(forbidden), "af-ops must not depend on {forbidden}: {ops:?}");
    }
    let cli = dependencies("af-cli");
    assert!(cli.contains("af-ops") && cli.contains("af-spool"), "{cli:?}");
    // tmux is spoken only by af-ops.
    for file in rust_files(&root().join("af-spool/src")) {
        assert!(!read(&file).contains("Command::new(\"tmux\")"), "{} runs tmux", file.display());
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The top-level module a file of `src` belongs to (`lifecycle/start.rs` → `lifecycle`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib").then_some(name)
}

/// The edges top module → top module of a library crate, from `crate::x` in its sources.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join(krate).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let Some(from) = top_module(&src, &file) else { continue };
        let text = read(&file);
        // Unit tests may reach anywhere; the layers are about the code that ships.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = code.as_str();
        let edges = graph.entry(from.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let before = text[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // af_spool::… or another crate's path
            }
            let name: String =
                text[i + "crate::".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != from && src.join(format!("{name}.rs")).exists()
                || src.join(&name).is_dir() && name != from
            {
                edges.insert(name);
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for next in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_cycles_in_the_libraries() {
    for krate in ["af-spool", "af-ops", "af-cli"] {
        let graph = module_graph(krate);
        assert!(find_cycle(&graph).is_none(), "{krate} has a module cycle: {:?}", find_cycle(&graph).unwrap());
    }
    // The checker itself finds one.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
}

#[test]
fn programs_do_not_run_each_other_for_results() {
    // A program execs a sibling only where a separate process is the point: af-spawn puts
    // af-wrap (and `af-spawn top`) in tmux, af-wrap runs af-health as a monitor agent's loop and
    // itself as the Claude CLI's hook. Nothing else names a sibling
    // program: af-api calls the operations.
    let allowed = ["af-ops/src/lifecycle/layout.rs", "af-wrap/supervise.rs", "af-wrap/claude/launch.rs"];
    let mut found = Vec::new();
    for dir in
        ["af-spool/src", "af-ops/src", "af-cli/src", "af-spawn", "af-wrap", "af-bus", "af-health", "af-checkpoint"]
    {
        for file in rust_files(&root().join(dir)) {
            let rel = file.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
            if read(&file).contains("sibling_program(")
                && !allowed.contains(&rel.as_str())
                && !rel.ends_with("process.rs")
                && !rel.starts_with("af-cli")
            {
                found.push(rel);
            }
        }
    }
    assert!(found.is_empty(), "these run a sibling program: {found:?}");
}
