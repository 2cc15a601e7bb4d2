//! The supervision loop: one thread polling the signal pipe and the control pipe, with a deadline
//! for the next heartbeat and for the SIGKILL of a stop in progress.

use crate::cadence::{BUSY_CPU_PERCENT, Cadence};
use crate::limits::Limits;
use crate::tasks::{Ended, Tasks};
use crate::tree::Usage;
use af_ops::procfs;
use af_spool::atomic;
use af_spool::control::{Envelope, Reply, Request};
use af_spool::lock::Lock;
use af_spool::record::{AgentConfig, AgentType, Event, Health, Heartbeat, Status};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, ExitCode, Spool, eventlog};
use anyhow::Context;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the agent's process ended.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Code(i32),
    Signal(i32),
}

struct StopPlan {
    deadline: Instant,
    killed: bool,
}

struct Signals {
    pipe: UnixStream,
    term: Arc<AtomicBool>,
    /// SIGHUP: the pane went away (the tmux server died, or the session was killed), not a request.
    hangup: Arc<AtomicBool>,
    child: Arc<AtomicBool>,
}

struct Supervisor<'a> {
    spool: &'a Spool,
    id: &'a AgentId,
    /// The start this supervisor serves: its writes count only while it is the agent's current.
    generation: u64,
    config: AgentConfig,
    limits: Limits,
    leader: Option<u32>,
    exit: Option<Exit>,
    stop: Option<StopPlan>,
    stop_requested: bool,
    /// Why the pane hung up (SIGHUP) when that was a crash (the tmux server died): the agent then
    /// ends failed, not stopped.
    hangup: Option<String>,
    /// The tmux server this supervisor runs under (pid, start time), found at start.
    server: Option<(u32, u64)>,
    paused: bool,
    started: Instant,
    usage: Usage,
    /// The heartbeat file, kept open and rewritten in place; opened at the first beat.
    beats: Option<af_spool::heartbeat::Writer>,
    cadence: Cadence,
    next_beat: Instant,
    /// The agent has memory or CPU limits: af-health checks them against every beat's figures.
    limited: bool,
    control: File,
    _control_writer: File,
    control_buf: Vec<u8>,
    tasks: Option<Tasks>,
    /// The driver of a claude-code or codex agent's CLI.
    driver: Option<Box<dyn crate::driver::AgentDriver>>,
    /// Why the agent crashed, when its driver said (an interactive CLI that ended before its
    /// prompt).
    crash: Option<String>,
}

/// Supervises the agent until it ends; returns 0, or 1 when it failed.
pub fn run(spool: &Spool, id: &AgentId, heartbeat: Cadence) -> anyhow::Result<ExitCode> {
    crate::hold::point(spool, id, "before-lock");
    let Some(_wrap_lock) = Lock::try_exclusive_patiently(&spool.wrap_lock_path(id), Duration::from_secs(1))? else {
        return Err(Error::Conflict(format!("agent '{id}' already has a supervisor")).into());
    };
    let generation = claim(spool, id)?;
    let result = supervise(spool, id, heartbeat, generation);
    if let Err(e) = &result {
        // Leave the truth behind even when supervision itself broke (unless a newer start or
        // stop has decided since: then the truth is theirs).
        let reason = format!("supervisor error: {e:#}");
        let _ = spool.update_state_fenced(id, generation, |s| {
            s.status = Status::Failed;
            s.reason = Some(reason.clone());
            s.wrap_pid = None;
            s.stopped_at = Some(Timestamp::now());
        });
        eventlog::record(spool, Event::new("agent.failed", Some(id), serde_json::json!({"reason": reason})));
    }
    result
}

