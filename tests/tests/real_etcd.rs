//! etcd (Debian's etcd-server 3.4, a Go program, so served by the seccomp backend) under a rule
//! that fails its WAL's fdatasync with EIO: etcd stops with its own fatal error, after the puts
//! it acknowledged before, and the log holds the fault at its key. Without the fault the same
//! run serves every put and keeps running until chaos-ctl stops it.

use chaos_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// etcd 3.4 makes four WAL fdatasyncs while it starts and elects itself, then one per put
/// (measured with strace), so the fault meets a put after a couple were acknowledged.
const AFTER: u64 = 6;

/// What etcd 3.4's raft loop logs (capnslog, level C) before exiting 1 when `wal.Save`, whose
/// last step is the fdatasync, fails (etcdserver/raft.go in 3.4).
const ETCD_FATAL: &str = "etcdserver: failed to save state and entries error: input/output error";

/// The rule. etcd creates its first WAL segment in `member/wal.tmp/` and renames the directory
/// to `member/wal/` only after the segment's first fdatasync: a file is matched by the name it
/// had when it was first seen (as the shim matches it at its open), so the glob takes both.
fn policy(data: &Path, after: u64) -> String {
    format!(
        "[[rules]]\nname = \"wal-sync-eio\"\non = \"fdatasync\"\nfd = \"file\"\n\
         path = \"{}/member/wal*/*.wal\"\nafter = {after}\nfault = \"EIO\"\n",
        data.display()
    )
}

/// etcd under chaos-ctl; the whole group is killed if a test ends before waiting for it.
struct Etcd {
    ctl: Option<Child>,
    client: String,
    dir: PathBuf,
    log: PathBuf,
    data: PathBuf,
}

/// Starts etcd on ephemeral ports in its own data dir under `chaos-ctl run --backend seccomp`.
fn start(dir: &TempDir, after: u64) -> Etcd {
    let etcd = require("etcd").expect("etcd");
    let data = dir.join("data");
    let policy = dir.write("policy.toml", &policy(&data, after));
    let log = dir.join("chaos.jsonl");
    let client = format!("http://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = Command::new(&bins().ctl);
    cmd.args(["run", "-q", "--backend", "seccomp", "--policy"])
        .arg(&policy)
        .arg("--log")
        .arg(&log)
        .arg("--")
        .arg(etcd)
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("default={peer}")])
        // The notification counts, printed when the supervisor ends.
        .env("CHAOS_DEBUG", "1")
        .stdin(Stdio::null())
        // Files, not pipes: nobody reads a pipe while etcd runs, and a full one would block it.
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    let ctl = Some(
        own_group(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")),
    );
    let mut etcd = Etcd {
        ctl,
        client,
        dir: dir.path().to_path_buf(),
        log,
        data,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while etcdctl(&etcd.client, &["endpoint", "health"]).code() != Some(0) {
        if Instant::now() > deadline || etcd.running().try_wait().unwrap().is_some() {
            kill_group(etcd.running());
            let r = etcd.finish(5);
            panic!("etcd did not become healthy: {}", r.describe());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    etcd
}

/// One etcdctl command with its own timeouts, under a hard deadline.
fn etcdctl(client: &str, args: &[&str]) -> Finished {
    let etcdctl = require("etcdctl").expect("etcdctl");
    run(
        Command::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                client,
                "--dial-timeout=2s",
                "--command-timeout=4s",
            ])
            .args(args),
        20,
    )
}

impl Etcd {
    fn running(&mut self) -> &mut Child {
        self.ctl.as_mut().expect("chaos-ctl not yet waited for")
    }

    /// Waits for chaos-ctl with a deadline (its group is killed, and the test fails, on the
    /// deadline); its status and output.
    fn finish(&mut self, secs: u64) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = self.running().try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                kill_group(self.running());
                panic!("chaos-ctl run -- etcd did not finish within {secs}s (killed)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.ctl = None;
        let read = |name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        Finished {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(ctl) = &mut self.ctl {
            kill_group(ctl);
        }
    }
}

#[test]
fn etcd_stops_with_its_own_error_when_its_wal_fdatasync_fails() {
    if require("etcd").is_none() || require("etcdctl").is_none() {
        return;
    }
    let dir = TempDir::new("etcd-eio");
    let mut etcd = start(&dir, AFTER);
    let mut acknowledged = 0;
    let mut refused = None;
    for i in 0..10 {
        let r = etcdctl(&etcd.client, &["put", &format!("k{i}"), &format!("v{i}")]);
        if r.code() == Some(0) && r.stdout.trim() == "OK" {
            acknowledged += 1;
        } else {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a put failed once the WAL's fdatasync failed");
    let r = etcd.finish(30);

    // etcd stopped by itself, with its own fatal error about the save the sync ended.
    assert_eq!(
        r.code(),
        Some(1),
        "etcd exits 1 on a fatal log line: {}",
        r.describe()
    );
    assert!(r.stderr.contains(ETCD_FATAL), "{}", r.describe());
    assert!(
        acknowledged > 0,
        "puts before the fault: {}",
        refused.describe()
    );

    // The one fault is ours, on the WAL's fdatasync, at the call after `after` of that file.
    let events = read_events(&etcd.log);
    let faults = fault_events(&events);
    assert_eq!(faults.len(), 1, "{faults:#?}");
    let f = faults[0];
    assert_eq!(f.op, "fdatasync");
    assert_eq!(f.rule, "wal-sync-eio");
    assert_eq!(f.errno.as_deref(), Some("EIO"));
    assert_eq!(f.backend.as_deref(), Some("seccomp"));
    let path = Path::new(f.path.as_deref().expect("a file fault has its path"));
    assert!(
        path.starts_with(etcd.data.join("member/wal")),
        "{}",
        path.display()
    );
    let key = f.key.as_deref().expect("a fault has its key");
    assert!(key.ends_with(&format!("/syncs#{AFTER}")), "{key}");
}

#[test]
fn etcd_serves_every_put_when_its_wal_syncs_are_handed_over_but_never_failed() {
    if require("etcd").is_none() || require("etcdctl").is_none() {
        return;
    }
    let dir = TempDir::new("etcd-control");
    // The same rule, so the same calls go through the supervisor, never reaching its `after`.
    let mut etcd = start(&dir, 1_000_000);
    for i in 0..10 {
        let r = etcdctl(&etcd.client, &["put", &format!("k{i}"), &format!("v{i}")]);
        assert_eq!(r.stdout.trim(), "OK", "put {i}: {}", r.describe());
    }
    let r = etcdctl(&etcd.client, &["get", "k9", "--print-value-only"]);
    assert_eq!(r.stdout.trim(), "v9", "{}", r.describe());
    assert!(
        etcd.running().try_wait().unwrap().is_none(),
        "etcd still runs after every put"
    );

    // chaos-ctl forwards SIGTERM to etcd, which shuts down cleanly.
    // SAFETY: kill takes integers; the pid is our unreaped child's.
    unsafe { libc::kill(etcd.running().id() as i32, libc::SIGTERM) };
    let r = etcd.finish(30);
    assert!(!r.stderr.contains("failed to save"), "{}", r.describe());
    assert!(fault_events(&read_events(&etcd.log)).is_empty());
    // More fdatasyncs went through the supervisor than the faulted run's `after`: what differs
    // there is the fault, not the handing over.
    let seen = notifications(&r.stderr);
    assert!(
        seen.get("fdatasync").copied().unwrap_or(0) > AFTER,
        "{seen:?}"
    );
}
