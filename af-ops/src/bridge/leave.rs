//! Leaving the cluster (`af-bus bridge --leave`), with no bridge running on the spool: this host
//! is removed from the set of hosts with its heartbeat, published agents and alert claim, so that
//! the other bridges stop mirroring topic events and broadcasts to it and raise no
//! `host.unreachable` about it (one they raised closes); and the spool is no longer bridged, so
//! that `publish` and `broadcast` stop putting copies for the other hosts into the outbox.
//!
//! Kept: the messages the outbox holds for a named host (`QUEUE@HOST`), which a bridge sends
//! when this host joins again (by running `af-bus bridge`), and this host's inbound stream, whose
//! entries that bridge delivers then. The mirrored copies the outbox held go to its dead letters
//! with the reason `left`.

use super::cluster::{UNREACHABLE, agents_key, alert_key, heartbeat_key};
use super::{Bridge, HOSTS, stream_key};
use af_spool::bus::Address;
use af_spool::message::Message;
use af_spool::{Error, Result};
use std::time::Duration;

/// What leaving did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Left {
    /// The host that left.
    pub host: String,
    /// Messages for a named host, still in the outbox.
    pub outbox: usize,
    /// Copies of topic events and broadcasts for the other hosts, moved to the outbox's dead
    /// letters.
    pub dropped: usize,
    /// Entries waiting in this host's inbound stream.
    pub inbound: u64,
}

/// Takes this host out of the cluster (see the module's comment). Conflict when a bridge runs
/// on the spool (stop it first); System when Redis cannot be reached (then nothing changed).
pub fn leave(b: &Bridge) -> Result<Left> {
    let lock = af_spool::bridge::lock(&b.spool)
        .map_err(|e| Error::Conflict(format!("{e}: stop it before leaving the cluster")))?;
    let unreachable = |e: redis::RedisError| Error::System(format!("cannot leave the cluster through redis: {e}"));
    let mut c = b.connect().map_err(unreachable)?;
    let (_, inbound): (u64, u64) = redis::pipe()
        .cmd("SREM")
        .arg(HOSTS)
        .arg(&b.host)
        .ignore()
        .cmd("DEL")
        .arg(heartbeat_key(&b.host))
        .arg(agents_key(&b.host))
        .arg(alert_key(&b.host))
        .cmd("XLEN")
        .arg(stream_key(&b.host))
        .query(&mut c)
        .map_err(unreachable)?;
    // Not bridged from now on: no more copies into the outbox.
    af_spool::bridge::unbridge(&b.spool, lock)?;
    let outbox = Address::Outbox.queue(&b.spool);
    let (mut kept, mut dropped) = (0, 0);
    if outbox.exists() {
        for claim in outbox.claim_bundles(usize::MAX, Duration::from_secs(60))? {
            let mirrored = |m: &Message| super::outbound::mirrored(b, m);
            let n = claim.messages.iter().filter(|m| mirrored(m)).count();
            (dropped, kept) = (dropped + n, kept + claim.messages.len() - n);
            // The copies for the other hosts to the dead letters; the rest waits for a return.
            if let Some((receipt, _)) = outbox.bury_some(&claim.receipt, claim.messages, mirrored, "left")? {
                outbox.release(&receipt)?;
            }
        }
    }
    // This host watches the others no more.
    for a in b.spool.open_alerts()?.iter().filter(|a| a.check == UNREACHABLE) {
        crate::alert::close(
            &b.spool,
            &a.agent,
            UNREACHABLE,
            &format!("is no longer watched: {} left the cluster", b.host),
        );
    }
    tracing::info!(host = %b.host, outbox = kept, dropped, inbound, "left the cluster");
    Ok(Left { host: b.host.clone(), outbox: kept, dropped, inbound })
}
