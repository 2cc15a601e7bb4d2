//! Log files and their generations: size-based rotation (`name` → `name.1` → `name.2` … up to a
//! number of generations), and retention, applied by `af-spawn gc`: generations past an age or
//! past a size (the whole log's, oldest dropped first) are removed, and the others compressed
//! (`name.N.gz`, gzip) once nobody has written to them for a while.
//!
//! Compression never loses a line, whenever the compressing program is killed: the `.gz` is
//! written under a hidden temporary name, fsynced, and only then renamed to `name.N.gz`, after
//! which the plain `name.N` is removed. A kill leaves the plain file (and a temporary file that
//! the next gc removes), or both (readers take the plain one, and the next gc removes it), or the
//! `.gz` alone. The gzip header's comment keeps the plain file's inode (`ino=N`), so that a
//! position in the event log taken before the compression still names its generation.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How many rotated generations are kept.
pub const KEEP: usize = 3;

/// What a compressed generation's name ends with.
pub const GZ: &str = ".gz";

/// Generation `n` of `path`, plain: `path.n`.
pub fn generation(path: &Path, n: usize) -> PathBuf {
    crate::atomic::sibling(path, &format!(".{n}"))
}

/// Generation `n` of `path`, compressed: `path.n.gz`.
pub fn compressed(path: &Path, n: usize) -> PathBuf {
    crate::atomic::sibling(path, &format!(".{n}{GZ}"))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Whether generation `n` of `path` is there, plain or compressed.
pub fn has_generation(path: &Path, n: usize) -> bool {
    exists(&generation(path, n)) || exists(&compressed(path, n))
}

/// Makes room for a new `path.1`: removes generation `keep` (both forms: it would be overwritten)
/// and moves every one below it one up, plain and compressed alike.
pub fn shift(path: &Path, keep: usize) {
    let keep = keep.max(1);
    let _ = std::fs::remove_file(generation(path, keep));
    let _ = std::fs::remove_file(compressed(path, keep));
    for n in (1..keep).rev() {
        let _ = std::fs::rename(generation(path, n), generation(path, n + 1));
        let _ = std::fs::rename(compressed(path, n), compressed(path, n + 1));
    }
}

/// Rotates `path` by renaming when it is larger than `max_bytes`: for files the writer reopens.
pub fn rotate_if_larger(path: &Path, max_bytes: u64, keep: usize) -> bool {
    if std::fs::symlink_metadata(path).map_or(true, |m| !m.is_file() || m.len() <= max_bytes) {
        return false;
    }
    shift(path, keep);
    std::fs::rename(path, generation(path, 1)).is_ok()
}

/// Rotates `path` by copying it to `path.1` (the older generations shifted up, [`KEEP`] kept) and
/// truncating it, for a file another process keeps appending to (O_APPEND writers go on at the
/// new end). Lines written between the copy and the truncation are lost; that is the price of
/// not restarting the writer.
pub fn copy_truncate_if_larger(path: &Path, max_bytes: u64) -> bool {
    // Never through a symlink: the file is opened once, without following one, and copied from
    // and truncated through that descriptor.
    let Ok(Some(mut from)) = crate::beneath::open_read(path) else { return false };
    if from.metadata().map_or(true, |m| !m.is_file() || m.len() <= max_bytes) {
        return false;
    }
    let mut copy = || -> crate::Result<()> {
        let to = generation(path, 1);
        let tmp = crate::atomic::sibling(&to, ".tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = crate::beneath::open(
            &tmp,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL,
            0o600,
            "create",
        )?;
        std::io::copy(&mut from, &mut out).map_err(|e| crate::Error::io("copy", path, e))?;
        shift(path, KEEP);
        std::fs::rename(&tmp, &to).map_err(|e| crate::Error::io("rename", &to, e))
    };
    let truncate = || crate::beneath::open(path, nix::fcntl::OFlag::O_WRONLY, 0, "open").map(|f| f.set_len(0).is_ok());
    copy().is_ok() && truncate().is_ok_and(|t| t)
}

/// One rotated generation on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its number: 1 is the newest.
    pub n: usize,
    /// The file (`name.N` or `name.N.gz`).
    pub path: PathBuf,
    /// Whether it is compressed.
    pub compressed: bool,
    /// Its size on disk.
    pub len: u64,
    /// When it was last written (a compressed one keeps the time of its plain file).
    pub modified: SystemTime,
    /// Its inode: a removal checks that the name still holds it (a rotation may have moved it).
    pub ino: u64,
}

