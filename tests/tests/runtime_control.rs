//! Runtime control and partitions: rules switched on and off while a run lives (over the CLI and
//! over HTTP, from the workload itself), partitions between the kv example's replicas (quorum lost
//! while a majority is cut off, served again after the heal), one-way cuts that hold one direction
//! only, and `[[partition]]` windows carried out on the run's timeline.
//!
//! Each scenario is `tests/fixtures/kv_control.py`, which checks what the store answers at each
//! step; these tests check its verdict and what the log says of the changes.

use chaos_engine::event::schema::ControlLine;
use chaos_tests::*;
use serde_json::Value;
use std::process::Command;

/// Three Python replicas and a workload with one-second timeouts: one system at a time, so a
/// 2-core machine does not starve them into failures that are not the store's.
static ONE_SYSTEM_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_SYSTEM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn kv_policy(dir: &TempDir, replicas: u32, tail: &str) -> std::path::PathBuf {
    dir.write(
        "policy.toml",
        &format!(
            "seed = 1\n[[process]]\nname = \"kv\"\ncmd = [\"python3\", \"examples/kv/kv.py\", \
             \"--port\", \"{{port}}\", \"--data\", \"{{data}}\", \"--peers\", \"{{peers}}\"]\n\
             replicas = {replicas}\ndata = \"{{run}}/kv-{{i}}\"\nready = \"tcp:{{port}}\"\n{tail}"
        ),
    )
}

/// Runs scenario `name` of kv_control.py under `policy`, with the control endpoint on.
fn scenario(policy: &std::path::Path, log: &std::path::Path, name: &str) -> Finished {
    let fixture = workspace_root().join("tests/fixtures/kv_control.py");
    run(
        Command::new(&bins().ctl)
            .current_dir(workspace_root())
            .env("CTL", &bins().ctl)
            .args(["run", "-q", "--control-addr", "127.0.0.1:0", "--policy"])
            .arg(policy)
            .arg("--log")
            .arg(log)
            .arg("--")
            .arg("python3")
            .arg(fixture)
            .arg(name),
        120,
    )
}

fn control_lines(log: &std::path::Path) -> Vec<ControlLine> {
    read_events(log)
        .iter()
        .filter_map(Event::as_control)
        .cloned()
        .collect()
}

/// A directed pair of a cut, as a control line holds it.
fn pair(from: &str, to: &str) -> [String; 2] {
    [from.to_string(), to.to_string()]
}

#[test]
fn a_rule_switched_on_and_off_mid_run_takes_effect_at_once() {
    let _one = one_at_a_time();
    let dir = TempDir::new("control-down");
    let policy = kv_policy(
        &dir,
        1,
        "[[rules]]\nname = \"db-down\"\non = \"connect\"\nprocess = \"workload\"\n\
         fault = \"ECONNREFUSED\"\nenabled = false\n",
    );
    let log = dir.join("run.jsonl");
    let r = scenario(&policy, &log, "down_and_up");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    for step in [
        "before OK",
        "down ConnectionRefusedError",
        "http disable",
        "up VAL 1",
    ] {
        assert!(r.stdout.contains(step), "{step}: {}", r.describe());
    }
    let events = read_events(&log);
    // The two refused connects, and only they: the rule fired exactly while it was on.
    assert_eq!(
        count_fault_events(&events, "ECONNREFUSED"),
        2,
        "{}",
        r.describe()
    );
    let lines = control_lines(&log);
    let changes: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|c| Some((c.by.as_deref()?, c.what.as_str())))
        .collect();
    assert_eq!(changes, vec![("cli", "enable"), ("http", "disable")]);
    // The workload's shim saw each generation at a place of its own, with what was on from then.
    let seen: Vec<&ControlLine> = lines.iter().filter(|c| c.what == "seen").collect();
    let on = seen
        .iter()
        .find(|s| s.generation == 1)
        .unwrap_or_else(|| panic!("no process saw generation 1: {seen:?}"));
    assert_eq!(on.enabled, Some(vec!["db-down".to_string()]));
    assert!(
        on.at.as_deref().is_some_and(|a| a.contains("/connect#")),
        "{on:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.generation == 2 && s.enabled == Some(vec![])),
        "{seen:?}"
    );
}

