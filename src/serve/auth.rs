//! Who may read from `serve`: with `--auth tokens=FILE`, a client sends one of the team's own
//! bearer tokens (`HF_TOKEN` on the client), one a line in FILE. Only the tokens' sha256 is
//! kept, compared in constant time against every token, so neither timing nor a log line ever
//! tells a token.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted tokens, by their sha256.
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

/// Why a tokens file is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: a token is one word of printable characters, without spaces")]
    Malformed { path: String, line: usize },
    #[error("the tokens file {path} holds no token")]
    Empty { path: String },
}

/// A token's sha256: all that is kept of it.
pub(crate) fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// One token a line; blank lines and `#` comments are skipped.
    pub fn parse(text: &str, path: &str) -> Result<Tokens, TokensError> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let token = line.trim();
            if token.is_empty() || token.starts_with('#') {
                continue;
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokensError::Malformed {
                    path: path.to_string(),
                    line: i + 1,
                });
            }
            digests.push(digest(token.as_bytes()));
        }
        if digests.is_empty() {
            return Err(TokensError::Empty {
                path: path.to_string(),
            });
        }
        Ok(Tokens { digests })
    }

    pub fn read(path: &std::path::Path) -> Result<Tokens, TokensError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: shown.clone(),
            source,
        })?;
        Tokens::parse(&text, &shown)
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = authorization.and_then(bearer) else {
            return false;
        };
        let d = digest(token);
        // Every token is compared, whichever matches.
        let mut found = subtle::Choice::from(0);
        for known in &self.digests {
            found |= known.ct_eq(&d);
        }
        found.into()
    }
}

/// The token of `Bearer <token>`.
pub(crate) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_words_a_line_and_only_they_are_admitted() {
        let t = Tokens::parse("# the team\nhf_team_a\n\n  hf_team_b  \n", "t").unwrap();
        assert!(t.admits(Some(b"Bearer hf_team_a")));
        assert!(t.admits(Some(b"bearer hf_team_b")));
        assert!(!t.admits(Some(b"Bearer hf_team_c")));
        assert!(!t.admits(Some(b"Bearer ")));
        assert!(!t.admits(Some(b"hf_team_a")));
        assert!(!t.admits(None));
        assert!(matches!(
            Tokens::parse("# none\n", "t"),
            Err(TokensError::Empty { .. })
        ));
        let err = Tokens::parse("ok\ntwo words\n", "f").err().unwrap();
        assert_eq!(
            err.to_string(),
            "f:2: a token is one word of printable characters, without spaces"
        );
    }
}