/// The generations of `path`, newest first: `.1` up to the first number with neither form.
/// Where both forms are there (a compression killed between its rename and its removal), the
/// plain one is listed: both hold the same lines.
pub fn generations(path: &Path) -> Vec<Generation> {
    let mut out = Vec::new();
    for n in 1.. {
        let (plain, gz) = (generation(path, n), compressed(path, n));
        let found = [(plain, false), (gz, true)]
            .into_iter()
            .find_map(|(p, c)| std::fs::symlink_metadata(&p).ok().filter(|m| m.is_file()).map(|m| (p, c, m)));
        let Some((p, compressed, m)) = found else { break };
        out.push(Generation {
            n,
            path: p,
            compressed,
            len: m.len(),
            modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ino: m.ino(),
        });
    }
    out
}

/// The inode a compressed generation had as a plain file (its gzip comment `ino=N`), if it says.
fn original_ino(header: Option<&flate2::GzHeader>) -> Option<u64> {
    let comment = std::str::from_utf8(header?.comment()?).ok()?;
    comment.strip_prefix("ino=")?.parse().ok()
}

/// A compressed generation decompressed into an unnamed file (`O_TMPFILE` beside it, or in the
/// temporary directory), positioned at its start, with the inode its plain file had (the `.gz`'s
/// own when the header does not say) and its modification time carried over. `None` when it
/// does not exist.
pub fn decompressed(gz: &Path) -> Result<Option<(File, u64)>> {
    let Some(f) = crate::beneath::open_read(gz)? else { return Ok(None) };
    let meta = f.metadata().map_err(|e| Error::io("stat", gz, e))?;
    let dir = gz.parent().unwrap_or(Path::new("."));
    let unnamed = |d: &Path| {
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_TMPFILE).mode(0o600).open(d)
    };
    let mut out =
        unnamed(dir).or_else(|_| unnamed(&std::env::temp_dir())).map_err(|e| Error::io("create a file for", gz, e))?;
    let mut dec = flate2::read::GzDecoder::new(f);
    std::io::copy(&mut dec, &mut out).map_err(|e| Error::io("decompress", gz, e))?;
    let ino = original_ino(dec.header()).unwrap_or(meta.ino());
    if let Ok(m) = meta.modified() {
        let _ = out.set_modified(m);
    }
    use std::io::Seek;
    out.rewind().map_err(|e| Error::io("rewind", gz, e))?;
    Ok(Some((out, ino)))
}

/// The inode that names a compressed generation: its plain file's (from the gzip header, read no
/// further), else the `.gz`'s own; `None` if it is not there.
pub fn compressed_ino(gz: &Path) -> Option<u64> {
    let f = crate::beneath::open_read(gz).ok()??;
    let own = f.metadata().ok()?.ino();
    let mut dec = flate2::read::GzDecoder::new(f);
    let _ = dec.read(&mut [0u8; 1]);
    Some(original_ino(dec.header()).unwrap_or(own))
}

/// Reads a generation whole, decompressing it if need be.
pub fn read_generation(g: &Generation) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let file = crate::beneath::open_read(&g.path)?.ok_or_else(|| Error::NotFound(g.path.display().to_string()))?;
    let read = if g.compressed {
        flate2::read::GzDecoder::new(file).read_to_end(&mut bytes)
    } else {
        (&file).read_to_end(&mut bytes)
    };
    read.map_err(|e| Error::io("read", &g.path, e))?;
    Ok(bytes)
}

/// Where a compression stops, for tests of a kill at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The temporary `.gz` is written and synced, not yet renamed.
    Written,
    /// The `.gz` has its final name; the plain file is still there.
    Renamed,
    /// Done: the plain file is removed.
    Done,
}

/// The hidden temporary name the compression of `plain` writes to: `.<name>.gz.part.<pid>`.
fn part_name(plain: &Path, pid: u32) -> PathBuf {
    let name = plain.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    plain.with_file_name(format!(".{name}{GZ}.part.{pid}"))
}

/// Compresses `plain` into `plain.gz` (see the module's doc for why a kill loses nothing). The
/// rename and the removal are made holding `lock` exclusively when given (the event log's
/// rotation lock), and only if `plain` is still the file that was compressed; whether it was
/// compressed.
pub fn compress(plain: &Path, lock: Option<&Path>) -> Result<bool> {
    compress_until(plain, lock, Step::Done)
}

