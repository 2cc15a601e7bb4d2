//! A cgroup that freezes the processes moved into it, for tests of a supervisor that hangs while
//! it lives (SIGSTOP would not do: tmux continues a pane's stopped process at once). cgroup v2's
//! `cgroup.freeze` on the unified hierarchy wherever it is mounted (`/sys/fs/cgroup`, or
//! `/sys/fs/cgroup/unified` beside v1), else v1's `freezer.state`. Dropping it thaws its
//! processes, gives them back to the cgroups they came from and removes it, even when the test
//! panics.

use std::path::{Path, PathBuf};

/// Which interface the freezer cgroup has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `cgroup.freeze` (1 frozen, 0 thawed).
    V2,
    /// The v1 freezer controller's `freezer.state` (FROZEN, THAWED).
    V1,
}

/// A freezer cgroup of this test process.
#[derive(Debug)]
pub struct Freezer {
    /// Its interface.
    pub version: Version,
    mount: PathBuf,
    dir: PathBuf,
    /// The processes moved in, each with the cgroup (relative to the mount) it came from.
    moved: Vec<(u32, String)>,
}

impl Freezer {
    /// A new freezer cgroup, v2 if this process may make one, else v1; `None` when neither.
    pub fn make(name: &str) -> Option<Freezer> {
        let name = format!("af-test-{}-{name}", std::process::id());
        let mounts = cgroup_mounts();
        let v2 = mounts.iter().filter(|(fs, _, _)| fs == "cgroup2").map(|(_, _, dir)| (Version::V2, dir));
        let v1 = mounts
            .iter()
            .filter(|(fs, options, _)| fs == "cgroup" && options.split(',').any(|o| o == "freezer"))
            .map(|(_, _, dir)| (Version::V1, dir));
        v2.chain(v1).find_map(|(version, mount)| {
            let dir = mount.join(&name);
            std::fs::create_dir(&dir).ok()?;
            let freezer = Freezer { version, mount: mount.clone(), dir, moved: Vec::new() };
            // A v2 root without the freezer (before Linux 5.2) has no cgroup.freeze.
            freezer.state_file().exists().then_some(freezer)
        })
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join(match self.version {
            Version::V2 => "cgroup.freeze",
            Version::V1 => "freezer.state",
        })
    }

    /// Moves a process (all its threads) in and freezes the cgroup.
    #[track_caller]
    pub fn freeze(&mut self, pid: u32) {
        let from = self.cgroup_of(pid).unwrap_or_else(|| panic!("the cgroup of pid {pid} is unknown"));
        write(&self.dir.join("cgroup.procs"), &pid.to_string());
        self.moved.push((pid, from));
        write(&self.state_file(), if self.version == Version::V2 { "1" } else { "FROZEN" });
    }

    /// Thaws the cgroup.
    #[track_caller]
    pub fn thaw(&self) {
        write(&self.state_file(), if self.version == Version::V2 { "0" } else { "THAWED" });
    }

    /// The cgroup of `pid` in this freezer's hierarchy, from /proc/PID/cgroup
    /// (`ID:CONTROLLERS:PATH`: v2's line is `0::PATH`).
    fn cgroup_of(&self, pid: u32) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        text.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let ours = match self.version {
                Version::V2 => id == "0" && controllers.is_empty(),
                Version::V1 => controllers.split(',').any(|c| c == "freezer"),
            };
            ours.then(|| path.to_owned())
        })
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        let _ = std::fs::write(self.state_file(), if self.version == Version::V2 { "0" } else { "THAWED" });
        for (pid, from) in &self.moved {
            let _ = std::fs::write(self.mount.join(from.trim_start_matches('/')).join("cgroup.procs"), pid.to_string());
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The cgroup hierarchies mounted here: (file system type, super options, mount point), from
/// /proc/self/mountinfo (`ID PARENT DEV ROOT MOUNTPOINT OPTIONS [TAGS] - FSTYPE SOURCE SUPEROPTIONS`).
fn cgroup_mounts() -> Vec<(String, String, PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mount = before.split(' ').nth(4)?;
            let mut after = after.split(' ');
            let fs = after.next()?;
            let options = after.nth(1)?;
            fs.starts_with("cgroup").then(|| (fs.to_owned(), options.to_owned(), PathBuf::from(mount)))
        })
        .collect()
}

#[track_caller]
fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("cannot write {value} to {}: {e}", path.display()));
}
