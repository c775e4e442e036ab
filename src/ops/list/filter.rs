//! `--filter` and `--sort`: parsed the way `hf cache ls` spells them, applied to rows of either
//! side. Values a side does not know (a remote repo's type before its manifest is read) never
//! match.

use std::time::{Duration, SystemTime};

use super::Entry;
use crate::cache::RepoType;
use crate::config::{parse_duration, parse_size, ConfigError};

const FILTER_HINT: &str = "filters look like size>1GB, accessed>30d, modified<7d, type=dataset, \
                           refs=main; operators: = != > >= < <=";
pub const SORT_HINT: &str =
    "sort keys: name, size, accessed, modified, revisions; add :asc or :desc for the order \
     (size, accessed, modified and revisions descend unless told, as in `hf cache ls`), e.g. \
     --sort size:asc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// Longest first, so `>=` is not read as `>` followed by `=…`.
    const SPELLINGS: [(&'static str, Op); 7] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];

    fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
        }
    }
}

/// One `--filter` expression. Times compare ages: `accessed>30d` is "last accessed more than 30
/// days ago".
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Size(Op, u64),
    Accessed(Op, Duration),
    Modified(Op, Duration),
    Type(Op, RepoType),
    Refs(Op, String),
}

pub fn parse_filter(expr: &str) -> Result<Filter, ConfigError> {
    let bad = |why: String| ConfigError::Usage {
        message: format!("invalid --filter {expr:?}: {why}"),
        hint: FILTER_HINT.into(),
    };
    let bad_age = |why: String| ConfigError::Usage {
        message: format!("invalid --filter {expr:?}: {why}"),
        hint: format!("{FILTER_HINT}; {}", crate::config::DURATION_HINT),
    };
    let text = expr.trim();
    let key_end = text
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(text.len());
    let key = text[..key_end].to_ascii_lowercase();
    let rest = text[key_end..].trim_start();
    let (op, value) = Op::SPELLINGS
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
        .ok_or_else(|| bad("expected KEY OPERATOR VALUE".into()))?;
    if key.is_empty() {
        return Err(bad("no key before the operator".into()));
    }
    if value.is_empty() {
        return Err(bad("no value after the operator".into()));
    }
    let equality_only = |what: &str| {
        if matches!(op, Op::Eq | Op::Ne) {
            Ok(())
        } else {
            Err(bad(format!("{what} filters take = or != only")))
        }
    };
    match key.as_str() {
        "size" => Ok(Filter::Size(op, parse_size(value).map_err(bad)?)),
        "accessed" => Ok(Filter::Accessed(
            op,
            parse_duration(value).map_err(bad_age)?,
        )),
        "modified" => Ok(Filter::Modified(
            op,
            parse_duration(value).map_err(bad_age)?,
        )),
        "type" => {
            equality_only("type")?;
            let t = RepoType::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                bad(format!(
                    "unknown repo type {value:?} (expected model, dataset or space)"
                ))
            })?;
            Ok(Filter::Type(op, t))
        }
        "refs" | "ref" => {
            equality_only("refs")?;
            Ok(Filter::Refs(op, value.to_string()))
        }
        other => Err(bad(format!(
            "unknown key {other:?} (expected size, accessed, modified, type or refs)"
        ))),
    }
}

impl Filter {
    /// Unknown values (a remote repo's type before its manifest is read) never match.
    pub fn matches(&self, e: &Entry, now: SystemTime) -> bool {
        let age = |t: Option<SystemTime>| t.map(|t| now.duration_since(t).unwrap_or_default());
        match self {
            Filter::Size(op, n) => e.size.is_some_and(|s| op.holds(s, *n)),
            Filter::Accessed(op, d) => age(e.accessed_at).is_some_and(|a| op.holds(a, *d)),
            Filter::Modified(op, d) => age(e.modified_at).is_some_and(|a| op.holds(a, *d)),
            Filter::Type(op, t) => e.repo_type.is_some_and(|rt| op.holds(rt, *t)),
            Filter::Refs(op, name) => e.refs.as_ref().is_some_and(|refs| {
                let has = refs.iter().any(|r| r.eq_ignore_ascii_case(name));
                has == (*op == Op::Eq)
            }),
        }
    }

