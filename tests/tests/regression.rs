//! From a failing run to a regression test: sweep finds failing seeds, minimize shrinks one to the
//! faults that matter, freeze writes them as a deterministic policy, replay reproduces a run's faults
//! by decision key.

use chaos_tests::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Many faults, nearly all harmless to fragile_client: it only fails when a reset lands in the
/// middle of a response and the reconnect that follows is refused.
const FRAGILE_POLICY: &str = r#"
[[rules]]
name = "short-reads"
on = "recv"
fd = "tcp"
probability = 0.3
# Bytes, not a percentage: an explicit length says the user wants a nearly closed window's splits
# (read faults are per 16 KiB cell of the stream: one cut within the first 60 bytes of a cell).
fault = { short = "1..60" }

[[rules]]
name = "slow-writes"
on = "write"
fd = "tcp"
probability = 0.2
fault = { delay = "0ms..1ms" }

[[rules]]
name = "resets"
on = "recv"
fd = "tcp"
probability = 0.03
fault = "ECONNRESET"

[[rules]]
name = "refusals"
on = "connect"
probability = 0.5
fault = "ECONNREFUSED"
"#;

fn ctl() -> Command {
    Command::new(&bins().ctl)
}

/// Each fault's place (its key without the rule part) and the fault: what a replay must reproduce.
fn fault_idents(log: &Path) -> BTreeSet<String> {
    fault_events(&read_events(log))
        .into_iter()
        .filter(|f| !f.is_quirk())
        .map(|f| format!("{} {}", key_of(f).place(), f.fault))
        .collect()
}

/// Logs the sweep kept: one per failing seed.
fn kept_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    logs.sort();
    logs
}

#[test]
fn sweep_finds_minimize_shrinks_freeze_pins_replay_reproduces() {
    let dir = TempDir::new("regression");
    let fixture = compile_c("fragile_client", dir.path(), &[]);
    let policy = dir.write("fragile.toml", FRAGILE_POLICY);
    let out = dir.join("sweep");

    // Without chaos the client is fine.
    let clean = run(&mut Command::new(&fixture), 30);
    assert_eq!(clean.code(), Some(0), "{}", clean.describe());

    let sweep = run(
        ctl()
            .args([
                "sweep",
                "--seeds",
                "1..30",
                "-j",
                "2",
                "--keep-going",
                "--policy",
            ])
            .arg(&policy)
            .arg("--out")
            .arg(&out)
            .arg("--")
            .arg(&fixture),
        300,
    );
    assert_eq!(
        sweep.code(),
        Some(1),
        "some seed fails: {}",
        sweep.describe()
    );
    let failing = kept_logs(&out);
    assert!(
        (1..30).contains(&failing.len()),
        "some seeds fail and some pass: {}",
        sweep.describe()
    );
    assert!(
        sweep.stderr.contains("chaos-ctl run --seed"),
        "the table gives the reproducing command: {}",
        sweep.stderr
    );

    // The two failing runs with the most faults: the most for minimize to throw away.
    let mut by_faults: Vec<(usize, &PathBuf)> =
        failing.iter().map(|l| (fault_idents(l).len(), l)).collect();
    by_faults.sort_by_key(|f| std::cmp::Reverse(f.0));
    assert!(
        by_faults[0].0 > 8,
        "a failing run with many faults: {by_faults:?}"
    );
    for (_, log) in by_faults.into_iter().take(2) {
        let logged = fault_idents(log);

        // replay: the same faults at the same keys, and the same failure.
        let replay_log = dir.join("replay.jsonl");
        let r = run(
            ctl()
                .args(["replay", "-q", "--log"])
                .arg(&replay_log)
                .arg(log)
                .arg("--")
                .arg(&fixture),
            60,
        );
        assert_eq!(r.code(), Some(1), "{}", r.describe());
        let n = logged.len();
        assert!(
            r.stderr.contains(&format!(
                "reproduced {n} of {n} logged fault{}",
                if n == 1 { ";" } else { "s;" }
            )),
            "{}",
            r.stderr
        );
        assert_eq!(
            fault_idents(&replay_log),
            logged,
            "the replay's faults are the run's"
        );

        // minimize: down to the few faults that matter.
        let min = dir.join("min.toml");
        let m = run(
            ctl()
                .args(["minimize", "-o"])
                .arg(&min)
                .arg(log)
                .arg("--")
                .arg(&fixture),
            600,
        );
        assert_eq!(m.code(), Some(0), "{}", m.describe());
        let text = std::fs::read_to_string(&min).unwrap();
        let kept = text.lines().filter(|l| *l == "[[inject]]").count();
        // At least a reset mid-response and a refused reconnect; at most a few more that shape
        // the path to them (keys count connections, so earlier resets and refusals that led to
        // the failing connection stay, as does the short read that put the reset mid-response).
        assert!(
            (2..=12).contains(&kept) && kept < n,
            "{kept} of {n} faults kept: {text}"
        );
        assert!(
            m.stderr.contains(&format!("{n} faults → {kept} faults")),
            "{}",
            m.stderr
        );
        assert!(text.contains("\"ECONNRESET\"") && text.contains("\"ECONNREFUSED\""));
        assert!(
            text.contains("# The original run: seed"),
            "it names its origin"
        );

        // The frozen policy fails every time, under chaos-ctl and as plain LD_PRELOAD.
        for i in 0..20 {
            let r = run(
                ctl()
                    .args(["run", "-q", "--log"])
                    .arg(dir.join("frozen.jsonl"))
                    .arg("--policy")
                    .arg(&min)
                    .arg("--")
                    .arg(&fixture),
                30,
            );
            assert_eq!(r.code(), Some(1), "frozen run {i}: {}", r.describe());
            assert!(r.stderr.contains("corrupted after a refused reconnect"));
        }
        let r = run(&mut preloaded(&fixture, &min, &dir.join("plain.jsonl")), 30);
        assert_eq!(
            r.code(),
            Some(1),
            "CHAOS_POLICY + LD_PRELOAD: {}",
            r.describe()
        );
    }
}

