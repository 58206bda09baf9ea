//! The seccomp backend: Go programs and static binaries, which the shim cannot reach, get the
//! same policy, keys and log under chaos-ctl's notification supervisor.

use chaos_tests::*;
use std::collections::BTreeSet;
use std::process::Command;

fn ctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().ctl);
    cmd.args(args);
    cmd
}

/// The (key, fault) pairs of a log's faults, and checks that each says `backend: seccomp`.
fn keyed_faults(log: &std::path::Path, backend: Option<&str>) -> BTreeSet<String> {
    let events = read_events(log);
    let faults = fault_events(&events);
    for f in &faults {
        assert_eq!(
            f.backend.as_deref(),
            backend,
            "every fault names its backend: {f:?}"
        );
    }
    faults
        .iter()
        .map(|f| format!("{} {}", f.key.as_deref().unwrap_or("?"), f.fault))
        .collect()
}

#[test]
fn go_http_body_arrives_intact_under_benign_with_short_io_and_eintr() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-go-benign");
    let log = dir.join("run.jsonl");
    // benign's rules, with its wait EINTR made likely: how many waits block depends on timing,
    // and at benign's 2% a run may have too few for one to be interrupted.
    let benign = run(&mut ctl(&["profiles", "show", "benign"]), 20).stdout;
    let (head, tail) = benign
        .rsplit_once("name = \"benign-wait-eintr\"")
        .expect("benign has its wait EINTR rule");
    let policy = dir.write(
        "benign-eintr.toml",
        &format!(
            "{head}name = \"benign-wait-eintr\"{}",
            tail.replace("probability = 0.02", "probability = 0.5")
        ),
    );
    let r = run(
        ctl(&["run", "-q", "--policy", policy.to_str().unwrap()])
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(&go)
            .args(["serve-and-fetch", "20000000"]),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.starts_with("ok 20000000 "), "{}", r.describe());
    let events = read_events(&log);
    let starts: Vec<_> = events.iter().filter_map(Event::as_start).collect();
    assert_eq!(
        starts.len(),
        1,
        "one process, the Go program (not the launcher)"
    );
    assert_eq!(starts[0].backend.as_deref(), Some("seccomp"));
    assert!(
        starts[0]
            .exe
            .as_deref()
            .unwrap()
            .ends_with(go.file_name().unwrap().to_str().unwrap())
    );
    let faults = fault_events(&events);
    let count = |op: &str, fault: &str| {
        faults
            .iter()
            .filter(|f| f.op == op && f.fault == fault && f.backend.as_deref() == Some("seccomp"))
            .count()
    };
    assert!(
        count("read", "short") > 5,
        "short reads: {}",
        count("read", "short")
    );
    assert!(count("write", "short") > 0, "short writes");
    assert!(
        count("epoll_wait", "EINTR") > 0,
        "EINTR on the netpoller's waits"
    );
    // A short transfer reports what really moved.
    for f in faults.iter().filter(|f| f.fault == "short") {
        let (asked, got) = (f.requested.unwrap(), f.returned.unwrap());
        assert!(got > 0 && (got as u64) < asked, "{f:?}");
    }
    // Go's netpoller is edge-triggered: EAGAIN stalls are delays here, and say so.
    for f in faults.iter().filter(|f| f.fault == "stall") {
        assert_eq!(
            f.degraded.as_deref(),
            Some("edge-triggered-readiness"),
            "{f:?}"
        );
    }
}

/// A loopback HTTP server (Python) for the Go client to fetch from.
fn file_server(dir: &TempDir) -> (Background, u16) {
    let python = require("python3").expect("python3");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    pseudo_random_file(&www.join("f"), 200_000);
    let mut server = Background::spawn(
        Command::new(python)
            .arg(workspace_root().join("tests/fixtures/serve.py"))
            .arg(&www)
            .stdout(std::process::Stdio::piped()),
    );
    let line = read_line_starting(&mut server.0, "port ", 20);
    let port: u16 = line.trim_start_matches("port ").trim().parse().unwrap();
    (server, port)
}

