//! Every process of a system has a key of its own: the children a workload shell execs with the
//! same executable (curl, twenty times; dash vforks them, bash forks) are distinct processes to the policy, each with a key that
//! is the same in every run of the seed, while the workload itself keeps the key of a system's
//! process (exe, name, life), which frozen policies hold.

use chaos_engine::event::schema::Start;
use chaos_tests::*;
use std::collections::BTreeSet;
use std::process::Command;

const REQUESTS: usize = 20;

/// A web replica, and a rule refusing 30% of the workload's connects.
const POLICY: &str = r#"
[[process]]
name = "web"
cmd = ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
ready = "tcp:{port}"
ready_timeout = "30s"

[[rules]]
name = "refuse"
process = "workload"
on = ["connect"]
fd = "tcp"
probability = 0.3
fault = "ECONNREFUSED"
"#;

/// The workload: a shell running curl against the replica REQUESTS times, saying which failed.
fn script() -> String {
    format!(
        "for i in $(seq {REQUESTS}); do if curl -s -o /dev/null --max-time 10 \
         \"http://$CHAOS_ADDRS_WEB/\"; then echo \"ok $i\"; else echo \"fail $i\"; fi; done"
    )
}

struct Outcome {
    failed: BTreeSet<usize>,
    fault_keys: BTreeSet<String>,
    fault_procs: Vec<String>,
    log: Vec<Event>,
}

/// A run of the workload under `shell` (dash vforks each command, bash forks it).
fn run_seed(dir: &TempDir, policy: &std::path::Path, shell: &str, seed: u64, tag: &str) -> Outcome {
    let log = dir.join(&format!("{shell}-seed{seed}-{tag}.jsonl"));
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "-q", "--seed", &seed.to_string(), "--policy"])
            .arg(policy)
            .arg("--log")
            .arg(&log)
            .args(["--", shell, "-c", &script()]),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let said: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        said.len(),
        REQUESTS,
        "one line per request: {}",
        r.describe()
    );
    let failed = said
        .iter()
        .filter_map(|l| l.strip_prefix("fail "))
        .map(|n| n.parse().expect("a request number"))
        .collect();
    let log = read_events(&log);
    let faults = fault_events(&log);
    Outcome {
        failed,
        fault_keys: faults
            .iter()
            .map(|f| f.key.clone().expect("a fault's key"))
            .collect(),
        fault_procs: faults.iter().map(|f| f.header.proc.clone()).collect(),
        log,
    }
}

#[test]
fn each_child_of_a_workload_shell_draws_for_itself_and_the_same_seed_fails_the_same_requests() {
    require("python3").expect("python3");
    require("curl").expect("curl");
    let dir = TempDir::new("process-keys");
    let policy = dir.write("system.toml", POLICY);
    for (shell, seed) in [
        ("dash", 1),
        ("dash", 2),
        ("dash", 3),
        ("bash", 1),
        ("bash", 2),
    ] {
        require(shell).expect(shell);
        let first = run_seed(&dir, &policy, shell, seed, "a");
        let n = first.failed.len();
        assert!(
            (2..=14).contains(&n),
            "{shell}, seed {seed}: {n} of {REQUESTS} requests failed under p = 0.3 (one key for all \
             would fail none or all): {:?}",
            first.failed
        );
        assert_eq!(first.fault_keys.len(), n, "one fault per failed request");
        let procs: BTreeSet<&String> = first.fault_procs.iter().collect();
        assert_eq!(procs.len(), n, "every fault in a process of its own");
        let curls = curl_starts(&first.log);
        assert_eq!(curls.len(), REQUESTS, "every curl has its start line");
        let curl_keys: BTreeSet<&str> = curls.iter().map(|s| s.header.proc.as_str()).collect();
        assert_eq!(curl_keys.len(), REQUESTS, "every curl has a key of its own");

        let again = run_seed(&dir, &policy, shell, seed, "b");
        assert_eq!(
            again.failed, first.failed,
            "{shell}, seed {seed}: the same requests fail"
        );
        assert_eq!(
            again.fault_keys, first.fault_keys,
            "{shell}, seed {seed}: the same keys"
        );
    }
}

#[test]
fn the_process_chaos_ctl_starts_keeps_the_key_of_a_systems_process() {
    require("python3").expect("python3");
    require("curl").expect("curl");
    let dir = TempDir::new("process-keys-root");
    let policy = dir.write("system.toml", POLICY);
    let run = run_seed(&dir, &policy, "dash", 1, "root");
    let root = run
        .log
        .iter()
        .filter_map(Event::as_start)
        .find(|s| s.process.as_deref() == Some("workload") && s.via == "exec")
        .expect("the workload's start line");
    let exe = root.exe.as_deref().expect("its exe");
    let life = root.life.unwrap_or(0);
    let expected = chaos_engine::process_key::of_system_process(exe, "workload", life);
    assert_eq!(root.header.proc, format!("{expected:016x}"), "{root:?}");
}

/// The keys of the curls a Python workload starts with `subprocess` (which vforks and tries
/// `execve` in each PATH directory in turn), with `dirs_before` prepended to PATH.
fn curl_keys_with_path(dir: &TempDir, policy: &std::path::Path, dirs_before: &str) -> Vec<String> {
    let log = dir.join(&format!("path{}.jsonl", dirs_before.len()));
    let path = format!("{dirs_before}{}", std::env::var("PATH").unwrap_or_default());
    let program = "import os, subprocess\nfor _ in range(3):\n    subprocess.call(['curl', '-s', \
                   '-o', '/dev/null', '--max-time', '10', 'http://' + os.environ['CHAOS_ADDRS_WEB'] + '/'])\n";
    let r = run(
        Command::new(&bins().ctl)
            .env("PATH", path)
            .args(["run", "-q", "--seed", "1", "--policy"])
            .arg(policy)
            .arg("--log")
            .arg(&log)
            .args(["--", "python3", "-c", program]),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    curl_starts(&read_events(&log))
        .iter()
        .map(|s| s.header.proc.clone())
        .collect()
}

/// The start lines of the curls a run started.
fn curl_starts(log: &[Event]) -> Vec<&Start> {
    log.iter()
        .filter_map(Event::as_start)
        .filter(|s| s.exe.as_deref().is_some_and(|x| x.ends_with("/curl")))
        .collect()
}

#[test]
fn a_child_that_finds_its_program_late_on_path_keeps_its_key() {
    require("python3").expect("python3");
    require("curl").expect("curl");
    let dir = TempDir::new("process-keys-path");
    let policy = dir.write("system.toml", POLICY);
    let direct = curl_keys_with_path(&dir, &policy, "");
    assert_eq!(direct.len(), 3, "every curl has its start line");
    let missing = dir.join("nowhere");
    let searched = curl_keys_with_path(&dir, &policy, &format!("{0}/a:{0}/b:", missing.display()));
    assert_eq!(searched, direct, "failed execs along PATH are not forks");
}
