//! The benign promises: where Linux itself fixes a call's outcome, no rule may change it, however
//! likely the rule. Each test runs tests/fixtures/invariants.c (one scenario per argv[1]) under a
//! policy whose rules would produce the impossible outcome if the shim ignored the promise, and
//! checks what the program saw (its result line) and, where it matters, the event log.

use chaos_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A per-test directory with the fixture compiled into it.
fn fixture(name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(name);
    let bin = compile_c("invariants", dir.path(), &[]);
    (dir, bin)
}

/// Runs the fixture with the shim preloaded under `policy`; the run must complete (exit 0) and
/// the shim must have loaded (a start line). Returns the run and its log.
fn under(
    dir: &TempDir,
    bin: &Path,
    policy: &str,
    name: &str,
    args: &[&str],
) -> (Finished, Vec<Event>) {
    let policy_path = dir.write(&format!("{name}.toml"), policy);
    let log = dir.join(&format!("{name}.jsonl"));
    let r = run(preloaded(bin, &policy_path, &log).args(args), 30);
    assert_eq!(r.code(), Some(0), "{name}: {}", r.describe());
    let events = read_events(&log);
    assert!(
        events.iter().any(|e| e.as_start().is_some()),
        "{name}: the shim never loaded: {}",
        r.describe()
    );
    (r, events)
}

/// The fixture under `chaos-ctl run` with the default profile (no policy) and `--seed`.
fn under_benign(dir: &TempDir, bin: &PathBuf, seed: u64, args: &[&str]) -> Finished {
    let mut cmd = Command::new(&bins().ctl);
    cmd.arg("run")
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--log")
        .arg(dir.join(&format!("benign-{seed}-{}.jsonl", args.join("-"))))
        .arg("--")
        .arg(bin)
        .args(args);
    let r = run(&mut cmd, 60);
    assert_eq!(r.code(), Some(0), "benign seed {seed}: {}", r.describe());
    r
}

/// The stdout line starting with `prefix`.
fn line<'a>(r: &'a Finished, prefix: &str) -> &'a str {
    r.stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}: {}", r.describe()))
}

/// The value of `key=` in a result line.
fn value<'a>(line: &'a str, key: &str) -> &'a str {
    let pat = format!(" {key}=");
    let start = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + pat.len();
    line[start..].split(' ').next().unwrap()
}

fn num(line: &str, key: &str) -> i64 {
    value(line, key)
        .parse()
        .unwrap_or_else(|e| panic!("{key}= in {line:?}: {e}"))
}

const EVERY_FAULT: &str = r#"
[[rules]]
name = "stall"
on = ["reads", "writes"]
fd = ["tcp", "unix", "pipe"]
probability = 0.5
fault = { stall = "1ms..2ms" }

[[rules]]
name = "short"
on = ["reads", "writes"]
fd = ["tcp", "unix", "pipe"]
probability = 0.5
fault = { short = "1..90%" }

[[rules]]
name = "eintr"
on = ["reads", "writes"]
fd = ["tcp", "unix", "pipe"]
probability = 0.5
fault = "EINTR"

[[rules]]
name = "eagain"
on = ["reads", "writes"]
fd = ["tcp", "unix", "pipe"]
probability = 0.5
fault = "EAGAIN"
"#;

/// Invariant 1: recv/read on a never-connected or listening TCP socket (blocking and not) fail ENOTCONN at
/// once, send after SHUT_WR fails EPIPE at once: no state in which a stall, a short transfer, an
/// EINTR or an EAGAIN could happen, so none is injected (nor logged).
#[test]
fn calls_on_unconnected_sockets_return_what_linux_returns_unfaulted() {
    let (dir, bin) = fixture("notconn");
    let (r, log) = under(&dir, &bin, EVERY_FAULT, "notconn", &["notconn"]);
    let l = line(&r, "notconn ");
    assert_eq!(num(l, "calls"), 2500, "{l}");
    assert_eq!(
        num(l, "wrong"),
        0,
        "every call must fail ENOTCONN (reads) or EPIPE (send after SHUT_WR), as on Linux: {l}"
    );
    let fds: Vec<i64> = value(l, "fds")
        .split(',')
        .map(|f| f.parse().unwrap())
        .collect();
    let on_them: Vec<&Fault> = fault_events(&log)
        .into_iter()
        .filter(|f| fds.contains(&i64::from(f.fd)))
        .collect();
    assert!(
        on_them.is_empty(),
        "{} fault event(s) on fds {fds:?}, e.g. {:?}",
        on_them.len(),
        on_them[0]
    );
}

