//! Small text helpers every command's human output uses: counted nouns and error chains read
//! as one line. Kept in one place so "1 repo" / "2 repos" and "what: why: root cause" read the
//! same in every command.

/// `abcdef123456` for a 40-character commit, as people read them.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// `n` followed by the singular or plural form: `1 repo`, `0 repos`, `3 snapshot links are`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Each cause's message once, joined by ": ", for people. A cause whose text the message already
/// holds is left out, so wrappers that repeat their source (`{0}` in a thiserror message) do not
/// print it twice; `{:?}` forms (Rust debug dumps) never appear.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}

/// `value` as Python's `json.dump(value, indent=…)` writes it: `indent` per level, `": "`
/// between key and value, and every non-ASCII character escaped (`ensure_ascii`). The remote's
/// manifests and huggingface_hub's tree listings are written this way.
pub fn python_json(value: &impl serde::Serialize, indent: &[u8]) -> Vec<u8> {
    let mut pretty = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut pretty, formatter);
    value
        .serialize(&mut ser)
        .expect("plain data always serializes");
    let pretty = String::from_utf8(pretty).expect("serde_json writes UTF-8");
    let mut out = String::with_capacity(pretty.len());
    for c in pretty.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// The names in `names` ((id, shown) pairs) whose id is close to `wanted`: the same id in
/// another case or of another type, the same name under another owner, or a few typos away.
/// At most three, closest first, each shown once.
pub fn close_matches(wanted: &str, names: &[(String, String)]) -> Vec<String> {
    let wanted = wanted.to_lowercase();
    let wanted_name = wanted.rsplit('/').next().unwrap_or(&wanted);
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|(id, shown)| {
            let id = id.to_lowercase();
            let name = id.rsplit('/').next().unwrap_or(&id);
            let distance = edit_distance(&wanted, &id);
            let close = distance <= (wanted.len() / 4).max(2)
                || (name == wanted_name && !name.is_empty())
                || (wanted.len() >= 4 && id.contains(&wanted));
            close.then_some((distance, shown.as_str()))
        })
        .collect();
    scored.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, shown) in scored {
        if !out.iter().any(|s| s == shown) && out.len() < 3 {
            out.push(shown.to_string());
        }
    }
    out
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_singular_only_for_one() {
        assert_eq!(plural(0, "repo", "repos"), "0 repos");
        assert_eq!(plural(1, "repo", "repos"), "1 repo");
        assert_eq!(plural(2, "repo", "repos"), "2 repos");
        assert_eq!(
            plural(1, "snapshot link is", "snapshot links are"),
            "1 snapshot link is"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Layer {
        what: String,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(what: &str, source: Option<Layer>) -> Layer {
        Layer {
            what: what.into(),
            source: source.map(Box::new),
        }
    }

    #[test]
    fn error_chains_join_each_cause_once() {
        let err = layer(
            "cannot read manifests/a@c.json",
            Some(layer("connection reset", Some(layer("os error 104", None)))),
        );
        assert_eq!(
            error_chain(&err),
            "cannot read manifests/a@c.json: connection reset: os error 104"
        );
        // A message that already quotes its cause does not get it twice.
        let repeating = layer("upload failed: timed out", Some(layer("timed out", None)));
        assert_eq!(error_chain(&repeating), "upload failed: timed out");
        assert_eq!(error_chain(&layer("alone", None)), "alone");
    }

    #[test]
    fn close_matches_allow_typos_other_owners_and_types() {
        let names: Vec<(String, String)> = [
            ("acme/small-lm", "model/acme/small-lm"),
            ("acme/small-lm", "dataset/acme/small-lm"),
            ("other/small-lm", "model/other/small-lm"),
            ("acme/unrelated", "model/acme/unrelated"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            close_matches("Acme/Small-LM", &names),
            [
                "dataset/acme/small-lm",
                "model/acme/small-lm",
                "model/other/small-lm"
            ]
        );
        assert_eq!(close_matches("acme/smal-lm", &names).len(), 2);
        assert!(close_matches("zz/qq", &names).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
