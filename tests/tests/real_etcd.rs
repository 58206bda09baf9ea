//! etcd (Debian's etcd-server 3.4, a Go program, so served by the seccomp backend) under a rule
//! that fails its WAL's fdatasync with EIO: etcd stops with its own fatal error, after the puts
//! it acknowledged before, and the log holds the fault at its key. Without the fault the same
//! run serves every put and keeps running until chaos-ctl stops it. Under `[durability]`, a
//! crash that undoes etcd's unsynced database writes loses no acknowledged put, and a crash
//! that tears its database's first write leaves a data dir etcd starts afresh from.

use chaos_tests::*;
use std::os::unix::process::ExitStatusExt;
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
    /// Its run's name: `NAME.jsonl`, `NAME.stdout`, `NAME.stderr` in `dir`.
    name: String,
    log: PathBuf,
    data: PathBuf,
    /// When chaos-ctl was spawned (a rule's `window` counts from about then).
    since: Instant,
}

/// Starts etcd on ephemeral ports in its own data dir under `chaos-ctl run --backend seccomp`.
fn start(dir: &TempDir, after: u64) -> Etcd {
    let policy = policy(&dir.join("data"), after);
    let ports = (free_port(), free_port());
    let mut etcd = Etcd::spawn(dir, &policy, "chaos", ports);
    etcd.wait_healthy();
    etcd
}

/// `chaos-ctl run --backend seccomp --policy P --log DIR/NAME.jsonl -- etcd` on DIR/data with
/// the client and peer `ports` (the same on a restart), not yet waited for.
fn etcd_command(dir: &TempDir, policy: &str, name: &str, ports: (u16, u16)) -> Command {
    let etcd = require("etcd").expect("etcd");
    let data = dir.join("data");
    let policy = dir.write(&format!("{name}.toml"), policy);
    let log = dir.join(&format!("{name}.jsonl"));
    let client = format!("http://127.0.0.1:{}", ports.0);
    let peer = format!("http://127.0.0.1:{}", ports.1);
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
        .stdout(std::fs::File::create(dir.join(&format!("{name}.stdout"))).unwrap())
        .stderr(std::fs::File::create(dir.join(&format!("{name}.stderr"))).unwrap());
    cmd
}

impl Etcd {
    /// Spawns etcd under chaos-ctl (`etcd_command`), in a process group of its own.
    fn spawn(dir: &TempDir, policy: &str, name: &str, ports: (u16, u16)) -> Etcd {
        let mut cmd = etcd_command(dir, policy, name, ports);
        let ctl = Some(
            own_group(&mut cmd)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")),
        );
        Etcd {
            ctl,
            client: format!("http://127.0.0.1:{}", ports.0),
            dir: dir.path().to_path_buf(),
            name: name.to_string(),
            log: dir.join(&format!("{name}.jsonl")),
            data: dir.join("data"),
            since: Instant::now(),
        }
    }

