//! `chaos-ctl explore` of a system of processes (`[[process]]`): two replicas of a C server
//! (tests/fixtures/explore_server.c, one planted bug: a failed open of its reply file is not
//! checked) and a C workload that retries every error (explore_client.c). Explore must find the
//! bug in each replica as a point of its own, named by the process, with the injection reaching
//! that process only, reproduce it from the frozen policy, and report every handled call, the
//! servers' and the workload's, as passing.

use chaos_tests::{TempDir, bins, compile_c, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const REPLY: &str = "pong\n";

/// The system's policy: two replicas of the server, ready once they listen.
fn policy(dir: &TempDir) -> std::path::PathBuf {
    let server = compile_c("explore_server", dir.path(), &[]);
    let reply = dir.write("reply.txt", REPLY);
    dir.write(
        "system.toml",
        &format!(
            "[[process]]\nname = \"srv\"\ncmd = [\"{}\", \"{{port}}\", \"{}\"]\nreplicas = 2\n\
             ready = \"tcp:{{port}}\"\nready_timeout = \"20s\"\n",
            server.display(),
            reply.display()
        ),
    )
}

/// The `proc` of each process's `start` line in a run's log, by process name.
fn process_keys(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["ev"] == "start" && e["via"] == "exec")
        .filter_map(|e| Some((e["process"].as_str()?.into(), e["proc"].as_str()?.into())))
        .collect()
}

#[test]
fn explore_finds_a_servers_planted_bug_in_each_replica_of_a_system() {
    let dir = TempDir::new("explore-system");
    let policy = policy(&dir);
    let client = compile_c("explore_client", dir.path(), &[]);
    let out = dir.join("out");
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .args([
            "explore",
            "-j",
            "2",
            "--timeout",
            "20s",
            "--json",
            "--policy",
        ])
        .arg(&policy)
        .arg("--out")
        .arg(&out)
        .arg("--")
        .arg(&client)
        .arg(REPLY);
    let done = run(&mut cmd, 1200);
    assert_eq!(done.code(), Some(1), "failures found: {}", done.describe());
    let json: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("explore's --json: {e}\n{}", done.describe()));

    // The one bug, once per replica: the same call site, two points, each named by its process.
    let failures = json["failures"].as_array().unwrap();
    let found: BTreeSet<(String, String)> = failures
        .iter()
        .map(|f| {
            (
                f["point"].as_str().unwrap().to_string(),
                f["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected_outcomes: BTreeSet<String> = ["srv#0", "srv#1"]
        .iter()
        .map(|p| format!("{p} killed by SIGSEGV"))
        .collect();
    assert_eq!(
        found
            .iter()
            .map(|(_, o)| o.clone())
            .collect::<BTreeSet<_>>(),
        expected_outcomes,
        "only the planted bug, in each replica: {}",
        done.stderr
    );
    let sites: BTreeSet<&str> = found
        .iter()
        .map(|(point, _)| point.split_once(':').unwrap().1)
        .collect();
    assert_eq!(sites.len(), 1, "one call site: {found:?}");
    let site = *sites.iter().next().unwrap();
    assert!(
        site.starts_with("open@") && site.contains("explore_server+0x"),
        "{site}"
    );
    for f in failures {
        let point = f["point"].as_str().unwrap();
        let process = point.split_once(':').unwrap().0;
        assert_eq!(f["verdict"], "crash", "{f}");
        assert_eq!(f["reproduced"], true, "replayed: {f}");
        assert!(
            f["place"]
                .as_str()
                .unwrap()
                .ends_with(&format!("({process})")),
            "{f}"
        );
        // The run that found it injected in that replica only, and only that replica crashed.
        let run = json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["point"] == point && r["fault"] == f["fault"])
            .unwrap();
        let log = std::fs::read_to_string(run["log"].as_str().unwrap()).unwrap();
        let keys = process_keys(&log);
        let mine = &keys.iter().find(|(name, _)| name == process).unwrap().1;
        let faults: Vec<Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["ev"] == "fault")
            .collect();
        assert_eq!(faults.len(), 1, "one injection: {faults:?}");
        assert_eq!(
            faults[0]["proc"].as_str(),
            Some(mine.as_str()),
            "{faults:?}"
        );
        let crashed: Vec<Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["ev"] == "process" && e["what"] == "exit" && e["signal"] == "SIGSEGV")
            .collect();
        assert!(
            !crashed.is_empty() && crashed.iter().all(|e| e["name"] == process),
            "{crashed:?}"
        );
    }

    // Every other point of the servers and the workload was tried, and every run passed or its
    // fault was not possible there.
    let points = json["points"].as_array().unwrap();
    let of = |prefix: &str| {
        points
            .iter()
            .filter(|p| p["point"].as_str().unwrap().starts_with(prefix))
            .collect::<Vec<_>>()
    };
    for process in ["srv#0:", "srv#1:", "workload:"] {
        let handled: Vec<&Value> = of(process)
            .into_iter()
            .filter(|p| p["op"] != "open")
            .collect();
        for op in ["recv", "send", "close"] {
            assert!(
                handled
                    .iter()
                    .any(|p| p["op"] == op && p["passed"].as_u64() > Some(0)),
                "{process} {op} tried and passed: {}",
                done.stderr
            );
        }
        for p in &handled {
            assert_eq!(p["failed"], 0, "handled: {p}\n{}", done.stderr);
        }
    }
    assert!(
        json["unexplored"].as_array().unwrap().is_empty(),
        "{}",
        done.stderr
    );

    // The frozen policy, run as the report says, crashes that replica again.
    let frozen = failures[0]["policy"].as_str().unwrap();
    let process = failures[0]["point"]
        .as_str()
        .unwrap()
        .split_once(':')
        .unwrap()
        .0;
    let log = dir.join("replay.jsonl");
    let mut replay = Command::new(&bins().ctl);
    replay
        .env("CHAOS_SHIM", &bins().shim)
        .args(["run", "-q", "--policy", frozen, "--log"])
        .arg(&log)
        .arg("--")
        .arg(&client)
        .arg(REPLY);
    let again = run(&mut replay, 120);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["ev"] == "process"
                && e["what"] == "exit"
                && e["name"] == process
                && e["signal"] == "SIGSEGV"),
        "{process} crashed again: {}",
        again.describe()
    );
}

