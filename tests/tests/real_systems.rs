//! Systems of real servers under process chaos: a PostgreSQL postmaster crashed again and again
//! (SIGKILL to its process group) under pgbench load recovers by WAL replay every time and keeps
//! every committed row; a redis replica still serves every key after its primary is crashed.

use chaos_engine::event::schema::{DurabilityLine, ProcessEvent};
use chaos_tests::*;
use std::process::Command;

fn fixture(name: &str) -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/systems").join(name)
}

/// `chaos-ctl run` of the system in `policy` with the workload fixture `workload`.
fn run_system(
    policy: &std::path::Path,
    log: &std::path::Path,
    workload: &str,
    secs: u64,
) -> Finished {
    run(
        Command::new(&bins().ctl)
            .args(["run", "--policy"])
            .arg(policy)
            .arg("--log")
            .arg(log)
            .arg("--")
            .arg(fixture(workload)),
        secs,
    )
}

/// PostgreSQL's server programs (Debian keeps them out of PATH).
fn postgres_bin() -> std::path::PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (Debian's postgresql package) in /usr/lib/postgresql")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|d| d.join("postgres").exists() && d.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("a PostgreSQL version with postgres and initdb")
}

/// The PostgreSQL system: one postmaster (`postgres -c SETTINGS`) crashed by attrition, with the
/// policy's `tail` sections after it.
fn pg_policy(dir: &TempDir, settings: &str, tail: &str) -> std::path::PathBuf {
    let bin = postgres_bin();
    dir.write(
        "pg.toml",
        &format!(
            r#"seed = 2
[[process]]
name = "pg"
user = "postgres"
data = "{{run}}/pgdata"
cmd = ["sh", "-c", "[ -f {{data}}/PG_VERSION ] || initdb -D {{data}} -U postgres -A trust >/dev/null; exec postgres -D {{data}} -p {{port}} -k {{data}} -c listen_addresses=127.0.0.1 {settings}"]
ready = "tcp:{{port}}"
ready_timeout = "60s"
env = {{ PATH = "{}:/usr/bin:/bin" }}

[attrition]
crash = 1.0
graceful = 0.0
wipe = 0.0
interval = "3s..4s"
recovery = "300ms..800ms"
window = ["2s", "14s"]
{tail}"#,
            bin.display()
        ),
    )
}

#[test]
fn postgres_recovers_every_committed_row_after_each_crash() {
    require("psql").expect("psql");
    require("pgbench").expect("pgbench");
    let dir = TempDir::new("postgres-crash");
    let policy = pg_policy(&dir, "", "");
    let log = dir.join("pg.jsonl");
    let r = run_system(&policy, &log, "postgres_workload.sh", 180);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("lost 0"), "{}", r.describe());
    let lines = read_events(&log);
    let events: Vec<&ProcessEvent> = lines.iter().filter_map(Event::as_process).collect();
    let crashes = events
        .iter()
        .filter(|e| e.what == "kill" && e.kind.as_deref() == Some("crash"))
        .count();
    assert!(crashes >= 2, "{crashes} crash(es): {events:?}");
    let restarts = events.iter().filter(|e| e.what == "restart").count();
    assert_eq!(restarts, crashes, "every crash restarted: {events:?}");
    // Each restart recovered from the WAL, as after a power loss.
    let out = std::fs::read_to_string(dir.join("pg.run/pg.out")).unwrap();
    let recoveries = out.matches("automatic recovery in progress").count();
    assert_eq!(recoveries, crashes, "{out}");
    assert!(out.contains("redo done"), "{out}");
}

/// PostgreSQL under `[durability]`: each crash also loses what no fsync made durable, as a power
/// loss would. With `fsync = on` every committed row survives; with `fsync = off` they do not.
fn postgres_with_durability(fsync: &str) -> (Finished, Vec<DurabilityLine>) {
    require("psql").expect("psql");
    require("pgbench").expect("pgbench");
    let dir = TempDir::new(&format!("postgres-durable-{fsync}"));
    let tail = format!(
        "[durability]\npath = \"{}/*\"\n",
        dir.join("pg.run/pgdata").display()
    );
    let policy = pg_policy(&dir, &format!("-c fsync={fsync}"), &tail);
    let log = dir.join("pg.jsonl");
    let r = run_system(&policy, &log, "postgres_workload.sh", 240);
    let undone = read_events(&log)
        .iter()
        .filter_map(Event::as_durability)
        .cloned()
        .collect();
    (r, undone)
}

#[test]
fn postgres_with_fsync_keeps_every_committed_row_when_crashes_lose_unsynced_writes() {
    let (r, undone) = postgres_with_durability("on");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("lost 0"), "{}", r.describe());
    assert!(!undone.is_empty(), "the crashes undid unsynced writes");
}

#[test]
fn postgres_without_fsync_loses_committed_rows_when_crashes_lose_unsynced_writes() {
    let (r, undone) = postgres_with_durability("off");
    // Rows it reported committed are gone (or the server cannot even find its table).
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(!r.stdout.contains("lost 0"), "{}", r.describe());
    assert!(!undone.is_empty());
}

#[test]
fn a_redis_replica_serves_every_key_after_its_primary_crashes() {
    require("redis-server").expect("redis-server");
    require("redis-cli").expect("redis-cli");
    let dir = TempDir::new("redis-replica");
    let policy = dir.write(
        "redis.toml",
        r#"seed = 1
[[process]]
name = "redis"
replicas = 2
cmd = ["sh", "-c", "if [ {i} = 0 ]; then exec redis-server --port {port} --save '' --appendonly no --dir {data} --repl-diskless-sync-delay 0; else p=${{CHAOS_ADDRS_REDIS%%,*}}; exec redis-server --port {port} --save '' --appendonly no --dir {data} --replicaof ${{p%:*}} ${{p#*:}}; fi"]
data = "{run}/redis-{i}"
ready = "tcp:{port}"
restart = "never"

[[nemesis]]
at = "5s"
process = "redis#0"
kind = "crash"
recovery = "1h"
"#,
    );
    let log = dir.join("redis.jsonl");
    let r = run_system(&policy, &log, "redis_replica_workload.sh", 90);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("replica served all 100 keys"),
        "{}",
        r.describe()
    );
    let events = read_events(&log);
    let killed = events
        .iter()
        .filter_map(Event::as_process)
        .find(|e| e.what == "exit" && e.name == "redis#0")
        .expect("the primary's end");
    assert_eq!(killed.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(killed.key.as_deref(), Some("nemesis#0"));
}
