//! Progress and output. Core code reports through [`Progress`]; only the terminal implementation
//! knows about indicatif. Data goes to stdout, everything else to stderr.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Transfer progress events.
pub trait Progress: Send + Sync {
    /// Adds work to the totals (called as work is discovered).
    fn add_total(&self, items: u64, bytes: u64);
    fn add_bytes(&self, bytes: u64);
    fn item_done(&self);
    /// A line for stderr that must not tear the bars.
    fn log(&self, line: &str);
    fn finish(&self);
}

/// Used when stderr is not a terminal: no bars, log lines straight to stderr.
pub struct NoProgress;

impl Progress for NoProgress {
    fn add_total(&self, _: u64, _: u64) {}
    fn add_bytes(&self, _: u64) {}
    fn item_done(&self) {}
    fn log(&self, line: &str) {
        eprintln!("{line}");
    }
    fn finish(&self) {}
}

/// One byte-based bar with an item count in its message.
pub struct TerminalProgress {
    bar: ProgressBar,
    items: std::sync::Mutex<(u64, u64)>,
}

impl TerminalProgress {
    pub fn new(label: &str) -> TerminalProgress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        TerminalProgress {
            bar,
            items: std::sync::Mutex::new((0, 0)),
        }
    }

    fn update_message(&self) {
        let (done, total) = *self.items.lock().expect("not poisoned");
        self.bar.set_message(format!("{done}/{total} files"));
    }
}

impl Progress for TerminalProgress {
    fn add_total(&self, items: u64, bytes: u64) {
        self.bar.inc_length(bytes);
        self.items.lock().expect("not poisoned").1 += items;
        self.update_message();
    }
    fn add_bytes(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn item_done(&self) {
        self.items.lock().expect("not poisoned").0 += 1;
        self.update_message();
    }
    fn log(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Bars only when stderr is a terminal (and not for `--json` consumers).
pub fn progress(label: &str, quiet: bool) -> Arc<dyn Progress> {
    if !quiet && std::io::stderr().is_terminal() {
        Arc::new(TerminalProgress::new(label))
    } else {
        Arc::new(NoProgress)
    }
}

/// How `list` prints its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

/// Prints a command's result: one JSON document with `--json`, else human text.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    pub verbose: bool,
}

impl Printer {
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        let mut out = std::io::stdout().lock();
        let text = if self.json {
            serde_json::to_string_pretty(value).expect("results serialize")
        } else {
            human()
        };
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(out, "{text}");
    }

    pub fn warn(&self, progress: &dyn Progress, msg: &str) {
        progress.log(&format!("warning: {msg}"));
    }
}

/// `1.5 GiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}
