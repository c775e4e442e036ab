//! Small text helpers every command's output uses.

/// `abcdef123456` for a 40-character commit, as people read them.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// `1 repo`, `2 repos`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An error with its causes, each message once, joined by ": ", for people (the debug form
/// would dump Rust structures).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorts_and_counts() {
        assert_eq!(short(&"a".repeat(40)), "aaaaaaaaaaaa");
        assert_eq!(short("abc"), "abc");
        assert_eq!(count(1, "repo", "repos"), "1 repo");
        assert_eq!(count(0, "repo", "repos"), "0 repos");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_say_each_cause_once() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
        let same = std::io::Error::other("x");
        assert_eq!(error_chain(&same), "x");
    }
}
