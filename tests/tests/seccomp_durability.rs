//! `[durability]` under the seccomp backend: a static program's crash loses what its dynamic
//! build's crash loses under the shim, because the supervisor writes the journal the shim writes
//! and the same undo reads it: unsynced appends, an overwrite and a truncation are undone while
//! the synced records stay, a write that failed is not undone, an unsynced rename over a file
//! and an unsynced unlink are undone, and a directory's fsync or a sync(2) keeps the unlink;
//! O_DIRECT writes are not journaled, and the first is logged as `unseen`.

use chaos_tests::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

/// What a run left: the data directory's names and contents, the `durability` lines' `undone`
/// changes (op and why), and the program's stdout.
#[derive(Debug, PartialEq, Eq)]
struct After {
    files: Vec<(String, String)>,
    undone: Vec<(String, String)>,
    /// The `unseen` lines: the file's name and why its writes were not journaled.
    unseen: Vec<(String, String)>,
    stdout: String,
}

/// Runs `exe MODE` over a fresh data directory (`seed`: files it holds first) under `backend`.
fn crash(
    dir: &TempDir,
    backend: &str,
    exe: &Path,
    mode: &str,
    seed: &[(&str, &str)],
    extra: &str,
) -> (After, Vec<Event>) {
    let data = dir.join(&format!("data-{backend}-{mode}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    for (name, text) in seed {
        std::fs::write(data.join(name), text).unwrap();
    }
    // A crash rule on the log's sixth append; the other modes kill themselves.
    let policy = dir.write(
        &format!("{backend}-{mode}.toml"),
        &format!(
            "[durability]\npath = \"{d}/*\"\n\n[[rules]]\nname = \"crash\"\non = \"write\"\n\
             fd = \"file\"\npath = \"{d}/log\"\nafter = 6\nfault = \"crash\"\n{extra}",
            d = data.display()
        ),
    );
    let log = dir.join(&format!("{backend}-{mode}.jsonl"));
    let r = run(
        ctl_run_on(backend, &policy, &log, exe).arg(&data).arg(mode),
        60,
    );
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGKILL),
        "{backend} {mode}: {}",
        r.describe()
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    let events = read_events(&log);
    let undone = events
        .iter()
        .filter_map(Event::as_durability)
        .filter(|e| e.what == "undone")
        .map(|e| (e.op.clone().unwrap(), e.why.clone().unwrap()))
        .collect();
    let unseen = events
        .iter()
        .filter_map(Event::as_durability)
        .filter(|e| e.what == "unseen")
        .map(|e| {
            let path = e.path.clone().unwrap();
            let name = Path::new(&path).file_name().unwrap().to_string_lossy();
            (name.into_owned(), e.why.clone().unwrap())
        })
        .collect();
    (
        After {
            files,
            undone,
            unseen,
            stdout: r.stdout,
        },
        events,
    )
}

/// The fixture built dynamic (for the shim) and static (for seccomp), in directories of their own.
fn builds(dir: &TempDir) -> (PathBuf, PathBuf) {
    let dynamic = dir.join("dynamic");
    let fixed = dir.join("static");
    std::fs::create_dir_all(&dynamic).unwrap();
    std::fs::create_dir_all(&fixed).unwrap();
    (
        compile_c("durable_crash", &dynamic, &[]),
        compile_c("durable_crash", &fixed, &["-static"]),
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Both backends over one mode: the same crash state and the same `undone` lines, which are
/// `undone`; the state is `files`.
fn both(mode: &str, seed: &[(&str, &str)], files: &[(&str, &str)], undone: &[(&str, &str)]) {
    both_unseen(mode, seed, files, undone, &[]);
}

/// `both`, with the `unseen` lines expected.
fn both_unseen(
    mode: &str,
    seed: &[(&str, &str)],
    files: &[(&str, &str)],
    undone: &[(&str, &str)],
    unseen: &[(&str, &str)],
) {
    let dir = TempDir::new(&format!("seccomp-durable-{mode}"));
    let (dynamic, fixed) = builds(&dir);
    let (shim, _) = crash(&dir, "preload", &dynamic, mode, seed, "");
    let (seccomp, events) = crash(&dir, "seccomp", &fixed, mode, seed, "");
    let expected = After {
        files: pairs(files),
        undone: pairs(undone),
        unseen: pairs(unseen),
        stdout: format!("done {mode}\n"),
    };
    assert_eq!(shim, expected, "{mode} under the shim");
    assert_eq!(seccomp, expected, "{mode} under seccomp");
    let faults = fault_events(&events);
    assert!(
        faults
            .iter()
            .all(|f| f.backend.as_deref() == Some("seccomp")),
        "{faults:?}"
    );
}

#[test]
fn a_crash_keeps_the_synced_records_of_a_static_program_as_of_its_dynamic_build() {
    // Newest first: the cut (metadata no sync committed), the overwrite and the two unsynced
    // appends. The write that failed is not there; the create was committed by the fsync.
    both(
        "log",
        &[],
        &[("log", "rec-1\nrec-2\nrec-3\n")],
        &[
            ("truncate", "no journal commit"),
            ("write", "not fsynced"),
            ("write", "not fsynced"),
            ("write", "not fsynced"),
        ],
    );
}

#[test]
fn an_unsynced_rename_over_a_file_is_undone_under_seccomp_as_under_the_shim() {
    both(
        "replace",
        &[("config", "old settings\n")],
        &[("config", "old settings\n")],
        &[
            ("rename", "no journal commit"),
            ("write", "not fsynced"),
            ("create", "no journal commit"),
        ],
    );
}

#[test]
fn an_unlink_is_undone_unless_it_was_synced_under_both_backends() {
    both(
        "unlink",
        &[("victim", "precious\n")],
        &[("victim", "precious\n")],
        &[("unlink", "no journal commit")],
    );
    both("unlink-synced", &[("victim", "precious\n")], &[], &[]);
    both("unlink-sync", &[("victim", "precious\n")], &[], &[]);
}

#[test]
fn o_direct_writes_are_not_journaled_and_said_so_once_under_both_backends() {
    let written = "d".repeat(8192);
    both_unseen(
        "direct",
        &[],
        &[("direct", &written)],
        &[],
        &[("direct", "O_DIRECT")],
    );
}

/// On a `[[disk]]` the supervisor makes a write itself (to count what it allocated): an
/// O_DIRECT one from a buffer placed as the program's was, which O_DIRECT checks.
#[test]
fn an_o_direct_write_on_a_disk_is_made_from_an_aligned_buffer_under_seccomp() {
    let dir = TempDir::new("seccomp-durable-direct-disk");
    let (_, fixed) = builds(&dir);
    let disk = format!(
        "\n[[disk]]\nname = \"d\"\npath = \"{}/*\"\ncapacity = \"1MB\"\n",
        dir.join("data-seccomp-direct").display()
    );
    let (after, _) = crash(&dir, "seccomp", &fixed, "direct", &[], &disk);
    assert_eq!(after.stdout, "done direct\n", "{after:?}");
    assert_eq!(after.files, pairs(&[("direct", &"d".repeat(8192))]));
}
