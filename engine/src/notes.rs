//! Notes on a valid policy: things `chaos-ctl validate` points out without rejecting the policy,
//! because the realism model lets the rule do something Linux does only in unusual conditions.
//!
//! Pure functions of the parsed policy (and, for line numbers, of its text), so they are tested
//! here and the CLI only prints them.

use crate::errno::{allowed_names, can_return, errno_name};
use crate::fault::{Fault, ShortSpec};
use crate::key::{Dir, Site};
use crate::kind::{FdKind, KindSet};
use crate::op::{Op, OpClass};
use crate::policy::{Policy, Rule};
use crate::realise::{MIN_SEGMENT, NotHere};
use serde::Deserialize;
use toml::Spanned;

/// One remark about one rule, one `[[inject]]` entry or the whole policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The rule's index in `Policy::rules`; `NOT_A_RULE` for a note about an `[[inject]]` entry
    /// or the policy as a whole (so a caller looking up the rule's line finds none).
    pub rule: usize,
    pub message: String,
    /// `Warning`: part of the policy can never take effect.
    pub level: Level,
    pub subject: Subject,
}

/// `Note::rule` of a note that is not about a rule.
pub const NOT_A_RULE: usize = usize::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Allowed and effective, but unusual on Linux.
    Note,
    /// Can never fire.
    Warning,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Rule,
    /// The n-th `[[inject]]` entry (0-based, in the order `Injections` keeps them).
    Inject(usize),
    Policy,
}

impl Note {
    fn rule(rule: usize, level: Level, message: String) -> Note {
        Note {
            rule,
            message,
            level,
            subject: Subject::Rule,
        }
    }

    fn other(subject: Subject, message: String) -> Note {
        Note {
            rule: NOT_A_RULE,
            message,
            level: Level::Warning,
            subject,
        }
    }

    /// `note: rule "NAME" (ORIGIN:LINE): MESSAGE` (`warning:` for what can never fire); without
    /// a line, `(ORIGIN)`. `[[inject]] #N` or `policy` instead of the rule for other notes.
    pub fn render(&self, policy: &Policy, line: Option<usize>) -> String {
        let level = match self.level {
            Level::Note => "note",
            Level::Warning => "warning",
        };
        let what = match self.subject {
            Subject::Rule => {
                let name = policy
                    .rules
                    .get(self.rule)
                    .map(|r| r.name.as_str())
                    .unwrap_or("?");
                format!("rule \"{name}\"")
            }
            Subject::Inject(i) => format!("[[inject]] #{}", i + 1),
            Subject::Policy => "policy".to_string(),
        };
        let at = match line {
            Some(l) => format!("{}:{l}", policy.origin),
            None => policy.origin.clone(),
        };
        format!("{level}: {what} ({at}): {}", self.message)
    }
}

/// Every note for `p`: rules in order, then `[[inject]]` entries, then the policy's quirks.
pub fn policy_notes(p: &Policy) -> Vec<Note> {
    let mut notes = Vec::new();
    for (i, rule) in p.rules.iter().enumerate() {
        let never = never_fires(rule);
        let already_said = !never.is_empty();
        for message in never {
            notes.push(Note::rule(i, Level::Warning, message));
        }
        if !already_said && let Some(message) = refused_everywhere(rule) {
            notes.push(Note::rule(i, Level::Warning, message));
        }
        if let Some(message) = tcp_short_below_segment(rule) {
            notes.push(Note::rule(i, Level::Note, message));
        }
        if !rule.left_out.is_empty() {
            let names: Vec<&str> = rule.left_out.iter().map(|o| o.name()).collect();
            notes.push(Note::rule(
                i,
                Level::Note,
                format!(
                    "{} cannot act on {}: the rule leaves {} out of its `on` group",
                    rule.fault.kind_name(),
                    names.join(", "),
                    if names.len() == 1 { "it" } else { "them" }
                ),
            ));
        }
    }
    for i in 0..p.injections.len() {
        let inj = p.injections.get(i);
        let class = match inj.site {
            Site::Stream { dir: Dir::Rx, .. } => OpClass::Reads,
            Site::Stream { dir: Dir::Tx, .. } => OpClass::Writes,
            Site::Call { class, .. } => class,
        };
        if let Fault::Errno(e) = inj.fault
            && !can_return(class, e)
        {
            notes.push(Note::other(
                Subject::Inject(i),
                format!(
                    "{} cannot return {} on Linux, so this injection never fires; it can return {}",
                    class.name(),
                    errno_name(e),
                    allowed_names(class).join(", ")
                ),
            ));
        }
    }
    for q in &p.quirks_on {
        if p.quirks_off.contains(q) {
            notes.push(Note::other(
                Subject::Policy,
                format!(
                    "quirk `{q}` is in both `quirks` and `no_quirks`; `no_quirks` wins, so it is off"
                ),
            ));
        }
    }
    notes
}

