//! The value syntaxes a policy uses: durations, ranges of them, windows, short-transfer sizes,
//! errno names, byte sizes and CPU percentages. Each returns the value or a `UnitError`, whose
//! text says what was expected.

use crate::errno::errno_value;
use crate::fault::{NsRange, ShortSpec};
use std::fmt;

/// A value not written in its syntax; each holds the text as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitError {
    /// A duration without one of the units ns, us, ms, s, m or h.
    DurationUnit(String),
    /// A duration whose number does not parse.
    DurationNumber(String),
    /// A duration over a day.
    DurationRange(String),
    /// Not two durations, start before end.
    Window,
    /// `"3ms..1ms"`.
    RangeBackwards(String),
    /// A percentage short size outside 1..99, or backwards.
    ShortPercent(String),
    /// A short size that is neither percentages nor bytes.
    Short(String),
    UnknownErrno(String),
    /// A size whose unit is not B, K, M or G (with their KB/KiB spellings).
    SizeUnit(String),
    /// A size whose number does not parse.
    SizeNumber(String),
    /// A size of 0, or beyond 2^64 bytes.
    SizeRange(String),
    /// Not a percentage of one CPU from 1% to 6400%.
    CpuPercent(String),
}

const SHORT_EXPECTED: &str = "expected \"1..50%\" (percent of the request) or \"1..512\" (bytes)";

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            UnitError::DurationUnit(t) => write!(
                f,
                "`{t}` is not a duration; expected a number with ns, us, ms, s, m or h (e.g. 10ms)"
            ),
            UnitError::DurationNumber(t) => {
                write!(f, "`{t}` is not a duration; expected e.g. 10ms")
            }
            UnitError::DurationRange(t) => write!(f, "`{t}` is out of range (0 to 24h)"),
            UnitError::Window => f.write_str(
                "`window` must be two durations, start before end, e.g. [\"2s\", \"60s\"]",
            ),
            UnitError::RangeBackwards(t) => write!(f, "`{t}`: the range's start is after its end"),
            UnitError::ShortPercent(t) => write!(
                f,
                "short `{t}`: percentages must be 1..99 with start <= end; {SHORT_EXPECTED}"
            ),
            UnitError::Short(t) => write!(f, "short `{t}`: {SHORT_EXPECTED}"),
            UnitError::UnknownErrno(n) => write!(
                f,
                "unknown errno `{n}`; expected a Linux errno name such as ECONNRESET, EINTR, EPIPE"
            ),
            UnitError::SizeUnit(t) => write!(
                f,
                "`{t}` is not a size; expected e.g. \"256M\", \"1G\" or \"512K\""
            ),
            UnitError::SizeNumber(t) => write!(f, "`{t}` is not a size; expected e.g. \"256M\""),
            UnitError::SizeRange(t) => write!(f, "`{t}` is out of range"),
            UnitError::CpuPercent(t) => write!(
                f,
                "cpu `{t}`: expected a percentage of one CPU, e.g. \"50%\""
            ),
        }
    }
}

impl std::error::Error for UnitError {}

/// Parses `"10ms"`, `"1.5s"`, `"250us"`, `"100ns"`, `"2m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: f64 = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(UnitError::DurationUnit(text.to_string()));
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| UnitError::DurationNumber(text.to_string()))?;
    let ns = value * scale;
    if !(0.0..=86_400e9).contains(&ns) {
        return Err(UnitError::DurationRange(text.to_string()));
    }
    Ok(ns as u64)
}

/// `window = ["2s", "60s"]`: two durations, start before end, as `[start, end)` in ns.
pub fn parse_window(parts: &[String]) -> Result<(u64, u64), UnitError> {
    if parts.len() != 2 {
        return Err(UnitError::Window);
    }
    let (start, end) = (parse_duration(&parts[0])?, parse_duration(&parts[1])?);
    if start >= end {
        return Err(UnitError::Window);
    }
    Ok((start, end))
}

/// Splits `"a..b"` into its ends; a single value is a range of one.
fn split_range(text: &str) -> (&str, &str) {
    match text.split_once("..") {
        Some((a, b)) => (a, b),
        None => (text, text),
    }
}

