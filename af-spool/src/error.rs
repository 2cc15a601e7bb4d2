//! The typed errors callers branch on, and the one exit-code table every program shares.

use std::path::{Path, PathBuf};

/// The exit codes of every AgentFlow program (documented in each man page's EXIT STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// A negative answer: unhealthy, nothing to receive.
    Negative = 1,
    /// A usage error or invalid input.
    Usage = 2,
    /// The agent (or other named thing) does not exist.
    NotFound = 3,
    /// A conflict: it exists already, or it is in the wrong state.
    Conflict = 4,
    /// A wait ran out of time.
    Timeout = 5,
    /// A system call, tmux or another program failed.
    System = 111,
    /// Interrupted by a signal.
    Interrupted = 130,
}

impl ExitCode {
    /// The table as shown in man pages and `--help`.
    pub const TABLE: &'static str = "EXIT STATUS: 0 ok, 1 a negative answer (unhealthy, nothing to receive, \"ok\": false from af-bus request), \
2 usage or invalid input, 3 not found, 4 conflict (exists, wrong state), 5 timeout, \
111 a system call or tmux failed, 130 interrupted.";
}

/// Errors of the spool library that callers must tell apart.
#[derive(Debug)]
pub enum Error {
    /// Invalid input: a bad id, malformed JSON, an unknown value.
    Invalid(String),
    /// A named thing does not exist.
    NotFound(String),
    /// The thing exists already or is in the wrong state for the request.
    Conflict(String),
    /// A wait ran out of time.
    Timeout(String),
    /// A wait was ended by SIGINT or SIGTERM (see [`crate::fifodir::interrupt_waits`]).
    Interrupted(String),
    /// A record in the spool does not parse: named by its path, it needs repair or removal.
    Corrupt {
        /// The record's file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// An I/O operation failed on a path.
    Io {
        /// What we were doing ("write", "rename", …).
        action: &'static str,
        /// The path it failed on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Something else outside our control failed (tmux, a child program).
    System(String),
    /// The request was carried out but the agent failed: its program is missing or died at once.
    Failed(String),
    /// What was asked happened to the agent (it stopped), but its record could not be written
    /// (a full disk): the message names the file and the cause.
    Unrecorded(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the action and the path it happened on.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io { action, path: path.to_path_buf(), source }
    }

    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Invalid(_) => ExitCode::Usage,
            Error::NotFound(_) => ExitCode::NotFound,
            Error::Conflict(_) => ExitCode::Conflict,
            Error::Timeout(_) => ExitCode::Timeout,
            Error::Interrupted(_) => ExitCode::Interrupted,
            Error::Io { .. } | Error::Corrupt { .. } | Error::System(_) | Error::Failed(_) | Error::Unrecorded(_) => {
                ExitCode::System
            }
        }
    }

    /// The error's kind, as `--json` errors name it on stderr (`{"error": KIND, "message": …}`)
    /// and as af-api maps it to an HTTP status.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::NotFound(_) => "not-found",
            Error::Conflict(_) => "conflict",
            Error::Timeout(_) => "timeout",
            Error::Interrupted(_) => "interrupted",
            Error::Io { .. } => "io",
            Error::Corrupt { .. } => "corrupt",
            Error::System(_) => "system",
            Error::Failed(_) => "agent-failed",
            Error::Unrecorded(_) => "unrecorded",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::Timeout(m)
            | Error::Interrupted(m)
            | Error::System(m)
            | Error::Failed(m)
            | Error::Unrecorded(m) => f.write_str(m),
            Error::Corrupt { path, detail } => {
                write!(f, "corrupt record {}: {detail} (repair or remove it)", path.display())
            }
            // ELOOP: an open without following symlinks met one (see crate::beneath).
            Error::Io { path, source, .. } if source.raw_os_error() == Some(nix::libc::ELOOP) => {
                write!(f, "refusing to follow a symbolic link at {}", path.display())
            }
            Error::Io { action, path, source } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
