//! Toxiproxy's proxies in-process under the seccomp backend: a Go program (static, non-blocking
//! sockets) and a blocking python client, run with `--backend seccomp --toxiproxy-addr`, are
//! connected straight to the proxy's upstream by the supervisor (no relay hop), see `listen` as
//! their peer, and get the proxy's toxics from the supervisor, logged as their own.

use super::toxiproxy_inproc::{
    api_generations, assert_sliced, field, pids_of, proxy_lines, recording_echo, replying_server,
    run_with_api, seen_generations,
};
use chaos_tests::*;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

#[test]
fn a_go_client_under_seccomp_connects_straight_to_upstream_and_gets_the_toxics() {
    let Some(go) = build_go("toxiproxy_client") else {
        return;
    };
    let dir = TempDir::new("toxiproxy-seccomp-go");
    let (upstream, peers) = recording_echo();
    let api = format!("127.0.0.1:{}", free_port());
    let done = run_with_api(
        &dir,
        &api,
        "seccomp",
        &go,
        &[format!("http://{api}"), upstream],
    );
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    let out = &done.stdout;

    // No hop: the upstream's peer is the Go program's own socket, not the relay's.
    let local: SocketAddr = field(out, "local").parse().unwrap();
    let again: SocketAddr = field(out, "served-again").parse().unwrap();
    assert_eq!(
        peers.lock().unwrap().clone(),
        [local, again],
        "the upstream was reached by the client itself, once per connection"
    );
    // Go's RemoteAddr is getpeername's answer: where it connected, as through Toxiproxy.
    assert_eq!(field(out, "peer"), field(out, "listen"));
    let slow: f64 = field(out, "slow").parse().unwrap();
    assert!(
        slow >= 0.3,
        "the 300 ms latency toxic held the echo {slow} s"
    );
    assert!(
        field(out, "after-disable").starts_with("write=true read=0,EOF"),
        "disabling ends the open connection: {out}"
    );
    assert_eq!(field(out, "refused"), "yes", "a disabled proxy refuses");

    let log = read_events(&dir.join("run.jsonl"));
    let go_pids = pids_of(&log, "toxiproxy_client");
    assert!(!go_pids.is_empty(), "{log:?}");
    // Every change is a generation of the page; the Go process logs where it first acted on the
    // latency toxic's.
    let changes = api_generations(&log);
    assert_eq!(changes.len(), 5, "{changes:?}");
    let seen = seen_generations(&log, &go_pids);
    assert!(
        seen.contains(&changes[1]),
        "the Go process saw the latency toxic's generation {}: {seen:?}",
        changes[1]
    );
    let lines = proxy_lines(&log, &go_pids);
    assert!(
        lines.iter().any(|f| f.effect.as_deref() == Some("latency")
            && f.key.is_some()
            && f.backend.as_deref() == Some("seccomp")
            && f.delay_ns.is_some_and(|ns| ns >= 250_000_000)),
        "the latency is the Go process's line: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|f| f.effect.as_deref() == Some("proxy-disabled") && f.fault == "close"),
        "{lines:?}"
    );
}

/// A client whose sockets block (no timeout): its connect is answered from a thread.
const BLOCKING: &str = r#"
import json, socket, sys, time, urllib.request
api, upstream, ask = sys.argv[1], sys.argv[2], sys.argv[3]
def call(method, path, body):
    req = urllib.request.Request(api + path, data=json.dumps(body).encode(), method=method)
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())
def echo(s):
    start = time.monotonic()
    s.sendall(b"ping\n")
    got = b""
    while len(got) < 5:
        got += s.recv(5 - len(got))
    return time.monotonic() - start
p = call("POST", "/proxies", {"name": "echo", "listen": ask, "upstream": upstream})
host, port = p["listen"].rsplit(":", 1)
print("listen", p["listen"])
v6 = host.startswith("[")
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
s.connect((host.strip("[]"), int(port)))
print("blocking", s.gettimeout() is None)
def name(a):
    return ("[%s]:%d" if v6 else "%s:%d") % a[:2]
print("local", name(s.getsockname()))
print("peer", name(s.getpeername()))
echo(s)
call("POST", "/proxies/echo/toxics", {"type": "latency", "attributes": {"latency": 300}})
print("slow", echo(s))
"#;

/// The peers an echo server saw (`recording_echo`).
type Peers = Arc<Mutex<Vec<SocketAddr>>>;

/// The blocking python client (`BLOCKING`) under the seccomp backend, its proxy listening on
/// `listen`, to an echo that records its peers: the run's directory, its end, those peers.
fn blocking_client(name: &str, listen: &str) -> Option<(TempDir, Finished, Peers)> {
    let python = require("python3")?;
    let dir = TempDir::new(name);
    let (upstream, peers) = recording_echo();
    let api = format!("127.0.0.1:{}", free_port());
    let script = dir.write("blocking.py", BLOCKING);
    let args = [
        script.display().to_string(),
        format!("http://{api}"),
        upstream,
        listen.to_string(),
    ];
    let done = run_with_api(&dir, &api, "seccomp", &python, &args);
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    Some((dir, done, peers))
}