pub fn parse_ns_range(text: &str) -> Result<NsRange, UnitError> {
    let (a, b) = split_range(text);
    let (lo, hi) = (parse_duration(a)?, parse_duration(b)?);
    if lo > hi {
        return Err(UnitError::RangeBackwards(text.to_string()));
    }
    Ok(NsRange { lo, hi })
}

pub fn parse_short(text: &str) -> Result<ShortSpec, UnitError> {
    let t = text.trim();
    if let Some(body) = t.strip_suffix('%') {
        let (a, b) = split_range(body);
        let (lo, hi) = (a.trim().trim_end_matches('%'), b.trim());
        let parse = |s: &str| s.parse::<u8>().ok().filter(|v| (1..=99).contains(v));
        match (parse(lo), parse(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => Ok(ShortSpec::Percent { lo, hi }),
            _ => Err(UnitError::ShortPercent(text.to_string())),
        }
    } else {
        let (a, b) = split_range(t);
        match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
            (Ok(lo), Ok(hi)) if lo >= 1 && lo <= hi => Ok(ShortSpec::Bytes { lo, hi }),
            _ => Err(UnitError::Short(text.to_string())),
        }
    }
}

/// Parses an errno name as a policy writes it.
pub fn parse_errno(name: &str) -> Result<i32, UnitError> {
    errno_value(name).ok_or_else(|| UnitError::UnknownErrno(name.to_string()))
}

/// `256M`, `1G`, `512K`, `1048576` (bytes); `MB`/`MiB` spellings too, all powers of 1024.
pub fn parse_bytes(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => {
            return Err(UnitError::SizeUnit(text.to_string()));
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| UnitError::SizeNumber(text.to_string()))?;
    n.checked_mul(scale)
        .filter(|&b| b > 0)
        .ok_or_else(|| UnitError::SizeRange(text.to_string()))
}

/// `50%` of one CPU; `150%` is one and a half.
pub fn parse_percent(text: &str) -> Result<u32, UnitError> {
    text.trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| (1..=6400).contains(n))
        .ok_or_else(|| UnitError::CpuPercent(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ranges() {
        assert_eq!(parse_duration("10ms").unwrap(), 10_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("7us").unwrap(), 7_000);
        assert_eq!(parse_duration("2m").unwrap(), 120_000_000_000);
        assert_eq!(parse_duration("1h").unwrap(), 3_600_000_000_000);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("fast").is_err());
        assert_eq!(
            parse_ns_range("1ms..3ms").unwrap(),
            NsRange {
                lo: 1_000_000,
                hi: 3_000_000
            }
        );
        assert!(parse_ns_range("3ms..1ms").is_err());
    }

    #[test]
    fn short_sizes_parse_as_percentages_or_bytes() {
        assert_eq!(
            parse_short("1..50%").unwrap(),
            ShortSpec::Percent { lo: 1, hi: 50 }
        );
        assert_eq!(
            parse_short("1..512").unwrap(),
            ShortSpec::Bytes { lo: 1, hi: 512 }
        );
        assert!(parse_short("0..50%").is_err());
        assert!(parse_short("50..10").is_err());
    }

    #[test]
    fn each_bad_value_says_which_syntax_it_broke() {
        assert_eq!(
            parse_duration("10"),
            Err(UnitError::DurationUnit("10".into()))
        );
        assert_eq!(
            parse_duration("10").unwrap_err().to_string(),
            "`10` is not a duration; expected a number with ns, us, ms, s, m or h (e.g. 10ms)"
        );
        assert_eq!(
            parse_ns_range("3ms..1ms"),
            Err(UnitError::RangeBackwards("3ms..1ms".into()))
        );
        assert_eq!(
            parse_window(&["5s".into(), "1s".into()]),
            Err(UnitError::Window)
        );
        assert_eq!(parse_bytes("0"), Err(UnitError::SizeRange("0".into())));
        assert_eq!(
            parse_errno("ENOPE").unwrap_err().to_string(),
            "unknown errno `ENOPE`; expected a Linux errno name such as ECONNRESET, EINTR, EPIPE"
        );
    }
}
