//! A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! commands in on fd 3, answers out on fd 4, each a JSON text ended by NUL). Used by the
//! dashboard's tests (tests/api.rs), by `scripts/bench api` and by `scripts/screenshots`
//! (both include this file with `#[path]`), so it needs only serde_json and nix.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A headless Chromium with one page attached; killed (its whole process group) and its profile
/// removed on drop.
pub struct Browser {
    child: Child,
    to: std::fs::File,
    from: std::sync::mpsc::Receiver<Value>,
    next: u64,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium (1280×900) on `url` with a fresh profile in `profile`, attached to its page.
    pub fn open(profile: &Path, url: &str) -> Browser {
        Browser::open_sized(profile, url, 1280, 900)
    }

    /// Starts Chromium with a window of `width`×`height` on `url`.
    pub fn open_sized(profile: &Path, url: &str, width: u32, height: u32) -> Browser {
        use std::os::fd::{AsRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let _ = std::fs::remove_dir_all(profile);
        let (cmd_read, cmd_write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
        let (out_read, out_write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
        let mut c = std::process::Command::new("chromium");
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .args(["--hide-scrollbars", "--remote-debugging-pipe"])
            // Every page renders and keeps its timers, as in a window a person looks at.
            .args(["--disable-background-timer-throttling", "--disable-renderer-backgrounding"])
            .args(["--disable-backgrounding-occluded-windows"])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let (r, w) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                nix::unistd::dup2(r, 3).map_err(std::io::Error::from)?;
                nix::unistd::dup2(w, 4).map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child = c.spawn().expect("chromium");
        drop((cmd_read, out_write));
        let (tx, from) = std::sync::mpsc::channel();
        let mut reader = BufReader::new(std::fs::File::from(out_read));
        std::thread::spawn(move || {
            loop {
                let mut msg = Vec::new();
                match reader.read_until(0, &mut msg) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        msg.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&msg) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to: std::fs::File::from(cmd_write),
            from,
            next: 0,
            session: String::new(),
            profile: profile.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let target = loop {
            let targets = b.send("Target.getTargets", json!({}));
            let page = targets["targetInfos"].as_array().and_then(|t| t.iter().find(|t| t["type"] == "page").cloned());
            if let Some(p) = page {
                break p["targetId"].as_str().unwrap_or("").to_owned();
            }
            assert!(Instant::now() < deadline, "timed out waiting for a page in chromium");
            std::thread::sleep(Duration::from_millis(50));
        };
        let attached = b.send("Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("session").to_owned();
        b
    }

    /// Sends a command to the attached page; returns its result (panics on an error).
    pub fn send(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send_to(&session, method, params)
    }

    /// Sends a command to the browser itself (`Target.*`), not to the page.
    pub fn send_browser(&mut self, method: &str, params: Value) -> Value {
        self.send_to("", method, params)
    }

    fn send_to(&mut self, session: &str, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !session.is_empty() {
            msg["sessionId"] = json!(session);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("to chromium");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.from.recv_timeout(left).unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Opens another page on `url` in a window of its own (shown, as the first), not attached;
    /// returns its target id.
    pub fn open_tab(&mut self, url: &str) -> String {
        let r = self.send_browser("Target.createTarget", json!({"url": url, "newWindow": true}));
        r["targetId"].as_str().expect("targetId").to_owned()
    }

    /// Evaluates JavaScript in the page; returns its value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.send("Runtime.evaluate", json!({"expression": js, "returnByValue": true, "awaitPromise": true}));
        r["result"]["value"].clone()
    }

    /// Waits until `js` evaluates to `want` in the page.
    pub fn wait_until(&mut self, what: &str, js: &str, want: Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.eval(js);
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the page never showed {what}: {js} is {last}, not {want}");
    }

    /// A PNG of the page as it shows now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.send("Page.captureScreenshot", json!({"format": "png"}));
        base64_decode(shot["data"].as_str().expect("png"))
    }

    /// The browser's process id (its process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Decodes standard base64 (what DevTools sends screenshots as).
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| u32::from(value(c))).collect();
        let n = v.iter().enumerate().fold(0u32, |acc, (i, x)| acc | (x << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
