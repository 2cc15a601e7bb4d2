//! What every benchmark shares: timing, percentiles, a private tmux server and spool, and the
//! table row each figure is printed as (beside the physical baseline measured in the same run).
//! Included by each benchmark with `#[path = "common.rs"] mod common;`.

#![allow(dead_code)]

use af_ops::procfs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One printed figure.
pub struct Row<'a> {
    /// The capability measured.
    pub what: &'a str,
    /// Its figure.
    pub value: f64,
    /// The figure's unit (`agents/s`, `ms`, `MB`…).
    pub unit: &'a str,
    /// The physical baseline measured in the same run, and its figure (same unit).
    pub baseline: Option<(&'a str, f64)>,
    /// Whether a larger figure is better (rates) or a smaller one (latencies, sizes).
    pub higher_is_better: bool,
    /// The figure the issue asks for, in words.
    pub target: &'a str,
}

/// Prints the header of the table (once per benchmark program).
pub fn header(bench: &str) {
    println!("\n== {bench}");
    println!(
        "{:<46} {:>12} {:<9} {:<34} {:>12} {:>8}  target",
        "figure", "value", "unit", "baseline (same run)", "baseline", "ratio"
    );
}

/// Prints one row; the ratio says how many times worse than the baseline (1.0 = as fast).
pub fn row(r: Row) {
    let (bname, bval, ratio) = match r.baseline {
        Some((name, v)) if v > 0.0 && r.value > 0.0 => {
            let ratio = if r.higher_is_better { v / r.value } else { r.value / v };
            (name.to_owned(), format!("{v:.2}"), format!("{ratio:.2}x"))
        }
        _ => ("-".into(), "-".into(), "-".into()),
    };
    println!("{:<46} {:>12.2} {:<9} {:<34} {:>12} {:>8}  {}", r.what, r.value, r.unit, bname, bval, ratio, r.target);
}

/// The directory holding the release binaries (next to this example's own directory).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target/release").to_path_buf()
}

/// A private world for a benchmark: spool, tmux server, cleaned up on drop.
pub struct World {
    /// `AF_HOME`.
    pub home: PathBuf,
    /// `AF_TMUX_SOCKET`.
    pub socket: String,
    root: PathBuf,
}

impl World {
    /// A fresh world named after the benchmark.
    pub fn new(name: &str) -> World {
        let root = std::env::temp_dir().join(format!("af-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("work")).expect("bench dir");
        let w = World { home: root.join("home"), socket: format!("afb-{name}-{}", std::process::id()), root };
        register(&w);
        w
    }

    /// A command for one of AgentFlow's programs in this world.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(bin_dir().join(program));
        // One tmux server per world, whatever its size: the benches measure that server (its
        // pid, RSS and descriptors) and their cleanup kills it.
        c.env("AF_HOME", &self.home)
            .env("AF_TMUX_SOCKET", &self.socket)
            .env("AF_TMUX_SESSIONS_PER_SERVER", "0")
            .env_remove("TMUX")
            .current_dir(self.root.join("work"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        c
    }

    /// Runs a program, panicking if it fails.
    pub fn run(&self, program: &str, args: &[&str]) {
        let st = self.cmd(program).args(args).status().expect("running a program");
        assert!(st.success(), "{program} {args:?} failed");
    }

    /// Runs a program with `input` on its stdin, panicking if it fails.
    pub fn run_with_input(&self, program: &str, args: &[&str], input: &str) {
        use std::io::Write;
        let mut child = self.cmd(program).args(args).stdin(Stdio::piped()).spawn().expect("running a program");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing its input");
        assert!(child.wait().expect("waiting for a program").success(), "{program} {args:?} failed");
    }

    /// A tmux command against this world's server.
    pub fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.socket).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    /// The live processes of this world: every one carrying its AF_HOME (its af-wraps, their
    /// children).
    pub fn pids(&self) -> Vec<u32> {
        pids_with(&[af_home(&self.home)])
    }

    /// A scratch path in this world.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        WORLDS.lock().unwrap_or_else(|e| e.into_inner()).retain(|w| w.0 != self.socket);
        stop(&self.socket, &self.home);
        // Removing thousands of files now would bill the next measurement: ext4 skips inodes
        // freed in the last 30 s when it allocates new ones. The files go when the program ends.
        LEFT.lock().unwrap_or_else(|e| e.into_inner()).push(self.root.clone());
    }
}

/// World directories to remove at exit.
static LEFT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_left() {
    let roots = std::mem::take(&mut *LEFT.lock().unwrap_or_else(|e| e.into_inner()));
    // scripts/bench removes its whole temporary directory once every benchmark has run, so that
    // one benchmark's cleanup does not bill the next either.
    if std::env::var_os("AF_BENCH_LEAVE_FILES").is_some() {
        return;
    }
    for root in roots {
        let _ = std::fs::remove_dir_all(root);
    }
}

/// The worlds alive now, for the panic hook: release builds abort on panic, so no Drop runs.
static WORLDS: std::sync::Mutex<Vec<(String, PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());

fn register(w: &World) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            remove_worlds();
        }));
        // SAFETY: registers a plain function with no captured state, once.
        unsafe { nix::libc::atexit(remove_left) };
        // Interrupted (Ctrl-C, a timeout's SIGTERM, a closed terminal): the worlds go too, with
        // their tmux servers, agents and pm2 fleets, rather than living on as orphans.
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    eprintln!("interrupted (signal {sig}): removing the benchmark's worlds");
                    remove_worlds();
                    std::process::exit(128 + sig);
                }
            });
        }
    });
    WORLDS.lock().unwrap_or_else(|e| e.into_inner()).push((w.socket.clone(), w.home.clone(), w.root.clone()));
}

