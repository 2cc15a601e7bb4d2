//! Reading processes from /proc: state, parentage, process groups, memory and CPU. Cheap enough to
//! run every few seconds for hundreds of agents (no allocation-heavy crates).

use std::path::Path;

/// What /proc/<pid>/stat says of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStat {
    /// The process id.
    pub pid: u32,
    /// The state letter: R, S, D, T, t, Z, X…
    pub state: char,
    /// The parent's pid.
    pub ppid: u32,
    /// The process group.
    pub pgrp: u32,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time, in clock ticks since boot.
    pub start_ticks: u64,
    /// Resident set size, in bytes.
    pub rss_bytes: u64,
    /// The kernel's process flags (`PF_*`).
    pub flags: u64,
}

/// The kernel's flag of a process on its way out (`PF_EXITING`): set as its exit begins, before
/// it closes its descriptors.
const PF_EXITING: u64 = 0x4;

/// Reads one process's stat; `None` when it is gone.
pub fn stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Parses the text of /proc/<pid>/stat (for callers that read it their own way).
pub fn parse_stat(pid: u32, text: &str) -> Option<ProcStat> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: num(1)? as u32,
        pgrp: num(2)? as u32,
        cpu_ticks: num(11)? + num(12)?,
        start_ticks: num(19)?,
        rss_bytes: num(21)?.saturating_mul(page_size()),
        flags: num(6)?,
    })
}

/// Whether `pid` is the process that started at `start_ticks` and is not dying: neither gone, a
/// zombie, nor on its way out. A killed process closes its descriptors (hanging up the terminals
/// it held) while it exits, before it is a zombie: one that holds many takes a while.
pub fn same_process_staying(pid: u32, start_ticks: u64) -> bool {
    match stat(pid) {
        Some(s) => s.state != 'Z' && s.state != 'X' && s.flags & PF_EXITING == 0 && s.start_ticks == start_ticks,
        None => false,
    }
}

/// Whether a process exists and is not a zombie (a zombie counts as dead).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether `pid` is alive and is the same process that started at `start_ticks`.
pub fn same_process(pid: u32, start_ticks: Option<u64>) -> bool {
    match stat(pid) {
        Some(s) if s.state != 'Z' && s.state != 'X' => start_ticks.is_none_or(|t| t == s.start_ticks),
        _ => false,
    }
}

/// Every process on the machine.
pub fn all() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())).filter_map(stat).collect()
}

/// The live (non-zombie) descendants of `root` (not `root` itself), from a snapshot of [`all`].
pub fn descendants(procs: &[ProcStat], root: u32) -> Vec<&ProcStat> {
    let mut members = vec![root];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(procs.iter().filter(|p| p.ppid == parent && p.pid != root).map(|p| p.pid));
        i += 1;
    }
    procs.iter().filter(|p| p.pid != root && members.contains(&p.pid) && p.state != 'Z' && p.state != 'X').collect()
}

/// The live descendants of `root` (not `root` itself), found by walking the kernel's
/// `/proc/PID/task/TID/children` lists: cost grows with the tree, not with the machine. Falls back
/// to a scan of all processes where the kernel lacks those lists.
pub fn descendants_of(root: u32) -> Vec<ProcStat> {
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let Some(kids) = children(pid) else {
            let procs = all();
            return descendants(&procs, root).into_iter().cloned().collect();
        };
        for kid in kids {
            if let Some(st) = stat(kid) {
                queue.push(kid);
                if st.state != 'Z' && st.state != 'X' {
                    out.push(st);
                }
            }
        }
    }
    out
}

/// The children of every thread of `pid`; `None` when the kernel cannot tell (no children lists).
fn children(pid: u32) -> Option<Vec<u32>> {
    let tasks = match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(t) => t,
        Err(_) => return Some(Vec::new()), // gone
    };
    let mut kids = Vec::new();
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => kids.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && task.path().exists() => return None,
            Err(_) => {}
        }
    }
    Some(kids)
}

/// A process's command line, arguments joined by spaces (empty for kernel threads and the gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Whether a process's environment holds `KEY=value` (readable for our own processes).
pub fn environ_has(pid: u32, entry: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/environ")) {
        Ok(bytes) => bytes.split(|&b| b == 0).any(|e| e == entry.as_bytes()),
        Err(_) => false,
    }
}

/// Removes (empty) cgroup directories, retrying briefly while the kernel lets go of them.
pub fn remove_cgroups(dirs: &[std::path::PathBuf]) {
    for dir in dirs {
        for _ in 0..50 {
            match std::fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => break,
            }
        }
    }
}

/// The clock ticks per second of /proc's CPU times.
pub fn ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 100,
    }
}

fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 4096,
    }
}

/// The system's uptime in clock ticks (to turn start times into ages).
pub fn uptime_ticks() -> Option<u64> {
    let text = std::fs::read_to_string(Path::new("/proc/uptime")).ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((secs * ticks_per_second() as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_parens() {
        let line =
            "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000000 25 18446744073709551615";
        let s = parse_stat(42, line).unwrap();
        assert_eq!((s.state, s.ppid, s.pgrp, s.cpu_ticks, s.start_ticks), ('S', 1, 42, 10, 12345));
        assert_eq!(s.rss_bytes, 25 * page_size());
        assert_eq!(s.flags, 4194560);
        // The same process on its way out (PF_EXITING): no longer staying.
        let exiting = line.replace(" 4194560 ", &format!(" {} ", 4194560 | PF_EXITING));
        assert_eq!(parse_stat(42, &exiting).unwrap().flags & PF_EXITING, PF_EXITING);
    }

    #[test]
    fn a_process_stays_until_it_exits_or_is_another() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = stat(pid).unwrap().start_ticks;
        assert!(same_process_staying(pid, start));
        assert!(!same_process_staying(pid, start + 1), "another process under a reused pid");
        child.kill().unwrap();
        // Dying or a zombie (not yet waited for): not staying.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while same_process_staying(pid, start) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!same_process_staying(pid, start));
        child.wait().unwrap();
        assert!(!same_process_staying(pid, start));
    }

    #[test]
    fn walks_children_like_a_full_scan() {
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 5 & sleep 5; wait"]).spawn().unwrap();
        // The shell's tree, not ours: other tests of this binary start children of their own.
        let sh = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while descendants_of(sh).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut walked: Vec<u32> = descendants_of(sh).iter().map(|p| p.pid).collect();
        let procs = all();
        let mut scanned: Vec<u32> = descendants(&procs, sh).iter().map(|p| p.pid).collect();
        walked.sort();
        scanned.sort();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(walked.len(), 2, "the two sleeps under sh: {walked:?}");
        assert_eq!(walked, scanned);
    }

    #[test]
    fn reads_self() {
        let me = stat(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
        assert!(alive(std::process::id()));
    }
}