#[test]
fn go_client_prints_gos_own_errors_for_reset_and_refusal() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-go-errors");
    let (_server, port) = file_server(&dir);
    let url = format!("http://127.0.0.1:{port}/f");
    let cases = [
        (
            "reset",
            "[[rules]]\nname = \"reset\"\non = \"reads\"\nfd = \"tcp\"\nprobability = 1.0\nfault = \"ECONNRESET\"\n",
            // Go reports it from whichever of its read and write loops meets it first.
            "connection reset by peer",
        ),
        (
            "refused",
            "[[rules]]\nname = \"refuse\"\non = \"connect\"\nfd = \"tcp\"\nprobability = 1.0\nfault = \"ECONNREFUSED\"\n",
            "connect: connection refused",
        ),
    ];
    for (name, policy, text) in cases {
        let policy = dir.write(&format!("{name}.toml"), policy);
        let log = dir.join(&format!("{name}.jsonl"));
        let r = run(
            ctl(&["run", "-q", "--policy", policy.to_str().unwrap()])
                .arg("--log")
                .arg(&log)
                .arg("--")
                .arg(&go)
                .args(["fetch", &url]),
            60,
        );
        assert_eq!(r.code(), Some(2), "{name}: {}", r.describe());
        assert!(
            r.stdout.contains(text),
            "{name}: Go's own error text: {}",
            r.describe()
        );
        let events = read_events(&log);
        let fs = fault_events(&events);
        assert!(
            !fs.is_empty() && fs.iter().all(|f| f.backend.as_deref() == Some("seccomp")),
            "{name}: {fs:?}"
        );
        if name == "reset" {
            assert_eq!(
                fs[0].effect.as_deref(),
                Some("rst-sent"),
                "a real reset: {:?}",
                fs[0]
            );
        } else {
            assert_eq!(
                fs[0].effect.as_deref(),
                Some("refused-by-kernel"),
                "{:?}",
                fs[0]
            );
        }
    }
    // Without the rules the same fetch succeeds.
    let r = run(
        ctl(&["run", "-q", "--profile", "none", "--"])
            .arg(&go)
            .args(["fetch", &url]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout.trim(), "ok 200000");
}

#[test]
fn go_program_gets_the_same_faults_by_key_for_the_same_seed() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-go-determinism");
    let policy = dir.write("policy.toml", THREADED_WRITES_POLICY);
    let faults_of = |seed: u64, n: usize| {
        let log = dir.join(&format!("run-{seed}-{n}.jsonl"));
        let r = run(
            ctl(&["run", "-q", "--seed", &seed.to_string(), "--policy"])
                .arg(&policy)
                .arg("--log")
                .arg(&log)
                .arg("--")
                .arg(&go)
                .args(["requests", "100"]),
            120,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        keyed_faults(&log, Some("seccomp"))
    };
    let first = faults_of(7, 0);
    assert!(first.len() > 5, "the policy injects plenty: {first:?}");
    for n in 1..3 {
        let again = faults_of(7, n);
        assert_eq!(first, again, "run {n} differs");
    }
    assert_ne!(first, faults_of(8, 0), "another seed gives other faults");
}

const PAIR_POLICY: &str = r#"
[[rules]]
name = "short-reads"
on = "reads"
fd = "tcp"
probability = 0.3
fault = { short = "1..90%" }

[[rules]]
name = "slow-writes"
on = "writes"
fd = "tcp"
probability = 0.3
fault = { delay = "1us..30us" }

[[rules]]
name = "slow-connect"
on = "connect"
fd = "tcp"
probability = 1.0
fault = { delay = "10us..300us" }
"#;

#[test]
fn a_static_binary_gets_the_faults_and_keys_of_its_dynamic_build() {
    let dir = TempDir::new("seccomp-static");
    let policy = dir.write("policy.toml", PAIR_POLICY);
    // The same path for both builds: the process key hashes the executable's path and argv.
    let exe = dir.join("loopback_pair");
    let build = |flags: &[&str]| {
        let built = compile_c("loopback_pair", dir.path(), flags);
        assert_eq!(built, exe);
    };
    let run_with = |backend: &str, log: &str| {
        let log = dir.join(log);
        let r = run(
            ctl(&["run", "-q", "--backend", backend, "--policy"])
                .arg(&policy)
                .arg("--log")
                .arg(&log)
                .arg("--")
                .arg(&exe)
                .arg("40"),
            60,
        );
        assert_eq!(r.code(), Some(0), "{backend}: {}", r.describe());
        assert!(r.stdout.starts_with("ok "), "{}", r.describe());
        log
    };
    build(&[]);
    let dynamic = keyed_faults(&run_with("preload", "dynamic.jsonl"), None);
    build(&["-static"]);
    // `auto` picks seccomp for a static binary.
    let log = run_with("auto", "static.jsonl");
    let stat = keyed_faults(&log, Some("seccomp"));
    assert!(dynamic.len() > 20, "plenty of faults: {}", dynamic.len());
    assert_eq!(
        dynamic, stat,
        "same faults at the same keys under both backends"
    );
    let kinds: BTreeSet<_> = dynamic
        .iter()
        .map(|f| f.rsplit(' ').next().unwrap())
        .collect();
    assert!(
        kinds.contains("short") && kinds.contains("delay"),
        "{kinds:?}"
    );
}

