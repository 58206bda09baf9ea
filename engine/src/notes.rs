//! Notes on a valid policy: things `chaos-ctl validate` points out without rejecting the policy,
//! because the realism model lets the rule do something Linux does only in unusual conditions.
//!
//! Pure functions of the parsed policy (and, for line numbers, of its text), so they are tested
//! here and the CLI only prints them.

use crate::fault::{Fault, ShortSpec};
use crate::kind::FdKind;
use crate::op::OpClass;
use crate::policy::{Policy, Rule};
use crate::realise::MIN_SEGMENT;
use serde::Deserialize;
use toml::Spanned;

/// One remark about one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The rule's index in `Policy::rules`.
    pub rule: usize,
    pub message: String,
}

impl Note {
    /// `note: rule "NAME" (ORIGIN:LINE): MESSAGE`; without a line, `(ORIGIN)`.
    pub fn render(&self, policy: &Policy, line: Option<usize>) -> String {
        let name = policy
            .rules
            .get(self.rule)
            .map(|r| r.name.as_str())
            .unwrap_or("?");
        let at = match line {
            Some(l) => format!("{}:{l}", policy.origin),
            None => policy.origin.clone(),
        };
        format!("note: rule \"{name}\" ({at}): {}", self.message)
    }
}

/// Every note for `p`, in rule order.
pub fn policy_notes(p: &Policy) -> Vec<Note> {
    p.rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            tcp_short_below_segment(rule).map(|message| Note { rule: i, message })
        })
        .collect()
}

/// A byte-length short (`short = "1..100"`) is the user's explicit choice, so the model lets a
/// TCP read come back shorter than a segment (rule "below-segment" applies to percentages only).
/// Linux does that only when the receiver's window is nearly closed: worth saying, not refusing.
fn tcp_short_below_segment(rule: &Rule) -> Option<String> {
    let Fault::Short(ShortSpec::Bytes { lo, .. }) = rule.fault else {
        return None;
    };
    // recvmmsg moves whole messages and is never shortened.
    let shortens_reads = rule
        .ops
        .iter()
        .any(|op| op.class() == OpClass::Reads && !op.is_multi_message());
    (lo < MIN_SEGMENT as u64 && shortens_reads && rule.kinds.contains(FdKind::Tcp)).then(|| {
        format!(
            "short reads below {MIN_SEGMENT} bytes on TCP: Linux splits a stream that finely only \
             when the receiver's window is nearly closed"
        )
    })
}

#[derive(Deserialize)]
struct Located {
    #[serde(default)]
    rules: Vec<LocatedRule>,
}

#[derive(Deserialize)]
struct LocatedRule {
    fault: Option<Spanned<toml::Value>>,
}

/// The 1-based line of each rule's `fault` value in the policy text, in rule order (what a note
/// points at). Empty when the text does not parse (it always does for a policy `parse_policy`
/// accepted).
pub fn fault_lines(text: &str) -> Vec<Option<usize>> {
    let Ok(located) = toml::from_str::<Located>(text) else {
        return Vec::new();
    };
    located
        .rules
        .iter()
        .map(|r| {
            r.fault
                .as_ref()
                .map(|f| crate::parse::line_col(text, f.span().start).0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_policy;

    fn notes(text: &str) -> Vec<Note> {
        policy_notes(&parse_policy(text, "p.toml").unwrap())
    }

    fn rule(on: &str, fd: &str, fault: &str) -> String {
        format!("[[rules]]\nname = \"r\"\non = {on}\nfd = {fd}\nfault = {fault}\n")
    }

    #[test]
    fn byte_shorts_below_a_segment_on_tcp_reads_get_a_note() {
        for fault in [
            r#"{ short = "1..10" }"#,
            r#"{ short = "5" }"#,
            r#"{ short = "535..4096" }"#,
        ] {
            for (on, fd) in [
                (r#""reads""#, r#""tcp""#),
                (r#""recv""#, r#"["unix", "tcp"]"#),
                (r#"["read", "write"]"#, r#""socket""#),
                (r#""reads""#, r#""any""#),
            ] {
                let n = notes(&rule(on, fd, fault));
                assert_eq!(n.len(), 1, "{on} {fd} {fault}");
                assert_eq!(n[0].rule, 0);
                assert!(
                    n[0].message
                        .starts_with("short reads below 536 bytes on TCP"),
                    "{}",
                    n[0].message
                );
            }
        }
    }

    #[test]
    fn no_note_where_linux_would_split_that_way_or_nothing_is_read_on_tcp() {
        for text in [
            // Percentages stay at or above a segment on TCP reads.
            rule(r#""reads""#, r#""tcp""#, r#"{ short = "1..90%" }"#),
            // At least a segment.
            rule(r#""reads""#, r#""tcp""#, r#"{ short = "536..4096" }"#),
            // Writes, other kinds, whole-message reads.
            rule(r#""writes""#, r#""tcp""#, r#"{ short = "1..10" }"#),
            rule(
                r#""reads""#,
                r#"["unix", "pipe", "file"]"#,
                r#"{ short = "1..10" }"#,
            ),
            rule(r#""recvmmsg""#, r#""tcp""#, r#"{ short = "1..10" }"#),
            // Not a short at all.
            rule(r#""reads""#, r#""tcp""#, r#"{ delay = "1ms" }"#),
            "# no rules\n".to_string(),
        ] {
            assert_eq!(notes(&text), vec![], "{text}");
        }
    }

    #[test]
    fn notes_name_their_rule_and_the_line_of_its_fault() {
        let text = "seed = 3\n\n[[rules]]\nname = \"fine\"\non = \"reads\"\nfd = \"tcp\"\nfault = { short = \"1..50%\" }\n\n[[rules]]\nname = \"tiny\"\non = \"recv\"\nfd = \"tcp\"\nprobability = 0.5\nfault = { short = \"1..100\" }\n";
        let p = parse_policy(text, "my.toml").unwrap();
        let n = policy_notes(&p);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].rule, 1);
        let lines = fault_lines(text);
        assert_eq!(lines, vec![Some(7), Some(14)]);
        assert_eq!(
            n[0].render(&p, lines[n[0].rule]),
            "note: rule \"tiny\" (my.toml:14): short reads below 536 bytes on TCP: Linux splits \
             a stream that finely only when the receiver's window is nearly closed"
        );
        assert!(
            n[0].render(&p, None)
                .starts_with("note: rule \"tiny\" (my.toml): ")
        );
    }

    #[test]
    fn the_built_in_profiles_need_no_note() {
        for profile in crate::profiles::PROFILES {
            let p = crate::profiles::load_profile(profile.name).unwrap();
            assert_eq!(policy_notes(&p), vec![], "{}", profile.name);
        }
    }
}
