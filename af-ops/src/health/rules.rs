//! Alert rules with thresholds the user sets: `$AF_HOME/rules.json`, per project, per agent type
//! and per agent (the more specific wins, field by field, over `defaults`). af-health applies
//! them in every pass; `af-health rules check` validates a file, naming the bad field by its path.
//!
//! ```json
//! {
//!   "defaults": {"heartbeat": {"stale": "20s"}, "deadLetters": {"warning": 1, "critical": 10}},
//!   "projects": {"web": {"memory": {"warning": "1G", "critical": "2G"}}},
//!   "types":    {"claude-code": {"costPerHour": {"warning": 2, "critical": 5},
//!                                "silence": {"warning": "10m", "critical": "30m"}}},
//!   "agents":   {"w1": {"cpu": {"warning": 150, "critical": 300},
//!                       "restarts": {"max": 5, "window": "1h"},
//!                       "ladder": {"maxFailures": 2, "backoff": "5s", "backoffMax": "2m", "reset": "1m"}}}
//! }
//! ```
//!
//! A rule's fields: `memory` (sizes: RSS of the agent's tree), `cpu` (percent of one core: 150 is
//! one and a half cores), `costPerHour` (US dollars spent over the last hour, from af-health's
//! samples), `silence` (durations: no output while busy), `deadLetters` (counts in the agent's
//! inbox), each `{"warning": …, "critical": …}` (either may be left out; warning must not exceed
//! critical); `heartbeat.stale`, `ping.timeout`, `ping.enabled`, `restarts.max`,
//! `restarts.window`, and the ladder's `maxFailures`, `backoff`, `backoffMax`, `reset`, which
//! replace af-health's flags for the agents they cover.

use super::policy::Policy;
use super::probe::Finding;
use af_spool::health::Level;
use af_spool::record::{AgentConfig, Heartbeat};
use af_spool::{AgentId, Error, Observed, Result, Spool};
use serde_json::Value;
use std::collections::BTreeMap;

/// The checks rules add (their alerts are af-health's, closed when the agent is healthy).
pub const CHECKS: [&str; 3] = ["cost", "silence", "dead-letters"];

/// A warning and a critical level.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Levels {
    /// At or above this: a warning.
    pub warning: Option<f64>,
    /// At or above this: critical.
    pub critical: Option<f64>,
}

impl Levels {
    fn over(self, top: Levels) -> Levels {
        Levels { warning: top.warning.or(self.warning), critical: top.critical.or(self.critical) }
    }

    fn is_set(&self) -> bool {
        self.warning.is_some() || self.critical.is_some()
    }

