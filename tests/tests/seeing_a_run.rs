//! Seeing a run. `report --html` and `run --html`: the timeline page of a real system run (the kv
//! example under attrition, with a partition and a fault rule), rendered in headless Chromium. The
//! page's own self-check (`#selftest`) writes what it drew into the DOM, which `--dump-dom` hands
//! back: one lane per process, every fault drawn (as a point or in a bin), the partition at its
//! logged time, a click on a fault showing its key, no script errors. A screenshot is kept under
//! `target/html-report/`. And `run --progress`: a line per process event as it happens.

use chaos_tests::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Chromium, headless, on `url`, with `args`; its stdout. Killed (failing the test) after 90 s.
fn chromium(args: &[&str], url: &str) -> String {
    let browser = require("chromium").expect("chromium");
    let profile = TempDir::new("chromium-profile");
    let r = run(
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url),
        90,
    );
    assert_eq!(r.code(), Some(0), "chromium failed: {}", r.describe());
    r.stdout
}

/// What the page's self-check drew, read from the DOM after its script ran.
fn self_check(page: &Path) -> Value {
    let url = format!("file://{}#selftest", page.display());
    let dom = chromium(&["--virtual-time-budget=5000", "--dump-dom"], &url);
    let start = dom
        .find("<pre id=\"self-check\">")
        .unwrap_or_else(|| panic!("no self-check in the DOM: {}", &dom[..dom.len().min(2000)]))
        + "<pre id=\"self-check\">".len();
    let end = start + dom[start..].find("</pre>").expect("self-check ends");
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("self-check is not JSON ({e}): {text}"))
}