#[test]
fn platform_macos_reproduces_setsockopt_after_shutdown_on_go() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-go-macos");
    let log = dir.join("run.jsonl");
    let r = run(
        ctl(&[
            "run",
            "-q",
            "--platform",
            "macos",
            "--profile",
            "none",
            "--log",
        ])
        .arg(&log)
        .arg("--")
        .arg(&go)
        .arg("shut-then-setsockopt"),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("setsockopt error:") && r.stdout.contains("invalid argument"),
        "Go reports macOS's EINVAL: {}",
        r.describe()
    );
    let events = read_events(&log);
    let q: Vec<_> = fault_events(&events)
        .into_iter()
        .filter(|f| f.quirk.as_deref() == Some("setsockopt-after-shutdown"))
        .collect();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].backend.as_deref(), Some("seccomp"));
    // On Linux the same call succeeds.
    let r = run(
        ctl(&["run", "-q", "--profile", "none", "--"])
            .arg(&go)
            .arg("shut-then-setsockopt"),
        60,
    );
    assert_eq!(r.stdout.trim(), "ok setsockopt", "{}", r.describe());
}

#[test]
fn the_preload_backend_still_refuses_what_it_cannot_reach() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let r = run(
        ctl(&["run", "--backend", "preload", "--"])
            .arg(&go)
            .args(["fetch", "http://127.0.0.1:1/"]),
        30,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("is statically linked") || r.stderr.contains("is a Go program"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--backend seccomp"),
        "says what would work: {}",
        r.stderr
    );
    let r = run(&mut ctl(&["run", "--backend", "warp", "--", "true"]), 30);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("possible values: auto, preload, seccomp"),
        "{}",
        r.stderr
    );
}

#[test]
fn sweep_runs_a_go_program_under_seccomp() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-sweep");
    let out = dir.join("sweep");
    let r = run(
        ctl(&["sweep", "--seeds", "1..3", "-j", "2", "--out"])
            .arg(&out)
            .arg("--")
            .arg(&go)
            .args(["serve-and-fetch", "2000000"]),
        180,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("ran 3 of 3 seeds") && r.stderr.contains(": 0 failed"),
        "{}",
        r.describe()
    );
    for seed in 1..=3 {
        let log = out.join(format!("seed-{seed}.jsonl"));
        if log.exists() {
            let seccomp = Some("seccomp");
            assert!(
                read_events(&log).iter().any(|e| {
                    e.as_start()
                        .is_some_and(|s| s.backend.as_deref() == seccomp)
                        || e.as_fault()
                            .is_some_and(|f| f.backend.as_deref() == seccomp)
                }),
                "{} names the seccomp backend",
                log.display()
            );
        }
    }
}

