//! The seccomp backend in systems of processes: Go processes crashed and restarted by
//! attrition, rules switched while they run, partitions held from outside the process (both
//! ends under seccomp, or one under the shim), and a write a cut holds past TCP_USER_TIMEOUT.

use chaos_tests::*;
use std::collections::BTreeSet;
use std::process::Command;

fn ctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().ctl);
    cmd.args(args);
    cmd
}

/// A Go web server as a system's process, and a workload that fetches from it, all under the
/// seccomp backend: `workload`'s rule is off, switched on with `chaos-ctl control` from the
/// workload itself, then off again; then the server's own rule is switched on while it runs.
const WEB_SYSTEM: &str = r#"
seed = 4
[[process]]
name = "web"
cmd = ["GO", "serve", "{port}"]
ready = "tcp:{port}"

[[rules]]
name = "web-down"
on = "connect"
process = "workload"
fault = "ECONNREFUSED"
enabled = false

[[rules]]
name = "web-slow"
on = "accept"
process = "web"
fault = { delay = "1ms" }
enabled = false
"#;

/// `WEB_SYSTEM`'s server alone, without its rules.
fn web_server(go: &std::path::Path) -> String {
    let system = WEB_SYSTEM.replace("GO", go.to_str().unwrap());
    system.split("[[rules]]").next().unwrap().to_string()
}

/// `web_server`, written into `dir`.
fn web_only(dir: &TempDir, go: &std::path::Path) -> std::path::PathBuf {
    dir.write("web.toml", &web_server(go))
}

/// Runs `script` as the workload (`sh -c SCRIPT sh ARGS…`) of the system in `policy`, every
/// process under `backend` (None: `auto`), logging to `log`.
fn workload(
    policy: &std::path::Path,
    log: &std::path::Path,
    backend: Option<&str>,
    script: &str,
    args: &[&std::path::Path],
) -> Finished {
    let mut cmd = ctl(&["run", "-q"]);
    if let Some(b) = backend {
        cmd.args(["--backend", b]);
    }
    cmd.arg("--policy")
        .arg(policy)
        .arg("--log")
        .arg(log)
        .current_dir(log.parent().unwrap())
        .args(["--", "sh", "-c", script, "sh"])
        .args(args);
    run(&mut cmd, 120)
}

#[test]
fn a_rule_switched_on_mid_run_reaches_go_processes_of_a_system() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-system-control");
    let policy = dir.write("web.toml", &WEB_SYSTEM.replace("GO", go.to_str().unwrap()));
    let log = dir.join("run.jsonl");
    // The workload is a shell, under the seccomp backend too (the filter is inherited: the Go
    // fetches it starts are answered by the same supervisor).
    let script = r#"u="http://$CHAOS_ADDRS_WEB/"
"$1" fetch "$u"
"$2" control enable web-down
"$1" fetch "$u"
"$2" control disable web-down
"$2" control enable web-slow
"$1" fetch "$u""#;
    let r = workload(&policy, &log, Some("seccomp"), script, &[&go, &bins().ctl]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("chaos: enable web-down (generation 1)"),
        "{}",
        r.describe()
    );
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("chaos: "))
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.describe());
    assert_eq!(lines[0], "ok 1000", "before the switch: {}", r.describe());
    assert!(
        lines[1].starts_with("error: ") && lines[1].contains("connection refused"),
        "Go's own error while the rule is on: {}",
        r.describe()
    );
    assert_eq!(lines[2], "ok 1000", "after it: {}", r.describe());
    let events = read_events(&log);
    let by_rule = |rule: &str| -> Vec<&Fault> {
        fault_events(&events)
            .into_iter()
            .filter(|f| f.rule == rule)
            .collect()
    };
    // Go's connects are non-blocking: the refusal comes as the kernel's, after EINPROGRESS.
    let refused = by_rule("web-down");
    assert!(!refused.is_empty(), "{}", r.describe());
    for f in &refused {
        assert_eq!(f.backend.as_deref(), Some("seccomp"), "{f:?}");
        assert_eq!(f.fault, "ECONNREFUSED", "{f:?}");
    }
    // The server, running all along, was slowed only once its rule was switched on: on the
    // third fetch's accept, where it logged seeing the change, with what was on from then.
    let slowed = by_rule("web-slow");
    assert_eq!(slowed.len(), 1, "{}", r.describe());
    assert_eq!(slowed[0].op, "accept4", "{:?}", slowed[0]);
    let seen: Vec<_> = events
        .iter()
        .filter_map(Event::as_control)
        .filter(|c| c.what == "seen")
        .collect();
    assert!(
        seen.iter().any(|s| s.pid == Some(slowed[0].header.pid)
            && s.generation == 3
            && s.enabled == Some(vec!["web-slow".to_string()])
            && s.at.as_deref().is_some_and(|a| a.contains("accept#"))),
        "{seen:?}"
    );
    // The server ran under seccomp as a process of the system, by its name.
    assert!(
        events
            .iter()
            .filter_map(Event::as_start)
            .any(|s| s.backend.as_deref() == Some("seccomp")
                && s.process.as_deref().is_some_and(|p| p.starts_with("web"))),
        "{}",
        r.describe()
    );
}

