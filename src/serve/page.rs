//! `GET /` in a browser: one self-contained HTML page (no script, no external asset) with the
//! repos the remote holds (id, type, revisions, refs, size) and the last hour's requests and
//! bytes by source. The listing is the one `list --remote --manifests` makes, handed in by the
//! operation that starts the server and kept for [`FRESH`] so a reload does not list the
//! bucket again. Every text put into the page is escaped.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::RepoType;
use crate::report::human_bytes;

use super::metrics::Recent;

/// How long a listing of the remote is shown before the remote is listed again.
pub const FRESH: Duration = Duration::from_secs(30);

/// A repo the remote holds, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub repo_id: String,
    /// `None` when no manifest of it could be read.
    pub repo_type: Option<RepoType>,
    pub revisions: usize,
    pub refs: Vec<String>,
    /// Its distinct blobs' bytes.
    pub size: Option<u64>,
}

/// Lists the remote's repos; the error is said on the page.
pub type ListRepos = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Vec<RepoRow>, String>> + Send>> + Send + Sync,
>;

/// The listing of the remote, kept for [`FRESH`].
pub struct RepoCache {
    lister: Option<ListRepos>,
    /// Held while listing, so reloads at once wait for one listing instead of making theirs.
    kept: tokio::sync::Mutex<Option<(Instant, Arc<Vec<RepoRow>>)>>,
}

impl RepoCache {
    pub fn new(lister: Option<ListRepos>) -> RepoCache {
        RepoCache {
            lister,
            kept: tokio::sync::Mutex::new(None),
        }
    }

    /// The repos, listed at most [`FRESH`] ago.
    pub async fn rows(&self) -> Result<Arc<Vec<RepoRow>>, String> {
        let mut kept = self.kept.lock().await;
        if let Some((at, rows)) = kept.as_ref() {
            if at.elapsed() < FRESH {
                return Ok(rows.clone());
            }
        }
        let Some(lister) = &self.lister else {
            return Err("this server was started without a listing of its remote".into());
        };
        let rows = Arc::new(lister().await?);
        *kept = Some((Instant::now(), rows.clone()));
        Ok(rows)
    }
}

/// `text` safe inside an HTML element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.err{color:#a00}";

/// The page: `sources` as the server reads them, the repos of the remote (or why they could
/// not be listed), and the last hour.
pub fn render(
    sources: &[String],
    repos: &Result<Arc<Vec<RepoRow>>, String>,
    recent: &Recent,
) -> String {
    let mut p = String::new();
    let _ = write!(
        p,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <title>hf-cache-sync serve</title><style>{STYLE}</style></head><body>\n\
         <h1>hf-cache-sync serve</h1>\n<p>Serving from {}.</p>\n",
        escape(&sources.join(", then "))
    );
    p.push_str("<h2>Repos on the remote</h2>\n");
    match repos {
        Ok(rows) => repo_table(&mut p, rows),
        Err(why) => {
            let _ = writeln!(
                p,
                "<p class=\"err\">The remote could not be listed: {}</p>",
                escape(why)
            );
        }
    }
    let _ = writeln!(
        p,
        "<h2>Last hour</h2>\n<p id=\"requests\">{} requests</p>",
        recent.requests
    );
    p.push_str("<table>\n<tr><th>Source</th><th>Bytes sent</th></tr>\n");
    for (source, bytes) in &recent.bytes {
        let _ = writeln!(
            p,
            "<tr><td>{}</td><td class=\"n\" data-bytes=\"{bytes}\">{}</td></tr>",
            escape(source),
            human_bytes(*bytes)
        );
    }
    p.push_str("</table>\n</body></html>\n");
    p
}

fn repo_table(p: &mut String, rows: &[RepoRow]) {
    if rows.is_empty() {
        p.push_str("<p>The remote holds no repo.</p>\n");
        return;
    }
    p.push_str(
        "<table>\n<tr><th>Repo</th><th>Type</th><th>Revisions</th><th>Refs</th>\
         <th>Size</th></tr>\n",
    );
    for r in rows {
        let kind = r.repo_type.map_or("?".to_string(), |t| t.to_string());
        let size = match r.size {
            Some(n) => format!("<td class=\"n\" data-bytes=\"{n}\">{}</td>", human_bytes(n)),
            None => "<td class=\"n\">?</td>".to_string(),
        };
        let _ = writeln!(
            p,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td>{size}</tr>",
            escape(&r.repo_id),
            escape(&kind),
            r.revisions,
            escape(&r.refs.join(", ")),
        );
    }
    p.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reload_within_the_fresh_period_lists_nothing_again() {
        let listed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = listed.clone();
        let lister: ListRepos = Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Ok(Vec::new()) })
        });
        let cache = RepoCache::new(Some(lister));
        for _ in 0..3 {
            assert!(cache.rows().await.unwrap().is_empty());
        }
        assert_eq!(listed.load(std::sync::atomic::Ordering::SeqCst), 1);
        let none = RepoCache::new(None).rows().await.unwrap_err();
        assert!(none.contains("without a listing"), "{none}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("org/m"), "org/m");
    }

    #[test]
    fn the_page_lists_repos_and_the_last_hour_escaped() {
        let rows = Arc::new(vec![RepoRow {
            repo_id: "org/m".into(),
            repo_type: Some(RepoType::Model),
            revisions: 2,
            refs: vec!["main".into(), "<b>".into()],
            size: Some(2048),
        }]);
        let recent = Recent {
            requests: 5,
            bytes: [("s3://b/<p>".to_string(), 10)].into_iter().collect(),
        };
        let page = render(&["s3://b & c".into()], &Ok(rows), &recent);
        assert!(page.contains("<td>org/m</td><td>model</td><td class=\"n\">2</td>"));
        assert!(page.contains("<td>main, &lt;b&gt;</td>"));
        assert!(page.contains("data-bytes=\"2048\">2.0 KiB</td>"), "{page}");
        assert!(page.contains("<p id=\"requests\">5 requests</p>"));
        assert!(page.contains("<td>s3://b/&lt;p&gt;</td>"));
        assert!(page.contains("Serving from s3://b &amp; c."));
        assert!(!page.contains("<script") && !page.contains("<b>"));
        let failed = render(&[], &Err("denied <x>".into()), &Recent::default());
        assert!(failed.contains("could not be listed: denied &lt;x&gt;"));
    }
}
