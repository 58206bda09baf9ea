//! Every fault is logged, or not injected. The log is chaos-ctl's (0600, root's when run as root):
//! a process that gives up the right to open it — nginx's workers dropping to `nobody`, a
//! setuid, a chroot — still logs every fault it gets; one that truly cannot log injects nothing
//! and the summary names it, with why. These tests run as root (as CI does).

use chaos_tests::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// True when the test can change users; under CI it must.
fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "these tests drop privileges: CI runs them as root"
        );
        eprintln!("SKIPPED: not root");
    }
    root
}

/// The fault count in the summary's first line (`chaos: N fault(s) in M process(es)…`).
fn summary_faults(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("chaos: ")?;
            let (n, tail) = rest.split_once(' ')?;
            tail.starts_with("fault").then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"))
}

fn fault_lines(log: &[Event]) -> Vec<&Fault> {
    fault_events(log)
}

/// A directory others may enter (the program runs as `nobody` inside it); the log in it stays
/// chaos-ctl's 0600 file.
fn open_dir(name: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(name);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn privdrop(dir: &TempDir) -> std::path::PathBuf {
    compile_c("privdrop", dir.path(), &[])
}

const DELAY_UNIX_WRITES: &str = r#"
seed = 1
[[rules]]
name = "slow-writes"
on = "writes"
fd = "unix"
fault = { delay = "1ms" }
"#;

/// An errno the program would see if it were injected: every write would fail.
const RESET_UNIX_WRITES: &str = r#"
seed = 1
[[rules]]
name = "reset-writes"
on = "writes"
fd = "unix"
fault = "ECONNRESET"
"#;

fn pids_of(stdout: &str, word: &str) -> Vec<i32> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(word)?.trim().parse().ok())
        .collect()
}