/// `run` hands the census explore asks of it (CHAOS_CENSUS in its environment) to its program,
/// as it does to every process of a system; a CHAOS_CENSUS_NTH that is not a count is refused.
#[test]
fn run_hands_the_census_to_its_program_and_refuses_a_bad_nth() {
    let dir = TempDir::new("explore-census-env");
    let file = dir.write("a.txt", "a\n");
    let census = |nth: Option<&str>, log: &str| {
        let mut cmd = Command::new(&bins().ctl);
        cmd.env("CHAOS_SHIM", &bins().shim)
            .env("CHAOS_CENSUS", "1")
            .args(["run", "-q", "--log"])
            .arg(dir.join(log))
            .args(["--", "cat"])
            .arg(&file);
        if let Some(n) = nth {
            cmd.env("CHAOS_CENSUS_NTH", n);
        }
        run(&mut cmd, 60)
    };
    let done = census(None, "on.jsonl");
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    let log = std::fs::read_to_string(dir.join("on.jsonl")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(r#""ev":"point""#) && l.contains("a.txt")),
        "a point line for cat's open: {log}"
    );
    let done = census(Some("zero"), "bad.jsonl");
    assert_eq!(done.code(), Some(125), "{}", done.describe());
    assert!(
        done.stderr.contains("CHAOS_CENSUS_NTH") && done.stderr.contains("`zero`"),
        "{}",
        done.stderr
    );
}
