//! chaos-ctl's contract: exit statuses pass through, signals are forwarded, reports and profiles work.

use chaos_tests::*;
use std::process::Command;

fn ctl() -> Command {
    Command::new(&bins().ctl)
}

#[test]
fn exit_status_passes_through_and_signals_become_128_plus_n() {
    let dir = TempDir::new("status");
    let r = run(
        &mut ctl_run(&dir, None, "a.jsonl", &["sh", "-c", "exit 3"]),
        20,
    );
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    // A program killed by a signal: chaos-ctl dies of the same signal after its summary, as
    // strace and timeout(1) do, so a shell loop around it stops on Ctrl-C.
    let r = run(
        &mut ctl_run(&dir, None, "b.jsonl", &["sh", "-c", "kill -TERM $$"]),
        20,
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(r.status.signal(), Some(libc::SIGTERM), "{}", r.describe());
    assert!(
        r.stderr.contains("chaos: "),
        "the summary comes first: {}",
        r.describe()
    );
}

#[test]
fn a_group_wide_sigint_reaches_the_program_once() {
    let dir = TempDir::new("group-int");
    let count = dir.join("ints");
    // The program counts SIGINTs for a moment, then exits 0.
    let script = format!(
        "trap 'echo x >> {}' INT; echo ready; for i in $(seq 40); do sleep 0.05; done; exit 0",
        count.display()
    );
    let mut guard = Background::spawn(
        ctl_run(&dir, None, "g.jsonl", &["sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let child = &mut guard.0;
    read_line_starting(child, "ready", 20);
    // Background::spawn puts chaos-ctl in its own group, and the program shares it.
    // SAFETY: kill takes integers; the pid is one this test started and has not reaped, so the
    // number cannot have been reused.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "chaos-ctl did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let got = std::fs::read_to_string(&count).unwrap_or_default();
    assert_eq!(
        got.lines().count(),
        1,
        "one SIGINT, delivered once: {got:?}"
    );
}

#[test]
fn sigterm_to_chaos_ctl_reaches_the_program() {
    let dir = TempDir::new("forward");
    let marker = dir.join("got-term");
    let script = format!(
        "trap 'touch {}; exit 0' TERM; echo ready; while true; do sleep 0.05; done",
        marker.display()
    );
    let mut guard = Background::spawn(
        ctl_run(&dir, None, "f.jsonl", &["sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let child = &mut guard.0;
    read_line_starting(child, "ready", 20);
    // SAFETY: kill takes integers; the pid is one this test started and has not reaped, so the
    // number cannot have been reused.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let finished = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                panic!("chaos-ctl did not finish after SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    assert_eq!(finished.code(), Some(0));
    assert!(marker.exists(), "the program's TERM trap ran");
}

#[test]
fn summary_report_and_json_report_agree_with_the_log() {
    let dir = TempDir::new("report");
    let policy = "[[rules]]\nname = \"pipe-slow\"\non = \"write\"\nfd = \"pipe\"\nfault = { delay = \"1us..20us\" }\n";
    let data = dir.write("in.txt", &"x".repeat(200_000));
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "r.jsonl",
            &["sh", "-c", &format!("cat {} | wc -c", data.display())],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout.trim(), "200000");
    let log = read_events(&dir.join("r.jsonl"));
    let n = fault_events(&log).len();
    assert!(n > 0);
    assert!(
        r.stderr.contains(&format!(
            "chaos: {n} fault{} in ",
            if n == 1 { "" } else { "s" }
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("pipe-slow"), "{}", r.stderr);

    let rep = run(
        ctl().arg("report").arg("--json").arg(dir.join("r.jsonl")),
        20,
    );
    assert_eq!(rep.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_str(&rep.stdout).unwrap();
    assert_eq!(doc["faults"], n);
    assert_eq!(doc["by_rule_op_fault"][0]["rule"], "pipe-slow");
    assert_eq!(doc["by_rule_op_fault"][0]["fault"], "delay");
    assert_eq!(doc["bad_lines"], 0);
}

#[test]
fn profiles_list_and_show() {
    let r = run(ctl().arg("profiles"), 20);
    assert!(
        r.stdout.contains("benign")
            && r.stdout.contains("(default)")
            && r.stdout.contains("network")
    );
    let r = run(ctl().args(["profiles", "show", "network"]), 20);
    assert!(
        r.stdout.contains("name = \"network-reset\""),
        "{}",
        r.stdout
    );
    let dir = TempDir::new("profile-valid");
    let p = dir.write("network.toml", &r.stdout);
    let v = run(ctl().arg("validate").arg(&p), 20);
    assert_eq!(
        v.code(),
        Some(0),
        "a shown profile is a valid policy: {}",
        v.describe()
    );
    let r = run(ctl().args(["profiles", "show", "nope"]), 20);
    assert_eq!(r.code(), Some(125));
}

#[test]
fn log_is_created_private_and_never_through_a_symlink() {
    let dir = TempDir::new("logperm");
    let r = run(&mut ctl_run(&dir, None, "p.jsonl", &["true"]), 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("p.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let target = dir.join("elsewhere");
    std::os::unix::fs::symlink(&target, dir.join("link.jsonl")).unwrap();
    let r = run(&mut ctl_run(&dir, None, "link.jsonl", &["true"]), 20);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(!target.exists());
}

#[test]
fn validate_notes_tcp_short_reads_below_a_segment_and_nothing_else() {
    let dir = TempDir::new("validate-notes");
    let rules = |short: &str| {
        format!(
            "seed = 2\n\n[[rules]]\nname = \"writes\"\non = \"writes\"\nfd = \"tcp\"\nfault = {{ short = \"1..10\" }}\n\n[[rules]]\nname = \"tiny-reads\"\non = [\"recv\", \"read\"]\nfd = [\"unix\", \"tcp\"]\nprobability = 0.5\nfault = {{ short = \"{short}\" }}\n"
        )
    };
    let bytes = dir.write("bytes.toml", &rules("1..100"));
    let v = run(ctl().arg("validate").arg(&bytes), 20);
    assert_eq!(
        v.code(),
        Some(0),
        "a note is not an error: {}",
        v.describe()
    );
    let notes: Vec<&str> = v.stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(
        notes,
        [format!(
            "note: rule \"tiny-reads\" ({}:14): short reads below 536 bytes on TCP: Linux splits a stream that finely only when the receiver's window is nearly closed",
            bytes.display()
        )],
        "one note, for the byte-length short on TCP reads only: {}",
        v.describe()
    );
    assert!(
        v.stdout.contains("ok, 2 rule(s)") && !v.stdout.contains("note:"),
        "the note goes to stderr: {}",
        v.describe()
    );

    let percent = dir.write("percent.toml", &rules("1..90%"));
    let v = run(ctl().arg("validate").arg(&percent), 20);
    assert_eq!(v.code(), Some(0), "{}", v.describe());
    assert!(
        !v.stderr.contains("note:") && !v.stdout.contains("note:"),
        "percent shorts never go below a segment on TCP: no note: {}",
        v.describe()
    );
}
