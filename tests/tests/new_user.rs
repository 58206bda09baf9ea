//! What a new user or a CI job runs into first: long command lines, odd `--log` and `--policy`
//! paths, closed output, the CHAOS_* environment, signals, and `select`'s timeout (issue 10).

use chaos_engine::event::schema::Start;
use chaos_tests::*;
use std::process::{Command, Stdio};

fn ctl() -> Command {
    Command::new(&bins().ctl)
}

fn start_lines(log: &std::path::Path) -> Vec<Start> {
    read_events(log)
        .iter()
        .filter_map(Event::as_start)
        .cloned()
        .collect()
}

#[test]
fn a_command_line_longer_than_a_log_line_still_gives_a_json_start_line() {
    let dir = TempDir::new("long-argv");
    let words: Vec<String> = (1..=800).map(|n| n.to_string()).collect();
    let mut argv = vec!["/bin/echo"];
    argv.extend(words.iter().map(String::as_str));
    let r = run(&mut ctl_run(&dir, None, "l.jsonl", &argv), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.starts_with("1 2 3"), "{}", r.describe());
    let starts = start_lines(&dir.join("l.jsonl"));
    assert_eq!(starts.len(), 1);
    let s = &starts[0];
    let kept = s.argv.as_ref().expect("argv").len();
    let cut = s.argv_truncated.expect("argv_truncated");
    assert!(kept > 10, "{s:?}");
    assert_eq!(kept + cut, 801, "{s:?}");
    // The fields after argv are all there.
    assert_eq!(s.policy.as_deref(), Some("profile:benign"), "{s:?}");
    assert!(s.shim_version.is_some(), "{s:?}");
    assert!(!s.header.truncated, "{s:?}");
}

#[test]
fn a_log_that_is_not_a_regular_file_is_refused_up_front() {
    let dir = TempDir::new("bad-log");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated CString alive across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let subdir = dir.join("sub");
    std::fs::create_dir(&subdir).unwrap();
    for log in [
        std::path::PathBuf::from("/dev/full"),
        "/dev/zero".into(),
        "/dev/null".into(),
        fifo.clone(),
        subdir.clone(),
    ] {
        let r = run(
            ctl().arg("run").arg("--log").arg(&log).args(["--", "true"]),
            20,
        );
        assert_eq!(r.code(), Some(125), "{}: {}", log.display(), r.describe());
        assert!(
            r.stderr.contains("regular file")
                && (r.stderr.contains("device")
                    || r.stderr.contains("FIFO")
                    || r.stderr.contains("directory")),
            "{}: {}",
            log.display(),
            r.describe()
        );
        assert!(!r.stderr.contains("never loaded"), "{}", r.describe());
    }
}

const ONE_RULE: &str = "seed = 5\n\n[[rules]]\nname = \"slow-writes\"\non = \"write\"\nfd = \"pipe\"\nfault = { delay = \"1us..2us\" }\n";

/// `sh -c 'echo hi | cat'` writes to a pipe, so the rule fires.
const PIPE_WRITER: [&str; 3] = ["sh", "-c", "echo hi | cat >/dev/null"];

#[test]
fn a_policy_from_stdin_reaches_the_shim_with_all_its_rules() {
    let dir = TempDir::new("stdin-policy");
    let log = dir.join("s.jsonl");
    let mut cmd = ctl();
    cmd.arg("run")
        .arg("--log")
        .arg(&log)
        .args(["--policy", "/dev/stdin", "--"])
        .args(PIPE_WRITER);
    let child = own_group(&mut cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(ONE_RULE.as_bytes()).unwrap();
    }
    let r = wait_with_deadline(child, 30, "run --policy /dev/stdin");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let starts = start_lines(&log);
    assert!(!starts.is_empty(), "{}", r.describe());
    for s in &starts {
        assert_eq!(s.rules, Some(1), "{s:?}");
        assert_eq!(s.policy.as_deref(), Some("/dev/stdin"), "{s:?}");
        assert_eq!(s.seed, Some(5), "{s:?}");
    }
    assert!(r.stderr.contains("policy /dev/stdin"), "{}", r.describe());
    assert!(!r.stderr.contains("chaos: 0 fault"), "{}", r.describe());
}

#[test]
fn a_policy_from_a_pipe_reaches_every_sweep_seed_and_its_copy_is_removed() {
    let dir = TempDir::new("sweep-stdin");
    let out = dir.join("out");
    let keep = dir.join("seen");
    let script = format!(
        "echo hi | cat >/dev/null; env | grep ^CHAOS_POLICY= >> {}; exit 1",
        keep.display()
    );
    let mut cmd = ctl();
    cmd.env("TMPDIR", dir.path())
        .args(["sweep", "--seeds", "1..2", "-j", "1", "--keep-going"])
        .args(["--policy", "/dev/stdin", "--out"])
        .arg(&out)
        .args(["--", "sh", "-c", &script]);
    let mut child = own_group(&mut cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ONE_RULE.as_bytes())
            .unwrap();
    }
    let r = wait_with_deadline(child, 60, "sweep --policy /dev/stdin");
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    for seed in [1, 2] {
        let starts = start_lines(&out.join(format!("seed-{seed}.jsonl")));
        assert!(!starts.is_empty());
        for s in &starts {
            assert_eq!(s.rules, Some(1), "seed {seed}: {s:?}");
            assert_eq!(s.seed, Some(seed), "{s:?}");
            assert_eq!(s.policy.as_deref(), Some("/dev/stdin"), "{s:?}");
        }
    }
    // The shim read a private copy, which is gone once chaos-ctl is.
    let seen = std::fs::read_to_string(&keep).unwrap();
    let copy = seen
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("CHAOS_POLICY=");
    assert!(copy.starts_with(dir.path().to_str().unwrap()), "{seen}");
    assert!(
        !std::path::Path::new(copy).exists(),
        "{copy} was left behind"
    );
}

