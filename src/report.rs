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
    /// Bytes of the totals an earlier run left, which this one resumes from: they are not
    /// transferred, and are counted apart.
    fn add_resumed(&self, _bytes: u64) {}
    /// Resumed bytes that did not verify: they are transferred after all.
    fn add_resumed_discarded(&self, _bytes: u64) {}
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

/// For `--quiet`: no bars, and the engine's lines (waits, skipped repos) are not said.
pub struct Silent;

impl Progress for Silent {
    fn add_total(&self, _: u64, _: u64) {}
    fn add_bytes(&self, _: u64) {}
    fn item_done(&self) {}
    fn log(&self, _: &str) {}
    fn finish(&self) {}
}

/// One byte-based bar with an item count in its message.
pub struct TerminalProgress {
    bar: ProgressBar,
    items: std::sync::Mutex<(u64, u64)>,
    resumed: std::sync::atomic::AtomicU64,
}

impl TerminalProgress {
    pub fn new(label: &str, color: bool) -> TerminalProgress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let prefix = if color { "{prefix:.bold}" } else { "{prefix}" };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{prefix} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}} {{msg}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        TerminalProgress {
            bar,
            items: std::sync::Mutex::new((0, 0)),
            resumed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn update_message(&self) {
        let (done, total) = *self.items.lock().expect("not poisoned");
        let resumed = self.resumed.load(std::sync::atomic::Ordering::Relaxed);
        if resumed == 0 {
            self.bar.set_message(format!("{done}/{total} files"));
        } else {
            self.bar.set_message(format!(
                "{done}/{total} files, {} resumed",
                human_bytes(resumed)
            ));
        }
    }

    /// Moves `bytes` between the bytes to transfer (the bar, its rate and ETA) and the bytes
    /// resumed, shown apart.
    fn shift_resumed(&self, bytes: u64, resumed: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let length = self.bar.length().unwrap_or(0);
        if resumed {
            self.bar.set_length(length.saturating_sub(bytes));
            self.resumed.fetch_add(bytes, Relaxed);
        } else {
            self.bar.set_length(length + bytes);
            self.resumed.fetch_sub(bytes, Relaxed);
        }
        self.update_message();
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
    fn add_resumed(&self, bytes: u64) {
        self.shift_resumed(bytes, true);
    }
    fn add_resumed_discarded(&self, bytes: u64) {
        self.shift_resumed(bytes, false);
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

/// How a command shows itself on stderr: bars only when stderr is a terminal (and not for
/// `--json` consumers), nothing at all but errors with `--quiet`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub json: bool,
    pub verbose: bool,
    /// `--quiet`: errors (and their hints) only.
    pub quiet: bool,
    /// ANSI colour on stderr (`--color`, `NO_COLOR`).
    pub color: bool,
}

impl Style {
    /// Whether to colour stderr: `always`, `never`, or (`auto`) when stderr is a terminal and
    /// `NO_COLOR` is not set to anything (no-color.org).
    pub fn color_wanted(choice: Option<bool>) -> bool {
        choice.unwrap_or_else(|| {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        })
    }
}

fn progress(label: &str, style: Style) -> Arc<dyn Progress> {
    if style.quiet {
        Arc::new(Silent)
    } else if !style.json && std::io::stderr().is_terminal() {
        Arc::new(TerminalProgress::new(label, style.color))
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

/// What an operation reports while it runs, besides its result: progress, and details shown
/// only with `-v` (which config, which sources). Operations get this, never the [`Printer`].
pub trait Reporter: Sync {
    fn progress(&self, label: &str) -> Arc<dyn Progress>;
    /// A line for `-v` only.
    fn detail(&self, msg: &str);
}

impl Reporter for Printer {
    fn progress(&self, label: &str) -> Arc<dyn Progress> {
        self.start_progress(label)
    }

    fn detail(&self, msg: &str) {
        if self.verbose {
            self.note(msg);
        }
    }
}

/// Prints a command's result (one JSON document with `--json`, else human text) on stdout, and
/// every other line on stderr through the command's progress display, so lines never tear its
/// bars: callers say what to print, never where.
pub struct Printer {
    pub json: bool,
    pub verbose: bool,
    /// `--quiet`: only errors and their hints are printed (and `--json`'s document).
    pub quiet: bool,
    color: bool,
    /// The progress display lines go through: the latest one a command started, else none.
    progress: std::sync::Mutex<Arc<dyn Progress>>,
    /// With `--json`, the command's document, printed by [`Printer::finish`] once the exit code
    /// is known.
    document: std::sync::Mutex<Option<serde_json::Value>>,
}

impl Printer {
    pub fn new(style: Style) -> Printer {
        Printer {
            json: style.json,
            verbose: style.verbose,
            quiet: style.quiet,
            color: style.color,
            progress: std::sync::Mutex::new(Arc::new(NoProgress)),
            document: std::sync::Mutex::new(None),
        }
    }

    fn style(&self) -> Style {
        Style {
            json: self.json,
            verbose: self.verbose,
            quiet: self.quiet,
            color: self.color,
        }
    }

    /// Starts the progress display of a command's work (bars only when stderr is a terminal and
    /// the output is not JSON); stderr lines go through it from now on.
    pub fn start_progress(&self, label: &str) -> Arc<dyn Progress> {
        let p = progress(label, self.style());
        *self.progress.lock().expect("not poisoned") = p.clone();
        p
    }

    /// The command's result on stdout: its JSON document (printed when the command ends, with
    /// `ok` and `exit_code`), or (unless `--quiet`) its text.
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            return self.document(value);
        }
        if self.quiet {
            return;
        }
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{}", human());
    }

    /// The command's JSON document, whether or not `--json` was given (`list --format json`),
    /// printed by [`Printer::finish`].
    pub fn document<T: Serialize>(&self, value: &T) {
        let doc = serde_json::to_value(value).expect("results serialize");
        *self.document.lock().expect("not poisoned") = Some(doc);
    }

    /// With `--json`, prints the command's document with `ok` and `exit_code` added, so every
    /// document says how the run ended; a run that failed outright prints its error document
    /// instead (`report_error`), and this one is dropped.
    pub fn finish(&self, exit_code: u8) {
        let Some(mut doc) = self.document.lock().expect("not poisoned").take() else {
            return;
        };
        if let serde_json::Value::Object(fields) = &mut doc {
            fields.insert("ok".into(), (exit_code == 0).into());
            fields.insert("exit_code".into(), exit_code.into());
        }
        print_data(&serde_json::to_string_pretty(&doc).expect("serializes"));
    }

    /// Forgets the document a command left, for a run that ends with an error document.
    pub fn discard(&self) {
        self.document.lock().expect("not poisoned").take();
    }

    /// A line on stderr whatever `--quiet` says, through the bars when there are some.
    fn line(&self, msg: &str) {
        if self.quiet {
            eprintln!("{msg}");
        } else {
            let p = self.progress.lock().expect("not poisoned").clone();
            p.log(msg);
        }
    }

    /// `label:` in bold `color` (an ANSI code) when colour is on.
    fn label(&self, label: &str, color: u8) -> String {
        if self.color {
            format!("\x1b[1;{color}m{label}:\x1b[0m")
        } else {
            format!("{label}:")
        }
    }

    /// A line on stderr, as it is; not with `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            self.line(msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.note(&format!("{} {msg}", self.label("warning", 33)));
    }

    /// An item that failed, on stderr; the run goes on and exits 1.
    pub fn error(&self, msg: &str) {
        self.line(&format!("{} {msg}", self.label("error", 31)));
    }

    /// What to do about the errors just printed.
    pub fn hint(&self, msg: &str) {
        self.line(&format!("{} {msg}", self.label("hint", 36)));
    }
}

/// Reports a wait for a lock another process holds: what is waited for and until when, then
/// every so often that it is still waiting (the callback of the cache's lock waits).
pub fn lock_waiter(
    progress: Arc<dyn Progress>,
    lock: std::path::PathBuf,
    why: String,
    timeout: std::time::Duration,
) -> impl FnMut(std::time::Duration) {
    let mut first = true;
    move |waited| {
        let line = if std::mem::take(&mut first) {
            format!(
                "waiting for {}: {why} (giving up after {})",
                lock.display(),
                humantime::format_duration(timeout)
            )
        } else {
            format!(
                "still waiting for {} after {}: {why}",
                lock.display(),
                humantime::format_duration(std::time::Duration::from_secs(waited.as_secs()))
            )
        };
        progress.log(&line);
    }
}

/// `1.5 GiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// A size as `hf cache ls` prints it (`1.2G`, `41.0K`, `512.0`: powers of 1000, one decimal),
/// so the two listings can be read side by side.
pub fn hf_size(n: u64) -> String {
    let mut num = n as f64;
    for unit in ["", "K", "M", "G", "T", "P", "E", "Z"] {
        if num.abs() < 1000.0 {
            return format!("{num:3.1}{unit}");
        }
        num /= 1000.0;
    }
    format!("{num:.1}Y")
}

/// The width table output may take: `COLUMNS` when set, else the terminal's when stdout is
/// one; `None` (no limit) for a pipe or a file.
pub fn output_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    #[cfg(unix)]
    // SAFETY: TIOCGWINSZ only fills in the winsize struct passed to it.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_col > 0 {
            return Some(size.ws_col as usize);
        }
    }
    None
}

