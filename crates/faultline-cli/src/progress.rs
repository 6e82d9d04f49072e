//! The progress line on stderr: shown only when stderr is a terminal and
//! `--quiet` is not given, redrawn at most ten times a second, erased at the
//! end so that what stays on screen is the summary.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Furthest byte offset seen per input: their sum is what was read.
    position: HashMap<Arc<str>, u64>,
    records: u64,
    drawn: Instant,
}

impl Progress {
    /// A progress line, drawn only if stderr is a terminal and not `quiet`.
    pub(crate) fn new(quiet: bool) -> Progress {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress {
            bar,
            started: Instant::now(),
            position: HashMap::new(),
            records: 0,
            drawn: Instant::now(),
        }
    }

    /// Erases the line.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl faultline_engine::Progress for Progress {
    /// Counts a batch: its records, and how far into `file` it reached.
    fn batch(&mut self, records: usize, reached: Option<(&Arc<str>, u64)>) {
        self.records += records as u64;
        if let Some((file, offset)) = reached {
            let at = self.position.entry(Arc::clone(file)).or_default();
            *at = (*at).max(offset);
        }
        if self.bar.is_hidden() || self.drawn.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.drawn = Instant::now();
        let bytes: u64 = self.position.values().sum();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{:.1} MB read, {} records, {:.0} MB/s, {:.0}k records/s",
            bytes as f64 / 1e6,
            self.records,
            bytes as f64 / 1e6 / seconds,
            self.records as f64 / 1e3 / seconds
        ));
    }

    /// Says which step runs now (after the read).
    fn step(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }
}
