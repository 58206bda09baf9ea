//! The account of a run: the summary and `report` count every effect chaos had on the program —
//! faults, what a `[[disk]]` did, changes undone after a crash and undos that failed — and say in
//! words how the program ended.

use chaos_engine::event::schema::DurabilityLine;
use chaos_tests::*;
use std::process::Command;

fn python() -> std::path::PathBuf {
    require("python3").expect("python3")
}

/// Appends `count` chunks of `size` bytes to PATH, printing what each write returned.
const APPENDER: &str = r#"
import os, sys
path, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = open(path, "ab", buffering=0)
for i in range(count):
    try:
        print(f.write(b"x" * size))
    except OSError as e:
        print(os.strerror(e.errno))
"#;

#[test]
fn a_disk_runs_short_write_and_refusals_are_counted_by_summary_and_report() {
    let dir = TempDir::new("account-disk");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let policy = format!(
        "[[disk]]\nname = \"data\"\npath = \"{}/*\"\ncapacity = \"64KB\"\n",
        data.display()
    );
    let script = dir.write("append.py", APPENDER);
    let target = data.join("app.log");
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "d.jsonl",
            &[
                python().to_str().unwrap(),
                script.to_str().unwrap(),
                target.to_str().unwrap(),
                "30000",
                "5",
            ],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // 16 blocks: two whole writes (60,000 bytes in 15 blocks), one cut at 65,536, two refused.
    assert_eq!(
        r.stdout,
        "30000\n30000\n5536\nNo space left on device\nNo space left on device\n"
    );
    let log = read_events(&dir.join("d.jsonl"));
    let disk = log.iter().filter_map(Event::as_disk).count();
    assert_eq!(disk, 3, "{log:?}");
    assert!(
        r.stderr.contains("chaos: 0 faults, 3 disk effects in "),
        "{}",
        r.stderr
    );
    let row = |what: &str, n: usize| {
        r.stderr
            .lines()
            .any(|l| l.starts_with("  disk ") && l.contains(what) && l.ends_with(&format!(" {n}")))
    };
    assert!(row("short", 1) && row("full ENOSPC", 2), "{}", r.stderr);

    let rep = run(
        Command::new(&bins().ctl)
            .args(["report", "--json"])
            .arg(dir.join("d.jsonl")),
        20,
    );
    assert_eq!(rep.code(), Some(0), "{}", rep.describe());
    let doc: serde_json::Value = serde_json::from_str(&rep.stdout).unwrap();
    assert_eq!(doc["effects"]["disk"], 3, "{doc}");
    assert_eq!(doc["effects"]["total"], 3, "{doc}");
    let rows = doc["effects"]["by_effect"].as_array().unwrap();
    let count = |what: &str| {
        rows.iter()
            .find(|x| x["effect"] == "disk" && x["what"] == what)
            .map(|x| x["count"].clone())
    };
    assert_eq!(count("short"), Some(1.into()), "{doc}");
    assert_eq!(count("full ENOSPC"), Some(2.into()), "{doc}");
    let text = run(
        Command::new(&bins().ctl)
            .arg("report")
            .arg(dir.join("d.jsonl")),
        20,
    );
    assert!(
        text.stdout
            .contains(" processes, 0 faults, 3 disk effects\n"),
        "{}",
        text.describe()
    );
}

/// Writes D/config through a temporary file and a rename, unsynced, then SIGKILLs itself. With
/// `break`, it first turns the directory the rename happened in into a file (chaos's policy
/// covers only what is inside it), so putting the rename back cannot work.
const SAVER: &str = r#"
import os, signal, sys
d, how = sys.argv[1], sys.argv[2]
os.mkdir(d)
with open(os.path.join(d, "config.tmp"), "wb") as f:
    f.write(b"new settings\n")
os.rename(os.path.join(d, "config.tmp"), os.path.join(d, "config"))
if how == "break":
    os.rename(d, d + ".moved")
    open(d, "wb").close()
print("saved", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"#;

fn crash_save(how: &str) -> (Finished, Vec<Event>) {
    let dir = TempDir::new(&format!("account-undo-{how}"));
    let data = dir.join("data");
    let policy = format!("[durability]\npath = \"{}/*\"\n", data.display());
    let script = dir.write("save.py", SAVER);
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "u.jsonl",
            &[
                python().to_str().unwrap(),
                script.to_str().unwrap(),
                data.to_str().unwrap(),
                how,
            ],
        ),
        30,
    );
    assert_eq!(r.stdout, "saved\n", "{}", r.describe());
    let log = read_events(&dir.join("u.jsonl"));
    (r, log)
}