#[test]
fn a_process_that_drops_to_nobody_logs_every_fault_and_its_fork_starts() {
    if !root() {
        return;
    }
    let dir = open_dir("privdrop-setuid");
    let program = privdrop(&dir);
    let log_path = dir.join("run.jsonl");
    let out = run(
        &mut ctl_run(
            &dir,
            Some(DELAY_UNIX_WRITES),
            "run.jsonl",
            &[program.to_str().unwrap(), "setuid", "5"],
        ),
        60,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let (pid, child) = (
        pids_of(&out.stdout, "pid ")[0],
        pids_of(&out.stdout, "child ")[0],
    );
    let log = read_events(&log_path);
    let faults = fault_lines(&log);
    for p in [pid, child] {
        let theirs = faults.iter().filter(|f| f.header.pid == p).count();
        assert_eq!(
            theirs, 5,
            "pid {p}: 5 delayed writes, each logged\n{log:#?}"
        );
        assert!(
            log.iter()
                .filter_map(Event::as_start)
                .any(|s| s.header.pid == p),
            "pid {p} has its start line (the fork writes it through the kept fd)"
        );
    }
    assert_eq!(summary_faults(&out.stderr), faults.len(), "{}", out.stderr);
    assert!(!out.stderr.contains("could not"), "{}", out.stderr);
}

#[test]
fn a_process_that_chroots_logs_every_fault() {
    if !root() {
        return;
    }
    let dir = open_dir("privdrop-chroot");
    let program = privdrop(&dir);
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(
        &mut ctl_run(
            &dir,
            Some(DELAY_UNIX_WRITES),
            "run.jsonl",
            &[
                program.to_str().unwrap(),
                "chroot",
                empty.to_str().unwrap(),
                "5",
            ],
        ),
        60,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let log = read_events(&dir.join("run.jsonl"));
    assert_eq!(fault_lines(&log).len(), 5, "{log:#?}");
    assert_eq!(summary_faults(&out.stderr), 5, "{}", out.stderr);
}

#[test]
fn a_process_that_cannot_open_the_log_injects_nothing_and_is_named() {
    if !root() {
        return;
    }
    let dir = open_dir("privdrop-raw");
    let program = privdrop(&dir);
    // A raw setuid system call reaches no libc entry point: nothing opens the log before it.
    let out = run(
        &mut ctl_run(
            &dir,
            Some(RESET_UNIX_WRITES),
            "run.jsonl",
            &[program.to_str().unwrap(), "rawsetuid", "5"],
        ),
        60,
    );
    assert_eq!(
        out.code(),
        Some(0),
        "every write went through untouched\n{}",
        out.describe()
    );
    let pid = pids_of(&out.stdout, "pid ")[0];
    let log = read_events(&dir.join("run.jsonl"));
    assert_eq!(fault_lines(&log).len(), 0, "{log:#?}");
    assert!(
        out.stderr.contains(&format!(
            "pid {pid} (privdrop) could not write the log (EACCES): 5 faults withheld"
        )),
        "{}",
        out.stderr
    );
    let unlogged: Vec<_> = log.iter().filter_map(Event::as_unlogged).collect();
    assert_eq!(unlogged.len(), 1, "{log:#?}");
    assert_eq!(unlogged[0].pid, Some(pid));
    assert_eq!(unlogged[0].withheld, 5);
    assert_eq!(unlogged[0].errno.as_deref(), Some("EACCES"));

    let report = run(
        Command::new(&bins().ctl)
            .args(["report", "--json"])
            .arg(dir.join("run.jsonl")),
        20,
    );
    assert_eq!(report.code(), Some(0), "{}", report.describe());
    let doc: Value = serde_json::from_str(&report.stdout).expect("report --json is JSON");
    assert_eq!(doc["unlogged"][0]["pid"], pid, "{doc:#}");
    assert_eq!(doc["unlogged"][0]["withheld"], 5, "{doc:#}");
}

#[test]
fn a_platform_quirk_is_withheld_too_where_it_could_not_be_logged() {
    if !root() {
        return;
    }
    let dir = open_dir("privdrop-quirk");
    let program = privdrop(&dir);
    // No rules (not the default profile): the quirk is the only thing that can fire.
    let no_rules = dir.write("no-rules.toml", "seed = 1\n");
    let sends = |mode: &str, log: &str| {
        run(
            Command::new(&bins().ctl)
                .args(["run", "--quirk", "sendto-connected-eisconn", "--policy"])
                .arg(&no_rules)
                .arg("--log")
                .arg(dir.join(log))
                .arg("--")
                .arg(&program)
                .args([mode, "3"]),
            60,
        )
    };
    // As root the log is open to it: the quirk refuses every sendto, and each is logged.
    let asis = sends("asis-udp", "asis.jsonl");
    assert_eq!(asis.code(), Some(1), "{}", asis.describe());
    assert_eq!(fault_lines(&read_events(&dir.join("asis.jsonl"))).len(), 3);
    // Dropped with a raw system call, it cannot log: every sendto goes through.
    let dropped = sends("rawsetuid-udp", "dropped.jsonl");
    assert_eq!(dropped.code(), Some(0), "{}", dropped.describe());
    let pid = pids_of(&dropped.stdout, "pid ")[0];
    assert!(
        dropped.stderr.contains(&format!(
            "pid {pid} (privdrop) could not write the log (EACCES): 3 faults withheld"
        )),
        "{}",
        dropped.stderr
    );
    assert_eq!(
        fault_lines(&read_events(&dir.join("dropped.jsonl"))).len(),
        0
    );
}

#[test]
fn a_full_disk_is_not_emulated_where_it_could_not_be_logged() {
    if !root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = open_dir("privdrop-disk");
    let program = privdrop(&dir);
    // A fresh directory per run, writable by nobody: each run's disk starts empty.
    let writes = |mode: &str, log: &str| {
        let data = dir.join(mode);
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
        let policy = format!(
            "seed = 1\n[[disk]]\nname = \"small\"\npath = \"{}/*\"\ncapacity = \"8KB\"\n",
            data.display()
        );
        run(
            &mut ctl_run(
                &dir,
                Some(&policy),
                log,
                &[
                    program.to_str().unwrap(),
                    mode,
                    data.to_str().unwrap(),
                    "12",
                ],
            ),
            60,
        )
    };
    // As root: 8 of the 12 KB fit, the rest is refused, each refusal logged.
    let asis = writes("asis-disk", "asis.jsonl");
    assert_eq!(asis.code(), Some(1), "{}", asis.describe());
    let disk_lines = |log: &str| {
        read_events(&dir.join(log))
            .iter()
            .filter_map(Event::as_disk)
            .count()
    };
    assert!(disk_lines("asis.jsonl") > 0);
    // Unable to log, the process writes all 12 KB.
    let dropped = writes("rawsetuid-disk", "dropped.jsonl");
    assert_eq!(dropped.code(), Some(0), "{}", dropped.describe());
    assert_eq!(disk_lines("dropped.jsonl"), 0);
    let pid = pids_of(&dropped.stdout, "pid ")[0];
    assert!(
        dropped.stderr.contains(&format!(
            "pid {pid} (privdrop) could not write the log (EACCES)"
        )),
        "{}",
        dropped.stderr
    );
}

#[test]
fn a_program_execd_as_another_user_runs_without_chaos_and_is_named() {
    if !root() {
        return;
    }
    let Some(setpriv) = require("setpriv") else {
        return;
    };
    let dir = open_dir("privdrop-exec");
    let program = privdrop(&dir);
    // setpriv drops to nobody, then execs the program: the run's private policy copy and its
    // log are closed to it.
    let out = run(
        &mut ctl_run(
            &dir,
            Some(RESET_UNIX_WRITES),
            "run.jsonl",
            &[
                setpriv.to_str().unwrap(),
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                program.to_str().unwrap(),
                "rawsetuid",
                "5",
            ],
        ),
        60,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let pid = pids_of(&out.stdout, "pid ")[0];
    assert!(
        out.stderr.contains(&format!(
            "pid {pid} (privdrop) could not read the run's policy (EACCES"
        )),
        "{}",
        out.stderr
    );
    let log = read_events(&dir.join("run.jsonl"));
    assert_eq!(fault_lines(&log).len(), 0, "{log:#?}");
}

/// chaos-ctl and its program, killed with their process group if the test ends early.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            kill_group(child);
        }
    }
}