#[test]
fn go_replicas_are_crashed_and_restarted_by_attrition() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-system-attrition");
    let policy = dir.write(
        "web.toml",
        &format!(
            "{}replicas = 2\n[attrition]\nmax_dead = 1\ncrash = 1.0\ngraceful = 0.0\n\
             pause = 0.0\nwipe = 0.0\ninterval = \"150ms..300ms\"\nrecovery = \"50ms..100ms\"\n",
            web_server(&go)
        ),
    );
    let log = dir.join("run.jsonl");
    let r = run(
        ctl(&["run", "-q", "--duration", "3s", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(&log),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    let kills = events
        .iter()
        .filter_map(Event::as_process)
        .filter(|p| p.what == "kill")
        .count();
    assert!(
        kills >= 3,
        "attrition crashed the replicas: {}",
        r.describe()
    );
    // Every life of each replica (`auto` picks seccomp for Go) started under the supervisor,
    // with its name and life number: each restart is a new launch with a new key.
    let seccomp_starts = || {
        events
            .iter()
            .filter_map(Event::as_start)
            .filter(|s| s.backend.as_deref() == Some("seccomp"))
    };
    let lives: BTreeSet<(String, u32)> = seccomp_starts()
        .filter_map(|s| Some((s.process.clone()?, s.life?)))
        .collect();
    assert!(
        lives.iter().any(|(_, life)| *life >= 1) && lives.len() >= kills,
        "a start line for each life: {lives:?} ({kills} kills)"
    );
    let keys: BTreeSet<&str> = seccomp_starts().map(|s| s.header.proc.as_str()).collect();
    assert_eq!(keys.len(), lives.len(), "one key per life: {keys:?}");
}

#[test]
fn a_partition_holds_go_traffic_both_ways_until_the_heal() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-system-partition");
    let policy = web_only(&dir, &go);
    let log = dir.join("run.jsonl");
    // A keep-alive client making request after request, counting them; a cut between it and
    // the server; a new connection tried during the cut; then the heal.
    let script = r#"u="http://$CHAOS_ADDRS_WEB/"
"$1" fetch-loop "$u" count & loop=$!
while [ ! -s count ]; do sleep 0.05; done
"$2" control partition workload web
sleep 0.3
a=$(cat count)
"$1" fetch "$u" > during.txt & one=$!
sleep 1
b=$(cat count)
echo "cut $a $b [$(cat during.txt)]"
"$2" control heal
wait $one
sleep 0.3
c=$(cat count)
kill $loop
echo "healed $c [$(cat during.txt)]""#;
    let r = workload(&policy, &log, Some("seccomp"), script, &[&go, &bins().ctl]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let line = |prefix: &str| -> Vec<String> {
        let l = r
            .stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line: {}", r.describe()));
        l.split(' ').map(String::from).collect()
    };
    let cut = line("cut ");
    let healed = line("healed ");
    let count = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| panic!("{}", r.describe())) };
    // No request completed in the second the cut lasted, and the new connection did not get
    // through; after the heal both went on.
    assert_eq!(cut[1], cut[2], "{}", r.describe());
    assert_eq!(cut[3], "[]", "{}", r.describe());
    assert!(count(&healed[1]) > count(&cut[2]), "{}", r.describe());
    assert_eq!(healed[2..].join(" "), "[ok 1000]", "{}", r.describe());
    let events = read_events(&log);
    assert!(
        events
            .iter()
            .filter_map(Event::as_control)
            .any(|c| c.what == "partition"),
        "{}",
        r.describe()
    );
}

#[test]
fn a_shim_client_is_cut_from_a_go_server_by_the_port_it_registered() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    require("curl").expect("curl");
    let dir = TempDir::new("seccomp-mixed-partition");
    // The server listens on a port the kernel picks: only the supervisor, which makes its
    // listen, can tell the run's port directory that the port is `web`'s.
    let policy = dir.write(
        "web.toml",
        &format!(
            "[[process]]\nname = \"web\"\ncmd = [\"{}\", \"serve\", \"0\", \"{{run}}/web.port\"]\n\
             ready = \"cmd:test -s {{run}}/web.port\"\n",
            go.display()
        ),
    );
    // `auto`: the Go server under seccomp, the shell and curl under the shim.
    let script = r#"port=$(cat "$CHAOS_RUN/web.port")
u="http://127.0.0.1:$port/"
"$1" control status | grep -q "^  web .*ports .*$port" && echo "web owns $port"
curl -s -o /dev/null -w "before %{http_code}\n" "$u"
"$1" control partition workload web
curl -s -o /dev/null --max-time 1 -w "cut %{http_code}\n" "$u"
echo "curl exit $?"
"$1" control heal
curl -s -o /dev/null -w "after %{http_code}\n" "$u""#;
    let log = dir.join("run.jsonl");
    let r = workload(&policy, &log, None, script, &[&bins().ctl]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    for want in [
        "web owns ",
        "before 200",
        "cut 000",
        "curl exit 28",
        "after 200",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.describe());
    }
    let events = read_events(&log);
    let backends: BTreeSet<Option<&str>> = events
        .iter()
        .filter_map(Event::as_start)
        .map(|s| s.backend.as_deref())
        .collect();
    assert_eq!(
        backends,
        BTreeSet::from([None, Some("seccomp")]),
        "both backends ran"
    );
}

#[test]
fn a_write_held_by_a_cut_past_tcp_user_timeout_fails_with_etimedout_on_a_static_binary() {
    let Some(go) = build_go("http_body") else {
        return;
    };
    let dir = TempDir::new("seccomp-user-timeout");
    let client = compile_c("user_timeout", dir.path(), &["-static"]);
    let policy = web_only(&dir, &go);
    let log = dir.join("run.jsonl");
    let script = r#"port=${CHAOS_ADDRS_WEB#*:}
"$1" 127.0.0.1 "$port" 300 "$2""#;
    let r = workload(
        &policy,
        &log,
        Some("seccomp"),
        script,
        &[&client, &bins().ctl],
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout.trim(),
        "write: Connection timed out",
        "{}",
        r.describe()
    );
}