/// Processes a benchmark started outside any world's spool (a redis-server, which rewrites its
/// environment, so no AF_HOME finds it), killed with the worlds.
static STRAYS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Has `pid` killed with the worlds when the benchmark is interrupted or panics (its caller
/// still kills it at its normal end).
pub fn kill_with_worlds(pid: u32) {
    STRAYS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Stops and removes every world alive now (a panic or a signal ends the program without their
/// Drop), and the ones dropped already.
fn remove_worlds() {
    for pid in std::mem::take(&mut *STRAYS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let worlds = std::mem::take(&mut *WORLDS.lock().unwrap_or_else(|e| e.into_inner()));
    for (socket, home, root) in worlds {
        stop(&socket, &home);
        let _ = std::fs::remove_dir_all(root);
    }
    remove_left();
}

/// Kills a world's tmux server and every process of its spool (and of a pm2 fleet in it, at
/// `<root>/pm2`), waits until they are gone, and removes its socket.
fn stop(socket: &str, home: &Path) {
    let _ = Command::new("tmux").args(["-L", socket, "kill-server"]).stderr(Stdio::null()).status();
    // Its agents and programs carry its AF_HOME; a pm2 fleet it started, its PM2_HOME.
    let pm2 = format!("PM2_HOME={}", home.with_file_name("pm2").display());
    let killed = pids_with(&[af_home(home), pm2]);
    for &pid in &killed {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    // The next measurement starts on a quiet machine: every process of this world is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while killed.iter().any(|p| Path::new(&format!("/proc/{p}")).exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(af_ops::tmux::socket_path(socket));
}

/// The `AF_HOME=` entry of a world's processes.
fn af_home(home: &Path) -> String {
    format!("AF_HOME={}", home.display())
}

/// The live processes (not this one) whose environment holds one of `entries`.
fn pids_with(entries: &[String]) -> Vec<u32> {
    let me = std::process::id();
    procfs::all()
        .into_iter()
        .filter(|p| p.pid != me && p.state != 'Z' && entries.iter().any(|e| procfs::environ_has(p.pid, e)))
        .map(|p| p.pid)
        .collect()
}

/// Times `f`.
pub fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// The p-th percentile (0–100) of durations, in milliseconds.
pub fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    if samples.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

/// A count from the environment (`AF_BENCH_N`-style), else the default.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One fork/exec of `/bin/true`, waited for: the physical floor of any one-shot program.
pub fn fork_exec() {
    let _ = Command::new("/bin/true").stdin(Stdio::null()).stdout(Stdio::null()).status();
}

/// The physical baseline for one-shot programs: fork/exec of `/bin/true`, median in ms.
pub fn fork_exec_ms(n: usize) -> f64 {
    let mut s: Vec<Duration> = (0..n).map(|_| time(fork_exec)).collect();
    percentile_ms(&mut s, 50.0)
}

/// Times `run(i)` for i in 0..n, each right after one fork/exec of `/bin/true`, so that the
/// figure and its baseline see the same machine even while other work comes and goes. Returns
/// (the baseline's samples, the samples of `run`).
pub fn beside_fork_exec(n: usize, mut run: impl FnMut(usize)) -> (Vec<Duration>, Vec<Duration>) {
    let (mut base, mut samples) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        base.push(time(fork_exec));
        samples.push(time(|| run(i)));
    }
    (base, samples)
}