#[test]
fn a_blocking_client_under_seccomp_is_connected_to_upstream_from_a_thread() {
    let Some((dir, done, peers)) = blocking_client("toxiproxy-seccomp-py", "127.0.0.1:0") else {
        return;
    };
    let out = &done.stdout;
    assert_eq!(field(out, "blocking"), "True");
    let local: SocketAddr = field(out, "local").parse().unwrap();
    assert_eq!(peers.lock().unwrap().clone(), [local], "no hop");
    assert_eq!(field(out, "peer"), field(out, "listen"));
    let slow: f64 = field(out, "slow").parse().unwrap();
    assert!(
        slow >= 0.3,
        "the 300 ms latency toxic held the echo {slow} s"
    );
    let log = read_events(&dir.join("run.jsonl"));
    let py = pids_of(&log, "python");
    assert!(
        fault_events(&log).iter().any(|f| f.rule == "toxiproxy"
            && py.contains(&f.header.pid)
            && f.effect.as_deref() == Some("latency")),
        "{log:?}"
    );
}

#[test]
fn a_proxys_toxic_lands_on_the_same_key_under_both_backends() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = TempDir::new("toxiproxy-seccomp-keys");
    let (upstream, _peers) = recording_echo();
    // The same API address and upstream both times: the same argv, so the same process key.
    let api = format!("127.0.0.1:{}", free_port());
    let script = dir.write("blocking.py", BLOCKING);
    let policy = dir.write("none.toml", "seed = 1\n");
    let mut keys = Vec::new();
    for backend in ["preload", "seccomp"] {
        let log = dir.join(&format!("{backend}.jsonl"));
        let done = run(
            Command::new(&bins().ctl)
                .args(["run", "--backend", backend, "--policy"])
                .arg(&policy)
                .arg("--log")
                .arg(&log)
                .args(["--toxiproxy-addr", &api, "--"])
                .arg(&python)
                .arg(&script)
                .arg(format!("http://{api}"))
                .arg(&upstream)
                .arg("127.0.0.1:0"),
            90,
        );
        assert_eq!(done.code(), Some(0), "{backend}: {}", done.describe());
        let first = fault_events(&read_events(&log))
            .into_iter()
            .find(|f| f.rule == "toxiproxy" && f.effect.as_deref() == Some("latency"))
            .and_then(|f| f.key.clone())
            .unwrap_or_else(|| panic!("{backend}: no latency line"));
        assert!(first.contains("/r65534/"), "{backend}: {first}");
        keys.push(first);
    }
    assert_eq!(
        keys[0], keys[1],
        "the same connection, offset and rule word"
    );
}

#[test]
fn an_ipv6_client_reaches_an_ipv4_upstream_by_its_mapped_address() {
    let Some((_dir, done, peers)) = blocking_client("toxiproxy-seccomp-v6", "[::1]:0") else {
        return;
    };
    let out = &done.stdout;
    assert!(field(out, "listen").starts_with("[::1]:"), "{out}");
    // The IPv6 socket's connection arrives at the IPv4 upstream from its mapped address.
    let local: SocketAddr = field(out, "local").parse().unwrap();
    let std::net::IpAddr::V6(ip) = local.ip() else {
        panic!("{local}")
    };
    let mapped = SocketAddr::new(ip.to_ipv4_mapped().expect("mapped").into(), local.port());
    assert_eq!(peers.lock().unwrap().clone(), [mapped], "no hop");
    assert_eq!(field(out, "peer"), field(out, "listen"));
    let slow: f64 = field(out, "slow").parse().unwrap();
    assert!(slow >= 0.3, "{slow} s");
}

#[test]
fn a_connect_rule_on_the_upstream_acts_on_a_connect_to_listen() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = TempDir::new("toxiproxy-seccomp-rule");
    let (upstream, peers) = recording_echo();
    let api = format!("127.0.0.1:{}", free_port());
    let script = dir.write("blocking.py", BLOCKING);
    // As under the shim, the rules see where a proxy's connect goes: its upstream.
    let policy = dir.write(
        "refuse.toml",
        &format!(
            "[[rules]]\nname = \"refuse-upstream\"\non = \"connect\"\npeer = \"{upstream}\"\n\
             fault = \"ECONNREFUSED\"\n"
        ),
    );
    let done = run(
        Command::new(&bins().ctl)
            .args(["run", "--backend", "seccomp", "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--toxiproxy-addr", &api, "--"])
            .arg(&python)
            .arg(&script)
            .arg(format!("http://{api}"))
            .arg(&upstream)
            .arg("127.0.0.1:0"),
        90,
    );
    assert_ne!(done.code(), Some(0), "{}", done.describe());
    assert!(
        done.stderr.contains("ConnectionRefusedError"),
        "{}",
        done.describe()
    );
    assert!(peers.lock().unwrap().is_empty(), "nothing reached upstream");
    let log = read_events(&dir.join("run.jsonl"));
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.rule == "refuse-upstream" && f.op == "connect"),
        "{log:?}"
    );
}

#[test]
fn a_slicer_toxic_cuts_a_go_clients_reads_into_slices_a_delay_apart() {
    let Some(go) = build_go("toxiproxy_client") else {
        return;
    };
    let dir = TempDir::new("toxiproxy-seccomp-slicer");
    let upstream = replying_server(1000);
    let api = format!("127.0.0.1:{}", free_port());
    let args = [format!("http://{api}"), upstream, "slicer".into()];
    let done = run_with_api(&dir, &api, "seccomp", &go, &args);
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    assert_sliced(
        &done.stdout,
        &read_events(&dir.join("run.jsonl")),
        "toxiproxy_client",
    );
}
