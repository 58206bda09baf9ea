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
