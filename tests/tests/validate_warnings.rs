//! `chaos-ctl validate` tells the truth: warnings for rules that can never fire (exit 0), errors
//! that say what was expected and where without Rust internals (exit 1); and the default log of a
//! run lands in one directory that is easy to clean up.

use chaos_tests::*;
use std::process::Command;

fn validate(dir: &TempDir, text: &str) -> (Finished, String) {
    let p = dir.write("p.toml", text);
    let r = run(Command::new(&bins().ctl).arg("validate").arg(&p), 20);
    (r, p.display().to_string())
}

fn rule(fields: &str) -> String {
    format!("seed = 1\n\n[[rules]]\nname = \"r\"\n{fields}\n")
}

#[test]
fn rules_that_can_never_fire_are_warned_about_but_still_valid() {
    let dir = TempDir::new("never-fires");
    for (fields, expect) in [
        (
            "on = \"reads\"\ntimes = 0\nfault = \"EINTR\"",
            "`times = 0`: this rule never fires",
        ),
        (
            "on = \"reads\"\nfd = \"tcp\"\npath = \"/var/*\"\nfault = \"EINTR\"",
            "`fd` selects only sockets",
        ),
        (
            "on = \"reads\"\nfd = \"udp\"\nfault = { short = \"1..50%\" }",
            "`short` on udp only",
        ),
        (
            "on = \"accept\"\nfd = \"pipe\"\nfault = { delay = \"1ms\" }",
            "`accept` is called on sockets only",
        ),
        (
            "on = \"connect\"\nfd = [\"file\", \"pipe\"]\nfault = { delay = \"1ms\" }",
            "`connect` is called on sockets only",
        ),
        (
            "on = \"reads\"\nfd = \"file\"\nfault = \"EINTR\"",
            "EINTR on regular files only",
        ),
    ] {
        let (r, p) = validate(&dir, &rule(fields));
        assert_eq!(
            r.code(),
            Some(0),
            "a warning is not an error: {}",
            r.describe()
        );
        let warnings: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .collect();
        assert_eq!(warnings.len(), 1, "{fields}: {}", r.describe());
        assert!(
            warnings[0].starts_with(&format!("warning: rule \"r\" ({p}:")),
            "{fields}: {}",
            r.describe()
        );
        assert!(warnings[0].contains(expect), "{fields}: {}", r.describe());
        assert!(r.stdout.contains("ok, 1 rule(s)"), "{}", r.describe());
    }
}

#[test]
fn a_quirk_enabled_and_disabled_and_an_impossible_injection_are_warned_about() {
    let dir = TempDir::new("never-fires-policy");
    let (r, p) = validate(
        &dir,
        "quirks = [\"no-accept4\"]\nno_quirks = [\"no-accept4\"]\n\n[[inject]]\nprocess = \"0000000000000001\"\nconn = \"tcp-out#0\"\nat = \"rx@0#0\"\nfault = \"EPIPE\"\n",
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!(
            "warning: policy ({p}): quirk `no-accept4` is in both `quirks` and `no_quirks`"
        )),
        "{}",
        r.describe()
    );
    assert!(
        r.stderr.contains(&format!(
            "warning: [[inject]] #1 ({p}): reads cannot return EPIPE on Linux, so this injection \
             never fires"
        )),
        "{}",
        r.describe()
    );
}

#[test]
fn a_policy_whose_rules_can_all_fire_gets_no_warning() {
    let dir = TempDir::new("all-fire");
    let (r, _) = validate(
        &dir,
        &rule(
            "on = [\"reads\", \"accept\"]\nfd = [\"file\", \"tcp\"]\npath = \"/var/*\"\ntimes = 3\nfault = \"EINTR\"",
        ),
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(!r.stderr.contains("warning:"), "{}", r.describe());
}

#[test]
fn errors_say_what_was_expected_and_where_without_rust_internals() {
    let dir = TempDir::new("error-text");
    for (fields, at, expect) in [
        (
            "on = 5\nfault = \"EINTR\"",
            "5:6",
            "`on` expects an op name or an array of them",
        ),
        (
            "on = [\"recieve\"]\nfault = \"EINTR\"",
            "5:7",
            "unknown op `recieve` in `on`",
        ),
        (
            "on = \"reads\"\nfd = 3\nfault = \"EINTR\"",
            "6:6",
            "`fd` expects an fd kind or an array of them",
        ),
        (
            "on = \"reads\"\nprobability = \"x\"\nfault = \"EINTR\"",
            "6:15",
            "`probability` expects a number from 0.0 to 1.0, not string \"x\"",
        ),
        (
            "on = \"reads\"\nfault = { short = \"50..1\" }",
            "6:9",
            "short `50..1`: the start (50) is after the end (1)",
        ),
        (
            "on = \"reads\"\ntimes = 99999999999999999999\nfault = \"EINTR\"",
            "6:9",
            "`times` expects a whole number from 0 to 18446744073709551615",
        ),
    ] {
        let (r, p) = validate(&dir, &rule(fields));
        assert_eq!(r.code(), Some(1), "{fields}: {}", r.describe());
        assert!(
            r.stderr.starts_with(&format!("{p}:{at}: {expect}")),
            "{fields}: {}",
            r.describe()
        );
        for internal in [
            "untagged enum",
            "OneOrMany",
            "as i128",
            "invalid type",
            "a sequence",
            "u64",
        ] {
            assert!(!r.stderr.contains(internal), "{fields}: {}", r.describe());
        }
    }
}

#[test]
fn the_default_log_goes_to_one_private_directory_under_tmpdir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("default-log");
    for _ in 0..2 {
        let r = run(
            Command::new(&bins().ctl).env("TMPDIR", dir.path()).args([
                "run",
                "--profile",
                "none",
                "--",
                "true",
            ]),
            20,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        assert!(r.stderr.contains("chaos-logs/chaos-"), "{}", r.describe());
    }
    let logs = dir.join("chaos-logs");
    let mode = std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let names = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let inside = names(&logs);
    assert_eq!(inside.len(), 2, "{inside:?}");
    assert!(
        inside
            .iter()
            .all(|n| n.starts_with("chaos-") && n.ends_with(".jsonl")),
        "{inside:?}"
    );
    assert_eq!(names(dir.path()), ["chaos-logs"], "nothing else in $TMPDIR");
}
