//! chaos-ctl behaves like the tools around it: a closed or full stdout is a quiet exit (141 or 1),
//! never a panic; SIGINT/SIGTERM stop a sweep cleanly (runs killed, JUnit written, 130/143); an
//! unknown option is a usage error, not a command; bad numbers and unwritable output paths are
//! refused before any run starts.

use chaos_tests::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ctl() -> Command {
    Command::new(&bins().ctl)
}

/// A write end whose read end is already closed: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a local array of two ints, as pipe2() writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fds[0] is the read end pipe2() just made here; nothing else owns it.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is the write end pipe2() just made here; the OwnedFd becomes its only owner.
    Stdio::from(unsafe { OwnedFd::from_raw_fd(fds[1]) })
}

/// Runs `cmd` with `stdout` as given and stderr captured, killed (failing the test) after 20 s.
fn run_with_stdout(cmd: &mut Command, stdout: Stdio) -> Finished {
    let child = own_group(cmd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut child = child;
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            panic!("{cmd:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Finished {
        status,
        stdout: String::new(),
        stderr: reader.join().unwrap(),
    }
}

fn a_log(dir: &TempDir) -> String {
    let r = run(&mut ctl_run(dir, None, "run.jsonl", &["true"]), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    dir.join("run.jsonl").to_string_lossy().into_owned()
}

#[test]
fn a_closed_or_full_stdout_is_a_quiet_exit_not_a_panic() {
    let dir = TempDir::new("closed-stdout");
    let log = a_log(&dir);
    let commands: Vec<Vec<&str>> = vec![
        vec!["quirks"],
        vec!["profiles"],
        vec!["profiles", "show", "benign"],
        vec!["report", &log],
        vec!["report", "--json", &log],
        vec!["freeze", &log],
        vec!["generate", "bash"],
        vec!["--help"],
    ];
    for args in &commands {
        let r = run_with_stdout(ctl().args(args), closed_pipe());
        assert_eq!(
            r.code(),
            Some(141),
            "{args:?} to a closed pipe: {}",
            r.describe()
        );
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.is_empty(),
            "{args:?}: EPIPE is silent: {}",
            r.stderr
        );

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let r = run_with_stdout(ctl().args(args), Stdio::from(full));
        assert_eq!(r.code(), Some(1), "{args:?} to /dev/full: {}", r.describe());
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("write error") && r.stderr.contains("No space left"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn an_unknown_option_before_the_command_is_a_usage_error() {
    let r = run(ctl().args(["run", "--polcy", "x.toml", "--", "true"]), 20);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("unexpected argument '--polcy'")
            && r.stderr.contains("a similar argument exists: '--policy'"),
        "{}",
        r.stderr
    );
    let r = run(
        ctl().args(["sweep", "--seeds", "1..2", "--bogus", "--", "true"]),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("unexpected argument '--bogus'"),
        "{}",
        r.stderr
    );
    // The command starts at the first word that is not an option: its own options are its own.
    let dir = TempDir::new("cmd-options");
    let r = run(
        ctl()
            .args(["run", "-q", "--log"])
            .arg(dir.join("l.jsonl"))
            .args(["sh", "-c", "echo -n x; exit 3"]),
        20,
    );
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    assert_eq!(r.stdout, "x");
}

fn sweep_of(dir: &TempDir, script: &str) -> Finished {
    run(
        ctl()
            .args(["sweep", "--seeds", "1..1", "--profile", "none", "--out"])
            .arg(dir.join("out"))
            .args(["--", "sh", "-c", script]),
        30,
    )
}

#[test]
fn exit_130_is_an_exit_status_and_a_signal_is_a_signal() {
    let dir = TempDir::new("describe");
    let r = sweep_of(&dir, "exit 130");
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.stderr.contains("seed 1: exit 130"), "{}", r.stderr);
    assert!(!r.stderr.contains("signal 2"), "{}", r.stderr);
    let r = sweep_of(&dir, "kill -INT $$");
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains("seed 1: killed by SIGINT"),
        "{}",
        r.stderr
    );
}

#[test]
fn zero_jobs_and_empty_shards_are_refused_and_bare_seconds_are_a_timeout() {
    let dir = TempDir::new("numbers");
    let sweep = |extra: &[&str]| {
        run(
            ctl()
                .args(["sweep", "--profile", "none", "--out"])
                .arg(dir.join("out"))
                .args(extra)
                .args(["--", "true"]),
            30,
        )
    };
    let r = sweep(&["--seeds", "1..3", "-j", "0"]);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("at least 1"), "{}", r.stderr);
    let r = sweep(&["--seeds", "1..3", "--partition", "5/5"]);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("has no seeds"), "{}", r.stderr);
    let r = sweep(&["--seeds", "1..3", "--partition", "0/5"]);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    let r = sweep(&["--seeds", "1..2", "--timeout", "10"]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
}

