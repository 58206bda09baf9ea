//! A toxic fault table (`{ latency = "100ms", jitter = "20ms" }`…) -> `Toxics`.

use super::units::{UnitError, parse_bytes, parse_duration};
use crate::toxic::Toxics;
use std::fmt;

/// Why a toxic table does not make `Toxics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToxicError {
    /// A key that takes a string was given something else.
    NotAString(&'static str),
    /// A duration key (`latency`, `jitter`, `reset_after`, `slow_close`, a timed `blackhole`).
    Duration(&'static str, UnitError),
    JitterWithoutLatency,
    /// `bandwidth` without `/s`.
    BandwidthUnit(String),
    Bandwidth(String, UnitError),
    /// `blackhole` neither true nor a duration.
    BlackholeValue,
    LimitData(UnitError),
    /// `then` neither "close" nor "reset".
    Then(String),
    /// `then` with nothing that ends the connection.
    ThenAlone,
}

impl fmt::Display for ToxicError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ToxicError::NotAString(key) => {
                write!(f, "`{key}` takes a string, e.g. {}", example(key))
            }
            ToxicError::Duration(key, e) => write!(f, "`{key}`: {e}"),
            ToxicError::JitterWithoutLatency => f.write_str(
                "`jitter` varies a `latency`: give one, e.g. { latency = \"100ms\", jitter = \"20ms\" }",
            ),
            ToxicError::BandwidthUnit(rate) => write!(
                f,
                "bandwidth `{rate}`: expected bytes per second, e.g. \"512KB/s\""
            ),
            ToxicError::Bandwidth(rate, e) => write!(f, "bandwidth `{rate}`: {e}"),
            ToxicError::BlackholeValue => f.write_str(
                "`blackhole` takes true (for as long as the rule is on) or how long before the \
                 connection ends, e.g. \"5s\" with then = \"reset\"",
            ),
            ToxicError::LimitData(e) => write!(f, "limit_data: {e}"),
            ToxicError::Then(other) => write!(
                f,
                "then `{other}`: expected \"close\" (a FIN both ways, the default) or \"reset\" (a real RST)"
            ),
            ToxicError::ThenAlone => f.write_str(
                "`then` says how a connection ends: it goes with `limit_data` or a timed `blackhole`",
            ),
        }
    }
}

impl std::error::Error for ToxicError {}

/// The keys a toxic fault table may hold.
const KEYS: [&str; 8] = [
    "slow_close",
    "latency",
    "jitter",
    "bandwidth",
    "blackhole",
    "then",
    "limit_data",
    "reset_after",
];

/// Whether a fault table is a toxic one (all its keys are toxic keys).
pub(super) fn is_toxic_table(t: &toml::Table) -> bool {
    !t.is_empty() && t.keys().all(|k| KEYS.contains(&k.as_str()))
}

/// `{ latency = "100ms", jitter = "20ms" }`, `{ bandwidth = "512KB/s" }`, `{ blackhole = true }`,
/// `{ blackhole = "5s", then = "reset" }`, `{ limit_data = "64KB", then = "close" }`,
/// `{ reset_after = "500ms" }`, or several of them in one table.
pub(super) fn parse(t: &toml::Table) -> Result<Toxics, ToxicError> {
    let text = |key: &'static str| -> Result<Option<&str>, ToxicError> {
        match t.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or(ToxicError::NotAString(key)),
        }
    };
    let duration = |key: &'static str| -> Result<Option<u64>, ToxicError> {
        text(key)?
            .map(|s| parse_duration(s).map_err(|e| ToxicError::Duration(key, e)))
            .transpose()
    };
    let mut x = Toxics {
        latency_ns: duration("latency")?,
        jitter_ns: duration("jitter")?.unwrap_or(0),
        reset_after_ns: duration("reset_after")?,
        slow_close_ns: duration("slow_close")?,
        ..Toxics::default()
    };
    if t.contains_key("jitter") && x.latency_ns.is_none() {
        return Err(ToxicError::JitterWithoutLatency);
    }
    if let Some(rate) = text("bandwidth")? {
        let bytes = rate
            .strip_suffix("/s")
            .ok_or_else(|| ToxicError::BandwidthUnit(rate.to_string()))?;
        x.bandwidth =
            Some(parse_bytes(bytes).map_err(|e| ToxicError::Bandwidth(rate.to_string(), e))?);
    }
    match t.get("blackhole") {
        None => {}
        Some(toml::Value::Boolean(true)) => x.blackhole = true,
        Some(toml::Value::String(s)) => {
            x.blackhole = true;
            x.reset_after_blackhole_ns =
                Some(parse_duration(s).map_err(|e| ToxicError::Duration("blackhole", e))?);
        }
        Some(_) => {
            return Err(ToxicError::BlackholeValue);
        }
    }
    if let Some(limit) = text("limit_data")? {
        x.limit_data = Some(parse_bytes(limit).map_err(ToxicError::LimitData)?);
    }
    let ends = x.limit_data.is_some() || x.reset_after_blackhole_ns.is_some();
    match text("then")? {
        None | Some("close") => {}
        Some("reset") => x.limit_resets = true,
        Some(other) => {
            return Err(ToxicError::Then(other.to_string()));
        }
    }
    if t.contains_key("then") && !ends {
        return Err(ToxicError::ThenAlone);
    }
    Ok(x)
}

fn example(key: &str) -> &'static str {
    match key {
        "bandwidth" => "\"512KB/s\"",
        "limit_data" => "\"64KB\"",
        "then" => "\"close\" or \"reset\"",
        _ => "\"100ms\"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn toxic_tables_parse_and_bad_ones_say_what_was_expected() {
        let x = parse(&table(
            "latency = \"100ms\"\njitter = \"20ms\"\nbandwidth = \"512KB/s\"",
        ))
        .unwrap();
        assert_eq!(x.latency_ns, Some(100_000_000));
        assert_eq!(x.jitter_ns, 20_000_000);
        assert_eq!(x.bandwidth, Some(512 * 1024));
        let x = parse(&table("blackhole = \"5s\"\nthen = \"reset\"")).unwrap();
        assert!(x.blackhole && x.limit_resets);
        assert_eq!(x.reset_after_blackhole_ns, Some(5_000_000_000));
        let x = parse(&table("limit_data = \"64KB\"")).unwrap();
        assert_eq!((x.limit_data, x.limit_resets), (Some(65536), false));
        for (bad, says) in [
            ("jitter = \"1ms\"", "varies a `latency`"),
            ("bandwidth = \"512KB\"", "bytes per second"),
            ("bandwidth = \"fast/s\"", "not a size"),
            ("blackhole = false", "takes true"),
            (
                "then = \"reset\"\nlatency = \"1ms\"",
                "goes with `limit_data`",
            ),
            (
                "limit_data = \"1K\"\nthen = \"explode\"",
                "expected \"close\"",
            ),
            ("latency = 5", "takes a string"),
        ] {
            let e = parse(&table(bad)).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(
            parse(&table("blackhole = \"soon\"")),
            Err(ToxicError::Duration(
                "blackhole",
                UnitError::DurationUnit("soon".into())
            ))
        );
        assert_eq!(
            parse(&table("latency = \"1ms\"\nthen = \"close\"")),
            Err(ToxicError::ThenAlone)
        );
        assert!(is_toxic_table(&table("latency = \"1ms\"")));
        assert!(!is_toxic_table(&table("delay = \"1ms\"")));
    }
}