/// What `validate` counts in its summary: rules, injections, platform and quirks in effect.
pub fn policy_summary(p: &Policy) -> String {
    let quirks = p.quirks.names();
    // Without `platform` the run is plain Linux: no platform's quirks, only the ones listed.
    let platform = p
        .platform
        .as_deref()
        .map(|name| format!("platform {name}, "))
        .unwrap_or_default();
    format!(
        "{} rule(s), {} injection(s), {platform}{} quirk(s){}, seed {}",
        p.rules.len(),
        p.injections.len(),
        quirks.len(),
        if quirks.is_empty() {
            String::new()
        } else {
            format!(" ({})", quirks.join(", "))
        },
        p.seed
    )
}

/// The parts of a rule that can never fire, whatever the program does.
fn never_fires(rule: &Rule) -> Vec<String> {
    let mut out = Vec::new();
    let only = |allowed: &[FdKind]| {
        rule.kinds.0 != 0
            && FdKind::ALL
                .iter()
                .all(|k| !rule.kinds.contains(*k) || allowed.contains(k))
    };
    if rule.times == Some(0) {
        out.push("`times = 0`: this rule never fires".to_string());
    }
    // The shim knows the path of regular files only (not of sockets or pipes).
    if rule.path.is_some() && !rule.kinds.contains(FdKind::File) {
        let what = if rule.kinds.0 & !KindSet::SOCKET.0 == 0 {
            "only sockets"
        } else {
            "no file"
        };
        out.push(format!(
            "`path` matches regular files by their path, but `fd` selects {what}: this rule never \
             fires"
        ));
    }
    if matches!(rule.fault, Fault::Short(_)) && only(&[FdKind::Udp]) {
        out.push(
            "`short` on udp only: a datagram is delivered whole or not at all, so this rule never \
             fires"
                .to_string(),
        );
    }
    let no_socket = only(&[FdKind::Pipe, FdKind::File, FdKind::Other]);
    for (class, what) in [(OpClass::Accept, "accept"), (OpClass::Connect, "connect")] {
        if no_socket && rule.ops.iter().any(|o| o.class() == class) {
            out.push(format!(
                "`{what}` is called on sockets only, but `fd` selects no socket kind: its part of \
                 this rule never fires"
            ));
        }
    }
    if rule.fault == Fault::Errno(libc::EINTR) && only(&[FdKind::File]) {
        out.push(
            "EINTR on regular files only: Linux never interrupts a regular file's read or write, \
             so this rule never fires"
                .to_string(),
        );
    }
    out
}

/// The realism rule that refuses `fault` on every call of `op` on an fd of `kind`, whatever the
/// fd's state: what the policy alone tells (the rest depends on the program, and the run's
/// account says it).
fn refused_by_kind(fault: &Fault, op: Op, kind: FdKind) -> Option<NotHere> {
    match fault {
        Fault::Short(_) => match (op.dir(), kind) {
            _ if kind == FdKind::Udp || op.is_multi_message() => Some(NotHere::WholeMessages),
            (None, _) => Some(NotHere::WholeMessages),
            (Some(Dir::Rx), FdKind::Pipe | FdKind::Unix) => Some(NotHere::SplitsAWrite),
            (Some(Dir::Tx), FdKind::File) => Some(NotHere::FileWrite),
            _ => None,
        },
        Fault::Errno(libc::EINTR) => {
            let never_waits = matches!(
                op.class(),
                OpClass::Opens
                    | OpClass::Syncs
                    | OpClass::Space
                    | OpClass::Entries
                    | OpClass::NewFds
            );
            (never_waits || kind == FdKind::File).then_some(NotHere::WouldNotWait)
        }
        Fault::Toxic(_) if op.is_multi_message() => Some(NotHere::NotAStream),
        Fault::Toxic(_) => matches!(kind, FdKind::Pipe | FdKind::File | FdKind::Other)
            .then_some(NotHere::NotAStream),
        _ => None,
    }
}