const WRITE_STALLS: &str = r#"
[[rules]]
name = "stall"
on = "writes"
fd = ["unix", "pipe"]
probability = 0.5
fault = { stall = "1ms..2ms" }

[[rules]]
name = "eagain"
on = "writes"
fd = ["unix", "pipe"]
probability = 0.5
fault = "EAGAIN"
"#;

/// Invariant 2: A non-blocking write fails EAGAIN only when the buffer is full: never into an empty one.
#[test]
fn eagain_on_a_write_only_when_the_buffer_is_full() {
    let (dir, bin) = fixture("eagain");
    let (r, _) = under(&dir, &bin, WRITE_STALLS, "eagain", &["eagain-write"]);
    for kind in ["unix", "pipe"] {
        let l = line(&r, &format!("eagain-write {kind} "));
        assert_eq!(
            num(l, "eagain"),
            0,
            "1-byte writes into an empty {kind} buffer never fail EAGAIN: {l}"
        );
        assert_eq!((num(l, "other"), num(l, "undrained")), (0, 0), "{l}");
    }
}

/// Resolves python3 to the real interpreter (not a pyenv-style wrapper script), or None to skip.
fn python() -> Option<String> {
    let p = require("python3")?;
    let r = run(
        Command::new(p).args(["-c", "import sys; print(sys.executable)"]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    Some(r.stdout.trim().to_string())
}

fn asyncio_script() -> String {
    workspace_root()
        .join("tests/fixtures/asyncio_signals.py")
        .to_str()
        .unwrap()
        .to_string()
}

/// 2 (asyncio). loop.add_signal_handler's wakeup byte goes into an empty non-blocking socketpair:
/// a fake EAGAIN there loses the signal. Under the default profile, several seeds.
#[test]
fn asyncio_loses_no_signal_under_the_default_profile() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("asyncio-benign");
    for seed in 1..=3u64 {
        let mut cmd = Command::new(&bins().ctl);
        cmd.arg("run")
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--log")
            .arg(dir.join(&format!("seed-{seed}.jsonl")))
            .arg("--")
            .arg(&py)
            .arg(asyncio_script());
        let r = run(&mut cmd, 60);
        assert_eq!(r.code(), Some(0), "seed {seed}: {}", r.describe());
        let l = line(&r, "asyncio-signals ");
        assert_eq!(
            (num(l, "lost"), num(l, "sent")),
            (0, 300),
            "seed {seed}: every SIGUSR1 must reach its asyncio handler: {l}"
        );
    }
}

/// 2 (asyncio), with stalls and EAGAINs on half of all unix and pipe writes.
#[test]
fn asyncio_loses_no_signal_under_write_stalls() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("asyncio-stalls");
    let script = asyncio_script();
    let r = run(
        &mut ctl_run(&dir, Some(WRITE_STALLS), "asyncio.jsonl", &[&py, &script]),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let l = line(&r, "asyncio-signals ");
    assert_eq!(
        (num(l, "lost"), num(l, "sent")),
        (0, 300),
        "every SIGUSR1 must reach its asyncio handler: {l}"
    );
}

/// Invariant 3: A blocking 28-byte send with a reader draining the other side never waits long enough for a
/// signal to cut it short (and none arrives): never short, even with a handler installed.
#[test]
fn small_blocking_sends_are_never_short() {
    let (dir, bin) = fixture("short-write");
    let policy = "[[rules]]\non = \"writes\"\nfd = [\"unix\", \"tcp\"]\nprobability = 1.0\nfault = { short = \"1..90%\" }\n";
    let (r, _) = under(&dir, &bin, policy, "short-write", &["short-write"]);
    for kind in ["unix", "tcp"] {
        let l = line(&r, &format!("short-write {kind} "));
        assert_eq!(
            num(l, "shorts"),
            0,
            "blocking 28-byte sends on {kind} are never short: {l}"
        );
        assert_eq!(
            (num(l, "errors"), num(l, "received")),
            (0, 2_800_000),
            "{l}"
        );
    }
}

/// 3 (control). A 4 MB blocking pipe write to a slow reader really blocks, and with a handler
/// installed a signal could end it early: shorts are allowed there, and with probability 1.0 some
/// happen. The rule is not simply "never short".
#[test]
fn a_big_blocking_pipe_write_to_a_slow_reader_can_be_short() {
    let (dir, bin) = fixture("short-big");
    let policy = "[[rules]]\non = \"writes\"\nfd = \"pipe\"\nprobability = 1.0\nfault = { short = \"1..90%\" }\n";
    let (r, log) = under(&dir, &bin, policy, "short-big", &["short-big-pipe"]);
    let l = line(&r, "short-big-pipe ");
    assert!(
        num(l, "shorts") >= 1,
        "4 MB writes into a full pipe with a handler installed may be short, and at p=1.0 some are: {l}"
    );
    assert_eq!(
        (num(l, "bytes"), num(l, "intact")),
        (20 * 4 * 1024 * 1024, 1),
        "{l}"
    );
    assert!(
        count_fault_events(&log, "short") >= 1,
        "the shorts are logged"
    );
}

const EINTR_PIPES: &str = "[[rules]]\non = [\"reads\", \"writes\"]\nfd = \"pipe\"\nprobability = 0.5\nfault = \"EINTR\"\n";

/// Invariant 4a: A read with data queued, a write with room, and every signal blocked in the thread: nothing
/// could interrupt them.
#[test]
fn no_eintr_when_the_call_cannot_block_and_signals_are_blocked() {
    let (dir, bin) = fixture("eintr-queued");
    let (r, log) = under(&dir, &bin, EINTR_PIPES, "eintr-queued", &["eintr-queued"]);
    let l = line(&r, "eintr-queued ");
    assert_eq!(
        (num(l, "read-eintr"), num(l, "write-eintr")),
        (0, 0),
        "no EINTR on reads of queued data or writes with room, all signals blocked: {l}"
    );
    assert_eq!((num(l, "other"), num(l, "bytes")), (0, 10_000), "{l}");
    assert_eq!(count_fault_events(&log, "EINTR"), 0);
}

/// 4a'. Reads that really wait, but every signal is blocked in every thread: no handler can run
/// during them.
#[test]
fn no_eintr_when_every_signal_is_blocked() {
    let (dir, bin) = fixture("eintr-masked");
    let (r, log) = under(
        &dir,
        &bin,
        EINTR_PIPES,
        "eintr-masked",
        &["eintr-wait", "masked"],
    );
    let l = line(&r, "eintr-wait masked ");
    assert_eq!(
        num(l, "read-eintr"),
        0,
        "no EINTR while every signal is blocked: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (200, 1), "{l}");
    assert_eq!(count_fault_events(&log, "EINTR"), 0);
}

/// Invariant 4b: Handlers only for SIGTERM, SIGINT and SIGHUP (shutdown signals nobody sends a test
/// program), no SA_RESTART, reads that really wait: no EINTR.
#[test]
fn no_eintr_from_handlers_for_shutdown_signals_only() {
    let (dir, bin) = fixture("eintr-term");
    let (r, log) = under(
        &dir,
        &bin,
        EINTR_PIPES,
        "eintr-term",
        &["eintr-wait", "term"],
    );
    let l = line(&r, "eintr-wait term ");
    assert_eq!(
        (num(l, "read-eintr"), num(l, "write-eintr")),
        (0, 0),
        "handlers for SIGTERM/SIGINT/SIGHUP alone do not make EINTR possible: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (200, 1), "{l}");
    assert_eq!(count_fault_events(&log, "EINTR"), 0);
}

/// 4c (control). A SIGCHLD handler without SA_RESTART, unblocked, and reads that really wait:
/// EINTR is possible and, at p=0.5, happens; the retrying reader still gets every byte in order.
#[test]
fn eintr_where_a_sigchld_handler_could_run_during_a_wait() {
    let (dir, bin) = fixture("eintr-chld");
    let (r, log) = under(
        &dir,
        &bin,
        EINTR_PIPES,
        "eintr-chld",
        &["eintr-wait", "chld"],
    );
    let l = line(&r, "eintr-wait chld ");
    assert!(
        num(l, "read-eintr") > 0,
        "reads that wait with a SIGCHLD handler (no SA_RESTART) installed can be interrupted: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (200, 1), "{l}");
    assert!(count_fault_events(&log, "EINTR") > 0);
}

/// Invariant 4d: `signal = "SIGUSR1"` in a rule declares a signal the program expects: its handler then
/// makes EINTR possible. Without it, a SIGUSR1 handler alone does not.
#[test]
fn a_rules_signal_names_the_signal_that_may_interrupt() {
    let (dir, bin) = fixture("eintr-usr1");
    let with = format!("{}signal = \"SIGUSR1\"\n", EINTR_PIPES);
    let (r, _) = under(&dir, &bin, &with, "usr1-declared", &["eintr-wait", "usr1"]);
    let l = line(&r, "eintr-wait usr1 ");
    assert!(
        num(l, "read-eintr") > 0,
        "with signal = \"SIGUSR1\" in the rule, the SIGUSR1 handler makes EINTR possible: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (200, 1), "{l}");

    let (r, log) = under(
        &dir,
        &bin,
        EINTR_PIPES,
        "usr1-undeclared",
        &["eintr-wait", "usr1"],
    );
    let l = line(&r, "eintr-wait usr1 ");
    assert_eq!(
        num(l, "read-eintr"),
        0,
        "without signal = \"SIGUSR1\" its handler alone does not make EINTR possible: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (200, 1), "{l}");
    assert_eq!(count_fault_events(&log, "EINTR"), 0);
}

const SHORT_READS: &str = "[[rules]]\non = \"reads\"\nfd = [\"tcp\", \"unix\", \"pipe\"]\nprobability = 1.0\nfault = { short = \"1..90%\" }\n";

/// Invariant 5: Messages written with one write() each, read into a buffer of a whole number of messages:
/// Linux returns whole messages only (unix stream skbs, atomic pipe writes), so a short read may
/// return fewer messages but never part of one. A message carrying SCM_RIGHTS arrives whole with
/// its fd.
#[test]
fn short_reads_never_split_what_linux_delivers_whole() {
    let (dir, bin) = fixture("messages");
    let (r, _) = under(&dir, &bin, SHORT_READS, "msg16", &["msg16-unix"]);
    let l = line(&r, "msg16-unix ");
    assert_eq!(
        num(l, "split"),
        0,
        "reads of 16-byte unix stream messages into 4096 bytes return whole messages: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (320_000, 1), "{l}");

    let (r, _) = under(&dir, &bin, SHORT_READS, "msg100", &["msg100-pipe"]);
    let l = line(&r, "msg100-pipe ");
    assert_eq!(
        num(l, "split"),
        0,
        "reads of atomic 100-byte pipe writes into 4000 bytes return whole messages: {l}"
    );
    assert_eq!((num(l, "bytes"), num(l, "intact")), (2_000_000, 1), "{l}");

    let (r, _) = under(&dir, &bin, SHORT_READS, "scm", &["scm-rights"]);
    let l = line(&r, "scm ");
    assert!(
        l.contains("whole=50 of 50 fds=50 working=50"),
        "each 64-byte message with SCM_RIGHTS arrives whole, with its fd: {l}"
    );
}

/// Invariant 6: Once poll reports POLLRDHUP, everything the peer sent is queued: one 65536-byte read takes
/// all 10,000 bytes (blocking or not) and the next returns 0 — under shorts and stalls at p=1.0.
#[test]
fn after_the_peers_fin_one_read_takes_everything() {
    let (dir, bin) = fixture("fin");
    let stall = "[[rules]]\non = \"reads\"\nfd = [\"tcp\", \"unix\"]\nprobability = 1.0\nfault = { stall = \"1ms..2ms\" }\n";
    for (pname, policy) in [("short", SHORT_READS), ("stall", stall)] {
        for mode in ["fin-tcp", "fin-unix"] {
            let (r, _) = under(&dir, &bin, policy, &format!("{mode}-{pname}"), &[mode]);
            let l = line(&r, &format!("{mode} "));
            assert!(
                l.contains("ok=20 of 20"),
                "{pname} on reads: after the peer's FIN the first read returns all 10000 bytes, the next 0: {l}"
            );
        }
    }
}

/// Invariant 7: Ping-pong of 31-byte messages over TCP loopback: each message is one segment, so every read
/// returns the whole message — under the default profile and under shorts on every read.
#[test]
fn a_short_tcp_read_is_a_segment_boundary() {
    let (dir, bin) = fixture("pingpong");
    let check = |r: &Finished, what: &str| {
        let l = line(r, "pingpong ");
        assert_eq!(
            (num(l, "rounds"), num(l, "broken")),
            (2000, 0),
            "{what}: {l}"
        );
        assert_eq!(
            num(l, "split"),
            0,
            "{what}: every read of a 31-byte ping-pong message returns all 31 bytes: {l}"
        );
    };
    for seed in 1..=2 {
        let r = under_benign(&dir, &bin, seed, &["pingpong"]);
        check(&r, &format!("benign seed {seed}"));
    }
    let (r, _) = under(&dir, &bin, SHORT_READS, "pingpong-short", &["pingpong"]);
    check(&r, "short on every read");
}

/// Invariant 8a: An injected refusal of a non-blocking connect looks exactly like Linux's own: EINPROGRESS,
/// then POLLOUT|POLLERR|POLLHUP, SO_ERROR = ECONNREFUSED (once), and the socket stays dead.
#[test]
fn a_refused_nonblocking_connect_reports_like_linux() {
    let (dir, bin) = fixture("nb-connect");
    // What Linux itself says for a port nobody listens on (no shim).
    let linux = run(Command::new(&bin).args(["nb-connect", "closed"]), 30);
    assert_eq!(linux.code(), Some(0), "{}", linux.describe());
    let linux_line = line(&linux, "nb-connect ").to_string();

    let policy =
        "[[rules]]\non = \"connect\"\nfd = \"tcp\"\nprobability = 1.0\nfault = \"ECONNREFUSED\"\n";
    let (r, log) = under(
        &dir,
        &bin,
        policy,
        "nb-connect",
        &["nb-connect", "listening"],
    );
    let l = line(&r, "nb-connect ");
    assert!(
        l.starts_with("nb-connect connect=-1/Operation now in progress "),
        "a non-blocking connect returns -1 EINPROGRESS first: {l}"
    );
    let revents = value(l, "revents");
    for flag in ["POLLOUT", "POLLERR", "POLLHUP"] {
        assert!(
            revents.split('|').any(|f| f == flag),
            "poll reports {flag} for a refused connect: {l}"
        );
    }
    assert!(l.contains(" so_error=Connection refused "), "{l}");
    assert_eq!(
        l, linux_line,
        "the injected refusal must look like Linux's own (second line: a real refused connect)"
    );
    let f = fault_events(&log);
    assert!(
        f.iter()
            .any(|e| e.op == "connect" && e.fault == "ECONNREFUSED"),
        "the refusal is logged: {f:?}"
    );
}

/// Invariant 8b: `{ errno = "ETIMEDOUT", after = "300ms" }`: a blocking connect times out only after waiting,
/// as a real one does, and the log says how long.
#[test]
fn a_timed_out_blocking_connect_waits_before_failing() {
    let (dir, bin) = fixture("timeout-connect");
    let policy = "[[rules]]\non = \"connect\"\nfd = \"tcp\"\nprobability = 1.0\nfault = { errno = \"ETIMEDOUT\", after = \"300ms\" }\n";
    let (r, log) = under(&dir, &bin, policy, "timeout", &["timeout-connect"]);
    let l = line(&r, "timeout-connect ");
    assert!(
        l.contains("connect=-1/Connection timed out "),
        "the connect fails ETIMEDOUT: {l}"
    );
    let ms = num(l, "ms");
    assert!(
        (250..20_000).contains(&ms),
        "it fails after its 300 ms wait, not at once: {l}"
    );
    let f = fault_events(&log);
    let ev = f
        .iter()
        .find(|e| e.op == "connect" && e.errno.as_deref() == Some("ETIMEDOUT"))
        .unwrap_or_else(|| panic!("no ETIMEDOUT connect fault in the log: {f:?}"));
    let ns = ev.after_ns.unwrap_or_else(|| {
        panic!("the fault event says how long the connect waited (`after_ns`): {ev:?}")
    });
    assert!(
        ns >= 250_000_000,
        "`after_ns` is the 300 ms wait in ns: {ev:?}"
    );
}

/// Invariant 9: The shim's own fds (log, eventfds, ...) are invisible: /proc/self/fd lists what it lists
/// without the shim, and so does an exec'd child's. After a fault the process holds the log's fd
/// (high, close-on-exec: opening and closing it around every line would leave a window where a
/// racing dup2 could make us write into the program's file), but its exec'd child still sees none.
#[test]
fn the_shims_own_fds_are_not_the_programs_business() {
    let (dir, bin) = fixture("fds");
    // Without the shim: whatever the test process itself passed down is the baseline.
    let plain = run(Command::new(&bin).arg("fds"), 30);
    assert_eq!(plain.code(), Some(0), "{}", plain.describe());
    let want_parent = line(&plain, "fds start=").to_string();
    let want_child = line(&plain, "fds child=").to_string();
    assert!(
        want_parent.contains(" next-fd=3"),
        "baseline: fd 3 is free: {want_parent}"
    );

    let check = |r: &Finished, what: &str| {
        assert_eq!(r.code(), Some(0), "{what}: {}", r.describe());
        assert_eq!(
            line(r, "fds start="),
            want_parent,
            "{what}: the program sees no fd of the shim's (second line: without the shim)"
        );
        assert_eq!(
            line(r, "fds child="),
            want_child,
            "{what}: an exec'd child inherits no fd of the shim's (second line: without the shim)"
        );
    };

    let (r, _) = under(&dir, &bin, "# none\n", "none", &["fds"]);
    check(&r, "policy with no rules");

    // Before its first fault the program holds no fd of ours; after one (benign's pipe-read stall
    // may fire before the listing) only the log's, at 1000 or above; an exec'd child never any.
    let check_after_faults = |r: &Finished, what: &str| {
        assert_eq!(r.code(), Some(0), "{what}: {}", r.describe());
        let at_start = line(r, "fds start=");
        assert!(
            want_parent.starts_with(at_start.split(" after-io=").next().unwrap()),
            "{what}: before its first fault the program sees no fd of the shim's: {at_start}"
        );
        let after_io = at_start.split(" after-io=").nth(1).unwrap();
        for fd in after_io.split(' ').next().unwrap().split(',') {
            let n: i32 = fd.split(':').next().unwrap().parse().unwrap_or(-1);
            assert!(
                want_parent.contains(fd) || n >= 1000,
                "{what}: the only new fd after a fault is the log's, above 1000: {at_start}"
            );
        }
        assert_eq!(
            line(r, "fds child="),
            want_child,
            "{what}: an exec'd child inherits no fd of the shim's (second line: without the shim)"
        );
    };

    let r = under_benign(&dir, &bin, 1, &["fds"]);
    check_after_faults(&r, "benign profile");

    let delay =
        "[[rules]]\non = \"read\"\nfd = \"pipe\"\nprobability = 1.0\nfault = { delay = \"1ms\" }\n";
    let (r, log) = under(&dir, &bin, delay, "delay", &["fds"]);
    check_after_faults(&r, "after a fault");
    let parent = log
        .iter()
        .filter_map(Event::as_start)
        .find(|s| s.via == "exec")
        .unwrap()
        .header
        .pid;
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.header.pid == parent && f.fault == "delay"),
        "the parent's pipe read was delayed (and logged) before it listed its fds and forked"
    );
}
