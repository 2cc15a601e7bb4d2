//! What writers killed half-way leave in the bus and the fifodirs, found for `af-spawn gc`: each
//! such thing has a name that carries its writer's pid ([`crate::atomic::unique_name`]:
//! `.<prefix>.<pid>.<nanos>.<n>`; a listener's pipe once in place: `fifo.<pid>.<nanos>.<n>`), and
//! a dead writer's go.
//!
//! ```text
//! events.d/, health.d/, agents/<id>/notify.d/, <queue>/notify.d/   .fifo.* and fifo.* pipes
//! agents/<id>/.control.*                                           a control pipe never renamed
//! <queue>/tmp/.m.*                                                 a message never delivered
//! bus/sub/.sub.*, bus/sub/.gone.*, bus/reply/.gone.*               a subscription half made or
//!                                                                  half removed
//! ```
//!
//! Queues are every agent's inbox, every pool, subscription and reply queue. Only names, file
//! types and directory listings are looked at: `archive/` and the rest are never walked.

use crate::spool::Spool;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// What a leftover is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A named pipe of a dead listener (or one it never renamed into place).
    Fifo,
    /// A message file a dead sender left in a queue's `tmp/`.
    Tmp,
    /// A subscription's directory half made (or half removed) by a dead program.
    Subscription,
}

/// One thing a dead writer left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// What it is.
    pub kind: Kind,
    /// Where it is.
    pub path: PathBuf,
}

impl Leftover {
    /// Removes it (a directory with what it holds); false when that failed.
    pub fn remove(&self) -> bool {
        let gone = match self.kind {
            Kind::Subscription => std::fs::remove_dir_all(&self.path),
            Kind::Fifo | Kind::Tmp => std::fs::remove_file(&self.path),
        };
        gone.is_ok() || !self.path.exists()
    }
}

/// The pid in a name made by [`crate::atomic::unique_name`] (hidden, with `prefix`), or in a
/// listener's pipe name (`fifo.<pid>.…`, hidden or not).
pub fn writer_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix('.').unwrap_or(name);
    let hidden = rest.len() < name.len();
    let rest = rest.strip_prefix(prefix)?.strip_prefix('.')?;
    if !hidden && prefix != "fifo" {
        return None;
    }
    let mut parts = rest.split('.');
    let pid = parts.next()?.parse().ok()?;
    let numbers = parts.map(|p| p.parse::<u64>().is_ok()).collect::<Vec<_>>();
    (numbers.len() == 2 && numbers.iter().all(|&n| n)).then_some(pid)
}

/// Every leftover of a writer that `alive` says is gone.
pub fn find(spool: &Spool, alive: &dyn Fn(u32) -> bool) -> Vec<Leftover> {
    let dead = |name: &str, prefix: &str| writer_pid(name, prefix).is_some_and(|p| !alive(p));
    let mut out = Vec::new();
    let mut fifodirs = vec![spool.events_notify_dir(), spool.health_replies_dir()];
    let mut queues = Vec::new();
    for id in spool.agent_ids().unwrap_or_default() {
        fifodirs.push(spool.agent_notify_dir(&id));
        queues.push(spool.inbox_dir(&id));
        for (name, path, _) in listing(&spool.agent_dir(&id)) {
            if dead(&name, "control") && is_fifo(&path) {
                out.push(Leftover { kind: Kind::Fifo, path });
            }
        }
    }
    for part in ["pool", "sub", "reply"] {
        for (name, path, is_dir) in listing(&spool.bus_dir().join(part)) {
            if !name.starts_with('.') {
                queues.push(path);
            } else if is_dir && part != "pool" && (dead(&name, "sub") || dead(&name, "gone")) {
                out.push(Leftover { kind: Kind::Subscription, path });
            }
        }
    }
    for q in &queues {
        fifodirs.push(q.join("notify.d"));
        for (name, path, is_dir) in listing(&q.join("tmp")) {
            if !is_dir && dead(&name, "m") {
                out.push(Leftover { kind: Kind::Tmp, path });
            }
        }
    }
    for dir in fifodirs {
        for (name, path, _) in listing(&dir) {
            if dead(&name, "fifo") && is_fifo(&path) {
                out.push(Leftover { kind: Kind::Fifo, path });
            }
        }
    }
    out
}

/// A directory's entries: name, path, whether a directory (not followed). Empty when unreadable.
fn listing(dir: &Path) -> Vec<(String, PathBuf, bool)> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    read.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            Some((name, e.path(), is_dir))
        })
        .collect()
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_in_names() {
        let made = crate::atomic::unique_name("fifo");
        assert_eq!(writer_pid(&made, "fifo"), Some(std::process::id()));
        assert_eq!(writer_pid(made.trim_start_matches('.'), "fifo"), Some(std::process::id()));
        assert_eq!(writer_pid(".m.12.34.5", "m"), Some(12));
        assert_eq!(writer_pid("m.12.34.5", "m"), None, "only a pipe keeps its pid once in place");
        for bad in [".m.x.1.2", ".m.1.2", ".m.1.2.3.4", ".mm.1.2.3", "control", ".fifo.1.2.x"] {
            assert_eq!(writer_pid(bad, "m").or(writer_pid(bad, "fifo")), None, "{bad}");
        }
    }
}
