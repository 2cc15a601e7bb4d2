//! Logging through tracing: to stderr, and to the program's log file in the spool. That file is
//! opened only when the first record for it is written, so a run that logs nothing there (most
//! one-shot verbs) opens nothing, and only in a spool that passes the checks of
//! [`af_spool::Spool::check_root`], made before anything in it is opened.

use af_spool::Spool;
use af_spool::record::program_name;
use std::cell::Cell;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The most a program's log file grows before it is rotated (`AF_LOG_MAX_BYTES`, default 1 MiB).
fn log_max_bytes() -> u64 {
    std::env::var("AF_LOG_MAX_BYTES").ok().and_then(|v| af_spool::human::parse_size(&v).ok()).unwrap_or(1 << 20)
}

/// Opens a log file for appending, rotating it first when it is over the size cap; never through
/// a symlink (a refusal is said on stderr, and the program logs there only; a read-only or full
/// disk is not).
fn open_log(path: &Path) -> Option<File> {
    af_spool::logfile::rotate_if_larger(path, log_max_bytes(), af_spool::logfile::KEEP);
    match af_spool::beneath::open_append(path) {
        Ok(f) => Some(f),
        // A read-only or full disk is the program's own error to report, in its one line; a
        // refused link or a FIFO at the log is worth a word of its own.
        Err(af_spool::Error::Io { source, .. })
            if matches!(source.raw_os_error(), Some(nix::libc::EROFS | nix::libc::ENOSPC | nix::libc::EDQUOT)) =>
        {
            None
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{}: not logging to a file: {e}", program_name());
            None
        }
    }
}

/// `$AF_HOME/log/<program>.log`, opened at the first record written to it; nowhere when the
/// spool does not exist or fails its checks (owned by another user, writable by others). No
/// spool is made for a log.
struct SpoolLog {
    root: PathBuf,
    program: String,
    file: OnceLock<Option<Mutex<File>>>,
}

thread_local! {
    // Set while this thread opens the log: a record logged on the way (by what the opening calls)
    // must not wait for the opening it is part of.
    static OPENING: Cell<bool> = const { Cell::new(false) };
}

impl SpoolLog {
    fn file(&self) -> Option<&Mutex<File>> {
        if let Some(f) = self.file.get() {
            return f.as_ref();
        }
        // No spool yet (this run may make it): nothing is decided, the next record looks again.
        if !self.root.is_dir() || OPENING.with(|o| o.replace(true)) {
            return None;
        }
        let f = self.file.get_or_init(|| self.open().map(Mutex::new));
        OPENING.with(|o| o.set(false));
        f.as_ref()
    }

    fn open(&self) -> Option<File> {
        if !self.root.is_dir() {
            return None;
        }
        let dir = Spool::check_root(&self.root, false).ok()?.join("log");
        af_spool::atomic::create_dir(&dir).ok()?;
        open_log(&dir.join(format!("{}.log", self.program)))
    }
}

/// A record's way into a log file that may not be there.
enum LogWriter<'a> {
    File(MutexGuard<'a, File>),
    Nowhere,
}

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            LogWriter::File(f) => f.write(buf),
            LogWriter::Nowhere => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LogWriter::File(f) => f.flush(),
            LogWriter::Nowhere => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for SpoolLog {
    type Writer = LogWriter<'a>;

    fn make_writer(&'a self) -> LogWriter<'a> {
        match self.file() {
            Some(m) => LogWriter::File(m.lock().unwrap_or_else(|e| e.into_inner())),
            None => LogWriter::Nowhere,
        }
    }
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    /// To journald, natively (stderr then gets nothing; the spool's log file still gets text).
    Journald,
}

/// `AF_LOG_FORMAT` (`text`, `json`, `journald`); unset (or anything else), journald when systemd
/// connected stderr to the journal, else text.
fn format() -> Format {
    match std::env::var("AF_LOG_FORMAT").as_deref() {
        Ok("json") => Format::Json,
        Ok("journald") => Format::Journald,
        Ok("text") => Format::Text,
        _ if crate::journald::stderr_is_journal() => Format::Journald,
        _ => Format::Text,
    }
}

/// A text or JSON layer at `level`. The event log's own records (target
/// [`af_spool::eventlog::LOG_TARGET`], mirrored for journald) are left out: they are in the event
/// log already.
fn layer<W>(writer: W, json: bool, ansi: bool, level: LevelFilter) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target(af_spool::eventlog::LOG_TARGET, LevelFilter::OFF);
    let base = tracing_subscriber::fmt::layer().with_writer(writer).with_target(false).with_ansi(ansi);
    if json { base.json().with_filter(filter).boxed() } else { base.with_filter(filter).boxed() }
}

