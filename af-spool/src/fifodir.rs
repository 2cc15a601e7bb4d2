//! Fifodirs (s6's model, qmail's trigger): a directory of named pipes, one per waiting listener.
//! A notifier writes one short JSON line to each, opened non-blocking; a dead listener's pipe is
//! removed, a full one skipped. The pipe only wakes: the spool is the truth, so a listener looks at
//! the spool after every wake-up and at a slow interval anyway.
//!
//! A program that calls [`interrupt_waits`] at startup ends its waits on SIGINT and SIGTERM with
//! [`Error::Interrupted`] (exit 130) instead of dying by the signal.

use crate::atomic;
use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The largest line a notifier writes: under PIPE_BUF, so each write is atomic.
pub const MAX_LINE: usize = 4000;

/// A directory of listeners' named pipes.
#[derive(Debug, Clone)]
pub struct Fifodir {
    dir: PathBuf,
}

/// One listener: a named pipe in a fifodir, removed when dropped.
#[derive(Debug)]
pub struct Listener {
    path: PathBuf,
    read: File,
    // Our own write end keeps the pipe from reporting end-of-file between notifiers.
    _write: File,
    buf: Vec<u8>,
    _live: Live,
}

/// How many listeners of this process live: while one does, the process is waiting (or about to
/// wait again), and an interrupting signal is caught rather than fatal.
static LIVE_LISTENERS: AtomicUsize = AtomicUsize::new(0);

/// The signal that interrupted this process's waits; 0 while none has.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

/// How long a wait blocks at most before it looks at [`CAUGHT`] again: a signal that lands just
/// before `poll` blocks does not wake it.
const INTERRUPT_CHECK: Duration = Duration::from_millis(200);

/// Counts one live listener, from before its pipe appears until it is dropped.
#[derive(Debug)]
struct Live;

