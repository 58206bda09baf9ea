//! The file calls (open family, pread/pwrite, fsync and kin, ftruncate/fallocate, rename, unlink,
//! mkdir, sendfile...) and the fd-making ones (socket, pipe, dup): each fails with the errno its
//! rule names, matched by the absolute path the program meant; their faults freeze and replay;
//! without rules they behave exactly as without the shim.

use chaos_tests::*;
use std::process::Command;

/// One rule per call of the fixture, targeting the files of `dir`.
fn policy_for(dir: &str) -> String {
    format!(
        r#"
[[rules]]
name = "open-blocked"
on = "open"
path = "{dir}/*blocked"
fault = "EACCES"
[[rules]]
name = "openat"
on = "openat"
path = "{dir}/at-*"
fault = "ENOENT"
[[rules]]
name = "creat"
on = "creat"
fault = "EDQUOT"
[[rules]]
name = "pwrite"
on = ["pwrite", "pwritev"]
path = "{dir}/data"
times = 1
fault = "ENOSPC"
[[rules]]
name = "syncs"
on = "syncs"
times = 1
fault = "EIO"
[[rules]]
name = "reads"
on = ["pread", "preadv"]
fault = "EIO"
[[rules]]
name = "space"
on = "space"
fault = "ENOSPC"
[[rules]]
name = "dup"
on = "dup"
fd = "file"
fault = "EMFILE"
[[rules]]
name = "rename"
on = "rename"
path = "{dir}/data"
fault = "EXDEV"
[[rules]]
name = "unlink"
on = "unlink"
path = "{dir}/data"
fault = "EBUSY"
[[rules]]
name = "mkdir"
on = "mkdir"
fault = "EROFS"
[[rules]]
name = "socket"
on = "socket"
fd = "tcp"
fault = "EMFILE"
[[rules]]
name = "pipe"
on = "pipe"
fault = "ENFILE"
[[rules]]
name = "stdio-open"
on = "opens"
path = "{dir}/stdio"
fault = "EACCES"
[[rules]]
name = "stdio-write"
on = "writes"
fd = "file"
path = "{dir}/stdio"
fault = "ENOSPC"
"#
    )
}

const UNDER_RULES: &str = "\
open blocked: EACCES
open free: ok
open relative: EACCES
openat: ENOENT
creat: EDQUOT
open data: ok
pwrite: ENOSPC
pwrite again: ok
pwritev: ok
fsync: EIO
fsync again: ok
fdatasync: ok
sync_file_range: ok
syncfs: ok
pread: EIO
preadv: EIO
ftruncate: ENOSPC
fallocate: ENOSPC
posix_fallocate: ENOSPC errno=0
dup: EMFILE
sendfile: ok
copy_file_range: ok
rename: EXDEV
renameat: EXDEV
mkdir: EROFS
unlink: EBUSY
unlinkat: EBUSY
socket: EMFILE
socket udp: ok
pipe: ENFILE
fopen: ok
fclose: ok
";

/// How the fixture runs: without the shim, under `chaos-ctl run`'s default profile, or a policy.
enum Under<'a> {
    Native,
    DefaultProfile,
    Policy(&'a str),
}