    /// The level of `value`.
    pub fn judge(&self, value: f64) -> Level {
        if self.critical.is_some_and(|c| value >= c) {
            Level::Critical
        } else if self.warning.is_some_and(|w| value >= w) {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// One rule: what it sets (None: not set here).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    /// RSS, bytes.
    pub memory: Levels,
    /// CPU, percent of one core.
    pub cpu: Levels,
    /// US dollars per hour.
    pub cost_per_hour: Levels,
    /// Milliseconds without output while busy.
    pub silence_ms: Levels,
    /// Messages in the inbox's dead letters.
    pub dead_letters: Levels,
    /// `heartbeat.stale`, ms.
    pub stale_ms: Option<u64>,
    /// `ping.timeout`, ms.
    pub ping_timeout_ms: Option<u64>,
    /// `ping.enabled`.
    pub ping: Option<bool>,
    /// `restarts.max`.
    pub max_restarts: Option<usize>,
    /// `restarts.window`, ms.
    pub rate_window_ms: Option<u64>,
    /// `ladder.maxFailures`.
    pub max_failures: Option<u32>,
    /// `ladder.backoff`, ms.
    pub backoff_ms: Option<u64>,
    /// `ladder.backoffMax`, ms.
    pub backoff_max_ms: Option<u64>,
    /// `ladder.reset`, ms.
    pub reset_ms: Option<u64>,
}

impl Rule {
    /// This rule with `top`'s settings over it.
    fn over(&self, top: &Rule) -> Rule {
        Rule {
            memory: self.memory.over(top.memory),
            cpu: self.cpu.over(top.cpu),
            cost_per_hour: self.cost_per_hour.over(top.cost_per_hour),
            silence_ms: self.silence_ms.over(top.silence_ms),
            dead_letters: self.dead_letters.over(top.dead_letters),
            stale_ms: top.stale_ms.or(self.stale_ms),
            ping_timeout_ms: top.ping_timeout_ms.or(self.ping_timeout_ms),
            ping: top.ping.or(self.ping),
            max_restarts: top.max_restarts.or(self.max_restarts),
            rate_window_ms: top.rate_window_ms.or(self.rate_window_ms),
            max_failures: top.max_failures.or(self.max_failures),
            backoff_ms: top.backoff_ms.or(self.backoff_ms),
            backoff_max_ms: top.backoff_max_ms.or(self.backoff_max_ms),
            reset_ms: top.reset_ms.or(self.reset_ms),
        }
    }

    /// `base` with this rule's limits in place of its own.
    pub fn policy(&self, base: &Policy) -> Policy {
        Policy {
            stale_ms: self.stale_ms.unwrap_or(base.stale_ms),
            ping_timeout_ms: self.ping_timeout_ms.unwrap_or(base.ping_timeout_ms),
            ping: self.ping.unwrap_or(base.ping),
            max_restarts: self.max_restarts.unwrap_or(base.max_restarts),
            rate_window_ms: self.rate_window_ms.unwrap_or(base.rate_window_ms),
            max_failures: self.max_failures.unwrap_or(base.max_failures),
            backoff_ms: self.backoff_ms.unwrap_or(base.backoff_ms),
            backoff_max_ms: self.backoff_max_ms.unwrap_or(base.backoff_max_ms),
            reset_ms: self.reset_ms.unwrap_or(base.reset_ms),
            ..base.clone()
        }
    }
}

/// The whole rules file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    /// For every agent.
    pub defaults: Rule,
    /// By project.
    pub projects: BTreeMap<String, Rule>,
    /// By agent type (`claude-code`, `worker`, `monitor`).
    pub types: BTreeMap<String, Rule>,
    /// By agent id.
    pub agents: BTreeMap<String, Rule>,
}

/// A bad field: its path (`agents.w1.memory.warning`) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Where, as dotted keys from the top (empty: the document itself).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

type Parsed<T> = std::result::Result<T, Invalid>;

fn bad<T>(path: &str, message: impl Into<String>) -> Parsed<T> {
    Err(Invalid { path: path.to_owned(), message: message.into() })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// An object's fields, refusing keys not in `known`.
fn object<'v>(v: &'v Value, path: &str, known: &[&str]) -> Parsed<&'v serde_json::Map<String, Value>> {
    let Some(map) = v.as_object() else { return bad(path, "must be an object") };
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return bad(&join(path, k), format!("unknown field (known: {})", known.join(", ")));
    }
    Ok(map)
}

fn duration_ms(v: &Value, path: &str) -> Parsed<u64> {
    let d = match v {
        Value::String(s) => {
            af_spool::human::parse_duration(s).map_err(|e| Invalid { path: path.into(), message: e.to_string() })?
        }
        Value::Number(n) if n.as_f64().is_some_and(|f| f >= 0.0 && f.is_finite()) => {
            std::time::Duration::from_secs_f64(n.as_f64().unwrap_or(0.0))
        }
        _ => return bad(path, "must be a duration (\"30s\", \"10m\") or seconds"),
    };
    Ok(d.as_millis() as u64)
}

fn size(v: &Value, path: &str) -> Parsed<f64> {
    match v {
        Value::String(s) => af_spool::human::parse_size(s)
            .map(|b| b as f64)
            .map_err(|e| Invalid { path: path.into(), message: e.to_string() }),
        Value::Number(n) if n.as_f64().is_some_and(|f| f >= 0.0) => Ok(n.as_f64().unwrap_or(0.0)),
        _ => bad(path, "must be a size (\"512M\", \"2G\") or bytes"),
    }
}

fn number(v: &Value, path: &str) -> Parsed<f64> {
    match v.as_f64() {
        Some(f) if f >= 0.0 && f.is_finite() => Ok(f),
        _ => bad(path, "must be a number, 0 or more"),
    }
}

fn count(v: &Value, path: &str) -> Parsed<u64> {
    v.as_u64().map_or_else(|| bad(path, "must be a whole number, 0 or more"), Ok)
}

