//! The checks of one agent, judged from its processes in /proc (its own tree only, through
//! /proc/<pid>/task/*/children), one listing of the tmux server per pass, its records and its ping.

use super::policy::Policy;
use crate::procfs::{self, ProcStat};
use crate::tmux::Tmux;
use af_spool::health::{Check, Level};
use af_spool::record::{Health, Heartbeat, Status};
use af_spool::{Observed, Spool};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The tmux servers as one pass sees them: one listing per server per pass, not one call per
/// agent. `AF_TMUX_SOCKET`'s server is listed up front; another server (see [`crate::shard`]) when
/// the first of its agents is checked.
pub struct World {
    tmux: Tmux,
    /// Each server's listing, by socket name (None: the default server).
    servers: Mutex<HashMap<Option<String>, Arc<Listing>>>,
    root: String,
}

/// One tmux server's sessions and windows.
struct Listing {
    /// Its name, for messages.
    name: String,
    /// Session name → its `@af_home`; None when tmux does not answer.
    sessions: Option<HashMap<String, Option<String>>>,
    windows: HashSet<(String, String)>,
}

impl Listing {
    /// Lists every window of one server. A server that does not answer in time is an error
    /// (Timeout).
    fn of(tmux: &Tmux) -> af_spool::Result<Listing> {
        let format = format!("#{{session_name}}\t#{{window_name}}\t#{{{}}}", crate::tmux::MARKER);
        let mut windows = HashSet::new();
        let sessions = match tmux.run(&["list-windows", "-a", "-F", &format]) {
            Ok(out) => {
                let mut sessions = HashMap::new();
                for l in out.lines() {
                    let mut f = l.split('\t');
                    let (Some(s), Some(w)) = (f.next(), f.next()) else { continue };
                    let home = f.next().filter(|h| !h.is_empty()).map(str::to_owned);
                    sessions.insert(s.to_owned(), home);
                    windows.insert((s.to_owned(), w.to_owned()));
                }
                Some(sessions)
            }
            Err(e @ af_spool::Error::Timeout(_)) => return Err(e),
            Err(e) => crate::tmux::no_server(&e.to_string()).then(HashMap::new),
        };
        Ok(Listing { name: tmux.name().to_owned(), sessions, windows })
    }
}

impl World {
    /// Lists every window of `AF_TMUX_SOCKET`'s server once. When it does not answer in time the
    /// pass is an error (Timeout): it must not hang on it, nor pretend it checked.
    pub fn snapshot(spool: &Spool) -> af_spool::Result<World> {
        let tmux = Tmux::from_env();
        let first = Listing::of(&tmux)?;
        let servers = HashMap::from([(tmux.socket().map(str::to_owned), Arc::new(first))]);
        Ok(World { tmux, servers: Mutex::new(servers), root: spool.root().display().to_string() })
    }

    /// The listing of the server `socket`, made at its first use in the pass. One that does not
    /// answer in time lists nothing: its agents' tmux check says so, and the others are checked.
    fn listing(&self, socket: Option<&str>) -> Arc<Listing> {
        let mut servers = self.servers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = socket.map(str::to_owned);
        if let Some(l) = servers.get(&key) {
            return l.clone();
        }
        let server = self.tmux.on(socket);
        let listing = Listing::of(&server).unwrap_or_else(|_| Listing {
            name: server.name().to_owned(),
            sessions: None,
            windows: HashSet::new(),
        });
        let listing = Arc::new(listing);
        servers.insert(key, listing.clone());
        listing
    }
}

/// A process's state, if it exists: one open, one read, one close (this runs for every agent of
/// every pass).
fn stat(pid: u32) -> Option<ProcStat> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    procfs::parse_stat(pid, std::str::from_utf8(&buf[..n]).ok()?)
}

/// The children of a process, from /proc/<pid>/task/*/children.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(text.split_ascii_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    out
}

/// Resident memory of every live descendant of `root` (af-wrap's tree, af-wrap excluded).
fn tree_rss(root: u32) -> u64 {
    let mut total = 0;
    let mut stack = children(root);
    let mut seen = HashSet::new();
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(p) = stat(pid).filter(|p| p.state != 'Z' && p.state != 'X') {
            total += p.rss_bytes;
        }
        stack.extend(children(pid));
    }
    total
}

/// What the checks found for one agent.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The agent's real status.
    pub status: Status,
    /// Every check run.
    pub checks: Vec<Check>,
    /// RSS of its tree.
    pub rss_bytes: Option<u64>,
    /// CPU of its tree (from its heartbeat).
    pub cpu_percent: Option<f64>,
    /// The ping's round trip.
    pub response_ms: Option<f64>,
    /// Why it needs the recovery ladder: it failed, or its supervisor hangs.
    pub failure: Option<String>,
    /// Its supervisor is alive but does not heartbeat (kill it before starting again).
    pub hung: bool,
    /// Its process is stopped though nobody paused it (its supervisor can restart it).
    pub stuck: bool,
}