/// Runs the fixture in a fresh `work` directory under `dir`; its output.
fn run_fixture(dir: &TempDir, fixture: &std::path::Path, under: Under, log: &str) -> String {
    let work = dir.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let work = work.to_str().unwrap().to_string();
    let argv = [fixture.to_str().unwrap(), &work];
    let mut cmd = match under {
        Under::Policy(p) => ctl_run(dir, Some(p), log, &argv),
        Under::DefaultProfile => ctl_run(dir, None, log, &argv),
        Under::Native => {
            let mut c = Command::new(fixture);
            c.arg(&work);
            c
        }
    };
    let r = run(&mut cmd, 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    r.stdout
}

#[test]
fn each_file_call_fails_with_the_errno_its_rule_names_by_absolute_path() {
    let dir = TempDir::new("file-calls");
    let fixture = compile_c("file_calls", dir.path(), &[]);
    let work = dir.join("work");
    let policy = policy_for(work.to_str().unwrap());
    let out = run_fixture(&dir, &fixture, Under::Policy(&policy), "f.jsonl");
    assert_eq!(out, UNDER_RULES);

    let log = read_events(&dir.join("f.jsonl"));
    let f = fault_events(&log);
    let at = |op: &str| -> Vec<&Fault> { f.iter().copied().filter(|e| e.op == op).collect() };
    let in_work = |name: &str| Some(format!("{}/{name}", work.display()));
    // The relative open is logged (and matched) as the absolute path it resolved to.
    let opens = at("open");
    assert_eq!(opens.len(), 2, "{opens:?}");
    assert_eq!(opens[1].path, in_work("rel-blocked"));
    assert_eq!(opens[1].fd, -1);
    assert_eq!(at("openat")[0].path, in_work("at-blocked"));
    // Calls on an open file name it by its fd's path.
    let fsync = at("fsync");
    assert_eq!(fsync.len(), 1);
    assert_eq!(fsync[0].path, in_work("data"));
    assert_eq!(fsync[0].kind.as_deref(), Some("file"));
    assert_eq!(at("socket")[0].kind.as_deref(), Some("tcp"));
    // glibc's stdio opens and writes through internal aliases no preload library can see: the
    // stdio rules never fire, and stdio works as without us.
    assert!(f.iter().all(|e| !e.rule.starts_with("stdio")), "{f:?}");
    assert!(f.iter().all(|e| e.key.is_some()));
}

#[test]
fn file_faults_freeze_and_replay_at_the_same_calls() {
    let dir = TempDir::new("file-freeze");
    let fixture = compile_c("file_calls", dir.path(), &[]);
    let policy = policy_for(dir.join("work").to_str().unwrap());
    run_fixture(&dir, &fixture, Under::Policy(&policy), "f.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("f.jsonl")),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout
            .contains(&format!("open of {}/blocked", dir.join("work").display())),
        "{}",
        r.stdout
    );
    let replayed = run_fixture(&dir, &fixture, Under::Policy(&r.stdout), "replay.jsonl");
    assert_eq!(replayed, UNDER_RULES);
    let log = read_events(&dir.join("replay.jsonl"));
    assert_eq!(
        fault_events(&log).len(),
        fault_events(&read_events(&dir.join("f.jsonl"))).len()
    );
    assert!(fault_events(&log).iter().all(|e| e.rule == "inject"));
}

#[test]
fn without_rules_file_calls_behave_as_without_the_shim() {
    let dir = TempDir::new("file-plain");
    let fixture = compile_c("file_calls", dir.path(), &[]);
    let native = run_fixture(&dir, &fixture, Under::Native, "");
    // The default profile (benign) has no file rules; a rule on another path changes nothing.
    let under_benign = run_fixture(&dir, &fixture, Under::DefaultProfile, "b.jsonl");
    assert_eq!(under_benign, native);
    let elsewhere = "[[rules]]\non = [\"opens\", \"syncs\"]\npath = \"/nowhere/*\"\nfault = \"ENOSPC\"\n\
                     [[rules]]\non = \"entries\"\npath = \"/nowhere/*\"\nfault = \"EACCES\"\n";
    let other_path = run_fixture(&dir, &fixture, Under::Policy(elsewhere), "o.jsonl");
    assert_eq!(other_path, native);
    assert!(
        native.contains("rename: ok") && native.contains("fsync: ok"),
        "{native}"
    );
}

#[test]
fn python_file_io_goes_through_the_hooks() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = TempDir::new("file-python");
    let data = dir.join("data.log");
    let policy = format!(
        "[[rules]]\non = \"writes\"\nfd = \"file\"\npath = \"{p}\"\nafter = 1\ntimes = 1\nfault = \"ENOSPC\"\n\
         [[rules]]\non = \"fsync\"\npath = \"{p}\"\nfault = \"EIO\"\n",
        p = data.display()
    );
    let script = format!(
        "import os\nf = open({p:?}, 'ab', buffering=0)\nf.write(b'one\\n')\n\
         try:\n    f.write(b'two\\n')\nexcept OSError as e:\n    print('write', os.strerror(e.errno))\n\
         f.write(b'three\\n')\n\
         try:\n    os.fsync(f.fileno())\nexcept OSError as e:\n    print('fsync', os.strerror(e.errno))\n",
        p = data.display()
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "py.jsonl",
            &[python.to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout,
        "write No space left on device\nfsync Input/output error\n"
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "one\nthree\n");
}

#[test]
fn nginx_with_sendfile_on_delivers_the_file_intact_through_short_sendfiles() {
    let (Some(nginx), Some(_)) = (require("nginx"), require("curl")) else {
        return;
    };
    let dir = TempDir::new("nginx-sendfile");
    let policy = "[[rules]]\nname = \"short-sendfile\"\non = \"sendfile\"\nfd = \"tcp\"\n\
                  probability = 0.5\nfault = { short = \"1..50%\" }\n";
    let (_server, port) = start_nginx(&nginx, &dir, policy, true);
    let www = dir.join("www");
    let out = dir.join("got.bin");
    let r = run(
        Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&out)
            .arg(format!("http://127.0.0.1:{port}/big.bin")),
        120,
    );
    assert_eq!(
        r.code(),
        Some(0),
        "{}\nnginx error log:\n{}",
        r.describe(),
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
    assert_eq!(sha256(&out), sha256(&www.join("big.bin")));
    let log = read_events(&dir.join("nginx.jsonl"));
    let shorts: Vec<_> = fault_events(&log)
        .into_iter()
        .filter(|f| f.op == "sendfile" && f.fault == "short")
        .collect();
    assert!(!shorts.is_empty(), "nginx's sendfiles were cut short");
    let returned = |f: &Fault| f.returned.expect("a short transfer says what it returned");
    let requested = |f: &Fault| {
        f.requested
            .expect("a short transfer says what it asked for")
    };
    assert!(
        shorts.iter().all(|f| returned(f) < requested(f) as i64),
        "{shorts:?}"
    );
}

#[test]
fn an_fsync_error_reaches_every_description_open_at_the_time_once() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = TempDir::new("file-errseq");
    let data = dir.join("wal");
    let policy = format!(
        "[[rules]]\non = \"fsync\"\npath = \"{}\"\ntimes = 1\nfault = \"EIO\"\n",
        data.display()
    );
    // Linux since 4.13 (kernel-facts F4): each open file description open when the writeback
    // error happened reports it once; a dup'ed fd shares its description; a later open, after
    // someone saw the error, does not get it.
    let script = format!(
        "import os\np = {p:?}\na = os.open(p, os.O_WRONLY | os.O_CREAT)\nb = os.open(p, os.O_WRONLY)\n\
         a2 = os.dup(a)\nos.write(a, b'x' * 100)\n\
         def sync(name, fd):\n    try:\n        os.fsync(fd); print(name, 'ok')\n    except OSError as e:\n        print(name, e.strerror)\n\
         sync('a', a)\nsync('a', a)\nsync('a2', a2)\nsync('b', b)\nsync('b', b)\n\
         c = os.open(p, os.O_WRONLY)\nsync('c', c)\n",
        p = data.display()
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "e.jsonl",
            &[python.to_str().unwrap(), "-c", &script],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout,
        "a Input/output error\na ok\na2 ok\nb Input/output error\nb ok\nc ok\n"
    );
    let log = read_events(&dir.join("e.jsonl"));
    let reported: Vec<_> = log.iter().filter_map(Event::as_writeback).collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].errno.as_deref(), Some("EIO"));
}