fn durability_lines<'a>(log: &'a [Event], what: &str) -> Vec<&'a DurabilityLine> {
    log.iter()
        .filter_map(Event::as_durability)
        .filter(|e| e.what == what)
        .collect()
}

#[test]
fn a_crash_runs_undone_changes_are_in_the_summary() {
    let (r, log) = crash_save("keep");
    assert_eq!(durability_lines(&log, "undone").len(), 3, "{log:?}");
    assert!(
        r.stderr.contains("chaos: 0 faults, 3 undone changes in "),
        "{}",
        r.stderr
    );
    let row = |op: &str, why: &str| {
        r.stderr.lines().any(|l| {
            l.starts_with("  undone ") && l.contains(op) && l.contains(why) && l.ends_with(" 1")
        })
    };
    assert!(
        // The default model is ext4: without any sync, no journal commit made the create or the
        // rename durable.
        row("rename", "no journal commit")
            && row("write", "not fsynced")
            && row("create", "no journal commit"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("chaos: the program was killed by SIGKILL\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_undo_that_fails_is_logged_and_summarised_as_a_failure() {
    let (r, log) = crash_save("break");
    let failed = durability_lines(&log, "undo-failed");
    assert_eq!(failed.len(), 1, "{log:?}");
    assert_eq!(failed[0].op.as_deref(), Some("rename"), "{log:?}");
    let error = failed[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("Not a directory"), "{log:?}");
    assert!(
        durability_lines(&log, "undone")
            .iter()
            .all(|e| e.op.as_deref() != Some("rename")),
        "a failed undo logged as undone: {log:?}"
    );
    assert!(r.stderr.contains(", 1 failed undo"), "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("  undo-failed ") && l.contains("Not a directory")),
        "{}",
        r.stderr
    );
}

#[test]
fn one_fault_in_one_process_reads_in_the_singular() {
    let dir = TempDir::new("account-singular");
    let policy = "[[rules]]\nname = \"one-eio\"\non = \"write\"\nfd = \"pipe\"\ntimes = 1\nfault = \"EIO\"\n";
    // cat is the only process, and its stdout is a pipe: its one write fails.
    let cat = require("cat").expect("cat");
    let input = dir.write("in.txt", "hi\n");
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "o.jsonl",
            &[cat.to_str().unwrap(), input.to_str().unwrap()],
        ),
        30,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains("chaos: 1 fault in 1 process; policy"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("(s)"), "{}", r.stderr);
    assert!(!r.stderr.contains("was killed"), "{}", r.stderr);
}

/// Sleepers crashed, stopped and paused every few hundred milliseconds.
const SLEEPERS: &str = r#"
[[process]]
name = "sleeper"
cmd = ["sh", "-c", "exec sleep 600"]
replicas = 3

[attrition]
max_dead = 1
graceful = 0.3
crash = 0.4
wipe = 0.0
pause = 0.3
interval = "100ms..300ms"
recovery = "50ms..150ms"
grace = "20ms..80ms"
paused = "50ms..200ms"
"#;

#[test]
fn a_systems_kills_pauses_and_restarts_are_counted_by_summary_and_report() {
    let dir = TempDir::new("account-system");
    let policy = dir.write("s.toml", SLEEPERS);
    let log = dir.join("s.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--duration", "2s", "--seed", "5", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let acted = read_events(&log)
        .iter()
        .filter_map(Event::as_process)
        .filter(|e| ["kill", "pause", "oom", "restart"].contains(&e.what.as_str()))
        .count();
    assert!(acted >= 3, "the schedule did too little to test: {acted}");
    assert!(
        r.stderr
            .contains(&format!("chaos: 0 faults, {acted} process events in ")),
        "{}",
        r.stderr
    );
    let rep = run(
        Command::new(&bins().ctl)
            .args(["report", "--json"])
            .arg(&log),
        20,
    );
    let doc: serde_json::Value = serde_json::from_str(&rep.stdout).unwrap();
    assert_eq!(doc["effects"]["process"], acted, "{doc}");
    let rows: u64 = doc["effects"]["by_effect"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["effect"] == "process")
        .map(|x| x["count"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, acted as u64, "{doc}");
}
