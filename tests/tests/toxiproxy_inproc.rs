//! Toxiproxy's proxies in-process: a program under `chaos-ctl run --toxiproxy-addr` that
//! connects to a proxy's `listen` is connected straight to its `upstream` by its shim (no relay
//! hop), the proxy's toxics act in the program, and every change is a new generation of the
//! run's control page that the program logs as `seen`.

use chaos_tests::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// An echo server on a free port that records the peer address of every connection it accepts.
pub(crate) fn recording_echo() -> (String, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if let Ok(p) = conn.peer_addr() {
                seen.lock().unwrap().push(p);
            }
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, peers)
}

/// The client, under chaos: drives the API with urllib and talks through the proxy with plain
/// sockets, printing what it saw as `key value` lines.
const CLIENT: &str = r#"
import json, socket, sys, threading, time, urllib.request
api, upstream = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=20) as r:
        text = r.read()
        return json.loads(text) if text else None
def connect(listen):
    host, port = listen.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=20)
    return s
def echo(s):
    start = time.monotonic()
    s.sendall(b"ping\n")
    got = b""
    while len(got) < 5:
        chunk = s.recv(5 - len(got))
        if not chunk:
            break
        got += chunk
    assert got == b"ping\n", got
    return time.monotonic() - start
p = call("POST", "/proxies", {"name": "echo", "listen": "127.0.0.1:0", "upstream": upstream})
listen = p["listen"]
print("listen", listen)
s = connect(listen)
print("local", "%s:%d" % s.getsockname())
print("peer", "%s:%d" % s.getpeername())
echo(s)
call("POST", "/proxies/echo/toxics", {"type": "latency", "attributes": {"latency": 300}})
print("slow", echo(s))
call("DELETE", "/proxies/echo/toxics/latency_downstream")
print("fast", echo(s))
call("POST", "/proxies/echo/toxics", {"type": "timeout", "attributes": {"timeout": 0}})
s.sendall(b"held\n")
s.settimeout(0.5)
try:
    print("blackholed", repr(s.recv(16)))
except TimeoutError:
    print("blackholed yes")
# A blocking read held by the blackhole goes on when the toxic is removed meanwhile (at once:
# the stall the non-blocking reads began is waited out, never an EAGAIN to a blocking read).
s.settimeout(None)
threading.Timer(0.5, call, ("DELETE", "/proxies/echo/toxics/timeout_downstream")).start()
print("released", repr(s.recv(16)))
s.settimeout(20)
call("POST", "/proxies/echo", {"enabled": False})
print("after-disable", repr(s.recv(16)))
try:
    connect(listen)
    print("refused no")
except ConnectionRefusedError:
    print("refused yes")
call("POST", "/proxies/echo", {"enabled": True})
again = connect(listen)
echo(again)
print("served-again", "%s:%d" % again.getsockname())
"#;

/// `key value` lines of the client's output.
pub(crate) fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no `{key}` in the client's output:\n{out}"))
}

/// `chaos-ctl run --backend BACKEND --toxiproxy-addr API` of `program ARGS`, with no rule, its log
/// in `DIR/run.jsonl`.
pub(crate) fn run_with_api(
    dir: &TempDir,
    api: &str,
    backend: &str,
    program: &std::path::Path,
    args: &[String],
) -> Finished {
    let policy = dir.write("none.toml", "seed = 1\n");
    run(
        Command::new(&bins().ctl)
            .args(["run", "--backend", backend, "--policy"])
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("run.jsonl"))
            .args(["--toxiproxy-addr", api, "--"])
            .arg(program)
            .args(args),
        90,
    )
}

/// The pids of the processes whose `start` line names `exe`.
pub(crate) fn pids_of(log: &[Event], exe: &str) -> Vec<i32> {
    log.iter()
        .filter_map(Event::as_start)
        .filter(|s| s.exe.as_deref().is_some_and(|x| x.contains(exe)))
        .map(|s| s.header.pid)
        .collect()
}

/// The generations of the page the Toxiproxy API's changes made, in order.
pub(crate) fn api_generations(log: &[Event]) -> Vec<u64> {
    log.iter()
        .filter_map(Event::as_control)
        .filter(|c| c.by.as_deref() == Some("toxiproxy"))
        .map(|c| c.generation)
        .collect()
}

/// The generations processes `pids` logged `seen` lines for.
pub(crate) fn seen_generations(log: &[Event], pids: &[i32]) -> Vec<u64> {
    log.iter()
        .filter_map(Event::as_control)
        .filter(|c| c.what == "seen" && c.pid.is_some_and(|p| pids.contains(&p)))
        .map(|c| c.generation)
        .collect()
}

