//! JUnit XML for `sweep --junit`: one testcase per seed, the form every CI system displays.

use std::fmt::Write as _;

pub struct Case {
    pub name: String,
    pub seconds: f64,
    /// None when it passed; otherwise the failure's one-line message and its details.
    pub failure: Option<(String, String)>,
    /// Why it has no verdict: never started, or killed when the sweep was interrupted.
    pub skipped: Option<String>,
}

/// XML-escapes text, dropping the control characters XML 1.0 cannot carry.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn render(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let total: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        escape(suite),
        cases.len()
    );
    for c in cases {
        let _ = write!(
            x,
            "    <testcase classname=\"chaos.sweep\" name=\"{}\" time=\"{:.3}\"",
            escape(&c.name),
            c.seconds
        );
        match (&c.failure, &c.skipped) {
            (None, None) => x.push_str("/>\n"),
            (None, Some(why)) => {
                let _ = writeln!(
                    x,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(why)
                );
            }
            (Some((message, details)), _) => {
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    escape(message),
                    escape(details)
                );
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
        let x = render(
            "s",
            &[Case {
                name: "seed 1".into(),
                seconds: 0.5,
                failure: Some(("exit 1".into(), "<boom>".into())),
                skipped: None,
            }],
        );
        assert!(x.contains("failures=\"1\""));
        assert!(x.contains("&lt;boom&gt;"));
    }
}