/// A warning for a rule the realism model refuses on every (op, fd kind) it matches, naming
/// the realism rule and what would let it fire.
fn refused_everywhere(rule: &Rule) -> Option<String> {
    let kinds: Vec<FdKind> = FdKind::ALL
        .iter()
        .copied()
        .filter(|k| rule.kinds.contains(*k))
        .collect();
    let mut reasons: Vec<NotHere> = Vec::new();
    for op in rule.ops.iter() {
        for kind in &kinds {
            let why = refused_by_kind(&rule.fault, op, *kind)?;
            if !reasons.contains(&why) {
                reasons.push(why);
            }
        }
    }
    let first = *reasons.first()?;
    let named: Vec<String> = reasons
        .iter()
        .map(|r| format!("{} ({})", r.why(), r.name()))
        .collect();
    Some(format!(
        "{} on every call this rule matches: it never fires; {}",
        named.join("; "),
        first.hint()
    ))
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
            // (Shorts the realism model refuses everywhere get a warning instead: see below.)
            let notes: Vec<Note> = notes(&text)
                .into_iter()
                .filter(|n| n.level == Level::Note)
                .collect();
            assert_eq!(notes, vec![], "{text}");
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

    fn warnings(text: &str) -> Vec<String> {
        notes(text)
            .into_iter()
            .filter(|n| n.level == Level::Warning)
            .map(|n| n.message)
            .collect()
    }

    #[test]
    fn rules_that_can_never_fire_get_a_warning() {
        for (text, expect) in [
            (
                "[[rules]]\non = \"reads\"\ntimes = 0\nfault = \"EINTR\"\n".to_string(),
                "`times = 0`",
            ),
            (
                "[[rules]]\non = \"reads\"\nfd = \"tcp\"\npath = \"/tmp/*\"\nfault = \"EINTR\"\n"
                    .to_string(),
                "selects only sockets",
            ),
            (
                "[[rules]]\non = \"reads\"\npath = \"/tmp/*\"\nfault = \"EINTR\"\n".to_string(),
                "selects only sockets",
            ),
            (
                rule(r#""reads""#, r#""udp""#, r#"{ short = "1..50%" }"#),
                "`short` on udp only",
            ),
            (
                rule(r#""accept""#, r#""pipe""#, r#"{ delay = "1ms" }"#),
                "`accept` is called on sockets only",
            ),
            (
                rule(r#""accept""#, r#"["file", "pipe"]"#, r#"{ delay = "1ms" }"#),
                "`accept` is called on sockets only",
            ),
            (
                rule(r#""connect""#, r#""file""#, r#"{ delay = "1ms" }"#),
                "`connect` is called on sockets only",
            ),
            (
                rule(r#""reads""#, r#""file""#, r#""EINTR""#),
                "EINTR on regular files only",
            ),
        ] {
            let w = warnings(&text);
            assert_eq!(w.len(), 1, "{text}: {w:?}");
            assert!(w[0].contains(expect), "{text}: {w:?}");
            assert!(w[0].contains("never fires"), "{text}: {w:?}");
        }
    }

    #[test]
    fn rules_the_realism_model_refuses_on_every_call_they_match_get_a_warning() {
        for (on, fd, fault, expect) in [
            (
                r#""reads""#,
                r#"["unix", "pipe"]"#,
                r#"{ short = "50%" }"#,
                "(splits-a-write)",
            ),
            (
                r#""reads""#,
                r#"["udp", "unix"]"#,
                r#"{ short = "50%" }"#,
                "(whole-messages)",
            ),
            (
                r#""write""#,
                r#""file""#,
                r#"{ short = "1..10" }"#,
                "(file-write)",
            ),
            (
                r#""recvmmsg""#,
                r#""tcp""#,
                r#"{ short = "1..10" }"#,
                "(whole-messages)",
            ),
            (
                r#""send""#,
                r#""pipe""#,
                r#"{ latency = "5ms" }"#,
                "(not-a-stream)",
            ),
            (r#""fsync""#, r#""any""#, r#""EINTR""#, "(would-not-wait)"),
        ] {
            // (EINTR on fsync passes the errno check only when the user insists.)
            let text = rule(on, fd, fault) + "any_errno = true\n";
            let w = warnings(&text);
            assert_eq!(w.len(), 1, "{text}: {w:?}");
            assert!(
                w[0].contains(expect) && w[0].contains("never fires"),
                "{text}: {w:?}"
            );
            let hint = NotHere::ALL
                .into_iter()
                .find(|r| expect.contains(r.name()))
                .unwrap()
                .hint();
            assert!(w[0].ends_with(hint), "says what would let it fire: {w:?}");
        }
    }

    #[test]
    fn rules_that_can_fire_get_no_warning() {
        for text in [
            "[[rules]]\non = \"reads\"\ntimes = 1\nfault = \"EINTR\"\n".to_string(),
            "[[rules]]\non = \"reads\"\nfd = [\"tcp\", \"file\"]\npath = \"/tmp/*\"\nfault = \"EINTR\"\n"
                .to_string(),
            rule(r#""reads""#, r#"["udp", "tcp"]"#, r#"{ short = "1..50%" }"#),
            rule(r#""writes""#, r#"["unix", "file"]"#, r#"{ short = "1..50%" }"#),
            rule(r#""reads""#, r#""file""#, r#"{ short = "1..50%" }"#),
            rule(r#""writes""#, r#""tcp""#, r#"{ latency = "5ms" }"#),
            rule(r#""accept""#, r#"["pipe", "unix"]"#, r#"{ delay = "1ms" }"#),
            rule(r#""connect""#, r#""tcp""#, r#"{ delay = "1ms" }"#),
            rule(r#""reads""#, r#"["file", "pipe"]"#, r#""EINTR""#),
            rule(r#""reads""#, r#""file""#, r#""EIO""#),
        ] {
            assert_eq!(warnings(&text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn a_quirk_both_enabled_and_disabled_gets_a_warning() {
        let text =
            "quirks = [\"no-accept4\", \"getpeername-einval\"]\nno_quirks = [\"no-accept4\"]\n";
        let p = parse_policy(text, "q.toml").unwrap();
        let n = policy_notes(&p);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!((n[0].subject, n[0].rule), (Subject::Policy, NOT_A_RULE));
        assert_eq!(
            n[0].render(&p, None),
            "warning: policy (q.toml): quirk `no-accept4` is in both `quirks` and `no_quirks`; \
             `no_quirks` wins, so it is off"
        );
        assert_eq!(notes("quirks = [\"no-accept4\"]\n"), vec![]);
    }

    #[test]
    fn an_injection_its_op_cannot_return_gets_a_warning() {
        let inject = |at: &str, fault: &str| {
            format!(
                "[[inject]]\nprocess = \"0000000000000001\"\nconn = \"tcp-out#0\"\nat = \"{at}\"\nfault = \"{fault}\"\n"
            )
        };
        let p = parse_policy(&inject("rx@0#0", "EPIPE"), "i.toml").unwrap();
        let n = policy_notes(&p);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].subject, Subject::Inject(0));
        let text = n[0].render(&p, None);
        assert!(
            text.starts_with("warning: [[inject]] #1 (i.toml): reads cannot return EPIPE"),
            "{text}"
        );
        let p = parse_policy(&inject("close#0", "ECONNRESET"), "i.toml").unwrap();
        assert_eq!(policy_notes(&p).len(), 1);
        for (at, fault) in [
            ("rx@0#0", "ECONNRESET"),
            ("tx@5#0", "EPIPE"),
            ("connect#0", "ECONNREFUSED"),
        ] {
            let p = parse_policy(&inject(at, fault), "i.toml").unwrap();
            assert_eq!(policy_notes(&p), vec![], "{at} {fault}");
        }
    }

    #[test]
    fn the_summary_counts_rules_injections_platform_and_quirks() {
        let p = parse_policy(
            "seed = 4\n[[rules]]\non = \"reads\"\nfault = \"EINTR\"\n",
            "p",
        )
        .unwrap();
        assert_eq!(
            policy_summary(&p),
            "1 rule(s), 0 injection(s), 0 quirk(s), seed 4"
        );
        let p = parse_policy(
            "platform = \"macos\"\nquirks = [\"no-accept4\"]\n[[inject]]\nprocess = \"0000000000000001\"\nconn = \"tcp-out#0\"\nat = \"rx@0#0\"\nfault = \"ECONNRESET\"\n",
            "p",
        )
        .unwrap();
        let s = policy_summary(&p);
        let n = p.quirks.names().len();
        assert!(n > 1);
        assert!(
            s.starts_with(&format!(
                "0 rule(s), 1 injection(s), platform macos, {n} quirk(s) ("
            )),
            "{s}"
        );
        assert!(s.contains("no-accept4"), "{s}");
    }
}