impl Live {
    fn new() -> Live {
        LIVE_LISTENERS.fetch_add(1, Ordering::SeqCst);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE_LISTENERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Makes SIGINT and SIGTERM end this process's waits: while a [`Listener`] lives, the signal is
/// caught and [`Listener::wait`] returns [`Error::Interrupted`], so the program exits 130 with one
/// line on stderr and its destructors run (its pipe, a stream's subscription are removed). While
/// none lives, or at a second signal, the signal does what it did before (ends the process).
/// A signal the process was started with ignored stays ignored.
///
/// For the one-shot programs, once at startup. Not for af-wrap (it handles its signals itself) nor
/// af-api (its event streams wait in threads, and SIGTERM must still end the server).
pub fn interrupt_waits() -> Result<()> {
    use nix::sys::signal::Signal;
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        if ignored(signal) {
            continue;
        }
        let raw = signal as i32;
        let action = move || {
            if LIVE_LISTENERS.load(Ordering::SeqCst) == 0 || CAUGHT.swap(raw, Ordering::SeqCst) != 0 {
                let _ = signal_hook::low_level::emulate_default_handler(raw);
            }
        };
        // SAFETY: the action only uses atomics and emulate_default_handler, which are
        // async-signal-safe.
        unsafe { signal_hook::low_level::register(raw, action) }
            .map_err(|e| Error::System(format!("cannot handle {}: {e}", signal.as_str())))?;
    }
    Ok(())
}

/// Whether `signal` is ignored (as a shell leaves SIGINT for a background job).
fn ignored(signal: nix::sys::signal::Signal) -> bool {
    let mut old = std::mem::MaybeUninit::<nix::libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`.
    let read = unsafe { nix::libc::sigaction(signal as i32, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: sigaction filled it in (and it was zeroed before).
    read == 0 && unsafe { old.assume_init() }.sa_sigaction == nix::libc::SIG_IGN
}

/// `Err(Interrupted)` once a signal has interrupted this process's waits.
fn check_interrupt() -> Result<()> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => Ok(()),
        raw => {
            let name = nix::sys::signal::Signal::try_from(raw).map_or("a signal", |s| s.as_str());
            Err(Error::Interrupted(format!("interrupted by {name} while waiting")))
        }
    }
}

impl Fifodir {
    /// The fifodir at `dir` (created on first subscription).
    pub fn new(dir: PathBuf) -> Self {
        Fifodir { dir }
    }

    /// Subscribes: a new named pipe, made under a hidden name and renamed into place, so it
    /// appears whole. Subscribe before looking at the spool, so no wake-up is missed.
    pub fn subscribe(&self) -> Result<Listener> {
        // Counted before its pipe appears: whoever sees the pipe sees a process that waits.
        let live = Live::new();
        atomic::create_dir(&self.dir)?;
        let hidden = self.dir.join(atomic::unique_name("fifo"));
        nix::unistd::mkfifo(&hidden, Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::io("create named pipe", &hidden, e.into()))?;
        let opened = open_nonblocking(&hidden, false).and_then(|r| open_nonblocking(&hidden, true).map(|w| (r, w)));
        let (read, write) = match opened {
            Ok((r, w)) => (r, w),
            Err(e) => {
                let _ = std::fs::remove_file(&hidden);
                return Err(Error::io("open named pipe", &hidden, e));
            }
        };
        let name = hidden.file_name().and_then(|n| n.to_str()).unwrap_or("fifo").trim_start_matches('.').to_owned();
        let path = self.dir.join(name);
        if let Err(e) = std::fs::rename(&hidden, &path) {
            let _ = std::fs::remove_file(&hidden);
            return Err(Error::io("rename named pipe", &path, e));
        }
        Ok(Listener { path, read, _write: write, buf: Vec::new(), _live: live })
    }

    /// Writes `line` (JSON, one line) to every listener; never blocks. Returns how many were
    /// woken. Dead listeners' pipes are removed.
    pub fn notify(&self, line: &serde_json::Value) -> usize {
        let mut text = line.to_string();
        if text.len() >= MAX_LINE {
            text = serde_json::json!({"truncated": true}).to_string();
        }
        text.push('\n');
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut woken = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_str().is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            let path = entry.path();
            match open_nonblocking(&path, true) {
                Ok(mut pipe) => match pipe.write(text.as_bytes()) {
                    Ok(_) => woken += 1,
                    // Full: it has wake-ups pending already.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => woken += 1,
                    Err(e) if e.raw_os_error() == Some(Errno::EPIPE as i32) => remove_dead(&path),
                    Err(_) => {}
                },
                Err(e) if e.raw_os_error() == Some(Errno::ENXIO as i32) => remove_dead(&path),
                // Its listener left (and removed it) between the listing and the open.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), "not waking {e}"),
            }
        }
        woken
    }
}

/// Opens a named pipe without blocking: for writing, ENXIO tells that nobody reads it. Only a
/// named pipe, and never through a symlink: anything else planted in the fifodir is refused
/// unwritten (see [`crate::beneath::open_fifo`]).
fn open_nonblocking(path: &Path, write: bool) -> std::io::Result<File> {
    crate::beneath::open_fifo(path, write)
}

fn remove_dead(path: &Path) {
    tracing::debug!(path = %path.display(), "removing a dead listener's pipe");
    let _ = std::fs::remove_file(path);
}

impl Listener {
    /// Waits up to `timeout` for a wake-up; returns the lines that arrived (empty on timeout).
    /// [`Error::Interrupted`] after SIGINT or SIGTERM, in a program that called
    /// [`interrupt_waits`].
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            check_interrupt()?;
            let lines = self.drain()?;
            if !lines.is_empty() {
                return Ok(lines);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            let ms = u16::try_from(left.min(INTERRUPT_CHECK).as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::io("poll", &self.path, e.into())),
            }
        }
    }

    /// The descriptor to poll for readability, for callers with their own poll loop.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Reads whatever lines are waiting, without blocking.
    pub fn drain(&mut self) -> Result<Vec<String>> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.read.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", &self.path, e)),
            }
        }
        let mut lines = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        Ok(lines)
    }

    /// The pipe's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_wakes_and_dead_pipes_go() {
        let dir = std::env::temp_dir().join(atomic::unique_name("fifodir-test"));
        let fd = Fifodir::new(dir.clone());
        let mut l = fd.subscribe().unwrap();
        // A dead listener: a pipe nobody reads.
        let dead = dir.join("dead");
        nix::unistd::mkfifo(&dead, Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(fd.notify(&serde_json::json!({"n": 1})), 1);
        assert!(!dead.exists(), "a pipe with no reader is removed");
        assert_eq!(l.wait(Duration::from_secs(1)).unwrap(), vec![r#"{"n":1}"#.to_string()]);
        assert!(l.wait(Duration::from_millis(10)).unwrap().is_empty());
        // A full pipe never blocks the notifier.
        for _ in 0..10_000 {
            fd.notify(&serde_json::json!({"fill": "x".repeat(100)}));
        }
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