/// [`compress`], stopping after `step` as a kill would.
pub fn compress_until(plain: &Path, lock: Option<&Path>, step: Step) -> Result<bool> {
    let Some(mut from) = crate::beneath::open_read(plain)? else { return Ok(false) };
    let meta = from.metadata().map_err(|e| Error::io("stat", plain, e))?;
    if !meta.is_file() {
        return Ok(false);
    }
    let gz = crate::atomic::sibling(plain, GZ);
    let part = part_name(plain, std::process::id());
    let _ = std::fs::remove_file(&part);
    let flags = nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL;
    let out = crate::beneath::open(&part, flags, 0o600, "create")?;
    let written = (|| -> std::io::Result<()> {
        let mut enc =
            flate2::GzBuilder::new().comment(format!("ino={}", meta.ino())).write(out, flate2::Compression::default());
        std::io::copy(&mut from, &mut enc)?;
        let out = enc.finish()?;
        out.sync_all()?;
        out.set_modified(meta.modified()?)?;
        out.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(Error::io("compress", plain, e));
    }
    if step == Step::Written {
        return Ok(false);
    }
    let _held = match lock {
        Some(l) => match crate::lock::Lock::try_exclusive_patiently(l, Duration::from_secs(5))? {
            Some(held) => Some(held),
            None => {
                let _ = std::fs::remove_file(&part);
                return Ok(false);
            }
        },
        None => None,
    };
    let same = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
    if !same(plain) {
        // Rotated away meanwhile: the next gc finds it under its new number.
        let _ = std::fs::remove_file(&part);
        return Ok(false);
    }
    std::fs::rename(&part, &gz).map_err(|e| Error::io("rename", &gz, e))?;
    let dir = plain.parent().unwrap_or(Path::new("."));
    crate::atomic::sync_dir(dir)?;
    if step == Step::Renamed {
        return Ok(true);
    }
    std::fs::remove_file(plain).map_err(|e| Error::io("remove", plain, e))?;
    crate::atomic::sync_dir(dir)?;
    Ok(true)
}

/// How long logs are kept: generations older than `max_age`, or beyond `max_bytes` for the log
/// as a whole (the live file counted, never removed), are removed; the others are compressed
/// once unwritten for `quiet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The oldest a generation may be (by its last write); `None`: no limit.
    pub max_age: Option<Duration>,
    /// The most one log may take on disk, its generations and live file together; `None`: no limit.
    pub max_bytes: Option<u64>,
    /// How long a generation must be left unwritten before it is compressed (a program that
    /// opened the file before a rotation may still append to it).
    pub quiet: Duration,
}

/// The default age limit: 14 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 86_400);
/// The default size limit of one log: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// How long a generation rests before it is compressed: 5 minutes.
pub const QUIET: Duration = Duration::from_secs(300);

impl Default for Retention {
    fn default() -> Self {
        Retention { max_age: Some(DEFAULT_MAX_AGE), max_bytes: Some(DEFAULT_MAX_BYTES), quiet: QUIET }
    }
}

/// What retention did to a log (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// Generations compressed.
    pub compressed: usize,
    /// Generations removed.
    pub removed: usize,
    /// Bytes those removals freed.
    pub freed_bytes: u64,
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, o: Applied) {
        self.compressed += o.compressed;
        self.removed += o.removed;
        self.freed_bytes += o.freed_bytes;
    }
}

/// Finishes what a killed compression left: temporary files of dead programs are removed, and a
/// generation there in both forms loses its plain file when the `.gz` was made from it (its
/// comment names the plain file's inode), else its stale `.gz`.
fn recover(path: &Path, dry_run: bool) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = file.strip_prefix(&prefix).and_then(|r| r.rsplit_once(".gz.part.")).map(|(_, p)| p) else {
                continue;
            };
            let dead = pid.parse::<i32>().is_ok_and(|p| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None) == Err(nix::errno::Errno::ESRCH)
            });
            if dead && !dry_run {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for n in 1.. {
        let (plain, gz) = (generation(path, n), compressed(path, n));
        let (p, g) = (std::fs::symlink_metadata(&plain), exists(&gz));
        match (p, g) {
            (Ok(pm), true) if !dry_run => {
                let made_from = crate::beneath::open_read(&gz)
                    .ok()
                    .flatten()
                    .and_then(|f| {
                        let mut dec = flate2::read::GzDecoder::new(f);
                        let _ = dec.read(&mut [0u8; 1]);
                        original_ino(dec.header())
                    })
                    .is_some_and(|ino| ino == pm.ino());
                let _ = std::fs::remove_file(if made_from { &plain } else { &gz });
            }
            (Err(_), false) => break,
            _ => {}
        }
    }
}

