//! Which resource a path names, which methods it has, and the handler for each.

use crate::agents::Cache;
use crate::guard::{Hosts, RateLimit, Token};
use crate::http::{Answer, ApiError, Reply, Req, percent_decode};
use crate::{agent, agents, assets, cluster, cockpit, messages, orchestrator};
use af_spool::Spool;
use af_spool::time::Timestamp;
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// What every request handler shares.
pub struct App {
    /// The spool.
    pub spool: Spool,
    /// The bearer token.
    pub token: Token,
    /// The Host allowlist.
    pub hosts: Hosts,
    /// Per-client rate limits.
    pub rate: RateLimit,
    /// The snapshot of the agents.
    pub cache: Cache,
    /// When the server started.
    pub started: Timestamp,
    /// Requests seen.
    pub requests: AtomicU64,
    /// Requests refused by the rate limit.
    pub limited: AtomicU64,
    /// Open event streams.
    pub streams: AtomicUsize,
    /// The host's figures (CPU, memory, load, disks), sampled at most once a second.
    pub host: crate::host::Host,
    /// Whether `/metrics` is served without the token to every client, not only loopback ones.
    pub metrics_public: bool,
    /// af-api's request figures, for `/metrics`.
    pub http: crate::metrics::HttpFigures,
    /// Requests sent from af-api awaiting their answer (the cockpit's composer).
    pub pending: cockpit::Pending,
}

/// The resources af-api serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/healthz`.
    Healthz,
    /// `/`: the dashboard.
    Dashboard,
    /// `/api/openapi.json`.
    OpenApi,
    /// `/api/events`: Server-Sent Events.
    Events,
    /// `/api/agents/create`.
    Create,
    /// `/api/agents`.
    Agents,
    /// `/api/agents/{id}`.
    Agent(String),
    /// `/api/agents/{id}/status`.
    Status(String),
    /// `/api/agents/{id}/messages`.
    Messages(String),
    /// `/api/agents/{id}/health`.
    Health(String),
    /// `/api/orchestrator`.
    Orchestrator,
    /// `/api/alerts`.
    Alerts,
    /// `/api/alerts/{id}/ack`.
    AlertAck(String),
    /// `/metrics`: the Prometheus text format.
    Metrics,
    /// `/api/cluster`: every bridged host's agents, from Redis.
    Cluster,
    // The cockpit (cockpit.rs).
    /// `/api/agents/{id}/output`.
    Output(String),
    /// `/api/agents/{id}/output/stream`: Server-Sent Events.
    OutputStream(String),
    /// `/api/agents/{id}/conversation`.
    Conversation(String),
    /// `/api/agents/{id}/checkpoints`.
    Checkpoints(String),
    /// `/api/agents/{id}/checkpoints/{ckpt}/diff`.
    CheckpointDiff(String, String),
    /// `/api/agents/{id}/checkpoints/{ckpt}/rollback`.
    CheckpointRollback(String, String),
    /// `/api/agents/{id}/requests`.
    Requests(String),
    /// `/api/agents/{id}/interrupt`.
    Interrupt(String),
    /// `/api/agents/{id}/requests/{requestId}`.
    Request(String, String),
    /// `/api/flow`.
    Flow,
}