/// Cuts cells (`abc...`) so a table with `separator` characters between columns fits `width`,
/// as `hf cache ls` does: the widest column shrinks first, never below its header (or 4).
/// True when a cell was cut.
pub fn fit_columns(
    header: &[&str],
    rows: &mut [Vec<String>],
    width: usize,
    separator: usize,
) -> bool {
    let n = header.len();
    let mut caps: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows.iter() {
        for (cap, cell) in caps.iter_mut().zip(row) {
            *cap = (*cap).max(cell.chars().count());
        }
    }
    let floors: Vec<usize> = header.iter().map(|h| h.chars().count().max(4)).collect();
    let budget = width.saturating_sub(separator * n.saturating_sub(1));
    while caps.iter().sum::<usize>() > budget {
        let widest = (0..n)
            .filter(|&i| caps[i] > floors[i])
            .max_by_key(|&i| (caps[i], std::cmp::Reverse(i)));
        match widest {
            Some(i) => caps[i] -= 1,
            None => break,
        }
    }
    let mut cut = false;
    for row in rows.iter_mut() {
        for (cell, &cap) in row.iter_mut().zip(&caps) {
            if cell.chars().count() > cap {
                *cell = cell.chars().take(cap.saturating_sub(3)).collect::<String>() + "...";
                cut = true;
            }
        }
    }
    cut
}

