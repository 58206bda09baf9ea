//! The hot-path rules under the conditions that break preload libraries: fork in a threaded parent,
//! vfork children, signal handlers calling hooked functions, pthread_cancel, FORTIFY entry points,
//! exec'd children. No hang, no crash, faults where the policy says.

use chaos_tests::*;

const BENIGN_UNIX: &str = "[[rules]]\non = [\"reads\", \"writes\"]\nfd = \"unix\"\nprobability = 0.3\nfault = { short = \"1..50%\" }\n\n[[rules]]\non = [\"reads\", \"writes\"]\nfd = \"unix\"\nprobability = 0.05\nfault = { delay = \"1us..20us\" }\n";

/// How many processes of a log started by loading an executable whose path ends in `suffix`.
fn starts_of(log: &[Event], suffix: &str) -> usize {
    log.iter()
        .filter_map(Event::as_start)
        .filter(|s| s.exe.as_deref().is_some_and(|e| e.ends_with(suffix)))
        .count()
}

#[test]
fn fork_in_a_threaded_parent() {
    let dir = TempDir::new("fork");
    let fixture = compile_c("fork_threads", dir.path(), &[]);
    let r = run(
        &mut ctl_run(
            &dir,
            Some(BENIGN_UNIX),
            "fork.jsonl",
            &[fixture.to_str().unwrap()],
        ),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("ok 40 children"));
    let log = read_events(&dir.join("fork.jsonl"));
    let starts = || log.iter().filter_map(Event::as_start);
    let forks = starts().filter(|s| s.via == "fork").count();
    assert_eq!(forks, 40, "every forked child writes its own start line");
    let parent = starts().find(|s| s.via == "exec").unwrap().header.pid;
    assert!(
        fault_events(&log).iter().any(|f| f.header.pid != parent),
        "children get faults too"
    );
}

#[test]
fn vfork_children_from_python_subprocess() {
    let Some(_) = require("python3") else { return };
    let dir = TempDir::new("vfork");
    let script = dir.write(
        "spawn.py",
        "import subprocess\nfor i in range(30):\n    out = subprocess.run(['echo', str(i)], capture_output=True, check=True).stdout\n    assert out == f'{i}\\n'.encode(), out\nprint('ok spawned 30')\n",
    );
    // Faults on the pipes subprocess uses to talk to its children, and on close (which the child runs
    // between vfork and exec).
    let policy = "[[rules]]\non = \"reads\"\nfd = \"pipe\"\nprobability = 0.5\nfault = { short = \"1..50%\" }\n\n[[rules]]\non = \"close\"\nfd = \"pipe\"\nprobability = 0.2\nfault = { delay = \"1us..50us\" }\n";
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "vfork.jsonl",
            &["python3", script.to_str().unwrap()],
        ),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("ok spawned 30"), "{}", r.describe());
    let log = read_events(&dir.join("vfork.jsonl"));
    assert_eq!(
        starts_of(&log, "/echo"),
        30,
        "each exec'd child loads the shim"
    );
    assert!(!fault_events(&log).is_empty());
}

#[test]
fn write_from_a_signal_handler() {
    let dir = TempDir::new("sigwrite");
    let fixture = compile_c("sig_write", dir.path(), &[]);
    let policy = format!(
        "{BENIGN_UNIX}\n[[rules]]\non = \"write\"\nfd = \"pipe\"\nprobability = 0.5\nfault = {{ delay = \"1us..5us\" }}\n"
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "sig.jsonl",
            &[fixture.to_str().unwrap()],
        ),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let log = read_events(&dir.join("sig.jsonl"));
    let of_kind = |kind: &str| {
        fault_events(&log)
            .iter()
            .any(|f| f.kind.as_deref() == Some(kind))
    };
    assert!(of_kind("pipe"), "the handler's writes were hooked");
    assert!(of_kind("unix"));
}

#[test]
fn pthread_cancel_of_a_thread_blocked_in_read() {
    let dir = TempDir::new("cancel");
    let fixture = compile_c("cancel_read", dir.path(), &[]);
    // A rule covering the pipe so the read goes through the slow path, not just the fast one.
    let policy = "[[rules]]\non = \"read\"\nfd = \"pipe\"\nprobability = 0.0\nfault = { short = \"1..50%\" }\n";
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "cancel.jsonl",
            &[fixture.to_str().unwrap()],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("ok cancelled"));
}

#[test]
fn fortify_entry_points_are_hooked() {
    let dir = TempDir::new("fortify");
    let fixture = compile_c("fortify", dir.path(), &["-D_FORTIFY_SOURCE=2"]);
    let bytes = std::fs::read(&fixture).unwrap();
    let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(
        has("__read_chk") && has("__recv_chk"),
        "the fixture must import the _chk symbols"
    );
    let policy = "[[rules]]\non = [\"read\", \"recv\"]\nfd = \"unix\"\nfault = \"EIO\"\n";
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "fortify.jsonl",
            &[fixture.to_str().unwrap()],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("read=-1 errno=Input/output error"),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout.contains("recv=-1 errno=Input/output error"),
        "{}",
        r.describe()
    );
}

#[test]
fn exec_children_through_sh_are_intercepted() {
    let dir = TempDir::new("exec");
    let data = dir.write("data.txt", &"line of text\n".repeat(20000));
    let out = dir.join("copy.txt");
    let script = format!("cat {} | cat | cat > {}", data.display(), out.display());
    let policy = "[[rules]]\non = [\"read\", \"write\"]\nfd = \"pipe\"\nprobability = 0.3\nfault = { delay = \"1us..20us\" }\n";
    let r = run(
        &mut ctl_run(&dir, Some(policy), "exec.jsonl", &["sh", "-c", &script]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(std::fs::read(&data).unwrap(), std::fs::read(&out).unwrap());
    let log = read_events(&dir.join("exec.jsonl"));
    assert_eq!(starts_of(&log, "/cat"), 3);
    let pids: std::collections::HashSet<_> =
        fault_events(&log).iter().map(|f| f.header.pid).collect();
    assert!(
        pids.len() >= 2,
        "faults land in several exec'd children: {pids:?}"
    );
}
