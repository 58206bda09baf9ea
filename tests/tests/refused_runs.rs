//! Input chaos-ctl cannot honour is refused, saying what was expected, before anything runs — and
//! a refused run leaves nothing behind.

use chaos_tests::*;
use std::process::Command;

fn ctl() -> Command {
    Command::new(&bins().ctl)
}

/// `chaos-ctl ARGS`, which must exit 125 with `expect` on stderr.
fn refused(args: &[&str], expect: &str) -> Finished {
    let r = run(ctl().args(args), 30);
    assert_eq!(r.code(), Some(125), "{args:?}: {}", r.describe());
    assert!(r.stderr.contains(expect), "{args:?}: {}", r.describe());
    r
}

#[test]
fn a_run_refused_before_it_starts_leaves_no_log_and_no_run_directory() {
    let dir = TempDir::new("refused-leaves-nothing");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let system = dir.write(
        "s.toml",
        "[[process]]\nname = \"idle\"\ncmd = [\"sleep\", \"30\"]\n",
    );
    let system = system.to_str().unwrap();
    for (i, (extra, expect)) in [
        (&["--control-addr", "0.0.0.0:0"][..], "loopback only"),
        (&["--control-addr", "bogus"][..], "expected IP:PORT"),
        (&["--control-addr", &busy][..], "cannot listen"),
        (
            &["--policy", system, "--control-addr", "0.0.0.0:0"][..],
            "loopback only",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let log = dir.join(&format!("r{i}.jsonl"));
        let mut args = vec!["run", "--log", log.to_str().unwrap()];
        args.extend(extra);
        args.extend(["--", "true"]);
        refused(&args, expect);
        assert!(!log.exists(), "{args:?} left its log behind");
        let run_dir = dir.join(&format!("r{i}.run"));
        assert!(!run_dir.exists(), "{args:?} left {}", run_dir.display());
    }
}

#[test]
fn a_directory_of_the_run_directorys_name_that_is_not_ours_is_kept() {
    let dir = TempDir::new("refused-keeps-theirs");
    std::fs::create_dir_all(dir.join("k.run")).unwrap();
    std::fs::write(dir.join("k.run/theirs.txt"), "keep me").unwrap();
    let log = dir.join("k.jsonl");
    refused(
        &["run", "--log", log.to_str().unwrap(), "--", "true"],
        "is not a chaos run directory",
    );
    assert!(!log.exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("k.run/theirs.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn a_partition_with_a_process_in_two_groups_is_refused() {
    let dir = TempDir::new("refused-self-cut");
    let policy = dir.write(
        "p.toml",
        "[[process]]\nname = \"web\"\nreplicas = 2\ncmd = [\"sleep\", \"30\"]\n",
    );
    let log = dir.join("p.jsonl");
    // The workload asks for the cut from inside the run ($CHAOS_CONTROL names its page).
    let script = "\"$0\" control partition web#0,workload web#0; echo \"status $?\"; \
                  \"$0\" control partition web#0,workload web#1; echo \"status $?\"";
    let r = run(
        ctl()
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .args(["--", "sh", "-c", script])
            .arg(&bins().ctl),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.starts_with("status 125\n"),
        "the self-cut was accepted: {}",
        r.describe()
    );
    assert!(
        r.stderr
            .contains("`web#0` is in more than one group of the partition"),
        "{}",
        r.describe()
    );
    // The sound partition after it still works, and is the only one logged and counted.
    assert!(r.stdout.ends_with("status 0\n"), "{}", r.describe());
    assert!(
        r.stderr.contains(", 1 partition change in "),
        "{}",
        r.describe()
    );
    let events = read_events(&log);
    let cuts: Vec<_> = events
        .iter()
        .filter_map(Event::as_control)
        .filter(|c| c.what == "partition")
        .collect();
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert!(
        !cuts[0].cut.is_empty() && cuts[0].cut.iter().all(|pair| pair[0] != pair[1]),
        "{cuts:?}"
    );
}

#[test]
fn replay_of_a_truncated_command_line_asks_for_the_command() {
    let dir = TempDir::new("refused-truncated-argv");
    let log = dir.join("t.jsonl");
    // 200 arguments of 40 bytes: more than a 4 KB start line holds. The script fails unless it
    // got them all, so a replay of what is left would not even be the same run.
    let long: Vec<String> = (0..200).map(|i| format!("{i:040}")).collect();
    let mut args = vec![
        "run".to_string(),
        "-q".into(),
        "--log".into(),
        log.display().to_string(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        "[ $# -eq 200 ]".into(),
        "sh".into(),
    ];
    args.extend(long);
    let r = run(ctl().args(&args), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    let start = events.iter().find_map(Event::as_start).unwrap();
    assert!(start.argv_truncated.is_some_and(|n| n > 0), "{start:?}");
    let r = refused(
        &[
            "replay",
            "-q",
            "--log",
            dir.join("r.jsonl").to_str().unwrap(),
            log.to_str().unwrap(),
        ],
        "was truncated",
    );
    assert!(r.stderr.contains("after --"), "{}", r.describe());
    // With the command given, it replays.
    let mut again = vec![
        "replay".to_string(),
        "-q".into(),
        "--log".into(),
        dir.join("r2.jsonl").display().to_string(),
        log.display().to_string(),
    ];
    again.extend(args[4..].iter().cloned());
    let r = run(ctl().args(&again), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
}

#[test]
fn minimize_refuses_a_file_that_is_not_a_log_as_report_replay_and_freeze_do() {
    let dir = TempDir::new("refused-not-a-log");
    let text = dir.write("notes.txt", "root:x:0:0:root:/root:/bin/sh\n");
    let text = text.to_str().unwrap();
    let expect = "has no `start` event: not a chaos event log";
    refused(&["report", text], expect);
    refused(&["freeze", text], expect);
    refused(&["replay", text, "--", "true"], expect);
    refused(&["minimize", text, "--", "true"], expect);
}

#[test]
fn a_zero_timeout_and_a_duration_beside_a_command_are_refused() {
    let dir = TempDir::new("refused-times");
    let out = dir.join("sweep");
    for timeout in ["0", "0s"] {
        refused(
            &[
                "sweep",
                "--seeds",
                "1..2",
                "--timeout",
                timeout,
                "--out",
                out.to_str().unwrap(),
                "--",
                "true",
            ],
            "expected a duration above zero",
        );
    }
    assert!(!out.exists(), "a refused sweep made {}", out.display());
    let log = dir.join("d.jsonl");
    let r = refused(
        &[
            "run",
            "--duration",
            "2s",
            "--log",
            log.to_str().unwrap(),
            "--",
            "sleep",
            "4",
        ],
        "--duration is for a system run",
    );
    assert!(
        r.stderr.contains("lasts as long as the command"),
        "{}",
        r.describe()
    );
    assert!(!log.exists());
}