fn levels(v: &Value, path: &str, each: fn(&Value, &str) -> Parsed<f64>) -> Parsed<Levels> {
    let map = object(v, path, &["warning", "critical"])?;
    let get = |k: &str| map.get(k).map(|x| each(x, &join(path, k))).transpose();
    let l = Levels { warning: get("warning")?, critical: get("critical")? };
    if let (Some(w), Some(c)) = (l.warning, l.critical) {
        if w > c {
            return bad(&join(path, "warning"), "must not exceed critical");
        }
    }
    if !l.is_set() {
        return bad(path, "sets neither warning nor critical");
    }
    Ok(l)
}

fn rule(v: &Value, path: &str) -> Parsed<Rule> {
    let map = object(
        v,
        path,
        &["memory", "cpu", "costPerHour", "silence", "deadLetters", "heartbeat", "ping", "restarts", "ladder"],
    )?;
    let mut r = Rule::default();
    let at = |k: &str| join(path, k);
    if let Some(x) = map.get("memory") {
        r.memory = levels(x, &at("memory"), size)?;
    }
    if let Some(x) = map.get("cpu") {
        r.cpu = levels(x, &at("cpu"), number)?;
    }
    if let Some(x) = map.get("costPerHour") {
        r.cost_per_hour = levels(x, &at("costPerHour"), number)?;
    }
    if let Some(x) = map.get("silence") {
        r.silence_ms = levels(x, &at("silence"), |v, p| duration_ms(v, p).map(|ms| ms as f64))?;
    }
    if let Some(x) = map.get("deadLetters") {
        r.dead_letters = levels(x, &at("deadLetters"), |v, p| count(v, p).map(|n| n as f64))?;
    }
    if let Some(x) = map.get("heartbeat") {
        let p = at("heartbeat");
        let h = object(x, &p, &["stale"])?;
        r.stale_ms = h.get("stale").map(|v| duration_ms(v, &join(&p, "stale"))).transpose()?;
        if r.stale_ms == Some(0) {
            return bad(&join(&p, "stale"), "must be more than 0");
        }
    }
    if let Some(x) = map.get("ping") {
        let p = at("ping");
        let h = object(x, &p, &["timeout", "enabled"])?;
        r.ping_timeout_ms = h.get("timeout").map(|v| duration_ms(v, &join(&p, "timeout"))).transpose()?;
        r.ping = match h.get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return bad(&join(&p, "enabled"), "must be true or false"),
        };
    }
    if let Some(x) = map.get("restarts") {
        let p = at("restarts");
        let h = object(x, &p, &["max", "window"])?;
        r.max_restarts = h.get("max").map(|v| count(v, &join(&p, "max")).map(|n| n as usize)).transpose()?;
        r.rate_window_ms = h.get("window").map(|v| duration_ms(v, &join(&p, "window"))).transpose()?;
    }
    if let Some(x) = map.get("ladder") {
        let p = at("ladder");
        let h = object(x, &p, &["maxFailures", "backoff", "backoffMax", "reset"])?;
        if let Some(v) = h.get("maxFailures") {
            let n = count(v, &join(&p, "maxFailures"))?;
            if n == 0 || n > u32::MAX as u64 {
                return bad(&join(&p, "maxFailures"), "must be at least 1");
            }
            r.max_failures = Some(n as u32);
        }
        r.backoff_ms = h.get("backoff").map(|v| duration_ms(v, &join(&p, "backoff"))).transpose()?;
        r.backoff_max_ms = h.get("backoffMax").map(|v| duration_ms(v, &join(&p, "backoffMax"))).transpose()?;
        r.reset_ms = h.get("reset").map(|v| duration_ms(v, &join(&p, "reset"))).transpose()?;
        if let (Some(b), Some(m)) = (r.backoff_ms, r.backoff_max_ms) {
            if b > m {
                return bad(&join(&p, "backoff"), "must not exceed backoffMax");
            }
        }
    }
    Ok(r)
}

fn rules_by(v: &Value, path: &str, key_ok: fn(&str) -> bool, what: &str) -> Parsed<BTreeMap<String, Rule>> {
    let Some(map) = v.as_object() else { return bad(path, "must be an object") };
    let mut out = BTreeMap::new();
    for (k, r) in map {
        let p = join(path, k);
        if !key_ok(k) {
            return bad(&p, format!("is not {what}"));
        }
        out.insert(k.clone(), rule(r, &p)?);
    }
    Ok(out)
}

