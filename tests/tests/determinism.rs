//! Same seed, policy and program => the same faults, by decision key, however threads interleave.

use chaos_tests::*;
use std::collections::BTreeSet;

fn fault_set(
    dir: &TempDir,
    fixture: &std::path::Path,
    seed: u64,
    run_no: usize,
) -> BTreeSet<String> {
    let policy = dir.write("policy.toml", THREADED_WRITES_POLICY);
    let log = dir.join(&format!("run-{seed}-{run_no}.jsonl"));
    let r = run(
        std::process::Command::new(&bins().ctl)
            .args(["run", "-q", "--seed", &seed.to_string(), "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(fixture),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("ok 12 connections"));
    fault_events(&read_events(&log))
        .into_iter()
        .map(|f| format!("{} {}", key_of(f), f.fault))
        .collect()
}

#[test]
fn same_seed_same_faults_across_runs_other_seed_differs() {
    let dir = TempDir::new("determinism");
    let fixture = compile_c("echo_threads", dir.path(), &[]);
    let first = fault_set(&dir, &fixture, 7, 0);
    assert!(
        first.len() > 20,
        "the policy injects plenty: {}",
        first.len()
    );
    for n in 1..3 {
        let again = fault_set(&dir, &fixture, 7, n);
        let only_first: Vec<_> = first.difference(&again).collect();
        let only_again: Vec<_> = again.difference(&first).collect();
        assert!(
            only_first.is_empty() && only_again.is_empty(),
            "run {n} differs: only in run 0 {only_first:?}; only in run {n} {only_again:?}"
        );
    }
    let other = fault_set(&dir, &fixture, 8, 0);
    assert_ne!(first, other, "another seed gives other faults");
}

/// A non-blocking accept loop (selectors, accept until EAGAIN, as every event loop does) with
/// eight clients connecting at once: how many accepts find the queue empty depends on timing.
const ACCEPT_LOOP: &str = r#"
import selectors, socket, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
srv.setblocking(False)
port = srv.getsockname()[1]
def client():
    c = socket.create_connection(("127.0.0.1", port))
    c.recv(1)
    c.close()
threads = [threading.Thread(target=client) for _ in range(8)]
for t in threads:
    t.start()
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
accepted = []
while len(accepted) < 8:
    sel.select()
    while True:
        try:
            conn, _ = srv.accept()
        except BlockingIOError:
            break
        conn.sendall(b"x")
        accepted.append(conn)
for t in threads:
    t.join()
print("ok", len(accepted))
"#;

#[test]
fn a_non_blocking_accept_loop_keys_its_accepts_by_connection_not_by_attempt() {
    require("python3").expect("python3");
    let dir = TempDir::new("accept-loop");
    let script = dir.write("accept_loop.py", ACCEPT_LOOP);
    let policy = dir.write(
        "policy.toml",
        "[[rules]]\nname = \"slow-accept\"\non = \"accept\"\nprobability = 1.0\n\
         fault = { delay = \"100us\" }\n",
    );
    let mut keys = Vec::new();
    for run_no in 0..2 {
        let log = dir.join(&format!("run-{run_no}.jsonl"));
        let r = run(
            std::process::Command::new(&bins().ctl)
                .args(["run", "-q", "--policy"])
                .arg(&policy)
                .arg("--log")
                .arg(&log)
                .arg("--")
                .arg("python3")
                .arg(&script),
            60,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        assert_eq!(r.stdout.trim(), "ok 8", "{}", r.describe());
        let events = read_events(&log);
        let faults = fault_events(&events);
        // Only the accepts that found a connection are counted and slowed: the ones that end
        // each round with EAGAIN are the kernel's, whatever their number.
        for f in &faults {
            assert!(f.returned.is_some_and(|r| r >= 0), "{f:?}");
        }
        let sites: BTreeSet<String> = faults
            .iter()
            .map(|f| {
                key_of(f)
                    .to_string()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            sites,
            (0..8)
                .map(|n| format!("accept#{n}"))
                .collect::<BTreeSet<_>>(),
            "{}",
            r.describe()
        );
        keys.push(
            faults
                .iter()
                .map(|f| key_of(f).to_string())
                .collect::<BTreeSet<_>>(),
        );
    }
    assert_eq!(keys[0], keys[1], "the same keys in both runs");
}
