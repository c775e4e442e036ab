//! `serve`: [`ops::serve::serve`] run until Ctrl-C or SIGTERM, saying where it answers, a
//! line a request on stderr (unless `-q`), and how many it answered when it stops.

use std::sync::Arc;

use anyhow::Result;

use super::{App, Outcome};
use crate::ops;
use crate::serve::Access;

pub use crate::ops::serve::{presign_ttl, AuthSpec, ServeOptions};

pub async fn run(app: &App, opts: ServeOptions) -> Result<Outcome> {
    let quiet = app.printer.quiet;
    let log: crate::serve::AccessLog = Arc::new(move |a: &Access| {
        if !quiet {
            eprintln!("{}", access_line(a));
        }
    });
    let printer = &app.printer;
    let ready = |r: &ops::serve::Ready| {
        let url = format!("http://{}", r.addr);
        let auth = match &r.auth {
            Some(who) => format!(" (readers: {who})"),
            None => String::new(),
        };
        printer.note(&format!(
            "serving on {url}{auth} from {}",
            r.sources.join(", then ")
        ));
        printer.note(&format!(
            "point clients at it: HF_ENDPOINT={url} (Ctrl-C stops it)"
        ));
    };
    let report = ops::serve::serve(&app.env(), opts, &app.cancel, (ready, log)).await?;
    app.printer.result(&report, || {
        let mut line = format!(
            "Stopped serving {} after {}",
            report.listen,
            crate::text::plural(report.requests as usize, "request", "requests")
        );
        if report.cut_at_stop {
            line.push_str("; responses still going after 5s were cut");
        }
        line
    });
    Ok(Outcome::Success)
}

/// `<time> <client> <method> <path> <status> <bytes> <ms>ms <source>[ cut: <why>]`: the
/// path only (a query never holds a token; the `Authorization` header is never logged).
fn access_line(a: &Access) -> String {
    let mut line = format!(
        "{} {} {} {} {} {} {:.1}ms {}",
        crate::report::timestamp(std::time::SystemTime::now()),
        a.peer,
        a.method,
        a.path,
        a.status,
        a.bytes,
        a.duration.as_secs_f64() * 1000.0,
        a.source.as_deref().unwrap_or("-"),
    );
    if let Some(why) = &a.cut {
        line.push_str(&format!(" cut: {why}"));
    }
    line
}
