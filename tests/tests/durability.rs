//! `[durability]`: a crash loses what no fsync made durable, as a machine losing power would —
//! unsynced writes, creates and renames whose directory was not synced, data whose fsync failed —
//! and a graceful exit keeps everything. Proved on a naive and a careful writer and on SQLite.

use chaos_tests::*;
use std::os::unix::process::ExitStatusExt;

fn python() -> std::path::PathBuf {
    require("python3").expect("python3")
}

/// Writes DIR/config through a temporary file and a rename, then ends: `crash` (SIGKILL itself)
/// or `exit`. `fixed` fsyncs the file before the rename and the directory after it.
const SAVER: &str = r#"
import os, signal, sys
d, mode, end = sys.argv[1:4]
tmp, final = os.path.join(d, "config.tmp"), os.path.join(d, "config")
with open(tmp, "wb") as f:
    f.write(b"new settings\n")
    if mode == "fixed":
        f.flush()
        os.fsync(f.fileno())
os.rename(tmp, final)
if mode == "fixed":
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
print("saved", flush=True)
if end == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
"#;

/// Runs the saver under `[durability]` with `model` over DIR; what DIR holds afterwards, and the
/// log.
fn save(model: &str, mode: &str, end: &str) -> (Vec<String>, Option<String>, Vec<Event>) {
    let dir = TempDir::new(&format!("durable-{model}-{mode}-{end}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let script = dir.write("save.py", SAVER);
    let policy = format!(
        "[durability]\npath = \"{}/*\"\nmodel = \"{model}\"\n",
        data.display()
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "d.jsonl",
            &[
                python().to_str().unwrap(),
                script.to_str().unwrap(),
                data.to_str().unwrap(),
                mode,
                end,
            ],
        ),
        30,
    );
    assert_eq!(r.stdout, "saved\n", "{}", r.describe());
    // chaos-ctl ends as its program did: killed by SIGKILL, or with its status.
    if end == "crash" {
        assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    } else {
        assert_eq!(r.code(), Some(0), "{}", r.describe());
    }
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let content = std::fs::read_to_string(data.join("config")).ok();
    (names, content, read_events(&dir.join("d.jsonl")))
}

fn undone(log: &[Event]) -> Vec<(String, String)> {
    log.iter()
        .filter_map(Event::as_durability)
        .filter(|e| e.what == "undone")
        .map(|e| {
            (
                e.op.clone().expect("an undone change names its op"),
                e.why.clone().expect("an undone change says why"),
            )
        })
        .collect()
}

#[test]
fn a_rename_without_fsyncs_is_lost_in_a_crash_and_kept_with_them() {
    // No sync at all: neither model keeps anything, each for its own reason.
    for (model, entry_why) in [
        ("posix", "directory not fsynced"),
        ("ext4", "no journal commit"),
    ] {
        let (names, _, log) = save(model, "naive", "crash");
        assert!(
            names.is_empty(),
            "{model}: the naive save is gone: {names:?}"
        );
        assert_eq!(
            undone(&log),
            [
                ("rename".into(), entry_why.into()),
                ("write".into(), "not fsynced".into()),
                ("create".into(), entry_why.into()),
            ],
            "{model}"
        );
        let (names, content, log) = save(model, "fixed", "crash");
        assert_eq!(names, ["config"], "{model}");
        assert_eq!(content.as_deref(), Some("new settings\n"), "{model}");
        assert!(undone(&log).is_empty(), "{model}: {log:?}");
    }
}

#[test]
fn a_graceful_exit_keeps_everything() {
    let (names, content, log) = save("ext4", "naive", "exit");
    assert_eq!(names, ["config"]);
    assert_eq!(content.as_deref(), Some("new settings\n"));
    assert!(undone(&log).is_empty());
}

#[test]
fn after_a_failed_fsync_the_data_is_lost_though_a_later_fsync_succeeds() {
    let dir = TempDir::new("durable-fsyncgate");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("wal"), "old\n").unwrap();
    let policy = format!(
        "[durability]\npath = \"{p}/*\"\n\
         [[rules]]\nname = \"fsync-eio\"\non = \"fsync\"\npath = \"{p}/*\"\ntimes = 1\nfault = \"EIO\"\n",
        p = data.display()
    );
    let script = format!(
        "import os, signal\nf = os.open({w:?}, os.O_WRONLY | os.O_APPEND)\nos.write(f, b'lost\\n')\n\
         try:\n    os.fsync(f)\nexcept OSError as e:\n    print('fsync', e.strerror)\n\
         os.fsync(f)\nprint('fsync again ok')\nos.write(f, b'kept\\n')\nos.fsync(f)\n\
         os.kill(os.getpid(), signal.SIGKILL)\n",
        w = data.join("wal").display()
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "f.jsonl",
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(
        r.stdout,
        "fsync Input/output error\nfsync again ok\n",
        "{}",
        r.describe()
    );
    // Linux dropped the dirty pages with the error (kernel-facts F4): the second fsync had
    // nothing left to write, so those bytes never reached the disk (zeros where they were),
    // while the size and what was written and synced after them did.
    let log = read_events(&dir.join("f.jsonl"));
    assert_eq!(undone(&log), [("write".into(), "fsync failed".into())]);
    assert_eq!(
        std::fs::read(data.join("wal")).unwrap(),
        b"old\n\0\0\0\0\0kept\n"
    );
}

/// Crash rounds of the SQLite workload (tests/fixtures/sqlite_crash.py) under `[durability]`, each
/// killed at a seeded write; then its check: `check INTEGRITY SEEN missing N`.
fn sqlite_rounds(journal: &str, sync: &str) -> (String, usize) {
    let dir = TempDir::new(&format!("durable-sqlite-{journal}-{sync}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ledger = dir.join("committed.txt");
    let workload = workspace_root().join("tests/fixtures/sqlite_crash.py");
    let policy = format!(
        "[durability]\npath = \"{p}/*\"\n\
         [[rules]]\nname = \"crash\"\non = [\"pwrite\", \"write\"]\npath = \"{p}/*\"\nfd = \"file\"\n\
         after = 10\nprobability = 0.05\nfault = \"crash\"\n",
        p = data.display()
    );
    let args = |what: &str| {
        vec![
            python().to_str().unwrap().to_string(),
            workload.to_str().unwrap().to_string(),
            data.to_str().unwrap().to_string(),
            ledger.to_str().unwrap().to_string(),
            journal.to_string(),
            sync.to_string(),
            what.to_string(),
        ]
    };
    let mut undone_total = 0;
    for seed in 1..=6 {
        let argv = args("run");
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let log = format!("r{seed}.jsonl");
        let mut cmd = std::process::Command::new(&bins().ctl);
        cmd.args(["run", "--quiet", "--seed", &seed.to_string(), "--log"])
            .arg(dir.join(&log))
            .arg("--policy")
            .arg(dir.write("p.toml", &policy))
            .arg("--")
            .args(&argv);
        // Each round ends in a crash (or, rarely, runs out of work): either way, no hang.
        let r = run(&mut cmd, 60);
        assert!(
            r.code() == Some(0) || r.status.signal() == Some(libc::SIGKILL),
            "round {seed}: {}",
            r.describe()
        );
        undone_total += undone(&read_events(&dir.join(&log))).len();
    }
    let argv = args("check");
    let r = run(std::process::Command::new(&argv[0]).args(&argv[1..]), 60);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    (r.stdout.trim().to_string(), undone_total)
}

#[test]
fn sqlite_keeps_every_committed_transaction_across_crashes_when_it_syncs() {
    let Some(_) = require("python3") else { return };
    for (journal, sync) in [("WAL", "FULL"), ("DELETE", "EXTRA")] {
        let (check, undone) = sqlite_rounds(journal, sync);
        let fields: Vec<&str> = check.split(' ').collect();
        assert_eq!(fields[1], "ok", "{journal}/{sync}: {check}");
        assert!(
            fields[2].parse::<u64>().unwrap() > 0,
            "commits were made: {check}"
        );
        assert_eq!(fields[4], "0", "{journal}/{sync}: {check}");
        assert!(
            undone > 0,
            "{journal}/{sync}: the crashes undid unsynced changes"
        );
    }
}

#[test]
fn sqlite_without_syncs_loses_committed_transactions() {
    let Some(_) = require("python3") else { return };
    let (check, _) = sqlite_rounds("WAL", "OFF");
    let fields: Vec<&str> = check.split(' ').collect();
    assert_eq!(fields[1], "ok", "{check}");
    assert!(fields[4].parse::<u64>().unwrap() > 0, "{check}");
}

#[test]
fn sqlite_survives_attrition_crashes_of_its_process() {
    let dir = TempDir::new("durable-sqlite-attrition");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ledger = dir.join("committed.txt");
    let workload = workspace_root().join("tests/fixtures/sqlite_crash.py");
    let py = python();
    let policy = dir.write(
        "sys.toml",
        &format!(
            "[[process]]\nname = \"db\"\n\
             cmd = [{py:?}, {w:?}, {d:?}, {l:?}, \"WAL\", \"FULL\", \"run\"]\nrestart = \"always\"\n\
             ready = \"log:^check\"\n\
             [attrition]\nmax_dead = 1\ncrash = 1.0\ngraceful = 0.0\nwipe = 0.0\npause = 0.0\n\
             interval = \"300ms..500ms\"\nrecovery = \"50ms..100ms\"\n\
             [durability]\npath = \"{d}/*\"\n",
            py = py.display().to_string(),
            w = workload.display().to_string(),
            d = data.display().to_string(),
            l = ledger.display().to_string(),
        ),
    );
    let log = dir.join("sys.jsonl");
    // Ready once it has opened the database: on a loaded machine a crash timed before that
    // found nothing written, and a run of such crashes undid nothing.
    let r = run(
        std::process::Command::new(&bins().ctl)
            .args(["run", "-q", "--duration", "4s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    let kills = events
        .iter()
        .filter_map(Event::as_process)
        .filter(|e| e.what == "kill")
        .count();
    assert!(kills >= 3, "attrition crashed the process: {kills}");
    assert!(
        !undone(&events).is_empty(),
        "the crashes undid unsynced changes"
    );
    let check = run(
        std::process::Command::new(&py).args([
            workload.to_str().unwrap(),
            data.to_str().unwrap(),
            ledger.to_str().unwrap(),
            "WAL",
            "FULL",
            "check",
        ]),
        60,
    );
    let fields: Vec<&str> = check.stdout.split_whitespace().collect();
    assert_eq!(fields[1], "ok", "{}", check.stdout);
    assert!(fields[2].parse::<u64>().unwrap() > 0, "{}", check.stdout);
    assert_eq!(
        fields[4], "0",
        "every commit it saw survived: {}",
        check.stdout
    );
}

#[test]
fn torn_keeps_a_whole_block_prefix_of_the_last_unsynced_write() {
    let dir = TempDir::new("durable-torn");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Made before the run, so durable: only the write is undone, not the file.
    std::fs::write(data.join("log"), "").unwrap();
    let policy = format!(
        "[durability]\npath = \"{}/*\"\ntorn = \"4096\"\n",
        data.display()
    );
    let script = format!(
        "import os, signal\nf = os.open({p:?}, os.O_WRONLY)\nos.write(f, bytes(range(256)) * 64 + b'tail')\n\
         os.kill(os.getpid(), signal.SIGKILL)\n",
        p = data.join("log").display()
    );
    let mut kept_sizes = std::collections::BTreeSet::new();
    for seed in 1..=8 {
        let log = format!("t{seed}.jsonl");
        std::fs::write(data.join("log"), "").unwrap();
        let r = run(
            std::process::Command::new(&bins().ctl)
                .args(["run", "-q", "--seed", &seed.to_string(), "--policy"])
                .arg(dir.write("p.toml", &policy))
                .arg("--log")
                .arg(dir.join(&log))
                .args(["--", python().to_str().unwrap(), "-c", &script]),
            30,
        );
        assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
        let got = std::fs::read(data.join("log")).unwrap();
        // A prefix of what was written, in whole 4 KB blocks, never all 16,388 bytes.
        assert_eq!(got.len() % 4096, 0, "seed {seed}: {}", got.len());
        assert!(got.len() < 16_388);
        let written: Vec<u8> = (0..=255u8).cycle().take(got.len()).collect();
        assert_eq!(got, written, "seed {seed}");
        kept_sizes.insert(got.len());
    }
    assert!(
        kept_sizes.len() > 1,
        "the prefix is drawn by the seed: {kept_sizes:?}"
    );
}

#[test]
fn an_unlink_whose_directory_was_not_synced_is_undone_by_a_crash() {
    let dir = TempDir::new("durable-unlink");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Made before the run: durable. Its unlink is not, until the directory is synced.
    std::fs::write(data.join("keep"), "precious\n").unwrap();
    std::fs::write(data.join("gone"), "removed for good\n").unwrap();
    let policy = format!("[durability]\npath = \"{}/*\"\n", data.display());
    let script = format!(
        "import os, signal\nd = {d:?}\nos.unlink(os.path.join(d, 'gone'))\n\
         fd = os.open(d, os.O_RDONLY)\nos.fsync(fd)\nos.close(fd)\n\
         os.unlink(os.path.join(d, 'keep'))\nos.kill(os.getpid(), signal.SIGKILL)\n",
        d = data.display()
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "u.jsonl",
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    assert_eq!(
        std::fs::read_to_string(data.join("keep")).unwrap(),
        "precious\n"
    );
    assert!(!data.join("gone").exists(), "a synced unlink stays");
    let log = read_events(&dir.join("u.jsonl"));
    // ext4 (the default): the directory's fsync committed the journal, the unlink after it was
    // never committed.
    assert_eq!(
        undone(&log),
        [("unlink".into(), "no journal commit".into())]
    );
}

/// Crash rounds of Debian's `sqlite3` shell under `[durability]`: each round commits rows
/// 1000·round… (printing `committed|ID` after each COMMIT) until a `crash` fault kills it at a
/// seeded write. Returns the final `PRAGMA integrity_check` and the printed ids missing from the
/// table, and how many rows were claimed.
fn sqlite3_shell_rounds(sync: &str) -> (String, usize, usize) {
    let sqlite3 = require("sqlite3").expect("sqlite3 (Debian's sqlite3 package)");
    let dir = TempDir::new(&format!("durable-sqlite3-{sync}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("t.db");
    let policy = dir.write(
        "p.toml",
        &format!(
            "[durability]\npath = \"{p}/*\"\n\
             [[rules]]\non = [\"pwrite\", \"write\"]\nfd = \"file\"\npath = \"{p}/*\"\n\
             after = 10\nprobability = 0.05\nfault = \"crash\"\n",
            p = data.display()
        ),
    );
    let mut claimed = Vec::new();
    for round in 1..=5u64 {
        let mut sql = format!(
            "PRAGMA journal_mode=WAL;\nPRAGMA synchronous={sync};\n\
             CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v);\n"
        );
        for id in round * 1000..round * 1000 + 300 {
            sql.push_str(&format!(
                "BEGIN; INSERT INTO t VALUES({id}, randomblob(700)); COMMIT; SELECT 'committed', {id};\n"
            ));
        }
        let script = dir.write(&format!("round{round}.sql"), &sql);
        let r = run(
            std::process::Command::new(&bins().ctl)
                .args(["run", "-q", "--seed", &round.to_string(), "--policy"])
                .arg(&policy)
                .arg("--log")
                .arg(dir.join(&format!("r{round}.jsonl")))
                .arg("--")
                .arg(&sqlite3)
                .arg("-batch")
                .arg(&db)
                .arg(format!(".read {}", script.display())),
            60,
        );
        claimed.extend(
            r.stdout
                .lines()
                .filter_map(|l| l.strip_prefix("committed|"))
                .map(|id| id.parse::<u64>().unwrap()),
        );
    }
    let check = run(
        std::process::Command::new(&sqlite3)
            .arg(&db)
            .arg("PRAGMA integrity_check; SELECT id FROM t;"),
        30,
    );
    let mut lines = check.stdout.lines();
    let integrity = lines.next().unwrap_or_default().to_string();
    let present: std::collections::HashSet<u64> = lines.filter_map(|l| l.parse().ok()).collect();
    let missing = claimed.iter().filter(|id| !present.contains(id)).count();
    (integrity, claimed.len(), missing)
}

#[test]
fn the_sqlite3_shell_keeps_every_commit_with_synchronous_full_and_loses_them_with_off() {
    let (integrity, claimed, missing) = sqlite3_shell_rounds("FULL");
    assert_eq!(integrity, "ok");
    assert!(claimed > 0);
    assert_eq!(missing, 0, "of {claimed} commits");
    let (integrity, claimed, missing) = sqlite3_shell_rounds("OFF");
    assert_eq!(integrity, "ok");
    assert!(missing > 0, "of {claimed} commits");
}
