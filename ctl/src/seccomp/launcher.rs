//! `chaos-ctl __seccomp-exec -- CMD ARGS…`: the tiny launcher that puts a program under the
//! seccomp backend. chaos-ctl starts it where it would start the program; it
//!
//! 1. connects to chaos-ctl's notification server (CHAOS_SECCOMP_SERVER) and says which pid it
//!    is, which fd number the listener will get, and the CHAOS_* settings of the run;
//! 2. reads back the calls its filter is to notify (the server builds the list from the run's
//!    policy), or a refusal;
//! 3. installs the filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER` (the server takes the listener
//!    with `pidfd_getfd`: a listener cannot be sent over a socket once the filter is in place,
//!    since the send would wait for the very listener it carries);
//! 4. waits, with a read (which the filter may hand to the server), until the server has the
//!    listener;
//! 5. removes its own variable (the run's CHAOS_* stay, as under the preload backend) and execs
//!    the program, which keeps our pid, so that signals and exit statuses reach chaos-ctl as
//!    with the preload backend.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{SocketAddr, UnixStream};
use std::os::unix::process::CommandExt;

/// The variable naming the server's abstract socket.
pub const SERVER_VAR: &str = "CHAOS_SECCOMP_SERVER";

fn fail(message: &str) -> ! {
    let _ = std::io::stderr().write_all(format!("chaos: seccomp backend: {message}\n").as_bytes());
    std::process::exit(125);
}

pub fn main(argv: Vec<OsString>) -> ! {
    let Some(name) = std::env::var_os(SERVER_VAR) else {
        fail(&format!(
            "{SERVER_VAR} is not set: the launcher runs only under chaos-ctl"
        ));
    };
    if argv.is_empty() {
        fail("no command given to the launcher");
    }
    use std::os::linux::net::SocketAddrExt;
    let addr = SocketAddr::from_abstract_name(name.as_encoded_bytes())
        .unwrap_or_else(|e| fail(&format!("bad server name: {e}")));
    let server = UnixStream::connect_addr(&addr).unwrap_or_else(|e| {
        fail(&format!(
            "cannot reach chaos-ctl's notification server: {e}"
        ))
    });
    let settings: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CHAOS_") && k != SERVER_VAR)
        .collect();
    let listener_fd = lowest_free_fd();
    let hello = super::server::Hello {
        pid: std::process::id() as i32,
        listener_fd,
        settings,
    };
    let mut line = serde_json::to_vec(&hello).unwrap_or_default();
    line.push(b'\n');
    if let Err(e) = (&server).write_all(&line) {
        fail(&format!(
            "cannot talk to chaos-ctl's notification server: {e}"
        ));
    }
    // Nothing follows the reply until the listener is taken, so the buffer holds only the
    // reply when the filter goes in.
    let mut server = BufReader::new(server);
    let mut reply = String::new();
    let _ = server.read_line(&mut reply);
    let calls = match serde_json::from_str::<super::server::Reply>(&reply) {
        Ok(super::server::Reply::Filter(calls)) => calls,
        // The server has said why on chaos-ctl's stderr, which is ours too.
        Ok(super::server::Reply::Refused(_)) => std::process::exit(125),
        Err(_) => fail("chaos-ctl's notification server sent no filter"),
    };
    // The run's CHAOS_* settings stay, as under the preload backend: a system's processes and
    // workload read CHAOS_ADDRS_*, CHAOS_RUN and CHAOS_CONTROL(_URL), and `chaos-ctl control`
    // run from them finds the page. Only the launcher's own variable goes.
    // SAFETY: the launcher is single-threaded; nothing reads the environment concurrently.
    unsafe { std::env::remove_var(SERVER_VAR) };
    match super::filter::install(&calls) {
        Ok(fd) if fd == listener_fd => {}
        Ok(fd) => fail(&format!(
            "the listener got fd {fd}, not the {listener_fd} announced"
        )),
        Err(e) => fail(&e),
    }
    // This read is the first notified call: the server answers it once it holds the listener.
    let mut go = [0u8; 1];
    if server.read_exact(&mut go).is_err() || go[0] != b'g' {
        fail("chaos-ctl's notification server did not take the listener");
    }
    drop(server);
    // Rust's runtime ignores SIGPIPE; the program must start with the default, as it would
    // without us (an ignored signal stays ignored across exec).
    // SAFETY: resetting a disposition to SIG_DFL has no memory arguments.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let _ = std::io::stderr()
        .write_all(format!("chaos: {}: {err}\n", argv[0].to_string_lossy()).as_bytes());
    std::process::exit(code);
}

/// The fd number the next new fd (the listener) will get.
fn lowest_free_fd() -> i32 {
    // SAFETY: opening and closing /dev/null has no effect beyond the fd.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            fail("cannot open /dev/null");
        }
        libc::close(fd);
        fd
    }
}
