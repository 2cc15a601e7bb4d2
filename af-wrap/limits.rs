//! Resource limits for the agent's process tree: memory and CPU through a cgroup wherever one is
//! writable (v2 `memory.max`/`cpu.max`, else v1 `memory.limit_in_bytes`/`cpu.cfs_quota_us`),
//! otherwise memory through RLIMIT_AS and CPU through CPU affinity. `AF_CGROUP=off` skips cgroups;
//! `AF_RLIMIT=off` skips RLIMIT_AS.

use af_spool::record::{AgentConfig, AppliedLimits};
use af_spool::{AgentId, Spool, human};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CPU_PERIOD_US: u64 = 100_000;

/// The limits prepared for one agent.
pub struct Limits {
    /// What is enforced, and how (for the state record).
    pub applied: AppliedLimits,
    memory: Option<u64>,
    procs_files: Vec<CString>,
    rlimit_as: Option<u64>,
    affinity: Option<usize>,
    oom_files: Vec<PathBuf>,
}

/// A cgroup directory name unique to this spool and agent (tests run many spools at once).
fn cgroup_name(spool: &Spool, id: &AgentId) -> String {
    // FNV-1a of the spool root.
    let mut h: u32 = 0x811c_9dc5;
    for b in spool.root().as_os_str().as_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}-{id}")
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

fn procs_file(dir: &Path) -> Option<CString> {
    CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()
}

impl Limits {
    /// Prepares the limits of `config`: creates and configures cgroups where it can.
    pub fn prepare(spool: &Spool, config: &AgentConfig) -> Limits {
        let memory = config.resource_limits.memory_bytes().ok().flatten();
        let cpus = config.resource_limits.cpus().ok().flatten();
        let mut limits = Limits {
            applied: AppliedLimits { memory: "none".into(), cpu: "none".into(), cgroups: Vec::new() },
            memory,
            procs_files: Vec::new(),
            rlimit_as: None,
            affinity: None,
            oom_files: Vec::new(),
        };
        let cgroups_allowed = std::env::var("AF_CGROUP").map_or(true, |v| v != "off");
        let root = Path::new(CGROUP_ROOT);
        if cgroups_allowed && (memory.is_some() || cpus.is_some()) {
            if root.join("cgroup.controllers").exists() {
                limits.try_v2(spool, &config.id, memory, cpus);
            } else {
                limits.try_v1(spool, &config.id, memory, cpus);
            }
        }
        // AF_RLIMIT=off leaves memory unenforced without a cgroup (af-health still alerts on it).
        let rlimit_allowed = std::env::var("AF_RLIMIT").map_or(true, |v| v != "off");
        if let (Some(bytes), "none", true) = (memory, limits.applied.memory.as_str(), rlimit_allowed) {
            limits.rlimit_as = Some(bytes);
            limits.applied.memory = "rlimit-as".into();
        }
        if let (Some(n), "none") = (cpus, limits.applied.cpu.as_str()) {
            limits.affinity = Some((n.ceil() as usize).max(1));
            limits.applied.cpu = "affinity".into();
        }
        limits
    }

