//! A rule's or an injection's `fault` value -> `Fault`: its syntax, not whether it fits the rule
//! (`fits`).

use super::toxic::ToxicError;
use super::units::{UnitError, parse_duration, parse_errno, parse_ns_range, parse_short};
use crate::fault::{Fault, RESOLVER_ERRORS};
use std::fmt;

const FAULT_HELP: &str = "expected an errno name (\"ECONNRESET\", \"EINTR\"...), \
{ errno = \"...\" }, { errno = \"ETIMEDOUT\", after = \"3s\" }, { reset = true }, { delay = \"10ms..200ms\" }, { short = \"1..50%\" } \
{ stall = \"5ms..200ms\" }, \"drop\", \"duplicate\" (udp), a process fault: \"crash\", \"terminate\", { pause = \"2s\" }, \
or toxics: { latency = \"100ms\", jitter = \"20ms\" }, { bandwidth = \"512KB/s\" }, { blackhole = true }, { limit_data = \"64KB\", then = \"close\" }, { reset_after = \"500ms\" }";

/// Why a `fault` value is not a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// Neither a string nor a table.
    NotAFault,
    UnknownResolver(String),
    /// This key of a fault table takes a string.
    NotAString(String),
    /// `{ errno = NAME, after = … }` with NAME other than ETIMEDOUT.
    AfterNotTimedOut(String),
    AfterNotADuration,
    /// A fault table with several keys that are not one known pair.
    TableKeys,
    ResetNotTrue,
    /// `short = "50..1"`: the text, its ends, whether it was in percent.
    ShortBackwards {
        text: String,
        lo: u64,
        hi: u64,
        percent: bool,
    },
    Reorder,
    UnknownFault(String),
    Unit(UnitError),
    Toxic(ToxicError),
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            FaultError::NotAFault => f.write_str(FAULT_HELP),
            FaultError::UnknownResolver(s) => write!(
                f,
                "unknown resolver error `{s}`; expected EAI_AGAIN, EAI_NONAME or EAI_FAIL"
            ),
            FaultError::NotAString(key) => write!(f, "`{key}` takes a string; {FAULT_HELP}"),
            FaultError::AfterNotTimedOut(name) => write!(
                f,
                "`after` applies to ETIMEDOUT (the time a connect's SYN retries take), not to {name}"
            ),
            FaultError::AfterNotADuration => {
                f.write_str("`after` takes a duration string, e.g. \"3s\"")
            }
            FaultError::TableKeys => write!(f, "a fault table has exactly one key; {FAULT_HELP}"),
            FaultError::ResetNotTrue => f.write_str("`reset` takes `true`"),
            FaultError::ShortBackwards {
                text,
                lo,
                hi,
                percent,
            } => write!(
                f,
                "short `{text}`: the start ({lo}) is after the end ({hi}); write the smaller first, \
                 e.g. \"{hi}..{lo}{}\"",
                if *percent { "%" } else { "" }
            ),
            FaultError::Reorder => {
                f.write_str("`reorder` takes how many later datagrams overtake this one: 1 to 64")
            }
            FaultError::UnknownFault(key) => write!(f, "unknown fault `{key}`; {FAULT_HELP}"),
            FaultError::Unit(e) => e.fmt(f),
            FaultError::Toxic(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FaultError {}

impl From<UnitError> for FaultError {
    fn from(e: UnitError) -> FaultError {
        FaultError::Unit(e)
    }
}

impl From<ToxicError> for FaultError {
    fn from(e: ToxicError) -> FaultError {
        FaultError::Toxic(e)
    }
}

pub(super) fn parse_fault(value: &toml::Value) -> Result<Fault, FaultError> {
    let errno_fault =
        |name: &str| -> Result<Fault, FaultError> { Ok(Fault::Errno(parse_errno(name)?)) };
    match value {
        toml::Value::String(s) if s == "reset" => Ok(Fault::Reset),
        toml::Value::String(s) if s.starts_with("EAI_") => RESOLVER_ERRORS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, c)| Fault::Resolver(*c))
            .ok_or_else(|| FaultError::UnknownResolver(s.clone())),
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
                .ok_or_else(|| FaultError::NotAString("errno".into()))?;
            let errno = parse_errno(name)?;
            if errno != libc::ETIMEDOUT {
                return Err(FaultError::AfterNotTimedOut(name.to_string()));
            }
            let after = t["after"].as_str().ok_or(FaultError::AfterNotADuration)?;
            let after_ns = parse_duration(after)?;
            Ok(Fault::ErrnoAfter { errno, after_ns })
        }
        toml::Value::Table(t) if super::toxic::is_toxic_table(t) => {
            Ok(Fault::Toxic(super::toxic::parse(t)?))
        }
        toml::Value::Table(t) => {
            if t.len() != 1 {
                return Err(FaultError::TableKeys);
            }
            let (key, v) = t.iter().next().expect("one entry");
            let text = || {
                v.as_str()
                    .ok_or_else(|| FaultError::NotAString(key.clone()))
            };
            match key.as_str() {
                "errno" => errno_fault(text()?),
                "reset" if v.as_bool() == Some(true) => Ok(Fault::Reset),
                "reset" => Err(FaultError::ResetNotTrue),
                "delay" => Ok(Fault::Delay(parse_ns_range(text()?)?)),
                "short" => {
                    let t = text()?;
                    parse_short(t)
                        .map(Fault::Short)
                        .map_err(|e| short_backwards(t).unwrap_or(FaultError::Unit(e)))
                }
                "stall" => Ok(Fault::Stall(parse_ns_range(text()?)?)),
                "reorder" => match v.as_integer() {
                    Some(n @ 1..=64) => Ok(Fault::Reorder(n as u32)),
                    _ => Err(FaultError::Reorder),
                },
                "pause" => Ok(Fault::Pause(parse_ns_range(text()?)?)),
                other => Err(FaultError::UnknownFault(other.to_string())),
            }
        }
        _ => Err(FaultError::NotAFault),
    }
}

/// `short = "50..1"`: say that the range is backwards rather than just what a range looks like.
fn short_backwards(text: &str) -> Option<FaultError> {
    let t = text.trim();
    let (body, percent) = match t.strip_suffix('%') {
        Some(b) => (b, true),
        None => (t, false),
    };
    let (a, b) = body.split_once("..")?;
    let (a, b) = (a.trim().trim_end_matches('%'), b.trim());
    let (lo, hi) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
    (lo > hi).then(|| FaultError::ShortBackwards {
        text: text.to_string(),
        lo,
        hi,
        percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(text: &str) -> Result<Fault, FaultError> {
        let t: toml::Table = format!("fault = {text}").parse().unwrap();
        parse_fault(&t["fault"])
    }

    #[test]
    fn each_bad_fault_says_what_it_is() {
        assert_eq!(
            fault("\"EAI_X\""),
            Err(FaultError::UnknownResolver("EAI_X".into()))
        );
        assert_eq!(
            fault("{ errno = \"ECONNRESET\", after = \"3s\" }"),
            Err(FaultError::AfterNotTimedOut("ECONNRESET".into()))
        );
        let e = fault("{ short = \"50..1%\" }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "short `50..1%`: the start (50) is after the end (1); write the smaller first, \
             e.g. \"1..50%\""
        );
        assert_eq!(
            fault("{ delay = \"soon\" }"),
            Err(FaultError::Unit(UnitError::DurationUnit("soon".into())))
        );
        assert_eq!(fault("5"), Err(FaultError::NotAFault));
        assert_eq!(fault("{ reorder = 0 }"), Err(FaultError::Reorder));
    }
}