#[test]
fn output_paths_are_checked_before_any_run() {
    let dir = TempDir::new("out-paths");
    let marker = dir.join("ran");
    let script = format!("touch {}", marker.display());
    let sweep = |extra: &[&str]| {
        run(
            ctl()
                .args(["sweep", "--seeds", "1..3", "--profile", "none"])
                .args(extra)
                .args(["--", "sh", "-c", &script]),
            30,
        )
    };
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let t = Instant::now();
    let r = sweep(&["--out", out, "--junit", "/proc/no/such/junit.xml"]);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr
            .contains("cannot write the JUnit report /proc/no/such/junit.xml"),
        "{}",
        r.stderr
    );
    let junit_dir = dir.join("junit.xml");
    std::fs::create_dir(&junit_dir).unwrap();
    let r = sweep(&["--out", out, "--junit", junit_dir.to_str().unwrap()]);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    let r = sweep(&["--out", "/proc/self/chaos-out"]);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("/proc/self/chaos-out"), "{}", r.stderr);
    assert!(
        !marker.exists(),
        "a run started before the paths were checked"
    );
    assert!(t.elapsed() < Duration::from_secs(10));

    // The JUnit file's directories are created.
    let nested = dir.join("reports/ci/junit.xml");
    let r = sweep(&["--out", out, "--junit", nested.to_str().unwrap()]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        std::fs::read_to_string(&nested)
            .unwrap()
            .contains("<testsuite")
    );
}

#[test]
fn stale_seed_files_of_an_earlier_sweep_are_removed() {
    let dir = TempDir::new("stale");
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    for f in ["seed-99.jsonl", "seed-99.out", "notes.txt", "seed-x.jsonl"] {
        std::fs::write(out.join(f), "old").unwrap();
    }
    let r = run(
        ctl()
            .args(["sweep", "--seeds", "1..2", "--profile", "none", "--out"])
            .arg(&out)
            .args(["--", "true"]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["notes.txt", "seed-x.jsonl"]);
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

fn interrupt_a_sweep(sig: i32, expected: i32, tag: &str) {
    let dir = TempDir::new(tag);
    // `sleep 30.0PID` sleeps 30 s and names this test's runs uniquely.
    let marker = format!("30.0{}{}", std::process::id(), sig);
    let junit = dir.join("junit.xml");
    let mut cmd = ctl();
    cmd.args(["sweep", "--seeds", "1..20", "-j", "2", "--profile", "none"])
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--junit")
        .arg(&junit)
        .args(["--", "sleep", &marker]);
    let mut child = own_group(&mut cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cleanup = |child: &mut std::process::Child| {
        kill_group(child);
        for pid in processes_with(&marker) {
            // SAFETY: kill takes integers; the pids were just found running with this test's unique
            // marker.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(&marker).len() < 2 {
        if Instant::now() > deadline {
            cleanup(&mut child);
            panic!("the sweep's two runs did not start within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill takes integers; the pid is one this test started and has not reaped, so the
    // number cannot have been reused.
    unsafe { libc::kill(child.id() as i32, sig) };
    let sent = Instant::now();
    let pid = child.id() as i32;
    let r = wait_with_deadline(child, 10, "the interrupted sweep");
    let took = sent.elapsed();
    let left = processes_with(&marker);
    for &p in &left {
        // SAFETY: kill takes integers; the pids were just found running with this test's unique
        // marker.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    // SAFETY: kill takes integers; the pid is one this test started and has not reaped, so the
    // number cannot have been reused.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    assert_eq!(r.code(), Some(expected), "{}", r.describe());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(left.is_empty(), "runs left behind: {left:?}");
    assert!(r.stderr.contains("sweep interrupted"), "{}", r.stderr);

    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 20, "{xml}");
    let skipped = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
        .count();
    assert_eq!(skipped, 20, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("skipped"), Some("20"));
}

#[test]
fn sigterm_stops_a_sweep_kills_its_runs_and_writes_junit() {
    interrupt_a_sweep(libc::SIGTERM, 143, "sigterm");
}

#[test]
fn sigint_stops_a_sweep_with_130() {
    interrupt_a_sweep(libc::SIGINT, 130, "sigint");
}

#[test]
fn completions_man_page_and_every_platform_in_help() {
    for (what, needle) in [
        ("man", ".TH chaos-ctl"),
        ("bash", "complete -F _chaos__ctl"),
        ("zsh", "#compdef chaos-ctl"),
        ("fish", "complete -c chaos-ctl"),
    ] {
        let r = run(ctl().args(["generate", what]), 20);
        assert_eq!(r.code(), Some(0), "{what}: {}", r.describe());
        assert!(r.stdout.contains(needle), "{what}: {}", r.stdout);
    }
    let r = run(ctl().args(["run", "--help"]), 20);
    assert!(
        r.stdout
            .contains("macos, freebsd, openbsd, linux-old, wsl1, linux"),
        "{}",
        r.stdout
    );
    // Shipped without debug info (the shim is loaded into every process).
    let sections = elf_section_names(&std::fs::read(&bins().shim).unwrap());
    assert!(sections.iter().any(|s| s == ".text"), "{sections:?}");
    assert!(
        !sections.iter().any(|s| s.starts_with(".debug_")),
        "the release shim carries debug info: {sections:?}"
    );
}

/// The section names of a little-endian ELF64 file.
fn elf_section_names(elf: &[u8]) -> Vec<String> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "an ELF64 file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(|i| {
            let start = strtab + u32_at(header(i));
            let end = start + elf[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect()
}
