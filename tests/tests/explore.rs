//! `chaos-ctl explore`: every fault point of a program, every fault Linux allows there, one run
//! each. The fixture (tests/fixtures/explore_bugs.c) plants three error-path bugs among calls
//! that handle their errors; explore must find exactly those three, each at its own call site,
//! with a frozen policy that reproduces it, and report every handled site as passing.

use chaos_tests::{TempDir, bins, compile_c, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

/// The fixture with its two settings files, and where explore writes.
fn fixture(dir: &TempDir) -> std::path::PathBuf {
    let exe = compile_c("explore_bugs", dir.path(), &[]);
    dir.write("optional.cfg", "level = 3\n");
    dir.write("required.cfg", "name = x\n");
    exe
}

fn explore(dir: &TempDir, out: &str, exe: &Path, extra: &[&str]) -> (chaos_tests::Finished, Value) {
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .args(["explore", "-j", "2", "--timeout", "3s", "--json", "--out"])
        .arg(dir.join(out))
        .args(extra)
        .arg("--")
        .arg(exe)
        .arg(dir.path());
    let done = run(&mut cmd, 600);
    let json: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("explore's --json: {e}\n{}", done.describe()));
    (done, json)
}

/// (place of the point, verdict) of each distinct failure.
fn failures(json: &Value) -> BTreeSet<(String, String)> {
    json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["place"].as_str().unwrap().to_string(),
                f["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn explore_finds_the_three_planted_bugs_and_nothing_else() {
    let dir = TempDir::new("explore-bugs");
    let exe = fixture(&dir);
    let (done, json) = explore(&dir, "out", &exe, &[]);
    assert_eq!(done.code(), Some(1), "failures found: {}", done.describe());
    let failures_found = json["failures"].as_array().unwrap();
    let runs = json["runs"].as_array().unwrap();
    let fault_of = |f: &Value| f["fault"].as_str().unwrap().to_string();

    // Each bug, at the call site it was planted at, with the fault that triggers it.
    let crash = failures_found
        .iter()
        .find(|f| f["verdict"] == "crash")
        .unwrap_or_else(|| panic!("no crash found: {}", done.stderr));
    assert!(
        crash["point"].as_str().unwrap().starts_with("open@"),
        "{crash}"
    );
    assert_eq!(fault_of(crash), "\"EACCES\"", "{crash}");
    assert!(
        crash["outcome"].as_str().unwrap().contains("SIGSEGV"),
        "{crash}"
    );
    let hang = failures_found
        .iter()
        .find(|f| f["verdict"] == "hang")
        .unwrap_or_else(|| panic!("no hang found: {}", done.stderr));
    assert!(
        hang["point"].as_str().unwrap().starts_with("recv@"),
        "{hang}"
    );
    assert_eq!(fault_of(hang), "\"EINTR\"", "{hang}");
    let loss = failures_found
        .iter()
        .find(|f| f["verdict"] == "fail")
        .unwrap_or_else(|| panic!("no data loss found: {}", done.stderr));
    assert!(
        loss["point"].as_str().unwrap().starts_with("write@"),
        "{loss}"
    );
    assert!(fault_of(loss).contains("short"), "{loss}");
    assert!(
        loss["tail"].as_str().unwrap().contains("data lost"),
        "{loss}"
    );
    assert_eq!(
        failures_found.len(),
        3,
        "only the planted bugs fail: {}",
        done.stderr
    );
    // Three distinct call sites, each named by the program's file and an offset in it.
    let sites: BTreeSet<&str> = failures_found
        .iter()
        .map(|f| f["point"].as_str().unwrap())
        .collect();
    assert_eq!(sites.len(), 3, "{sites:?}");
    let object = format!("@{}+0x", exe.display());
    assert!(sites.iter().all(|s| s.contains(&object)), "{sites:?}");

    // The handled sites: the other open, the first recv, the header's write. Each was tried
    // with faults that fired, and every one of those runs passed.
    let points = json["points"].as_array().unwrap();
    for (op, handled) in [("open", 1), ("recv", 1), ("write", 1)] {
        let of_op: Vec<&Value> = points.iter().filter(|p| p["op"] == op).collect();
        assert_eq!(of_op.len(), handled + 1, "{op} points: {of_op:?}");
        let clean: Vec<&&Value> = of_op.iter().filter(|p| p["failed"] == 0).collect();
        assert_eq!(clean.len(), handled, "{op}: {of_op:?}");
        for p in clean {
            assert!(p["passed"].as_u64().unwrap() > 0, "a fault fired at {p}");
        }
    }
    // A refused fault is not a pass: EINTR cannot interrupt a regular file's read.
    assert!(
        runs.iter().any(|r| r["verdict"] == "not-possible-here"),
        "some injection was refused by the realism model"
    );

    // Each frozen policy reproduces its failure, three times out of three.
    for f in failures_found {
        assert_eq!(f["reproduced"], true, "{f}");
        let policy = f["policy"].as_str().unwrap();
        for _ in 0..3 {
            let mut cmd = Command::new(&bins().ctl);
            cmd.env("CHAOS_SHIM", &bins().shim)
                .args(["run", "-q", "--policy", policy, "--log"])
                .arg(dir.join("replay.jsonl"))
                .arg("--")
                .arg(&exe)
                .arg(dir.path());
            let verdict = f["verdict"].as_str().unwrap();
            let secs = if verdict == "hang" { 3 } else { 60 };
            let child = chaos_tests::own_group(&mut cmd)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut child = child;
            let start = std::time::Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break Some(s);
                }
                if start.elapsed().as_secs() >= secs {
                    chaos_tests::kill_group(&mut child);
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            match verdict {
                "hang" => assert!(status.is_none(), "{policy} still hangs: {status:?}"),
                // chaos-ctl run dies of the program's signal, as the program did.
                "crash" => assert_eq!(status.unwrap().signal(), Some(libc::SIGSEGV), "{policy}"),
                _ => assert_eq!(status.unwrap().code(), Some(1), "{policy}"),
            }
        }
    }

    // The same program explored again: the same points, runs and failures.
    let (_, again) = explore(&dir, "again", &exe, &[]);
    let table = |j: &Value| -> Vec<(String, String)> {
        j["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    format!("{} {}", r["point"], r["fault"]),
                    r["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(table(&json), table(&again), "two explores, one table");
    assert_eq!(failures(&json), failures(&again));
}

#[test]
fn explore_resumes_from_its_output_and_stops_at_the_budget() {
    let dir = TempDir::new("explore-resume");
    let exe = fixture(&dir);
    let (done, json) = explore(&dir, "out", &exe, &["--budget", "5"]);
    assert_eq!(json["runs"].as_array().unwrap().len(), 5, "{}", done.stderr);
    assert!(
        !json["unexplored"].as_array().unwrap().is_empty(),
        "the budget left runs: {}",
        done.stderr
    );
    assert!(done.stderr.contains("left unexplored"), "{}", done.stderr);
    // A second explore with the same --out keeps the five runs it has (their saved results).
    let before: Vec<_> = std::fs::read_dir(dir.join("out/runs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    let (_, again) = explore(&dir, "out", &exe, &["--budget", "5"]);
    let after: Vec<_> = std::fs::read_dir(dir.join("out/runs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after, "no run was made again");
    assert_eq!(json["runs"], again["runs"]);
}

#[test]
fn explore_refuses_bad_input_with_125() {
    let dir = TempDir::new("explore-bad");
    for (args, says) in [
        (
            &["explore", "--partition", "3/2", "--", "true"][..],
            "--partition `3/2`",
        ),
        (&["explore", "--budget", "0", "--", "true"][..], "--budget"),
        (
            &["explore", "--timeout", "soon", "--", "true"][..],
            "--timeout",
        ),
    ] {
        let mut cmd = Command::new(&bins().ctl);
        cmd.env("CHAOS_SHIM", &bins().shim)
            .current_dir(dir.path())
            .args(args);
        let done = run(&mut cmd, 60);
        assert_eq!(done.code(), Some(125), "{args:?}: {}", done.describe());
        assert!(done.stderr.contains(says), "{args:?}: {}", done.stderr);
    }
    // A command that is not there: 127, as a shell and `run` say it.
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .current_dir(dir.path())
        .args(["explore", "--", "/nonexistent/program"]);
    let done = run(&mut cmd, 60);
    assert_eq!(done.code(), Some(127), "{}", done.describe());
    assert!(
        done.stderr.contains("/nonexistent/program"),
        "{}",
        done.stderr
    );
    // No command at all is a usage error, like every other command's.
    let done = run(Command::new(&bins().ctl).arg("explore"), 60);
    assert_ne!(done.code(), Some(0), "{}", done.describe());
    assert!(done.stderr.contains("CMD"), "{}", done.stderr);
    // A program that fails with no fault injected cannot be explored.
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .current_dir(dir.path())
        .args(["explore", "--", "false"]);
    let done = run(&mut cmd, 60);
    assert_eq!(done.code(), Some(125), "{}", done.describe());
    assert!(
        done.stderr.contains("needs a run that passes"),
        "{}",
        done.stderr
    );
}

/// An interpreter's calls all come from its own few call sites: there a point is the op, what it
/// acts on and its ordinal, so two opens of two files by one line of Python are two points.
#[test]
fn an_interpreted_programs_points_are_its_targets() {
    let Some(python) = chaos_tests::require("python3") else {
        return;
    };
    let dir = TempDir::new("explore-python");
    dir.write("a.cfg", "a\n");
    dir.write("b.cfg", "b\n");
    let script = dir.write(
        "two_files.py",
        "import os, sys\nfor name in ('a.cfg', 'b.cfg'):\n    \
         with open(os.path.join(sys.argv[1], name)) as f:\n        f.read()\n",
    );
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .args([
            "explore",
            "--budget",
            "1",
            "--timeout",
            "20s",
            "--json",
            "--out",
        ])
        .arg(dir.join("out"))
        .arg("--")
        .arg(python)
        .arg(&script)
        .arg(dir.path());
    let done = run(&mut cmd, 300);
    let json: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("explore's --json: {e}\n{}", done.describe()));
    let opened: BTreeSet<String> = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["op"] == "open")
        .filter_map(|p| p["target"].as_str())
        .filter_map(|t| t.rsplit('/').next().map(str::to_string))
        .collect();
    for name in ["a.cfg", "b.cfg"] {
        assert!(
            opened.contains(name),
            "{name} in {opened:?}\n{}",
            done.stderr
        );
    }
}

/// A Python program's planted bug (its open of required.cfg expects only ENOENT): found at that
/// open, named by the file it acts on and its ordinal there, and no handled call is reported.
#[test]
fn a_python_programs_planted_bug_is_found() {
    let Some(python) = chaos_tests::require("python3") else {
        return;
    };
    // The interpreter itself, not a wrapper script in front of it (pyenv's is a shell script,
    // whose own calls would be explored too).
    let real = run(
        Command::new(python).args(["-c", "import sys; print(sys.executable)"]),
        60,
    );
    let python = real.stdout.trim().to_string();
    let dir = TempDir::new("explore-python-bug");
    dir.write("optional.cfg", "level = 3\n");
    dir.write("required.cfg", "name = x\n");
    let script = chaos_tests::workspace_root().join("tests/fixtures/explore_bugs.py");
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .args(["explore", "-j", "2", "--timeout", "20s", "--json", "--out"])
        .arg(dir.join("out"))
        .arg("--")
        .arg(&python)
        .arg("-S")
        .arg(&script)
        .arg(dir.path());
    let done = run(&mut cmd, 900);
    let json: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("explore's --json: {e}\n{}", done.describe()));
    assert_eq!(done.code(), Some(1), "failures found: {}", done.describe());
    let found = json["failures"].as_array().unwrap();
    assert_eq!(found.len(), 1, "only the planted bug: {}", done.stderr);
    let bug = &found[0];
    assert_eq!(
        bug["point"],
        "open@file:{}#opens#0".replace("{}", &dir.join("required.cfg").to_string_lossy()),
        "{bug}"
    );
    assert_eq!(bug["verdict"], "fail", "{bug}");
    assert!(bug["tail"].as_str().unwrap().contains("Error"), "{bug}");
    assert_eq!(bug["reproduced"], true, "{bug}");
    // The handled open of optional.cfg was tried, its faults fired, and every run passed.
    let optional = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["op"] == "open"
                && p["target"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("optional.cfg"))
        })
        .unwrap_or_else(|| panic!("no open of optional.cfg: {}", done.stderr));
    assert_eq!(optional["failed"], 0, "{optional}");
    assert!(optional["passed"].as_u64().unwrap() > 0, "{optional}");
    // What the program wrote to its output after a fault (a traceback) made no new points.
    assert!(
        json["unexplored"].as_array().unwrap().is_empty(),
        "{}",
        done.stderr
    );
}

/// `--nth 2` puts each fault on the second time a point is reached: the loop's open, fine on
/// its first pass whatever error it gets, aborts on its second. Under both backends: the
/// dynamic build under the shim, the static one under seccomp.
#[test]
fn nth_puts_the_fault_on_a_later_reach_of_the_point() {
    let dir = TempDir::new("explore-nth");
    for i in 0..3 {
        dir.write(&format!("part{i}.cfg"), "x\n");
    }
    let static_dir = dir.join("static");
    std::fs::create_dir_all(&static_dir).unwrap();
    let builds = [
        ("dynamic", compile_c("explore_nth", dir.path(), &[])),
        (
            "static",
            compile_c("explore_nth", &static_dir, &["-static"]),
        ),
    ];
    for (build, exe) in builds {
        let (first, json_first) = explore(&dir, &format!("{build}-first"), &exe, &[]);
        assert_eq!(first.code(), Some(0), "{build}: {}", first.describe());
        assert!(json_first["failures"].as_array().unwrap().is_empty());
        let (second, json) = explore(&dir, &format!("{build}-second"), &exe, &["--nth", "2"]);
        assert_eq!(second.code(), Some(1), "{build}: {}", second.describe());
        let found = json["failures"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{build}: {}", second.stderr);
        let bug = &found[0];
        assert_eq!(bug["verdict"], "crash", "{bug}");
        assert!(
            bug["outcome"].as_str().unwrap().contains("SIGABRT"),
            "{bug}"
        );
        assert!(bug["point"].as_str().unwrap().starts_with("open"), "{bug}");
        // The same call site as the first explore's open point, keyed at its second reach:
        // the open of another file.
        let open_of = |j: &Value| -> Value {
            j["points"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["op"].as_str().unwrap().starts_with("open"))
                .unwrap()
                .clone()
        };
        let (at_first, at_second) = (open_of(&json_first), open_of(&json));
        assert_eq!(bug["point"], at_first["point"], "{build}");
        assert_ne!(at_first["key"], at_second["key"], "{build}");
    }
}
