//! Platform quirks: each shows the Linux behaviour without the platform and the emulated one with it,
//! on our fixtures, on the supervisor example, and on programs no one here wrote (python3, curl).

use chaos_tests::*;
use std::process::Command;

fn compile_example(dir: &TempDir) -> std::path::PathBuf {
    let out = dir.join("supervisor");
    let src = workspace_root().join("examples/supervisor/supervisor.c");
    let r = run(
        Command::new("cc").args(["-O2", "-o"]).arg(&out).arg(src),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    out
}

fn ctl_platform(dir: &TempDir, log: &str, platform: Option<&str>, argv: &[&str]) -> Finished {
    let mut cmd = Command::new(&bins().ctl);
    cmd.args(["run", "--log"]).arg(dir.join(log));
    if let Some(p) = platform {
        cmd.args(["--platform", p]);
    }
    cmd.arg("--").args(argv);
    run(&mut cmd, 60)
}

#[test]
fn supervisor_example_fails_under_macos_every_time_and_the_fix_holds() {
    let dir = TempDir::new("supervisor");
    let exe = compile_example(&dir);
    let exe = exe.to_str().unwrap();
    for i in 0..5 {
        let linux = ctl_platform(&dir, &format!("l{i}.jsonl"), None, &[exe, "naive"]);
        assert_eq!(
            linux.code(),
            Some(0),
            "Linux, run {i}: {}",
            linux.describe()
        );
        assert!(linux.stdout.contains("handoff complete: READY"));

        let mac = ctl_platform(&dir, &format!("m{i}.jsonl"), Some("macos"), &[exe, "naive"]);
        assert_eq!(mac.code(), Some(1), "macOS, run {i}: {}", mac.describe());
        assert!(
            mac.stderr
                .contains("arming the receive timeout failed: Invalid argument"),
            "{}",
            mac.describe()
        );
        let log = read_events(&dir.join(&format!("m{i}.jsonl")));
        assert!(
            fault_events(&log)
                .iter()
                .any(|f| f.quirk.as_deref() == Some("setsockopt-after-shutdown")
                    && f.errno.as_deref() == Some("EINVAL")),
            "the quirk is logged by name"
        );

        let fixed = ctl_platform(&dir, &format!("f{i}.jsonl"), Some("macos"), &[exe, "fixed"]);
        assert_eq!(
            fixed.code(),
            Some(0),
            "fixed under macOS, run {i}: {}",
            fixed.describe()
        );
    }
}

/// (fixture mode, quirk, what Linux prints, what the emulated platform prints)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "setsockopt-unix-peer-closed",
        "setsockopt-after-shutdown",
        "setsockopt=ok",
        "setsockopt=Invalid argument",
    ),
    (
        "setsockopt-tcp-reset",
        "setsockopt-after-shutdown",
        "setsockopt=ok",
        "setsockopt=Invalid argument",
    ),
    (
        "setsockopt-tcp-open",
        "setsockopt-after-shutdown",
        "setsockopt=ok",
        "setsockopt=ok",
    ),
    (
        "getpeername-unix-peer-closed",
        "getpeername-einval",
        "getpeername=ok",
        "getpeername=Invalid argument",
    ),
    (
        "shutdown-listener",
        "shutdown-enotconn",
        "shutdown=ok",
        "shutdown=Transport endpoint is not connected",
    ),
    (
        "shutdown-twice",
        "shutdown-enotconn",
        "second=ok",
        "second=Transport endpoint is not connected",
    ),
    (
        "shutdown-after-fin",
        "shutdown-enotconn",
        "shutdown=ok peer_sees=eof",
        "shutdown=Transport endpoint is not connected peer_sees=nothing",
    ),
    (
        "accept-nonblock",
        "accept-inherits-nonblock",
        "accepted_nonblocking=0",
        "accepted_nonblocking=1",
    ),
    (
        "udp-big",
        "dgram-size-limit",
        "send=ok after_sndbuf=ok",
        "send=Message too long after_sndbuf=ok",
    ),
    (
        "sendto-connected",
        "sendto-connected-eisconn",
        "send=ok",
        "sendto=Transport endpoint is already connected send=ok",
    ),
    (
        "read-int-max",
        "io-over-int-max",
        "read=ok",
        "read=Invalid argument",
    ),
    (
        "send-after-reset",
        "write-after-reset-epipe",
        "send=Connection reset by peer recv=ok",
        "send=Broken pipe recv=Connection reset by peer",
    ),
    (
        "sndbuf-huge",
        "sockbuf-enobufs",
        "setsockopt=ok",
        "setsockopt=No buffer space available",
    ),
    (
        "accept4",
        "no-accept4",
        "accept4=ok",
        "accept4=Function not implemented",
    ),
    (
        "socket-flags",
        "no-socket-type-flags",
        "socket=ok",
        "socket=Invalid argument",
    ),
    (
        "reuseport",
        "no-reuseport",
        "setsockopt=ok",
        "setsockopt=Protocol not available",
    ),
    (
        "reuseport",
        "wsl1-sockopt-gaps",
        "setsockopt=ok",
        "setsockopt=Invalid argument",
    ),
    (
        "keepcnt",
        "wsl1-sockopt-gaps",
        "setsockopt=ok",
        "setsockopt=Invalid argument",
    ),
    (
        "close-reset-unacked",
        "close-reset-econnreset",
        "close=ok again=Bad file descriptor",
        "close=Connection reset by peer again=Bad file descriptor",
    ),
    (
        "close-reset-acked",
        "close-reset-econnreset",
        "close=ok",
        "close=ok",
    ),
    (
        "close-linger",
        "close-linger-eintr",
        "close=ok again=Bad file descriptor",
        "close=Interrupted system call again=Bad file descriptor",
    ),
    (
        "accept-pending",
        "accept-pending-error",
        "accept=ok",
        "retry=ok",
    ),
];