    /// Waits until etcd answers its health check (the test fails after 60 s, or if it ends).
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while etcdctl(&self.client, &["endpoint", "health"]).code() != Some(0) {
            if Instant::now() > deadline || self.running().try_wait().unwrap().is_some() {
                kill_group(self.running());
                let r = self.finish(5);
                panic!("etcd did not become healthy: {}", r.describe());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
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
        let read = |ext| {
            std::fs::read_to_string(self.dir.join(format!("{}.{ext}", self.name)))
                .unwrap_or_default()
        };
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

/// Every key etcd holds under the prefix `k`, as `key=value`, sorted.
fn keys(client: &str) -> Vec<String> {
    let r = etcdctl(client, &["get", "--prefix", "k"]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let lines: Vec<&str> = r.stdout.lines().collect();
    let mut out: Vec<String> = lines
        .chunks(2)
        .map(|kv| format!("{}={}", kv[0], kv.get(1).unwrap_or(&"")))
        .collect();
    out.sort();
    out
}

/// `[durability]` over the data dir, and what else `more` adds.
fn durable(data: &Path, more: &str) -> String {
    format!("[durability]\npath = \"{}/*\"\n{more}", data.display())
}

/// When the crash rule below may fire, after etcd has started: it makes about a dozen syncs of
/// its bbolt database while it starts and none while idle, then one batch commit (writes, then
/// fdatasync) within 100 ms of a put.
const CRASH_FROM_S: u64 = 8;

/// The `durability` lines' undone changes in `log`: op, path, why and the torn prefix kept.
fn undone(log: &Path) -> Vec<(String, String, String, Option<u64>)> {
    read_events(log)
        .iter()
        .filter_map(Event::as_durability)
        .filter(|e| e.what == "undone")
        .map(|e| {
            (
                e.op.clone().unwrap_or_default(),
                e.path.clone().unwrap_or_default(),
                e.why.clone().unwrap_or_default(),
                e.torn_kept,
            )
        })
        .collect()
}

#[test]
fn etcd_keeps_every_acknowledged_put_through_a_crash_that_undoes_its_unsynced_writes() {
    if require("etcd").is_none() || require("etcdctl").is_none() {
        return;
    }
    let dir = TempDir::new("etcd-durable");
    let data = dir.join("data");
    let db = data.join("member/snap/db");
    // A crash (SIGKILL, a power loss under `[durability]`) at the first fdatasync of etcd's
    // bbolt database once it has started: the batch commit's pages are written, not synced.
    let crash = format!(
        "[[rules]]\nname = \"crash-in-db-commit\"\non = \"syncs\"\nfd = \"file\"\n\
         path = \"{}\"\nwindow = [\"{CRASH_FROM_S}s\", \"10m\"]\nfault = \"crash\"\n",
        db.display()
    );
    let ports = (free_port(), free_port());
    let mut etcd = Etcd::spawn(&dir, &durable(&data, &crash), "crashed", ports);
    etcd.wait_healthy();
    std::thread::sleep(Duration::from_secs(CRASH_FROM_S + 1).saturating_sub(etcd.since.elapsed()));
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let r = etcdctl(&etcd.client, &["put", &format!("k{i}"), &format!("v{i}")]);
        if r.code() != Some(0) || r.stdout.trim() != "OK" {
            break;
        }
        acknowledged.push(format!("k{i}=v{i}"));
    }
    let r = etcd.finish(30);
    assert_eq!(
        r.status.signal(),
        Some(libc::SIGKILL),
        "chaos-ctl ends as etcd did: {}",
        r.describe()
    );
    assert!(!acknowledged.is_empty(), "puts before the crash");
    let faults: Vec<String> = fault_events(&read_events(&etcd.log))
        .iter()
        .map(|f| format!("{} {} {:?}", f.fault, f.op, f.path))
        .collect();
    assert_eq!(
        faults,
        [format!(
            "crash fdatasync {:?}",
            Some(db.display().to_string())
        )]
    );
    // The commit's pages were written and not synced: the crash undid them.
    let undone = undone(&etcd.log);
    assert!(
        undone.iter().any(|(op, path, why, _)| op == "write"
            && Path::new(path) == db
            && why == "not fsynced"),
        "{undone:?}"
    );

    // Restarted on the same data dir: etcd replays its WAL, which it fdatasynced before each
    // acknowledgement, into the database the crash rolled back.
    let mut again = Etcd::spawn(&dir, &durable(&data, ""), "restarted", ports);
    again.wait_healthy();
    assert_eq!(keys(&again.client), acknowledged);
    // SAFETY: kill takes integers; the pid is our unreaped child's.
    unsafe { libc::kill(again.running().id() as i32, libc::SIGTERM) };
    again.finish(30);
}

#[test]
fn etcd_starts_afresh_when_a_crash_tears_its_database_at_its_first_write() {
    if require("etcd").is_none() || require("etcdctl").is_none() {
        return;
    }
    let dir = TempDir::new("etcd-torn");
    let data = dir.join("data");
    let db = data.join("member/snap/db");
    // Crashed at the database's first fdatasync, right after bbolt's first write (its four
    // initial pages, 16 KiB): `torn` keeps a seeded whole-4 KiB prefix of that write.
    let crash = format!(
        "torn = \"4096\"\n\n[[rules]]\nname = \"crash-after-first-db-write\"\non = \"syncs\"\n\
         fd = \"file\"\npath = \"{}\"\ntimes = 1\nfault = \"crash\"\n",
        db.display()
    );
    let ports = (free_port(), free_port());
    let mut etcd = Etcd::spawn(&dir, &durable(&data, &crash), "torn", ports);
    let r = etcd.finish(60);
    assert_eq!(r.status.signal(), Some(libc::SIGKILL), "{}", r.describe());
    let undone = undone(&etcd.log);
    let db_name = db.display().to_string();
    // Newest first: the torn write, then the database's create, which no sync had committed
    // either (ext4: nothing on the filesystem was synced since), so the file is gone with its
    // prefix; then the directory probes etcd made before (`.touch`, created and unlinked).
    let (op, path, why, kept) = &undone[0];
    assert_eq!(
        (op.as_str(), path.as_str(), why.as_str()),
        ("write", db_name.as_str(), "not fsynced")
    );
    let kept = kept.expect("a torn write says what it kept");
    assert!(kept > 0 && kept < 16384 && kept % 4096 == 0, "{kept}");
    assert_eq!(
        (
            undone[1].0.as_str(),
            undone[1].1.as_str(),
            undone[1].2.as_str()
        ),
        ("create", db_name.as_str(), "no journal commit")
    );
    assert!(
        undone[2..]
            .iter()
            .all(|(_, p, _, _)| p.ends_with("/.touch")),
        "{undone:?}"
    );
    assert!(!db.exists(), "the database's create was undone");
    assert!(
        !data.join("member/wal").exists(),
        "etcd had not made its WAL yet"
    );

    // Restarted: etcd finds its member directory (mkdir is not journaled) with neither a
    // database nor a WAL, says it was initialized before, and bootstraps a new member from its
    // flags: it serves.
    let mut again = Etcd::spawn(&dir, &durable(&data, ""), "restarted", ports);
    again.wait_healthy();
    let r = etcdctl(&again.client, &["put", "k0", "v0"]);
    assert_eq!(r.stdout.trim(), "OK", "{}", r.describe());
    assert_eq!(keys(&again.client), ["k0=v0"]);
    // SAFETY: kill takes integers; the pid is our unreaped child's.
    unsafe { libc::kill(again.running().id() as i32, libc::SIGTERM) };
    let r = again.finish(30);
    assert!(
        r.stderr.contains(
            "the server is already initialized as member before, starting as etcd member"
        ),
        "{}",
        r.describe()
    );
    assert!(db.exists(), "a new database");
}
