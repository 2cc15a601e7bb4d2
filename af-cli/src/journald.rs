//! Logging to journald through its native protocol: each record is one datagram to journald's
//! socket holding `KEY=value` lines (a value with a newline in the binary-safe form: the key, a
//! newline, the value's length as 64-bit little-endian, the value, a newline). Fields: `MESSAGE`,
//! `PRIORITY` from the level, `SYSLOG_IDENTIFIER` (the program), `CODE_FILE`/`CODE_LINE`, and the
//! record's own fields upper-cased (`agent_id` → `AGENT_ID`, `kind` → `KIND`).
//!
//! A program writes there when `AF_LOG_FORMAT=journald`, or when systemd connected its stderr to
//! the journal (`JOURNAL_STREAM` names stderr's device and inode: how systemd tells a service).
//! The socket is `/run/systemd/journal/socket`, or `AF_JOURNAL_SOCKET` (tests, a journal
//! namespace). journald unreachable at the start: the program logs to stderr as usual; a record
//! it refuses later (journald restarting, a record too large for a datagram) goes to stderr as a
//! line of text.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// Where journald listens for native-protocol datagrams.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// The socket to send to: `AF_JOURNAL_SOCKET`, else journald's own.
pub fn socket_path() -> PathBuf {
    std::env::var_os("AF_JOURNAL_SOCKET").filter(|s| !s.is_empty()).map_or(DEFAULT_SOCKET.into(), PathBuf::from)
}

/// Whether systemd connected stderr to the journal: `JOURNAL_STREAM` is `DEVICE:INODE` of the
/// stream it gave, and stderr is still that stream (a program whose stderr was redirected since,
/// or a child that inherited the variable with another stderr, is not).
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else { return false };
    let Some((dev, ino)) = stream.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// A tracing layer sending each record to journald.
pub struct Journald {
    socket: UnixDatagram,
    path: PathBuf,
    identifier: String,
}

impl Journald {
    /// A layer sending to `path` as `identifier`, if journald is there: an empty datagram (which
    /// journald ignores) is sent first, so a missing socket or a journald that is not listening
    /// is found now.
    pub fn connect(path: PathBuf, identifier: &str) -> std::io::Result<Journald> {
        let socket = UnixDatagram::unbound()?;
        socket.send_to(&[], &path)?;
        Ok(Journald { socket, path, identifier: identifier.to_owned() })
    }
}

/// journald's priority for a level (syslog's: 3 err, 4 warning, 6 info, 7 debug).
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// A field name as journald takes it: upper-case ASCII letters, digits and `_`, not starting with
/// `_` (those are journald's own trusted fields) or a digit, at most 64 characters; `None` if
/// nothing is left.
pub fn field_name(name: &str) -> Option<String> {
    let mapped: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    let trimmed = mapped.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit());
    (!trimmed.is_empty()).then(|| trimmed.chars().take(64).collect())
}

/// Appends one field in the native protocol: `NAME=value\n`, or for a value holding a newline
/// `NAME\n`, its length (u64, little-endian), the value, `\n`.
pub fn put(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// The fields journald is given by this layer itself: a record's field of one of these names is
/// sent as `F_<NAME>` instead.
const OWN: [&str; 5] = ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE"];

/// Collects a record's fields: the message apart, the others encoded as they come.
#[derive(Default)]
struct Fields {
    message: String,
    buf: Vec<u8>,
    text: String,
}

impl Fields {
    fn add(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
            return;
        }
        let _ = write!(self.text, " {}={value}", field.name());
        let Some(mut name) = field_name(field.name()) else { return };
        if OWN.contains(&name.as_str()) {
            name = format!("F_{name}");
        }
        put(&mut self.buf, &name, value.as_bytes());
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, &format!("{value:?}"));
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Journald {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut buf = Vec::with_capacity(256 + fields.buf.len());
        put(&mut buf, "MESSAGE", fields.message.as_bytes());
        put(&mut buf, "PRIORITY", priority(meta.level()).to_string().as_bytes());
        put(&mut buf, "SYSLOG_IDENTIFIER", self.identifier.as_bytes());
        if let Some(file) = meta.file() {
            put(&mut buf, "CODE_FILE", file.as_bytes());
        }
        if let Some(line) = meta.line() {
            put(&mut buf, "CODE_LINE", line.to_string().as_bytes());
        }
        buf.extend_from_slice(&fields.buf);
        if self.socket.send_to(&buf, &self.path).is_err() {
            // journald restarting, or a record larger than a datagram may be: said on stderr
            // rather than lost (under systemd, stderr is the journal too).
            let line = format!("{}: {} {}{}\n", self.identifier, meta.level(), fields.message, fields.text);
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_newlines_take_the_binary_safe_form() {
        let mut buf = Vec::new();
        put(&mut buf, "MESSAGE", b"one line");
        put(&mut buf, "DETAIL", b"two\nlines");
        let mut want = b"MESSAGE=one line\nDETAIL\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(buf, want);
    }

    #[test]
    fn field_names_are_what_journald_keeps() {
        assert_eq!(field_name("agent_id").as_deref(), Some("AGENT_ID"));
        assert_eq!(field_name("reply-to.x").as_deref(), Some("REPLY_TO_X"));
        assert_eq!(field_name("_pid").as_deref(), Some("PID"), "no client sets a trusted field");
        assert_eq!(field_name("9lives").as_deref(), Some("LIVES"));
        assert_eq!(field_name("__"), None);
        assert_eq!(field_name(&"a".repeat(100)).map(|n| n.len()), Some(64));
    }

    #[test]
    fn levels_are_syslog_priorities() {
        assert_eq!([Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG].map(|l| priority(&l)), [3, 4, 6, 7]);
    }
}
