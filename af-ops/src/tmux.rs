//! Talking to tmux: the server AgentFlow uses (`AF_TMUX_SOCKET` names a private one, as `-L`), and
//! the few commands the programs need. Sessions AgentFlow creates carry the user option
//! `@af_home` (the spool root), so nothing else's sessions are ever touched.

use af_spool::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        Tmux { socket: std::env::var("AF_TMUX_SOCKET").ok().filter(|s| !s.is_empty()) }
    }

    /// The socket name, when not the default server.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// A `tmux` command aimed at this server. It goes without the identity of an agent we may
    /// run in (a monitor restarting others): a tmux server it starts must never count as part of
    /// that agent, whose orphans are found by that identity.
    pub fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.env_remove("AF_AGENT_ID").env_remove("AF_PROJECT_ID").env_remove("AF_AGENT_TYPE");
        if let Some(s) = &self.socket {
            c.arg("-L").arg(s);
        }
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

    /// Runs tmux with `args`; its stdout on success, its stderr as the error otherwise.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<String> {
        let out = self.command().args(args).output().map_err(|e| Error::io("run", Path::new("tmux"), e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(Error::System(format!("tmux failed: {}", err.trim())))
        }
    }

    /// Whether a session of exactly this name exists.
    pub fn has_session(&self, name: &str) -> bool {
        self.command()
            .args(["has-session", "-t", &exact(name)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
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
        let out = self
            .command()
            .args(["list-sessions", "-F", &format!("#{{session_name}}\t#{{{MARKER}}}\t#{{pane_pid}}")])
            .output()
            .map_err(|e| Error::io("run", Path::new("tmux"), e))?;
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
