//! The message flow of the bus over a window: who sent how many messages of which kind to which
//! queue, how many bytes, how long from send to ack (p50, p99), and per queue what waits, what
//! is in flight, what died and how old the oldest waiting message is. Computed from the queues'
//! own records (an acked message's archive file: its content says who sent it when, its ctime
//! when it was acked), never sampled.

use af_spool::message::Message;
use af_spool::time::Timestamp;
use af_spool::{Result, Spool};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest window asked for (a day).
pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);

/// Messages from one sender to one queue, of one kind, acked within the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    /// The sender: an agent id, or `cli`.
    pub from: String,
    /// The queue: an agent's inbox (its id), `pool:PROJECT`, a subscription, `reply:ID`.
    pub to: String,
    /// The messages' kind.
    pub kind: String,
    /// How many.
    pub count: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Send to ack, the median, in milliseconds.
    pub p50_ms: u64,
    /// Send to ack, the 99th percentile, in milliseconds.
    pub p99_ms: u64,
}

/// One queue now, and what it acked within the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueFlow {
    /// Its name.
    pub queue: String,
    /// Waiting messages.
    pub depth: usize,
    /// Claimed and not acked.
    pub in_flight: usize,
    /// Dead letters.
    pub dead: usize,
    /// Acked within the window.
    pub acked: u64,
    /// How long the oldest waiting message has waited, in milliseconds (`None`: none waits).
    pub oldest_waiting_ms: Option<u64>,
}

/// The flow over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    /// The window, in seconds.
    pub window_secs: u64,
    /// When it was computed.
    pub at: Timestamp,
    /// The edges, by sender, queue and kind.
    pub edges: Vec<Edge>,
    /// Every queue.
    pub queues: Vec<QueueFlow>,
}

/// The nearest-rank percentile `p` (0..=100) of sorted values.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// The flow of the last `window`.
pub fn flow(spool: &Spool, window: Duration) -> Result<Flow> {
    let window = window.min(MAX_WINDOW);
    let now = Timestamp::now();
    let since = Timestamp(now.0.saturating_sub(window.as_millis() as u64));
    let mut acc: BTreeMap<(String, String, String), (u64, Vec<u64>)> = BTreeMap::new();
    let mut queues = Vec::new();
    for (address, q) in af_spool::bus::all_queues(spool)? {
        let name = address.to_string();
        let stats = q.stats()?;
        let acked = q.acked_since(since)?;
        for a in &acked {
            let key = (a.message.from.clone(), name.clone(), kind_name(&a.message));
            let e = acc.entry(key).or_default();
            e.0 += a.bytes;
            e.1.push(a.acked_at.0.saturating_sub(a.message.created_at.0));
        }
        queues.push(QueueFlow {
            queue: name,
            depth: stats.depth,
            in_flight: stats.in_flight,
            dead: stats.dead,
            acked: acked.len() as u64,
            oldest_waiting_ms: q.oldest_waiting()?.map(|t| now.0.saturating_sub(t.0)),
        });
    }
    let edges = acc
        .into_iter()
        .map(|((from, to, kind), (bytes, mut lat))| {
            lat.sort_unstable();
            Edge {
                from,
                to,
                kind,
                count: lat.len() as u64,
                bytes,
                p50_ms: percentile(&lat, 50),
                p99_ms: percentile(&lat, 99),
            }
        })
        .collect();
    Ok(Flow { window_secs: window.as_secs(), at: now, edges, queues })
}

fn kind_name(m: &Message) -> String {
    serde_json::to_value(m.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
