//! A small tmpfs mounted as a test's spool, to run the programs on a full disk or a read-only
//! spool. Needs root (and a mount namespace that allows it); without, the test skips visibly.

use super::{Env, Need, skip};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a test's `AF_HOME`, unmounted on drop (after the test's processes are
/// killed, so that nothing holds it).
pub struct Tmpfs<'a> {
    env: &'a Env,
    dir: PathBuf,
}

/// The file that fills the disk.
const FILLER: &str = "filler";

impl<'a> Tmpfs<'a> {
    /// Mounts a tmpfs of `size` (`2m`) at the test's spool; None (the test skipped) when it cannot.
    pub fn mount(env: &'a Env, size: &str) -> Option<Tmpfs<'a>> {
        let dir = env.home.clone();
        std::fs::create_dir_all(&dir).expect("creating the spool's directory");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { env, dir }),
            Ok(o) => {
                skip(Need::Mount, &format!("cannot mount a tmpfs: {}", String::from_utf8_lossy(&o.stderr).trim()));
                None
            }
            Err(e) => {
                skip(Need::Mount, &format!("cannot run mount: {e}"));
                None
            }
        }
    }

    /// Fills the filesystem up to its last byte (a file that grows until ENOSPC).
    pub fn fill(&self) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(FILLER))
            .expect("creating the filler");
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // Small files get in still (a partial block above); take their room too.
        for n in 0.. {
            if std::fs::write(self.dir.join(format!("{FILLER}.{n}")), b"x").is_err() {
                break;
            }
        }
    }

    /// Gives `bytes` back (from the end of the filler).
    pub fn free(&self, bytes: u64) {
        let path = self.dir.join(FILLER);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let f = std::fs::OpenOptions::new().write(true).open(&path).expect("opening the filler");
        f.set_len(len.saturating_sub(bytes)).expect("shrinking the filler");
    }

    /// Removes every filler: all the space is back.
    pub fn free_all(&self) {
        for e in std::fs::read_dir(&self.dir).expect("listing the spool").flatten() {
            if e.file_name().to_string_lossy().starts_with(FILLER) {
                std::fs::remove_file(e.path()).expect("removing a filler");
            }
        }
    }

    /// Remounts it read-only (or read-write again).
    pub fn remount(&self, read_only: bool) {
        let opt = if read_only { "remount,ro" } else { "remount,rw" };
        let out = Command::new("mount").args(["-o", opt]).arg(&self.dir).output().expect("running mount");
        assert!(out.status.success(), "mount -o {opt}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Where it is mounted.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        self.env.kill_everything();
        let unmounted = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds it: detach it now, the kernel frees it when let go.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