impl Finding {
    /// The worst check, as a health.
    pub fn health(&self) -> Health {
        if self.checks.is_empty() {
            return Health::Unknown;
        }
        self.checks.iter().map(|c| c.level).max().unwrap_or_default().health()
    }

    fn add(&mut self, name: &str, level: Level, message: String) {
        self.checks.push(Check { name: name.into(), level, message });
    }
}

/// The names of af-health's checks (alerts of other checks, af-wrap's `claude.*`, are not its own).
pub const CHECKS: [&str; 7] = ["process", "tmux", "heartbeat", "response", "memory", "cpu", "timeout"];

/// A ping's outcome: the round trip in ms, or why it failed.
pub type Ping = Result<f64, String>;

/// Runs every check on one agent. `None` when there is nothing to check (created, stopped, on its
/// way in or out).
pub fn evaluate(
    obs: &Observed,
    hb: Option<&Heartbeat>,
    ping: Option<&Ping>,
    world: &World,
    p: &Policy,
) -> Option<Finding> {
    let status = obs.status();
    let mut f = Finding {
        status,
        checks: Vec::new(),
        rss_bytes: None,
        cpu_percent: None,
        response_ms: None,
        failure: None,
        hung: false,
        stuck: false,
    };
    match status {
        Status::Created | Status::Stopped | Status::Starting | Status::Stopping => return None,
        Status::Failed => {
            let why = obs.reason().unwrap_or_else(|| "failed".into());
            f.add("process", Level::Critical, why.clone());
            f.failure = Some(why);
            return Some(f);
        }
        Status::Running | Status::Paused => {}
    }
    let state = &obs.state;
    process(&mut f, obs);
    tmux(&mut f, obs, world);
    heartbeat(&mut f, obs, hb, p);
    // With the agent's process gone, a supervisor busy recording its end may miss a ping: that is
    // the same failure, not a second alert.
    let process_gone = f.checks.iter().any(|c| c.name == "process" && c.level == Level::Critical);
    if let Some(ping) = ping.filter(|_| !process_gone) {
        match ping {
            Ok(ms) => {
                f.response_ms = Some(*ms);
                let level = if *ms > p.ping_timeout_ms as f64 / 2.0 { Level::Warning } else { Level::Ok };
                f.add("response", level, format!("answered a ping in {ms:.1} ms"));
            }
            Err(e) => f.add("response", Level::Critical, e.clone()),
        }
    }
    if let Some(wrap) = state.wrap_pid {
        // af-wrap adds up its tree at every heartbeat: a fresh one saves walking /proc again.
        let fresh = hb.filter(|h| h.wrap_pid == wrap && h.time.age_ms() <= p.stale_after_ms(Some(h)) / 2);
        let rss = fresh.map_or_else(|| tree_rss(wrap), |h| h.rss_bytes);
        f.rss_bytes = Some(rss);
        if let Ok(Some(limit)) = obs.config.resource_limits.memory_bytes() {
            let (level, _) = against(rss as f64, limit as f64);
            let text = format!(
                "RSS {} of {} ({:.0} %)",
                af_spool::human::format_size(rss),
                af_spool::human::format_size(limit),
                rss as f64 * 100.0 / limit as f64
            );
            f.add("memory", level, text);
        }
    }
    if let Some(hb) = hb {
        f.cpu_percent = Some(hb.cpu_percent);
        if let Ok(Some(cores)) = obs.config.resource_limits.cpus() {
            let (level, pct) = against(hb.cpu_percent, cores * 100.0);
            f.add("cpu", level, format!("CPU {:.1} % of {cores} cores ({pct:.0} % of the limit)", hb.cpu_percent));
        }
    }
    claude(&mut f, obs);
    if let (Some(task), Some(started)) = (&obs.config.task_id, state.started_at) {
        let limit = obs.config.resource_limits.timeout_ms();
        let (level, pct) = against(started.age_ms() as f64, limit as f64);
        f.add("timeout", level, format!("task {task} has run {:.0} % of its timeout ({limit} ms)", pct));
    }
    Some(f)
}

/// Warning at 80 % of a limit, critical above it; also the percentage.
fn against(value: f64, limit: f64) -> (Level, f64) {
    let pct = if limit > 0.0 { value * 100.0 / limit } else { 0.0 };
    let level = if pct > 100.0 {
        Level::Critical
    } else if pct >= 80.0 {
        Level::Warning
    } else {
        Level::Ok
    };
    (level, pct)
}

/// A claude-code or codex agent's driver: unhealthy when it cannot work (the CLI missing, not logged in:
/// no failure for the ladder, since a restart cannot fix either), degraded while it waits for a
/// usage limit to reset. af-wrap raises the alerts of these itself (`claude.*`).
fn claude(f: &mut Finding, obs: &Observed) {
    use af_spool::record::AgentType;
    if !matches!(obs.config.kind, AgentType::ClaudeCode | AgentType::Codex) {
        return;
    }
    let check = if obs.config.kind == AgentType::Codex { CODEX_CHECK } else { CLAUDE_CHECK };
    let s = &obs.state;
    if let Some(fault) = &s.driver_fault {
        f.add(check, Level::Critical, format!("{}: {}", fault.kind, fault.message));
    } else if let Some(until) =
        s.waiting_until.filter(|t| s.activity.as_deref() == Some("waiting") && t.0 > af_spool::time::Timestamp::now().0)
    {
        f.add(check, Level::Warning, format!("waiting for a usage limit to reset at {}", until.rfc3339()));
    } else {
        f.add(check, Level::Ok, format!("driver {}", s.activity.as_deref().unwrap_or("up")));
    }
}

