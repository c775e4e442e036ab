//! `doctor`: runs the checks of the configuration, credentials, remote access and cache dir
//! ([`ops::doctor`](crate::ops::doctor)) and shows each one with a mark, a detail and a hint.

use anyhow::Result;

use super::{App, Outcome, RemoteChoice};
use crate::config::ConfigError;
use crate::ops::doctor::{DoctorOptions, DoctorReport, Status};

pub async fn run(
    app: &App,
    config_error: Option<ConfigError>,
    require_write: bool,
    remote: RemoteChoice,
) -> Result<Outcome> {
    let opts = DoctorOptions {
        config_error: config_error.as_ref(),
        require_write,
        remote: remote.url(),
        verbose: app.printer.verbose,
    };
    let report = crate::ops::doctor::run(&app.settings, opts).await;
    app.printer.result(&report, || human(&report));
    Ok(Outcome::from_failures(report.failed))
}

fn human(report: &DoctorReport) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for c in &report.checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warning => "!",
            Status::Failed => "✗",
            Status::Skipped => "-",
        };
        lines.push(format!("{mark} {:width$}  {}", c.name, c.detail));
        if let Some(hint) = &c.hint {
            lines.push(format!("  {:width$}  hint: {hint}", ""));
        }
    }
    lines.push(String::new());
    let warnings = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    lines.push(match report.failed {
        0 if warnings > 0 => format!("All checks passed ({warnings} to note)."),
        0 => "All checks passed.".to_string(),
        1 => "1 check failed.".to_string(),
        n => format!("{n} checks failed."),
    });
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::doctor::Check;

    #[test]
    fn human_report_has_marks_and_hints() {
        let report = DoctorReport {
            command: "doctor",
            ok: false,
            failed: 1,
            checks: vec![
                Check::ok("Bucket", "b"),
                Check::failed("Write permission", "denied", "use a read-write key"),
                Check::skipped("Clock", "no date"),
            ],
        };
        let text = human(&report);
        assert!(text.contains("✓ Bucket"), "{text}");
        assert!(text.contains("✗ Write permission  denied"), "{text}");
        assert!(text.contains("hint: use a read-write key"), "{text}");
        assert!(text.ends_with("1 check failed."), "{text}");
    }
}
