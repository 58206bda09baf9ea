//! A signal meant for the program reaches it exactly once, however it was sent: to chaos-ctl
//! alone (`kill -INT PID`, `kill -QUIT PID`, a supervisor's stop signal), or to chaos-ctl's whole
//! process group (`kill -INT -PGID`); in a single-program run and as a system's workload.

use chaos_tests::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Counts the SIGINTs it gets for two seconds after saying `ready`, prints `ints N`, exits 0.
const COUNTER: &str = "import signal, sys, time\n\
n = 0\n\
def h(s, f):\n    global n\n    n += 1\n\
signal.signal(signal.SIGINT, h)\n\
print('ready', flush=True)\n\
end = time.time() + 2\n\
while time.time() < end:\n    time.sleep(0.02)\n\
print('ints', n, flush=True)\n\
sys.exit(0)\n";

/// How a test sends the signal: to chaos-ctl's pid, or to its process group.
#[derive(Clone, Copy)]
enum To {
    Ctl,
    Group,
}

fn send(child: &Child, to: To, sig: i32) {
    let pid = child.id() as i32;
    let target = match to {
        To::Ctl => pid,
        To::Group => -pid, // own_group makes chaos-ctl its group's leader
    };
    // SAFETY: kill takes integers; the pid is one this test started and has not reaped, so the
    // number cannot have been reused.
    assert_eq!(unsafe { libc::kill(target, sig) }, 0);
}

fn wait_for(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "chaos-ctl did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the counter under `cmd` (a chaos-ctl command line), sends one SIGINT `to`, and returns
/// how many the program saw.
fn sigints_seen(mut cmd: std::process::Command, to: To) -> usize {
    let mut guard = Background::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::null()));
    let child = &mut guard.0;
    let lines = stdout_lines(child);
    wait_for_line(&lines, "ready", 60);
    send(child, to, libc::SIGINT);
    let line = wait_for_line(&lines, "ints", 20);
    let status = wait_for(child, 20);
    assert_eq!(
        status.code(),
        Some(0),
        "the program handled it and exited 0"
    );
    line.trim_start_matches("ints").trim().parse().unwrap()
}

fn single_run(dir: &TempDir, to: To) -> usize {
    let python = require("python3").expect("python3");
    let script = dir.write("counter.py", COUNTER);
    let cmd = ctl_run(
        dir,
        None,
        "run.jsonl",
        &[python.to_str().unwrap(), script.to_str().unwrap()],
    );
    sigints_seen(cmd, to)
}

#[test]
fn sigint_to_chaos_ctl_alone_reaches_the_program_once() {
    let dir = TempDir::new("sig-int-ctl");
    assert_eq!(single_run(&dir, To::Ctl), 1);
}

#[test]
fn a_group_wide_sigint_reaches_a_python_program_once() {
    let dir = TempDir::new("sig-int-group");
    assert_eq!(single_run(&dir, To::Group), 1);
}

/// A system whose one replica is an HTTP server, and the counter as its workload.
fn system_run(dir: &TempDir, to: To) -> usize {
    let python = require("python3").expect("python3");
    let script = dir.write("counter.py", COUNTER);
    let policy = format!(
        "seed = 1\n[[process]]\nname = \"web\"\n\
         cmd = [\"{py}\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"{{port}}\"]\n\
         ready = \"tcp:{{port}}\"\n",
        py = python.display()
    );
    let cmd = ctl_run(
        dir,
        Some(&policy),
        "sys.jsonl",
        &[python.to_str().unwrap(), script.to_str().unwrap()],
    );
    sigints_seen(cmd, to)
}

#[test]
fn a_system_workload_gets_a_sigint_sent_to_chaos_ctl_once() {
    let dir = TempDir::new("sig-int-sys-ctl");
    assert_eq!(system_run(&dir, To::Ctl), 1);
}

#[test]
fn a_system_workload_gets_a_group_wide_sigint_once() {
    let dir = TempDir::new("sig-int-sys-group");
    assert_eq!(system_run(&dir, To::Group), 1);
}

#[test]
fn nginx_shuts_down_gracefully_on_sigquit_to_chaos_ctl() {
    let Some(nginx) = require("nginx") else {
        return;
    };
    let dir = TempDir::new("sig-quit-nginx");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let port = free_port();
    let conf = nginx_conf(&dir, port, false);
    let mut guard = Background::spawn(
        ctl_run(
            &dir,
            None,
            "nginx.jsonl",
            &[
                nginx.to_str().unwrap(),
                "-c",
                conf.to_str().unwrap(),
                "-p",
                dir.path().to_str().unwrap(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null()),
    );
    wait_for_port(port, 20);
    send(&guard.0, To::Ctl, libc::SIGQUIT);
    let status = wait_for(&mut guard.0, 30);
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert!(
        log.contains("gracefully shutting down"),
        "nginx's master got the SIGQUIT: {log}"
    );
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0: {log}");
}