#[test]
fn what_the_seccomp_backend_cannot_do_is_refused_not_skipped() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-unsupported");
    let policy = dir.write(
        "p.toml",
        "[[rules]]\nname = \"dup-fails\"\non = \"dup\"\nprobability = 1.0\nfault = \"EMFILE\"\n",
    );
    let r = run(
        ctl(&["run", "--policy", policy.to_str().unwrap(), "--"])
            .arg(&go)
            .args(["requests", "1"]),
        30,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr
            .contains("rule `dup-fails` acts on dup only, which the seccomp backend does not see"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_close_interrupted_by_a_signal_still_closes_under_seccomp() {
    let dir = TempDir::new("seccomp-close-eintr");
    let exe = compile_c("close_eintr", dir.path(), &["-static"]);
    let r = run(
        ctl(&["run", "-q", "--log"])
            .arg(dir.join("run.jsonl"))
            .arg("--")
            .arg(&exe)
            .arg("3000"),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout.trim(), "ok 3000", "{}", r.describe());
    let events = read_events(&dir.join("run.jsonl"));
    assert!(
        events
            .iter()
            .filter_map(Event::as_start)
            .any(|s| s.backend.as_deref() == Some("seccomp")),
        "it ran under the seccomp backend"
    );
}

/// A failing Go run, replayed (the same faults at the same places, the same failure) and
/// minimized (the harmless delays dropped, the resets that fail it kept), all under seccomp.
/// Writes, not reads: how much a read returns is timing, and so are its offsets, while each
/// of Go's HTTP writes is one call at a fixed offset.
#[test]
fn a_failing_go_run_is_replayed_and_minimized_under_seccomp() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-replay");
    let policy = dir.write(
        "resets.toml",
        "[[rules]]\nname = \"resets\"\non = \"writes\"\nfd = \"tcp\"\n\
         probability = 0.02\nfault = \"ECONNRESET\"\n\n[[rules]]\nname = \"slow\"\n\
         on = \"writes\"\nfd = \"tcp\"\nprobability = 0.2\nfault = { delay = \"1us..20us\" }\n",
    );
    let client = |r: &mut Command| {
        r.arg("--").arg(&go).args(["requests", "200"]);
    };
    // Go's client retries a request whose reused connection was reset, so a seed fails the
    // program only when a reset lands where no retry is left; the first seed that fails it
    // after some harmless faults (something to shrink) is used.
    let log = dir.join("run.jsonl");
    let failed = (1..=30).find_map(|seed| {
        let mut cmd = ctl(&["run", "-q", "--seed", &seed.to_string(), "--policy"]);
        cmd.arg(&policy).arg("--log").arg(&log);
        client(&mut cmd);
        let r = run(&mut cmd, 120);
        (r.code() == Some(1) && fault_events(&read_events(&log)).len() >= 5).then_some(r)
    });
    let r = failed.expect("some seed of 1..30 fails the client after a few faults");
    assert!(
        r.stdout.contains("connection reset by peer"),
        "{}",
        r.describe()
    );
    let first = keyed_faults(&log, Some("seccomp"));

    let again = dir.join("again.jsonl");
    let mut cmd = ctl(&["replay", "--log"]);
    cmd.arg(&again).arg(&log);
    client(&mut cmd);
    let r = run(&mut cmd, 120);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains("the failure reproduced"),
        "{}",
        r.describe()
    );
    // The replay fires the logged faults as exact injections at their places (process,
    // connection and site; the rule part of a key names the injection instead).
    let places = |faults: &BTreeSet<String>| -> BTreeSet<(String, String)> {
        faults
            .iter()
            .map(|f| {
                let key: Vec<&str> = f.split(' ').next().unwrap().split('/').collect();
                (key[0].to_string(), key[2].to_string())
            })
            .collect()
    };
    let replayed = keyed_faults(&again, Some("seccomp"));
    assert_eq!(
        places(&replayed),
        places(&first),
        "the same places: {replayed:?}"
    );

    let min = dir.join("min.toml");
    let mut cmd = ctl(&["minimize", "-o"]);
    cmd.arg(&min).arg(&log);
    client(&mut cmd);
    let r = run(&mut cmd, 600);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let frozen = std::fs::read_to_string(&min).unwrap();
    let lines = |want: &str| frozen.lines().filter(|l| *l == want).count();
    let kept = lines("[[inject]]");
    assert!(
        kept >= 1 && kept < first.len(),
        "fewer faults than the {} logged: {frozen}",
        first.len()
    );
    assert_eq!(
        lines("fault = \"ECONNRESET\""),
        kept,
        "only resets kept, no delay: {frozen}"
    );
}

/// Each notified call is a round trip to chaos-ctl, so the filter is built from the policy: one
/// that only acts on connect has no read or write handed over, and its connect rule still acts.
#[test]
fn a_connect_only_policy_hands_over_no_read_or_write() {
    let dir = TempDir::new("seccomp-filter");
    let exe = compile_c("loopback_pair", dir.path(), &["-static"]);
    let connect_only = dir.write(
        "connect.toml",
        "[[rules]]\nname = \"slow-connect\"\non = \"connect\"\nfd = \"tcp\"\n\
         fault = { delay = \"10us..300us\" }\n",
    );
    let data = dir.write("data.toml", PAIR_POLICY);
    let run_with = |policy: &std::path::Path, log: &str, debug: bool| {
        let log = dir.join(log);
        let mut cmd = ctl(&["run", "-q", "--backend", "seccomp", "--policy"]);
        cmd.arg(policy)
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(&exe)
            .arg("20");
        if debug {
            cmd.env("CHAOS_DEBUG", "1");
        } else {
            cmd.env_remove("CHAOS_DEBUG");
        }
        let r = run(&mut cmd, 60);
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        assert!(r.stdout.starts_with("ok "), "{}", r.describe());
        (r, log)
    };

    let (r, log) = run_with(&connect_only, "connect.jsonl", true);
    let seen = notifications(&r.stderr);
    assert_eq!((seen["read"], seen["write"]), (0, 0), "{seen:?}");
    assert!(seen["connect"] >= 1 && seen["execve"] >= 1, "{seen:?}");
    let faults = keyed_faults(&log, Some("seccomp"));
    assert_eq!(faults.len(), 1, "the connect rule still acts: {faults:?}");

    // The counts are of calls seen: a data rule's run has its reads and writes handed over.
    let (r, _) = run_with(&data, "data.jsonl", true);
    let seen = notifications(&r.stderr);
    assert!(seen["read"] > 20 && seen["write"] > 20, "{seen:?}");

    // Nothing of it shows without CHAOS_DEBUG.
    let (r, _) = run_with(&connect_only, "quiet.jsonl", false);
    assert!(!r.stderr.contains("debug"), "{}", r.describe());
}
