//! Whether a process is ready for the workload: `tcp:`, `unix:`, `log:` and `cmd:` probes.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A replica's probe, its templates expanded.
pub enum Probe {
    Tcp(String),
    Unix(PathBuf),
    Log(regex::Regex),
    Cmd(String),
    /// No `ready`: ready once started.
    Started,
}

impl Probe {
    /// `tcp:7100`, `tcp:{port}` (expanded) or `tcp:HOST:PORT`.
    pub fn tcp_target(text: &str) -> String {
        if text.chars().all(|c| c.is_ascii_digit()) {
            format!("127.0.0.1:{text}")
        } else {
            text.to_string()
        }
    }

    /// One try. `output`: the file the replica's stdout and stderr go to.
    pub fn check(&self, output: &Path, env: &[(String, String)]) -> bool {
        match self {
            Probe::Started => true,
            Probe::Tcp(target) => {
                target
                    .to_socket_addrs()
                    .ok()
                    .into_iter()
                    .flatten()
                    .any(|a: SocketAddr| {
                        TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
                    })
            }
            Probe::Unix(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            Probe::Log(re) => std::fs::read(output)
                .map(|b| String::from_utf8_lossy(&b).lines().any(|l| re.is_match(l)))
                .unwrap_or(false),
            Probe::Cmd(cmd) => {
                let mut c = Command::new("sh");
                c.args(["-c", cmd])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                for (k, v) in env {
                    c.env(k, v);
                }
                status_within(c, Duration::from_secs(10)).is_some_and(|s| s.success())
            }
        }
    }
}

/// Runs `cmd` and waits at most `limit` for it (killing its process group then).
fn status_within(mut cmd: Command, limit: Duration) -> Option<ExitStatus> {
    let mut child = cmd.process_group(0).spawn().ok()?;
    let start = Instant::now();
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if start.elapsed() >= limit {
            // SAFETY: kill takes two integers.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