#[test]
fn every_quirk_changes_only_what_it_should() {
    let dir = TempDir::new("quirks");
    let fixture = compile_c("quirks", dir.path(), &[]);
    let none = dir.write("none.toml", "");
    for (i, (mode, quirk, linux, emulated)) in CASES.iter().enumerate() {
        let log = dir.join(&format!("{i}.jsonl"));
        let plain = run(preloaded(&fixture, &none, &log).arg(mode), 30);
        assert!(
            plain.stdout.contains(linux),
            "{mode} on Linux: {}",
            plain.describe()
        );
        let log = dir.join(&format!("{i}-q.jsonl"));
        let q = run(
            preloaded(&fixture, &none, &log)
                .arg(mode)
                .env("CHAOS_QUIRKS", quirk),
            30,
        );
        assert!(
            q.stdout.contains(emulated),
            "{mode} with {quirk}: {}",
            q.describe()
        );
        if linux != emulated {
            let events = read_events(&log);
            assert!(
                fault_events(&events)
                    .iter()
                    .any(|f| f.quirk.as_deref() == Some(*quirk)),
                "{mode}: a `{quirk}` event is logged"
            );
        }
    }
}

#[test]
fn quirks_that_need_more_than_one_run() {
    let dir = TempDir::new("quirks-more");
    let fixture = compile_c("quirks", dir.path(), &[]);
    let none = dir.write("none.toml", "");
    let d = dir.path().to_str().unwrap();
    let quirked = |mode: &str, quirk: &str, policy: &std::path::Path, log: &str| {
        run(
            preloaded(&fixture, policy, &dir.join(log))
                .args([mode, d])
                .env("CHAOS_QUIRKS", quirk),
            30,
        )
    };
    let plain = |mode: &str, policy: &std::path::Path, log: &str| {
        run(
            preloaded(&fixture, policy, &dir.join(log)).args([mode, d]),
            30,
        )
    };

    // A full unix datagram receiver: a blocking send would wait on Linux; on macOS it fails at once.
    let r = quirked(
        "unix-dgram-full-blocking",
        "unix-dgram-enobufs",
        &none,
        "a.jsonl",
    );
    assert!(
        r.stdout.contains("blocking=No buffer space available"),
        "{}",
        r.describe()
    );

    // A full unix listen backlog: EAGAIN on Linux, "nobody listens" on macOS/BSD.
    assert!(
        plain("unix-backlog", &none, "b.jsonl")
            .stdout
            .contains("connect=Resource temporarily unavailable")
    );
    let r = quirked(
        "unix-backlog",
        "unix-backlog-econnrefused",
        &none,
        "c.jsonl",
    );
    assert!(
        r.stdout.contains("connect=Connection refused"),
        "{}",
        r.describe()
    );

    // MSG_NOSIGNAL that old macOS headers defined as 0: the EPIPE comes with SIGPIPE.
    assert!(
        plain("epipe-nosignal", &none, "d.jsonl")
            .stdout
            .contains("send=Broken pipe")
    );
    let r = quirked("epipe-nosignal", "msg-nosignal-ignored", &none, "e.jsonl");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(r.status.signal(), Some(libc::SIGPIPE), "{}", r.describe());

    // A connect interrupted by a signal (an injected EINTR), then retried.
    let eintr = dir.write(
        "eintr.toml",
        "[[rules]]\non = \"connect\"\nfd = \"tcp\"\ntimes = 1\nfault = \"EINTR\"\nsignal = \"SIGUSR1\"\n",
    );
    let r = plain("connect-retry-eintr", &eintr, "f.jsonl");
    assert!(
        r.stdout.contains("first=Interrupted system call retry=ok"),
        "{}",
        r.describe()
    );
    let r = quirked("connect-retry-eintr", "connect-retry", &eintr, "g.jsonl");
    assert!(
        r.stdout.contains(
            "first=Interrupted system call retry=Transport endpoint is already connected"
        ),
        "{}",
        r.describe()
    );

    // Race-type quirks follow quirk_probability: at 0 they never fire.
    let never = dir.write("never.toml", "quirk_probability = 0.0\n");
    let r = quirked(
        "send-reset-first",
        "send-reset-eprototype",
        &never,
        "h.jsonl",
    );
    assert!(
        r.stdout.contains("send=Connection reset by peer"),
        "{}",
        r.describe()
    );
}

