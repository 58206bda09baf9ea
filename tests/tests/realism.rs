//! Injected faults must leave programs in states Linux itself could produce (docs/realism.md).

use chaos_tests::*;

fn scenario(dir: &TempDir, policy: &str, mode: &str) -> Finished {
    let fixture = compile_c("realism", dir.path(), &[]);
    let policy_path = dir.write(&format!("{mode}.toml"), policy);
    let log = dir.join(&format!("{mode}.jsonl"));
    run(preloaded(&fixture, &policy_path, &log).arg(mode), 30)
}

/// The fixture's handler is for SIGUSR1, which the rule vouches for (`signal`): without that,
/// only harmless signals (SIGCHLD, SIGWINCH...) may be blamed for an EINTR.
const EINTR_ON_RECV: &str = "[[rules]]\non = \"recv\"\nfd = \"unix\"\nprobability = 0.5\nfault = \"EINTR\"\nsignal = \"SIGUSR1\"\n";

#[test]
fn eintr_only_where_a_signal_handler_could_interrupt() {
    let dir = TempDir::new("eintr");
    let none = scenario(&dir, EINTR_ON_RECV, "eintr-nohandler");
    assert!(
        none.stdout.contains("eintr=0 bytes=500"),
        "{}",
        none.describe()
    );
    let restart = scenario(&dir, EINTR_ON_RECV, "eintr-restart");
    assert!(
        restart.stdout.contains("eintr=0 bytes=500"),
        "{}",
        restart.describe()
    );
    let handler = scenario(&dir, EINTR_ON_RECV, "eintr-handler");
    assert!(
        handler.stdout.contains("bytes=500"),
        "{}",
        handler.describe()
    );
    let n: usize = handler
        .stdout
        .split("eintr=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        n > 10,
        "a handler without SA_RESTART should see EINTRs: {}",
        handler.describe()
    );
}

#[test]
fn short_io_never_splits_datagrams_or_small_pipe_writes() {
    let dir = TempDir::new("short");
    let all_short = "[[rules]]\non = [\"send\", \"recv\", \"write\"]\nfd = [\"unix\", \"pipe\"]\nfault = { short = \"1..50%\" }\n";
    let d = scenario(&dir, all_short, "dgram");
    assert!(d.stdout.contains("whole=50 of 50"), "{}", d.describe());
    let p = scenario(&dir, all_short, "pipe");
    assert!(
        p.stdout.contains("small_short=0 big_short=20"),
        "{}",
        p.describe()
    );
}

#[test]
fn close_with_an_error_still_closes() {
    let dir = TempDir::new("close");
    let r = scenario(
        &dir,
        "[[rules]]\non = \"close\"\nfd = \"unix\"\nfault = \"EIO\"\n",
        "close",
    );
    assert!(
        r.stdout
            .contains("close=-1 errno=Input/output error still_open=0"),
        "{}",
        r.describe()
    );
}

#[test]
fn epipe_raises_sigpipe_unless_msg_nosignal() {
    let dir = TempDir::new("epipe");
    let policy = "[[rules]]\non = \"send\"\nfd = \"unix\"\ntimes = 1\nfault = \"EPIPE\"\n";
    let killed = scenario(&dir, policy, "epipe");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        killed.status.signal(),
        Some(libc::SIGPIPE),
        "{}",
        killed.describe()
    );
    let quiet = scenario(&dir, policy, "epipe-nosignal");
    // The second send is not injected (times = 1): EPIPE again proves the socket was really shut.
    assert!(
        quiet
            .stdout
            .contains("send=-1 errno=Broken pipe again=Broken pipe"),
        "{}",
        quiet.describe()
    );
}

#[test]
fn interrupted_connect_keeps_connecting_like_linux() {
    let dir = TempDir::new("connect");
    let r = scenario(
        &dir,
        "[[rules]]\non = \"connect\"\nfd = \"tcp\"\ntimes = 1\nfault = \"EINTR\"\nsignal = \"SIGUSR1\"\n",
        "connect-eintr",
    );
    assert!(
        r.stdout
            .contains("first=Interrupted system call retry=ok data=ok"),
        "{}",
        r.describe()
    );
}

#[test]
fn reset_is_a_real_rst_and_later_calls_agree() {
    let dir = TempDir::new("reset");
    let r = scenario(
        &dir,
        "[[rules]]\non = \"recv\"\nfd = \"tcp\"\ntimes = 1\nfault = { reset = true }\n",
        "reset",
    );
    assert!(
        r.stdout.contains("client=Connection reset by peer server=Connection reset by peer client_recv_again=-1/Connection reset by peer client_send=Broken pipe fd_valid=1"),
        "{}",
        r.describe()
    );
    let log = read_events(&dir.join("reset.jsonl"));
    let f = fault_events(&log);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].effect.as_deref(), Some("rst-sent"));
    assert_eq!(f[0].errno.as_deref(), Some("ECONNRESET"));
}