#[test]
fn a_majority_cut_off_loses_quorum_writes_and_serves_after_heal() {
    let _one = one_at_a_time();
    let dir = TempDir::new("control-majority");
    let policy = kv_policy(&dir, 3, "");
    let log = dir.join("run.jsonl");
    let r = scenario(&policy, &log, "majority_cut");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let lines = control_lines(&log);
    let partition = lines
        .iter()
        .find(|c| c.what == "partition")
        .unwrap_or_else(|| panic!("no partition line: {lines:?}"));
    let cut = &partition.cut;
    assert_eq!(cut.len(), 8, "2 x 2 pairs, both ways: {partition:?}");
    assert!(cut.contains(&pair("kv#0", "kv#1")));
    assert!(!cut.contains(&pair("kv#1", "kv#2")));
    assert!(
        lines
            .iter()
            .any(|c| c.what == "heal" && c.by.as_deref() == Some("http"))
    );
}

#[test]
fn a_one_way_cut_holds_one_direction_only_and_held_data_flows_on_heal() {
    let _one = one_at_a_time();
    let dir = TempDir::new("control-one-way");
    let policy = kv_policy(&dir, 3, "");
    let log = dir.join("run.jsonl");
    let r = scenario(&policy, &log, "one_way");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let cuts: Vec<Vec<[String; 2]>> = control_lines(&log)
        .into_iter()
        .filter(|c| c.what == "partition")
        .map(|c| c.cut)
        .collect();
    assert_eq!(
        cuts,
        vec![
            vec![pair("workload", "kv#0")],
            vec![pair("kv#0", "workload")]
        ]
    );
}

#[test]
fn a_write_held_past_tcp_user_timeout_ends_the_connection_with_etimedout() {
    let _one = one_at_a_time();
    let dir = TempDir::new("control-user-timeout");
    let policy = kv_policy(&dir, 3, "");
    let log = dir.join("run.jsonl");
    let r = scenario(&policy, &log, "user_timeout");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    for step in [
        "user-timeout errno 110",
        "after-about-half-a-second True",
        "own-timeout errno None",
    ] {
        assert!(r.stdout.contains(step), "{step}: {}", r.describe());
    }
}

#[test]
fn partition_windows_cut_and_heal_on_the_runs_timeline() {
    let _one = one_at_a_time();
    let dir = TempDir::new("control-scheduled");
    let policy = kv_policy(
        &dir,
        3,
        "[[partition]]\nbetween = [[\"kv#0\", \"workload\"], [\"kv#1\", \"kv#2\"]]\n\
         window = [\"1s\", \"3s\"]\n",
    );
    let log = dir.join("run.jsonl");
    let r = scenario(&policy, &log, "scheduled");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let lines = control_lines(&log);
    let by_schedule = |c: &&ControlLine| c.by.as_deref() == Some("schedule");
    let scheduled: Vec<(&str, &str, u64)> = lines
        .iter()
        .filter(by_schedule)
        .map(|c| {
            (
                c.what.as_str(),
                c.key.as_deref().expect("a scheduled change has its key"),
                c.t_ns.expect("a scheduled change has its time"),
            )
        })
        .collect();
    assert_eq!(scheduled.len(), 2, "{lines:?}");
    assert_eq!(
        (scheduled[0].0, scheduled[0].1),
        ("partition", "partition#0")
    );
    assert_eq!((scheduled[1].0, scheduled[1].1), ("heal", "partition#1"));
    // On the run's timeline, within the supervisor's tick.
    assert!(
        (1_000_000_000..1_500_000_000).contains(&scheduled[0].2),
        "{scheduled:?}"
    );
    assert!(
        (3_000_000_000..3_500_000_000).contains(&scheduled[1].2),
        "{scheduled:?}"
    );
    let first = lines.iter().find(by_schedule).unwrap();
    let cut = &first.cut;
    assert_eq!(cut.len(), 8, "{cut:?}");
    assert!(cut.contains(&pair("workload", "kv#2")), "{cut:?}");

    // Frozen, the cut is an exact `[[partition]]` of its directed pairs over the time it lasted;
    // replayed, the workload sees the same quorum loss and recovery.
    let frozen = run(Command::new(&bins().ctl).arg("freeze").arg(&log), 30);
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert!(frozen.stdout.contains("[[partition]]"), "{}", frozen.stdout);
    assert!(
        frozen.stdout.contains("[\"kv#0\", \"kv#1\"]"),
        "{}",
        frozen.stdout
    );
    let window = format!(
        "window = [\"{}ns\", \"{}ns\"]",
        scheduled[0].2, scheduled[1].2
    );
    assert!(frozen.stdout.contains(&window), "{}", frozen.stdout);
    let replayed = dir.join("replayed.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .current_dir(workspace_root())
            .env("CTL", &bins().ctl)
            .args(["replay", "-q", "--log"])
            .arg(&replayed)
            .arg(&log),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("during ['ERR no quorum']"),
        "{}",
        r.describe()
    );
    let again: Vec<ControlLine> = control_lines(&replayed)
        .into_iter()
        .filter(|c| c.by.as_deref() == Some("schedule"))
        .collect();
    assert_eq!(again.len(), 2, "{again:?}");
}

