//! The log stays whole under concurrency and loses nothing when the program is SIGKILLed.

use chaos_tests::*;
use std::process::Stdio;

#[test]
fn threads_and_forked_children_never_tear_a_line() {
    let dir = TempDir::new("storm");
    let fixture = compile_c("log_storm", dir.path(), &[]);
    let policy = "[[rules]]\non = \"write\"\nfd = \"unix\"\nprobability = 0.7\nfault = \"EIO\"\n";
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "storm.jsonl",
            &[fixture.to_str().unwrap()],
        ),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // Panics on any torn line, and on any field the engine's event schema does not know.
    let log = read_events(&dir.join("storm.jsonl"));
    let faults = fault_events(&log);
    let n = faults.len();
    // 4 processes x 16 threads x 300 writes at p=0.7: about 13,440 faults.
    assert!((12_000..15_000).contains(&n), "{n} faults");
    let pids: std::collections::HashSet<_> = faults.iter().map(|f| f.header.pid).collect();
    assert_eq!(pids.len(), 4);
    let tids: std::collections::HashSet<_> = faults.iter().map(|f| f.header.tid).collect();
    assert_eq!(tids.len(), 64);
    assert!(
        faults
            .iter()
            .all(|f| key_of(f).to_string() == *f.key.as_ref().unwrap())
    );
}

#[test]
fn sigkill_loses_no_fault_already_injected() {
    let dir = TempDir::new("sigkill");
    let fixture = compile_c("fail_counter", dir.path(), &[]);
    let policy = dir.write(
        "p.toml",
        "[[rules]]\non = \"send\"\nfd = \"unix\"\nfault = \"ENOBUFS\"\n",
    );
    let log = dir.join("kill.jsonl");
    let mut guard = Background::spawn(
        preloaded(&fixture, &policy, &log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let child = &mut guard.0;
    let seen: u64 = {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut last = 0;
        let mut line = String::new();
        while last < 300 {
            assert!(std::time::Instant::now() < deadline, "fixture too slow");
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            last = line.trim().trim_start_matches("failed ").parse().unwrap();
        }
        last
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let events = read_events(&log);
    let logged = fault_events(&events).len() as u64;
    assert!(
        logged >= seen,
        "the program saw {seen} failures but the log has {logged}"
    );
}
