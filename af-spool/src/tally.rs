//! Counters that survive restarts, kept cheaply: whoever counts appends one line per event to a
//! tally file (`name` counts one, `name value` observes a value for a histogram) with one
//! `O_APPEND` write under a *shared* flock, so counters never contend with each other; whoever
//! reads them (af-health metrics, af-api's `/metrics`) folds the new lines into the totals file
//! `<tally>.json` under the *exclusive* flock, and now and then truncates the tally.
//!
//! ```text
//! <dir>/tally           lines not yet folded ("acked", "latency 0.012")
//! <dir>/tally.json      Totals: counts, histograms, and how far the tally is folded
//! ```
//!
//! The totals are written (with the offset folded to) before a truncation and again after it, so a
//! crash loses nothing and counts nothing twice, unless it falls between the truncation and the
//! second write and more than the folded length is appended before the next fold (then those
//! lines go uncounted).

use crate::atomic::{self, Durability};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The upper bounds (seconds) of every histogram's buckets: a millisecond to five minutes.
pub const BOUNDS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0];

/// A tally file is truncated once folded past this many bytes.
const TRUNCATE_AT: u64 = 256 * 1024;

/// Observations counted into [`BOUNDS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Histogram {
    /// Observations at most `BOUNDS[i]` and above the bound before.
    pub counts: Vec<u64>,
    /// Observations above the last bound.
    pub beyond: u64,
    /// Their sum.
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        self.counts.resize(BOUNDS.len(), 0);
        match BOUNDS.iter().position(|b| v <= *b) {
            Some(i) => self.counts[i] += 1,
            None => self.beyond += 1,
        }
        self.sum += v;
    }
}

/// What a tally has counted since it began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Totals {
    /// Counts by name.
    pub counts: BTreeMap<String, u64>,
    /// Histograms by name.
    pub histograms: BTreeMap<String, Histogram>,
    /// How many bytes of the tally file are folded in.
    #[serde(default)]
    pub offset: u64,
}

/// One tally: its file of lines and its totals.
#[derive(Debug, Clone)]
pub struct Tally {
    path: PathBuf,
}

impl Tally {
    /// The tally at `path` (its totals beside it, `<path>.json`).
    pub fn new(path: PathBuf) -> Tally {
        Tally { path }
    }

    /// The tally file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn totals_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".json");
        PathBuf::from(p)
    }

    /// Counts `lines` (each `name` or `name value`, no newline) in one write; best effort: a
    /// count that cannot be written is logged and lost, never an error for the caller.
    pub fn add(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        if let Err(e) = self.append(text.as_bytes()) {
            tracing::debug!("cannot count in {}: {e}", self.path.display());
        }
    }

    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        let open = || OpenOptions::new().append(true).create(true).mode_0600().open(&self.path);
        let mut f = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new("/")))?;
                open()?
            }
            other => other?,
        };
        fs2::FileExt::lock_shared(&f)?;
        f.write_all(bytes)
    }

    /// Folds the new lines into the totals and returns them (empty totals when nothing was ever
    /// counted).
    pub fn fold(&self) -> Result<Totals> {
        let totals_path = self.totals_path();
        let mut totals: Totals = atomic::read_json(&totals_path)?.unwrap_or_default();
        let mut f = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(totals),
            Err(e) => return Err(Error::io("open", &self.path, e)),
        };
        fs2::FileExt::lock_exclusive(&f).map_err(|e| Error::io("lock", &self.path, e))?;
        let len = f.metadata().map_err(|e| Error::io("stat", &self.path, e))?.len();
        if len < totals.offset {
            // Truncated after the totals were written: all of it is new.
            totals.offset = 0;
        }
        if len == totals.offset {
            return Ok(totals);
        }
        let mut text = Vec::new();
        f.seek(SeekFrom::Start(totals.offset))
            .and_then(|_| (&mut f).take(len - totals.offset).read_to_end(&mut text))
            .map_err(|e| Error::io("read", &self.path, e))?;
        for line in String::from_utf8_lossy(&text).lines() {
            match line.split_once(' ') {
                None if !line.is_empty() => *totals.counts.entry(line.to_owned()).or_default() += 1,
                Some((name, v)) => {
                    if let Ok(v) = v.parse::<f64>().map(|v| v.max(0.0)) {
                        totals.histograms.entry(name.to_owned()).or_default().observe(v);
                    }
                }
                None => {}
            }
        }
        totals.offset = len;
        atomic::write_json(&totals_path, &totals, Durability::Volatile)?;
        if len >= TRUNCATE_AT {
            f.set_len(0).map_err(|e| Error::io("truncate", &self.path, e))?;
            totals.offset = 0;
            atomic::write_json(&totals_path, &totals, Durability::Volatile)?;
        }
        Ok(totals)
    }
}

/// `mode(0o600)` for OpenOptions, by name.
trait Private {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Private for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// The tally of a directory: `<dir>/tally`.
pub fn of_dir(dir: &Path) -> Tally {
    Tally::new(dir.join("tally"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_observations_fold_once_and_survive_truncation() {
        let dir = std::env::temp_dir().join(format!("af-tally-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = of_dir(&dir);
        assert_eq!(t.fold().unwrap(), Totals::default());
        t.add(&["acked".into(), "acked".into(), "latency 0.003".into(), "latency 400".into()]);
        let a = t.fold().unwrap();
        assert_eq!(a.counts["acked"], 2);
        let h = &a.histograms["latency"];
        assert_eq!((h.counts[1], h.beyond, h.sum), (1, 1, 400.003));
        // Folding again counts nothing twice; a new line adds one.
        assert_eq!(t.fold().unwrap().counts["acked"], 2);
        t.add(&["acked".into()]);
        assert_eq!(t.fold().unwrap().counts["acked"], 3);
        // Past the truncation size, the tally starts again and the totals carry on.
        let many: Vec<String> = (0..60_000).map(|_| "sent".to_owned()).collect();
        t.add(&many);
        let b = t.fold().unwrap();
        assert_eq!((b.counts["sent"], b.counts["acked"], b.offset), (60_000, 3, 0));
        assert_eq!(std::fs::metadata(dir.join("tally")).unwrap().len(), 0);
        t.add(&["sent".into()]);
        assert_eq!(t.fold().unwrap().counts["sent"], 60_001);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