/// Applies `r` to the log at `path` (and its generations) at `now`; `lock` is held while
/// generations are removed and renamed (the event log's rotation lock). With `dry_run`, says
/// what it would do.
pub fn apply(path: &Path, r: &Retention, lock: Option<&Path>, now: SystemTime, dry_run: bool) -> Result<Applied> {
    let mut done = Applied::default();
    recover(path, dry_run);
    let older = |g: &Generation, d: Duration| now.duration_since(g.modified).is_ok_and(|age| age > d);
    let mut gens = generations(path);
    // By age: the first generation past it goes, with every older one.
    let keep = r.max_age.map_or(gens.len(), |max| gens.iter().position(|g| older(g, max)).unwrap_or(gens.len()));
    done += remove(&gens[keep..], lock, dry_run)?;
    gens.truncate(keep);
    for g in gens.iter().filter(|g| !g.compressed && older(g, r.quiet)) {
        if dry_run || compress(&g.path, lock)? {
            done.compressed += 1;
        }
    }
    // By size: the live file and the generations, newest first, until the limit is passed.
    if let Some(max) = r.max_bytes {
        let gens = if dry_run { gens } else { generations(path) };
        let mut total = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
        let over = gens.iter().position(|g| {
            total += g.len;
            total > max
        });
        if let Some(i) = over {
            done += remove(&gens[i..], lock, dry_run)?;
        }
    }
    Ok(done)
}

