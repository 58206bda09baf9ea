//! EAGAIN stalls and fake short transfers never hang an event loop: edge-triggered (a C loop written
//! like nginx, tokio, nginx itself), level-triggered (redis, asyncio) and poll-based (curl).

use chaos_tests::*;
use std::process::{Command, Stdio};

/// Heavy faults on every TCP read and write: shorts, stalls, one-call EAGAINs.
const HEAVY: &str = r#"
[[rules]]
name = "short"
on = ["reads", "writes"]
fd = "tcp"
probability = 0.3
fault = { short = "1..90%" }

[[rules]]
name = "stall"
on = ["reads", "writes", "accept", "connect"]
fd = "tcp"
probability = 0.1
fault = { stall = "1ms..20ms" }

[[rules]]
name = "eagain"
on = ["reads", "writes"]
fd = "tcp"
probability = 0.05
fault = "EAGAIN"
"#;

fn realism(dir: &TempDir, mode: &str, policy: &str) -> (Finished, Vec<Event>) {
    let fixture = compile_c("realism", dir.path(), &[]);
    let p = dir.write(&format!("{mode}.toml"), policy);
    let log = dir.join(&format!("{mode}.jsonl"));
    let r = run(preloaded(&fixture, &p, &log).arg(mode), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let events = read_events(&log);
    (r, events)
}

const ONE_STALL: &str =
    "[[rules]]\non = \"recv\"\nfd = \"unix\"\ntimes = 1\nfault = { stall = \"100ms\" }\n";

#[test]
fn a_stall_on_a_blocking_fd_is_a_delay() {
    let dir = TempDir::new("stall-blocking");
    let (r, log) = realism(&dir, "stall-blocking", ONE_STALL);
    assert!(r.stdout.contains("recv=4 errno=-"), "{}", r.describe());
    let f = fault_events(&log);
    assert_eq!(f[0].fault, "stall");
    assert_eq!(f[0].delay_ns, Some(100_000_000));
    assert!(f[0].errno.is_none());
}

#[test]
fn a_stall_longer_than_the_receive_timeout_times_out() {
    let dir = TempDir::new("stall-timeout");
    let (r, log) = realism(&dir, "stall-timeout", ONE_STALL);
    assert!(
        r.stdout
            .contains("recv=-1 errno=Resource temporarily unavailable"),
        "{}",
        r.describe()
    );
    assert_eq!(
        fault_events(&log)[0].delay_ns,
        Some(20_000_000),
        "it waited exactly its 20ms timeout"
    );
}

#[test]
fn a_nonblocking_stall_is_eagain_and_hidden_from_poll_until_it_ends() {
    let dir = TempDir::new("stall-nonblocking");
    let (r, log) = realism(&dir, "stall-nonblocking", ONE_STALL);
    assert!(
        r.stdout.contains("first=Resource temporarily unavailable poll_now=0 again=Resource temporarily unavailable poll_wait=1 after_ms_ge_100=1 recv=4"),
        "{}",
        r.describe()
    );
    assert_eq!(fault_events(&log).len(), 1, "one stall, one event");
    assert_eq!(fault_events(&log)[0].errno.as_deref(), Some("EAGAIN"));
}

#[test]
fn a_blocking_call_on_an_fd_stalled_while_non_blocking_waits_instead_of_eagain() {
    let dir = TempDir::new("stall-then-blocking");
    let (r, log) = realism(&dir, "stall-then-blocking", ONE_STALL);
    assert!(
        r.stdout.contains(
            "first=Resource temporarily unavailable blocking_recv=4 errno=- after_ms_ge_100=1"
        ),
        "a blocking recv never fails with EAGAIN without a timeout: {}",
        r.describe()
    );
    assert_eq!(fault_events(&log).len(), 1, "one stall, one event");
}

#[test]
fn an_unseen_epoll_registration_degrades_the_stall_to_a_delay() {
    let dir = TempDir::new("stall-unseen");
    let (r, log) = realism(&dir, "stall-unseen", ONE_STALL);
    assert!(r.stdout.contains("recv=4 errno=-"), "{}", r.describe());
    assert_eq!(
        fault_events(&log)[0].degraded.as_deref(),
        Some("unseen-registration")
    );
}

#[test]
fn edge_triggered_loop_that_treats_short_reads_as_drained_never_hangs() {
    let dir = TempDir::new("et-echo");
    let fixture = compile_c("et_echo", dir.path(), &[]);
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 1..=5 {
        let log = format!("et-{seed}.jsonl");
        let mut cmd = std::process::Command::new(&bins().ctl);
        cmd.arg("run")
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--log")
            .arg(dir.join(&log))
            .arg("--policy")
            .arg(dir.write(&format!("{log}.toml"), HEAVY))
            .arg("--")
            .args([fixture.to_str().unwrap(), "40"]);
        let r = run(&mut cmd, 60);
        assert_eq!(r.code(), Some(0), "seed {seed}: {}", r.describe());
        assert!(r.stdout.contains("ok 4 clients x 1048576 bytes echoed"));
        let events = read_events(&dir.join(&log));
        let start = events.iter().find_map(Event::as_start).unwrap();
        assert_eq!(start.seed, Some(seed), "{start:?}");
        for f in fault_events(&events) {
            kinds.insert(f.fault.clone());
        }
    }
    for k in ["short", "stall", "EAGAIN"] {
        assert!(kinds.contains(k), "{k} injected: {kinds:?}");
    }
}

#[test]
fn tokio_echo_under_stalls_and_short_io() {
    let dir = TempDir::new("tokio");
    let r = run(
        &mut ctl_run(
            &dir,
            Some(HEAVY),
            "tokio.jsonl",
            &[bins().tokio_echo.to_str().unwrap()],
        ),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout.contains("ok 8 clients"), "{}", r.describe());
    let log = read_events(&dir.join("tokio.jsonl"));
    assert!(count_fault_events(&log, "stall") > 0 && count_fault_events(&log, "short") > 0);
    assert!(
        fault_events(&log).iter().all(|f| f.degraded.is_none()),
        "tokio's registrations are all seen"
    );
}

#[test]
fn nginx_serves_a_large_file_to_curl_under_benign_and_stalls() {
    let (Some(nginx), Some(_)) = (require("nginx"), require("curl")) else {
        return;
    };
    let dir = TempDir::new("nginx");
    let policy = format!(
        "{}\n{HEAVY}",
        include_str!("../../engine/src/profiles/benign.toml").replace("seed = 1", "")
    );
    // sendfile off: nginx then reads the file and writes the socket with writev (its sendfile
    // path is file_calls.rs's).
    let (_server, port) = start_nginx(&nginx, &dir, &policy, false);
    let www = dir.join("www");
    let out = dir.join("got.bin");
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--log"])
            .arg(dir.join("curl.jsonl"))
            .args(["--", "curl", "-sS", "-o"])
            .arg(&out)
            .arg(format!("http://127.0.0.1:{port}/big.bin")),
        120,
    );
    assert_eq!(
        r.code(),
        Some(0),
        "{}\nnginx error log:\n{}",
        r.describe(),
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
    assert_eq!(sha256(&out), sha256(&www.join("big.bin")));
    let log = read_events(&dir.join("nginx.jsonl"));
    let stalls = fault_events(&log)
        .iter()
        .filter(|f| f.fault == "stall" && f.errno.as_deref() == Some("EAGAIN"))
        .count();
    assert!(stalls > 0, "nginx got EAGAIN stalls");
    assert!(count_fault_events(&log, "short") > 0);
}

/// redis-benchmark retries a send that failed with EAGAIN in a tight loop (no syscall between tries),
/// so under stalls it spins for each stall's length: a few thousand requests keep this short.
#[test]
fn redis_benchmark_against_redis_under_stalls() {
    let (Some(_), Some(_)) = (require("redis-server"), require("redis-benchmark")) else {
        return;
    };
    let dir = TempDir::new("redis");
    let port = free_port().to_string();
    let mut server = ctl_run(
        &dir,
        Some(HEAVY),
        "redis.jsonl",
        &[
            "redis-server",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ],
    );
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Background::spawn(&mut server);
    wait_for_port(port.parse().unwrap(), 20);
    let r = run(
        &mut ctl_run(
            &dir,
            Some(HEAVY),
            "bench.jsonl",
            &[
                "redis-benchmark",
                "-p",
                &port,
                "-t",
                "set,get",
                "-n",
                "4000",
                "-c",
                "20",
                "-q",
            ],
        ),
        180,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let out = r.stdout.replace('\r', "\n");
    assert!(
        out.lines()
            .any(|l| l.starts_with("SET:") && l.contains("requests per second")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("GET:") && l.contains("requests per second")),
        "{out}"
    );
    assert!(!out.to_lowercase().contains("error"), "{out}");
    let log = read_events(&dir.join("redis.jsonl"));
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.fault == "stall" && f.errno.as_deref() == Some("EAGAIN")),
        "redis got stalls"
    );
}

