//! Which calls a rule hits: after/every/times, time windows, file path globs, local addresses.

use chaos_tests::*;

fn counts_with(dir: &TempDir, rule_extra: &str) -> String {
    let fixture = compile_c("realism", dir.path(), &[]);
    let policy = dir.write(
        "p.toml",
        &format!("[[rules]]\non = \"send\"\nfd = \"unix\"\nfault = \"ENOBUFS\"\n{rule_extra}\n"),
    );
    let r = run(
        preloaded(&fixture, &policy, &dir.join("c.jsonl")).arg("counts"),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    r.stdout.trim().to_string()
}

#[test]
fn after_every_and_times_pick_exact_calls() {
    let dir = TempDir::new("counts");
    assert_eq!(
        counts_with(&dir, "after = 5\nevery = 3\ntimes = 4"),
        "failed: 5 8 11 14"
    );
    assert_eq!(counts_with(&dir, "after = 28"), "failed: 28 29");
    assert_eq!(counts_with(&dir, "probability = 0.0"), "failed:");
}

#[test]
fn window_limits_faults_to_a_time_range() {
    let dir = TempDir::new("window");
    assert_eq!(counts_with(&dir, "window = [\"1h\", \"2h\"]"), "failed:");
    let all: String = (0..30).map(|i| format!(" {i}")).collect();
    assert_eq!(
        counts_with(&dir, "window = [\"0s\", \"1h\"]"),
        format!("failed:{all}")
    );
}

#[test]
fn file_rules_match_by_path_glob() {
    let dir = TempDir::new("paths");
    let data = dir.write("match-me.txt", &"0123456789\n".repeat(50_000));
    let other = dir.write("other.txt", &"0123456789\n".repeat(50_000));
    let policy = format!(
        "[[rules]]\non = \"read\"\nfd = \"file\"\npath = \"{}/match-*\"\nfault = {{ short = \"1..10%\" }}\n",
        dir.path().display()
    );
    let script = format!(
        "cat {} > /dev/null; cat {} | wc -c",
        other.display(),
        data.display()
    );
    let r = run(
        &mut ctl_run(&dir, Some(&policy), "p.jsonl", &["sh", "-c", &script]),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout.trim(), "550000", "short file reads lose nothing");
    let log = read_events(&dir.join("p.jsonl"));
    let f = fault_events(&log);
    assert!(!f.is_empty());
    assert!(
        f.iter()
            .all(|e| e.kind.as_deref() == Some("file") && e.path.as_deref() == data.to_str()),
        "{f:?}"
    );
}

#[test]
fn local_address_rules_hit_the_server_side_only() {
    let Some(_) = require("python3") else { return };
    let dir = TempDir::new("local");
    // Server and client in one python process; the rule names the server's port as `local`, so only
    // the accepted socket's sends are delayed, never the client's.
    let script = dir.write(
        "srv.py",
        "import socket, threading, sys\nl = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n\
def serve():\n    c, _ = l.accept()\n    c.sendall(c.recv(100))\n    c.close()\n\
threading.Thread(target=serve).start()\n\
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\ns.sendall(b'hi')\nprint(s.recv(100))\n",
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let policy =
        format!("[[rules]]\non = \"writes\"\nlocal = \":{port}\"\nfault = {{ delay = \"1ms\" }}\n");
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "l.jsonl",
            &["python3", script.to_str().unwrap(), &port.to_string()],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let log = read_events(&dir.join("l.jsonl"));
    let f = fault_events(&log);
    assert!(!f.is_empty());
    for e in &f {
        assert_eq!(
            e.local.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str()),
            "{e:?}"
        );
        assert!(
            e.conn
                .as_deref()
                .expect("a connection")
                .starts_with("tcp-in#"),
            "{e:?}"
        );
    }
}

/// `peer = "@name*"` matches an abstract unix socket on both backends, and the log names the peer
/// `@name` (the kernel's leading NUL never reaches a log or a pattern as a byte).
#[test]
fn abstract_unix_peers_match_at_patterns_on_both_backends() {
    require("python3");
    let dir = TempDir::new("abstract");
    let script = dir.write(
        "abstract.py",
        "import os, socket\n\
         name = b'\\0chaos-abs-' + str(os.getpid()).encode()\n\
         srv = socket.socket(socket.AF_UNIX)\n\
         srv.bind(name)\n\
         srv.listen(1)\n\
         c = socket.socket(socket.AF_UNIX)\n\
         c.connect(name)\n\
         conn, _ = srv.accept()\n\
         try:\n    c.send(b'x')\n    print('sent')\n\
         except OSError as e:\n    print('failed', e.errno)\n",
    );
    for backend in ["preload", "seccomp"] {
        for (peer, expect) in [("@chaos-abs-*", "failed 105"), ("@other-*", "sent")] {
            let log = format!("{backend}-{}.jsonl", expect.len());
            let policy = format!(
                "[[rules]]\non = [\"send\"]\nfd = \"unix\"\npeer = \"{peer}\"\nfault = \"ENOBUFS\"\n"
            );
            let mut cmd = std::process::Command::new(&bins().ctl);
            cmd.args(["run", "--backend", backend, "--log"])
                .arg(dir.join(&log))
                .arg("--policy")
                .arg(dir.write(&format!("{log}.toml"), &policy))
                .arg("--")
                .arg("python3")
                .arg(&script);
            let r = run(&mut cmd, 60);
            assert_eq!(r.code(), Some(0), "{backend} {peer}: {}", r.describe());
            assert_eq!(
                r.stdout.trim(),
                expect,
                "{backend} {peer}: {}",
                r.describe()
            );
            let logged = read_events(&dir.join(&log));
            let fs = fault_events(&logged);
            if expect.starts_with("failed") {
                assert_eq!(fs.len(), 1, "{backend}: {logged:?}");
                let named = fs[0].peer.as_deref().unwrap_or_default();
                assert!(
                    named.starts_with("@chaos-abs-"),
                    "{backend}: peer {named:?}"
                );
            } else {
                assert!(fs.is_empty(), "{backend}: {logged:?}");
            }
        }
    }
}