#[test]
fn control_without_a_run_or_with_unknown_names_says_what_was_expected() {
    let dir = TempDir::new("control-bad");
    // No run: neither --run nor $CHAOS_CONTROL.
    let r = run(
        Command::new(&bins().ctl)
            .env_remove("CHAOS_CONTROL")
            .args(["control", "status"]),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("give --run DIR"), "{}", r.describe());
    // A run directory with no page in it.
    let r = run(
        Command::new(&bins().ctl)
            .arg("control")
            .arg("--run")
            .arg(dir.path())
            .arg("heal"),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("is the run still going?"),
        "{}",
        r.describe()
    );

    // A live run: a workload that asks for a rule and a process the run does not have.
    let policy = dir.write(
        "p.toml",
        "[[rules]]\nname = \"slow\"\non = \"read\"\nfault = { delay = \"1ms\" }\nenabled = false\n",
    );
    let v = run(Command::new(&bins().ctl).arg("validate").arg(&policy), 20);
    assert!(v.stdout.contains("(off at start"), "{}", v.describe());
    let script = format!(
        "{ctl} control enable slwo; echo enable=$?; {ctl} control partition a b; echo part=$?; \
         {ctl} control status --json",
        ctl = bins().ctl.display()
    );
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "-q", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--", "sh", "-c", &script]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("enable=2"), "{}", r.describe());
    assert!(
        r.stderr
            .contains("no rule `slwo` in this run's policy; expected one of slow"),
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("part=2"), "{}", r.describe());
    assert!(
        r.stderr.contains("no process `a` in this run"),
        "{}",
        r.describe()
    );
    let json_start = r.stdout.find('{').expect("status json");
    let status: Value = serde_json::from_str(&r.stdout[json_start..]).unwrap();
    assert_eq!(status["rules"][0]["name"], "slow");
    assert_eq!(status["rules"][0]["enabled"], false);

    // The endpoint listens on loopback only.
    let r = run(
        Command::new(&bins().ctl).args(["run", "-q", "--control-addr", "0.0.0.0:0", "--", "true"]),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("loopback only"), "{}", r.describe());
}

#[test]
fn bad_partition_configs_are_refused_with_where_and_what() {
    let dir = TempDir::new("partition-bad");
    let system = "[[process]]\nname = \"kv\"\ncmd = [\"true\"]\nreplicas = 3\n";
    assert_refused(
        &dir,
        &[
            (
                "[[partition]]\nbetween = [[\"a\"], [\"b\"]]\n",
                "needs [[process]] entries",
            ),
            (
                &format!("{system}[[partition]]\nbetween = [[\"kv#0\"]]\n"),
                "two or more non-empty groups",
            ),
            (
                &format!("{system}[[partition]]\nbetween = [[\"kv#0\"], [\"kv#9\"]]\n"),
                "no process or replica named `kv#9`",
            ),
            (
                &format!("{system}[[partition]]\nbetween = [[\"kv#0\"], [\"kv#0\"]]\n"),
                "in more than one group",
            ),
            (
                &format!("{system}[[partition]]\nbetween = [[\"kv#1\"], [\"kv\"]]\n"),
                "`kv#1` is in more than one group",
            ),
            (
                &format!("{system}[partitions]\nshapes = [\"halfs\"]\n"),
                "unknown shape `halfs`; expected halves, one, majorities-ring or bridge",
            ),
            (
                "[[rules]]\non = \"read\"\nfault = \"EINTR\"\nenabled = \"no\"\n",
                "enabled",
            ),
        ],
    );
}

#[test]
fn a_process_that_outlives_its_run_still_runs_and_a_bad_page_is_refused() {
    let dir = TempDir::new("control-gone");
    let policy = dir.write(
        "p.toml",
        "[[rules]]\non = \"read\"\nfault = { delay = \"1ms\" }\n",
    );
    let script = dir.write("ok.sh", "echo ran\n");
    let preloaded = |control: &std::path::Path| {
        run(
            Command::new("sh")
                .arg(&script)
                .env("LD_PRELOAD", &bins().shim)
                .env("CHAOS_POLICY", &policy)
                .env("CHAOS_CONTROL", control),
            20,
        )
    };
    // A run's page is removed when the run ends: a process exec'ing after that is not its to
    // steer any more, and runs under its policy.
    let r = preloaded(&dir.join("gone/control"));
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout, "ran\n", "{}", r.describe());
    // Something that is not a control page is an error, as any unusable setting is.
    let r = preloaded(&policy);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("is not a control page"),
        "{}",
        r.describe()
    );
}