/// The fault lines proxies' toxics wrote in processes `pids`.
pub(crate) fn proxy_lines<'a>(log: &'a [Event], pids: &[i32]) -> Vec<&'a Fault> {
    fault_events(log)
        .into_iter()
        .filter(|f| f.rule == "toxiproxy" && pids.contains(&f.header.pid))
        .collect()
}

/// What a slicer toxic {average_size 100, variation 0, delay 10 ms} on downstream did to a
/// client that read a 1000-byte reply (`out`: its `took` and `sizes` lines): every read got one
/// slice at most, the slices came a delay apart, and the client process `exe` logged each cut.
pub(crate) fn assert_sliced(out: &str, log: &[Event], exe: &str) {
    let sizes: Vec<usize> = field(out, "sizes")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1000, "{sizes:?}");
    assert!(
        sizes.iter().all(|&n| n <= 100),
        "every read got at most one slice: {sizes:?}"
    );
    // Ten slices, nine delays of 10 ms between them.
    let took: f64 = field(out, "took").parse().unwrap();
    assert!(took >= 0.08, "the slices came {took} s apart in all");

    let pids = pids_of(log, exe);
    let sliced: Vec<_> = proxy_lines(log, &pids)
        .into_iter()
        .filter(|f| f.effect.as_deref() == Some("slicer"))
        .collect();
    assert!(
        sliced.iter().filter(|f| f.fault == "short").count() >= 9,
        "a short line for each cut read: {sliced:?}"
    );
    assert!(sliced.iter().all(|f| f.key.is_some()), "{sliced:?}");
}

/// A path as a program argument.
fn path_arg(p: &std::path::Path) -> String {
    p.to_str().expect("a UTF-8 temp path").to_string()
}

#[test]
fn a_client_under_chaos_connects_straight_to_upstream_and_applies_the_toxics_itself() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = TempDir::new("toxiproxy-inproc");
    let (upstream, peers) = recording_echo();
    let api = format!("127.0.0.1:{}", free_port());
    let script = dir.write("client.py", CLIENT);
    let args = [path_arg(&script), format!("http://{api}"), upstream];
    let done = run_with_api(&dir, &api, "preload", &python, &args);
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    let out = &done.stdout;

    // No hop: the upstream's peer is the client's own socket, not a relay's.
    let local: SocketAddr = field(out, "local").parse().unwrap();
    let again: SocketAddr = field(out, "served-again").parse().unwrap();
    let peers = peers.lock().unwrap().clone();
    assert_eq!(
        peers,
        [local, again],
        "the upstream was reached by the client itself, once per connection"
    );
    // As through Toxiproxy, the program's peer is where it connected.
    assert_eq!(field(out, "peer"), field(out, "listen"));

    let slow: f64 = field(out, "slow").parse().unwrap();
    assert!(
        slow >= 0.3,
        "the 300 ms latency toxic held the echo {slow} s"
    );
    assert_eq!(
        field(out, "blackholed"),
        "yes",
        "a timeout toxic holds what comes"
    );
    assert_eq!(
        field(out, "released"),
        r"b'held\n'",
        "removing it lets the held data through"
    );
    assert_eq!(
        field(out, "after-disable"),
        "b''",
        "disabling ends the connection"
    );
    assert_eq!(field(out, "refused"), "yes", "a disabled proxy refuses");

    let log = read_events(&dir.join("run.jsonl"));
    let python_pids = pids_of(&log, "python");
    assert!(!python_pids.is_empty(), "python ran under the shim");
    // Every change is a generation of the page, and the client logs where it first saw them.
    let changes = api_generations(&log);
    assert_eq!(changes.len(), 7, "{changes:?}");
    assert!(
        changes.windows(2).all(|w| w[0] < w[1]) && changes[0] > 0,
        "each change a new generation: {changes:?}"
    );
    let seen = seen_generations(&log, &python_pids);
    assert!(
        seen.contains(&changes[1]),
        "the client saw the latency toxic's generation {}: {seen:?}",
        changes[1]
    );
    // The toxic acted in the client: its effect is the client's line.
    let toxic_lines = proxy_lines(&log, &python_pids);
    assert!(
        toxic_lines
            .iter()
            .any(|f| f.effect.as_deref() == Some("latency") && f.key.is_some()),
        "{toxic_lines:?}"
    );
    assert!(
        toxic_lines
            .iter()
            .any(|f| f.effect.as_deref() == Some("proxy-disabled")),
        "{toxic_lines:?}"
    );
}

/// A client that adds a latency toxic and measures it.
const SLOW_CLIENT: &str = r#"
import json, socket, sys, time, urllib.request
api, upstream = sys.argv[1], sys.argv[2]
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
p = call("POST", "/proxies", {"name": "echo", "listen": "127.0.0.1:0", "upstream": upstream})
host, port = p["listen"].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
echo(s)
call("POST", "/proxies/echo/toxics", {"type": "latency", "attributes": {"latency": 300}})
print("slow", echo(s))
"#;

