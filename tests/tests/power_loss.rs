//! Power loss as a system event: under `[durability] crash = "process"` a SIGKILL of a replica
//! keeps its page cache, while a `power-loss` (attrition kind, `[[nemesis]]` entry, or
//! `chaos-ctl control power-loss`) undoes its unsynced changes before it is restarted.

use chaos_engine::event::schema::ProcessEvent;
use chaos_tests::*;
use std::path::Path;

fn python() -> std::path::PathBuf {
    require("python3").expect("python3")
}

/// A replica that appends one unsynced line to DATA/log each life, then says so and sleeps.
fn appender_script(data: &Path) -> String {
    format!(
        "import os, sys, time\n\
         fd = os.open({f:?}, os.O_WRONLY | os.O_APPEND)\n\
         os.write(fd, b'life %d\\n' % os.getpid())\n\
         print('wrote', flush=True)\n\
         time.sleep(60)\n",
        f = data.join("log").display().to_string()
    )
}

/// A system of one appender replica under `crash = "process"`, plus `extra` policy text.
fn appender_policy(dir: &TempDir, extra: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("log"), "durable\n").unwrap();
    let script = dir.write("appender.py", &appender_script(&data));
    dir.write(
        "sys.toml",
        &format!(
            "[[process]]\nname = \"app\"\ncmd = [{py:?}, {s:?}]\nready = \"log:^wrote\"\n\
             restart = \"always\"\n\
             [durability]\npath = \"{d}/*\"\ncrash = \"process\"\n{extra}",
            py = python().display().to_string(),
            s = script.display().to_string(),
            d = data.display(),
        ),
    )
}

/// Runs the appender system for `secs`; the lines of DATA/log afterwards, the log, and stderr.
fn run_appender(dir: &TempDir, extra: &str, secs: &str) -> (Vec<String>, Vec<Event>, String) {
    let policy = appender_policy(dir, extra);
    let log = dir.join("sys.jsonl");
    let r = run(
        std::process::Command::new(&bins().ctl)
            .args(["run", "--duration", secs, "--seed", "1", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let content = std::fs::read_to_string(dir.join("data").join("log")).unwrap();
    (
        content.lines().map(str::to_string).collect(),
        read_events(&log),
        r.stderr,
    )
}

fn undone_count(log: &[Event]) -> usize {
    log.iter()
        .filter_map(Event::as_durability)
        .filter(|d| d.what == "undone")
        .count()
}

/// The system's process lines that say `what`, of any process.
fn process_events<'a>(log: &'a [Event], what: &str) -> Vec<&'a ProcessEvent> {
    log.iter()
        .filter_map(Event::as_process)
        .filter(|p| p.what == what)
        .collect()
}

fn nemesis(kind: &str) -> String {
    format!(
        "[[nemesis]]\nat = \"500ms\"\nprocess = \"app\"\nkind = \"{kind}\"\nrecovery = \"100ms\"\n"
    )
}

#[test]
fn a_nemesis_crash_keeps_the_page_cache_and_a_power_loss_undoes_it() {
    let dir = TempDir::new("power-nemesis-crash");
    let (lines, log, _) = run_appender(&dir, &nemesis("crash"), "2s");
    // Both lives' writes: the process died, the machine did not.
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(undone_count(&log), 0);

    let dir = TempDir::new("power-nemesis-power-loss");
    let (lines, log, stderr) = run_appender(&dir, &nemesis("power-loss"), "2s");
    // The first life's unsynced line is gone; the second life's was kept by a graceful end.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "durable");
    assert!(undone_count(&log) >= 1);
    let kill = *process_events(&log, "kill").first().expect("a kill line");
    assert_eq!(kill.kind.as_deref(), Some("power-loss"), "{kill:?}");
    let exit = *process_events(&log, "exit").first().expect("an exit line");
    assert_eq!(exit.kind.as_deref(), Some("power-loss"), "{exit:?}");
    // The summary's power-loss column counts it.
    let header = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("process ") && l.contains("starts"))
        .expect("the summary table");
    let row = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("app "))
        .expect("the app row");
    let col = header
        .split_whitespace()
        .position(|c| c == "power-loss")
        .expect("a power-loss column");
    assert_eq!(
        row.split_whitespace().nth(col),
        Some("1"),
        "{header}\n{row}"
    );
}