#[test]
fn replay_of_a_threaded_run_reproduces_every_fault_20_times() {
    let dir = TempDir::new("replay-threads");
    let fixture = compile_c("echo_threads", dir.path(), &[]);
    let policy = dir.write("policy.toml", THREADED_WRITES_POLICY);
    let original = dir.join("original.jsonl");
    let r = run(
        ctl()
            .args(["run", "-q", "--seed", "11", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&original)
            .arg("--")
            .arg(&fixture),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let logged = fault_idents(&original);
    assert!(logged.len() > 20, "plenty of faults: {}", logged.len());
    let n = logged.len();
    for i in 0..20 {
        let replay_log = dir.join(&format!("replay-{i}.jsonl"));
        let r = run(
            ctl()
                .args(["replay", "-q", "--log"])
                .arg(&replay_log)
                .arg(&original)
                .arg("--")
                .arg(&fixture),
            60,
        );
        assert_eq!(r.code(), Some(0), "replay {i}: {}", r.describe());
        assert!(
            r.stderr.contains(&format!("reproduced {n} of {n}")),
            "replay {i}: {}",
            r.stderr
        );
        assert_eq!(fault_idents(&replay_log), logged, "replay {i}");
    }
}

#[test]
fn a_sweep_of_200_seeds_runs_in_parallel_and_writes_valid_junit() {
    let dir = TempDir::new("sweep200");
    let fixture = compile_c("coin", dir.path(), &[]);
    let policy = dir.write(
        "coin.toml",
        "[[rules]]\non = \"recv\"\nfd = \"unix\"\nprobability = 0.03\nfault = \"ECONNRESET\"\n",
    );
    let trace = dir.join("trace");
    let junit = dir.join("junit.xml");
    let out = dir.join("out");
    let r = run(
        ctl()
            .args([
                "sweep",
                "--seeds",
                "1..200",
                "-j",
                "2",
                "--keep-going",
                "--policy",
            ])
            .arg(&policy)
            .arg("--junit")
            .arg(&junit)
            .arg("--out")
            .arg(&out)
            .arg("--")
            .arg(&fixture)
            .env("COIN_TRACE", &trace),
        600,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 200);
    assert_eq!(suite.attribute("tests"), Some("200"));
    let failed: BTreeSet<String> = cases
        .iter()
        .filter(|c| c.children().any(|f| f.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap().to_string())
        .collect();
    assert_eq!(
        suite.attribute("failures"),
        Some(failed.len().to_string().as_str())
    );
    assert!((1..200).contains(&failed.len()), "{failed:?}");
    // The failing seeds, and only they, kept their logs.
    let kept: BTreeSet<String> = kept_logs(&out)
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            format!("seed {}", stem.trim_start_matches("seed-"))
        })
        .collect();
    assert_eq!(kept, failed);

    // Two at a time: some runs overlapped.
    let mut spans: Vec<(u64, u64)> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(spans.len(), 200);
    spans.sort();
    assert!(
        spans.windows(2).any(|w| w[1].0 < w[0].1),
        "no two runs overlapped"
    );
}

#[test]
fn partitions_split_a_sweep_without_gaps_or_overlap() {
    let dir = TempDir::new("sweep-shards");
    let fixture = compile_c("coin", dir.path(), &[]);
    let none = dir.write("none.toml", "");
    let mut seen = Vec::new();
    for k in 1..=3 {
        let junit = dir.join(&format!("shard-{k}.xml"));
        let r = run(
            ctl()
                .args([
                    "sweep",
                    "--seeds",
                    "1..10",
                    "--partition",
                    &format!("{k}/3"),
                ])
                .arg("--policy")
                .arg(&none)
                .arg("--junit")
                .arg(&junit)
                .arg("--out")
                .arg(dir.join("out"))
                .arg("--")
                .arg(&fixture),
            120,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        let xml = std::fs::read_to_string(&junit).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        seen.extend(
            doc.descendants()
                .filter(|n| n.has_tag_name("testcase"))
                .map(|n| n.attribute("name").unwrap().to_string()),
        );
    }
    seen.sort();
    let mut all: Vec<String> = (1..=10).map(|s| format!("seed {s}")).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn a_sweep_stops_at_the_first_failure_unless_keep_going() {
    let dir = TempDir::new("sweep-stop");
    let fixture = compile_c("coin", dir.path(), &[]);
    let always = dir.write(
        "always.toml",
        "[[rules]]\non = \"recv\"\nfd = \"unix\"\nfault = \"ECONNRESET\"\n",
    );
    let r = run(
        ctl()
            .args(["sweep", "--seeds", "1..50", "-j", "1", "--policy"])
            .arg(&always)
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--")
            .arg(&fixture),
        120,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.stderr.contains("sweep ran 1 of 50 seeds"), "{}", r.stderr);
}

#[test]
fn bad_input_to_the_regression_commands() {
    let dir = TempDir::new("regression-bad");
    let fixture = compile_c("coin", dir.path(), &[]);
    let not_a_log = dir.write("x.jsonl", "{\"ev\":\"fault\"}\n");
    let r = run(ctl().arg("freeze").arg(&not_a_log), 30);
    assert_eq!(r.code(), Some(125));
    assert!(r.stderr.contains("not a chaos event log"), "{}", r.stderr);

    for (args, says) in [
        (vec!["--seeds", "9..1"], "expected A..B"),
        (
            vec!["--seeds", "1..5", "--partition", "4/3"],
            "expected K/N",
        ),
        (
            vec!["--seeds", "1..5", "--timeout", "soon"],
            "not a duration",
        ),
    ] {
        let r = run(ctl().arg("sweep").args(&args).arg("--").arg(&fixture), 30);
        assert_eq!(r.code(), Some(125), "{args:?}: {}", r.describe());
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }

    // A run that passes has nothing to minimize: a distinct status, and a reason.
    let none = dir.write("none.toml", "");
    let log = dir.join("pass.jsonl");
    let r = run(
        ctl()
            .args(["run", "-q", "--policy"])
            .arg(&none)
            .arg("--log")
            .arg(&log)
            .arg("--")
            .arg(&fixture),
        30,
    );
    assert_eq!(r.code(), Some(0));
    let r = run(ctl().arg("minimize").arg(&log).arg("--").arg(&fixture), 60);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.stderr.contains("nothing to shrink"), "{}", r.stderr);

    // A frozen policy with a bad key is refused with file:line:col.
    let bad = dir.write(
        "bad.toml",
        "[[inject]]\nprocess = \"0123456789abcdef\"\nconn = \"tcp-sideways#0\"\nat = \"rx@0#0\"\nfault = \"reset\"\n",
    );
    let r = run(ctl().arg("validate").arg(&bad), 30);
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr.contains("bad.toml:3:8") && r.stderr.contains("expected KIND-ROLE#N"),
        "{}",
        r.stderr
    );
}