fn nginx_conf(dir: &TempDir, port: u16) -> std::path::PathBuf {
    let d = dir.path().display();
    dir.write(
        "nginx.conf",
        &format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser nobody nogroup;\n\
             error_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; sendfile off; client_body_temp_path {d}/t1;\n\
             proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3; uwsgi_temp_path {d}/t4;\n\
             scgi_temp_path {d}/t5;\n\
             server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}\n"
        ),
    )
}

fn curl(curl: &Path, port: u16) {
    let out = run(
        Command::new(curl)
            .args([
                "-sS",
                "--max-time",
                "20",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg(format!("http://127.0.0.1:{port}/page.html")),
        30,
    );
    assert_eq!(out.stdout, "200", "{}", out.describe());
}

#[test]
fn nginx_workers_running_as_nobody_log_every_delay_they_get() {
    if !root() {
        return;
    }
    let (Some(nginx), Some(curl_bin)) = (require("nginx"), require("curl")) else {
        return;
    };
    let dir = open_dir("privdrop-nginx");
    std::fs::create_dir(dir.join("www")).unwrap();
    dir.write("www/page.html", &"<p>chaos</p>\n".repeat(100));
    let port = free_port();
    let conf = nginx_conf(&dir, port);
    let policy = r#"
seed = 1
[[rules]]
name = "slow-worker-writes"
on = "writes"
fd = "tcp"
fault = { delay = "20ms" }
"#;
    let mut cmd = ctl_run(
        &dir,
        Some(policy),
        "nginx.jsonl",
        &[
            nginx.to_str().unwrap(),
            "-c",
            conf.to_str().unwrap(),
            "-p",
            dir.path().to_str().unwrap(),
        ],
    );
    let child = own_group(&mut cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chaos-ctl run nginx");
    let mut server = Running(Some(child));
    wait_for_port(port, 20);
    for _ in 0..3 {
        curl(&curl_bin, port);
    }
    let child = server.0.take().unwrap();
    // SIGTERM to chaos-ctl reaches nginx, which stops; chaos-ctl then summarises.
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_with_deadline(child, 30, "chaos-ctl run nginx");
    let log = read_events(&dir.join("nginx.jsonl"));
    let faults = fault_lines(&log);
    let workers: std::collections::BTreeSet<_> = faults.iter().map(|f| f.header.pid).collect();
    let master = log
        .iter()
        .filter_map(Event::as_start)
        .find(|s| s.via == "exec")
        .map(|s| s.header.pid);
    assert!(
        faults.len() >= 3,
        "every response was delayed and logged: {} fault line(s)\n{}\n{log:#?}",
        faults.len(),
        out.stderr
    );
    assert!(
        !workers.contains(&master.unwrap()),
        "the delays were the workers'"
    );
    assert_eq!(summary_faults(&out.stderr), faults.len(), "{}", out.stderr);
    assert!(!out.stderr.contains("could not"), "{}", out.stderr);
}