#[test]
fn attrition_draws_power_losses_by_their_weight() {
    let dir = TempDir::new("power-attrition");
    let (_, log, _) = run_appender(
        &dir,
        "[attrition]\ngraceful = 0\ncrash = 0\nwipe = 0\npower-loss = 1\n\
         interval = \"400ms..600ms\"\nrecovery = \"50ms..100ms\"\n",
        "2s",
    );
    let kills = process_events(&log, "kill");
    assert!(!kills.is_empty(), "attrition struck");
    assert!(
        kills
            .iter()
            .all(|k| k.kind.as_deref() == Some("power-loss")),
        "{kills:?}"
    );
    assert!(
        undone_count(&log) >= 1,
        "each power loss undid the unsynced line"
    );
    // freeze writes them as `[[nemesis]]` entries of their kind.
    let frozen = run(
        std::process::Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("sys.jsonl")),
        30,
    );
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert_eq!(
        frozen.stdout.matches("kind = \"power-loss\"").count(),
        kills.len(),
        "{}",
        frozen.stdout
    );
}

/// Runs the appender system with a workload shell `script` ($CTL: chaos-ctl, $D: the test's
/// directory, where the replica's output is `sys.run/app.out`); the lines of DATA/log afterwards
/// and the log.
fn run_with_workload(dir: &TempDir, extra: &str, script: &str) -> (Vec<String>, Vec<Event>) {
    let policy = appender_policy(dir, extra);
    let log = dir.join("sys.jsonl");
    let r = run(
        std::process::Command::new(&bins().ctl)
            .args(["run", "-q", "--seed", "1", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log)
            .args(["--", "sh", "-c", script])
            .env("CTL", &bins().ctl)
            .env("D", dir.path()),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let content = std::fs::read_to_string(dir.join("data").join("log")).unwrap();
    (
        content.lines().map(str::to_string).collect(),
        read_events(&log),
    )
}

#[test]
fn control_power_loss_undoes_a_running_replicas_unsynced_writes() {
    let dir = TempDir::new("power-control");
    let (lines, log) = run_with_workload(
        &dir,
        "",
        "\"$CTL\" control power-loss nope 2>\"$D/unknown.err\"; echo $? >\"$D/unknown.code\"\n\
         \"$CTL\" control power-loss workload 2>\"$D/workload.err\"; echo $? >\"$D/workload.code\"\n\
         \"$CTL\" control power-loss app >\"$D/ok.out\" || exit 9\n\
         for i in $(seq 200); do\n\
           [ \"$(grep -c wrote \"$D/sys.run/app.out\")\" -ge 2 ] && exit 0; sleep 0.05\n\
         done\n\
         exit 8\n",
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("unknown.code").trim(), "2", "{}", read("unknown.err"));
    assert!(
        read("unknown.err").contains("no process `nope` in this run; expected one of app"),
        "{}",
        read("unknown.err")
    );
    assert_eq!(
        read("workload.code").trim(),
        "2",
        "{}",
        read("workload.err")
    );
    assert!(
        read("ok.out").contains("power-loss app"),
        "{}",
        read("ok.out")
    );
    // The first life's unsynced line was undone before the restart; the second life's kept.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(undone_count(&log) >= 1);
    let control = log
        .iter()
        .filter_map(Event::as_control)
        .find(|c| c.what == "power-loss")
        .expect("a control line");
    assert_eq!(control.process.as_deref(), Some("app"), "{control:?}");
    assert_eq!(control.by.as_deref(), Some("cli"), "{control:?}");
    let kill = *process_events(&log, "kill").first().expect("a kill line");
    assert_eq!(kill.kind.as_deref(), Some("power-loss"), "{kill:?}");
    assert_eq!(kill.key.as_deref(), Some("control#0"), "{kill:?}");
}

#[test]
fn control_power_loss_is_refused_without_durability() {
    let dir = TempDir::new("power-control-no-durability");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("log"), "durable\n").unwrap();
    let script = dir.write("appender.py", &appender_script(&data));
    let policy = dir.write(
        "sys.toml",
        &format!(
            "[[process]]\nname = \"app\"\ncmd = [{py:?}, {s:?}]\nready = \"log:^wrote\"\n",
            py = python().display().to_string(),
            s = script.display().to_string(),
        ),
    );
    let r = run(
        std::process::Command::new(&bins().ctl)
            .args(["run", "-q", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("sys.jsonl"))
            .args([
                "--",
                "sh",
                "-c",
                "\"$CTL\" control power-loss app 2>\"$D/err\"; echo $? >\"$D/code\"",
            ])
            .env("CTL", &bins().ctl)
            .env("D", dir.path()),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("code")).unwrap().trim(),
        "125",
        "{err}"
    );
    assert!(err.contains("has no [durability]"), "{err}");
    let log = read_events(&dir.join("sys.jsonl"));
    assert!(
        process_events(&log, "kill").is_empty(),
        "nothing was killed"
    );
}

/// Processes a and b on machine m1 and c on m2, each appending one unsynced line per life to
/// DATA/NAME (a then writes DATA/trigger, once b has written), under `crash = "process"` and
/// `extra`; the log and what each file holds after a 2 s run.
fn machines(dir: &TempDir, extra: &str) -> (Vec<Event>, std::collections::HashMap<String, String>) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let script = dir.write(
        "appender.py",
        "import os, sys, time\n\
         def append(path, text):\n    os.write(os.open(path, os.O_WRONLY | os.O_APPEND), text)\n\
         append(sys.argv[1], b'life %d\\n' % os.getpid())\n\
         print('wrote', flush=True)\n\
         if len(sys.argv) > 2:\n\
         \x20   for _ in range(200):\n\
         \x20       if b'life' in open(sys.argv[3], 'rb').read():\n            break\n\
         \x20       time.sleep(0.05)\n\
         \x20   append(sys.argv[2], b'x')\n\
         time.sleep(60)\n",
    );
    std::fs::write(data.join("trigger"), "").unwrap();
    let mut policy = format!(
        "[durability]\npath = \"{d}/*\"\ncrash = \"process\"\n{extra}",
        d = data.display()
    );
    for (name, machine) in [("a", "m1"), ("b", "m1"), ("c", "m2")] {
        std::fs::write(data.join(name), "durable\n").unwrap();
        let trigger = if name == "a" {
            format!(
                ", {:?}, {:?}",
                data.join("trigger").display().to_string(),
                data.join("b").display().to_string()
            )
        } else {
            String::new()
        };
        policy.push_str(&format!(
            "[[process]]\nname = \"{name}\"\ncmd = [{py:?}, {s:?}, {f:?}{trigger}]\n\
             ready = \"log:^wrote\"\nrestart = \"always\"\nmachine = \"{machine}\"\n",
            py = python().display().to_string(),
            s = script.display().to_string(),
            f = data.join(name).display().to_string(),
        ));
    }
    let policy = dir.write("sys.toml", &policy);
    let log = dir.join("sys.jsonl");
    let r = run(
        std::process::Command::new(&bins().ctl)
            // Long enough for both restarted lives to write on a loaded machine (2 s was not).
            .args(["run", "-q", "--duration", "5s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let files = ["a", "b", "c"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read_to_string(data.join(n)).unwrap(),
            )
        })
        .collect();
    (read_events(&log), files)
}

