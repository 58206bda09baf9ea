//! chaos-ctl's notification server: launchers connect here (an abstract unix socket named in
//! CHAOS_SECCOMP_SERVER), and each gets a supervisor thread that answers its target's calls.
//! Started once per chaos-ctl, the first time a program is launched under the seccomp backend.

use super::live::Live;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::OnceLock;

/// What a launcher says first.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Hello {
    pub pid: i32,
    /// The fd number the launcher's listener will have.
    pub listener_fd: i32,
    /// The run's CHAOS_* variables, as the preload backend's shim would read them.
    pub settings: Vec<(String, String)>,
}

/// What the server answers a Hello: the calls the launcher's filter is to notify (built from the
/// run's policy, `filter::calls_for`), or why the program cannot run (already said on stderr).
#[derive(serde::Serialize, serde::Deserialize)]
pub enum Reply {
    Filter(Vec<libc::c_long>),
    Refused(String),
}

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

/// The server's name for CHAOS_SECCOMP_SERVER, starting it on first use.
pub fn name() -> Result<String, String> {
    SERVER.get_or_init(start).clone()
}

fn start() -> Result<String, String> {
    use std::os::linux::net::SocketAddrExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("chaos-seccomp-{}-{nanos}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())?;
    let listener = UnixListener::bind_addr(&addr)
        .map_err(|e| format!("cannot start the seccomp notification server: {e}"))?;
    std::thread::Builder::new()
        .name("seccomp-server".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = std::thread::Builder::new()
                    .name("seccomp-supervisor".into())
                    .spawn(move || serve(conn));
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(name)
}

/// One launcher: take its listener, let it exec, then supervise its target until every process
/// under the filter is gone.
fn serve(conn: UnixStream) {
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let Ok(hello) = serde_json::from_str::<Hello>(&line) else {
        return;
    };
    let Ok(pidfd) = super::sys::pidfd_open(hello.pid) else {
        return;
    };
    let reply = |r: &Reply| {
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        (&conn).write_all(&line)
    };
    let target = match super::target::Target::from_settings(&hello.settings) {
        Ok(t) => t,
        Err(message) => {
            // The launcher, refused before it installs a filter, exits 125.
            eprintln!("chaos: seccomp backend: {message}");
            let _ = reply(&Reply::Refused(message));
            return;
        }
    };
    // The census keys every call, as a frozen policy does: its filter is a frozen policy's.
    let calls = if target.census {
        super::filter::all().map(|(nr, _)| *nr).collect()
    } else {
        super::filter::calls_for(
            &target.policy,
            target.cuts().is_some(),
            target.proxies().is_some(),
        )
    };
    if reply(&Reply::Filter(calls.clone())).is_err() {
        return;
    }
    let Some(listener) = take_listener(&pidfd, hello.listener_fd) else {
        return;
    };
    // Live before the go-ahead: the program cannot end, and be waited for, before this.
    let _live = Live::new(hello.pid);
    if (&conn).write_all(b"g").is_err() {
        return;
    }
    drop(conn);
    super::supervisor::supervise(listener, target, &calls);
}

/// Waits (up to 10 s) for the launcher to install its filter, then copies the listener out of
/// it. None if the launcher died first.
fn take_listener(pidfd: &OwnedFd, fd: i32) -> Option<OwnedFd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(copy) = super::sys::pidfd_getfd(pidfd, fd) {
            let link = std::fs::read_link(format!("/proc/self/fd/{}", copy.as_raw_fd()));
            if link.is_ok_and(|l| l.to_string_lossy().contains("seccomp")) {
                return Some(copy);
            }
        }
        // The launcher exited (a pidfd polls readable once its process is gone).
        if super::sys::poll_one(pidfd.as_raw_fd(), libc::POLLIN) != 0 {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    None
}
