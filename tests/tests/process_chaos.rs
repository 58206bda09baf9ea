//! Systems of processes (`[[process]]`, `[attrition]`): the kv example survives attrition with
//! one replica down at a time and fails with two, the schedule is a function of the seed,
//! `max_dead` holds on the log's timeline, a process fault at a key comes back after `freeze`,
//! and limits are real.

use chaos_tests::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn ctl_in_repo() -> Command {
    let mut c = Command::new(&bins().ctl);
    c.current_dir(workspace_root());
    c
}

fn process_events(log: &std::path::Path) -> Vec<Value> {
    read_log(log)
        .into_iter()
        .filter(|e| e["ev"] == "process")
        .collect()
}

/// Replays the process events: the most replicas down (from a kill or pause to its ready or
/// resume) when the schedule struck.
fn most_down_at_a_strike(events: &[Value]) -> usize {
    let mut down = BTreeSet::new();
    let mut most = 0;
    for e in events {
        let name = e["name"].as_str().unwrap_or("").to_string();
        match e["what"].as_str().unwrap_or("") {
            "kill" | "pause" => {
                down.insert(name);
                if !e["at_ns"].is_null() {
                    most = most.max(down.len());
                }
            }
            "exit" => {
                down.insert(name);
            }
            "ready" | "resume" => {
                down.remove(&name);
            }
            _ => {}
        }
    }
    most
}

/// (due time, replica, kind, grace, recovery, pause) of every event the schedule drew before
/// `until_ns`, carried out or skipped.
fn planned(events: &[Value], until_ns: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["at_ns"].as_u64().is_some_and(|t| t < until_ns))
        .map(|e| {
            format!(
                "{} {} {} {} {} {}",
                e["at_ns"], e["name"], e["kind"], e["grace_ns"], e["recovery_ns"], e["paused_ns"]
            )
        })
        .collect()
}

#[test]
fn kv_survives_attrition_with_one_replica_down_at_a_time() {
    require("python3").expect("python3");
    let dir = TempDir::new("kv-one-down");
    let log = dir.join("run.jsonl");
    let r = run(
        ctl_in_repo()
            .args(["run", "--policy", "examples/kv/system.toml", "--log"])
            .arg(&log)
            .args(["--", "python3", "examples/kv/workload.py"]),
        240,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("0 failure(s)"), "{}", r.describe());
    let events = process_events(&log);
    let strikes = events
        .iter()
        .filter(|e| (e["what"] == "kill" || e["what"] == "pause") && !e["at_ns"].is_null())
        .count();
    assert!(
        strikes >= 3,
        "the schedule struck {strikes} time(s): {events:?}"
    );
    assert!(events.iter().any(|e| e["what"] == "restart"), "{events:?}");
    assert_eq!(
        most_down_at_a_strike(&events),
        1,
        "max_dead = 1: {events:?}"
    );
    // Every kill ends in an exit line for the replica, logged by chaos-ctl as its reaper.
    let exits = read_log(&log)
        .into_iter()
        .filter(|e| e["ev"] == "exit")
        .count();
    assert!(
        exits >= strikes,
        "{exits} exit line(s) for {strikes} strike(s)"
    );
    assert!(r.stderr.contains("process  starts"), "{}", r.describe());
}

#[test]
fn kv_fails_with_two_replicas_down_and_the_run_says_so() {
    require("python3").expect("python3");
    let dir = TempDir::new("kv-two-down");
    let log = dir.join("run.jsonl");
    let r = run(
        ctl_in_repo()
            .args([
                "run",
                "--policy",
                "examples/kv/system-two-down.toml",
                "--log",
            ])
            .arg(&log)
            .args(["--", "python3", "examples/kv/workload.py"]),
        240,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.stdout.contains("FAIL"), "{}", r.describe());
    assert_eq!(most_down_at_a_strike(&process_events(&log)), 2);
}

const SLEEPERS: &str = r#"
[[process]]
name = "sleeper"
cmd = ["sh", "-c", "exec sleep 600"]
replicas = 3

[attrition]
max_dead = 1
graceful = 0.3
crash = 0.4
wipe = 0.0
pause = 0.3
interval = "100ms..300ms"
recovery = "50ms..150ms"
grace = "20ms..80ms"
paused = "50ms..200ms"
"#;

