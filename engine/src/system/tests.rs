//! Which rules a system's processes keep, and the names and variables it gives them; built
//! from policy text, so these go through the parser.

use super::*;

fn live_rules(text: &str, process: Option<&str>, life: u32) -> Vec<String> {
    let mut p = crate::parse::parse_policy(text, "t.toml").unwrap();
    p.scope_to_process(process, life);
    p.rules
        .iter()
        .filter(|r| !r.ops.is_empty())
        .map(|r| r.name.clone())
        .collect()
}

/// Listed rules apply only where listed, `process` globs only where they match, process
/// faults only in a first life; every rule keeps its index.
#[test]
fn rules_are_scoped_to_processes() {
    let text = r#"
[[rules]]
name = "everywhere"
on = "recv"
fault = "EINTR"
[[rules]]
name = "slow-disk"
on = "read"
fd = "file"
fault = { delay = "1ms" }
[[rules]]
name = "kill-kv1"
on = "accept"
process = "kv#1"
fault = "crash"
[[process]]
name = "kv"
cmd = ["kv"]
replicas = 2
rules = ["slow-disk"]
[[process]]
name = "web"
cmd = ["web"]
"#;
    assert_eq!(
        live_rules(text, Some("kv#1"), 0),
        ["everywhere", "slow-disk", "kill-kv1"]
    );
    assert_eq!(
        live_rules(text, Some("kv#1"), 1),
        ["everywhere", "slow-disk"]
    );
    assert_eq!(
        live_rules(text, Some("kv#0"), 0),
        ["everywhere", "slow-disk"]
    );
    assert_eq!(live_rules(text, Some("web"), 0), ["everywhere"]);
    assert_eq!(live_rules(text, Some("workload"), 0), ["everywhere"]);
    assert_eq!(live_rules(text, None, 0), ["everywhere"]);
    let mut p = crate::parse::parse_policy(text, "t.toml").unwrap();
    p.scope_to_process(Some("web"), 0);
    assert_eq!(
        p.rules.len(),
        3,
        "indices are part of keys: nothing is removed"
    );
}

#[test]
fn names_and_variables() {
    assert_eq!(base_name("kv#2"), "kv");
    assert_eq!(base_name("pg"), "pg");
    assert_eq!(addrs_var("kv"), "CHAOS_ADDRS_KV");
    assert_eq!(addrs_var("my-db.2"), "CHAOS_ADDRS_MY_DB_2");
}