impl Resource {
    /// The resource a path names, if any.
    pub fn of(path: &str) -> Option<Resource> {
        let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let id = |s: &str| percent_decode(s);
        Some(match segs.as_slice() {
            ["healthz"] => Resource::Healthz,
            ["metrics"] => Resource::Metrics,
            [""] | ["index.html"] => Resource::Dashboard,
            ["api", "openapi.json"] => Resource::OpenApi,
            ["api", "events"] => Resource::Events,
            ["api", "agents"] => Resource::Agents,
            ["api", "agents", "create"] => Resource::Create,
            ["api", "agents", x] if !x.is_empty() => Resource::Agent(id(x)),
            ["api", "agents", x, "status"] if !x.is_empty() => Resource::Status(id(x)),
            ["api", "agents", x, "messages"] if !x.is_empty() => Resource::Messages(id(x)),
            ["api", "agents", x, "health"] if !x.is_empty() => Resource::Health(id(x)),
            ["api", "orchestrator"] => Resource::Orchestrator,
            ["api", "alerts"] => Resource::Alerts,
            ["api", "cluster"] => Resource::Cluster,
            ["api", "alerts", x, "ack"] if !x.is_empty() => Resource::AlertAck(id(x)),
            // The cockpit.
            ["api", "agents", x, "output"] if !x.is_empty() => Resource::Output(id(x)),
            ["api", "agents", x, "output", "stream"] if !x.is_empty() => Resource::OutputStream(id(x)),
            ["api", "agents", x, "conversation"] if !x.is_empty() => Resource::Conversation(id(x)),
            ["api", "agents", x, "checkpoints"] if !x.is_empty() => Resource::Checkpoints(id(x)),
            ["api", "agents", x, "checkpoints", c, "diff"] if !x.is_empty() && !c.is_empty() => {
                Resource::CheckpointDiff(id(x), id(c))
            }
            ["api", "agents", x, "checkpoints", c, "rollback"] if !x.is_empty() && !c.is_empty() => {
                Resource::CheckpointRollback(id(x), id(c))
            }
            ["api", "agents", x, "requests"] if !x.is_empty() => Resource::Requests(id(x)),
            ["api", "agents", x, "interrupt"] if !x.is_empty() => Resource::Interrupt(id(x)),
            ["api", "agents", x, "requests", r] if !x.is_empty() && !r.is_empty() => Resource::Request(id(x), id(r)),
            ["api", "flow"] => Resource::Flow,
            _ => return None,
        })
    }

    /// The methods it answers.
    pub fn methods(&self) -> &'static [&'static str] {
        match self {
            Resource::Healthz
            | Resource::Dashboard
            | Resource::OpenApi
            | Resource::Events
            | Resource::Alerts
            | Resource::Metrics
            | Resource::Cluster
            | Resource::Health(_) => &["GET"],
            Resource::Create | Resource::AlertAck(_) => &["POST"],
            Resource::Agents => &["GET", "POST", "DELETE"],
            Resource::Agent(_) => &["GET", "PUT", "DELETE", "PATCH"],
            Resource::Status(_) => &["GET", "POST", "PUT"],
            Resource::Messages(_) => &["GET", "POST", "PUT", "DELETE", "PATCH"],
            Resource::Orchestrator => &["GET", "POST", "PUT", "DELETE"],
            Resource::Output(_)
            | Resource::OutputStream(_)
            | Resource::Conversation(_)
            | Resource::CheckpointDiff(..)
            | Resource::Request(..)
            | Resource::Flow => &["GET"],
            Resource::Checkpoints(_) => &["GET", "POST"],
            Resource::CheckpointRollback(..) | Resource::Requests(_) | Resource::Interrupt(_) => &["POST"],
        }
    }

    /// The route's name in af-api's request figures: one word per resource, never an id.
    pub fn route(&self) -> &'static str {
        match self {
            Resource::Healthz => "healthz",
            Resource::Dashboard => "dashboard",
            Resource::OpenApi => "openapi",
            Resource::Events => "events",
            Resource::Create => "agents_create",
            Resource::Agents => "agents",
            Resource::Agent(_) => "agent",
            Resource::Status(_) => "agent_status",
            Resource::Messages(_) => "agent_messages",
            Resource::Health(_) => "agent_health",
            Resource::Orchestrator => "orchestrator",
            Resource::Alerts => "alerts",
            Resource::AlertAck(_) => "alert_ack",
            Resource::Metrics => "metrics",
            Resource::Cluster => "cluster",
            Resource::Output(_) => "agent_output",
            Resource::OutputStream(_) => "agent_output_stream",
            Resource::Conversation(_) => "agent_conversation",
            Resource::Checkpoints(_) => "agent_checkpoints",
            Resource::CheckpointDiff(..) => "agent_checkpoint_diff",
            Resource::CheckpointRollback(..) => "agent_checkpoint_rollback",
            Resource::Requests(_) => "agent_requests",
            Resource::Interrupt(_) => "agent_interrupt",
            Resource::Request(..) => "agent_request",
            Resource::Flow => "flow",
        }
    }

    /// Whether it is served without a token (it holds no data).
    pub fn public(&self) -> bool {
        matches!(self, Resource::Healthz | Resource::Dashboard | Resource::OpenApi)
    }
}

