//! Guards for what tiny_http leaves open: it sets no timeout on the connections it accepts, and it
//! hands a burst of new connections to its few idle threads in a queue, so a handful of silent
//! clients can hold every thread while real requests wait behind them. The reaper looks at every
//! client socket of the process a few times a second: it gives each a send timeout (a client that
//! stops reading cannot hold a worker), and it shuts down any connection that is not being
//! answered and has been silent both ways for [`IDLE`] — an idle keep-alive, a half-sent
//! request, a connection that never said anything — which frees the thread it holds at once.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection may be silent both ways, outside a request, before it is closed.
pub const IDLE: Duration = Duration::from_millis(600);
/// How long a write to a client may block.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The clients being answered right now (a request in a worker, or an event stream).
#[derive(Default)]
pub struct Busy {
    peers: Mutex<HashMap<SocketAddr, usize>>,
    workers_busy: std::sync::atomic::AtomicUsize,
}

impl Busy {
    /// Marks `peer` busy until the guard is dropped.
    pub fn hold(&self, peer: Option<SocketAddr>) -> Hold<'_> {
        if let Some(p) = peer {
            *self.peers.lock().unwrap_or_else(|e| e.into_inner()).entry(p).or_default() += 1;
        }
        Hold { busy: self, peer }
    }

    /// Marks one worker busy until the guard is dropped.
    pub fn worker(&self) -> WorkerHold<'_> {
        self.workers_busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        WorkerHold { busy: self }
    }

    fn contains(&self, peer: &SocketAddr) -> bool {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).contains_key(peer)
    }
}

/// A busy worker, counted until dropped.
pub struct WorkerHold<'a> {
    busy: &'a Busy,
}

impl Drop for WorkerHold<'_> {
    fn drop(&mut self) {
        self.busy.workers_busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A busy mark, removed on drop.
pub struct Hold<'a> {
    busy: &'a Busy,
    peer: Option<SocketAddr>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.peer {
            let mut peers = self.busy.peers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = peers.get_mut(&p) {
                *n -= 1;
                if *n == 0 {
                    peers.remove(&p);
                }
            }
        }
    }
}

/// Runs for ever: every 100 ms, looks at each client socket (all sockets but the listener). A
/// connection is closed when found idle in two sweeps running (a request read by tiny_http but not
/// yet taken by a worker is idle for a moment), and never while every worker is busy (requests may
/// be queued for them).
pub fn run(listen_fd: i32, busy: &Busy, workers: usize) {
    let mut configured: HashSet<(i32, u64)> = HashSet::new();
    let mut suspects: HashSet<(i32, u64)> = HashSet::new();
    loop {
        let mut seen = HashSet::new();
        let mut idle_now = HashSet::new();
        let saturated = busy.workers_busy.load(std::sync::atomic::Ordering::SeqCst) >= workers;
        for entry in std::fs::read_dir("/proc/self/fd").into_iter().flatten().flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            if fd == listen_fd {
                continue;
            }
            let Ok(st) = nix::sys::stat::fstat(fd) else { continue };
            if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFSOCK {
                continue;
            }
            seen.insert((fd, st.st_ino));
            if configured.insert((fd, st.st_ino)) {
                set_send_timeout(fd);
                set_nodelay(fd);
            }
            let Some(peer) = peer(fd) else { continue };
            if busy.contains(&peer) {
                continue;
            }
            // Bytes waiting unread are a request queued inside tiny_http: not idle.
            if saturated || pending_bytes(fd) != 0 || idle_ms(fd).is_none_or(|ms| u128::from(ms) <= IDLE.as_millis()) {
                continue;
            }
            idle_now.insert((fd, st.st_ino));
            if suspects.contains(&(fd, st.st_ino)) {
                // SAFETY: shutdown on a descriptor number; if it closed and was reused since we
                // looked, the new one is also a client socket (only those are looked at).
                unsafe { nix::libc::shutdown(fd, nix::libc::SHUT_RDWR) };
            }
        }
        configured.retain(|k| seen.contains(k));
        suspects = idle_now;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many received bytes wait unread on a socket.
fn pending_bytes(fd: i32) -> i32 {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { nix::libc::ioctl(fd, nix::libc::FIONREAD, &mut n) };
    if rc == 0 { n } else { 0 }
}

/// Turns Nagle's algorithm off on a TCP socket.
pub fn set_nodelay(fd: i32) {
    let one: nix::libc::c_int = 1;
    // SAFETY: `one` lives across the call; a closed fd or a non-TCP socket makes it fail harmlessly.
    unsafe {
        nix::libc::setsockopt(
            fd,
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_NODELAY,
            &one as *const nix::libc::c_int as *const nix::libc::c_void,
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        );
    }
}

fn set_send_timeout(fd: i32) {
    use nix::libc;
    let tv = libc::timeval { tv_sec: SEND_TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 };
    // SAFETY: tv lives across the call; a closed fd makes it fail harmlessly.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// How long a TCP socket has been silent both ways, in milliseconds.
fn idle_ms(fd: i32) -> Option<u32> {
    use nix::libc;
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut libc::tcp_info as *mut libc::c_void,
            &mut len,
        )
    };
    (rc == 0).then(|| info.tcpi_last_data_recv.min(info.tcpi_last_data_sent))
}

/// The address of a socket's peer.
fn peer(fd: i32) -> Option<SocketAddr> {
    use nix::libc;
    // SAFETY: sockaddr_storage is plain data large enough for any address.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe { libc::getpeername(fd, &mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr, &mut len) };
    if rc != 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let a: libc::sockaddr_in = unsafe { *(&ss as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let a: libc::sockaddr_in6 = unsafe { *(&ss as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}
