//! Progress of long steps: a bar on a terminal (indicatif, on stderr), plain log
//! lines at every tenth otherwise, so that CI logs and `nohup` runs stay readable.
//!
//! Warnings and notes ([`warning`], [`note`]) go to stderr whatever `quiet`
//! says: `quiet` silences progress, never what a user must know.
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// A progress report over `len` units of work.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    len: u64,
    done: u64,
    next_log: u64,
    start: Instant,
    quiet: bool,
}

impl Progress {
    /// Starts reporting `label` over `len` units; `quiet` prints nothing.
    pub fn new(label: &str, len: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(len);
            let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            b.set_style(style);
            b.set_message(label.to_string());
            b
        });
        Progress { bar, label: label.into(), len, done: 0, next_log: 0, start: Instant::now(), quiet }
    }

    /// Records `n` more units done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        } else if !self.quiet && self.done >= self.next_log {
            eprintln!("{}: {}/{} ({:.1}s)", self.label, self.done, self.len, self.start.elapsed().as_secs_f64());
            self.next_log = self.done + (self.len / 10).max(1);
        }
    }

    /// Ends the report with a summary line.
    pub fn finish(self, summary: &str) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{}: {summary} ({:.1}s)", self.label, self.start.elapsed().as_secs_f64());
        }
    }
}

/// Prints `warning: <text>` on stderr (never silenced by `quiet`).
pub fn warning(text: &str) {
    eprintln!("warning: {text}");
}

/// Prints `note: <text>` on stderr (never silenced by `quiet`).
pub fn note(text: &str) {
    eprintln!("note: {text}");
}
