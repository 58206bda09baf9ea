//! A toxic fault table (`{ latency = "100ms", jitter = "20ms" }`…) -> `Toxics`.

use super::units::{parse_bytes, parse_duration};
use crate::toxic::Toxics;

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
pub(super) fn parse(t: &toml::Table) -> Result<Toxics, String> {
    let text = |key: &str| -> Result<Option<&str>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| format!("`{key}` takes a string, e.g. {}", example(key))),
        }
    };
    let duration = |key: &str| -> Result<Option<u64>, String> {
        text(key)?
            .map(|s| parse_duration(s).map_err(|m| format!("`{key}`: {m}")))
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
        return Err("`jitter` varies a `latency`: give one, e.g. { latency = \"100ms\", jitter = \"20ms\" }".into());
    }
    if let Some(rate) = text("bandwidth")? {
        let bytes = rate.strip_suffix("/s").ok_or_else(|| {
            format!("bandwidth `{rate}`: expected bytes per second, e.g. \"512KB/s\"")
        })?;
        x.bandwidth = Some(parse_bytes(bytes).map_err(|m| format!("bandwidth `{rate}`: {m}"))?);
    }
    match t.get("blackhole") {
        None => {}
        Some(toml::Value::Boolean(true)) => x.blackhole = true,
        Some(toml::Value::String(s)) => {
            x.blackhole = true;
            x.reset_after_blackhole_ns =
                Some(parse_duration(s).map_err(|m| format!("`blackhole`: {m}"))?);
        }
        Some(_) => {
            return Err(
                "`blackhole` takes true (for as long as the rule is on) or how long before the \
                 connection ends, e.g. \"5s\" with then = \"reset\""
                    .into(),
            );
        }
    }
    if let Some(limit) = text("limit_data")? {
        x.limit_data = Some(parse_bytes(limit).map_err(|m| format!("limit_data: {m}"))?);
    }
    let ends = x.limit_data.is_some() || x.reset_after_blackhole_ns.is_some();
    match text("then")? {
        None | Some("close") => {}
        Some("reset") => x.limit_resets = true,
        Some(other) => {
            return Err(format!(
                "then `{other}`: expected \"close\" (a FIN both ways, the default) or \"reset\" (a real RST)"
            ));
        }
    }
    if t.contains_key("then") && !ends {
        return Err(
            "`then` says how a connection ends: it goes with `limit_data` or a timed `blackhole`"
                .into(),
        );
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
            let e = parse(&table(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(is_toxic_table(&table("latency = \"1ms\"")));
        assert!(!is_toxic_table(&table("delay = \"1ms\"")));
    }
}
