//! Real programs over real sockets: curl against python's http.server.

use chaos_tests::*;
use std::process::{Command, Stdio};

/// Starts the fixture HTTP server (optionally under chaos-ctl) serving `root`; returns it and its port.
fn serve(
    dir: &TempDir,
    root: &std::path::Path,
    under_chaos: Option<&str>,
) -> (Background, u16, std::sync::mpsc::Receiver<String>) {
    let script = workspace_root().join("tests/fixtures/serve.py");
    let mut cmd = match under_chaos {
        Some(log) => {
            let mut c = Command::new(&bins().ctl);
            c.args(["run", "-q", "--log"]).arg(dir.join(log)).arg("--");
            c.arg("python3");
            c
        }
        None => Command::new("python3"),
    };
    cmd.arg(script)
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Background::spawn(&mut cmd);
    let lines = stdout_lines(&mut server.0);
    let port = wait_for_line(&lines, "port ", 20).trim().parse().unwrap();
    (server, port, lines)
}

fn big_file(dir: &TempDir) -> std::path::PathBuf {
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    let mut data = Vec::with_capacity(4 << 20);
    let mut x: u32 = 12345;
    for _ in 0..(4 << 20) {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        data.push((x >> 16) as u8);
    }
    std::fs::write(root.join("big.bin"), data).unwrap();
    root
}

#[test]
fn curl_download_under_benign_is_intact_and_faulted() {
    let (Some(_), Some(_)) = (require("curl"), require("python3")) else {
        return;
    };
    let dir = TempDir::new("benign-curl");
    let root = big_file(&dir);
    let (_server, port, _) = serve(&dir, &root, Some("server.jsonl"));
    let out = dir.join("got.bin");
    let url = format!("http://127.0.0.1:{port}/big.bin");
    let r = run(
        Command::new(&bins().ctl)
            .args(["run", "--log"])
            .arg(dir.join("curl.jsonl"))
            .args(["--", "curl", "-sS", "-o"])
            .arg(&out)
            .arg(&url),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(sha256(&out), sha256(&root.join("big.bin")));
    assert!(
        r.stderr.contains("profile:benign"),
        "summary names the policy: {}",
        r.stderr
    );
    drop(_server);
    let mut events = read_events(&dir.join("curl.jsonl"));
    events.extend(read_events(&dir.join("server.jsonl")));
    assert!(
        count_fault_events(&events, "short") > 0,
        "short reads/writes injected"
    );
    // Python's only handler is SIGINT's, and curl has none: a SIGINT means "stop", so no EINTR can
    // be blamed on it (realism: EINTR needs a harmless handler).
    assert!(
        count_fault_events(&events, "EINTR") == 0,
        "no EINTR without a harmless handler"
    );
}

#[test]
fn reset_on_recv_fails_curl_and_resets_the_server() {
    let (Some(_), Some(_)) = (require("curl"), require("python3")) else {
        return;
    };
    let dir = TempDir::new("reset-curl");
    let root = big_file(&dir);
    let (_server, port, server_lines) = serve(&dir, &root, None);
    let policy = format!(
        "[[rules]]\non = \"recv\"\npeer = \":{port}\"\nafter = 3\ntimes = 1\nfault = \"ECONNRESET\"\n"
    );
    let r = run(
        &mut ctl_run(
            &dir,
            Some(&policy),
            "reset.jsonl",
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                &format!("http://127.0.0.1:{port}/big.bin"),
            ],
        ),
        60,
    );
    assert_eq!(
        r.code(),
        Some(56),
        "curl's 'failure receiving network data': {}",
        r.describe()
    );
    assert!(
        r.stderr.contains("Connection reset by peer"),
        "{}",
        r.describe()
    );
    let seen = wait_for_line(&server_lines, "server-error: ", 20);
    assert!(
        seen == "ConnectionResetError" || seen == "BrokenPipeError",
        "the server saw a real reset, got {seen}"
    );
    let log = read_events(&dir.join("reset.jsonl"));
    // The read before the reset may be held to end at the reset's offset (`effect = "held"`,
    // docs/determinism.md); the reset itself sends the RST.
    let reset = fault_events(&log)
        .into_iter()
        .find(|f| f.effect.as_deref() != Some("held"))
        .expect("the reset");
    assert_eq!(reset.effect.as_deref(), Some("rst-sent"));
}

#[test]
fn refused_connect_makes_curl_exit_7() {
    let Some(_) = require("curl") else { return };
    let dir = TempDir::new("refuse-curl");
    // Nothing needs to listen: the refusal happens before the real connect.
    let policy = "[[rules]]\non = \"connect\"\npeer = \":9\"\nfault = \"ECONNREFUSED\"\n";
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "refuse.jsonl",
            &["curl", "-sS", "http://127.0.0.1:9/"],
        ),
        60,
    );
    assert_eq!(r.code(), Some(7), "{}", r.describe());
    assert!(
        r.stderr.contains("Connection refused") || r.stderr.contains("Couldn't connect"),
        "{}",
        r.describe()
    );
    let log = read_events(&dir.join("refuse.jsonl"));
    // curl connects non-blocking: Linux says EINPROGRESS and reports the refusal through POLLERR
    // and SO_ERROR, which the shim makes the kernel itself do.
    let f = fault_events(&log)[0];
    assert_eq!(f.fault, "ECONNREFUSED");
    assert_eq!(f.errno.as_deref(), Some("EINPROGRESS"));
    assert_eq!(f.effect.as_deref(), Some("refused-by-kernel"));
    assert_eq!(f.op, "connect");
}