/// Waits for a child whose output is not piped, failing after `secs`.
fn wait_plain(mut child: std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            kill_group(&mut child);
            panic!("did not finish within {secs}s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn run_with_a_full_or_closed_stderr_returns_the_programs_status() {
    let dir = TempDir::new("closed-stderr");
    // stderr on /dev/full: every write fails with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = ctl_run(&dir, None, "f.jsonl", &["sh", "-c", "exit 3"]);
    let child = own_group(&mut cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    let status = wait_plain(child, 20);
    assert_eq!(status.code(), Some(3), "{status:?}");
    // stderr a pipe nobody reads any more: EPIPE (SIGPIPE is ignored by Rust programs).
    let mut fds = [0; 2];
    // SAFETY: `fds` is a local array of two ints, as pipe() writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the read end pipe() just made here; nothing else owns it.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is the write end pipe() just made here; the File becomes its only owner.
    let w = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let mut cmd = ctl_run(&dir, None, "p.jsonl", &["sh", "-c", "exit 4"]);
    let child = own_group(&mut cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(w)
        .spawn()
        .unwrap();
    let status = wait_plain(child, 20);
    assert_eq!(status.code(), Some(4), "{status:?}");
}

#[test]
fn run_honours_chaos_seed_and_says_so_and_the_flag_wins() {
    let dir = TempDir::new("env-seed");
    let mut cmd = ctl_run(&dir, None, "a.jsonl", &["true"]);
    cmd.env("CHAOS_SEED", "42");
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("seed 42 (CHAOS_SEED)"),
        "{}",
        r.describe()
    );
    assert_eq!(start_lines(&dir.join("a.jsonl"))[0].seed, Some(42));

    let mut cmd = ctl();
    cmd.env("CHAOS_SEED", "42")
        .args(["run", "--seed", "7", "--log"])
        .arg(dir.join("b.jsonl"))
        .args(["--", "true"]);
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stderr.contains("seed 7 (--seed)"), "{}", r.describe());
    assert_eq!(start_lines(&dir.join("b.jsonl"))[0].seed, Some(7));

    let mut cmd = ctl_run(&dir, None, "c.jsonl", &["true"]);
    cmd.env("CHAOS_SEED", "forty-two");
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("CHAOS_SEED"), "{}", r.describe());
}

#[test]
fn run_honours_the_policy_profile_platform_and_log_variables() {
    let dir = TempDir::new("env-policy");
    let policy = dir.write("p.toml", ONE_RULE);
    let log = dir.join("env.jsonl");
    let mut cmd = ctl();
    cmd.env("CHAOS_POLICY", &policy)
        .env("CHAOS_LOG", &log)
        .env("CHAOS_PLATFORM", "macos")
        .arg("run")
        .arg("--")
        .args(PIPE_WRITER);
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let starts = start_lines(&log);
    assert_eq!(starts[0].policy.as_deref(), policy.to_str());
    assert_eq!(starts[0].rules, Some(1));
    assert!(
        !starts[0].quirks.as_ref().expect("quirks").is_empty(),
        "{:?}",
        starts[0]
    );

    let mut cmd = ctl_run(&dir, None, "prof.jsonl", &["true"]);
    cmd.env("CHAOS_PROFILE", "none");
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        start_lines(&dir.join("prof.jsonl"))[0].policy.as_deref(),
        Some("profile:none")
    );
}

#[test]
fn sweep_refuses_chaos_variables_instead_of_dropping_them() {
    let dir = TempDir::new("env-sweep");
    let mut cmd = ctl();
    cmd.env("CHAOS_SEED", "3")
        .args(["sweep", "--seeds", "1..2", "--out"])
        .arg(dir.join("out"))
        .args(["--", "true"]);
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("CHAOS_SEED"), "{}", r.describe());
}

#[test]
fn the_shim_warns_about_a_misspelt_chaos_variable() {
    let dir = TempDir::new("env-typo");
    let policy = dir.write("p.toml", ONE_RULE);
    let r = run(
        preloaded(
            std::path::Path::new("/bin/true"),
            &policy,
            &dir.join("t.jsonl"),
        )
        .env("CHAOS_POLCY", "x.toml"),
        20,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("CHAOS_POLCY"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.describe());
    assert!(
        warnings[0].contains("did you mean CHAOS_POLICY"),
        "{}",
        r.describe()
    );
    // Known variables alone: nothing.
    let r = run(
        &mut preloaded(
            std::path::Path::new("/bin/true"),
            &policy,
            &dir.join("u.jsonl"),
        ),
        20,
    );
    assert!(!r.stderr.contains("warning"), "{}", r.describe());
}

#[test]
fn select_under_the_shim_writes_back_the_time_not_slept() {
    let dir = TempDir::new("select-timeout");
    let prog = compile_c("select_timeout", dir.path(), &[]);
    let mut cmd = ctl();
    cmd.args(["run", "--profile", "none", "--log"])
        .arg(dir.join("s.jsonl"))
        .arg("--")
        .arg(&prog);
    let r = run(&mut cmd, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("select 1 remaining 0 "),
        "{}",
        r.describe()
    );
}
