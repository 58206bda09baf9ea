//! Toxiproxy's toxics on real file descriptors: curl through `bandwidth` and `latency` (the time
//! the configured rate or delay allows, the file intact), redis-benchmark through a 5 ms latency
//! (the throughput it allows), tokio and node clients against a blackholed server (they time out
//! by their own timeouts and recover after `control disable`), `limit_data` ending a connection
//! with a FIN or an RST at exactly the limit, `reset_after`, and a peer that never reads.

use chaos_tests::*;
use std::process::{Command, Stdio};

fn fixture() -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/toxic_peer.py")
}

/// A policy of one rule called `name`.
fn policy(name: &str, rule: &str) -> String {
    format!("[[rules]]\nname = \"{name}\"\n{rule}\n")
}

fn curl(dir: &TempDir, rule: &str, port: u16, log: &str) -> (Finished, Vec<f64>) {
    let text = policy("link", rule);
    let r = run(
        &mut ctl_run(
            dir,
            Some(&text),
            log,
            &[
                "curl",
                "-sS",
                "-o",
                dir.join("got").to_str().unwrap(),
                "-w",
                "%{time_connect} %{time_starttransfer} %{time_total}",
                &format!("http://127.0.0.1:{port}/blob"),
            ],
        ),
        60,
    );
    let times = r
        .stdout
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    (r, times)
}

#[test]
fn curl_through_a_bandwidth_toxic_takes_the_time_the_rate_allows() {
    let Some(_) = require("curl") else { return };
    let dir = TempDir::new("toxic-bandwidth");
    let (_server, port) = http_blob(&dir);
    let (r, t) = curl(
        &dir,
        "on = \"reads\"\nfd = \"tcp\"\nfault = { bandwidth = \"512KB/s\" }",
        port,
        "bw.jsonl",
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        sha256(&dir.join("got")),
        sha256(&dir.join("blob")),
        "intact"
    );
    // 1 MiB at 512 KiB/s is 2 s (less the first burst of 10 KiB): never more than 15 % faster;
    // slower by up to half, since a loaded machine oversleeps and the bucket earns at most a
    // burst meanwhile (seen: 2.5 s with two builds beside the suite).
    let transfer = t[2] - t[0];
    assert!(
        (1.7..=3.0).contains(&transfer),
        "{transfer} s: {}",
        r.describe()
    );
    let log = read_events(&dir.join("bw.jsonl"));
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.effect.as_deref() == Some("bandwidth") && f.fault == "short")
    );
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.effect.as_deref() == Some("bandwidth") && f.fault == "stall")
    );
}