/// Why a hangup is a failure, if it is one: the tmux server died. A session killed by a person
/// (`tmux kill-session`), or a SIGHUP sent by hand, is a stop as before; a dead server is a crash,
/// so af-health's ladder starts the agent again. The server's own process tells (a socket may
/// answer for a new server already, one the ladder started while this supervisor was slow to take
/// its hangup). A killed server hangs up its panes as it exits, while it closes its descriptors:
/// by then the kernel marks it exiting (a server of 1,000 sessions took longer than 200 ms to
/// become a zombie, and af-wraps that waited for that took their hangup for a stop).
/// Without a tmux server above it (af-wrap run by hand), whether one answers on its socket.
fn hangup_failure(spool: &Spool, id: &AgentId, server: Option<(u32, u64)>) -> Option<String> {
    if let Some((pid, start)) = server {
        let deadline = Instant::now() + Duration::from_millis(200);
        while af_ops::procfs::same_process_staying(pid, start) {
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        return Some("the tmux server died".into());
    }
    match af_ops::shard::own(spool, id).server_running() {
        Ok(false) => Some("the tmux server died".into()),
        Ok(true) => None,
        Err(e) => Some(format!("its terminal hung up and tmux does not answer: {e}")),
    }
}

/// The tmux server this process runs under: its nearest ancestor named tmux (pid and start time);
/// None outside tmux.
fn tmux_server() -> Option<(u32, u64)> {
    let mut pid = std::os::unix::process::parent_id();
    for _ in 0..8 {
        let st = af_ops::procfs::stat(pid)?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.starts_with("tmux") {
            return Some((pid, st.start_ticks));
        }
        if st.ppid <= 1 {
            return None;
        }
        pid = st.ppid;
    }
    None
}

/// Claims the start this supervisor was launched for, under the agent's lock: the generation named
/// by `AF_START_GENERATION` (set by af-spawn start) while the agent is still `starting` in it.
/// A stop or a newer start since then wins: this supervisor changes nothing and exits (conflict).
/// Without the variable (af-wrap run by hand, or the seed's agent-wrapper.sh), it makes a start
/// of its own: a new generation.
fn claim(spool: &Spool, id: &AgentId) -> anyhow::Result<u64> {
    let wanted = std::env::var(af_ops::lifecycle::layout::GENERATION_VAR).ok();
    let wanted = match wanted {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            Error::Invalid(format!("{} must be a number, not {v:?}", af_ops::lifecycle::layout::GENERATION_VAR))
        })?),
        None => None,
    };
    let _lock = spool.lock_agent(id)?;
    let mut state = spool.read_state(id)?;
    match wanted {
        Some(g) if state.generation == g && state.status == Status::Starting => Ok(g),
        Some(g) => Err(Error::Conflict(format!(
            "agent '{id}': the start that launched this supervisor (generation {g}) was overtaken \
             (now {}, generation {}); not starting",
            state.status.as_str(),
            state.generation
        ))
        .into()),
        None => {
            state.generation += 1;
            state.updated_at = Timestamp::now();
            spool.write_state(id, &state)?;
            Ok(state.generation)
        }
    }
}

fn supervise(spool: &Spool, id: &AgentId, cadence: Cadence, generation: u64) -> anyhow::Result<ExitCode> {
    tracing::debug!("supervisor up");
    let config = spool.read_config(id)?;
    let signals = install_signals().context("installing signal handlers")?;
    nix::sys::prctl::set_child_subreaper(true).context("becoming a subreaper")?;
    let (control, control_writer) = open_control(spool, id)?;
    let limits = Limits::prepare(spool, &config);
    let rl = &config.resource_limits;
    let limited = rl.memory_bytes().ok().flatten().is_some() || rl.cpus().ok().flatten().is_some();
    let driver = crate::driver::open(spool, id, &config)?;
    let mut sup = Supervisor {
        spool,
        id,
        generation,
        config,
        limits,
        leader: None,
        exit: None,
        stop: None,
        stop_requested: false,
        hangup: None,
        server: tmux_server(),
        paused: false,
        started: Instant::now(),
        usage: Usage::new(),
        beats: None,
        cadence,
        next_beat: Instant::now(),
        limited,
        control,
        _control_writer: control_writer,
        control_buf: Vec::new(),
        tasks: None,
        driver,
        crash: None,
    };
    let at_once = sup.driver.as_ref().is_none_or(|d| d.starts_at_once());
    let started = crate::setup::run_once(spool, id, &sup.config, &signals.term)
        .and_then(|()| if at_once { sup.spawn() } else { Ok(()) });
    let outcome = match started {
        Err(reason) if sup.driver.is_some() => {
            // A driven agent stays up without its CLI: tasks are answered with the reason.
            if let Some(d) = sup.driver.as_mut() {
                d.spawn_failed(reason);
            }
            sup.mark_running()?;
            sup.run_loop(&signals)
        }
        Ok(()) => {
            tracing::debug!(pid = sup.leader, "agent process spawned");
            sup.next_beat = Instant::now() + sup.cadence.first();
            sup.mark_running()?;
            sup.run_loop(&signals)
        }
        Err(reason) => Ok(Some(reason)),
    };
    let failed_to_start = match outcome {
        Ok(reason) => reason,
        Err(e) => Some(format!("supervisor error: {e:#}")),
    };
    sup.finish(failed_to_start)
}

