//! Rotation of the live file: `events.log.N-1` → `events.log.N` … `events.log` → `events.log.1`,
//! by rename, so writers need no coordination to append. Only a writer that found the file due
//! takes `events.lock`, and it looks again under the lock: of many writers that found it due at
//! once, the first rotates and the others find a fresh file.

use super::Limits;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::spool::Spool;
use std::io::ErrorKind;
use std::time::Duration;

/// How long a writer waits for the rotation lock before it appends without rotating: the next
/// writer will rotate, and an event is never held up for long by someone else's stuck process.
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

/// Rotates the live file if appending `incoming` bytes would take it past the limit; whether it
/// did.
pub fn rotate_if_due(spool: &Spool, limits: Limits, incoming: u64) -> Result<bool> {
    let lock_path = spool.events_lock_path();
    let Some(_lock) = Lock::try_exclusive_patiently(&lock_path, LOCK_PATIENCE)? else {
        return Err(Error::Timeout(format!("{} stayed locked for {LOCK_PATIENCE:?}", lock_path.display())));
    };
    let live = spool.events_path();
    let size = match std::fs::symlink_metadata(&live) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("stat", &live, e)),
    };
    if size == 0 || size + incoming <= limits.max_bytes {
        return Ok(false);
    }
    shift(spool, limits.keep)?;
    std::fs::rename(&live, spool.events_generation_path(1)).map_err(|e| Error::io("rotate", &live, e))?;
    Ok(true)
}

/// Makes room for a new `events.log.1`: drops the generations from `keep` on (`keep` itself would
/// be overwritten, and older ones were left by a larger `AF_EVENTS_KEEP`), then moves each of the
/// others one up, plain or compressed (`events.log.N.gz`, by `af-spawn gc`).
fn shift(spool: &Spool, keep: usize) -> Result<()> {
    let live = spool.events_path();
    // The generations there are: `.1` up to the first one missing, where readers stop too.
    let have = (1..).take_while(|&n| crate::logfile::has_generation(&live, n)).count();
    let forms = |n: usize| [crate::logfile::generation(&live, n), crate::logfile::compressed(&live, n)];
    for n in (keep.max(1)..=have).rev() {
        for path in forms(n) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(Error::io("remove", &path, e)),
                _ => {}
            }
        }
    }
    for n in (1..keep.min(have + 1)).rev() {
        for (from, to) in forms(n).into_iter().zip(forms(n + 1)) {
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(Error::io("rotate", &from, e)),
                _ => {}
            }
        }
    }
    Ok(())
}
