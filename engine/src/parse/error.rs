//! The text of a policy error: where it is (`file:line:col`) and serde's type errors put in the
//! words of the policy reference.

use std::fmt;
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub origin: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for PolicyError {}

/// Builds the error for a span of the text being parsed (its file, line and column).
pub(super) type ErrAt<'a> = &'a dyn Fn(Range<usize>, String) -> PolicyError;

/// Turns serde's wording (`invalid type: integer `5` as i128, expected u64`) into what the user
/// wrote and what the field expects, naming the field.
pub(super) fn humanize(text: &str, offset: usize, message: &str) -> String {
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    let Some((found, expected)) = body.and_then(|b| b.rsplit_once(", expected ")) else {
        return message.to_string();
    };
    let key = key_at(text, offset);
    let expected = match key.as_deref().and_then(field_expects) {
        Some(e) => e.to_string(),
        None => match expected {
            "u64" | "i64" | "u32" => "a whole number from 0 to 18446744073709551615".to_string(),
            "a sequence" => "an array".to_string(),
            "a boolean" => "true or false".to_string(),
            "any value" => "a value".to_string(),
            other => other.to_string(),
        },
    };
    let found = found
        .replace(" as i128", "")
        .replace(" as u128", "")
        .replace("floating point", "number")
        .replace("map", "table")
        .replace("sequence", "array")
        .replace('`', "");
    let found = if found.starts_with("integer ") && found.len() > 26 {
        format!("{found} (too large)")
    } else if found.starts_with("integer -") {
        format!("{found} (negative)")
    } else {
        found
    };
    match key {
        Some(k) => format!("`{k}` expects {expected}, not {found}"),
        None => format!("expected {expected}, not {found}"),
    }
}

/// What a field expects, in the words of the policy reference (docs/reference.md), for type errors.
fn field_expects(key: &str) -> Option<&'static str> {
    Some(match key {
        "on" => "an op name or an array of them, e.g. \"reads\" or [\"recv\", \"send\"]",
        "fd" => "an fd kind or an array of them, e.g. \"tcp\" or [\"tcp\", \"unix\"]",
        "window" => "an array of two durations, e.g. [\"2s\", \"10s\"]",
        "quirks" | "no_quirks" => "an array of quirk names, e.g. [\"no-accept4\"]",
        "probability" | "quirk_probability" => "a number from 0.0 to 1.0",
        "seed" | "after" | "every" | "times" | "min_bytes" => {
            "a whole number from 0 to 18446744073709551615"
        }
        "fault" => "a fault, e.g. \"ECONNRESET\" or { delay = \"10ms\" }",
        "any_errno" => "true or false",
        "signal" => "a signal name, e.g. \"SIGUSR1\"",
        "platform" => "a platform name, e.g. \"macos\"",
        "name" => "a string",
        _ => return None,
    })
}

/// The key whose value starts at `offset`, from the text before it on its line (`key = `).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line = text[..offset].rsplit('\n').next()?;
    let (before, _) = line.rsplit_once('=')?;
    let key = before.rsplit(['{', ',']).next()?.trim();
    let key = key.rsplit('.').next()?.trim().trim_matches('"');
    (!key.is_empty() && !key.contains(' ')).then(|| key.to_string())
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