fn install_signals() -> std::io::Result<Signals> {
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    let term = Arc::new(AtomicBool::new(false));
    let hangup = Arc::new(AtomicBool::new(false));
    let child = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&term))?;
        signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))?;
    signal_hook::flag::register(signal_hook::consts::SIGCHLD, Arc::clone(&child))?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, write)?;
    Ok(Signals { pipe: read, term, hangup, child })
}

/// Makes the control pipe: created under a hidden name and renamed over any stale one, opened for
/// reading without blocking, with our own writer so it never reads end-of-file.
fn open_control(spool: &Spool, id: &AgentId) -> anyhow::Result<(File, File)> {
    let path = spool.control_path(id);
    let dir = spool.agent_dir(id);
    // Made and renamed within the agent's directory, reached without following a symlink.
    let dirfd = af_spool::beneath::open_dir(&dir)?;
    let name = path.file_name().context("the control pipe's path names no file")?;
    let hidden_name = atomic::unique_name("control");
    let hidden = dir.join(&hidden_name);
    nix::unistd::mkfifoat(
        Some(dirfd.as_raw_fd()),
        hidden_name.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("creating named pipe {}", hidden.display()))?;
    nix::fcntl::renameat(Some(dirfd.as_raw_fd()), hidden_name.as_str(), Some(dirfd.as_raw_fd()), name)
        .with_context(|| format!("renaming named pipe to {}", path.display()))?;
    // Only the named pipe we made, never through a symlink (see af_spool::beneath).
    let open = |write: bool| {
        af_spool::beneath::open_fifo(&path, write).with_context(|| format!("opening control pipe {}", path.display()))
    };
    let reader = open(false)?;
    Ok((reader, open(true)?))
}

