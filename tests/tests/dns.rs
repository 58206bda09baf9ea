//! Name resolution faults (`on = "resolve"`, `host = GLOB`): python, curl and node (which resolves
//! in libuv's thread pool through getaddrinfo) get the resolver error for `*.internal`, as glibc
//! returns it, and still resolve `localhost`; the fault freezes and replays at its key; policies
//! that mix resolution with fd calls, or errno with resolvers, are refused.

use chaos_tests::*;
use std::process::Command;

const POLICY: &str = r#"
[[rules]]
name = "internal-down"
on = "resolve"
host = "*.internal"
fault = "EAI_AGAIN"
[[rules]]
name = "gone"
on = "resolve"
host = "gone.example"
fault = "EAI_NONAME"
"#;

fn run_under(dir: &TempDir, log: &str, argv: &[&str]) -> Finished {
    run(&mut ctl_run(dir, Some(POLICY), log, argv), 60)
}

fn resolve_faults(dir: &TempDir, log: &str) -> Vec<Fault> {
    fault_events(&read_events(&dir.join(log)))
        .into_iter()
        .filter(|f| f.fd == -1)
        .cloned()
        .collect()
}

#[test]
fn python_gets_the_resolver_error_and_still_resolves_localhost() {
    require("python3").expect("python3");
    let dir = TempDir::new("dns-python");
    let script = r#"
import socket
for h in ["db.internal", "gone.example", "localhost"]:
    try:
        print(h, "ok", socket.getaddrinfo(h, 80)[0][4][0])
    except socket.gaierror as e:
        print(h, "gaierror", e.errno)
try:
    socket.gethostbyname("cache.internal")
except socket.gaierror as e:
    print("gethostbyname", e.errno)
"#;
    let r = run_under(&dir, "py.jsonl", &["python3", "-c", script]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // glibc's numbers: EAI_AGAIN -3, EAI_NONAME -2.
    assert!(
        r.stdout.contains("db.internal gaierror -3"),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout.contains("gone.example gaierror -2"),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout.contains("localhost ok 127.0.0.1"),
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("gethostbyname -3"), "{}", r.describe());
    let faults = resolve_faults(&dir, "py.jsonl");
    let hosts: Vec<&str> = faults
        .iter()
        .map(|f| f.host.as_deref().expect("a resolve fault names its host"))
        .collect();
    assert_eq!(hosts, ["db.internal", "gone.example", "cache.internal"]);
    assert!(
        faults
            .iter()
            .all(|f| f.key.as_deref().expect("a key").ends_with("/resolve#0"))
    );
}

#[test]
fn curl_reports_a_host_it_could_not_resolve() {
    require("curl").expect("curl");
    let dir = TempDir::new("dns-curl");
    let r = run_under(
        &dir,
        "curl.jsonl",
        &["curl", "-sS", "-m", "10", "http://api.internal/"],
    );
    assert_eq!(
        r.code(),
        Some(6),
        "curl's 'could not resolve host': {}",
        r.describe()
    );
    assert!(
        r.stderr.contains("Could not resolve host: api.internal"),
        "{}",
        r.describe()
    );
    assert_eq!(resolve_faults(&dir, "curl.jsonl").len(), 1);
}

#[test]
fn node_dns_lookup_in_the_thread_pool_sees_it() {
    require("node").expect("node (Debian's nodejs)");
    let dir = TempDir::new("dns-node");
    let script = "const dns = require('dns');\
        dns.lookup('svc.internal', (e, a) => { console.log('svc.internal', e ? e.code : a);\
        dns.lookup('localhost', {family: 4}, (e2, a2) => console.log('localhost', e2 ? e2.code : a2)); });";
    let r = run_under(&dir, "node.jsonl", &["node", "-e", script]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains("svc.internal EAI_AGAIN"),
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("localhost 127.0.0.1"), "{}", r.describe());
    let faults = resolve_faults(&dir, "node.jsonl");
    assert_eq!(faults.len(), 1, "{faults:?}");
    // libuv's worker thread made the call, not the main thread.
    let f = &faults[0];
    assert_ne!(
        f.header.tid.expect("a fault has its tid"),
        f.header.pid,
        "{f:?}"
    );
}

/// A lookup fault has a key like any other: `freeze` pins it and `replay` reaches it again.
#[test]
fn a_resolver_fault_freezes_and_replays_at_its_key() {
    require("python3").expect("python3");
    let dir = TempDir::new("dns-replay");
    let script = "import socket\ntry:\n    socket.getaddrinfo('db.internal', 5432)\nexcept socket.gaierror:\n    raise SystemExit(3)";
    let r = run_under(&dir, "orig.jsonl", &["python3", "-c", script]);
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    let frozen = run(
        Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("orig.jsonl")),
        30,
    );
    assert!(
        frozen.stdout.contains("at = \"resolve#0\""),
        "{}",
        frozen.stdout
    );
    assert!(
        frozen.stdout.contains("fault = \"EAI_AGAIN\""),
        "{}",
        frozen.stdout
    );
    let r = run(
        Command::new(&bins().ctl)
            .arg("replay")
            .arg("--log")
            .arg(dir.join("again.jsonl"))
            .arg(dir.join("orig.jsonl")),
        60,
    );
    assert_eq!(r.code(), Some(3), "{}", r.describe());
    assert!(
        r.stderr.contains("replay reproduced 1 of 1"),
        "{}",
        r.describe()
    );
    assert!(
        r.stderr
            .contains("the failure reproduced: exit 3 then, exit 3 now"),
        "{}",
        r.describe()
    );
}

#[test]
fn resolver_rules_are_checked() {
    let dir = TempDir::new("dns-bad");
    assert_refused(
        &dir,
        &[
            (
                "[[rules]]\non = \"recv\"\nhost = \"*.x\"\nfault = \"EIO\"\n",
                "`host` matches the name being resolved",
            ),
            (
                "[[rules]]\non = \"recv\"\nfault = \"EAI_AGAIN\"\n",
                "EAI_* errors are what name resolution returns",
            ),
            (
                "[[rules]]\non = \"resolve\"\nfault = \"ECONNRESET\"\n",
                "name resolution can fail with",
            ),
            (
                "[[rules]]\non = [\"resolve\", \"recv\"]\nfault = \"EAI_AGAIN\"\n",
                "cannot share a rule with calls on fds",
            ),
            (
                "[[rules]]\non = \"resolve\"\npeer = \"10.0.0.1\"\nfault = \"EAI_AGAIN\"\n",
                "match the name with `host`",
            ),
            (
                "[[rules]]\non = \"resolve\"\nfault = \"EAI_SOMETIMES\"\n",
                "expected EAI_AGAIN, EAI_NONAME or EAI_FAIL",
            ),
        ],
    );
}