fn process_lines<'a>(log: &'a [Event], name: &str, what: &str) -> Vec<&'a ProcessEvent> {
    process_events(log, what)
        .into_iter()
        .filter(|p| p.name == name)
        .collect()
}

/// b went down with a, both came back with their first life's unsynced line undone, and c, on
/// another machine, was not touched.
fn assert_machine_m1_lost_power(log: &[Event], files: &std::collections::HashMap<String, String>) {
    for name in ["a", "b"] {
        let restart = process_lines(log, name, "restart");
        assert_eq!(restart.len(), 1, "{name} came back");
        // Its first life's unsynced line is gone; the second life's was kept.
        assert_eq!(
            files[name],
            format!(
                "durable\nlife {}\n",
                restart[0].pid.expect("a restart says its pid")
            ),
            "{name}"
        );
    }
    let b = process_lines(log, "b", "kill");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].kind.as_deref(), Some("power-loss"));
    assert!(
        b[0].detail
            .as_deref()
            .is_some_and(|d| d.contains("machine `m1` lost power with a")),
        "{b:?}"
    );
    assert!(b[0].at_ns.is_none(), "freeze repeats the one event only");
    assert!(process_lines(log, "c", "kill").is_empty());
    assert_eq!(files["c"].lines().count(), 2, "{}", files["c"]);
    assert!(undone_count(log) >= 2);
}

#[test]
fn a_power_loss_takes_down_every_process_of_its_machine_and_no_other() {
    let dir = TempDir::new("power-machine");
    let (log, files) = machines(
        &dir,
        "[[nemesis]]\nat = \"500ms\"\nprocess = \"a\"\nkind = \"power-loss\"\nrecovery = \"100ms\"\n",
    );
    let a = process_lines(&log, "a", "kill");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0].kind.as_deref(), a[0].key.as_deref()),
        (Some("power-loss"), Some("nemesis#0"))
    );
    assert_machine_m1_lost_power(&log, &files);
    assert_eq!(
        process_lines(&log, "b", "kill")[0].key.as_deref(),
        Some("nemesis#0")
    );
}

#[test]
fn a_power_loss_fault_takes_down_its_machine_too() {
    let dir = TempDir::new("power-machine-fault");
    let (log, files) = machines(
        &dir,
        &format!(
            "[[rules]]\nname = \"blackout\"\non = \"write\"\nfd = \"file\"\npath = \"{}\"\n\
             fault = \"power-loss\"\n",
            dir.join("data").join("trigger").display()
        ),
    );
    assert!(
        process_lines(&log, "a", "kill").is_empty(),
        "a killed itself"
    );
    assert_machine_m1_lost_power(&log, &files);
}
