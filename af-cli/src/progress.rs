//! Progress on long work (creating many agents, checkpointing a big tree, waiting for a batch):
//! one line on stderr, redrawn in place, only when stderr is a terminal; pipelines and cron jobs
//! see nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line; quiet unless stderr is a terminal and the work is big enough to notice.
pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    shown: bool,
    enabled: bool,
    last_draw: Instant,
}

impl Progress {
    /// Progress over `total` items of `label` (e.g. "starting agents").
    pub fn new(label: &str, total: usize) -> Self {
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            shown: false,
            enabled: total > 1 && std::io::stderr().is_terminal(),
            last_draw: Instant::now(),
        }
    }

    /// One more item done.
    pub fn step(&mut self) {
        self.done += 1;
        // Redraw at most 20 times a second, and always for the last item.
        if self.enabled && (self.done == self.total || self.last_draw.elapsed() > Duration::from_millis(50)) {
            self.last_draw = Instant::now();
            self.shown = true;
            let _ = write!(std::io::stderr(), "\r{}: {}/{}", self.label, self.done, self.total);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}
