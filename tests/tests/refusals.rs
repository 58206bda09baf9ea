//! Every refusal is explained: a rule the realism model refuses on every call is drawn, counted
//! with the realism rule that refused it in every process of the run (preload or seccomp), logged
//! as a `rule` line, and explained by the summary and `report`.

use chaos_engine::event::schema::RuleLine;
use chaos_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SENDS: u64 = 30;

/// `short` on blocking 100-byte TCP sends with room: Linux never shortens those.
const SHORT_SENDS: &str = r#"
[[rules]]
name = "short-send"
on = ["send"]
fd = "tcp"
fault = { short = "1..50%" }
"#;

/// EINTR on a blocking TCP connect, in a program with no signal handler at all.
const EINTR_CONNECT: &str = r#"
[[rules]]
name = "eintr-connect"
on = ["connect"]
fd = "tcp"
fault = "EINTR"
"#;

/// `chaos-ctl run` of `small_sends` under `policy`, checked to succeed with nothing injected.
fn run_refused(
    dir: &TempDir,
    exe: &Path,
    policy: &str,
    backend: &str,
    args: &[&str],
) -> (Finished, PathBuf) {
    let log = dir.join(&format!("{backend}-{}.jsonl", args.join("-")));
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--backend", backend, "--policy"])
            .arg(dir.write(&format!("{backend}-{}.toml", args.join("-")), policy))
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(exe)
            .args(args),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.starts_with(&format!("sent {SENDS}")),
        "{}",
        r.describe()
    );
    assert!(
        r.stderr.contains("(no faults injected)"),
        "{}",
        r.describe()
    );
    (r, log)
}

/// The log's only `rule` line (every line is also checked against the schema).
fn rule_line(log: &Path) -> RuleLine {
    let rules: Vec<_> = read_events(log)
        .into_iter()
        .filter_map(|e| e.as_rule().cloned())
        .collect();
    assert_eq!(
        rules.len(),
        1,
        "one rule line for the one rule drawn: {rules:?}"
    );
    rules.into_iter().next().unwrap()
}

