//! Files under the seccomp backend: a program's file calls get the faults its dynamic build gets
//! under the preload shim, at the same keys, with the same errnos and the same results, and a
//! policy with no rule on files hands no file call to the supervisor.

use chaos_tests::*;
use std::collections::BTreeMap;
use std::path::Path;

/// A rule on each file op family, each drawn with a probability so that which calls it hits
/// depends on the keys alone: relative and `*at` paths (matched as absolute), byte offsets of
/// reads and writes, counts of syncs and truncations, and a short read we make ourselves.
const POLICY: &str = r#"
seed = 29

[[rules]]
name = "mkdir-full"
on = "mkdir"
fd = "file"
probability = 0.4
fault = "EDQUOT"

[[rules]]
name = "wal-open"
on = "opens"
fd = "file"
path = "*/wal-*"
probability = 0.3
fault = "EACCES"

[[rules]]
name = "wal-write"
on = "writes"
fd = "file"
path = "*/wal-*"
probability = 0.2
fault = "ENOSPC"

[[rules]]
name = "sync-eio"
on = "syncs"
fd = "file"
probability = 0.5
fault = "EIO"

[[rules]]
name = "truncate-eio"
on = "ftruncate"
fd = "file"
probability = 0.5
fault = "EIO"

[[rules]]
name = "slow-pread"
on = "pread"
fd = "file"
path = "*/wal-*"
probability = 0.5
fault = { delay = "1ms" }

[[rules]]
name = "short-data"
on = "reads"
fd = "file"
path = "*/data"
probability = 0.5
fault = { short = "1..50%" }

[[rules]]
name = "entries"
on = ["rename", "unlink"]
fd = "file"
probability = 0.3
fault = "EIO"
"#;

/// Enough rounds that every rule fires in every run (the keys, and so the draws, change with
/// the temporary directory's name): the rarest, `entries`, misses all ~30 of its calls with a
/// chance of 0.7^30.
const ROUNDS: &str = "16";

/// Runs `exe` in `work` (emptied first) under `backend`; its stdout and its log's faults.
fn run_sequence(
    dir: &TempDir,
    backend: &str,
    policy: &Path,
    exe: &Path,
    debug: bool,
) -> (Finished, Vec<Fault>) {
    let work = dir.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let log = dir.join(&format!("{backend}.jsonl"));
    let _ = std::fs::remove_file(&log);
    let mut cmd = ctl_run_on(backend, policy, &log, exe);
    cmd.arg(&work).arg(ROUNDS);
    if debug {
        cmd.env("CHAOS_DEBUG", "1");
    } else {
        cmd.env_remove("CHAOS_DEBUG");
    }
    let r = run(&mut cmd, 60);
    assert_eq!(r.code(), Some(0), "{backend}: {}", r.describe());
    let faults = fault_events(&read_events(&log))
        .into_iter()
        .cloned()
        .collect();
    (r, faults)
}

/// What a fault line says about the call and its fault, the backend aside. The op is the
/// system call's: glibc's open() is openat, which the shim names after the function called.
fn described(f: &Fault) -> String {
    let op = match f.op.as_str() {
        "open" => "openat",
        op => op,
    };
    format!(
        "{} {} {op} fd={} kind={:?} conn={:?} path={:?} errno={:?} requested={:?} returned={:?}",
        f.key.as_deref().expect("a fault has its key"),
        f.rule,
        f.fd,
        f.kind,
        f.conn,
        f.path,
        f.errno,
        f.requested,
        f.returned
    )
}

#[test]
fn a_static_build_gets_its_dynamic_builds_file_faults_at_the_same_keys() {
    let dir = TempDir::new("seccomp-files");
    let policy = dir.write("policy.toml", POLICY);
    // The same path for both builds: the process key hashes the executable's path and argv.
    let exe = dir.join("file_sequence");
    assert_eq!(compile_c("file_sequence", dir.path(), &[]), exe);
    let (pre_run, preload) = run_sequence(&dir, "preload", &policy, &exe, false);
    assert_eq!(compile_c("file_sequence", dir.path(), &["-static"]), exe);
    let (sec_run, seccomp) = run_sequence(&dir, "seccomp", &policy, &exe, false);

    for f in &seccomp {
        assert_eq!(f.backend.as_deref(), Some("seccomp"), "{f:?}");
    }
    // Every rule fired somewhere, and none everywhere: the keys chose.
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    for f in &preload {
        *fired.entry(f.rule.clone()).or_default() += 1;
    }
    assert_eq!(fired.len(), 8, "every rule fired under the shim: {fired:?}");
    let lines: Vec<&str> = pre_run.stdout.lines().collect();
    let failed = lines.iter().filter(|l| l.ends_with("EIO")).count();
    assert!(failed > 0 && failed < lines.len(), "{}", pre_run.stdout);

    // Paths named relative to the working directory or a directory fd are matched absolute.
    let work = dir.join("work");
    for f in preload.iter().chain(&seccomp) {
        if let Some(p) = &f.path {
            assert!(Path::new(p).starts_with(&work), "{f:?}");
        }
    }
    let pre: Vec<String> = preload.iter().map(described).collect();
    let sec: Vec<String> = seccomp.iter().map(described).collect();
    assert_eq!(
        pre, sec,
        "the same file faults at the same keys under both backends"
    );
    assert_eq!(
        pre_run.stdout, sec_run.stdout,
        "and the program saw the same results, short reads included"
    );
}

const FILE_CALLS: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "syncfs",
    "ftruncate",
    "fallocate",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
];

