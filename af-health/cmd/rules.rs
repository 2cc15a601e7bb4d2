//! `af-health rules check`: validates a rules file.

use super::{print_json, print_line};
use af_ops::health::rules::Rules;
use af_spool::{Error, ExitCode};
use std::path::Path;

pub fn check(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(format!("no rules file {}", file.display())),
        _ => Error::io("read", file, e),
    })?;
    match Rules::parse(&text) {
        Ok(rules) => {
            if json {
                print_json(&serde_json::json!({"ok": true, "file": file, "rules": rules.len()}))?;
            } else {
                print_line(&format!("{}: valid, {} rule(s)", file.display(), rules.len()))?;
            }
            Ok(ExitCode::Ok)
        }
        Err(bad) => {
            if json {
                print_json(&serde_json::json!({"ok": false, "file": file, "path": bad.path, "message": bad.message}))?;
            }
            Err(Error::Invalid(format!("{}: {bad}", file.display())).into())
        }
    }
}
