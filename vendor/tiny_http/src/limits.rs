//! What a server will put up with from its clients (AgentFlow's patch): how many connections it
//! holds at once, how long a request and an idle keep-alive may take, how large a request head
//! may be, and how long a write may block.

use std::io::{Error as IoError, ErrorKind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Limits on clients. [`Limits::default`] keeps upstream's behaviour (no limits at all).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most connections held at once; beyond it new ones wait in the kernel's listen backlog.
    /// Keep it below the descriptor limit: each connection holds one descriptor.
    pub max_connections: Option<usize>,
    /// How long a keep-alive connection may wait for the first byte of its next request.
    pub idle_timeout: Option<Duration>,
    /// How long a request, head and body, may take to arrive once its first byte has come.
    /// A request past it gets 408 (if its head is incomplete) and its connection is closed.
    pub request_timeout: Option<Duration>,
    /// How long one write to a client may block.
    pub write_timeout: Option<Duration>,
    /// The largest request head (request line and headers, in bytes); past it, 431.
    pub max_head_bytes: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: None,
            idle_timeout: None,
            request_timeout: None,
            write_timeout: None,
            max_head_bytes: None,
        }
    }
}

/// The connection cap: a count of connections held and a way to wait for one to close.
pub(crate) struct ConnectionSlots {
    max: Option<usize>,
    held: Mutex<usize>,
    freed: Condvar,
}

impl ConnectionSlots {
    pub(crate) fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(ConnectionSlots {
            max: max.map(|m| m.max(1)),
            held: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Waits (at most `patience`) for a free place; `None` if there is none yet.
    pub(crate) fn take(self: &Arc<Self>, patience: Duration) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(max) = self.max {
            let deadline = Instant::now() + patience;
            while *held >= max {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                held = self
                    .freed
                    .wait_timeout(held, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        *held += 1;
        Some(Slot {
            slots: self.clone(),
        })
    }

    /// How many connections are held now.
    pub(crate) fn held(&self) -> usize {
        *self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's place under the cap, given back on drop.
pub(crate) struct Slot {
    slots: Arc<ConnectionSlots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        *held -= 1;
        self.slots.freed.notify_one();
    }
}

#[derive(Clone, Copy)]
enum Phase {
    /// No deadline (upstream's behaviour, or between the parts of a request).
    Off,
    /// Waiting for the next request: the idle deadline starts at the first read.
    Awaiting(Option<Instant>),
    /// A request is arriving: its deadline counts from its first byte.
    Arriving(Instant),
}

/// The deadlines of one connection's reads, shared by the connection (which says when a new
/// request is awaited) and its read half (which enforces them).
pub(crate) struct ReadClock {
    idle: Option<Duration>,
    request: Option<Duration>,
    phase: Mutex<Phase>,
}

impl ReadClock {
    pub(crate) fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(ReadClock {
            idle: limits.idle_timeout,
            request: limits.request_timeout,
            phase: Mutex::new(Phase::Off),
        })
    }

    /// The next request is awaited. The idle clock starts at the first read from the socket,
    /// which comes only once the previous request has been read and answered.
    pub(crate) fn await_request(&self) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::Awaiting(None);
    }

    /// How long the next read may block; `None`: for ever. Zero: the deadline has passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let deadline = match *phase {
            Phase::Off => return None,
            Phase::Awaiting(Some(d)) | Phase::Arriving(d) => d,
            Phase::Awaiting(None) => {
                let d = now + self.idle?;
                *phase = Phase::Awaiting(Some(d));
                d
            }
        };
        Some(deadline.saturating_duration_since(now))
    }

    /// `n` bytes came: the first ones of a request start its deadline.
    pub(crate) fn bytes_read(&self, n: usize) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if n > 0 {
            if let Phase::Awaiting(_) = *phase {
                *phase = match self.request {
                    Some(r) => Phase::Arriving(Instant::now() + r),
                    None => Phase::Off,
                };
            }
        }
    }

    /// The error of a read past its deadline.
    pub(crate) fn expired() -> IoError {
        IoError::new(ErrorKind::TimedOut, "the client was too slow")
    }
}
