//! Talking to tmux: the server AgentFlow uses (`AF_TMUX_SOCKET` names a private one, as `-L`), and
//! the few commands the programs need. Sessions AgentFlow creates carry the user option
//! `@af_home` (the spool root), so nothing else's sessions are ever touched.
//!
//! Every call has a deadline (`AF_TMUX_TIMEOUT`, default 5 s): a stopped or spinning server makes
//! the call fail with a timeout naming tmux, and every later call through the same [`Tmux`] fails
//! at once, so a verb that talks to tmux several times still ends within one deadline or so.

use crate::process;
use af_spool::{Error, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long one tmux call may take unless `AF_TMUX_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a tmux call's output we read (a session list of thousands of agents fits).
const MAX_OUTPUT: u64 = 16 << 20;

/// The session option that marks a session as AgentFlow's, holding its spool root.
pub const MARKER: &str = "@af_home";

/// Where `tmux -L NAME` keeps its socket: `$TMUX_TMPDIR` (else /tmp), then `tmux-UID/NAME`. A
/// killed server leaves it behind; whoever made a private server removes it.
pub fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("TMUX_TMPDIR").filter(|d| !d.is_empty()).unwrap_or_else(|| "/tmp".into());
    PathBuf::from(dir).join(format!("tmux-{}", nix::unistd::getuid())).join(name)
}

/// A tmux server.
#[derive(Debug, Clone, Default)]
pub struct Tmux {
    socket: Option<String>,
    timeout: Option<Duration>,
    /// Set once a call ran out of time: the server is wedged, and later calls fail at once.
    wedged: Arc<AtomicBool>,
}

/// One session on the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Its name.
    pub name: String,
    /// The spool root it belongs to, if AgentFlow created it.
    pub af_home: Option<String>,
    /// The pid of the process in its first pane.
    pub pane_pid: Option<u32>,
}

impl Tmux {
    /// The server named by `AF_TMUX_SOCKET` (`tmux -L NAME`), else the user's default server.
    pub fn from_env() -> Self {
        let timeout = std::env::var("AF_TMUX_TIMEOUT").ok().and_then(|t| af_spool::human::parse_duration(&t).ok());
        Tmux {
            socket: std::env::var("AF_TMUX_SOCKET").ok().filter(|s| !s.is_empty()),
            timeout: timeout.filter(|t| !t.is_zero()),
            wedged: Arc::default(),
        }
    }

    /// How long one call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The socket name, when not the default server.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// The server named `socket` (`-L`; None: the default server) with this one's deadline: an
    /// agent's own server, as its state records it (see [`crate::shard`]). It shares this one's
    /// wedged flag only when it is the same server: a wedged server fails no call to another.
    pub fn on(&self, socket: Option<&str>) -> Tmux {
        if socket == self.socket() {
            return self.clone();
        }
        Tmux { socket: socket.map(str::to_owned), timeout: self.timeout, wedged: Arc::default() }
    }

    /// The server's name as `tmux -L` takes it (`default` for the default server).
    pub fn name(&self) -> &str {
        self.socket().unwrap_or("default")
    }

    /// A `tmux` command aimed at this server. It goes without the identity of an agent we may
    /// run in (a monitor restarting others): a tmux server it starts must never count as part of
    /// that agent, whose orphans are found by that identity.
    pub fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.env_remove("AF_AGENT_ID").env_remove("AF_PROJECT_ID").env_remove("AF_AGENT_TYPE");
        // A server this client starts copies its environment into every session's.
        for var in crate::secrets::taken() {
            c.env_remove(var);
        }
        if let Some(s) = &self.socket {
            c.arg("-L").arg(s);
        }
        // Without -L, tmux run in a pane talks to the pane's server: the default server is meant.
        c.env_remove("TMUX");
        c.stdin(Stdio::null());
        c
    }

    /// The shell words that run tmux against this server (for generated scripts).
    pub fn shell_prefix(&self) -> String {
        match &self.socket {
            Some(s) => format!("tmux -L {}", shell_quote(s)),
            None => "tmux".into(),
        }
    }

    /// Runs tmux with `args` within the deadline; its stdout on success, its stderr as the error
    /// otherwise (System), or Timeout when the server does not answer.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<String> {
        let out = self.call(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(Error::System(format!("tmux failed: {}", err.trim())))
        }
    }

    /// Runs tmux with `args` and `input` on its stdin (`load-buffer -`), within the deadline.
    pub fn run_with_input<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], input: &[u8]) -> Result<String> {
        let out = self.call_with(args, Some(input.to_vec()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::System(format!("tmux failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
        }
    }

    /// One tmux call with the deadline; whatever it exits with.
    fn call<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<process::Finished> {
        self.call_with(args, None)
    }

    fn call_with<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], input: Option<Vec<u8>>) -> Result<process::Finished> {
        let wedged = || {
            Error::Timeout(format!(
                "tmux did not answer within {:?} (is its server stopped or spinning? see: ps -o pid,stat,cmd -C tmux; \
                 AF_TMUX_TIMEOUT sets the deadline)",
                self.timeout()
            ))
        };
        if self.wedged.load(Ordering::Relaxed) {
            return Err(wedged());
        }
        let mut cmd = self.command();
        cmd.args(args);
        match process::run(&mut cmd, "tmux", input, MAX_OUTPUT, self.timeout()) {
            Err(Error::Timeout(_)) => {
                self.wedged.store(true, Ordering::Relaxed);
                Err(wedged())
            }
            other => other,
        }
    }

    /// Whether a session of exactly this name exists.
    pub fn has_session(&self, name: &str) -> bool {
        self.call(&["has-session", "-t", &exact(name)]).is_ok_and(|out| out.status.success())
    }

    /// Whether a server answers on this socket (false when none runs, or it died). A server dying
    /// as we ask (killed: its panes hung up before its socket closed) may take the connection and
    /// drop it: that answer is asked again for up to a second, until it is a clear one.
    pub fn server_running(&self) -> Result<bool> {
        for _ in 0..40 {
            let out = self.call(&["list-sessions", "-F", "#{session_name}"])?;
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || no_server(&err) {
                return Ok(out.status.success());
            }
            if !server_exiting(&err) {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(false)
    }

    /// Kills a session of exactly this name (no error if it is gone already).
    pub fn kill_session(&self, name: &str) -> Result<()> {
        match self.run(&["kill-session", "-t", &exact(name)]) {
            Ok(_) => Ok(()),
            Err(_) if !self.has_session(name) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every session on the server (none when no server runs).
    pub fn sessions(&self) -> Result<Vec<Session>> {
        let out = self.call(&["list-sessions", "-F", &format!("#{{session_name}}\t#{{{MARKER}}}\t#{{pane_pid}}")])?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // No server, or one exiting as we ask (its last session just ended): no sessions.
            if no_server(&err) || server_exiting(&err) {
                return Ok(Vec::new());
            }
            return Err(Error::System(format!("tmux list-sessions failed: {}", err.trim())));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let name = f.next()?.to_owned();
                let home = f.next().filter(|h| !h.is_empty()).map(str::to_owned);
                let pane_pid = f.next().and_then(|p| p.parse().ok());
                Some(Session { name, af_home: home, pane_pid })
            })
            .collect())
    }
}

/// Whether tmux's error says no server runs on the socket (none was ever started, or it died).
pub fn no_server(err: &str) -> bool {
    ["no server running", "error connecting", "No such file"].iter().any(|m| err.contains(m))
}

/// Whether tmux's error says the server went away as we spoke to it (its last session just ended):
/// the next call starts a new one.
pub fn server_exiting(err: &str) -> bool {
    ["server exited unexpectedly", "lost server"].iter().any(|m| err.contains(m))
}

/// A target that matches the session of exactly this name (tmux otherwise matches prefixes).
pub fn exact(name: &str) -> String {
    format!("={name}")
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("af-wrap"), "af-wrap");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
