//! Systems of processes (`[[process]]`, `[attrition]`): the kv example survives attrition with
//! one replica down at a time and fails with two, the schedule is a function of the seed,
//! `max_dead` holds on the log's timeline, a process fault at a key comes back after `freeze`,
//! and limits are real.

use chaos_engine::event::schema::ProcessEvent;
use chaos_tests::*;
use std::collections::BTreeSet;
use std::process::Command;

/// The kv tests run one at a time: each starts three Python replicas and a workload whose
/// requests time out after a second, and on a 2-core CI machine four such systems at once would
/// starve one another into failures that are not the store's.
static ONE_SYSTEM_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_SYSTEM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn ctl_in_repo() -> Command {
    let mut c = Command::new(&bins().ctl);
    c.current_dir(workspace_root());
    c
}

fn process_events(log: &std::path::Path) -> Vec<ProcessEvent> {
    read_events(log)
        .iter()
        .filter_map(Event::as_process)
        .cloned()
        .collect()
}

/// A kill or pause the schedule drew (it has a due time), as opposed to one a fault did.
fn scheduled_strike(e: &ProcessEvent) -> bool {
    (e.what == "kill" || e.what == "pause") && e.at_ns.is_some()
}

/// Replays the process events: the most replicas down (from a kill or pause to its ready or
/// resume) when the schedule struck.
fn most_down_at_a_strike(events: &[ProcessEvent]) -> usize {
    let mut down = BTreeSet::new();
    let mut most = 0;
    for e in events {
        let name = e.name.clone();
        match e.what.as_str() {
            "kill" | "pause" => {
                down.insert(name);
                if e.at_ns.is_some() {
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
fn planned(events: &[ProcessEvent], until_ns: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.at_ns.is_some_and(|t| t < until_ns))
        .map(|e| {
            format!(
                "{:?} {} {:?} {:?} {:?} {:?}",
                e.at_ns, e.name, e.kind, e.grace_ns, e.recovery_ns, e.paused_ns
            )
        })
        .collect()
}

/// The kv example's three replicas, after `head` (a seed, rules).
fn kv_policy(dir: &TempDir, name: &str, head: &str) -> std::path::PathBuf {
    dir.write(
        name,
        &format!(
            "{head}\n[[process]]\nname = \"kv\"\ncmd = [\"python3\", \"examples/kv/kv.py\", \"--port\", \
             \"{{port}}\", \"--data\", \"{{data}}\", \"--peers\", \"{{peers}}\"]\nreplicas = 3\n\
             data = \"{{run}}/kv-{{i}}\"\nready = \"tcp:{{port}}\"\n"
        ),
    )
}

/// `chaos-ctl run` of the kv workload writing `keys` keys.
fn run_kv_workload(policy: &std::path::Path, log: &std::path::Path, keys: u32) -> Finished {
    run(
        ctl_in_repo()
            .env("KV_KEYS", keys.to_string())
            .args(["run", "-q", "--policy"])
            .arg(policy)
            .arg("--log")
            .arg(log)
            .args(["--", "python3", "examples/kv/workload.py"]),
        120,
    )
}

#[test]
fn kv_survives_attrition_with_one_replica_down_at_a_time() {
    let _serial = one_at_a_time();
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
    let strikes = events.iter().filter(|e| scheduled_strike(e)).count();
    assert!(
        strikes >= 3,
        "the schedule struck {strikes} time(s): {events:?}"
    );
    assert!(events.iter().any(|e| e.what == "restart"), "{events:?}");
    assert_eq!(
        most_down_at_a_strike(&events),
        1,
        "max_dead = 1: {events:?}"
    );
    // Every kill ends in an exit line for the replica, logged by chaos-ctl as its reaper.
    let exits = read_events(&log).iter().filter_map(Event::as_exit).count();
    assert!(
        exits >= strikes,
        "{exits} exit line(s) for {strikes} strike(s)"
    );
    assert!(r.stderr.contains("process  starts"), "{}", r.describe());
}

#[test]
fn kv_fails_with_two_replicas_down_and_the_run_says_so() {
    let _serial = one_at_a_time();
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

fn sleepers(dir: &TempDir, seed: u64, name: &str) -> Vec<ProcessEvent> {
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
            .any(|e| e.what == "pause" && e.kind.as_deref() == Some("pause"))
    );
    assert!(a.iter().any(|e| e.what == "kill"));
}

#[test]
fn a_process_fault_at_a_key_fires_at_the_same_key_after_freeze() {
    let _serial = one_at_a_time();
    require("python3").expect("python3");
    let dir = TempDir::new("process-fault");
    let policy = kv_policy(
        &dir,
        "crash.toml",
        r#"seed = 3
[[rules]]
name = "kill-kv1-at-4th-accept"
on = "accept"
after = 3
times = 1
process = "kv#1"
fault = "crash"
"#,
    );
    let log = dir.join("run.jsonl");
    let r = run_kv_workload(&policy, &log, 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let lines = read_events(&log);
    let crash: Vec<&Fault> = fault_events(&lines)
        .into_iter()
        .filter(|f| f.fault == "crash")
        .collect();
    assert_eq!(
        crash.len(),
        1,
        "one crash, in the first life only: {crash:?}"
    );
    let key = crash[0].key.clone().expect("a crash has its key");
    assert!(key.ends_with("/accept#3"), "{key}");
    let events = process_events(&log);
    let death = events
        .iter()
        .find(|e| e.name == "kv#1" && e.what == "exit")
        .expect("kv#1 died");
    assert_eq!(death.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(death.key.as_deref(), Some(key.as_str()), "{death:?}");
    assert!(
        events
            .iter()
            .any(|e| e.name == "kv#1" && e.what == "restart" && e.life == Some(1)),
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
    let replayed = read_events(&replayed);
    let again: Vec<&Fault> = fault_events(&replayed)
        .into_iter()
        .filter(|f| f.fault == "crash")
        .collect();
    assert_eq!(again.len(), 1);
    // The same place: process, connection and site; the rule part says `inject` now.
    let place = key.replacen("/r0/", "/inject/", 1);
    assert_eq!(again[0].key.as_deref(), Some(place.as_str()));
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
    let carried: Vec<&ProcessEvent> = original.iter().filter(|e| scheduled_strike(e)).collect();
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
    let key = |e: &&ProcessEvent| format!("{:?} {} {:?}", e.at_ns, e.name, e.kind);
    let replayed: Vec<String> = again
        .iter()
        .filter(|e| scheduled_strike(e))
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
        .find(|e| e.name == "fds" && e.what == "exit")
        .expect("fds ended");
    assert_eq!(
        fds_exit.status,
        Some(1),
        "EMFILE from the kernel: {fds_exit:?}"
    );
    let out = std::fs::read_to_string(dir.join("run.run/fds.out")).unwrap();
    assert!(out.contains("Too many open files"), "{out}");
    let hog_exit = events
        .iter()
        .find(|e| e.name == "hog" && e.what == "exit")
        .expect("hog ended");
    if r.stderr.contains("memory 64M: cgroup") {
        // The cgroup's OOM killer: SIGKILL, logged as oom.
        assert_eq!(hog_exit.signal.as_deref(), Some("SIGKILL"), "{hog_exit:?}");
        assert!(
            events.iter().any(|e| e.name == "hog" && e.what == "oom"),
            "{events:?}"
        );
    } else {
        // RLIMIT_AS: the allocation fails (MemoryError).
        assert_eq!(hog_exit.status, Some(1), "{hog_exit:?}");
    }
}

#[test]
fn bad_system_configs_are_refused_with_where_and_what() {
    let dir = TempDir::new("system-bad");
    assert_refused(
        &dir,
        &[
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
        ],
    );
}

fn systems_fixture(name: &str) -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/systems").join(name)
}

/// Whether a run's schedule crashed sleeper#1 (the fixture's workload fails exactly then).
fn hit_sleeper1(log: &std::path::Path) -> bool {
    process_events(log)
        .iter()
        .any(|e| e.name == "sleeper#1" && e.what == "kill")
}

/// `sweep` runs each seed as a whole system run: each seed's verdict is the workload's, which
/// depends on that seed's schedule.
#[test]
fn sweep_runs_systems_seed_by_seed() {
    let _serial = one_at_a_time();
    let dir = TempDir::new("sweep-system");
    let out = dir.join("sweep");
    let r = run(
        ctl_in_repo()
            .args([
                "sweep",
                "--seeds",
                "1..6",
                "-j",
                "2",
                "--keep-going",
                "--policy",
            ])
            .arg(systems_fixture("sleepers.toml"))
            .arg("--out")
            .arg(&out)
            .arg("--")
            .arg(systems_fixture("fails_if_sleeper1_restarted.sh")),
        180,
    );
    let failed: Vec<u64> = (1..=6)
        .filter(|s| out.join(format!("seed-{s}.jsonl")).exists())
        .collect();
    assert!(
        !failed.is_empty() && failed.len() < 6,
        "some seeds fail, not all: {failed:?}\n{}",
        r.describe()
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    for s in &failed {
        assert!(
            hit_sleeper1(&out.join(format!("seed-{s}.jsonl"))),
            "seed {s} failed without a hit"
        );
    }
}

/// `minimize` shrinks a system run's process events with its faults: what is left is one crash
/// of sleeper#1.
#[test]
fn minimize_shrinks_process_events_to_the_one_that_matters() {
    let _serial = one_at_a_time();
    let dir = TempDir::new("minimize-system");
    let log = dir.join("run.jsonl");
    let r = run(
        ctl_in_repo()
            .args(["run", "-q", "--policy"])
            .arg(systems_fixture("sleepers.toml"))
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(systems_fixture("fails_if_sleeper1_restarted.sh")),
        60,
    );
    assert_eq!(r.code(), Some(1), "seed 4 hits sleeper#1: {}", r.describe());
    let events = process_events(&log)
        .iter()
        .filter(|e| e.what == "kill")
        .count();
    assert!(events >= 3, "{events}");
    let min = dir.join("min.toml");
    let r = run(
        ctl_in_repo()
            .args(["minimize", "--runs", "1", "-o"])
            .arg(&min)
            .arg(&log),
        300,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let text = std::fs::read_to_string(&min).unwrap();
    assert_eq!(text.matches("[[nemesis]]").count(), 1, "{text}");
    assert!(
        text.contains("process = \"sleeper#1\"") && text.contains("kind = \"crash\""),
        "{text}"
    );
    assert!(r.stderr.contains("crash of sleeper#1"), "{}", r.describe());
}

/// `{ pause = … }` stops the whole process at its key (chaos-ctl, its parent, continues it) and
/// `terminate` sends its stop signal; both are restarted or resumed and the workload still passes.
#[test]
fn pause_and_terminate_faults_act_on_the_whole_process() {
    let _serial = one_at_a_time();
    require("python3").expect("python3");
    let dir = TempDir::new("pause-terminate");
    let policy = kv_policy(
        &dir,
        "faults.toml",
        r#"
[[rules]]
name = "pause-kv0"
on = "accept"
after = 1
times = 1
process = "kv#0"
fault = { pause = "800ms" }
[[rules]]
name = "terminate-kv2"
on = "accept"
after = 2
times = 1
process = "kv#2"
fault = "terminate"
"#,
    );
    let log = dir.join("run.jsonl");
    let r = run_kv_workload(&policy, &log, 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let lines = read_events(&log);
    let pause = fault_events(&lines)
        .into_iter()
        .find(|f| f.fault == "pause")
        .expect("the pause fault");
    assert_eq!(pause.effect.as_deref(), Some("sigstop-self"), "{pause:?}");
    let events = process_events(&log);
    let of = |name: &str, what: &str| events.iter().any(|e| e.name == name && e.what == what);
    assert!(of("kv#0", "pause") && of("kv#0", "resume"), "{events:?}");
    // Stopped and continued, never restarted: its only life ends with the run.
    assert!(!of("kv#0", "restart"), "{events:?}");
    let term = events
        .iter()
        .find(|e| e.name == "kv#2" && e.what == "exit")
        .expect("kv#2 ended on its stop signal");
    // kv.py's SIGTERM handler exits 0: a graceful end, restarted all the same.
    assert_eq!(term.status, Some(0), "{term:?}");
    assert_eq!(term.kind.as_deref(), Some("graceful"), "{term:?}");
    assert!(of("kv#2", "restart"), "{events:?}");
}

/// `cpu = "20%"` holds a busy loop to about a fifth of a CPU (a rate: generous bounds).
#[test]
fn a_cpu_limit_holds_a_busy_process_to_its_share() {
    require("python3").expect("python3");
    let dir = TempDir::new("cpu-limit");
    let policy = dir.write(
        "cpu.toml",
        r#"
[[process]]
name = "spin"
cmd = ["python3", "-c", "import time\nt0 = time.time(); c0 = time.process_time(); n = 0\nwhile True:\n    n += 1\n    if n % 200000 == 0:\n        print('share %.3f' % ((time.process_time() - c0) / (time.time() - t0)), flush=True)"]
limits = { cpu = "20%" }
"#,
    );
    let log = dir.join("run.jsonl");
    let r = run(
        ctl_in_repo()
            .args(["run", "--duration", "4s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stderr.contains("cpu 20%: "), "{}", r.describe());
    let out = std::fs::read_to_string(dir.join("run.run/spin.out")).unwrap();
    let last: f64 = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("share "))
        .expect("the loop reported its share")
        .parse()
        .unwrap();
    assert!(last < 0.45, "a 20% limit, {last:.2} of a CPU used: {out}");
}

/// The workload starts only once every process is ready, by each kind of probe; a process that
/// never becomes ready fails the run, saying which and how.
#[test]
fn every_kind_of_ready_probe_is_waited_for() {
    require("python3").expect("python3");
    let dir = TempDir::new("ready-probes");
    let policy = dir.write(
        "ready.toml",
        r#"
[[process]]
name = "sock"
cmd = ["python3", "-c", "import socket, time\ntime.sleep(0.3)\ns = socket.socket(socket.AF_UNIX)\ns.bind('{run}/a.sock')\ns.listen()\nwhile True:\n    s.accept()[0].close()"]
ready = "unix:{run}/a.sock"
[[process]]
name = "logger"
cmd = ["sh", "-c", "sleep 0.3; echo 'listening now'; exec sleep 600"]
ready = "log:^listening n[o]w$"
[[process]]
name = "file"
cmd = ["sh", "-c", "sleep 0.3; touch {run}/c.ready; exec sleep 600"]
ready = "cmd:test -f {run}/c.ready"
"#,
    );
    let check = r#"test -S "$CHAOS_RUN/a.sock" && test -f "$CHAOS_RUN/c.ready" && grep -q 'listening now' "$CHAOS_RUN/logger.out""#;
    let r = run(
        ctl_in_repo()
            .args(["run", "-q", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--", "sh", "-c", check]),
        60,
    );
    assert_eq!(
        r.code(),
        Some(0),
        "the workload ran before a process was ready: {}",
        r.describe()
    );

    let never = dir.write(
        "never.toml",
        "[[process]]\nname = \"mute\"\ncmd = [\"sh\", \"-c\", \"echo starting up; exec sleep 600\"]\nready = \"tcp:1\"\nready_timeout = \"1s\"\n",
    );
    let r = run(
        ctl_in_repo()
            .args(["run", "-q", "--policy"])
            .arg(&never)
            .arg("--log")
            .arg(dir.join("never.jsonl"))
            .args(["--", "true"]),
        60,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr
            .contains("process `mute` was not ready after 1.0s (ready = \"tcp:1\")")
            && r.stderr.contains("starting up"),
        "{}",
        r.describe()
    );
}

/// (replica, what, kind) of every scheduled event a run carried out or skipped, in order.
fn carried_out(log: &std::path::Path) -> Vec<String> {
    process_events(log)
        .iter()
        .filter(|e| e.at_ns.is_some())
        .map(|e| format!("{} {} {:?}", e.name, e.what, e.kind))
        .collect()
}

#[test]
fn a_seed_carries_out_the_same_schedule_however_slowly_processes_start() {
    let _one = one_at_a_time();
    let python = require("python3").expect("python3");
    let dir = TempDir::new("attrition-repeat");
    let policy = |delay: &str| {
        dir.write(
            &format!("web-{delay}.toml"),
            &format!(
                "seed = 11\n[[process]]\nname = \"web\"\nreplicas = 3\n\
                 cmd = [\"sh\", \"-c\", \"sleep {delay}; exec {py} -m http.server --bind 127.0.0.1 {{port}}\"]\n\
                 ready = \"tcp:{{port}}\"\n\
                 [attrition]\nprocesses = [\"web\"]\nmax_dead = 1\ngraceful = 0.3\ncrash = 0.5\npause = 0.2\n\
                 interval = \"150ms..400ms\"\nrecovery = \"100ms..300ms\"\ngrace = \"50ms..100ms\"\n\
                 paused = \"100ms..200ms\"\nwindow = [\"0s\", \"1500ms\"]\n",
                py = python.display()
            ),
        )
    };
    let (fast, slow) = (policy("0"), policy("0.5"));
    let mut runs = Vec::new();
    for (i, p) in [&fast, &fast, &slow, &fast, &fast].into_iter().enumerate() {
        let log = dir.join(&format!("run-{i}.jsonl"));
        let r = run(
            ctl_in_repo()
                .args(["run", "-q", "--policy"])
                .arg(p)
                .arg("--log")
                .arg(&log)
                .args(["--", "sleep", "7"]),
            60,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        runs.push(log);
    }
    let first = carried_out(&runs[0]);
    assert!(
        first.len() >= 3,
        "the window holds several events: {first:?}"
    );
    assert!(
        first.iter().all(|e| !e.contains("skip")),
        "nothing skipped: {first:?}"
    );
    for log in &runs[1..] {
        assert_eq!(carried_out(log), first, "{}", log.display());
    }
    let late = process_events(&runs[2])
        .iter()
        .filter(|e| e.late_ns.is_some_and(|n| n > 0))
        .count();
    assert!(
        late > 0,
        "the slow run's events waited for their replicas and say so"
    );
}
