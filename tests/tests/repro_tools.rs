//! The reproduction tools (`freeze`, `replay`, `report`, `validate`) say the truth: frozen
//! policies parse whatever the argv and rule names hold, non-logs are refused, and `report` shows
//! everything a log says.

use chaos_tests::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn ctl() -> Command {
    Command::new(&bins().ctl)
}

/// Runs `cmd` with `input` on stdin, under a deadline.
fn run_with_stdin(cmd: &mut Command, input: &str, secs: u64) -> Finished {
    own_group(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn chaos-ctl");
    let mut stdin = child.stdin.take().expect("stdin");
    // chaos-ctl may exit before reading it all (a refused input).
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    wait_with_deadline(child, secs, "chaos-ctl")
}

const START: &str = r#"{"ev":"start","ts_ns":1,"pid":7,"ppid":1,"proc":"c2459c08352fe84d","via":"exec","exe":"/usr/bin/python3","argv":["python3","d.py"],"seed":42,"policy":"/tmp/d.toml","policy_digest":"0123456789abcdef","rules":1,"injections":0,"quirks":[],"quirk_probability":"1","missing_symbols":0,"shim_version":"0.1.0"}"#;
const RESET: &str = r#"{"ev":"fault","ts_ns":3,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"kind":"tcp","conn":"tcp-in#0","rule":"reset","rule_index":0,"fault":"reset","errno":"ECONNRESET","requested":10,"returned":-1,"delay_ns":0,"effect":"rst-sent","key":"c2459c08352fe84d-23da8bd2d98171d8/r0/rx@0#0"}"#;
const WARNING: &str = r#"{"ev":"warning","ts_ns":4,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"close","fd":5,"what":"close retried after a failed close"}"#;

fn synthetic_log(dir: &TempDir, name: &str) -> std::path::PathBuf {
    dir.write(name, &format!("{START}\n{RESET}\n{WARNING}\n"))
}

#[test]
fn a_frozen_policy_parses_when_argv_and_rule_names_hold_newlines() {
    let dir = TempDir::new("repro-newline");
    let policy = "[[rules]]\nname = \"slow\\nreads\"\non = \"read\"\nfd = \"pipe\"\nprobability = 1.0\nfault = { delay = \"1us\" }\n";
    // The subshell reading the pipe is a fork of `sh`: its argv (so the frozen comment) holds the
    // script's newlines.
    let script = "printf x | { read v; echo \"$v\"; }\n# a second line \"quoted\" \u{7}\ntrue";
    let r = run(
        &mut ctl_run(&dir, Some(policy), "n.jsonl", &["sh", "-c", script]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let log = dir.join("n.jsonl");
    let events = read_events(&log);
    assert!(
        count_fault_events(&events, "delay") > 0,
        "no fault: {events:?}"
    );

    let r = run(ctl().arg("freeze").arg(&log), 30);
    assert_eq!(r.code(), Some(0), "freeze: {}", r.describe());
    let frozen = dir.write("frozen.toml", &r.stdout);
    let v = run(ctl().arg("validate").arg(&frozen), 30);
    assert_eq!(
        v.code(),
        Some(0),
        "validate: {}\n{}",
        v.describe(),
        r.stdout
    );
    // Every comment stays one line: nothing of the argv leaks out of its comment.
    for line in r.stdout.lines() {
        assert!(
            !line.contains("a second line") || line.starts_with('#'),
            "{line:?} in\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("}\\n# a second line"),
        "the argv, escaped: {}",
        r.stdout
    );
    assert!(r.stdout.contains("slow\\nreads"), "{}", r.stdout);

    // replay renders the same policy and runs it.
    let r = run(
        ctl()
            .arg("replay")
            .arg("--log")
            .arg(dir.join("replayed.jsonl"))
            .arg(&log),
        30,
    );
    assert_eq!(r.code(), Some(0), "replay: {}", r.describe());
    assert!(r.stderr.contains("replay reproduced"), "{}", r.describe());
}

#[test]
fn report_and_replay_refuse_a_file_that_is_not_a_chaos_log() {
    let dir = TempDir::new("repro-notalog");
    let text = dir.write("notes.txt", "hello\nthis is not a log\n");
    let empty = dir.write("empty.jsonl", "");
    for file in [&text, &empty] {
        let r = run(ctl().arg("report").arg(file), 20);
        assert_eq!(r.code(), Some(125), "report: {}", r.describe());
        assert!(
            r.stderr.contains("not a chaos event log"),
            "{}",
            r.describe()
        );
        let r = run(
            ctl()
                .arg("replay")
                .arg("--log")
                .arg(dir.join("r.jsonl"))
                .arg(file)
                .arg("--")
                .arg("true"),
            20,
        );
        assert_eq!(r.code(), Some(125), "replay: {}", r.describe());
        assert!(
            r.stderr.contains("not a chaos event log"),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn report_shows_warnings_seed_and_policy() {
    let dir = TempDir::new("repro-report");
    let log = synthetic_log(&dir, "w.jsonl");
    let r = run(ctl().arg("report").arg(&log), 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("close retried after a failed close"),
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("seed 42"), "{}", r.describe());
    assert!(r.stdout.contains("/tmp/d.toml"), "{}", r.describe());

    let r = run(ctl().arg("report").arg("--json").arg(&log), 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(doc["seed"], 42, "{doc}");
    assert_eq!(doc["policy"], "/tmp/d.toml", "{doc}");
    let warnings = doc["warnings"].as_array().expect("warnings array");
    assert_eq!(warnings.len(), 1, "{doc}");
    assert_eq!(warnings[0]["op"], "close", "{doc}");
    assert_eq!(
        warnings[0]["what"], "close retried after a failed close",
        "{doc}"
    );
}

#[test]
fn report_reads_stdin() {
    let dir = TempDir::new("repro-stdin");
    let log = synthetic_log(&dir, "s.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let r = run_with_stdin(ctl().arg("report").arg("-"), &text, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("1 process, 1 fault\n"),
        "{}",
        r.describe()
    );
    let r = run_with_stdin(ctl().arg("report").arg("-"), "not a log\n", 20);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
}

#[test]
fn validate_reads_stdin() {
    let policy = "seed = 9\n[[rules]]\non = \"read\"\nfd = \"pipe\"\nfault = { delay = \"1us\" }\n";
    let r = run_with_stdin(ctl().arg("validate").arg("-"), policy, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("ok, 1 rule(s)") && r.stdout.contains("seed 9"),
        "{}",
        r.describe()
    );
    let r = run_with_stdin(ctl().arg("validate").arg("-"), "[[rules]\n", 20);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
}

#[test]
fn report_takes_several_logs() {
    let dir = TempDir::new("repro-several");
    let a = synthetic_log(&dir, "a.jsonl");
    let b = synthetic_log(&dir, "b.jsonl");
    let r = run(ctl().arg("report").arg(&a).arg(&b), 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("a.jsonl") && r.stdout.contains("b.jsonl"),
        "{}",
        r.describe()
    );
}

/// A log's `start` line records the working directory, and `replay` without a command runs the
/// logged command there again, wherever replay itself is started.
#[test]
fn replay_without_a_command_runs_it_where_it_ran() {
    let dir = TempDir::new("replay-cwd");
    let work = dir.join("work");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let policy = dir.write(
        "slow.toml",
        "[[rules]]\non = \"read\"\nfd = \"pipe\"\nfault = { delay = \"1us\" }\n",
    );
    let log = dir.join("run.jsonl");
    // A relative output path: it means `work/` only if the command runs in `work/` again.
    let script = "printf x | cat > /dev/null; pwd > where.txt";
    let r = run(
        Command::new(&bins().ctl)
            .current_dir(&work)
            .args(["run", "-q", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .args(["--", "sh", "-c", script]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    let start = events.iter().find_map(Event::as_start).unwrap();
    assert_eq!(
        start.cwd.as_deref(),
        Some(work.canonicalize().unwrap().to_str().unwrap()),
        "the start line names the working directory: {start:?}"
    );
    std::fs::remove_file(work.join("where.txt")).unwrap();

    let r = run(
        Command::new(&bins().ctl)
            .current_dir(&elsewhere)
            .arg("replay")
            .arg("--log")
            .arg(dir.join("replay.jsonl"))
            .arg(&log),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let written = std::fs::read_to_string(work.join("where.txt"))
        .unwrap_or_else(|e| panic!("the replay did not run in work/: {e}\n{}", r.describe()));
    assert_eq!(
        written.trim(),
        work.canonicalize().unwrap().to_str().unwrap()
    );
    assert!(!elsewhere.join("where.txt").exists());
    assert!(r.stderr.contains("replaying in"), "{}", r.describe());
}

/// Every process's end is logged by whoever reaped it: the shim in the parent for its children
/// (a SIGKILL'd child cannot log its own death), chaos-ctl for the program it started.
/// Fails unless `text` (the run's stdout or stderr) holds every one of `needles`.
fn says(text: &str, needles: &[&str], r: &Finished) {
    for n in needles {
        assert!(
            text.contains(n),
            "expected {n:?} in the output:\n{}",
            r.describe()
        );
    }
}

#[test]
fn every_process_end_is_logged_by_its_reaper() {
    let dir = TempDir::new("exit-lines");
    let program = compile_c("reap", dir.path(), &[]);
    let log = dir.join("run.jsonl");
    let r = run(
        ctl()
            .args(["run", "-q", "--log"])
            .arg(&log)
            .arg("--")
            .arg(&program),
        30,
    );
    assert_eq!(r.code(), Some(7), "{}", r.describe());
    let events = read_events(&log);
    let top = events.iter().find_map(Event::as_start).unwrap();
    let exits: Vec<_> = events.iter().filter_map(Event::as_exit).collect();
    assert_eq!(exits.len(), 3, "{exits:?}");
    let killed = exits
        .iter()
        .find(|x| x.signal.as_deref() == Some("SIGKILL"))
        .expect("the SIGKILL'd child");
    let three = exits
        .iter()
        .find(|x| x.status == Some(3))
        .expect("the child that exited 3");
    for child in [killed, three] {
        assert_eq!(
            child.reaper, top.header.pid,
            "reaped by the program: {child:?}"
        );
        assert_ne!(child.pid, top.header.pid);
    }
    let own = exits
        .iter()
        .find(|x| x.pid == top.header.pid)
        .expect("the program's own end");
    assert_eq!(own.status, Some(7), "{own:?}");
    assert_eq!(own.proc.as_ref(), Some(&top.header.proc), "{own:?}");
    assert_ne!(own.reaper, top.header.pid);
    // The last line of the log: nothing the program did can come after its reaping.
    assert!(
        matches!(events.last(), Some(Event::Exit(_))),
        "{:?}",
        events.last()
    );

    let r = run(ctl().arg("report").arg(&log), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    says(&r.stdout, &["killed by SIGKILL", "exit 7"], &r);
}

/// `replay` says whether the failure came back (the logged exit against today's), and when no
/// logged key could be reached because the command line changed, it says exactly that.
#[test]
fn replay_says_whether_the_failure_reproduced() {
    let dir = TempDir::new("replay-verdict");
    let policy = dir.write(
        "eio.toml",
        "[[rules]]\non = \"write\"\nfd = \"pipe\"\nfault = \"EIO\"\ntimes = 1\n",
    );
    let log = dir.join("run.jsonl");
    let script = |byte: &str| format!("import os; r, w = os.pipe(); os.write(w, b'{byte}')");
    let r = run(
        ctl()
            .args(["run", "-q", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .args(["--", "python3", "-c", &script("x")]),
        60,
    );
    assert_eq!(
        r.code(),
        Some(1),
        "the EIO fails the program: {}",
        r.describe()
    );

    let r = run(
        ctl()
            .arg("replay")
            .arg("--log")
            .arg(dir.join("again.jsonl"))
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    says(
        &r.stderr,
        &["the failure reproduced: exit 1 then, exit 1 now"],
        &r,
    );

    let r = run(
        ctl()
            .arg("replay")
            .arg("--log")
            .arg(dir.join("changed.jsonl"))
            .arg(&log)
            .args(["--", "python3", "-c", &script("y")]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    says(
        &r.stderr,
        &["the failure did not reproduce: exit 1 then, exit 0 now"],
        &r,
    );
    says(
        &r.stderr,
        &["no logged key was reached because the process key changed"],
        &r,
    );
}