fn slow_run(dir: &TempDir, policy: &std::path::Path, log: &str, api: &str, up: &str) -> Finished {
    let python = require("python3").expect("python3");
    run(
        Command::new(&bins().ctl)
            .arg("run")
            .arg("--policy")
            .arg(policy)
            .arg("--log")
            .arg(dir.join(log))
            .args(["--toxiproxy-addr", api, "--"])
            .arg(&python)
            .arg(dir.join("slow.py"))
            .arg(format!("http://{api}"))
            .arg(up),
        90,
    )
}

#[test]
fn a_frozen_run_replays_the_proxys_toxics_as_injections_through_the_same_redirect() {
    if require("python3").is_none() {
        return;
    }
    let dir = TempDir::new("toxiproxy-inproc-freeze");
    let (upstream, _peers) = recording_echo();
    // The same API address both times: the client's argv, and so its process key, is the same.
    let api = format!("127.0.0.1:{}", free_port());
    dir.write("slow.py", SLOW_CLIENT);
    let none = dir.write("none.toml", "seed = 1\n");
    let first = slow_run(&dir, &none, "first.jsonl", &api, &upstream);
    assert_eq!(first.code(), Some(0), "{}", first.describe());
    let frozen = run(
        Command::new(&bins().ctl)
            .arg("freeze")
            .arg(dir.join("first.jsonl")),
        30,
    );
    assert_eq!(frozen.code(), Some(0), "{}", frozen.describe());
    assert!(frozen.stdout.contains("[[inject]]"), "{}", frozen.stdout);
    let policy = dir.write("frozen.toml", &frozen.stdout);

    let again = slow_run(&dir, &policy, "again.jsonl", &api, &upstream);
    assert_eq!(again.code(), Some(0), "{}", again.describe());
    let slow: f64 = field(&again.stdout, "slow").parse().unwrap();
    assert!(slow >= 0.3, "the replayed latency held the echo {slow} s");
    let log = read_events(&dir.join("again.jsonl"));
    let faults = fault_events(&log);
    assert!(
        faults.iter().all(|f| f.rule != "toxiproxy"),
        "the toxic itself did not act again (its effect is the injection's): {faults:?}"
    );
    assert!(
        faults.iter().any(|f| f.rule == "inject"),
        "the injection took its place: {faults:?}"
    );
}

/// A server on a free port that answers each connection's first line with `reply` bytes in one
/// write, then waits for the client to close.
pub(crate) fn replying_server(reply: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut line = [0u8; 64];
                if matches!(conn.read(&mut line), Ok(n) if n > 0) {
                    let _ = conn.write_all(&vec![b'x'; reply]);
                }
                let _ = conn.read(&mut line);
            });
        }
    });
    addr
}

/// Adds a slicer on the replies, then reads a 1000-byte reply with large `recv`s, printing the
/// size of each and how long the whole took. It waits before reading, so that the whole reply
/// is queued and only the slicer can cut it.
const SLICED_CLIENT: &str = r#"
import json, socket, sys, time, urllib.request
api, upstream = sys.argv[1], sys.argv[2]
def call(method, path, body):
    req = urllib.request.Request(api + path, data=json.dumps(body).encode(), method=method)
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())
p = call("POST", "/proxies", {"name": "big", "listen": "127.0.0.1:0", "upstream": upstream})
call("POST", "/proxies/big/toxics", {"type": "slicer", "stream": "downstream",
     "attributes": {"average_size": 100, "size_variation": 0, "delay": 10000}})
host, port = p["listen"].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
s.sendall(b"go\n")
time.sleep(0.2)
start = time.monotonic()
sizes = []
while sum(sizes) < 1000:
    chunk = s.recv(65536)
    if not chunk:
        break
    sizes.append(len(chunk))
print("took", time.monotonic() - start)
print("sizes", " ".join(map(str, sizes)))
"#;

#[test]
fn a_slicer_toxic_cuts_the_clients_reads_into_slices_a_delay_apart() {
    let Some(python) = require("python3") else {
        return;
    };
    let dir = TempDir::new("toxiproxy-inproc-slicer");
    let upstream = replying_server(1000);
    let api = format!("127.0.0.1:{}", free_port());
    let script = dir.write("sliced.py", SLICED_CLIENT);
    let args = [path_arg(&script), format!("http://{api}"), upstream];
    let done = run_with_api(&dir, &api, "preload", &python, &args);
    assert_eq!(done.code(), Some(0), "{}", done.describe());
    assert_sliced(&done.stdout, &read_events(&dir.join("run.jsonl")), "python");
}