fn kept(name: &str) -> std::path::PathBuf {
    let dir = workspace_root().join("target/html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_system_runs_page_draws_its_processes_faults_and_partition_in_a_browser() {
    let dir = TempDir::new("html-kv");
    let policy = dir.write(
        "kv.toml",
        &format!(
            "{}\n[[partition]]\nbetween = [[\"kv#0\"], [\"kv#1\", \"kv#2\"]]\n\
             window = [\"1s\", \"2.5s\"]\n\n[[rules]]\nname = \"kv-short-reads\"\non = \"recv\"\n\
             fault = {{ short = \"1..20\" }}\n",
            std::fs::read_to_string(workspace_root().join("examples/kv/system.toml")).unwrap()
        ),
    );
    let log = dir.join("run.jsonl");
    let page = dir.join("run.html");
    let r = run(
        Command::new(&bins().ctl)
            .current_dir(workspace_root())
            .env("KV_KEYS", "40")
            .args(["run", "-q", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .arg("--html")
            .arg(&page)
            .args(["--", "python3", "examples/kv/workload.py"]),
        180,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    let check = self_check(&page);
    assert_eq!(
        check["errors"],
        serde_json::json!([]),
        "no script errors: {check}"
    );

    // One lane per process of the system, and one for every other process that got a fault.
    let lanes: BTreeSet<String> = check["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    for name in ["kv#0", "kv#1", "kv#2", "workload"] {
        assert!(lanes.contains(name), "a lane for {name}: {lanes:?}");
    }
    // Every fault is drawn, as a point or counted in a bin.
    let faults = fault_events(&events).len();
    assert!(faults > 0, "the rule fired");
    assert_eq!(check["faults"].as_u64(), Some(faults as u64));
    let drawn = check["drawn_all"].as_u64().unwrap() + check["binned_all"].as_u64().unwrap();
    assert_eq!(drawn, faults as u64, "{check}");

    // The partition, at the times the log gives it (ms since the log's first line).
    let t0 = events.iter().filter_map(Event::ts_ns).min().unwrap();
    let at = |what: &str| {
        events
            .iter()
            .filter_map(Event::as_control)
            .find(|c| c.what == what && c.by.is_some())
            .map(|c| c.ts_ns)
            .map(|t| (t - t0) as f64 / 1e6)
            .unwrap_or_else(|| panic!("the log has a {what}"))
    };
    let window = check["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["what"] == "partition")
        .unwrap_or_else(|| panic!("a partition window: {check}"));
    assert!((window["from"].as_f64().unwrap() - at("partition")).abs() < 0.01);
    assert!((window["to"].as_f64().unwrap() - at("heal")).abs() < 0.01);
    assert_eq!(
        window["lanes"].as_array().unwrap().len(),
        3,
        "it cuts kv#0..2"
    );

    // Within a lane, faults sit on their connection's row: the replicas served many connections.
    assert!(
        check["conn_rows"].as_u64().unwrap() > 1,
        "faults grouped by connection: {check}"
    );

    // A click on a fault shows that fault's key.
    let keys: BTreeSet<&str> = fault_events(&events)
        .into_iter()
        .filter_map(|f| f.key.as_deref())
        .collect();
    let clicked = check["clicked_key"]
        .as_str()
        .unwrap_or_else(|| panic!("{check}"));
    assert!(keys.contains(clicked), "{clicked} is a fault's key");
    let details = check["details"].as_str().unwrap();
    assert!(details.contains("rule: kv-short-reads"), "{details}");
    // The rule's account (its `rule` line: draws, injections, refusals) comes with the fault.
    assert!(details.contains("rule account: drawn "), "{details}");

    let shot = kept("kv-system.png");
    let url = format!("file://{}", page.display());
    chromium(&[&format!("--screenshot={}", shot.display())], &url);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot"
    );
}

#[test]
fn a_100000_fault_log_is_binned_and_still_drawn_whole() {
    let dir = TempDir::new("html-big");
    let mut text = String::from(
        r#"{"ev":"start","ts_ns":1000000000,"pid":7,"ppid":1,"proc":"00000000000000aa","via":"exec","exe":"/usr/bin/client","argv":["client"],"seed":1,"policy":"p.toml"}"#,
    );
    text.push('\n');
    for i in 0..100_000u64 {
        text.push_str(&format!(
            r#"{{"ev":"fault","ts_ns":{},"pid":7,"tid":7,"proc":"00000000000000aa","op":"recv","fd":3,"peer":"127.0.0.1:80","rule":"r{}","fault":"short","requested":100,"returned":40,"key":"00000000000000aa-{:016x}/r0/rx@{}#0"}}"#,
            1_000_000_000 + i * 100_000,
            i % 3,
            i / 1000,
            i
        ));
        text.push('\n');
    }
    let log = dir.write("big.jsonl", &text);
    let page = dir.join("big.html");
    let r = run(
        Command::new(&bins().ctl)
            .args(["report", "--html"])
            .arg(&log)
            .arg("-o")
            .arg(&page),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let check = self_check(&page);
    assert_eq!(check["errors"], serde_json::json!([]), "{check}");
    assert_eq!(check["faults"].as_u64(), Some(100_000));
    assert_eq!(
        check["mode_all"], "bins",
        "zoomed out, 100,000 faults are binned"
    );
    assert_eq!(
        check["binned_all"].as_u64(),
        Some(100_000),
        "the bins add up"
    );
    assert_eq!(check["mode_zoomed"], "points", "zoomed in, they are points");
    assert!(check["clicked_key"].as_str().is_some(), "{check}");
    // Not asserted (tests never time things); printed for the record.
    eprintln!(
        "100,000 faults: page ready {} ms after navigation",
        check["ready_ms"]
    );
}

#[test]
fn report_html_refuses_what_is_not_a_log_and_needs_html_for_output() {
    let dir = TempDir::new("html-bad");
    let not_a_log = dir.write("notes.txt", "hello\n");
    let r = run(
        Command::new(&bins().ctl)
            .args(["report", "--html"])
            .arg(&not_a_log)
            .arg("-o")
            .arg(dir.join("x.html")),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("not a chaos event log"), "{}", r.stderr);
    assert!(!dir.join("x.html").exists(), "nothing written");
    let r = run(
        Command::new(&bins().ctl)
            .args(["report", "-o", "x.html"])
            .arg(&not_a_log),
        20,
    );
    assert_eq!(r.code(), Some(125), "a usage error: {}", r.describe());
    assert!(r.stderr.contains("--html"), "{}", r.stderr);
}

#[test]
fn run_progress_says_each_process_event_as_it_happens_and_needs_a_system() {
    let python = require("python3").expect("python3");
    let dir = TempDir::new("progress");
    let policy = dir.write(
        "web.toml",
        &format!(
            "seed = 1\n[[process]]\nname = \"web\"\n\
             cmd = [\"{}\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"{{port}}\"]\n\
             ready = \"tcp:{{port}}\"\n",
            python.display()
        ),
    );
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "-q", "--progress", "--duration", "1s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("p.jsonl")),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("chaos: "))
        .collect();
    let logged = read_events(&dir.join("p.jsonl"))
        .iter()
        .filter_map(Event::as_process)
        .count();
    assert_eq!(said.len(), logged, "a line per process event: {}", r.stderr);
    assert!(
        said.iter()
            .any(|l| l.contains(" web ") && l.contains(" ready")),
        "{said:?}"
    );

    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--progress", "--log"])
            .arg(dir.join("q.jsonl"))
            .args(["--", "true"]),
        30,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("[[process]]"), "{}", r.stderr);
}