fn sleepers(dir: &TempDir, seed: u64, name: &str) -> Vec<Value> {
    let policy = dir.write("sleepers.toml", SLEEPERS);
    let log = dir.join(name);
    let r = run(
        ctl_in_repo()
            .args([
                "run",
                "-q",
                "--duration",
                "3s",
                "--seed",
                &seed.to_string(),
                "--policy",
            ])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    process_events(&log)
}

#[test]
fn the_schedule_is_a_function_of_the_seed() {
    let dir = TempDir::new("schedule-seed");
    let a = sleepers(&dir, 5, "a.jsonl");
    let b = sleepers(&dir, 5, "b.jsonl");
    let c = sleepers(&dir, 6, "c.jsonl");
    let until = 2_500_000_000;
    let (pa, pb, pc) = (planned(&a, until), planned(&b, until), planned(&c, until));
    assert!(pa.len() >= 5, "{pa:?}");
    assert_eq!(pa, pb, "the same seed, the same schedule");
    assert_ne!(pa, pc, "another seed, another schedule");
    for events in [&a, &b, &c] {
        assert!(most_down_at_a_strike(events) <= 1, "{events:?}");
    }
    // Kills and pauses are carried out with their drawn kind.
    assert!(
        a.iter()
            .any(|e| e["what"] == "pause" && e["kind"] == "pause")
    );
    assert!(a.iter().any(|e| e["what"] == "kill"));
}

#[test]
fn a_process_fault_at_a_key_fires_at_the_same_key_after_freeze() {
    require("python3").expect("python3");
    let dir = TempDir::new("process-fault");
    let policy = dir.write(
        "crash.toml",
        r#"seed = 3
[[rules]]
name = "kill-kv1-at-4th-accept"
on = "accept"
after = 3
times = 1
process = "kv#1"
fault = "crash"

[[process]]
name = "kv"
cmd = ["python3", "examples/kv/kv.py", "--port", "{port}", "--data", "{data}", "--peers", "{peers}"]
replicas = 3
data = "{run}/kv-{i}"
ready = "tcp:{port}"
"#,
    );
    let log = dir.join("run.jsonl");
    let r = run(
        ctl_in_repo()
            .env("KV_KEYS", "20")
            .args(["run", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .args(["--", "python3", "examples/kv/workload.py"]),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let lines = read_log(&log);
    let crash: Vec<&Value> = lines
        .iter()
        .filter(|e| e["ev"] == "fault" && e["fault"] == "crash")
        .collect();
    assert_eq!(
        crash.len(),
        1,
        "one crash, in the first life only: {crash:?}"
    );
    let key = crash[0]["key"].as_str().unwrap().to_string();
    assert!(key.ends_with("/accept#3"), "{key}");
    let events = process_events(&log);
    let death = events
        .iter()
        .find(|e| e["name"] == "kv#1" && e["what"] == "exit")
        .expect("kv#1 died");
    assert_eq!(death["signal"], "SIGKILL");
    assert_eq!(death["key"].as_str(), Some(key.as_str()), "{death}");
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "kv#1" && e["what"] == "restart" && e["life"] == 1),
        "{events:?}"
    );

    let frozen = run(Command::new(&bins().ctl).arg("freeze").arg(&log), 30);
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert!(frozen.stdout.contains("[[process]]") && frozen.stdout.contains("fault = \"crash\""));
    let replayed = dir.join("replay.jsonl");
    let r = run(
        ctl_in_repo()
            .env("KV_KEYS", "20")
            .arg("replay")
            .arg("--log")
            .arg(&replayed)
            .arg(&log),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("replay reproduced 1 of 1"),
        "{}",
        r.describe()
    );
    let again: Vec<Value> = read_log(&replayed)
        .into_iter()
        .filter(|e| e["ev"] == "fault" && e["fault"] == "crash")
        .collect();
    assert_eq!(again.len(), 1);
    // The same place: process, connection and site; the rule part says `inject` now.
    let place = key.replacen("/r0/", "/inject/", 1);
    assert_eq!(again[0]["key"].as_str(), Some(place.as_str()));
}

/// A frozen system run repeats the schedule it carried out, as exact `[[nemesis]]` entries.
#[test]
fn freeze_writes_the_carried_out_schedule_as_nemesis_entries() {
    let dir = TempDir::new("nemesis-freeze");
    let original = sleepers(&dir, 8, "orig.jsonl");
    let frozen = run(
        Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("orig.jsonl")),
        30,
    );
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    let carried: Vec<&Value> = original
        .iter()
        .filter(|e| (e["what"] == "kill" || e["what"] == "pause") && !e["at_ns"].is_null())
        .collect();
    assert_eq!(
        frozen.stdout.matches("[[nemesis]]").count(),
        carried.len(),
        "{}",
        frozen.stdout
    );
    let policy = dir.write("frozen.toml", &frozen.stdout);
    let log = dir.join("again.jsonl");
    let r = run(
        ctl_in_repo()
            .args(["run", "-q", "--duration", "3s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let again = process_events(&log);
    let key = |e: &&Value| format!("{} {} {}", e["at_ns"], e["name"], e["kind"]);
    let replayed: Vec<String> = again
        .iter()
        .filter(|e| (e["what"] == "kill" || e["what"] == "pause") && !e["at_ns"].is_null())
        .map(|e| key(&e))
        .collect();
    let logged: Vec<String> = carried.iter().map(key).collect();
    assert_eq!(replayed, logged);
}

#[test]
fn limits_are_real_and_the_summary_names_the_mechanism() {
    require("python3").expect("python3");
    let dir = TempDir::new("limits");
    let policy = dir.write(
        "limits.toml",
        r#"
[[process]]
name = "fds"
cmd = ["python3", "-c", "import os\n[os.open('/dev/null', os.O_RDONLY) for _ in range(200)]"]
restart = "never"
limits = { nofile = 32 }

[[process]]
name = "hog"
cmd = ["python3", "-c", "b = bytearray(512 * 1024 * 1024)\nb[::4096] = b'x' * len(b[::4096])"]
restart = "never"
limits = { memory = "64M" }
"#,
    );
    let log = dir.join("run.jsonl");
    let r = run(
        ctl_in_repo()
            .args(["run", "--duration", "20s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("nofile 32: RLIMIT_NOFILE"),
        "{}",
        r.describe()
    );
    assert!(r.stderr.contains("memory 64M: "), "{}", r.describe());
    let events = process_events(&log);
    let fds_exit = events
        .iter()
        .find(|e| e["name"] == "fds" && e["what"] == "exit")
        .expect("fds ended");
    assert_eq!(fds_exit["status"], 1, "EMFILE from the kernel: {fds_exit}");
    let out = std::fs::read_to_string(dir.join("run.run/fds.out")).unwrap();
    assert!(out.contains("Too many open files"), "{out}");
    let hog_exit = events
        .iter()
        .find(|e| e["name"] == "hog" && e["what"] == "exit")
        .expect("hog ended");
    if r.stderr.contains("memory 64M: cgroup") {
        // The cgroup's OOM killer: SIGKILL, logged as oom.
        assert_eq!(hog_exit["signal"], "SIGKILL", "{hog_exit}");
        assert!(
            events
                .iter()
                .any(|e| e["name"] == "hog" && e["what"] == "oom"),
            "{events:?}"
        );
    } else {
        // RLIMIT_AS: the allocation fails (MemoryError).
        assert_eq!(hog_exit["status"], 1, "{hog_exit}");
    }
}

#[test]
fn bad_system_configs_are_refused_with_where_and_what() {
    let dir = TempDir::new("system-bad");
    for (text, expect) in [
        (
            "[[process]]\nname = \"kv\"\ncmd = [\"x\", \"{prot}\"]\n",
            "unknown placeholder {prot}",
        ),
        (
            "[[process]]\nname = \"kv\"\ncmd = [\"x\"]\nrules = [\"nope\"]\n",
            "no rule named `nope`",
        ),
        (
            "[[process]]\nname = \"kv\"\ncmd = [\"x\"]\nready = \"http:80\"\n",
            "expected \"tcp:{port}\"",
        ),
        (
            "[[process]]\nname = \"kv\"\ncmd = [\"x\"]\n[attrition]\nprocesses = [\"db\"]\n",
            "no process or replica named `db`",
        ),
        (
            "[[process]]\nname = \"kv\"\ncmd = [\"x\"]\nlimits = { memory = \"lots\" }\n",
            "not a size",
        ),
    ] {
        let policy = dir.write("bad.toml", text);
        let r = run(Command::new(&bins().ctl).arg("validate").arg(&policy), 20);
        assert_eq!(r.code(), Some(1), "{text}: {}", r.describe());
        assert!(r.stderr.contains(expect), "{text}: {}", r.describe());
        assert!(r.stderr.contains("bad.toml:"), "{}", r.describe());
    }
}
