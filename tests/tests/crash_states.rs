//! `[durability]`'s filesystem models: a crash keeps what the named filesystem would keep.
//! `ext4` (the default) commits every earlier metadata change on any sync and flushes a file
//! renamed over another; `posix` keeps only what POSIX promises (docs/kernel-facts.md F14-F17).

use chaos_tests::*;
use std::os::unix::process::ExitStatusExt;

fn python() -> std::path::PathBuf {
    require("python3").expect("python3")
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

/// The append-log policy: `[durability]` under `model` over DATA and a `crash` fault at the 25th
/// record.
fn append_log_policy(data: &std::path::Path, model: &str) -> String {
    format!(
        "[durability]\npath = \"{p}/*\"\nmodel = \"{model}\"\n\
         [[rules]]\nname = \"crash\"\non = \"write\"\nfd = \"file\"\npath = \"{p}/*\"\n\
         after = 24\ntimes = 1\nfault = \"crash\"\n",
        p = data.display()
    )
}

/// Runs the append-log program (compiled into DIR) on DATA/log under `policy`; what the file
/// holds afterwards (None: it is gone), and the run's log.
fn append_log_under(dir: &TempDir, policy: &str, log: &str) -> (Option<String>, Vec<Event>) {
    let program = dir.join("append_log");
    if !program.exists() {
        compile_c("append_log", dir.path(), &[]);
    }
    let file = dir.join("data").join("log");
    let r = run(
        &mut ctl_run(
            dir,
            Some(policy),
            log,
            &[program.to_str().unwrap(), file.to_str().unwrap()],
        ),
        30,
    );
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    (
        std::fs::read_to_string(&file).ok(),
        read_events(&dir.join(log)),
    )
}

/// The append log under `model` in a fresh directory.
fn append_log(model: &str) -> (Option<String>, Vec<Event>) {
    let dir = TempDir::new(&format!("crash-append-{model}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    append_log_under(&dir, &append_log_policy(&data, model), "a.jsonl")
}

#[test]
fn ext4_keeps_exactly_the_synced_records_of_a_new_log_and_posix_loses_the_file() {
    let (content, log) = append_log("ext4");
    let content = content.expect("the log file survives on ext4: its fsync committed its create");
    let records: Vec<&str> = content.lines().collect();
    assert_eq!(records.len(), 20, "{content}");
    for (i, r) in records.iter().enumerate() {
        assert!(r.starts_with(&format!("record {:02}", i + 1)), "{r}");
    }
    // Records 21-24 were written and never synced: cut back to the last durable size. The 25th,
    // stopped by the crash, was never written: nothing of it to undo.
    assert_eq!(
        undone(&log),
        vec![("write".into(), "not fsynced".into()); 4]
    );

    let (content, log) = append_log("posix");
    assert_eq!(content, None, "posix: the directory was never fsynced");
    assert_eq!(
        undone(&log).last(),
        Some(&("create".to_string(), "directory not fsynced".to_string()))
    );
}

/// Replaces DATA/config (holding "old") by writing DATA/config.tmp and renaming it over, with no
/// fsync of either; `commit`: then fsyncs an unrelated file of the same filesystem, which commits
/// the journal. Then crashes. What DATA/config holds afterwards.
fn rename_into_place(model: &str, commit: bool) -> Option<String> {
    let dir = TempDir::new(&format!("crash-rename-{model}-{commit}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("config"), "old\n").unwrap();
    std::fs::write(data.join("other"), "x\n").unwrap();
    let script = format!(
        "import os, signal\nd = {d:?}\n\
         with open(os.path.join(d, 'config.tmp'), 'w') as f:\n    f.write('new\\n')\n\
         os.rename(os.path.join(d, 'config.tmp'), os.path.join(d, 'config'))\n\
         if {commit}:\n    fd = os.open(os.path.join(d, 'other'), os.O_WRONLY)\n    os.fsync(fd)\n\
         os.kill(os.getpid(), signal.SIGKILL)\n",
        d = data.display(),
        commit = if commit { "True" } else { "False" },
    );
    let policy = format!(
        "[durability]\npath = \"{}/*\"\nmodel = \"{model}\"\n",
        data.display()
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "r.jsonl",
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    assert!(!data.join("config.tmp").exists(), "{model} {commit}");
    std::fs::read_to_string(data.join("config")).ok()
}

#[test]
fn ext4_rename_into_place_without_fsync_keeps_the_old_or_the_new_content_never_empty() {
    // Before any commit the rename is undone; after one, auto_da_alloc flushed the data with it.
    assert_eq!(rename_into_place("ext4", false).as_deref(), Some("old\n"));
    assert_eq!(rename_into_place("ext4", true).as_deref(), Some("new\n"));
    // POSIX promises nothing for the rename without its directory's fsync.
    assert_eq!(rename_into_place("posix", true).as_deref(), Some("old\n"));
}

#[test]
fn a_grandchilds_crash_is_undone_before_its_parent_reads_the_file() {
    let dir = TempDir::new("crash-grandchild");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("state");
    std::fs::write(&file, "durable\n").unwrap();
    let app = format!(
        "import os, signal\nfd = os.open({f:?}, os.O_WRONLY | os.O_APPEND)\n\
         os.write(fd, b'unsynced\\n')\nos.kill(os.getpid(), signal.SIGKILL)\n",
        f = file.display()
    );
    let app = dir.write("app.py", &app);
    // The shell reaps the crashed python itself, then reads the file: chaos-ctl only ever sees
    // the shell exit 0.
    let shell = format!(
        "{} {}; echo \"after: $(cat {})\"",
        python().display(),
        app.display(),
        file.display()
    );
    let policy = format!("[durability]\npath = \"{}/*\"\n", data.display());
    let r = run(
        &mut ctl_run(&dir, Some(&policy), "g.jsonl", &["sh", "-c", &shell]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout, "after: durable\n", "{}", r.describe());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "durable\n");
    let log = read_events(&dir.join("g.jsonl"));
    assert_eq!(undone(&log), [("write".into(), "not fsynced".into())]);
}

/// Rewrites DATA/config (holding "old") in place: truncated to zero by its open, written,
/// closed, no fsync of it; `commit`: then fsyncs an unrelated file. Then crashes.
fn rewrite_in_place(commit: bool) -> String {
    let dir = TempDir::new(&format!("crash-rewrite-{commit}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("config"), "old\n").unwrap();
    std::fs::write(data.join("other"), "x\n").unwrap();
    let script = format!(
        "import os, signal\nd = {d:?}\n\
         with open(os.path.join(d, 'config'), 'w') as f:\n    f.write('new\\n')\n\
         if {commit}:\n    fd = os.open(os.path.join(d, 'other'), os.O_WRONLY)\n    os.fsync(fd)\n\
         os.kill(os.getpid(), signal.SIGKILL)\n",
        d = data.display(),
        commit = if commit { "True" } else { "False" },
    );
    let policy = format!("[durability]\npath = \"{}/*\"\n", data.display());
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "t.jsonl",
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    std::fs::read_to_string(data.join("config")).unwrap()
}

#[test]
fn ext4_truncate_to_zero_and_rewrite_keeps_the_old_or_the_new_content_never_empty() {
    // Before a commit the truncation is undone; after one, the close had flushed the new data.
    assert_eq!(rewrite_in_place(false), "old\n");
    assert_eq!(rewrite_in_place(true), "new\n");
}

/// Runs a python script under `[durability]` over DATA (holding `wal` = "0123456789\n"), which
/// ends by killing itself; what `wal` holds afterwards and the run's log.
fn crash_after(name: &str, script: &str) -> (String, Vec<Event>) {
    let dir = TempDir::new(&format!("crash-{name}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let wal = data.join("wal");
    std::fs::write(&wal, "0123456789\n").unwrap();
    let script = format!(
        "import os, signal\nw = {w:?}\n{script}\nos.kill(os.getpid(), signal.SIGKILL)\n",
        w = wal.display()
    );
    let policy = format!("[durability]\npath = \"{}/*\"\n", data.display());
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "w.jsonl",
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    let log = read_events(&dir.join("w.jsonl"));
    // Only a failed undo has an `error`.
    let errors: Vec<_> = log
        .iter()
        .filter_map(Event::as_durability)
        .filter(|e| e.error.is_some())
        .collect();
    assert!(errors.is_empty(), "no undo may fail: {errors:?}");
    (std::fs::read_to_string(&wal).unwrap(), log)
}

#[test]
fn overwrites_and_ftruncate_of_a_write_only_file_are_undone() {
    let (content, log) = crash_after(
        "wronly",
        "fd = os.open(w, os.O_WRONLY)\nos.pwrite(fd, b'XXXX', 2)\nos.ftruncate(fd, 4)",
    );
    assert_eq!(content, "0123456789\n");
    assert_eq!(
        undone(&log),
        [
            ("truncate".into(), "no journal commit".into()),
            ("write".into(), "not fsynced".into())
        ]
    );
}

#[test]
fn truncate_by_path_is_undone() {
    let (content, log) = crash_after("truncate-path", "os.truncate(w, 3)");
    assert_eq!(content, "0123456789\n");
    assert_eq!(
        undone(&log),
        [("truncate".into(), "no journal commit".into())]
    );
}

#[test]
fn freeze_keeps_the_durability_model_so_a_replay_crashes_the_same_way() {
    let dir = TempDir::new("crash-freeze");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (content, _) = append_log_under(&dir, &append_log_policy(&data, "posix"), "o.jsonl");
    assert_eq!(content, None);
    let frozen = run(
        std::process::Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("o.jsonl")),
        30,
    );
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert!(frozen.stdout.contains("[durability]"), "{}", frozen.stdout);
    // The replay crashes at the same record and, under the same model, loses the file again
    // (without `[durability]` it would keep all 24 records; under ext4, 20).
    let (content, log) = append_log_under(&dir, &frozen.stdout, "replay.jsonl");
    assert_eq!(content, None, "{}", frozen.stdout);
    assert_eq!(
        undone(&log).last(),
        Some(&("create".to_string(), "directory not fsynced".to_string()))
    );
}

/// A parent and its forked child each append unsynced to their own file (DATA/a, DATA/b, reset to
/// "durable" first); then the child writes DATA/trigger, where a rule fires `fault`; the parent
/// waits for the child and ends normally. Runs under `policy` (None: that rule) in DIR; what a
/// and b hold afterwards, and whether chaos-ctl ended by SIGKILL.
fn two_processes_in(
    dir: &TempDir,
    fault: &str,
    policy: Option<&str>,
    log: &str,
) -> (String, String, bool) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["a", "b", "trigger"] {
        std::fs::write(data.join(f), "durable\n").unwrap();
    }
    let script = format!(
        "import os\nd = {d:?}\n\
         def append(name, text):\n    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_APPEND)\n\
         \x20   os.write(fd, text)\n\
         append('a', b'parent unsynced\\n')\n\
         pid = os.fork()\n\
         if pid == 0:\n    append('b', b'child unsynced\\n')\n    append('trigger', b'x')\n    os._exit(0)\n\
         os.waitpid(pid, 0)\n",
        d = data.display()
    );
    let rule = format!(
        "[durability]\npath = \"{p}/*\"\n\
         [[rules]]\nname = \"machine\"\non = \"write\"\nfd = \"file\"\npath = \"{p}/trigger\"\n\
         fault = \"{fault}\"\n",
        p = data.display()
    );
    let r = run(
        &mut ctl_run(
            dir,
            Some(policy.unwrap_or(&rule)),
            log,
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    let killed = r.status.signal() == Some(libc::SIGKILL);
    assert!(killed || r.code() == Some(0), "{}", r.describe());
    (
        std::fs::read_to_string(data.join("a")).unwrap(),
        std::fs::read_to_string(data.join("b")).unwrap(),
        killed,
    )
}

fn two_processes(fault: &str) -> (String, String, bool) {
    let dir = TempDir::new(&format!("crash-machine-{fault}"));
    two_processes_in(&dir, fault, None, "m.jsonl")
}

#[test]
fn a_power_loss_kills_every_process_of_the_machine_and_undoes_them_together() {
    let (a, b, killed) = two_processes("power-loss");
    assert!(killed, "the whole program died");
    assert_eq!((a.as_str(), b.as_str()), ("durable\n", "durable\n"));
    // A crash of the child alone: its own changes are undone, the parent lives on and keeps its
    // page cache (its write is on disk when it ends normally).
    let (a, b, killed) = two_processes("crash");
    assert!(!killed);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("durable\nparent unsynced\n", "durable\n")
    );
}

#[test]
fn a_power_loss_freezes_and_replays_like_any_fault() {
    let dir = TempDir::new("crash-machine-freeze");
    let (_, _, killed) = two_processes_in(&dir, "power-loss", None, "o.jsonl");
    assert!(killed);
    let frozen = run(
        std::process::Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("o.jsonl")),
        30,
    );
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert!(
        frozen.stdout.contains("fault = \"power-loss\""),
        "{}",
        frozen.stdout
    );
    let (a, b, killed) = two_processes_in(&dir, "", Some(&frozen.stdout), "replay.jsonl");
    assert!(killed, "{}", frozen.stdout);
    assert_eq!((a.as_str(), b.as_str()), ("durable\n", "durable\n"));
}

#[test]
fn sync_makes_everything_durable() {
    let dir = TempDir::new("crash-sync");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("new");
    let script = format!(
        "import os, signal\nfd = os.open({f:?}, os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.write(fd, b'kept\\n')\nos.sync()\nos.kill(os.getpid(), signal.SIGKILL)\n",
        f = file.display()
    );
    let policy = format!("[durability]\npath = \"{}/*\"\n", data.display());
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "s.jsonl",
            &[python().to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    assert_eq!(
        std::fs::read_to_string(&file).ok().as_deref(),
        Some("kept\n")
    );
    assert!(undone(&read_events(&dir.join("s.jsonl"))).is_empty());
}

#[test]
fn with_crash_process_a_sigkill_keeps_the_page_cache_and_only_a_power_loss_undoes() {
    // The append log, killed by a `crash` fault at its 25th record: the process died, the
    // machine did not, so all 24 records written are still there and nothing is undone.
    let dir = TempDir::new("crash-process-append");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let policy = append_log_policy(&data, "ext4").replace(
        "model = \"ext4\"\n",
        "model = \"ext4\"\ncrash = \"process\"\n",
    );
    let (content, log) = append_log_under(&dir, &policy, "p.jsonl");
    let content = content.expect("the file is there");
    assert_eq!(content.lines().count(), 24, "{content}");
    assert_eq!(undone(&log), vec![]);

    // Two processes: a crash of the child keeps its write; a power loss undoes both.
    let with = |fault: &str| {
        let dir = TempDir::new(&format!("crash-process-{fault}"));
        let p = dir.join("data").display().to_string();
        let policy = format!(
            "[durability]\npath = \"{p}/*\"\ncrash = \"process\"\n\
             [[rules]]\nname = \"machine\"\non = \"write\"\nfd = \"file\"\npath = \"{p}/trigger\"\n\
             fault = \"{fault}\"\n"
        );
        two_processes_in(&dir, fault, Some(&policy), "t.jsonl")
    };
    let (a, b, killed) = with("crash");
    assert!(!killed);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("durable\nparent unsynced\n", "durable\nchild unsynced\n")
    );
    let (a, b, killed) = with("power-loss");
    assert!(killed, "the whole program died");
    assert_eq!((a.as_str(), b.as_str()), ("durable\n", "durable\n"));
}