impl Rules {
    /// Parses and validates a rules document.
    pub fn parse(text: &[u8]) -> Parsed<Rules> {
        let v: Value = serde_json::from_slice(text)
            .map_err(|e| Invalid { path: String::new(), message: format!("not JSON: {e}") })?;
        let map = object(&v, "", &["defaults", "projects", "types", "agents"])?;
        let mut rules = Rules::default();
        if let Some(d) = map.get("defaults") {
            rules.defaults = rule(d, "defaults")?;
        }
        if let Some(p) = map.get("projects") {
            rules.projects = rules_by(p, "projects", |k| af_spool::bus::validate_project(k).is_ok(), "a project name")?;
        }
        if let Some(t) = map.get("types") {
            rules.types = rules_by(t, "types", |k| ["claude-code", "worker", "monitor"].contains(&k), "an agent type")?;
        }
        if let Some(a) = map.get("agents") {
            rules.agents = rules_by(a, "agents", |k| AgentId::new(k).is_ok(), "an agent id")?;
        }
        Ok(rules)
    }

    /// The spool's rules (`rules.json`; none when there is no file). A file that does not
    /// validate is an error (invalid) naming the file and the bad field.
    pub fn load(spool: &Spool) -> Result<Rules> {
        Rules::load_file(&spool.rules_path())
    }

