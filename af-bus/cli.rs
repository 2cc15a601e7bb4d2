//! af-bus's command line.

use clap::{Parser, Subcommand};

/// Send, publish, receive and acknowledge AgentFlow messages through queues in the spool.
#[derive(Parser)]
#[command(
    name = "af-bus",
    version,
    about = "Durable, prioritized messages between agents: send, publish, subscribe, recv, ack, request/reply",
    long_about = "Durable, prioritized messages between agents.\n\n\
Every queue is a Maildir in the spool ($AF_HOME): an agent's inbox (agents/<id>/inbox), a project's \
shared pool (pool:PROJECT, taken from by every running worker of the project), a durable subscription \
(by name), or a requester's reply queue (reply:ID). Receivers take messages by priority (critical, high, \
normal, low), then first in, first out; a claim not acked within its visibility timeout returns to the \
queue with its attempts raised, and after AF_BUS_MAX_ATTEMPTS (5) goes to the dead letters, as does an \
expired message. Waiting receivers are woken through named pipes. Executables in $AF_HOME/bus.d/ are \
middleware: each message passes through them in name order (message JSON on stdin, the possibly \
changed message on stdout; a non-zero exit rejects it with the program's stderr as the reason). \
Messages over AF_BUS_MAX_BYTES (1 MiB) are refused. DATA is JSON, or - for standard input.",
    after_help = af_spool::ExitCode::TABLE
)]
pub struct Cli {
    /// Print JSON (one document, or JSON lines for several messages) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not fsync deliveries: faster, still safe against any process being killed, not against
    /// a power cut.
    #[arg(long, global = true, env = "AF_BUS_NO_FSYNC")]
    pub no_fsync: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the verbs that make messages.
#[derive(clap::Args, Clone)]
pub struct Make {
    /// critical, high, normal or low.
    #[arg(long, short, default_value = "normal")]
    pub priority: String,
    /// Drop the message to the dead letters if nobody took it within SECS.
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<f64>,
}

/// The verbs.
#[derive(Subcommand)]
pub enum Command {
    /// Send a message to a queue (an agent id, pool:PROJECT, or a subscription); prints its id.
    Send {
        /// The queue: an agent id, pool:PROJECT, a subscription name; QUEUE@HOST for a queue on
        /// another host (through `af-bus bridge`).
        #[arg(long, value_name = "QUEUE")]
        to: Option<String>,
        #[command(flatten)]
        make: Make,
        /// task, request or event.
        #[arg(long, short, default_value = "event")]
        kind: String,
        /// Where responses go (a queue, as for --to).
        #[arg(long, value_name = "QUEUE")]
        reply_to: Option<String>,
        /// Read JSON lines on stdin, one message each: with --to, each line is a payload; without,
        /// each is {"to", "payload", "priority"?, "kind"?, "replyTo"?, "ttl"?}. Nothing is sent if
        /// a line is invalid. Prints one id per line.
        #[arg(long, conflicts_with = "data")]
        batch: bool,
        /// Say nothing when a task or request goes to an agent that is not running (it waits in
        /// the agent's inbox either way).
        #[arg(long)]
        queue_only: bool,
        /// The payload (JSON), or - for standard input (the default; on a terminal, af-bus says
        /// it is reading).
        data: Option<String>,
    },
    /// Send a message to every agent's inbox (or every agent of a project).
    Broadcast {
        /// Only the agents of this project.
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        make: Make,
        /// The payload (JSON), or - for standard input.
        data: String,
    },
    /// Publish an event on a topic, to every subscription whose pattern matches (none is fine).
    Publish {
        /// The topic, e.g. tasks.results.
        #[arg(value_name = "TOPIC", long, short)]
        topic: String,
        #[command(flatten)]
        make: Make,
        /// The payload (JSON), or - for standard input.
        data: String,
    },
    /// Make a durable subscription: a queue that gets every message published on a matching topic.
    Subscribe {
        /// The subscription's (and its queue's) name.
        name: String,
        /// The topic pattern: `*` matches any run of characters (health, tasks.*, *).
        #[arg(value_name = "TOPIC", long, short)]
        topic: String,
    },
    /// Remove a subscription and its queue.
    Unsubscribe {
        /// The subscription.
        name: String,
    },
    /// Take the next message(s) of a queue, by priority then age; exit 1 when there is none.
    Recv {
        /// The queue: an agent id, pool:PROJECT, or a subscription name.
        #[arg(value_name = "QUEUE")]
        queue: String,
        /// Wait for a message (woken by the queue's named pipe); SIGINT or SIGTERM ends it (exit 130).
        #[arg(long, short)]
        wait: bool,
        /// With --wait, give up after SECS (exit 5).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// Take up to N messages (JSON lines with --json).
        #[arg(long, short = 'n', default_value_t = 1)]
        max: usize,
        /// Unless acked within SECS, the message returns to the queue.
        #[arg(long, default_value_t = 30.0, value_name = "SECS")]
        visibility: f64,
        /// Ack at once (at most once delivery).
        #[arg(long)]
        ack: bool,
    },
    /// Acknowledge received messages: they move to the history.
    Ack {
        /// The queue they were received from.
        #[arg(value_name = "QUEUE")]
        queue: String,
        /// Message ids (or - to read them from stdin, one a line).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Give a received message back (its attempts raised), at once or after a delay.
    Nack {
        /// The queue it was received from.
        #[arg(value_name = "QUEUE")]
        queue: String,
        /// The message id.
        id: String,
        /// Make it visible again only after SECS.
        #[arg(long, default_value_t = 0.0, value_name = "SECS")]
        delay: f64,
    },
    /// Send a request and wait for its correlated response; prints the response's payload, and
    /// exits 1 when the answer says `"ok": false`.
    Request {
        /// The queue: an agent id, pool:PROJECT, a subscription; QUEUE@HOST for a queue on another
        /// host (the response comes back through the bridges).
        #[arg(long, value_name = "QUEUE")]
        to: String,
        /// Give up after SECS (exit 5).
        #[arg(long, default_value_t = 30.0, value_name = "SECS")]
        timeout: f64,
        /// Exit 0 on any answer, `"ok": false` too.
        #[arg(long)]
        no_fail: bool,
        /// Say nothing when the agent asked is not running (the request waits in its inbox).
        #[arg(long)]
        queue_only: bool,
        #[command(flatten)]
        make: Make,
        /// The payload (JSON), or - for standard input.
        data: String,
    },
    /// Answer a request: a response with its correlation id, sent to its reply-to queue.
    Reply {
        /// The request's message id.
        id: String,
        /// The payload (JSON), or - for standard input.
        data: String,
    },
    /// What a queue received and acked, oldest first.
    History {
        /// The queue.
        #[arg(value_name = "QUEUE")]
        queue: String,
        /// At most this many (the latest).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Remove every waiting, claimed, dead and acked message of a queue.
    Clear {
        /// The queue.
        #[arg(value_name = "QUEUE")]
        queue: String,
    },
    /// Depths per queue and priority, in flight, dead letters, acked and ack rates.
    Stats {
        /// Also the cluster-wide pools, read from Redis (AF_REDIS_URL): per project and lane
        /// (priority), the tasks waiting in its stream, those a host's bridge took and has not
        /// acked yet (by host), and how long the oldest has waited (JSON: clusterPools).
        #[arg(long)]
        cluster: bool,
        #[command(flatten)]
        redis: af_cli::Redis,
    },
    /// Print messages published on matching topics as JSON lines, as they arrive, until SIGINT or
    /// SIGTERM (exit 130).
    Tail {
        /// The topic pattern.
        #[arg(value_name = "TOPIC", long, short, default_value = "*")]
        topic: String,
    },
    /// List a queue's dead letters, with the reason each died.
    Dead {
        /// The queue.
        #[arg(value_name = "QUEUE")]
        queue: String,
    },
    /// Interrupt the running turn of a claude-code agent (its task is answered `interrupted`);
    /// exit 1 when no turn runs.
    Interrupt {
        /// The agent.
        id: String,
        /// Give up when its af-wrap has not answered after SECS (exit 5).
        #[arg(long, default_value_t = 5.0, value_name = "SECS")]
        timeout: f64,
    },
    /// Link this host's spool to other hosts' through Redis Streams, until SIGTERM or SIGINT
    /// (exit 0): messages of the outbox (bridge:out, sent to QUEUE@HOST) go to their host's stream
    /// and are acked here once Redis has them; entries of this host's stream (af:host:HOST:in,
    /// consumer group af-bridge) are delivered once each into their local queues, then acked in
    /// Redis. Bad entries go to the dead letters of bridge:in. Reconnects with a capped backoff.
    Bridge {
        #[command(flatten)]
        redis: af_cli::Redis,
        /// Run the control requests of other hosts (af-spawn stop|start|restart|pause|resume
        /// ID@THISHOST, af-checkpoint create|rollback ID@THISHOST, af-health ack ALERT@THISHOST);
        /// without it they are refused (the caller exits 4, error conflict).
        #[arg(long)]
        allow_control: bool,
        /// Leave the cluster instead, and exit: this host is taken out of the Redis set af:hosts
        /// with its heartbeat and published agents, so that the other hosts stop mirroring
        /// topics and broadcasts to it and raise no host.unreachable about it; publish and
        /// broadcast stop copying into the outbox (the copies in it go to its dead letters).
        /// Stop this host's bridge first (exit 4 while one runs); running it again joins again.
        #[arg(long, conflicts_with = "allow_control")]
        leave: bool,
    },
    /// Put a dead letter back into its queue, attempts reset.
    Retry {
        /// The queue.
        #[arg(value_name = "QUEUE")]
        queue: String,
        /// The message id.
        id: String,
    },
}
