//! Outbound: the outbox's messages added to their hosts' inbound streams, acked locally only
//! once Redis accepted them.

use super::{BATCH, Bridge, Failure, HOSTS, stream_key};
use af_spool::bus::Address;
use af_spool::host::split_host;
use af_spool::message::{Kind, Message};
use af_spool::queue::RESCAN;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a claim of the outbox lasts: a bridge killed while it holds some gives them back
/// after this (as a failed attempt).
const VISIBILITY: Duration = Duration::from_secs(60);

/// Moves the outbox to Redis until `stop` is set or Redis fails.
pub(crate) fn pump(b: &Bridge, c: &mut redis::Connection, stop: &AtomicBool) -> Result<(), Failure> {
    let outbox = Address::Outbox.queue(&b.spool).durable(b.durable);
    outbox.create()?;
    // The bridge's lock is ours: a claim in the outbox is one a killed bridge held. It goes back
    // at once, not as a failed attempt (the message is not at fault), rather than after its
    // visibility timeout.
    for e in outbox.entries("cur")? {
        outbox.release(&e.name)?;
    }
    let mut listener = outbox.listen()?;
    while !stop.load(Ordering::SeqCst) {
        let claims = outbox.claim_bundles(BATCH, VISIBILITY)?;
        if claims.is_empty() {
            listener.wait(RESCAN)?;
            continue;
        }
        let messages = || claims.iter().flat_map(|c| &c.messages);
        // The hosts a topic event or broadcast is mirrored to: every other one that ever bridged.
        let others: Vec<String> = if messages().any(|m| mirrored(b, m)) {
            let all: Vec<String> = redis::cmd("SMEMBERS").arg(HOSTS).query(c)?;
            all.into_iter().filter(|h| *h != b.host).collect()
        } else {
            Vec::new()
        };
        let mut pipe = redis::pipe();
        let mut adds = 0;
        let mut sent = Vec::with_capacity(claims.len());
        for claim in &claims {
            let mut bad = Vec::new();
            for m in &claim.messages {
                let hosts = match destination(b, m) {
                    Some(host) => vec![host],
                    None if mirrored(b, m) => others.clone(),
                    None if super::pool::add(&mut pipe, b, m)? => {
                        adds += 1;
                        continue;
                    }
                    None => {
                        tracing::warn!(id = %m.id, to = ?m.to, "not for another host: to the dead letters");
                        bad.push(m);
                        continue;
                    }
                };
                let bytes = m.encode()?;
                // (No other host: a copy for none, done at once.)
                for host in hosts {
                    pipe.cmd("XADD").arg(stream_key(&host)).arg("*").arg("msg").arg(&bytes).arg("origin").arg(&b.host);
                    adds += 1;
                }
            }
            if bad.is_empty() {
                sent.push(claim.receipt.clone());
            } else {
                // These wait in the dead letters, each alone; the claim keeps the rest, to go.
                let bad = |m: &Message| bad.iter().any(|b| b.id == m.id);
                sent.extend(outbox.bury_some(&claim.receipt, claim.messages.clone(), bad, "invalid")?.map(|(r, _)| r));
            }
        }
        if sent.is_empty() {
            continue;
        }
        // An empty pipeline would wait for replies that never come.
        let added = if adds > 0 { pipe.query::<Vec<String>>(c).map(drop) } else { Ok(()) };
        if let Err(e) = added {
            // Not a failed attempt: the messages wait in the outbox for Redis to come back.
            for receipt in &sent {
                outbox.release(receipt)?;
            }
            return Err(e.into());
        }
        outbox.ack_receipts(&sent.iter().map(String::as_str).collect::<Vec<_>>())?;
        tracing::debug!(files = sent.len(), messages = messages().count(), "sent");
    }
    Ok(())
}

/// Whether a message of the outbox is a topic event or broadcast of this host's, for every other.
pub(super) fn mirrored(b: &Bridge, m: &Message) -> bool {
    m.origin.as_deref() == Some(b.host.as_str()) && (m.topic.is_some() || m.kind == Kind::Broadcast)
}

/// The host a message of the outbox goes to; None when its address names no other host.
fn destination(b: &Bridge, m: &Message) -> Option<String> {
    let (_, host) = split_host(m.to.as_deref()?).ok()?;
    host.filter(|h| *h != b.host).map(str::to_owned)
}