    /// The rules of a file (none when it does not exist).
    pub fn load_file(path: &std::path::Path) -> Result<Rules> {
        match std::fs::read(path) {
            Ok(text) => Rules::parse(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Rules::default()),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// The rule in force for an agent: defaults, then its project's, its type's, its own.
    pub fn for_agent(&self, config: &AgentConfig) -> Rule {
        let mut r = self.defaults.clone();
        for layer in [
            self.projects.get(&config.project_id),
            self.types.get(config.kind.as_str()),
            self.agents.get(config.id.as_str()),
        ]
        .into_iter()
        .flatten()
        {
            r = r.over(layer);
        }
        r
    }

    /// How many rules the file sets (defaults counted when set).
    pub fn len(&self) -> usize {
        usize::from(self.defaults != Rule::default()) + self.projects.len() + self.types.len() + self.agents.len()
    }

    /// Whether it sets nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rule's checks, added to (or, for memory and cpu, put in place of) the finding's.
/// `cost_per_hour` is the agent's spending over the last hour, when known.
pub fn apply(
    spool: &Spool,
    obs: &Observed,
    hb: Option<&Heartbeat>,
    rule: &Rule,
    cost_per_hour: Option<f64>,
    f: &mut Finding,
) {
    let mut set = |name: &str, level: Level, message: String| {
        f.checks.retain(|c| c.name != name);
        f.checks.push(af_spool::health::Check { name: name.into(), level, message });
    };
    if rule.memory.is_set() {
        if let Some(rss) = f.rss_bytes {
            let level = rule.memory.judge(rss as f64);
            set(
                "memory",
                level,
                format!(
                    "RSS {} ({})",
                    af_spool::human::format_size(rss),
                    limits(&rule.memory, |v| af_spool::human::format_size(v as u64))
                ),
            );
        }
    }
    if rule.cpu.is_set() {
        if let Some(cpu) = f.cpu_percent {
            set("cpu", rule.cpu.judge(cpu), format!("CPU {cpu:.1} % ({})", limits(&rule.cpu, |v| format!("{v} %"))));
        }
    }
    if rule.cost_per_hour.is_set() {
        if let Some(rate) = cost_per_hour {
            let text =
                format!("spent ${rate:.4} in the last hour ({})", limits(&rule.cost_per_hour, |v| format!("${v}")));
            set("cost", rule.cost_per_hour.judge(rate), text);
        }
    }
    if rule.silence_ms.is_set() {
        let busy = hb.is_some_and(|h| h.tasks_running > 0) || obs.state.activity.as_deref() == Some("busy");
        if busy {
            let output = std::fs::metadata(spool.output_log_path(&obs.config.id))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            let since = output.max(obs.state.updated_at.0).max(obs.state.started_at.map_or(0, |t| t.0));
            let silent = af_spool::time::Timestamp::now().0.saturating_sub(since);
            let text =
                format!("busy with no output for {} ({})", dur(silent), limits(&rule.silence_ms, |v| dur(v as u64)));
            set("silence", rule.silence_ms.judge(silent as f64), text);
        } else {
            set("silence", Level::Ok, "not busy".into());
        }
    }
    if rule.dead_letters.is_set() {
        let queue = af_spool::queue::Queue::new(spool.inbox_dir(&obs.config.id));
        let dead = queue.entries("dead").map_or(0, |e| e.len());
        let text = format!("{dead} dead letters in its inbox ({})", limits(&rule.dead_letters, |v| format!("{v}")));
        set("dead-letters", rule.dead_letters.judge(dead as f64), text);
    }
}

/// A duration in words.
fn dur(ms: u64) -> String {
    if ms >= 60_000 { format!("{:.1} min", ms as f64 / 60_000.0) } else { format!("{:.1} s", ms as f64 / 1000.0) }
}

/// "warning at X, critical at Y".
fn limits(l: &Levels, show: impl Fn(f64) -> String) -> String {
    let mut parts = Vec::new();
    if let Some(w) = l.warning {
        parts.push(format!("warning at {}", show(w)));
    }
    if let Some(c) = l.critical {
        parts.push(format!("critical at {}", show(c)));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Rules::parse(text.as_bytes()).unwrap_err().path
    }

    #[test]
    fn a_bad_field_is_named_by_its_path() {
        assert_eq!(err(r#"{"agents": {"w1": {"memory": {"warning": "lots"}}}}"#), "agents.w1.memory.warning");
        assert_eq!(
            err(r#"{"agents": {"w1": {"memory": {"warning": "2G", "critical": "1G"}}}}"#),
            "agents.w1.memory.warning"
        );
        assert_eq!(err(r#"{"types": {"robot": {}}}"#), "types.robot");
        assert_eq!(err(r#"{"projects": {"p": {"silence": {"warning": "soon"}}}}"#), "projects.p.silence.warning");
        assert_eq!(err(r#"{"defaults": {"ladder": {"maxFailures": 0}}}"#), "defaults.ladder.maxFailures");
        assert_eq!(err(r#"{"defaults": {"cpu": {"warn": 1}}}"#), "defaults.cpu.warn");
        assert_eq!(err(r#"{"default": {}}"#), "default");
        assert_eq!(err(r#"{"defaults": {"deadLetters": {"warning": 1.5}}}"#), "defaults.deadLetters.warning");
        assert_eq!(err("[1]"), "");
    }

    #[test]
    fn the_most_specific_rule_wins_field_by_field() {
        let rules = Rules::parse(
            br#"{"defaults": {"heartbeat": {"stale": "20s"}, "memory": {"warning": "1G", "critical": "2G"}},
                 "projects": {"p": {"memory": {"critical": "3G"}, "ladder": {"maxFailures": 5}}},
                 "types": {"worker": {"ping": {"enabled": false}}},
                 "agents": {"w1": {"memory": {"warning": "512M"}, "ladder": {"maxFailures": 2}}}}"#,
        )
        .unwrap();
        let config = AgentConfig::from_json(br#"{"id":"w1","type":"worker","projectId":"p"}"#).unwrap();
        let r = rules.for_agent(&config);
        assert_eq!(
            r.memory,
            Levels { warning: Some(512.0 * 1024.0 * 1024.0), critical: Some(3.0 * (1u64 << 30) as f64) }
        );
        assert_eq!((r.max_failures, r.ping, r.stale_ms), (Some(2), Some(false), Some(20_000)));
        let p = r.policy(&Policy::default());
        assert_eq!((p.max_failures, p.ping, p.stale_ms, p.backoff_ms), (2, false, 20_000, 1_000));
        let other = AgentConfig::from_json(br#"{"id":"w2","type":"monitor","projectId":"q"}"#).unwrap();
        assert_eq!(rules.for_agent(&other).memory.critical, Some(2.0 * (1u64 << 30) as f64));
        assert_eq!(Levels { warning: Some(1.0), critical: Some(3.0) }.judge(2.0), Level::Warning);
    }
}
