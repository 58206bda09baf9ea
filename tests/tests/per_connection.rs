//! `per = "connection"` (Toxiproxy's toxicity): the probability is drawn once per connection,
//! so a connection gets the fault on every matching call or on none; `per = "call"` draws for
//! each call.

use chaos_tests::*;
use std::collections::HashMap;

/// Faults per connection name, from a run of 200 connections with five sends each.
fn faults_per_connection(per: &str) -> HashMap<String, usize> {
    require("python3").expect("python3");
    let dir = TempDir::new(&format!("per-{per}"));
    let policy = format!(
        "[[rules]]\non = \"send\"\nfd = \"tcp\"\nprobability = 0.3\nper = \"{per}\"\nfault = {{ delay = \"1us\" }}\n"
    );
    let fixture = workspace_root().join("tests/fixtures/many_connections.py");
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "run.jsonl",
            &["python3", fixture.to_str().unwrap()],
        ),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let mut per_conn = HashMap::new();
    for f in fault_events(&read_events(&dir.join("run.jsonl"))) {
        *per_conn.entry(f.conn.clone().unwrap()).or_insert(0) += 1;
    }
    per_conn
}

#[test]
fn a_connection_draws_once_and_then_gets_every_fault_or_none() {
    let per_conn = faults_per_connection("connection");
    // About 30% of 200 connections (binomial sd ≈ 6.5).
    assert!(
        (35..=85).contains(&per_conn.len()),
        "{} connections",
        per_conn.len()
    );
    assert!(
        per_conn.values().all(|&n| n == 5),
        "all five sends or none: {per_conn:?}"
    );
}

#[test]
fn per_call_draws_spread_faults_over_most_connections() {
    let per_conn = faults_per_connection("call");
    let total: usize = per_conn.values().sum();
    assert!(
        (240..=360).contains(&total),
        "about 30% of 1,000 sends: {total}"
    );
    // 1 - 0.7^5 ≈ 83% of connections get at least one, most of them not all five.
    assert!(per_conn.len() > 130, "{}", per_conn.len());
    assert!(per_conn.values().filter(|&&n| n < 5).count() > 100);
}

#[test]
fn per_takes_call_or_connection() {
    let dir = TempDir::new("per-bad");
    assert_refused(
        &dir,
        &[(
            "[[rules]]\non = \"send\"\nper = \"process\"\nfault = \"EPIPE\"\n",
            "expected \"call\" (the default) or \"connection\"",
        )],
    );
}