fn report_json(log: &Path) -> Value {
    let r = run(
        Command::new(&bins().ctl)
            .arg("report")
            .arg("--json")
            .arg(log),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn a_short_refused_on_every_blocking_send_is_counted_and_explained() {
    let dir = TempDir::new("refused-short");
    let exe = compile_c("small_sends", dir.path(), &[]);
    let n = SENDS.to_string();
    let (r, log) = run_refused(&dir, &exe, SHORT_SENDS, "preload", &[&n]);
    let line = rule_line(&log);
    assert_eq!(
        (line.rule.as_str(), line.drawn, line.injected),
        ("short-send", SENDS, 0),
        "every send drew the rule; none was shortened"
    );
    assert_eq!(line.refused["blocking-write-not-interrupted"], SENDS);
    let summary = r
        .stderr
        .lines()
        .find(|l| l.starts_with("chaos: rule short-send:"))
        .unwrap_or_else(|| panic!("no line explains the rule: {}", r.describe()));
    assert!(
        summary.contains(&format!("{SENDS} drawn, 0 injected"))
            && summary.contains("(blocking-write-not-interrupted)")
            && summary.contains("non-blocking socket"),
        "{summary}"
    );
    let doc = report_json(&log);
    let rules = doc["rules"].as_array().expect("report --json has rules");
    assert_eq!(rules.len(), 1, "{doc}");
    assert_eq!(rules[0]["rule"], "short-send");
    assert_eq!(rules[0]["drawn"], SENDS);
    assert_eq!(rules[0]["injected"], 0);
    assert_eq!(rules[0]["refused"]["blocking-write-not-interrupted"], SENDS);
    let text = run(Command::new(&bins().ctl).arg("report").arg(&log), 30);
    assert!(
        text.stdout.contains(&format!(
            "short-send: {SENDS} drawn, 0 injected, refused: blocking-write-not-interrupted {SENDS}"
        )),
        "{}",
        text.describe()
    );
}

#[test]
fn eintr_without_a_signal_handler_is_explained() {
    let dir = TempDir::new("refused-eintr");
    let exe = compile_c("small_sends", dir.path(), &[]);
    let n = SENDS.to_string();
    let (r, log) = run_refused(&dir, &exe, EINTR_CONNECT, "preload", &[&n]);
    let line = rule_line(&log);
    assert_eq!((line.drawn, line.injected), (1, 0), "{line:?}");
    assert_eq!(line.refused["no-deliverable-signal"], 1);
    assert!(
        r.stderr.contains(
            "chaos: rule eintr-connect: 1 drawn, 0 injected — EINTR needs a harmless signal handler"
        ) && r
            .stderr
            .contains("(no-deliverable-signal); install a SIGCHLD"),
        "{}",
        r.describe()
    );
}

#[test]
fn the_counts_of_a_parent_and_its_forked_child_add_up() {
    let dir = TempDir::new("refused-fork");
    let exe = compile_c("small_sends", dir.path(), &[]);
    let n = SENDS.to_string();
    let (r, log) = run_refused(&dir, &exe, SHORT_SENDS, "preload", &[&n, "fork"]);
    let starts = read_events(&log)
        .iter()
        .filter(|e| e.as_start().is_some())
        .count();
    assert_eq!(starts, 2, "parent and child: {}", r.describe());
    let line = rule_line(&log);
    assert_eq!((line.drawn, line.injected), (2 * SENDS, 0), "{line:?}");
    assert_eq!(line.refused["blocking-write-not-interrupted"], 2 * SENDS);
    assert!(
        r.stderr.contains(&format!(
            "chaos: rule short-send: {} drawn, 0 injected",
            2 * SENDS
        )),
        "{}",
        r.describe()
    );
}

#[test]
fn the_seccomp_backend_counts_the_same_refusals() {
    let dir = TempDir::new("refused-seccomp");
    let exe = compile_c("small_sends", dir.path(), &["-static"]);
    let n = SENDS.to_string();
    for (policy, reason, drawn) in [
        (SHORT_SENDS, "blocking-write-not-interrupted", 2 * SENDS),
        (EINTR_CONNECT, "no-deliverable-signal", 2),
    ] {
        let (r, log) = run_refused(&dir, &exe, policy, "seccomp", &[&n, "fork"]);
        assert!(
            read_events(&log)
                .iter()
                .filter_map(|e| e.as_start())
                .all(|s| s.backend.as_deref() == Some("seccomp")),
            "{}",
            r.describe()
        );
        let line = rule_line(&log);
        assert_eq!((line.drawn, line.injected), (drawn, 0), "{line:?}");
        assert_eq!(line.refused[reason], drawn, "{line:?}");
        assert!(
            r.stderr.contains(&format!("({reason})")),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn a_system_runs_counts_cover_its_workload_and_its_children() {
    let dir = TempDir::new("refused-system");
    let exe = compile_c("small_sends", dir.path(), &[]);
    let n = SENDS.to_string();
    let policy = format!("[[process]]\nname = \"idle\"\ncmd = [\"sleep\", \"600\"]\n{SHORT_SENDS}");
    let (r, log) = run_refused(&dir, &exe, &policy, "preload", &[&n, "fork"]);
    let line = rule_line(&log);
    assert_eq!((line.drawn, line.injected), (2 * SENDS, 0), "{line:?}");
    assert!(
        r.stderr.contains("(blocking-write-not-interrupted)"),
        "{}",
        r.describe()
    );
}

/// A rule that fires and one that never does, side by side: the account of the one that fires
/// matches its fault lines, and `freeze` and `replay` read over the `rule` lines.
#[test]
fn injected_counts_match_the_fault_lines_and_repro_tools_read_over_them() {
    let dir = TempDir::new("refused-mixed");
    let exe = compile_c("small_sends", dir.path(), &[]);
    let n = SENDS.to_string();
    let policy = format!(
        "{SHORT_SENDS}\n[[rules]]\nname = \"slow-send\"\non = [\"send\"]\nfd = \"tcp\"\n\
         probability = 0.3\nfault = {{ delay = \"1ms\" }}\n"
    );
    let log = dir.join("mixed.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--policy"])
            .arg(dir.write("mixed.toml", &policy))
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(&exe)
            .args([n.as_str(), "fork"]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    let delays = fault_events(&events)
        .iter()
        .filter(|f| f.rule == "slow-send")
        .count() as u64;
    assert!(delays > 0, "{}", r.describe());
    let accounts: Vec<RuleLine> = events.iter().filter_map(|e| e.as_rule().cloned()).collect();
    let slow = accounts
        .iter()
        .find(|a| a.rule == "slow-send")
        .expect("slow-send drawn");
    let short = accounts
        .iter()
        .find(|a| a.rule == "short-send")
        .expect("short-send drawn");
    assert_eq!((slow.drawn, slow.injected), (delays, delays), "{slow:?}");
    assert!(slow.refused.is_empty(), "{slow:?}");
    // The short comes first in file order: drawn on every send and refused, after which the
    // delay gets its turn (docs/reference.md, "Realism").
    assert_eq!((short.drawn, short.injected), (2 * SENDS, 0), "{short:?}");
    assert!(
        !r.stderr.contains("chaos: rule slow-send:"),
        "a rule that injected is not explained: {}",
        r.describe()
    );

    let frozen = run(Command::new(&bins().ctl).arg("freeze").arg(&log), 30);
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert_eq!(
        frozen
            .stdout
            .lines()
            .filter(|l| l.trim() == "[[inject]]")
            .count() as u64,
        delays,
        "one injection per fault line, none from the rule lines: {}",
        frozen.stdout
    );
    let replayed = dir.join("replayed.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .arg("replay")
            .arg(&log)
            .arg("--log")
            .arg(&replayed)
            .arg("--")
            .arg(&exe)
            .args([n.as_str(), "fork"]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!(
            "replay reproduced {delays} of {delays} logged fault"
        )),
        "{}",
        r.describe()
    );
}

#[test]
fn validate_warns_about_a_rule_refused_on_every_call_it_matches() {
    let dir = TempDir::new("refused-validate");
    let policy = dir.write(
        "pipe-reads.toml",
        "[[rules]]\nname = \"short-pipe-reads\"\non = [\"read\"]\nfd = \"pipe\"\nfault = { short = \"50%\" }\n",
    );
    let r = run(Command::new(&bins().ctl).arg("validate").arg(&policy), 30);
    assert_eq!(
        r.code(),
        Some(0),
        "a warning, not an error: {}",
        r.describe()
    );
    assert!(
        r.stderr.contains("warning: rule \"short-pipe-reads\"")
            && r.stderr.contains("(splits-a-write)")
            && r.stderr.contains("never fires"),
        "{}",
        r.describe()
    );
}

/// The reasons that are not the realism model's: `times` used up (per process) and `window`.
#[test]
fn times_used_up_and_outside_the_window_are_counted_too() {
    let dir = TempDir::new("refused-times");
    let exe = compile_c("small_sends", dir.path(), &[]);
    let n = SENDS.to_string();
    let policy = "[[rules]]\nname = \"twice\"\non = [\"send\"]\nfd = \"tcp\"\ntimes = 2\n\
                  fault = { delay = \"1us\" }\n\n[[rules]]\nname = \"later\"\non = [\"recv\"]\n\
                  fd = \"tcp\"\nwindow = [\"1h\", \"2h\"]\nfault = { delay = \"1us\" }\n";
    let log = dir.join("times.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--policy"])
            .arg(dir.write("times.toml", policy))
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(&exe)
            .args([n.as_str(), "fork"]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let accounts: Vec<RuleLine> = read_events(&log)
        .iter()
        .filter_map(|e| e.as_rule().cloned())
        .collect();
    let twice = accounts.iter().find(|a| a.rule == "twice").expect("twice");
    assert_eq!(
        (twice.drawn, twice.injected),
        (2 * SENDS, 4),
        "two per process: {twice:?}"
    );
    assert_eq!(twice.refused["times-used-up"], 2 * SENDS - 4, "{twice:?}");
    let later = accounts.iter().find(|a| a.rule == "later").expect("later");
    // Reads are drawn per 16 KiB cell of the stream, not per call (docs/determinism.md): each
    // process's replies fit in one cell, drawn once.
    assert_eq!((later.drawn, later.injected), (2, 0), "{later:?}");
    assert_eq!(later.refused["outside-window"], 2, "{later:?}");
    assert!(
        r.stderr.contains("(outside-window); widen `window`"),
        "{}",
        r.describe()
    );
}