#[test]
fn unix_paths_over_103_bytes() {
    let dir = TempDir::new("unixpath");
    let fixture = compile_c("quirks", dir.path(), &[]);
    let none = dir.write("none.toml", "");
    let d = dir.path().to_str().unwrap();
    let plain = run(
        preloaded(&fixture, &none, &dir.join("a.jsonl")).args(["unix-path-long", d]),
        30,
    );
    assert!(plain.stdout.contains("bind=ok"), "{}", plain.describe());
    let mac = run(
        preloaded(&fixture, &none, &dir.join("b.jsonl"))
            .args(["unix-path-long", d])
            .env("CHAOS_PLATFORM", "macos"),
        30,
    );
    assert!(
        mac.stdout.contains("bind=Invalid argument"),
        "{}",
        mac.describe()
    );
}

#[test]
fn platforms_select_their_quirks_and_bad_names_are_refused() {
    let list = run(
        Command::new(&bins().ctl).args(["quirks", "--platform", "wsl1"]),
        20,
    );
    assert!(
        list.stdout.contains("wsl1-sockopt-gaps") && !list.stdout.contains("no-accept4"),
        "{}",
        list.stdout
    );
    let all = run(Command::new(&bins().ctl).arg("quirks"), 20);
    for (_, quirk, _, _) in CASES {
        assert!(all.stdout.contains(quirk), "{quirk} listed");
    }
    let bad = run(
        Command::new(&bins().ctl).args(["run", "--platform", "darwin", "--", "true"]),
        20,
    );
    assert_eq!(bad.code(), Some(125));
    assert!(
        bad.stderr
            .contains("unknown platform `darwin`; expected one of macos"),
        "{}",
        bad.stderr
    );
    let bad = run(
        Command::new(&bins().ctl).args(["run", "--quirk", "nope", "--", "true"]),
        20,
    );
    assert_eq!(bad.code(), Some(125));
    assert!(
        bad.stderr.contains("unknown quirk `nope`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_policy_can_name_its_platform() {
    let dir = TempDir::new("policy-platform");
    let exe = compile_example(&dir);
    let r = run(
        &mut ctl_run(
            &dir,
            Some("platform = \"macos\"\n"),
            "p.jsonl",
            &[exe.to_str().unwrap(), "naive"],
        ),
        30,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let r = run(
        &mut ctl_run(
            &dir,
            Some("platform = \"macos\"\nno_quirks = [\"setsockopt-after-shutdown\"]\n"),
            "q.jsonl",
            &[exe.to_str().unwrap(), "naive"],
        ),
        30,
    );
    assert_eq!(
        r.code(),
        Some(0),
        "no_quirks leaves it out: {}",
        r.describe()
    );
}

/// Python's socket module, unchanged, as a macOS user would see it.
#[test]
fn python3_sees_macos_errors() {
    let Some(_) = require("python3") else { return };
    let dir = TempDir::new("py-quirks");
    let long = format!("{}/{}", dir.path().display(), "p".repeat(104));
    let script = dir.write(
        "q.py",
        &format!(
            r#"
import socket, struct, time, sys
what = sys.argv[1]
try:
    if what == "setsockopt":
        a, b = socket.socketpair()
        b.close()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 1, 0))
    elif what == "bind":
        path = "{long}"[:104]
        socket.socket(socket.AF_UNIX).bind(path)
    elif what == "send":
        srv = socket.create_server(("127.0.0.1", 0))
        c = socket.create_connection(srv.getsockname())
        s, _ = srv.accept()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.05)
        c.send(b"x")
    print("ok")
except OSError as e:
    print(type(e).__name__, e)
"#
        ),
    );
    let py = |what: &str, platform: Option<&str>| {
        let log = format!("{what}-{}.jsonl", platform.unwrap_or("linux"));
        ctl_platform(
            &dir,
            &log,
            platform,
            &["python3", script.to_str().unwrap(), what],
        )
    };
    assert!(py("setsockopt", None).stdout.contains("ok"));
    assert!(
        py("setsockopt", Some("macos"))
            .stdout
            .contains("OSError [Errno 22] Invalid argument")
    );
    assert!(py("bind", None).stdout.contains("ok"));
    assert!(
        py("bind", Some("macos"))
            .stdout
            .contains("OSError [Errno 22] Invalid argument")
    );
    let linux = py("send", None);
    assert!(
        linux
            .stdout
            .contains("ConnectionResetError [Errno 104] Connection reset by peer"),
        "{}",
        linux.describe()
    );
    let mac = py("send", Some("macos"));
    assert!(
        mac.stdout
            .contains("BrokenPipeError [Errno 32] Broken pipe"),
        "{}",
        mac.describe()
    );
}

