//! `af-bus bridge`: this host's spool linked to other hosts' through Redis Streams.
//!
//! Every host has an inbound stream, `af:host:<HOST>:in`. Outbound, the bridge takes the messages
//! of the local outbox (`bridge:out`, addressed `QUEUE@HOST`), adds each to its host's stream, and
//! acks it locally only once Redis accepted it. Inbound, it reads its own host's stream through
//! the consumer group `af-bridge` (consumer: the host's name), delivers each entry into its local
//! queue exactly once by message id (af-spool `bridge`), and only then XACKs (and XDELs) it. On
//! every (re)connection it first takes over the group's pending entries (XAUTOCLAIM), so an entry
//! read by a bridge that died is delivered now. Inbound deliveries are group-committed: one
//! journal fsync per batch read, one syncfs every [`RETIRE_EVERY`] (af-spool `bridge`). A third
//! pump makes `pool:PROJECT` cluster-wide ([`pool`]). Each direction runs in its own thread with its own
//! connection, and reconnects with a capped backoff, saying so in the log.

pub mod cluster;
pub mod connect;
pub mod control;
mod inbound;
pub mod leave;
mod outbound;
pub mod pool;

use af_spool::bridge::Inbound;
use af_spool::{Error, Result, Spool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The consumer group every host's bridge reads its inbound stream through.
pub const GROUP: &str = "af-bridge";

/// The set of every host that ever bridged (topic events and broadcasts go to each).
pub const HOSTS: &str = "af:hosts";

/// How many entries or messages one round moves at most.
pub const BATCH: usize = 256;

/// The longest wait between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long connecting, or one command, may take before Redis counts as away.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the inbound deliveries are made durable together (their journals retired).
pub const RETIRE_EVERY: Duration = Duration::from_secs(2);

/// How long an XREADGROUP waits for entries (so a stop is noticed within it).
pub(crate) const BLOCK: Duration = Duration::from_millis(500);

/// The inbound stream of a host.
pub fn stream_key(host: &str) -> String {
    format!("af:host:{host}:in")
}

/// What a bridge needs.
#[derive(Debug, Clone)]
pub struct Bridge {
    /// The spool.
    pub spool: Spool,
    /// This host's name.
    pub host: String,
    /// The Redis client (from `AF_REDIS_URL`).
    pub client: redis::Client,
    /// Whether deliveries are fsynced.
    pub durable: bool,
    /// Whether control requests from other hosts are run (`--allow-control`); refused if not.
    pub allow_control: bool,
    /// The inbound deliveries of the running bridge (set by [`Bridge::run`]).
    inbound: Option<Arc<Inbound>>,
}

impl Bridge {
    /// A bridge for `spool` as host `host`, through the Redis at `url` (`redis://` or `rediss://`,
    /// with `user:password@` for an ACL user). Invalid when the URL does not parse.
    pub fn new(spool: Spool, host: String, url: &str, durable: bool) -> Result<Bridge> {
        af_spool::host::validate_host(&host)?;
        let client = connect::client(url)?;
        Ok(Bridge { spool, host, client, durable, allow_control: false, inbound: None })
    }

    /// Where Redis is, without the password, for logs.
    pub fn redis_name(&self) -> String {
        self.client.get_connection_info().addr().to_string()
    }

    /// Runs both directions until `stop` is set; the bridge's lock is held throughout (Conflict
    /// when another bridge runs on this spool).
    pub fn run(&self, stop: &AtomicBool) -> Result<()> {
        let lock = af_spool::bridge::lock(&self.spool)?;
        let (inbound, opened) = Inbound::open(&self.spool, lock, af_spool::bridge::SEEN_KEEP)?;
        tracing::info!(host = %self.host, redis = %self.redis_name(), pruned = opened.pruned, recovered = opened.recovered, "bridge starting");
        let running = Bridge { inbound: Some(Arc::new(inbound)), ..self.clone() };
        let b = &running;
        std::thread::scope(|s| {
            let out = s.spawn(|| b.direction("outbound", stop, |c| outbound::pump(b, c, stop)));
            let inn = s.spawn(|| b.direction("inbound", stop, |c| inbound::pump(b, c, stop)));
            let state = s.spawn(|| b.direction("cluster", stop, |c| cluster::pump(b, c, stop)));
            let pool = s.spawn(|| b.direction("pool", stop, |c| pool::pump(b, c, stop)));
            let retire = s.spawn(|| b.retire_journals(stop));
            let control = s.spawn(|| b.until_stopped(stop, control::serve(b, stop)));
            let joined = [out.join(), inn.join(), state.join(), pool.join(), retire.join(), control.join()];
            for r in joined {
                match r {
                    Ok(r) => r?,
                    Err(_) => return Err(Error::System("a bridge thread panicked".into())),
                }
            }
            Ok(())
        })?;
        tracing::info!(host = %self.host, "bridge stopped");
        Ok(())
    }

    /// One direction: connect, run `pump` until it fails or `stop` is set, and after a failure of
    /// Redis connect again, waiting 100 ms, then twice as long each time, up to [`MAX_BACKOFF`].
    /// A failure of the spool stops the bridge (stopping the other direction too).
    fn direction(
        &self,
        name: &str,
        stop: &AtomicBool,
        mut pump: impl FnMut(&mut redis::Connection) -> std::result::Result<(), Failure>,
    ) -> Result<()> {
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let failure = match self.connect() {
                Ok(mut c) => {
                    if failures > 0 {
                        tracing::warn!(direction = name, redis = %self.redis_name(), failures, "connected to redis again");
                    } else {
                        tracing::info!(direction = name, redis = %self.redis_name(), "connected to redis");
                    }
                    failures = 0;
                    backoff = Duration::from_millis(100);
                    match pump(&mut c) {
                        Ok(()) => return Ok(()),
                        Err(Failure::Spool(e)) => {
                            stop.store(true, Ordering::SeqCst);
                            return Err(e);
                        }
                        Err(Failure::Redis(e)) => e,
                    }
                }
                Err(e) => e,
            };
            failures += 1;
            tracing::warn!(
                direction = name,
                redis = %self.redis_name(),
                error = %failure,
                retry_in_ms = backoff.as_millis() as u64,
                "redis unreachable; retrying"
            );
            sleep_unless(stop, backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Ok(())
    }

    /// Every [`RETIRE_EVERY`] until `stop`, and once after: makes the inbound deliveries durable
    /// with one syncfs and removes their journals (af-spool `bridge`).
    fn retire_journals(&self, stop: &AtomicBool) -> Result<()> {
        let inbound = self.inbound()?;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if let Err(e) = inbound.retire_journals() {
                stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
            if stopping {
                return Ok(());
            }
            sleep_unless(stop, RETIRE_EVERY);
        }
    }

    /// The inbound deliveries: the bridge must be running.
    fn inbound(&self) -> Result<&Inbound> {
        self.inbound.as_deref().ok_or_else(|| Error::System("the bridge is not running".into()))
    }

    /// The result of a thread that works on the spool only: a failure stops the bridge.
    fn until_stopped(&self, stop: &AtomicBool, r: Result<()>) -> Result<()> {
        if r.is_err() {
            stop.store(true, Ordering::SeqCst);
        }
        r
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let c = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        c.set_read_timeout(Some(IO_TIMEOUT + BLOCK))?;
        c.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(c)
    }
}

/// Why a direction's pump ended.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Redis failed or is away: connect again.
    Redis(redis::RedisError),
    /// The spool failed: the bridge stops.
    Spool(Error),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Failure::Redis(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Spool(e)
    }
}

/// A duration from the environment variable `var` (seconds, fractions allowed, above 0), else
/// `default`.
pub(crate) fn env_seconds(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(default, Duration::from_secs_f64)
}

/// Sleeps `d`, waking early when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
