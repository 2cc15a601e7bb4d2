//! AgentFlow's figures in the Prometheus text exposition format (version 0.0.4), read from the
//! spool at the moment they are asked for: agents by status, health and type, each agent's
//! process figures, restarts and spending, every queue's depth, and open alerts. `af-health
//! metrics` prints them (for node_exporter's textfile collector), and af-api serves them at
//! `/metrics` with its own request figures added.
//!
//! Names follow Prometheus's rules: the `agentflow_` prefix, base units (seconds, bytes), `_total`
//! for counters. Labels are bounded: agent ids, projects, queue names and fixed words, never a
//! message id.

use af_spool::health::AlertLevel;
use af_spool::record::{AgentType, Status};
use af_spool::{Result, Spool};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

/// What kind of figure a family holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only goes up (it starts again from zero when its source restarts).
    Counter,
    /// Observations counted into buckets.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's labels: name and value.
pub type Labels = Vec<(&'static str, String)>;

/// One metric family: its name, help, kind, and samples.
#[derive(Debug, Clone)]
pub struct Family {
    /// The name (for a histogram, without `_bucket`/`_sum`/`_count`).
    pub name: &'static str,
    /// One line saying what it is.
    pub help: &'static str,
    /// Gauge, counter or histogram.
    pub kind: Kind,
    /// Samples: a suffix (`""`, or `_bucket`, `_sum`, `_count` for histograms), labels, value.
    pub samples: Vec<(&'static str, Labels, f64)>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family { name, help, kind, samples: Vec::new() }
    }

    /// Adds a sample.
    pub fn add(&mut self, labels: &[(&'static str, &str)], value: f64) {
        self.samples.push(("", labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(), value));
    }

    /// Adds a histogram's samples from per-bucket counts (`counts[i]` observations at most
    /// `bounds[i]` and above the bound before), the count above the last bound, and the sum.
    pub fn add_histogram(
        &mut self,
        labels: &[(&'static str, &str)],
        bounds: &[f64],
        counts: &[u64],
        beyond: u64,
        sum: f64,
    ) {
        let base: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut cumulative = 0;
        for (bound, n) in bounds.iter().zip(counts) {
            cumulative += n;
            let mut l = base.clone();
            l.push(("le", number(*bound)));
            self.samples.push(("_bucket", l, cumulative as f64));
        }
        let total = cumulative + beyond;
        let mut l = base.clone();
        l.push(("le", "+Inf".into()));
        self.samples.push(("_bucket", l, total as f64));
        self.samples.push(("_sum", base.clone(), sum));
        self.samples.push(("_count", base, total as f64));
    }
}

/// A number as Prometheus writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A label value escaped as the text format wants: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Renders families in the text exposition format.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for (suffix, labels, value) in &f.samples {
            out.push_str(f.name);
            out.push_str(suffix);
            if !labels.is_empty() {
                let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let _ = write!(out, "{{{}}}", l.join(","));
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
    out
}

/// The cluster-wide pools' figures (read from Redis by [`crate::bridge::pool::figures`]): per
/// project and lane, the entries waiting in its stream, those a host's bridge holds unacked (by
/// host), and the oldest waiting one's age. Labels: projects, four lanes, hosts.
pub fn cluster_pools(lanes: &[crate::bridge::pool::LaneFigures]) -> Vec<Family> {
    let mut waiting = Family::new(
        "agentflow_cluster_pool_waiting",
        Kind::Gauge,
        "Tasks waiting in the stream of a cluster-wide pool's lane, read by no host yet.",
    );
    let mut pending = Family::new(
        "agentflow_cluster_pool_pending",
        Kind::Gauge,
        "Tasks of a cluster-wide pool's lane a host's bridge read and has not acked yet, by host.",
    );
    let mut oldest = Family::new(
        "agentflow_cluster_pool_oldest_waiting_seconds",
        Kind::Gauge,
        "How long the oldest waiting task of a cluster-wide pool's lane has waited (0: none waits).",
    );
    for l in lanes {
        let labels = [("project", l.project.as_str()), ("lane", l.lane.as_str())];
        waiting.add(&labels, l.waiting as f64);
        oldest.add(&labels, l.oldest_waiting_ms.unwrap_or(0) as f64 / 1e3);
        for (host, n) in &l.pending_by {
            pending
                .add(&[("project", l.project.as_str()), ("lane", l.lane.as_str()), ("host", host.as_str())], *n as f64);
        }
    }
    vec![waiting, pending, oldest]
}

/// Reads the spool's figures now.
pub fn gather(spool: &Spool) -> Result<Vec<Family>> {
    let started = Instant::now();
    let policy = crate::health::Policy::default();
    let mut by_state: BTreeMap<(&'static str, &'static str, &'static str), usize> = BTreeMap::new();
    let mut up = Family::new("agentflow_agent_up", Kind::Gauge, "Whether the agent runs (1) or not (0).");
    let mut restarts = Family::new(
        "agentflow_agent_restarts_total",
        Kind::Counter,
        "Restarts of the agent (by request or by the ladder).",
    );
    let mut failures = Family::new("agentflow_agent_failures_total", Kind::Counter, "Times the agent failed.");
    let mut rss = Family::new(
        "agentflow_agent_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of the agent's process tree at its last heartbeat.",
    );
    let mut cpu = Family::new(
        "agentflow_agent_cpu_usage_ratio",
        Kind::Gauge,
        "CPU use of the agent's process tree between its last two heartbeats, in cores.",
    );
    let mut procs = Family::new("agentflow_agent_processes", Kind::Gauge, "Processes in the agent's tree.");
    let mut beat_age = Family::new(
        "agentflow_agent_heartbeat_age_seconds",
        Kind::Gauge,
        "Seconds since the agent's supervisor last wrote a heartbeat.",
    );
    let mut tasks_running =
        Family::new("agentflow_agent_tasks_running", Kind::Gauge, "Tasks the agent is running now.");
    let mut tasks_done = Family::new(
        "agentflow_agent_tasks_done_total",
        Kind::Counter,
        "Tasks the agent finished since its supervisor started.",
    );
    let mut cost = Family::new(
        "agentflow_agent_cost_usd_total",
        Kind::Counter,
        "Money spent by the agent's CLI (claude-code), in US dollars.",
    );
    let mut tokens =
        Family::new("agentflow_agent_tokens_total", Kind::Counter, "Tokens used by the agent's CLI, by kind.");
    for id in spool.agent_ids()? {
        // An agent removed while we read is simply not there.
        let Ok(obs) = spool.observe(&id) else { continue };
        let status = obs.status();
        let beat = if status.is_live() { spool.read_heartbeat(&id).ok().flatten() } else { None };
        let health = crate::health::live::judge(&obs, beat.as_ref(), &policy);
        *by_state.entry((status.as_str(), health.as_str(), obs.config.kind.as_str())).or_default() += 1;
        let agent = id.as_str();
        let labels = [("agent", agent), ("project", obs.config.project_id.as_str())];
        up.add(&labels, if status == Status::Running { 1.0 } else { 0.0 });
        restarts.add(&[("agent", agent)], obs.state.restarts.into());
        failures.add(&[("agent", agent)], obs.state.failures.into());
        if matches!(obs.config.kind, AgentType::ClaudeCode | AgentType::Codex) {
            cost.add(&[("agent", agent)], obs.state.cost_usd);
            let t = &obs.state.tokens;
            for (kind, n) in [
                ("input", t.input),
                ("output", t.output),
                ("cache_read", t.cache_read),
                ("cache_creation", t.cache_creation),
            ] {
                tokens.add(&[("agent", agent), ("kind", kind)], n as f64);
            }
        }
        if let Some(b) = beat {
            rss.add(&[("agent", agent)], b.rss_bytes as f64);
            cpu.add(&[("agent", agent)], b.cpu_percent / 100.0);
            procs.add(&[("agent", agent)], b.processes.into());
            beat_age.add(&[("agent", agent)], b.time.age_ms() as f64 / 1e3);
            tasks_running.add(&[("agent", agent)], b.tasks_running.into());
            tasks_done.add(&[("agent", agent)], b.tasks_done as f64);
        }
    }
    let mut agents =
        Family::new("agentflow_agents", Kind::Gauge, "Agents by status, health (as `af-spawn ls` tells it) and type.");
    for ((status, health, kind), n) in &by_state {
        agents.add(&[("status", status), ("health", health), ("type", kind)], *n as f64);
    }
    let mut depth = Family::new("agentflow_queue_depth", Kind::Gauge, "Messages waiting in the queue.");
    let mut in_flight = Family::new("agentflow_queue_in_flight", Kind::Gauge, "Messages claimed and not yet acked.");
    let mut dead = Family::new("agentflow_queue_dead_letters", Kind::Gauge, "Messages in the queue's dead letters.");
    let mut acked = Family::new("agentflow_queue_acked_kept", Kind::Gauge, "Acked messages kept for history.");
    let mut ack_rate =
        Family::new("agentflow_queue_ack_rate", Kind::Gauge, "Messages acked per second, over the last minute.");
    let mut bus: Vec<Family> =
        BUS_COUNTERS.iter().map(|(_, name, help)| Family::new(name, Kind::Counter, help)).collect();
    let mut latency = Family::new(
        "agentflow_bus_delivery_latency_seconds",
        Kind::Histogram,
        "Seconds from a message's creation to its first claim by a receiver.",
    );
    for (address, queue) in af_spool::bus::all_queues(spool)? {
        let Ok(s) = queue.stats() else { continue };
        let name = address.to_string();
        let l = [("queue", name.as_str())];
        let totals = queue.tally().fold().unwrap_or_default();
        for ((key, _, _), family) in BUS_COUNTERS.iter().zip(bus.iter_mut()) {
            family.add(&l, totals.counts.get(*key).copied().unwrap_or(0) as f64);
        }
        let h = totals.histograms.get("latency").cloned().unwrap_or_default();
        let mut counts = h.counts.clone();
        counts.resize(af_spool::tally::BOUNDS.len(), 0);
        latency.add_histogram(&l, &af_spool::tally::BOUNDS, &counts, h.beyond, h.sum);
        depth.add(&l, s.depth as f64);
        in_flight.add(&l, s.in_flight as f64);
        dead.add(&l, s.dead as f64);
        acked.add(&l, s.acked as f64);
        ack_rate.add(&l, s.ack_rate);
    }
    let mut alerts = Family::new("agentflow_alerts_open", Kind::Gauge, "Open alerts by level.");
    let open = spool.open_alerts().unwrap_or_default();
    for level in [AlertLevel::Warning, AlertLevel::Critical] {
        let n = open.iter().filter(|a| a.level == level).count();
        alerts.add(&[("level", level.as_str())], n as f64);
    }
    let spooled = spool.tally().fold().unwrap_or_default();
    let mut ladder = Family::new(
        "agentflow_ladder_steps_total",
        Kind::Counter,
        "Recovery-ladder steps af-health took, by step (restart, rollback, give-up) and outcome.",
    );
    let mut turns = Family::new("agentflow_claude_turns_total", Kind::Counter, "Claude Code turns, by outcome.");
    let mut codex_turns = Family::new("agentflow_codex_turns_total", Kind::Counter, "Codex turns, by outcome.");
    let mut raised =
        Family::new("agentflow_alerts_raised_total", Kind::Counter, "Alerts raised (or raised a level), by level.");
    let mut resolved =
        Family::new("agentflow_alerts_resolved_total", Kind::Counter, "Alerts resolved, by the level they had.");
    for level in [AlertLevel::Warning, AlertLevel::Critical] {
        let n = |what: &str| spooled.counts.get(&format!("{what}:{}", level.as_str())).copied().unwrap_or(0) as f64;
        raised.add(&[("level", level.as_str())], n("alert-raised"));
        resolved.add(&[("level", level.as_str())], n("alert-resolved"));
    }
    for (key, n) in &spooled.counts {
        let parts: Vec<&str> = key.split(':').collect();
        match parts.as_slice() {
            ["ladder", step, outcome] => ladder.add(&[("step", step), ("outcome", outcome)], *n as f64),
            ["turn", outcome] => turns.add(&[("outcome", outcome)], *n as f64),
            ["codex-turn", outcome] => codex_turns.add(&[("outcome", outcome)], *n as f64),
            _ => {}
        }
    }
    let mut took = Family::new(
        "agentflow_metrics_gather_seconds",
        Kind::Gauge,
        "How long reading these figures from the spool took.",
    );
    took.add(&[], started.elapsed().as_secs_f64());
    let mut families = vec![
        agents,
        up,
        restarts,
        failures,
        rss,
        cpu,
        procs,
        beat_age,
        tasks_running,
        tasks_done,
        cost,
        tokens,
        depth,
        in_flight,
        dead,
        acked,
        ack_rate,
    ];
    families.extend(bus);
    families.extend([latency, alerts, raised, resolved, ladder, turns, codex_turns, took]);
    Ok(families)
}

/// The queue counters: tally name, metric name, help.
const BUS_COUNTERS: [(&str, &str, &str); 5] = [
    ("sent", "agentflow_bus_messages_sent_total", "Messages put into the queue (by a sender or the bridge)."),
    ("delivered", "agentflow_bus_messages_delivered_total", "Messages handed to a receiver (claimed)."),
    ("acked", "agentflow_bus_messages_acked_total", "Messages acked by their receiver."),
    ("retried", "agentflow_bus_messages_retried_total", "Claims given back to the queue for another delivery."),
    ("dead", "agentflow_bus_messages_dead_total", "Messages moved to the dead letters."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_escapes_labels_and_writes_histograms_cumulatively() {
        let mut f = Family::new("agentflow_x_seconds", Kind::Histogram, "A test.");
        f.add_histogram(&[("route", "a\"b\\c\nd")], &[0.1, 1.0], &[2, 3], 1, 1.5);
        let text = render(&[f]);
        assert_eq!(
            text,
            "# HELP agentflow_x_seconds A test.\n# TYPE agentflow_x_seconds histogram\n\
             agentflow_x_seconds_bucket{route=\"a\\\"b\\\\c\\nd\",le=\"0.1\"} 2\n\
             agentflow_x_seconds_bucket{route=\"a\\\"b\\\\c\\nd\",le=\"1\"} 5\n\
             agentflow_x_seconds_bucket{route=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 6\n\
             agentflow_x_seconds_sum{route=\"a\\\"b\\\\c\\nd\"} 1.5\n\
             agentflow_x_seconds_count{route=\"a\\\"b\\\\c\\nd\"} 6\n"
        );
    }
}