/// curl's --unix-socket with a path a macOS $TMPDIR makes long.
#[test]
fn curl_unix_socket_path_too_long_on_macos() {
    let (Some(_), Some(_)) = (require("curl"), require("python3")) else {
        return;
    };
    let dir = TempDir::new("curl-unix");
    // Exactly 104 bytes: one more than macOS's sun_path holds, whatever the temp dir's length.
    let base = format!("{}/", dir.path().display());
    assert!(
        base.len() < 100,
        "temp dir path too long for this test: {base}"
    );
    let path = format!("{base}{}", "s".repeat(104 - base.len()));
    let path = path.as_str();
    // A unix-socket HTTP server, so that the Linux run really succeeds.
    let server = dir.write(
        "userver.py",
        &format!(
            "import http.server, socketserver, os\nclass S(socketserver.UnixStreamServer):\n    def get_request(self):\n        r, _ = super().get_request()\n        return r, ('local', 0)\n\
             p = '{path}'\nS(p, http.server.SimpleHTTPRequestHandler).serve_forever()\n"
        ),
    );
    let _srv = Background::spawn(
        Command::new("python3")
            .arg(&server)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::path::Path::new(path).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "server socket never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = "http://localhost/";
    let linux = ctl_platform(
        &dir,
        "c1.jsonl",
        None,
        &["curl", "-sS", "-o", "/dev/null", "--unix-socket", path, url],
    );
    assert_eq!(linux.code(), Some(0), "{}", linux.describe());
    let mac = ctl_platform(
        &dir,
        "c2.jsonl",
        Some("macos"),
        &["curl", "-sS", "-o", "/dev/null", "--unix-socket", path, url],
    );
    assert_eq!(
        mac.code(),
        Some(7),
        "curl cannot connect: {}",
        mac.describe()
    );
    let log = read_events(&dir.join("c2.jsonl"));
    assert!(
        fault_events(&log)
            .iter()
            .any(|f| f.quirk.as_deref() == Some("unix-path-max-103"))
    );
}

#[test]
fn a_close_retried_after_a_failed_close_is_reported() {
    let dir = TempDir::new("close-retry");
    let fixture = compile_c("quirks", dir.path(), &[]);
    let none = dir.write("none.toml", "");
    let warnings = |log: &std::path::Path| {
        read_events(log)
            .iter()
            .filter_map(Event::as_warning)
            .filter(|w| w.op == "close")
            .count()
    };
    // Plain Linux: the close succeeds, so the second close is an ordinary EBADF, not a retry.
    let log = dir.join("plain.jsonl");
    let r = run(
        preloaded(&fixture, &none, &log).arg("close-reset-unacked"),
        30,
    );
    assert!(r.stdout.contains("close=ok"), "{}", r.describe());
    assert_eq!(warnings(&log), 0);
    // FreeBSD: the close fails but releases the fd; closing it again is the bug, and is logged.
    let log = dir.join("freebsd.jsonl");
    let r = run(
        preloaded(&fixture, &none, &log)
            .arg("close-reset-unacked")
            .env("CHAOS_PLATFORM", "freebsd"),
        30,
    );
    assert!(
        r.stdout.contains("close=Connection reset by peer"),
        "{}",
        r.describe()
    );
    assert_eq!(warnings(&log), 1, "{}", r.describe());
}