/// Answers a request for a resource with an allowed method.
pub fn dispatch(app: &App, res: &Resource, req: &Req) -> Answer {
    let m = req.method.as_str();
    match (res, m) {
        (Resource::Healthz, _) => Ok(Reply::json(200, &serde_json::json!({"ok": true}))),
        (Resource::Metrics, _) => crate::metrics::serve(app),
        (Resource::Dashboard, _) => Ok(assets::dashboard()),
        (Resource::OpenApi, _) => Ok(assets::openapi()),
        (Resource::Create, _) => agents::create(app, req),
        (Resource::Agents, "GET") => agents::list(app, req),
        (Resource::Agents, "POST") => agents::bulk(app, req),
        (Resource::Agents, _) => agents::cleanup(app, req),
        (Resource::Agent(id), "GET") => agent::get(app, id),
        (Resource::Agent(id), "PUT") => agent::put(app, id, req),
        (Resource::Agent(id), "DELETE") => agent::delete(app, id, req),
        (Resource::Agent(id), _) => agent::patch(app, id, req),
        (Resource::Status(id), "GET") => agent::status_get(app, id),
        (Resource::Status(id), "POST") => agent::status_post(app, id),
        (Resource::Status(id), _) => agent::status_put(app, id, req),
        (Resource::Messages(id), "GET") => messages::history(app, id),
        (Resource::Messages(id), "POST") => messages::send(app, id, req),
        (Resource::Messages(id), "PUT") => messages::receive(app, id),
        (Resource::Messages(id), "PATCH") => messages::settle(app, id, req),
        (Resource::Messages(id), _) => messages::clear(app, id),
        (Resource::Health(id), _) => agent::health(app, id),
        (Resource::Orchestrator, "GET") => orchestrator::status(app),
        (Resource::Orchestrator, "POST") => orchestrator::operate(app, req),
        (Resource::Orchestrator, "PUT") => orchestrator::configure(app, req),
        (Resource::Orchestrator, _) => orchestrator::shutdown(app),
        (Resource::Alerts, _) => orchestrator::alerts(app, req),
        (Resource::AlertAck(id), _) => orchestrator::ack(app, id),
        (Resource::Cluster, _) => cluster::get(app),
        (Resource::Events | Resource::OutputStream(_), _) => Err(ApiError::new(500, "event streams are served apart")),
        // The cockpit.
        (Resource::Output(id), _) => cockpit::output(app, id, req),
        (Resource::Conversation(id), _) => cockpit::conversation(app, id, req),
        (Resource::Checkpoints(id), "GET") => cockpit::checkpoints(app, id),
        (Resource::Checkpoints(id), _) => cockpit::checkpoint_create(app, id, req),
        (Resource::CheckpointDiff(id, c), _) => cockpit::checkpoint_diff(app, id, c, req),
        (Resource::CheckpointRollback(id, c), _) => cockpit::checkpoint_rollback(app, id, c),
        (Resource::Requests(id), _) => cockpit::request_send(app, id, req),
        (Resource::Interrupt(id), _) => cockpit::interrupt(app, id),
        (Resource::Request(id, r), _) => cockpit::request_answer(app, id, r),
        (Resource::Flow, _) => cockpit::flow(app, req),
    }
}