/// The journald layer at `level` (the event log's records included), if journald answers.
fn journald_layer(level: LevelFilter) -> Option<BoxedLayer> {
    use tracing_subscriber::Layer;
    let path = crate::journald::socket_path();
    match crate::journald::Journald::connect(path.clone(), &program_name()) {
        Ok(j) => Some(j.with_filter(level).boxed()),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "{}: journald is not reachable at {} ({e}): logging to stderr",
                program_name(),
                path.display()
            );
            None
        }
    }
}

/// Sets up tracing. `AF_LOG` sets the level (error, warn, info, debug, trace); `AF_LOG_FORMAT=json`
/// writes JSON lines, `AF_LOG_FORMAT=journald` sends records to journald with their fields (see
/// [`crate::journald`]), as does a program whose stderr systemd connected to the journal, unless
/// `AF_LOG_FORMAT` says `text` or `json`. With `file`, logs go there (default level info), and to
/// journald too when it is chosen; without, to stderr (default warn) or journald in its place
/// (default info, the event log's events included), and to `$AF_HOME/log/<program>.log` at info,
/// a file opened (and the spool's `log/` made) only when a record is written to it, and only in a
/// spool that exists and passes the spool's checks. Log files are rotated by size when opened
/// (`AF_LOG_MAX_BYTES`, three generations kept). journald unreachable: stderr, as without it.
pub fn init_logging(file: Option<&Path>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let chosen = std::env::var("AF_LOG").ok().and_then(|l| l.parse::<LevelFilter>().ok());
    let format = format();
    let json = format == Format::Json;
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let journald = if format == Format::Journald { journald_layer(chosen.unwrap_or(LevelFilter::INFO)) } else { None };
    let to_journald = journald.is_some();
    layers.extend(journald);
    match file {
        Some(path) => {
            if let Some(f) = open_log(path) {
                layers.push(layer(Mutex::new(f), json, false, chosen.unwrap_or(LevelFilter::INFO)));
            }
        }
        None => {
            if !to_journald {
                layers.push(layer(std::io::stderr, json, true, chosen.unwrap_or(LevelFilter::WARN)));
            }
            if let Ok(root) = Spool::default_root() {
                let log = SpoolLog { root, program: program_name(), file: OnceLock::new() };
                layers.push(layer(log, json, false, chosen.unwrap_or(LevelFilter::INFO)));
            }
        }
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(af_spool::atomic::unique_name(name)).join("home");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn log(root: &Path) -> SpoolLog {
        SpoolLog { root: root.to_path_buf(), program: "af-test".into(), file: OnceLock::new() }
    }

    #[test]
    fn the_log_file_is_opened_at_the_first_record_only() {
        let root = temp_root("log-lazy");
        let l = log(&root);
        assert!(!root.join("log").exists(), "nothing is opened before a record");
        l.make_writer().write_all(b"a record\n").unwrap();
        let text = std::fs::read_to_string(root.join("log/af-test.log")).unwrap();
        assert_eq!(text, "a record\n");
        let l = log(&root.join("missing"));
        l.make_writer().write_all(b"nowhere\n").unwrap();
        assert!(!root.join("missing").exists(), "no spool is made for a log");
        // A spool made later in the run gets the records from then on.
        std::fs::create_dir(root.join("missing")).unwrap();
        std::fs::set_permissions(root.join("missing"), std::fs::Permissions::from_mode(0o700)).unwrap();
        l.make_writer().write_all(b"later\n").unwrap();
        assert_eq!(std::fs::read_to_string(root.join("missing/log/af-test.log")).unwrap(), "later\n");
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }

    #[test]
    fn no_log_file_in_a_spool_others_can_write() {
        let root = temp_root("log-unsafe");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        log(&root).make_writer().write_all(b"x\n").unwrap();
        assert!(!root.join("log").exists());
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }
}