impl Supervisor<'_> {
    /// Starts the agent's process, if its type runs one. Err is the reason it could not.
    fn spawn(&mut self) -> Result<(), String> {
        let argv: Vec<String> = match (&self.config.command, self.config.kind) {
            (_, _) if self.driver.is_some() => self.driver.as_ref().map(|d| d.argv()).unwrap_or_default(),
            (Some(cmd), _) => cmd.clone(),
            (None, AgentType::ClaudeCode | AgentType::Codex) => {
                vec![crate::driver::default_program(self.config.kind).unwrap_or_default().into()]
            }
            // A worker without a command takes tasks from its inbox and its project's pool.
            (None, AgentType::Worker) => {
                let tasks =
                    Tasks::new(self.spool, self.id, &self.config).map_err(|e| format!("cannot take tasks: {e}"))?;
                self.tasks = Some(tasks);
                say(&format!(
                    "agent {} (worker) takes tasks from its inbox and pool:{}",
                    self.id, self.config.project_id
                ));
                return Ok(());
            }
            // A monitor runs the health loop over every agent, unless its config names a
            // project of its own (a projectId other than the default, or "*").
            (None, AgentType::Monitor) => {
                let health = af_cli::sibling_program("af-health").display().to_string();
                let mut argv = vec![health, "watch".into()];
                if !matches!(self.config.project_id.as_str(), "*" | af_spool::record::DEFAULT_PROJECT) {
                    argv.extend(["--project".into(), self.config.project_id.clone()]);
                }
                argv
            }
        };
        let mut cmd = crate::tasks::agent_command(self.spool, self.id, &self.config, &argv, &self.limits)?;
        if let Some(d) = &self.driver {
            cmd.envs(d.env());
            if !d.is_interactive() {
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
            }
        }
        match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id();
                if let (Some(d), Some(stdin), Some(stdout)) =
                    (self.driver.as_mut(), child.stdin.take(), child.stdout.take())
                {
                    d.attached(pid, stdin, stdout, child.stderr.take());
                } else if let Some(d) = self.driver.as_mut().filter(|d| d.is_interactive()) {
                    d.attached_tty(pid);
                }
                // We reap with waitpid(-1) ourselves (orphans come to us as a subreaper too).
                drop(child);
                self.leader = Some(pid);
                say(&format!("agent {} ({}) runs {} as pid {pid}", self.id, self.config.kind.as_str(), argv.join(" ")));
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("program '{}' not found (is it installed and on PATH?)", argv[0]))
            }
            Err(e) => Err(format!("cannot run '{}': {e}", argv[0])),
        }
    }

    /// Lets the CLI's driver work, and starts its CLI again when a task needs it.
    fn drive_cli(&mut self) {
        let Some(d) = self.driver.as_mut().filter(|_| !self.paused) else { return };
        d.tick();
        if !(self.leader.is_none() && self.stop.is_none() && !self.paused && d.wants_cli()) {
            return;
        }
        match self.spawn() {
            Ok(()) => {
                let pid = self.leader;
                let pid_start = pid.and_then(procfs::stat).map(|s| s.start_ticks);
                let _ = self.spool.update_state_fenced(self.id, self.generation, |s| {
                    s.pid = pid;
                    s.pid_start = pid_start;
                });
            }
            Err(reason) => {
                if let Some(d) = self.driver.as_mut() {
                    d.spawn_failed(reason);
                }
            }
        }
        if let Some(d) = self.driver.as_mut() {
            d.tick();
        }
    }

    fn mark_running(&mut self) -> anyhow::Result<()> {
        let pid = self.leader;
        let pid_start = pid.and_then(procfs::stat).map(|s| s.start_ticks);
        let applied = self.limits.applied.clone();
        let now = Timestamp::now();
        // The first heartbeat exists before anyone hears "running".
        self.write_heartbeat();
        crate::hold::point(self.spool, self.id, "before-running");
        let written = self.spool.update_state_fenced(self.id, self.generation, |s| {
            s.status = Status::Running;
            s.health = Health::Unknown;
            s.pid = pid;
            s.pid_start = pid_start;
            s.wrap_pid = Some(std::process::id());
            s.started_at = Some(now);
            s.stopped_at = None;
            s.exit_code = None;
            s.exit_signal = None;
            s.reason = None;
            s.limits = applied;
        })?;
        if written.is_none() {
            // Stopped (or started anew) while we were coming up: what we started goes.
            kill_tree(self.leader, Signal::SIGKILL);
            return Err(Error::Conflict(format!(
                "agent '{}' was stopped while its supervisor came up; not running it",
                self.id
            ))
            .into());
        }
        eventlog::record(
            self.spool,
            Event::new("agent.running", Some(self.id), serde_json::json!({"pid": pid, "wrapPid": std::process::id()})),
        );
        tracing::debug!("running");
        Ok(())
    }

    /// Runs until the agent and every process of its tree are gone. Ok(None) on a normal end.
    fn run_loop(&mut self, signals: &Signals) -> anyhow::Result<Option<String>> {
        loop {
            if signals.hangup.swap(false, Ordering::Relaxed) && self.hangup.is_none() {
                self.hangup = hangup_failure(self.spool, self.id, self.server);
                tracing::warn!("hangup: {}", self.hangup.as_deref().unwrap_or("a stop"));
            }
            if signals.term.swap(false, Ordering::Relaxed) {
                self.begin_stop(false, Duration::from_secs(10));
            }
            if signals.child.swap(false, Ordering::Relaxed) || self.leader.is_some() {
                self.reap();
            }
            if let Some(stop) = &mut self.stop {
                if !stop.killed && Instant::now() >= stop.deadline {
                    stop.killed = true;
                    tracing::info!("grace period over: SIGKILL to the agent's tree");
                    kill_tree(self.leader, Signal::SIGKILL);
                }
            }
            if self.done() {
                return Ok(None);
            }
            self.drive_cli();
            if Instant::now() >= self.next_beat {
                self.write_heartbeat();
            }
            let mut wake = self.next_beat;
            if let Some(stop) = &self.stop {
                if !stop.killed {
                    wake = wake.min(stop.deadline);
                } else {
                    wake = wake.min(Instant::now() + Duration::from_millis(20));
                }
            }
            if let Some(t) = &self.tasks {
                wake = wake.min(t.next_wake());
            }
            if let Some(at) = self.driver.as_ref().and_then(|d| d.wake_at()) {
                wake = wake.min(at.max(Instant::now()));
            }
            let ms = wake.saturating_duration_since(Instant::now()).as_millis().clamp(1, 60_000) as u16;
            let mut fds = vec![
                PollFd::new(signals.pipe.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.control.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(t) = &self.tasks {
                fds.extend(t.fds().into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            }
            if let Some(d) = self.driver.as_ref().filter(|_| !self.paused) {
                fds.extend(d.fds().into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            }
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(anyhow::Error::from(e).context("polling")),
            }
            drop(fds);
            drain(&signals.pipe);
            if let Some(t) = &mut self.tasks {
                t.tick(self.paused, &self.limits);
            }
            for envelope in self.read_control() {
                self.handle(envelope);
            }
        }
    }

    /// Whether supervision is over: the agent's process ended and no descendant is left, or an
    /// idle agent was asked to stop.
    fn done(&self) -> bool {
        match self.leader {
            None => self.stop_requested && self.tasks.as_ref().is_none_or(Tasks::idle),
            Some(_) => self.exit.is_some() && matches!(waitpid(None, Some(WaitPidFlag::WNOHANG)), Err(Errno::ECHILD)),
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.on_exit(pid, Exit::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn on_exit(&mut self, pid: Pid, exit: Exit) {
        let ended = match exit {
            Exit::Code(c) => Ended::Code(c),
            Exit::Signal(s) => Ended::Signal(s),
        };
        if self.tasks.as_mut().is_some_and(|t| t.on_exit(pid.as_raw() as u32, ended)) {
            return;
        }
        if self.leader != Some(pid.as_raw() as u32) {
            return;
        }
        tracing::info!(?exit, "agent process ended");
        if let Some(d) = self.driver.as_mut().filter(|_| !self.stop_requested) {
            // The CLI is not the agent's life: it is started again (resuming its session) when a
            // task needs it, and whatever it left behind goes now.
            let how = match exit {
                Exit::Code(c) => format!("exited with code {c}"),
                Exit::Signal(s) => format!("was killed by signal {s}"),
            };
            kill_tree(self.leader, Signal::SIGKILL);
            let leader = self.leader.take();
            // The pid goes from the state before the task it failed is answered: whoever waits
            // for the answer finds no process.
            let _ = self.spool.update_state_fenced(self.id, self.generation, |s| {
                s.pid = None;
                s.pid_start = None;
            });
            match d.cli_exited(&how) {
                None => return,
                // It never reached its prompt: the agent ends, failed, as any agent whose process
                // crashed (af-health's ladder decides on a restart, with its backoff and limit).
                Some(reason) => {
                    self.leader = leader;
                    self.crash = Some(reason);
                }
            }
        }
        self.exit = Some(exit);
        if self.stop.is_none() {
            // The leader is gone; whatever it left behind goes too, gently first.
            self.stop = Some(StopPlan { deadline: Instant::now() + Duration::from_secs(2), killed: false });
            kill_tree(self.leader, Signal::SIGTERM);
            kill_tree(self.leader, Signal::SIGCONT);
        }
    }

    fn begin_stop(&mut self, force: bool, grace: Duration) {
        self.stop_requested = true;
        if let Some(t) = &mut self.tasks {
            t.stop();
        }
        if let Some(d) = self.driver.as_mut() {
            d.stop();
        }
        if self.stop.as_ref().is_some_and(|s| s.killed) {
            return;
        }
        let deadline = Instant::now() + if force { Duration::ZERO } else { grace };
        let earlier = self.stop.as_ref().is_none_or(|s| deadline < s.deadline);
        if earlier {
            self.stop = Some(StopPlan { deadline, killed: false });
        }
        if self.leader.is_some() && self.exit.is_none() {
            self.set_status(Status::Stopping, None);
            if force {
                kill_tree(self.leader, Signal::SIGKILL);
                if let Some(s) = &mut self.stop {
                    s.killed = true;
                }
            } else {
                kill_tree(self.leader, Signal::SIGTERM);
                kill_tree(self.leader, Signal::SIGCONT);
            }
        }
    }

    fn set_status(&mut self, status: Status, kind: Option<&str>) {
        if let Err(e) = self.spool.update_state_fenced(self.id, self.generation, |s| s.status = status) {
            tracing::warn!("cannot write state: {e}");
        }
        if let Some(kind) = kind {
            eventlog::record(self.spool, Event::new(kind, Some(self.id), serde_json::Value::Null));
        }
    }

    fn handle(&mut self, envelope: Envelope) {
        tracing::debug!(?envelope.request, "control request");
        let mut error = None;
        let status = match envelope.request {
            Request::Ping => {
                if self.paused {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            Request::Stop { force, timeout_ms } => {
                self.begin_stop(force, Duration::from_millis(timeout_ms));
                Status::Stopping
            }
            Request::Pause => {
                if self.stop.is_some() {
                    error = Some("the agent is stopping".to_owned());
                    Status::Stopping
                } else {
                    if !self.paused {
                        kill_tree(self.leader, Signal::SIGSTOP);
                        self.paused = true;
                        self.set_status(Status::Paused, Some("agent.paused"));
                    }
                    Status::Paused
                }
            }
            Request::Interrupt => match self.driver.as_mut().map(|d| d.interrupt()) {
                Some(Ok(())) => Status::Running,
                Some(Err(e)) => {
                    error = Some(e);
                    Status::Running
                }
                None => {
                    error = Some("only claude-code and codex agents have turns to interrupt".into());
                    Status::Running
                }
            },
            Request::Resume => {
                if self.stop.is_some() {
                    error = Some("the agent is stopping".to_owned());
                    Status::Stopping
                } else {
                    if self.paused {
                        kill_tree(self.leader, Signal::SIGCONT);
                        self.paused = false;
                        self.set_status(Status::Running, Some("agent.resumed"));
                    }
                    Status::Running
                }
            }
        };
        if let Some(path) = envelope.reply {
            let reply = Reply { id: envelope.id, ok: error.is_none(), error, status };
            self.reply(&path, &reply);
        }
    }

    /// Writes a reply to the asker's pipe: only a named pipe inside the spool, never blocking.
    fn reply(&self, path: &std::path::Path, reply: &Reply) {
        let inside = path.starts_with(self.spool.root()) && !path.components().any(|c| c.as_os_str() == "..");
        let is_fifo = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo());
        if !inside || !is_fifo {
            tracing::warn!(path = %path.display(), "refusing to reply to a path that is not a pipe in the spool");
            return;
        }
        let Ok(mut line) = serde_json::to_vec(reply) else { return };
        line.push(b'\n');
        // Checked again on the descriptor itself: the lstat above can be raced.
        let opened = af_spool::beneath::open_fifo(path, true);
        if let Ok(mut pipe) = opened {
            let _ = pipe.write_all(&line);
        }
    }

    fn read_control(&mut self) -> Vec<Envelope> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.control.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.control_buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let mut out = Vec::new();
        while let Some(pos) = self.control_buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.control_buf.drain(..=pos).collect();
            match serde_json::from_slice::<Envelope>(&line) {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!("ignoring a malformed control request: {e}"),
            }
        }
        if self.control_buf.len() > 64 * 1024 {
            self.control_buf.clear();
        }
        out
    }

    /// Writes a beat, and sets when the next one is due (see [`Cadence`]).
    fn write_heartbeat(&mut self) {
        let me = std::process::id();
        let watched = self.spool.watched_within(WATCH_LEASE);
        let leader = self.leader.filter(|_| self.exit.is_none());
        // The whole tree while the agent is not settled into idling (its tree may still change).
        let whole = self.limited || watched || !self.cadence.settled();
        let reading = self.usage.read(me, leader, whole);
        let tasks_running =
            self.tasks.as_ref().map_or(0, |t| t.counts().0) + self.driver.as_ref().map_or(0, |d| d.counts().0);
        let busy = watched || tasks_running > 0 || self.stop.is_some() || reading.cpu_percent >= BUSY_CPU_PERCENT;
        let interval = self.cadence.next(busy);
        self.next_beat = Instant::now() + interval;
        let mut beat = Heartbeat {
            seq: 0,
            agent: self.id.clone(),
            time: Timestamp::now(),
            wrap_pid: me,
            pid: leader,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            rss_bytes: reading.rss_bytes,
            cpu_percent: reading.cpu_percent,
            processes: reading.processes,
            tasks_running,
            tasks_done: self.tasks.as_ref().map_or(0, |t| t.counts().1)
                + self.driver.as_ref().map_or(0, |d| d.counts().1),
            interval_ms: Some(interval.as_millis() as u64),
            seq_end: 0,
        };
        let path = self.spool.heartbeat_path(self.id);
        let written = match &mut self.beats {
            Some(w) => w.write(&mut beat),
            None => af_spool::heartbeat::Writer::open(&path).and_then(|mut w| {
                let r = w.write(&mut beat);
                self.beats = Some(w);
                r
            }),
        };
        if let Err(e) = written {
            tracing::warn!("cannot write heartbeat: {e}");
        }
        af_spool::logfile::copy_truncate_if_larger(&self.spool.output_log_path(self.id), output_max_bytes());
    }

    /// Leaves the final state: stopped (by request, or a clean exit) or failed, with the reason.
    fn finish(mut self, failed_to_start: Option<String>) -> anyhow::Result<ExitCode> {
        if let Some(d) = self.driver.as_mut() {
            // What the CLI had not finished goes back to the inbox for the next run.
            d.release();
        }
        let oom = self.limits.oom_killed();
        let (status, reason) = match (&failed_to_start, self.exit) {
            (Some(reason), _) => (Status::Failed, reason.clone()),
            (None, _) if self.hangup.is_some() => (Status::Failed, self.hangup.clone().unwrap_or_default()),
            (None, _) if self.stop_requested => (Status::Stopped, "stopped by request".to_owned()),
            (None, Some(_)) if self.crash.is_some() => (Status::Failed, self.crash.clone().unwrap_or_default()),
            (None, None) => (Status::Stopped, "stopped".to_owned()),
            (None, Some(Exit::Code(0))) => (Status::Stopped, "exited with code 0".to_owned()),
            (None, Some(Exit::Code(c))) if oom => (
                Status::Failed,
                format!("exited with code {c}: its tree hit the memory limit ({})", self.limits.memory_text()),
            ),
            (None, Some(Exit::Signal(9))) if oom => {
                (Status::Failed, format!("killed by the memory limit ({})", self.limits.memory_text()))
            }
            (None, Some(Exit::Code(c))) => (Status::Failed, format!("exited with code {c}")),
            (None, Some(Exit::Signal(s))) => (Status::Failed, format!("killed by signal {s}")),
        };
        self.limits.cleanup();
        let _ = std::fs::remove_file(self.spool.control_path(self.id));
        let (code, signal) = match self.exit {
            Some(Exit::Code(c)) => (Some(c), None),
            Some(Exit::Signal(s)) => (None, Some(s)),
            None => (None, None),
        };
        let now = Timestamp::now();
        let text = reason.clone();
        self.spool.update_state_fenced(self.id, self.generation, |s| {
            s.status = status;
            s.health = Health::Unknown;
            s.pid = None;
            s.pid_start = None;
            s.wrap_pid = None;
            s.stopped_at = Some(now);
            s.exit_code = code;
            s.exit_signal = signal;
            s.reason = Some(text);
            if status == Status::Failed {
                s.failures += 1;
                s.consecutive_failures += 1;
            }
        })?;
        eventlog::record(
            self.spool,
            Event::new(
                "agent.exited",
                Some(self.id),
                serde_json::json!({"status": status, "exitCode": code, "signal": signal, "reason": reason}),
            ),
        );
        say(&format!("agent {} {}: {reason}", self.id, status.as_str()));
        Ok(if status == Status::Failed { ExitCode::Negative } else { ExitCode::Ok })
    }
}

/// How long a watcher's mark (`Spool::mark_watched`) keeps every agent beating at its busy pace.
pub const WATCH_LEASE: Duration = Duration::from_secs(30);

/// The most the captured pane output grows before it is rotated (`AF_OUTPUT_MAX_BYTES`, 8 MiB).
fn output_max_bytes() -> u64 {
    std::env::var("AF_OUTPUT_MAX_BYTES").ok().and_then(|v| af_spool::human::parse_size(&v).ok()).unwrap_or(8 << 20)
}

/// Sends `sig` to the agent's process group and to every other descendant of af-wrap.
fn kill_tree(leader: Option<u32>, sig: Signal) {
    if let Some(pid) = leader {
        let _ = killpg(Pid::from_raw(pid as i32), sig);
    }
    for p in procfs::descendants_of(std::process::id()) {
        let _ = kill(Pid::from_raw(p.pid as i32), sig);
    }
}

fn drain(pipe: &UnixStream) {
    let mut buf = [0u8; 256];
    let mut r = pipe;
    while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
}

/// One line for a person watching the tmux pane.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "af-wrap: {text}");
}