    fn try_v2(&mut self, spool: &Spool, id: &AgentId, memory: Option<u64>, cpus: Option<f64>) {
        let root = Path::new(CGROUP_ROOT);
        let parent = root.join("agentflow");
        let dir = parent.join(cgroup_name(spool, id));
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| write(&root.join("cgroup.subtree_control"), "+memory +cpu"))
            .and_then(|()| write(&parent.join("cgroup.subtree_control"), "+memory +cpu"));
        if let Err(e) = made {
            tracing::info!("cgroup v2 not writable ({e}); falling back");
            let _ = std::fs::remove_dir(&dir);
            return;
        }
        if let Some(bytes) = memory {
            if write(&dir.join("memory.max"), &bytes.to_string()).is_ok() {
                self.applied.memory = "cgroup-v2".into();
                self.oom_files.push(dir.join("memory.events"));
            }
        }
        if let Some(n) = cpus {
            let quota = (n * CPU_PERIOD_US as f64) as u64;
            if write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}")).is_ok() {
                self.applied.cpu = "cgroup-v2".into();
            }
        }
        self.procs_files.extend(procs_file(&dir));
        self.applied.cgroups.push(dir);
    }

    fn try_v1(&mut self, spool: &Spool, id: &AgentId, memory: Option<u64>, cpus: Option<f64>) {
        let name = cgroup_name(spool, id);
        let root = Path::new(CGROUP_ROOT);
        if let Some(bytes) = memory {
            let dir = root.join("memory/agentflow").join(&name);
            let ok = std::fs::create_dir_all(&dir)
                .and_then(|()| write(&dir.join("memory.limit_in_bytes"), &bytes.to_string()));
            match ok {
                Ok(()) => {
                    self.applied.memory = "cgroup-v1".into();
                    self.oom_files.push(dir.join("memory.oom_control"));
                    self.procs_files.extend(procs_file(&dir));
                    self.applied.cgroups.push(dir);
                }
                Err(e) => {
                    tracing::info!("cgroup v1 memory not writable ({e}); falling back");
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        if let Some(n) = cpus {
            let dir = root.join("cpu/agentflow").join(&name);
            let quota = ((n * CPU_PERIOD_US as f64) as u64).max(1000);
            let ok = std::fs::create_dir_all(&dir)
                .and_then(|()| write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string()))
                .and_then(|()| write(&dir.join("cpu.cfs_quota_us"), &quota.to_string()));
            match ok {
                Ok(()) => {
                    self.applied.cpu = "cgroup-v1".into();
                    self.procs_files.extend(procs_file(&dir));
                    self.applied.cgroups.push(dir);
                }
                Err(e) => {
                    tracing::info!("cgroup v1 cpu not writable ({e}); falling back");
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
    }

    /// Makes `cmd`'s process enter the cgroups and take the rlimit and affinity before it execs,
    /// and die with its supervisor.
    pub fn apply_to(&self, cmd: &mut Command) {
        let procs = self.procs_files.clone();
        let rlimit = self.rlimit_as;
        let affinity = self.affinity;
        let nofile = af_ops::process::user_nofile();
        // SAFETY: the closure runs between fork and exec; it only makes system calls (open, write,
        // close, getrlimit, setrlimit, sched_setaffinity, prctl) on data prepared before the fork, and
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                use nix::libc;
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd >= 0 {
                        libc::write(fd, b"0".as_ptr().cast(), 1);
                        libc::close(fd);
                    }
                }
                if let Some(bytes) = rlimit {
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, bytes, bytes)?;
                }
                // The agent gets the user's own soft descriptor limit back (AgentFlow raised its own).
                if let Some(soft) = nofile {
                    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, soft.min(hard), hard)?;
                }
                if let Some(n) = affinity {
                    let mut set = nix::sched::CpuSet::new();
                    let cores = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))?;
                    let mut taken = 0;
                    for cpu in 0..nix::sched::CpuSet::count() {
                        if taken < n && cores.is_set(cpu).unwrap_or(false) {
                            set.set(cpu)?;
                            taken += 1;
                        }
                    }
                    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
                }
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                Ok(())
            });
        }
    }

    /// Whether the memory limit killed something (per the cgroup's OOM counters).
    pub fn oom_killed(&self) -> bool {
        self.oom_files.iter().any(|f| {
            std::fs::read_to_string(f)
                .is_ok_and(|t| t.lines().any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0")))
        })
    }

    /// The memory limit, for messages.
    pub fn memory_text(&self) -> String {
        self.memory.map(human::format_size).unwrap_or_else(|| "none".into())
    }

    /// Removes the agent's cgroups (they must be empty by now; retried briefly while the kernel
    /// finishes with the last process).
    pub fn cleanup(&self) {
        af_ops::procfs::remove_cgroups(&self.applied.cgroups);
    }
}
