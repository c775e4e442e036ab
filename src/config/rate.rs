//! Transfer rates as `--limit-rate`, `transfer.limit_rate` and `HF_CACHE_SYNC_LIMIT_RATE` take
//! them: bytes per second, with the `K`, `M` and `G` suffixes curl's `--limit-rate` and
//! rclone's `--bwlimit` read as powers of 1024.

use std::num::NonZeroU64;

/// A cap on the bytes a run moves per second; never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(NonZeroU64);

/// What a rate looks like, for the errors about one.
pub const RATE_FORMS: &str = "a rate is bytes per second, as a whole or decimal number \
     optionally followed by K, M or G (powers of 1024, as curl --limit-rate reads them; \
     KiB, MiB, GiB too)";

impl Rate {
    pub fn bytes_per_second(self) -> u64 {
        self.0.get()
    }

    /// `50M`, `500k`, `1.5G`, `100KiB`, `1048576`: a whole or decimal number, then nothing or
    /// `B` (bytes), or `K`, `M` or `G` (2^10, 2^20, 2^30 bytes; either case), each optionally
    /// followed by `i` or `iB`. `KB`, `MB` and `GB` are refused: some read them as powers of
    /// 1000, some of 1024. The error says what is wrong, without an example: the caller knows
    /// where the value came from and shows one for that place.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty rate".into());
        }
        if text.starts_with('-') {
            return Err(format!("{text:?}: a rate cannot be negative"));
        }
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(format!("{text:?} is not a rate"));
        }
        let multiplier = unit_multiplier(unit).ok_or_else(|| match unit.to_ascii_lowercase() {
            u if ["kb", "mb", "gb"].contains(&u.as_str()) => format!(
                "{text:?}: {unit} is ambiguous (powers of 1000 or of 1024?); write {}{} or \
                 {}{}iB",
                number,
                &unit[..1],
                number,
                &unit[..1]
            ),
            _ => format!("{text:?}: unknown unit {unit:?}"),
        })?;
        let too_large = || format!("{text:?} is too large a rate");
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let whole = whole.checked_mul(multiplier).ok_or_else(too_large)?;
        // The digits after the point, each exact; only their sum is rounded (down).
        let fraction = if fraction.is_empty() {
            0
        } else {
            let part: f64 = format!("0.{fraction}")
                .parse()
                .map_err(|_| format!("{text:?} is not a rate"))?;
            (part * multiplier as f64).floor() as u64
        };
        let bytes = whole.checked_add(fraction).ok_or_else(too_large)?;
        NonZeroU64::new(bytes)
            .map(Rate)
            .ok_or_else(|| format!("{text:?}: a rate must be at least 1 byte per second"))
    }
}

/// The bytes one unit of `unit` stands for, or `None` for a unit that is not one.
fn unit_multiplier(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    let (prefix, rest) = match lower.char_indices().nth(1) {
        Some((i, _)) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let power = match prefix {
        "" | "b" if rest.is_empty() => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        _ => return None,
    };
    match rest {
        "" | "i" | "ib" => Some(1u64 << (10 * power)),
        _ => None,
    }
}

impl std::fmt::Display for Rate {
    /// `50.0 MiB/s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/s",
            bytesize::ByteSize::b(self.bytes_per_second())
                .display()
                .iec()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> u64 {
        Rate::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .bytes_per_second()
    }

    #[test]
    fn rates_read_as_curl_and_rclone_read_them() {
        const K: u64 = 1024;
        for (text, expected) in [
            ("1", 1),
            ("1048576", 1 << 20),
            ("100K", 100 * K),
            ("100k", 100 * K),
            ("50M", 50 * K * K),
            ("50m", 50 * K * K),
            ("1G", K * K * K),
            ("1g", K * K * K),
            ("50MiB", 50 * K * K),
            ("50Mi", 50 * K * K),
            ("50mib", 50 * K * K),
            ("2KIB", 2 * K),
            ("512B", 512),
            ("512b", 512),
            ("1.5M", 3 * K * K / 2),
            ("0.5K", 512),
            (".5K", 512),
            ("2.K", 2 * K),
            (" 10M ", 10 * K * K),
            ("1.9", 1),
            ("16G", 16 * K * K * K),
        ] {
            assert_eq!(bytes(text), expected, "{text}");
        }
        // The largest rate there is, and one byte more.
        assert_eq!(bytes(&u64::MAX.to_string()), u64::MAX);
        assert!(Rate::parse("18446744073709551616").is_err());
    }

    #[test]
    fn a_bad_rate_says_what_is_wrong() {
        for (text, says) in [
            ("", "empty"),
            ("   ", "empty"),
            ("0", "at least 1 byte per second"),
            ("0K", "at least 1 byte per second"),
            ("0.0", "at least 1 byte per second"),
            ("0.1", "at least 1 byte per second"),
            ("-5M", "cannot be negative"),
            ("-1", "cannot be negative"),
            ("fast", "is not a rate"),
            ("M", "is not a rate"),
            (".", "is not a rate"),
            (".M", "is not a rate"),
            ("1.2.3M", "is not a rate"),
            ("10X", "unknown unit \"X\""),
            ("10 M", "unknown unit \" M\""),
            ("10MiBps", "unknown unit"),
            ("1e6", "unknown unit \"e6\""),
            ("10T", "unknown unit \"T\""),
            ("50M/s", "unknown unit \"M/s\""),
            ("inf", "is not a rate"),
            ("NaN", "is not a rate"),
            ("+5M", "is not a rate"),
            ("50MB", "MB is ambiguous"),
            ("50kb", "kb is ambiguous"),
            ("99999999999999999999", "too large"),
            ("17179869184G", "too large"),
            ("16777216T", "unknown unit"),
            ("18446744073709551615.5K", "too large"),
        ] {
            let err = Rate::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let err = Rate::parse("50MB").unwrap_err();
        assert!(err.contains("write 50M or 50MiB"), "{err}");
    }

    #[test]
    fn a_rate_prints_in_binary_units() {
        assert_eq!(Rate::parse("50M").unwrap().to_string(), "50.0 MiB/s");
        assert_eq!(Rate::parse("100").unwrap().to_string(), "100 B/s");
    }
}