/// The check of a claude-code agent's driver.
pub const CLAUDE_CHECK: &str = "claude";

/// The check of a codex agent's driver.
pub const CODEX_CHECK: &str = "codex";

fn process(f: &mut Finding, obs: &Observed) {
    let state = &obs.state;
    let dead = |st: &Option<ProcStat>| st.as_ref().is_none_or(|s| s.state == 'Z' || s.state == 'X');
    if let Some(w) = state.wrap_pid.filter(|&w| dead(&stat(w))) {
        f.add("process", Level::Critical, format!("af-wrap (pid {w}) is dead"));
        return;
    }
    let agent = state.pid.map(stat).unwrap_or_default();
    if let Some(pid) = state.pid {
        let same = agent.as_ref().is_some_and(|s| state.pid_start.is_none_or(|t| t == s.start_ticks));
        if dead(&agent) || !same {
            let what = if agent.as_ref().is_some_and(|s| s.state == 'Z') { "a zombie" } else { "gone" };
            f.add("process", Level::Critical, format!("agent process {pid} is {what}"));
            return;
        }
    }
    let stopped = agent.is_some_and(|s| s.state == 'T' || s.state == 't');
    if stopped && obs.status() == Status::Running {
        let text = format!("agent process {} is stopped (state T) though nobody paused it", state.pid.unwrap_or(0));
        f.failure = Some(text.clone());
        f.stuck = true;
        f.add("process", Level::Critical, text);
        return;
    }
    let text = match state.pid {
        Some(pid) => format!("af-wrap and agent process {pid} alive"),
        None => "af-wrap alive (no agent process)".into(),
    };
    f.add("process", Level::Ok, text);
}

fn tmux(f: &mut Finding, obs: &Observed, world: &World) {
    let state = &obs.state;
    let listing = world.listing(state.tmux_socket.as_deref());
    let Some(sessions) = &listing.sessions else {
        f.add("tmux", Level::Critical, format!("the tmux server {} does not answer", listing.name));
        return;
    };
    let name = &state.tmux_session;
    match sessions.get(name) {
        None => f.add("tmux", Level::Critical, format!("tmux session {name} is gone")),
        Some(home) if home.as_deref() != Some(world.root.as_str()) => {
            f.add("tmux", Level::Critical, format!("tmux session {name} is not this spool's"));
        }
        Some(_) if !listing.windows.contains(&(name.clone(), "main".to_owned())) => {
            f.add("tmux", Level::Critical, format!("tmux session {name} has no `main' window"));
        }
        Some(_) => f.add("tmux", Level::Ok, format!("tmux session {name} and its main window exist")),
    }
}

fn heartbeat(f: &mut Finding, obs: &Observed, hb: Option<&Heartbeat>, p: &Policy) {
    let since_start = obs.state.started_at.map_or(0, |t| t.age_ms());
    let age = match hb.filter(|h| obs.state.wrap_pid.is_none_or(|w| w == h.wrap_pid)) {
        Some(h) => h.time.age_ms(),
        None if since_start > p.stale_ms => {
            f.add(
                "heartbeat",
                Level::Critical,
                format!("no heartbeat in {:.1} s since it started", since_start as f64 / 1e3),
            );
            f.failure = Some("its supervisor does not heartbeat".into());
            f.hung = true;
            return;
        }
        None => return,
    };
    let stale_ms = p.stale_after_ms(hb);
    let text = format!("last heartbeat {:.1} s ago", age as f64 / 1e3);
    if age > stale_ms {
        f.add("heartbeat", Level::Critical, text.clone());
        f.failure = Some(format!("its supervisor hangs: {text}"));
        f.hung = true;
    } else if age > stale_ms / 2 {
        f.add("heartbeat", Level::Warning, text);
    } else {
        f.add("heartbeat", Level::Ok, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_warn_at_80_and_fail_above_100_percent() {
        assert_eq!(against(79.0, 100.0).0, Level::Ok);
        assert_eq!(against(80.0, 100.0).0, Level::Warning);
        assert_eq!(against(100.0, 100.0).0, Level::Warning);
        assert_eq!(against(100.5, 100.0).0, Level::Critical);
        assert_eq!(against(5.0, 0.0).0, Level::Ok);
    }

    #[test]
    fn tree_rss_adds_up_our_children() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut rss = tree_rss(std::process::id());
        while rss == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            rss = tree_rss(std::process::id());
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(rss > 0);
    }
}