    /// Whether it needs what only remote manifest bodies say.
    pub fn needs_manifests(&self, revisions: bool) -> bool {
        match self {
            Filter::Size(..) | Filter::Type(..) => true,
            // Ref names are in the keys; which revision a ref names is in its body.
            Filter::Refs(..) => revisions,
            Filter::Accessed(..) | Filter::Modified(..) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Size,
    Accessed,
    Modified,
    Revisions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

pub fn parse_sort(text: &str) -> Result<Sort, ConfigError> {
    let bad = |why: &str| ConfigError::Usage {
        message: format!("invalid --sort {text:?}: {why}"),
        hint: SORT_HINT.into(),
    };
    let t = text.trim().to_ascii_lowercase();
    let (minus, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.as_str()),
    };
    let (key, order) = match rest.split_once(':') {
        Some((k, "desc")) => (k, Some(true)),
        Some((k, "asc")) => (k, Some(false)),
        Some(_) => return Err(bad("the order after : is asc or desc")),
        None => (rest, None),
    };
    let key = match key {
        "name" => SortKey::Name,
        "size" => SortKey::Size,
        "accessed" => SortKey::Accessed,
        "modified" => SortKey::Modified,
        "revisions" => SortKey::Revisions,
        _ => return Err(bad("unknown key")),
    };
    let descending = match (minus, order) {
        (true, Some(false)) => return Err(bad("- and :asc say opposite orders")),
        (true, _) => true,
        (false, Some(desc)) => desc,
        // As `hf cache ls`: biggest, latest and most first; names in order.
        (false, None) => key != SortKey::Name,
    };
    Ok(Sort { key, descending })
}

pub fn sort_entries(entries: &mut [Entry], sort: Sort) {
    entries.sort_by(|a, b| {
        let by_key = match sort.key {
            SortKey::Name => a.sort_name().cmp(&b.sort_name()),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Accessed => a.accessed_at.cmp(&b.accessed_at),
            SortKey::Modified => a.modified_at.cmp(&b.modified_at),
            SortKey::Revisions => a.revisions.cmp(&b.revisions),
        };
        let by_key = if sort.descending {
            by_key.reverse()
        } else {
            by_key
        };
        by_key.then_with(|| a.sort_name().cmp(&b.sort_name()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_like_hf_cache_ls() {
        assert_eq!(
            parse_filter("size>1GB").unwrap(),
            Filter::Size(Op::Gt, 1_000_000_000)
        );
        assert_eq!(
            parse_filter(" accessed >= 30d ").unwrap(),
            Filter::Accessed(Op::Ge, Duration::from_secs(30 * 86400))
        );
        assert_eq!(
            parse_filter("modified<7d").unwrap(),
            Filter::Modified(Op::Lt, Duration::from_secs(7 * 86400))
        );
        assert_eq!(
            parse_filter("type=dataset").unwrap(),
            Filter::Type(Op::Eq, RepoType::Dataset)
        );
        assert_eq!(
            parse_filter("TYPE!=models").unwrap(),
            Filter::Type(Op::Ne, RepoType::Model)
        );
        assert_eq!(
            parse_filter("refs==pr/1").unwrap(),
            Filter::Refs(Op::Eq, "pr/1".into())
        );
        for bad in [
            "size>lots",
            "size",
            "size>",
            ">1GB",
            "colour=red",
            "type>model",
            "type=widget",
            "refs<main",
            "accessed>soon",
        ] {
            let err = parse_filter(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
            assert!(err.hint().is_some(), "{bad}");
        }
    }

    #[test]
    fn sort_keys_and_directions() {
        let s = |t| parse_sort(t).unwrap();
        assert_eq!(
            s("size"),
            Sort {
                key: SortKey::Size,
                descending: true
            }
        );
        assert!(!s("size:asc").descending);
        assert!(!s("name").descending && s("name:desc").descending && s("-name").descending);
        assert_eq!(
            s("-accessed"),
            Sort {
                key: SortKey::Accessed,
                descending: true
            }
        );
        assert_eq!(
            s("modified:desc"),
            Sort {
                key: SortKey::Modified,
                descending: true
            }
        );
        assert_eq!(s("revisions:asc").key, SortKey::Revisions);
        assert!(parse_sort("weight").is_err());
        assert!(parse_sort("-size:asc").is_err());
        assert!(parse_sort("size:up").is_err());
    }

    #[test]
    fn filters_compare_ages_and_skip_unknowns() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86400);
        let e = Entry {
            size: Some(2_000_000_000),
            accessed_at: Some(now - Duration::from_secs(40 * 86400)),
            repo_type: Some(RepoType::Model),
            refs: Some(vec!["main".into()]),
            ..Default::default()
        };
        let yes = |f: &str| parse_filter(f).unwrap().matches(&e, now);
        assert!(yes("size>1GB"));
        assert!(!yes("size<1GB"));
        assert!(yes("accessed>30d"));
        assert!(!yes("accessed<30d"));
        // Unknown modification time: neither older nor newer.
        assert!(!yes("modified>1d") && !yes("modified<1d"));
        assert!(yes("type=model") && !yes("type=dataset") && yes("type!=space"));
        assert!(yes("refs=MAIN") && !yes("refs=pr/1") && yes("refs!=pr/1"));
    }
}