/// asyncio on each of its selectors: epoll (level-triggered), poll and select.
#[test]
fn python_asyncio_echo_under_stalls() {
    let Some(_) = require("python3") else { return };
    let dir = TempDir::new("asyncio");
    let script = dir.write(
        "aecho.py",
        r#"
import asyncio, hashlib, os

async def handle(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()

async def client(port, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = os.urandom(n)
    async def send():
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
    sender = asyncio.create_task(send())
    got = await reader.read(-1)
    await sender
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest(), (len(got), n)

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await asyncio.gather(*(client(port, 300_000) for _ in range(6)))
    print("ok asyncio")

import selectors, sys
asyncio.set_event_loop(asyncio.SelectorEventLoop(getattr(selectors, sys.argv[1])()))
asyncio.get_event_loop().run_until_complete(main())
"#,
    );
    for selector in ["EpollSelector", "PollSelector", "SelectSelector"] {
        let log = format!("asyncio-{selector}.jsonl");
        let argv = ["python3", script.to_str().unwrap(), selector];
        let r = run(&mut ctl_run(&dir, Some(HEAVY), &log, &argv), 120);
        assert_eq!(r.code(), Some(0), "{selector}: {}", r.describe());
        assert!(r.stdout.contains("ok asyncio"), "{selector}");
        let log = read_events(&dir.join(&log));
        assert!(
            fault_events(&log)
                .iter()
                .any(|f| f.fault == "stall" && f.errno.as_deref() == Some("EAGAIN")),
            "{selector}: stalls injected"
        );
    }
}

#[test]
fn curl_with_poll_under_stalls() {
    let (Some(_), Some(_)) = (require("curl"), require("python3")) else {
        return;
    };
    let dir = TempDir::new("curl-poll");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    // Larger than the most a socket's receive buffer grows to (tcp_rmem's 6 MB): the server's FIN
    // cannot arrive before curl has read most of it, and reads after a FIN are never stalled.
    pseudo_random_file(&www.join("f.bin"), 16 << 20);
    let mut server = Background::spawn(
        Command::new("python3")
            .arg(workspace_root().join("tests/fixtures/serve.py"))
            .arg(&www)
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let port = read_line_starting(&mut server.0, "port ", 20);
    let policy = "[[rules]]\non = \"recv\"\nfd = \"tcp\"\nprobability = 0.2\nfault = { stall = \"1ms..10ms\" }\n";
    let out = dir.join("got.bin");
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "curl.jsonl",
            &[
                "curl",
                "-sS",
                "-o",
                out.to_str().unwrap(),
                &format!("http://127.0.0.1:{}/f.bin", port.trim()),
            ],
        ),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(sha256(&out), sha256(&www.join("f.bin")));
    let log = read_events(&dir.join("curl.jsonl"));
    // Not the reads held to end where a stall begins (`effect = "held"`): the stalls themselves.
    let stalls: Vec<_> = fault_events(&log)
        .into_iter()
        .filter(|f| f.fault == "stall" && f.effect.as_deref() != Some("held"))
        .collect();
    assert!(!stalls.is_empty());
    assert!(
        stalls
            .iter()
            .all(|f| f.errno.as_deref() == Some("EAGAIN") && f.degraded.is_none()),
        "curl polls: real EAGAIN stalls"
    );
}