/// Removes `gens` (the oldest of a log), oldest first, so that the ones left stay numbered from 1
/// without a gap.
fn remove(gens: &[Generation], lock: Option<&Path>, dry_run: bool) -> Result<Applied> {
    let mut done = Applied::default();
    if gens.is_empty() {
        return Ok(done);
    }
    let _held = match lock.filter(|_| !dry_run) {
        Some(l) => crate::lock::Lock::try_exclusive_patiently(l, Duration::from_secs(5))?,
        None => None,
    };
    if lock.is_some() && !dry_run && _held.is_none() {
        return Ok(done);
    }
    for g in gens.iter().rev() {
        if !dry_run {
            // A rotation since the listing moved the generations up: what is under this name now
            // is a newer one, kept (and so is every newer one: no gap is made).
            if std::fs::symlink_metadata(&g.path).map_or(true, |m| m.ino() != g.ino) {
                break;
            }
            std::fs::remove_file(&g.path).map_err(|e| Error::io("remove", &g.path, e))?;
        }
        done.removed += 1;
        done.freed_bytes += g.len;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(crate::atomic::unique_name(name));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn age(path: &Path, secs: u64) {
        let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs)).unwrap();
    }

    #[test]
    fn rotates_and_keeps_generations() {
        let dir = temp_dir("logfile-test");
        let log = dir.join("x.log");
        for round in 0..5 {
            std::fs::write(&log, vec![b'a' + round; 100]).unwrap();
            assert!(rotate_if_larger(&log, 50, KEEP));
        }
        assert!(!log.exists());
        assert_eq!(std::fs::read(generation(&log, 1)).unwrap()[0], b'e');
        assert_eq!(std::fs::read(generation(&log, 3)).unwrap()[0], b'c');
        assert!(!generation(&log, 4).exists());
        std::fs::write(&log, b"small").unwrap();
        assert!(!rotate_if_larger(&log, 50, KEEP));
        std::fs::write(&log, vec![b'z'; 100]).unwrap();
        assert!(copy_truncate_if_larger(&log, 50));
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        assert_eq!(std::fs::read(generation(&log, 1)).unwrap().len(), 100);
        assert_eq!(std::fs::read(generation(&log, 2)).unwrap()[0], b'e', "the older ones move up");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn compressed_generations_rotate_and_read_like_plain_ones() {
        let dir = temp_dir("logfile-gz");
        let log = dir.join("x.log");
        std::fs::write(&log, b"one\n".repeat(30)).unwrap();
        assert!(rotate_if_larger(&log, 50, KEEP));
        let ino = std::fs::metadata(generation(&log, 1)).unwrap().ino();
        assert!(compress(&generation(&log, 1), None).unwrap());
        assert!(!generation(&log, 1).exists());
        std::fs::write(&log, b"two\n".repeat(30)).unwrap();
        assert!(rotate_if_larger(&log, 50, KEEP));
        let gens = generations(&log);
        assert_eq!(gens.iter().map(|g| (g.n, g.compressed)).collect::<Vec<_>>(), [(1, false), (2, true)]);
        assert_eq!(read_generation(&gens[1]).unwrap(), b"one\n".repeat(30));
        let (mut f, was) = decompressed(&gens[1].path).unwrap().unwrap();
        assert_eq!(was, ino, "the plain file's inode is kept");
        let mut text = Vec::new();
        f.read_to_end(&mut text).unwrap();
        assert_eq!(text, b"one\n".repeat(30));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_compression_killed_at_any_step_loses_nothing() {
        for step in [Step::Written, Step::Renamed] {
            let dir = temp_dir("logfile-kill");
            let log = dir.join("x.log");
            let lines = b"a line\n".repeat(1000);
            std::fs::write(generation(&log, 1), &lines).unwrap();
            std::fs::write(generation(&log, 2), b"older\n").unwrap();
            age(&generation(&log, 1), 3600);
            age(&generation(&log, 2), 7200);
            compress_until(&generation(&log, 1), None, step).unwrap();
            // What a reader finds at that moment: generation 1, whole, once.
            let gens = generations(&log);
            assert_eq!(gens.len(), 2, "{step:?}");
            assert_eq!(read_generation(&gens[0]).unwrap(), lines, "{step:?}");
            // Files of a live compressor stay; a dead one's go.
            let part = part_name(&generation(&log, 1), std::process::id());
            assert_eq!(part.exists(), step == Step::Written, "{step:?}");
            std::fs::rename(&part, part_name(&generation(&log, 1), 999_999_999)).ok();
            // The next gc finishes the job.
            let done = apply(&log, &Retention::default(), None, SystemTime::now(), false).unwrap();
            assert_eq!(done.removed, 0, "{step:?}");
            let gens = generations(&log);
            assert!(gens.iter().all(|g| g.compressed), "{step:?}: {gens:?}");
            assert_eq!(read_generation(&gens[0]).unwrap(), lines, "{step:?}");
            assert_eq!(read_generation(&gens[1]).unwrap(), b"older\n", "{step:?}");
            let names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(names.iter().all(|n| !n.contains(".part.")), "{step:?}: {names:?}");
            assert_eq!(names.len(), 2, "{step:?}: {names:?}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_removal_after_a_rotation_keeps_what_moved_under_the_name() {
        let dir = temp_dir("logfile-race");
        let log = dir.join("x.log");
        for n in 1..=3 {
            std::fs::write(generation(&log, n), format!("{n}\n")).unwrap();
        }
        let listed = generations(&log);
        // A writer rotates between the listing and the removal of the oldest (.3).
        std::fs::write(&log, b"new\n").unwrap();
        assert!(rotate_if_larger(&log, 1, 4));
        let done = remove(&listed[2..], None, false).unwrap();
        assert_eq!(done.removed, 0, "the old .3 is .4 now; .3 is the old .2");
        assert_eq!(std::fs::read(generation(&log, 3)).unwrap(), b"2\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retention_removes_by_age_and_size_oldest_first_and_compresses_the_rest() {
        let dir = temp_dir("logfile-retain");
        let log = dir.join("x.log");
        std::fs::write(&log, b"live\n").unwrap();
        for (n, hours) in [(1, 0), (2, 2), (3, 30 * 24), (4, 40 * 24)] {
            std::fs::write(generation(&log, n), format!("{n}\n").repeat(10_000)).unwrap();
            if hours > 0 {
                age(&generation(&log, n), hours * 3600);
            }
        }
        let r = Retention { max_age: Some(Duration::from_secs(14 * 86_400)), max_bytes: None, quiet: QUIET };
        let dry = apply(&log, &r, None, SystemTime::now(), true).unwrap();
        assert_eq!((dry.removed, dry.compressed), (2, 1));
        assert_eq!(generations(&log).len(), 4, "a dry run changes nothing");
        let done = apply(&log, &r, None, SystemTime::now(), false).unwrap();
        assert_eq!((done.removed, done.compressed), (2, 1), "the fresh .1 is left plain");
        let gens = generations(&log);
        assert_eq!(gens.iter().map(|g| (g.n, g.compressed)).collect::<Vec<_>>(), [(1, false), (2, true)]);
        // By size: the live file and .1 fit, .2 does not.
        let small = Retention { max_age: None, max_bytes: Some(gens[0].len + 10), quiet: QUIET };
        let done = apply(&log, &small, None, SystemTime::now(), false).unwrap();
        assert_eq!((done.removed, done.freed_bytes), (1, gens[1].len));
        assert_eq!(generations(&log).len(), 1);
        assert_eq!(std::fs::read(&log).unwrap(), b"live\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
