//! `chaos-ctl explore` under the seccomp backend: static and Go programs, which the shim cannot
//! reach. The supervisor's census finds each call site on the held thread's stack; a static build
//! of the explore fixture must give the same three failures as its dynamic build, and a Go program's
//! planted bug must be found at its own call site.

use chaos_tests::{TempDir, bins, build_go, compile_c, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn explore(dir: &TempDir, out: &str, exe: &Path, timeout: &str) -> (chaos_tests::Finished, Value) {
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .args([
            "explore",
            "-j",
            "2",
            "--timeout",
            timeout,
            "--json",
            "--out",
        ])
        .arg(dir.join(out))
        .arg("--")
        .arg(exe)
        .arg(dir.path());
    let done = run(&mut cmd, 600);
    let json: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("explore's --json: {e}\n{}", done.describe()));
    (done, json)
}

/// Each distinct failure as (op, fault, verdict), `openat` named as the shim names an open.
fn failures(json: &Value) -> BTreeSet<(String, String, String)> {
    json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let op = f["point"].as_str().unwrap().split('@').next().unwrap();
            (
                op.trim_end_matches("at").to_string(),
                f["fault"].as_str().unwrap().to_string(),
                f["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn settings(dir: &TempDir) {
    dir.write("optional.cfg", "level = 3\n");
    dir.write("required.cfg", "name = x\n");
}

#[test]
fn a_static_build_gives_the_same_failures_as_the_dynamic_one() {
    let dir = TempDir::new("explore-static");
    settings(&dir);
    let dynamic = compile_c("explore_bugs", dir.path(), &[]);
    let static_dir = dir.join("static");
    std::fs::create_dir_all(&static_dir).unwrap();
    let fixed = compile_c("explore_bugs", &static_dir, &["-static"]);
    let (done_d, json_d) = explore(&dir, "dynamic", &dynamic, "3s");
    let (done_s, json_s) = explore(&dir, "static", &fixed, "3s");
    assert_eq!(
        done_s.code(),
        Some(1),
        "failures found: {}",
        done_s.describe()
    );
    // The static build really ran under the seccomp backend.
    let discovery = std::fs::read_to_string(dir.join("static/runs/discover.jsonl")).unwrap();
    assert!(discovery.contains(r#""backend":"seccomp""#), "{discovery}");
    let expected: BTreeSet<(String, String, String)> = [
        ("open", "\"EACCES\"", "crash"),
        ("recv", "\"EINTR\"", "hang"),
        ("write", "{ short = \"1\" }", "fail"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(failures(&json_d), expected, "{}", done_d.stderr);
    assert_eq!(failures(&json_s), expected, "{}", done_s.stderr);
    // Each at a call site of the program's own code, named by its file and an offset.
    let object = format!("@{}+0x", fixed.display());
    for f in json_s["failures"].as_array().unwrap() {
        assert!(f["point"].as_str().unwrap().contains(&object), "{f}");
        assert_eq!(f["reproduced"], true, "{f}");
    }
    // The handled opens and receives are points of their own, as in the dynamic build (writes
    // differ: the static build's census sees stdio's own writes too).
    let count = |json: &Value, op: &str| {
        json["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["op"].as_str().unwrap().trim_end_matches("at") == op)
            .count()
    };
    for op in ["open", "recv"] {
        assert_eq!(count(&json_s, op), count(&json_d, op), "{op} points");
    }
}

/// A Go program under the seccomp backend: its one planted bug (a panic when the open of
/// required.cfg fails) is found at that open's call site in main, and the handled open of
/// optional.cfg is a point of its own that passes every fault.
#[test]
fn a_go_programs_planted_bug_is_found_under_seccomp() {
    let Some(exe) = build_go("explore_bugs") else {
        return;
    };
    let dir = TempDir::new("explore-go");
    settings(&dir);
    let (done, json) = explore(&dir, "out", &exe, "10s");
    assert_eq!(done.code(), Some(1), "failures found: {}", done.describe());
    let found = json["failures"].as_array().unwrap();
    assert_eq!(found.len(), 1, "only the planted bug: {}", done.stderr);
    let bug = &found[0];
    assert_eq!(bug["verdict"], "fail", "{bug}");
    assert!(bug["tail"].as_str().unwrap().contains("panic:"), "{bug}");
    assert_eq!(bug["reproduced"], true, "{bug}");
    let points = json["points"].as_array().unwrap();
    let open_of = |name: &str| -> &Value {
        points
            .iter()
            .find(|p| p["target"].as_str().is_some_and(|t| t.ends_with(name)))
            .unwrap_or_else(|| panic!("no point opens {name}: {points:?}"))
    };
    let (required, optional) = (open_of("required.cfg"), open_of("optional.cfg"));
    assert_eq!(bug["point"], required["point"], "{bug}");
    assert_ne!(required["point"], optional["point"]);
    assert_eq!(optional["failed"], 0, "{optional}");
    assert!(optional["passed"].as_u64().unwrap() > 0, "{optional}");
    // Both in the program's own code (main), not in Go's os or syscall packages: two call
    // sites of one object.
    for p in [required, optional] {
        assert!(
            p["point"]
                .as_str()
                .unwrap()
                .contains(&format!("@{}+0x", exe.display())),
            "{p}"
        );
    }
}

/// A static program that execs another at the same addresses: the census names the second
/// one's open by the second program's file, not by the mappings it read for the first (it reads
/// a process's mappings again when the process is a new one: an exec gives it a new key).
#[test]
fn an_exec_at_the_same_addresses_names_the_new_programs_sites() {
    let dir = TempDir::new("census-exec");
    let file = dir.write("a.txt", "a\n");
    let (first_dir, second_dir) = (dir.join("first"), dir.join("second"));
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let first = compile_c("census_exec", &first_dir, &["-static"]);
    let second = compile_c("census_exec", &second_dir, &["-static"]);
    let log = dir.join("census.jsonl");
    let mut cmd = Command::new(&bins().ctl);
    cmd.env("CHAOS_SHIM", &bins().shim)
        .env("CHAOS_CENSUS", "1")
        .args(["run", "-q", "--backend", "seccomp", "--log"])
        .arg(&log)
        .arg("--")
        .args([&first, &file, &second]);
    let done = run(&mut cmd, 60);
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    let text = std::fs::read_to_string(&log).unwrap();
    let opens: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["ev"] == "point" && e["op"].as_str().is_some_and(|o| o.starts_with("open")))
        .collect();
    for exe in [&first, &second] {
        assert!(
            opens.iter().any(|e| e["object"] == exe.to_str().unwrap()),
            "an open named in {}: {opens:?}",
            exe.display()
        );
    }
}
