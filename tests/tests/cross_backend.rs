//! One policy means one thing whichever backend runs it: a forking program built dynamic (run
//! under the preload shim) and static (run under the seccomp supervisor) gets the same faults at
//! the same keys in every process, `times` and `window` included, each counted per process since
//! that process started.

use chaos_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `times = 2` on connects: each process's first two are delayed, whatever its siblings did.
/// (A delay, not a refusal: the backends still number a refused connect's socket differently.)
/// `window` on writes: only in each process's first two seconds. The parent waits longer than that
/// before it forks, so its own writes fall outside and its children's inside.
const POLICY: &str = r#"
seed = 11

[[rules]]
name = "slow-twice"
on = ["connect"]
fd = "tcp"
times = 2
fault = { delay = "1ms" }

[[rules]]
name = "early-writes"
on = ["write"]
fd = "tcp"
window = ["0s", "2s"]
fault = { delay = "1ms" }
"#;

/// Accepts and drains connections on 127.0.0.1 until dropped.
struct Sink {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Sink {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per process (its pid in the run), the keys of its faults, each with the rule that made it
/// after a space.
fn keys_by_process(log: &std::path::Path, backend: Option<&str>) -> BTreeSet<BTreeSet<String>> {
    let events = read_events(log);
    let mut by_pid: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    for f in fault_events(&events) {
        assert_eq!(f.backend.as_deref(), backend, "{f:?}");
        let key = f.key.as_deref().expect("a fault has its key");
        by_pid
            .entry(f.header.pid)
            .or_default()
            .insert(format!("{key} {}", f.rule));
    }
    // Each process's faults carry one process key, and no two processes share one.
    let process_keys: BTreeSet<u64> = by_pid
        .values()
        .map(|keys| {
            let of = |k: &String| k.split('-').next().unwrap().to_string();
            let first = of(keys.first().unwrap());
            assert!(keys.iter().all(|k| of(k) == first), "{keys:?}");
            u64::from_str_radix(&first, 16).unwrap()
        })
        .collect();
    assert_eq!(process_keys.len(), by_pid.len(), "{by_pid:?}");
    by_pid.into_values().collect()
}

#[test]
fn times_and_window_count_per_process_from_its_start_under_both_backends() {
    let dir = TempDir::new("cross-backend");
    let policy = dir.write("policy.toml", POLICY);
    // The same path for both builds: the process key hashes the executable's path and argv.
    let exe = dir.join("fork_sequence");
    let sink = Sink::start();
    let port = sink.port.to_string();
    let run_with = |backend: &str, log: &str| {
        let log = dir.join(log);
        let args = [port.as_str(), "4", "3000"];
        let r = run(ctl_run_on(backend, &policy, &log, &exe).args(args), 60);
        assert_eq!(r.code(), Some(0), "{backend}: {}", r.describe());
        assert!(r.stdout.ends_with("ok\n"), "{}", r.describe());
        log
    };
    assert_eq!(compile_c("fork_sequence", dir.path(), &[]), exe);
    let preload = keys_by_process(&run_with("preload", "preload.jsonl"), None);
    assert_eq!(compile_c("fork_sequence", dir.path(), &["-static"]), exe);
    let seccomp = keys_by_process(&run_with("seccomp", "seccomp.jsonl"), Some("seccomp"));

    // What the policy means, per process: two delayed connects each; delayed writes only in
    // the children, whose clocks start at their fork.
    let count = |sets: &BTreeSet<BTreeSet<String>>, rule: &str| -> Vec<usize> {
        let mut n: Vec<usize> = sets
            .iter()
            .map(|keys| keys.iter().filter(|k| k.ends_with(rule)).count())
            .collect();
        n.sort();
        n
    };
    assert_eq!(preload.len(), 3, "three processes faulted: {preload:?}");
    assert_eq!(count(&preload, " slow-twice"), vec![2, 2, 2]);
    assert_eq!(count(&preload, " early-writes"), vec![0, 8, 8]);
    assert_eq!(
        preload, seccomp,
        "the same faults at the same keys in every process under both backends"
    );
}