/// Each notified call is a round trip to chaos-ctl: a policy acting on sockets only hands over
/// none of a program's file calls, and one acting on files hands them over.
#[test]
fn a_sockets_only_policy_hands_over_no_file_call() {
    let dir = TempDir::new("seccomp-files-filter");
    let sockets = dir.write(
        "sockets.toml",
        "[[rules]]\nname = \"tcp-reads\"\non = \"reads\"\nfd = \"tcp\"\n\
         fault = { delay = \"1ms\" }\n",
    );
    let files = dir.write("files.toml", POLICY);
    let exe = compile_c("file_sequence", dir.path(), &["-static"]);

    let (r, faults) = run_sequence(&dir, "seccomp", &sockets, &exe, true);
    let seen = notifications(&r.stderr);
    for call in FILE_CALLS {
        assert_eq!(seen.get(*call), Some(&0), "{call}: {seen:?}");
    }
    assert!(faults.is_empty(), "{faults:?}");

    let (r, faults) = run_sequence(&dir, "seccomp", &files, &exe, true);
    let seen = notifications(&r.stderr);
    for call in ["openat", "mkdir", "fsync", "pread64", "rename", "unlink"] {
        assert!(seen[call] > 0, "{call}: {seen:?}");
    }
    assert!(!faults.is_empty());
}

/// `[[disk]]` under seccomp: a static build fills and frees a disk exactly as its dynamic build
/// does under the shim: the write that crosses the capacity is cut, the next ones fail ENOSPC,
/// and an unlink, an ftruncate, a rename and a truncating open give the space back.
#[test]
fn a_static_build_fills_and_frees_a_disk_as_its_dynamic_build_does() {
    let dir = TempDir::new("seccomp-disk");
    let work = dir.join("work");
    let policy = dir.write(
        "disk.toml",
        &format!(
            "[[disk]]\nname = \"data\"\npath = \"{}/*\"\ncapacity = \"64KB\"\n",
            work.display()
        ),
    );
    let exe = dir.join("disk_fill");
    let run_with = |backend: &str| {
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        // Five of the disk's sixteen 4 KB blocks in use before the program starts.
        std::fs::write(work.join("old.bin"), vec![0u8; 20_000]).unwrap();
        let log = dir.join(&format!("{backend}.jsonl"));
        let r = run(ctl_run_on(backend, &policy, &log, &exe).arg(&work), 60);
        assert_eq!(r.code(), Some(0), "{backend}: {}", r.describe());
        let disk: Vec<String> = read_events(&log)
            .iter()
            .filter_map(Event::as_disk)
            .map(|e| {
                format!(
                    "{:?} {} {} fd={} {:?} requested={:?} returned={:?} {:?}",
                    e.disk, e.what, e.op, e.fd, e.path, e.requested, e.returned, e.errno
                )
            })
            .collect();
        (r.stdout, disk)
    };
    assert_eq!(compile_c("disk_fill", dir.path(), &[]), exe);
    let (pre_out, pre_disk) = run_with("preload");
    assert_eq!(compile_c("disk_fill", dir.path(), &["-static"]), exe);
    let (sec_out, sec_disk) = run_with("seccomp");

    // What the shim does (tests/tests/disk.rs): eleven blocks free, four whole writes and one
    // cut where they end; each freeing call lets the next write or allocation through.
    let results: Vec<&str> = pre_out
        .lines()
        .map(|l| l.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "10000", "10000", "10000", "10000", "5056", "ENOSPC", "ENOSPC", "ok", "10000",
            "ENOSPC", "ok", "ok", "32768", "ENOSPC", "ok", "ok", "30000", "10000", "10000"
        ],
        "{pre_out}"
    );
    assert_eq!(pre_disk.len(), 6, "{pre_disk:#?}");
    assert_eq!(pre_out, sec_out, "the same results under both backends");
    assert_eq!(
        pre_disk, sec_disk,
        "the same disk lines under both backends"
    );
}

/// An fsync error a rule gives reaches every other open file description of the file once,
/// as Linux reports writeback errors (errseq_t), under seccomp as under the shim: a dup'ed fd
/// shares the failing description, and a description opened after the error does not get it.
#[test]
fn an_fsync_error_reaches_every_description_once_under_both_backends() {
    let dir = TempDir::new("seccomp-errseq");
    let data = dir.join("wal");
    let policy = dir.write(
        "errseq.toml",
        &format!(
            "[[rules]]\non = \"fsync\"\npath = \"{}\"\ntimes = 1\nfault = \"EIO\"\n",
            data.display()
        ),
    );
    let exe = dir.join("errseq");
    let run_with = |backend: &str| {
        let _ = std::fs::remove_file(&data);
        let log = dir.join(&format!("{backend}.jsonl"));
        let r = run(ctl_run_on(backend, &policy, &log, &exe).arg(&data), 60);
        assert_eq!(r.code(), Some(0), "{backend}: {}", r.describe());
        let reported: Vec<String> = read_events(&log)
            .iter()
            .filter_map(Event::as_writeback)
            .map(|e| format!("{} {} {} {:?}", e.what, e.op, e.fd, e.errno))
            .collect();
        (r.stdout, reported)
    };
    assert_eq!(compile_c("errseq", dir.path(), &[]), exe);
    let preload = run_with("preload");
    assert_eq!(compile_c("errseq", dir.path(), &["-static"]), exe);
    let seccomp = run_with("seccomp");
    assert_eq!(preload.0, "a EIO\na ok\na2 ok\nb EIO\nb ok\nc ok\n");
    assert_eq!(preload.1.len(), 1, "{:?}", preload.1);
    assert_eq!(preload, seccomp);
}
