//! `[[disk]]`: a disk that fills, as a state shared by every process of a run: the write that
//! crosses the capacity is short, the next ones fail ENOSPC, freeing space lets writes succeed
//! again, and `chaos-ctl control disk NAME fill|free` changes it while the run lives.

use chaos_tests::*;

/// A policy with one 64 KB disk over `dir`'s files.
fn disk_policy(dir: &std::path::Path) -> String {
    format!(
        "[[disk]]\nname = \"data\"\npath = \"{}/*\"\ncapacity = \"64KB\"\n",
        dir.display()
    )
}

/// Appends `count` chunks of `size` bytes to DIR/NAME, printing what each write returned; then
/// unlinks DIR/old.bin if asked and writes once more.
const APPENDER: &str = r#"
import os, sys
d, name, size, count, then = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
f = open(os.path.join(d, name), "ab", buffering=0)
for i in range(count):
    try:
        print(f.write(b"x" * size))
    except OSError as e:
        print(os.strerror(e.errno))
if then == "unlink":
    os.unlink(os.path.join(d, "old.bin"))
    print("after unlink", f.write(b"x" * size))
"#;

fn python() -> std::path::PathBuf {
    require("python3").expect("python3")
}

#[test]
fn a_full_disk_cuts_one_write_short_then_refuses_until_space_is_freed() {
    let dir = TempDir::new("disk-full");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // 20,000 bytes already there: five 4 KB blocks of the 16 the disk has.
    std::fs::write(data.join("old.bin"), vec![0u8; 20_000]).unwrap();
    let script = dir.write("append.py", APPENDER);
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&disk_policy(&data)),
            "d.jsonl",
            &[
                python().to_str().unwrap(),
                script.to_str().unwrap(),
                data.to_str().unwrap(),
                "app.log",
                "10000",
                "7",
                "unlink",
            ],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // 11 blocks free: four whole writes (40,000 bytes in 10 blocks), then one cut where the last
    // free block ends (45,056 = 11 blocks), then ENOSPC; the unlink frees 5 blocks.
    assert_eq!(
        r.stdout,
        "10000\n10000\n10000\n10000\n5056\nNo space left on device\nNo space left on device\n\
         after unlink 10000\n"
    );
    assert_eq!(
        std::fs::metadata(data.join("app.log")).unwrap().len(),
        55_056
    );
    let log = read_events(&dir.join("d.jsonl"));
    let disk: Vec<_> = log.iter().filter_map(Event::as_disk).collect();
    assert_eq!(disk.len(), 3, "{disk:?}");
    assert_eq!(disk[0].what, "short");
    assert_eq!(disk[0].returned, Some(5056));
    assert_eq!(disk[1].what, "full");
    assert_eq!(disk[1].errno.as_deref(), Some("ENOSPC"));
    assert_eq!(disk[1].disk.as_deref(), Some("data"));
}

#[test]
fn two_processes_share_one_capacity() {
    let dir = TempDir::new("disk-shared");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let script = dir.write("append.py", APPENDER);
    let py = python();
    let one = |name: &str| {
        format!(
            "{} {} {} {name} 40000 1 stay",
            py.display(),
            script.display(),
            data.display()
        )
    };
    let both = format!("{} && {}", one("a.log"), one("b.log"));
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&disk_policy(&data)),
            "s.jsonl",
            &["sh", "-c", &both],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // a.log takes 40,000 bytes (10 blocks); b.log gets the 6 blocks left.
    assert_eq!(r.stdout, "40000\n24576\n");
    let total: u64 = ["a.log", "b.log"]
        .iter()
        .map(|n| std::fs::metadata(data.join(n)).unwrap().len())
        .sum();
    assert!(total <= 64 << 10, "{total}");
}

#[test]
fn control_fills_and_frees_a_disk_while_the_run_lives() {
    let dir = TempDir::new("disk-control");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let script = dir.write(
        "fill.py",
        r#"
import os, subprocess, sys
ctl, d = sys.argv[1], sys.argv[2]
f = open(os.path.join(d, "app.log"), "ab", buffering=0)
def write():
    try:
        return str(f.write(b"x" * 4096))
    except OSError as e:
        return os.strerror(e.errno)
print("before", write())
subprocess.run([ctl, "control", "disk", "data", "fill"], check=True, stdout=subprocess.DEVNULL)
print("filled", write())
print("status", subprocess.run([ctl, "control", "status"], capture_output=True, text=True).stdout.count("disk data"))
unknown = subprocess.run([ctl, "control", "disk", "nope", "fill"], capture_output=True, text=True)
print("unknown", unknown.returncode, "expected one of data" in unknown.stderr)
subprocess.run([ctl, "control", "disk", "data", "free"], check=True, stdout=subprocess.DEVNULL)
print("freed", write())
"#,
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&disk_policy(&data)),
            "c.jsonl",
            &[
                python().to_str().unwrap(),
                script.to_str().unwrap(),
                bins().ctl.to_str().unwrap(),
                data.to_str().unwrap(),
            ],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout,
        "before 4096\nfilled No space left on device\nstatus 1\nunknown 2 True\nfreed 4096\n"
    );
    let log = read_events(&dir.join("c.jsonl"));
    let changes: Vec<&str> = log
        .iter()
        .filter_map(Event::as_control)
        .filter(|c| c.disk.as_deref() == Some("data"))
        .map(|c| c.what.as_str())
        .collect();
    assert_eq!(changes, ["disk-fill", "disk-free"]);
}
