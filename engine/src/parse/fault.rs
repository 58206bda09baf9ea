//! A rule's or an injection's `fault` value -> `Fault`: its syntax, not whether it fits the rule
//! (`fits`).

use super::units::{parse_duration, parse_errno, parse_ns_range, parse_short};
use crate::fault::{Fault, RESOLVER_ERRORS};

const FAULT_HELP: &str = "expected an errno name (\"ECONNRESET\", \"EINTR\"...), \
{ errno = \"...\" }, { errno = \"ETIMEDOUT\", after = \"3s\" }, { reset = true }, { delay = \"10ms..200ms\" }, { short = \"1..50%\" } \
{ stall = \"5ms..200ms\" }, \"drop\", \"duplicate\" (udp), a process fault: \"crash\", \"terminate\", { pause = \"2s\" }, \
or toxics: { latency = \"100ms\", jitter = \"20ms\" }, { bandwidth = \"512KB/s\" }, { blackhole = true }, { limit_data = \"64KB\", then = \"close\" }, { reset_after = \"500ms\" }";

pub(super) fn parse_fault(value: &toml::Value) -> Result<Fault, String> {
    let errno_fault =
        |name: &str| -> Result<Fault, String> { Ok(Fault::Errno(parse_errno(name)?)) };
    match value {
        toml::Value::String(s) if s == "reset" => Ok(Fault::Reset),
        toml::Value::String(s) if s.starts_with("EAI_") => RESOLVER_ERRORS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, c)| Fault::Resolver(*c))
            .ok_or_else(|| {
                format!("unknown resolver error `{s}`; expected EAI_AGAIN, EAI_NONAME or EAI_FAIL")
            }),
        toml::Value::String(s) if s == "drop" => Ok(Fault::Drop),
        toml::Value::String(s) if s == "duplicate" => Ok(Fault::Duplicate),
        toml::Value::String(s) if s == "crash" => Ok(Fault::Crash),
        toml::Value::String(s) if s == "power-loss" => Ok(Fault::PowerLoss),
        toml::Value::String(s) if s == "terminate" => Ok(Fault::Terminate),
        toml::Value::String(s) => errno_fault(s),
        toml::Value::Table(t)
            if t.len() == 2 && t.contains_key("errno") && t.contains_key("after") =>
        {
            let name = t["errno"]
                .as_str()
                .ok_or_else(|| format!("`errno` takes a string; {FAULT_HELP}"))?;
            let errno = parse_errno(name)?;
            if errno != libc::ETIMEDOUT {
                return Err(format!(
                    "`after` applies to ETIMEDOUT (the time a connect's SYN retries take), not to {name}"
                ));
            }
            let after = t["after"]
                .as_str()
                .ok_or_else(|| "`after` takes a duration string, e.g. \"3s\"".to_string())?;
            let after_ns = parse_duration(after)?;
            Ok(Fault::ErrnoAfter { errno, after_ns })
        }
        toml::Value::Table(t) if super::toxic::is_toxic_table(t) => {
            Ok(Fault::Toxic(super::toxic::parse(t)?))
        }
        toml::Value::Table(t) => {
            if t.len() != 1 {
                return Err(format!("a fault table has exactly one key; {FAULT_HELP}"));
            }
            let (key, v) = t.iter().next().expect("one entry");
            let text = || {
                v.as_str()
                    .ok_or_else(|| format!("`{key}` takes a string; {FAULT_HELP}"))
            };
            match key.as_str() {
                "errno" => errno_fault(text()?),
                "reset" if v.as_bool() == Some(true) => Ok(Fault::Reset),
                "reset" => Err("`reset` takes `true`".into()),
                "delay" => Ok(Fault::Delay(parse_ns_range(text()?)?)),
                "short" => {
                    let t = text()?;
                    parse_short(t)
                        .map(Fault::Short)
                        .map_err(|m| short_backwards(t).unwrap_or_else(|| m.into()))
                }
                "stall" => Ok(Fault::Stall(parse_ns_range(text()?)?)),
                "reorder" => match v.as_integer() {
                    Some(n @ 1..=64) => Ok(Fault::Reorder(n as u32)),
                    _ => Err(
                        "`reorder` takes how many later datagrams overtake this one: 1 to 64"
                            .into(),
                    ),
                },
                "pause" => Ok(Fault::Pause(parse_ns_range(text()?)?)),
                other => Err(format!("unknown fault `{other}`; {FAULT_HELP}")),
            }
        }
        _ => Err(FAULT_HELP.to_string()),
    }
}

/// `short = "50..1"`: say that the range is backwards rather than just what a range looks like.
fn short_backwards(text: &str) -> Option<String> {
    let t = text.trim();
    let (body, pct) = match t.strip_suffix('%') {
        Some(b) => (b, "%"),
        None => (t, ""),
    };
    let (a, b) = body.split_once("..")?;
    let (a, b) = (a.trim().trim_end_matches('%'), b.trim());
    let (lo, hi) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
    (lo > hi).then(|| {
        format!(
            "short `{text}`: the start ({lo}) is after the end ({hi}); write the smaller first, \
             e.g. \"{hi}..{lo}{pct}\""
        )
    })
}