#[test]
fn curl_through_a_latency_toxic_gets_its_first_byte_that_much_later_and_no_more() {
    let Some(_) = require("curl") else { return };
    let dir = TempDir::new("toxic-latency");
    let (_server, port) = http_blob(&dir);
    let (r, t) = curl(
        &dir,
        "on = \"reads\"\nfd = \"tcp\"\nfault = { latency = \"300ms\", jitter = \"10ms\" }",
        port,
        "lat.jsonl",
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(
        sha256(&dir.join("got")),
        sha256(&dir.join("blob")),
        "intact"
    );
    let first_byte = t[1] - t[0];
    assert!(
        (0.29..=0.40).contains(&first_byte),
        "{first_byte} s: {}",
        r.describe()
    );
    // The body streams behind the response's first chunk: latency once, not once per read.
    assert!(t[2] - t[0] < 0.9, "{t:?}");
}

#[test]
fn redis_benchmark_through_5ms_of_latency_gets_the_throughput_it_allows() {
    let (Some(_), Some(_)) = (require("redis-server"), require("redis-benchmark")) else {
        return;
    };
    let dir = TempDir::new("toxic-redis");
    let port = free_port().to_string();
    let text = policy(
        "far",
        "on = \"reads\"\nfd = \"tcp\"\nfault = { latency = \"5ms\" }",
    );
    let mut server = ctl_run(
        &dir,
        Some(&text),
        "redis.jsonl",
        &[
            "redis-server",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    );
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Background::spawn(&mut server);
    wait_for_port(port.parse().unwrap(), 20);
    let r = run(
        Command::new("redis-benchmark")
            .args(["-p", &port, "-t", "get", "-n", "10000", "-c", "50", "-q"]),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let out = r.stdout.replace('\r', "\n");
    let line = out
        .lines()
        .find(|l| l.starts_with("GET:") && l.contains("requests per second"))
        .unwrap_or_else(|| panic!("{out}"));
    let rps: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let p50: f64 = line
        .split("p50=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    // 50 clients, one request each in flight, each request read 5 ms after it arrived: at most
    // 10,000 a second; well above a tenth of that when nothing else is in the way.
    assert!(rps <= 10_500.0, "{line}");
    assert!(rps >= 2_000.0, "{line}");
    assert!(p50 >= 5.0, "{line}");
}

/// Runs a client against an echo server blackholed by rule `hole`, waits for it to time out by
/// its own timer, switches the rule off from outside, and waits for it to recover.
fn blackholed_client_recovers(name: &str, argv: &[&str]) {
    let dir = TempDir::new(name);
    let port = free_port();
    let _echo = toxic_peer("echo", port);
    let text = policy(
        "hole",
        &format!(
            "on = [\"reads\", \"writes\"]\nfd = \"tcp\"\npeer = \":{port}\"\nfault = {{ blackhole = true }}"
        ),
    );
    let addr = format!("127.0.0.1:{port}");
    let mut args: Vec<&str> = argv.to_vec();
    args.push(&addr);
    let mut cmd = ctl_run(&dir, Some(&text), "run.jsonl", &args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut bg = Background::spawn(&mut cmd);
    let lines = stdout_lines(&mut bg.0);
    let waited: u64 = wait_for_line(&lines, "timeout ", 20)
        .trim()
        .parse()
        .unwrap();
    assert!(
        (900..3000).contains(&waited),
        "{name}: timed out after {waited} ms"
    );
    let r = run(
        Command::new(&bins().ctl)
            .args(["control", "--run"])
            .arg(dir.join("run.run"))
            .args(["disable", "hole"]),
        20,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    wait_for_line(&lines, "recovered", 20);
    let status = bg.0.wait().unwrap();
    assert!(status.success(), "{name}: {status:?}");
    let log = read_events(&dir.join("run.jsonl"));
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.effect.as_deref() == Some("blackhole")),
        "{name}: the blackhole is logged"
    );
}

#[test]
fn a_tokio_client_times_out_on_a_blackhole_and_recovers_when_it_is_switched_off() {
    blackholed_client_recovers(
        "toxic-tokio",
        &[bins().tokio_timeout_client.to_str().unwrap()],
    );
}

#[test]
fn a_node_client_times_out_on_a_blackhole_and_recovers_when_it_is_switched_off() {
    let Some(_) = require("node") else { return };
    let script = workspace_root().join("tests/fixtures/node_timeout_client.js");
    blackholed_client_recovers("toxic-node", &["node", script.to_str().unwrap()]);
}

/// `toxic_peer.py read` against a `server` peer, under `rule` on its reads.
fn read_through(dir: &TempDir, server: &str, rule: &str, log: &str) -> String {
    read_through_as(dir, server, rule, log, &[])
}

fn read_through_as(dir: &TempDir, server: &str, rule: &str, log: &str, extra: &[&str]) -> String {
    let port = free_port();
    let _server = toxic_peer(server, port);
    let text = policy(
        "cut",
        &format!("on = \"reads\"\nfd = \"tcp\"\npeer = \":{port}\"\n{rule}"),
    );
    let port = port.to_string();
    let script = fixture();
    let mut argv = vec!["python3", script.to_str().unwrap(), "read", &port];
    argv.extend_from_slice(extra);
    let r = run(&mut ctl_run(dir, Some(&text), log, &argv), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    r.stdout
}

#[test]
fn limit_data_ends_the_connection_at_exactly_the_limit_with_a_fin_or_a_reset() {
    let dir = TempDir::new("toxic-limit");
    let out = read_through(
        &dir,
        "blob",
        "fault = { limit_data = \"64KB\" }",
        "close.jsonl",
    );
    assert!(out.starts_with("eof after 65536 "), "{out}");
    let out = read_through(
        &dir,
        "blob",
        "fault = { limit_data = \"64KB\", then = \"reset\" }",
        "reset.jsonl",
    );
    assert!(
        out.starts_with("ConnectionResetError after 65536 "),
        "{out}"
    );
    let log = read_events(&dir.join("reset.jsonl"));
    let f = fault_events(&log)
        .into_iter()
        .find(|f| f.fault == "close")
        .expect("the limit is logged");
    assert_eq!(
        (f.limit, f.effect.as_deref()),
        (Some(65536), Some("limit-data-reset"))
    );
}

#[test]
fn reset_after_sends_a_real_rst_that_long_after_the_connection_was_made() {
    let dir = TempDir::new("toxic-reset-after");
    // The echo server sends nothing: the reader waits in a blocking read, and the reset ends
    // that wait at 400 ms, as an RST from the network would.
    let out = read_through(
        &dir,
        "echo",
        "fault = { reset_after = \"400ms\" }",
        "ra.jsonl",
    );
    let secs: f64 = out
        .strip_prefix("ConnectionResetError after 0 in ")
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .parse()
        .unwrap();
    assert!((0.35..1.5).contains(&secs), "{out}");
}

/// A read of at most `chunk` bytes through `limit_data = "64KB"` ending with `then`, against a
/// server whose first 200 bytes come alone: what the reader got before the end.
fn read_to_the_limit(dir: &TempDir, chunk: usize, then: &str) -> String {
    read_through_as(
        dir,
        "trickle",
        &format!("fault = {{ limit_data = \"64KB\", then = \"{then}\" }}"),
        &format!("limit-{chunk}-{then}.jsonl"),
        &[&format!("chunk={chunk}")],
    )
}

#[test]
fn limit_data_ends_the_stream_at_the_limit_whatever_the_read_size() {
    let dir = TempDir::new("toxic-limit-reads");
    // A first read asking for the whole limit finds 200 bytes queued: that is not the limit.
    for chunk in [65536, 4096, 100_000] {
        let out = read_to_the_limit(&dir, chunk, "close");
        assert!(out.starts_with("eof after 65536 "), "recv({chunk}): {out}");
        let out = read_to_the_limit(&dir, chunk, "reset");
        assert!(
            out.starts_with("ConnectionResetError after 65536 "),
            "recv({chunk}): {out}"
        );
        let log = read_events(&dir.join(&format!("limit-{chunk}-reset.jsonl")));
        let ends: Vec<_> = fault_events(&log)
            .into_iter()
            .filter(|f| f.fault == "close")
            .collect();
        assert_eq!(ends.len(), 1, "one end, at the limit: {ends:?}");
    }
}

#[test]
fn curl_gets_exactly_the_limit_in_header_and_body_bytes() {
    let dir = TempDir::new("toxic-limit-curl");
    // The headers come alone: curl's first read finds them and nothing more.
    let port = free_port();
    let _server = toxic_peer("http", port);
    let text = policy(
        "limit",
        &format!(
            "on = \"reads\"\nfd = \"tcp\"\npeer = \":{port}\"\n\
             fault = {{ limit_data = \"64KB\", then = \"close\" }}"
        ),
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&text),
            "curl.jsonl",
            &[
                "curl",
                "-sS",
                "-o",
                dir.join("got").to_str().unwrap(),
                "-w",
                "%{size_header} %{size_download}",
                &format!("http://127.0.0.1:{port}/blob"),
            ],
        ),
        60,
    );
    // The server said 1 MiB and the stream ended early: curl's "transfer closed".
    assert_eq!(r.code(), Some(18), "{}", r.describe());
    let sizes: Vec<u64> = r
        .stdout
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(sizes.len(), 2, "{}", r.describe());
    assert_eq!(
        sizes[0] + sizes[1],
        65536,
        "header {} + body {}",
        sizes[0],
        sizes[1]
    );
    let got = std::fs::metadata(dir.join("got")).unwrap().len();
    assert_eq!(got, sizes[1]);
}

/// The `reset_after` line in a log: the rule, the connection's peer, the toxic and its RST.
fn assert_reset_logged(log: &std::path::Path, port: u16, found_by: &[&str]) {
    let events = read_events(log);
    let resets: Vec<_> = fault_events(&events)
        .into_iter()
        .filter(|f| f.effect.as_deref() == Some("reset-after"))
        .collect();
    assert_eq!(
        resets.len(),
        1,
        "one reset, logged: {:?}",
        fault_events(&events)
    );
    let f = resets[0];
    assert_eq!(f.rule, "cut", "{f:?}");
    assert_eq!(f.fault, "reset", "{f:?}");
    assert_eq!(f.errno.as_deref(), Some("ECONNRESET"), "{f:?}");
    assert_eq!(
        f.peer.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str()),
        "{f:?}"
    );
    assert!(
        f.key.as_deref().is_some_and(|k| k.contains("/r0/rx@")),
        "{f:?}"
    );
    let op = f.op.as_str();
    assert!(found_by.contains(&op), "found due by {op}: {f:?}");
}

/// `read_through_as` with the server's port, for the log's `peer`.
fn reset_through(dir: &TempDir, server: &str, rule: &str, log: &str, extra: &[&str]) -> u16 {
    let port = free_port();
    let _server = toxic_peer(server, port);
    let text = policy(
        "cut",
        &format!("on = \"reads\"\nfd = \"tcp\"\npeer = \":{port}\"\n{rule}"),
    );
    let port_text = port.to_string();
    let script = fixture();
    let mut argv = vec!["python3", script.to_str().unwrap(), "read", &port_text];
    argv.extend_from_slice(extra);
    let r = run(&mut ctl_run(dir, Some(&text), log, &argv), 30);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.starts_with("ConnectionResetError after "),
        "{}",
        r.describe()
    );
    port
}

#[test]
fn every_reset_after_is_logged_whoever_finds_it_due() {
    let dir = TempDir::new("toxic-reset-logged");
    let rule = "fault = { reset_after = \"300ms\" }";
    // Python's timed recv polls first: the RST is sent by the poll that finds it due.
    let port = reset_through(&dir, "echo", rule, "poll.jsonl", &[]);
    assert_reset_logged(&dir.join("poll.jsonl"), port, &["poll"]);
    // No call until after it is due: the first recv sends it, and fails with it.
    let port = reset_through(&dir, "echo", rule, "late.jsonl", &["blocking", "late"]);
    assert_reset_logged(&dir.join("late.jsonl"), port, &["recv", "recvfrom"]);
    // Stacked with a rate: data is flowing when the reset comes.
    let stacked = "fault = { reset_after = \"300ms\", bandwidth = \"64KB/s\" }";
    let port = reset_through(&dir, "blob", stacked, "rate.jsonl", &["blocking"]);
    assert_reset_logged(&dir.join("rate.jsonl"), port, &["recv", "recvfrom"]);
}

#[test]
fn slow_close_delays_the_end_of_the_stream_by_its_time() {
    let dir = TempDir::new("toxic-slow-close");
    // The server sends "hi" and closes at once; its FIN reaches the reader 600 ms late, whether
    // the reader waits in poll (a socket timeout) or in a blocking read.
    for (extra, log) in [
        (&[][..], "poll.jsonl"),
        (&["blocking"][..], "blocking.jsonl"),
    ] {
        let out = read_through_as(&dir, "hi", "fault = { slow_close = \"600ms\" }", log, extra);
        let secs: f64 = out
            .strip_prefix("eof after 2 in ")
            .unwrap_or_else(|| panic!("{log}: {out}"))
            .trim()
            .parse()
            .unwrap();
        assert!((0.55..1.5).contains(&secs), "{log}: {out}");
        let events = read_events(&dir.join(log));
        assert!(
            fault_events(&events)
                .iter()
                .any(|f| f.effect.as_deref() == Some("slow-close")),
            "{log}: logged"
        );
    }
}

#[test]
fn a_peer_that_never_reads_fills_the_buffers_and_the_sender_times_out() {
    let dir = TempDir::new("toxic-never-reads");
    let port = free_port();
    // The server is under chaos: its own reads are blackholed, so it never reads anything.
    let text = policy(
        "deaf",
        &format!(
            "on = \"reads\"\nfd = \"tcp\"\nlocal = \":{port}\"\nfault = {{ blackhole = true }}"
        ),
    );
    let mut server = ctl_run(
        &dir,
        Some(&text),
        "server.jsonl",
        &[
            "python3",
            fixture().to_str().unwrap(),
            "sink",
            &port.to_string(),
        ],
    );
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Background::spawn(&mut server);
    wait_for_port(port, 20);
    let r = run(
        Command::new("python3")
            .arg(fixture())
            .args(["flood", &port.to_string()]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let sent: u64 = r
        .stdout
        .trim()
        .strip_prefix("timeout after ")
        .unwrap_or_else(|| panic!("{}", r.describe()))
        .parse()
        .unwrap();
    // What the kernel buffers hold (send and receive), and not the 8 MiB.
    assert!(sent > 0 && sent < 8 << 20, "{sent}");
}

#[test]
fn bad_toxics_are_refused_with_what_was_expected() {
    let dir = TempDir::new("toxic-bad");
    assert_refused(
        &dir,
        &[
            (
                "[[rules]]\non = \"reads\"\nfault = { bandwidth = \"512KB\" }\n",
                "expected bytes per second, e.g. \"512KB/s\"",
            ),
            (
                "[[rules]]\non = \"connect\"\nfault = { latency = \"5ms\" }\n",
                "act on a connection's reads and writes, not on connect",
            ),
            (
                "[[rules]]\non = \"reads\"\nfault = { latency = \"5ms\", then = \"reset\" }\n",
                "`then` says how a connection ends",
            ),
            (
                "[[rules]]\non = \"reads\"\nfault = { blackhole = \"soon\" }\n",
                "`blackhole`",
            ),
            (
                "[[rules]]\non = \"close\"\nfault = { slow_close = \"2s\" }\n",
                "act on a connection's reads and writes, not on close",
            ),
        ],
    );
}

#[test]
fn a_fault_the_seccomp_backend_refuses_logs_nothing_under_force() {
    let dir = TempDir::new("toxic-seccomp-force");
    let exe = compile_c("loopback_pair", dir.path(), &["-static"]);
    // A rule the backend carries out beside the one it refuses: the run is under chaos, and
    // only the refused rule is silent.
    let text = "[[rules]]\nname = \"shuffle\"\non = \"writes\"\nfd = \"udp\"\n\
                fault = { reorder = 1 }\n\n\
                [[rules]]\nname = \"short-reads\"\non = \"reads\"\nfd = \"tcp\"\n\
                probability = 0.3\nfault = { short = \"1..90%\" }\n";
    let mut cmd = Command::new(&bins().ctl);
    cmd.args(["run", "--force", "--log"])
        .arg(dir.join("force.jsonl"))
        .arg("--policy")
        .arg(dir.write("force.toml", text))
        .arg("--")
        .arg(&exe)
        .arg("20");
    let r = run(&mut cmd, 60);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("rule `shuffle`: reorder")
            && r.stderr.contains("under --force the rule injects nothing"),
        "the refusal is said: {}",
        r.stderr
    );
    let log = read_events(&dir.join("force.jsonl"));
    let faults = fault_events(&log);
    let phantom: Vec<_> = faults.iter().filter(|f| f.rule == "shuffle").collect();
    assert!(
        phantom.is_empty(),
        "no line for what did not happen: {phantom:?}"
    );
    assert!(
        faults
            .iter()
            .any(|f| f.rule == "short-reads" && f.backend.as_deref() == Some("seccomp")),
        "the rule the backend carries out still fires: {faults:?}"
    );
}

#[test]
fn validate_notes_the_ops_a_group_leaves_out_and_refuses_a_named_one() {
    let dir = TempDir::new("toxic-groups");
    let rule = |on: &str| {
        format!("[[rules]]\nname = \"lossy\"\non = {on}\nfd = \"udp\"\nfault = \"drop\"\n")
    };
    let group = dir.write("group.toml", &rule("\"writes\""));
    let v = run(Command::new(&bins().ctl).arg("validate").arg(&group), 20);
    assert_eq!(v.code(), Some(0), "a group is fine: {}", v.describe());
    let notes: Vec<&str> = v.stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(
        notes,
        [format!(
            "note: rule \"lossy\" ({}:5): drop cannot act on sendmmsg: the rule leaves it out of \
             its `on` group",
            group.display()
        )],
        "{}",
        v.describe()
    );
    assert!(
        v.stdout.contains("on write,") && !v.stdout.contains("sendmmsg"),
        "the rule's ops are those it acts on: {}",
        v.describe()
    );
    // Named on its own, sendmmsg is an error: validate exits 1, run refuses with 125.
    let named = dir.write("named.toml", &rule("[\"sendto\", \"sendmmsg\"]"));
    let v = run(Command::new(&bins().ctl).arg("validate").arg(&named), 20);
    assert_eq!(v.code(), Some(1), "{}", v.describe());
    let says = format!("{}:5:9: drop does not apply to sendmmsg", named.display());
    assert!(v.stderr.contains(&says), "{}", v.describe());
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--policy"])
            .arg(&named)
            .args(["--", "true"]),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains(&says), "{}", r.describe());
}

#[test]
fn a_timed_blackhole_ends_the_stream_with_nothing_through_and_logs_the_end() {
    let dir = TempDir::new("toxic-blackhole-ends");
    for (mode, extra) in [("timeout", &[][..]), ("blocking", &["blocking"][..])] {
        let log = format!("{mode}.jsonl");
        let out = read_through_as(
            &dir,
            "blob",
            "fault = { blackhole = \"300ms\", then = \"close\" }",
            &log,
            extra,
        );
        // What the blackhole swallowed never arrives: the FIN is all the reader sees.
        assert!(out.starts_with("eof after 0 "), "{mode}: {out}");
        let events = read_events(&dir.join(&log));
        let ends: Vec<_> = fault_events(&events)
            .into_iter()
            .filter(|f| f.effect.as_deref() == Some("blackhole-ended"))
            .collect();
        assert_eq!(ends.len(), 1, "{mode}: the end is one line: {ends:?}");
        assert_eq!(
            (ends[0].fault.as_str(), ends[0].returned),
            ("close", Some(0)),
            "{mode}: {:?}",
            ends[0]
        );
    }
}