/// A budget given in GiB (`--max-gb`, `max_local_gb`), in the units every other size of the
/// same line is said in: `74.1 MiB of 100.0 MiB`, never `74.1 MiB of 0.1 GiB`.
pub fn budget(gb: f64) -> String {
    human_bytes((gb * (1u64 << 30) as f64) as u64)
}

/// `3 days ago`: how long before `now` something happened; `-` when unknown.
pub fn ago(time: Option<std::time::SystemTime>, now: std::time::SystemTime) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let Some(time) = time else {
        return "-".into();
    };
    // A time slightly in the future (clock skew, a just-written file) reads as now.
    let secs = now.duration_since(time).map_or(0, |d| d.as_secs());
    let (n, unit) = match secs {
        s if s < MINUTE => return "just now".into(),
        s if s < HOUR => (s / MINUTE, "minute"),
        s if s < DAY => (s / HOUR, "hour"),
        s if s < 14 * DAY => (s / DAY, "day"),
        s if s < 60 * DAY => (s / (7 * DAY), "week"),
        s if s < 365 * DAY => (s / (30 * DAY), "month"),
        s => (s / (365 * DAY), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `2025-01-31T12:00:00Z`: times in JSON and CSV.
pub fn timestamp(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Rows under a header, each column as wide as its widest cell. Columns listed in `right` are
/// right-aligned (numbers); the last column is never padded, so lines carry no trailing spaces.
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            let last = i + 1 == widths.len();
            if right.contains(&i) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if !last {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.truncate(out.trim_end().len());
        out
    };
    let mut lines = vec![line(&mut header.iter().copied())];
    for row in rows {
        lines.push(line(&mut row.iter().map(String::as_str)));
    }
    lines.join("\n")
}

/// One CSV record: cells holding a comma, quote or line break are quoted (RFC 4180).
pub fn csv_record(cells: &[String]) -> String {
    cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes `text` and a newline to stdout; a closed pipe (`| head`) is not an error.
pub fn print_data(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn sizes_as_hf_cache_ls_prints_them() {
        assert_eq!(hf_size(0), "0.0");
        assert_eq!(hf_size(41), "41.0");
        assert_eq!(hf_size(999), "999.0");
        assert_eq!(hf_size(1000), "1.0K");
        assert_eq!(hf_size(204_800), "204.8K");
        assert_eq!(hf_size(1_234_567_890), "1.2G");
    }

    #[test]
    fn wide_tables_are_cut_widest_column_first() {
        let mut rows = vec![vec![
            "model/org/a-very-long-name".to_string(),
            "1.2G".into(),
        ]];
        let cut = fit_columns(&["ID", "SIZE"], &mut rows, 20, 2);
        assert!(cut);
        assert_eq!(rows[0], ["model/org/a...", "1.2G"]);
        let mut rows = vec![vec!["short".to_string(), "1.2G".into()]];
        assert!(!fit_columns(&["ID", "SIZE"], &mut rows, 20, 2));
        assert_eq!(rows[0][0], "short");
    }

    #[test]
    fn budgets_are_said_in_the_units_of_the_sizes_beside_them() {
        assert_eq!(budget(50.0), "50.0 GiB");
        assert_eq!(budget(0.5), "512.0 MiB");
        assert_eq!(budget(0.01), human_bytes(10_737_418));
        assert_eq!(budget(0.0), "0 B");
    }

    #[test]
    fn relative_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let before = |s: u64| Some(now - Duration::from_secs(s));
        assert_eq!(ago(None, now), "-");
        assert_eq!(ago(before(5), now), "just now");
        assert_eq!(ago(Some(now + Duration::from_secs(30)), now), "just now");
        assert_eq!(ago(before(60), now), "1 minute ago");
        assert_eq!(ago(before(3 * 3600 + 5), now), "3 hours ago");
        assert_eq!(ago(before(3 * 86400), now), "3 days ago");
        assert_eq!(ago(before(21 * 86400), now), "3 weeks ago");
        assert_eq!(ago(before(90 * 86400), now), "3 months ago");
        assert_eq!(ago(before(800 * 86400), now), "2 years ago");
    }

    #[test]
    fn tables_align_and_csv_quotes() {
        let rows = vec![
            vec![
                "model/a/b".to_string(),
                "1 KiB".to_string(),
                "main".to_string(),
            ],
            vec!["x".to_string(), "10 MiB".to_string(), String::new()],
        ];
        let text = table(&["ID", "SIZE", "REFS"], &rows, &[1]);
        assert_eq!(
            text,
            "ID           SIZE  REFS\nmodel/a/b   1 KiB  main\nx          10 MiB"
        );
        assert_eq!(
            csv_record(&["a".into(), "b,c".into(), "say \"hi\"".into()]),
            "a,\"b,c\",\"say \"\"hi\"\"\""
        );
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(86400)),
            "1970-01-02T00:00:00Z"
        );
    }
}
