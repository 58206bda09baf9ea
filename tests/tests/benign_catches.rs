//! The default profile keeps its promises (tests/tests/invariants.rs) and still finds real bugs:
//! each classic bug below passes without chaos and fails under `chaos-ctl run` with no policy (the
//! benign profile) in at least 9 of seeds 1..=10.

use chaos_tests::*;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{ChildStdout, Command, Stdio};
use std::time::Duration;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=10;
const ENOUGH: usize = 9;

/// `chaos-ctl run` with the default profile and `--seed seed`, or `--profile none` for `None`.
fn chaos(dir: &TempDir, seed: Option<u64>, tag: &str, argv: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().ctl);
    cmd.arg("run");
    let log = match seed {
        Some(s) => {
            cmd.arg("--seed").arg(s.to_string());
            format!("{tag}-seed-{s}.jsonl")
        }
        None => {
            cmd.arg("--profile").arg("none");
            format!("{tag}-none.jsonl")
        }
    };
    cmd.arg("--log").arg(dir.join(&log)).arg("--").args(argv);
    cmd
}

/// Runs a classic_bugs mode without chaos (must pass) and under seeds 1..=10 (must exit 1, the
/// bug, in at least 9; any other status than 0 or 1 is a broken run, not a catch).
fn caught_in_most_seeds(mode: &str, result_prefix: &str) {
    let dir = TempDir::new(mode);
    // At a path that is the same in every run: the process key hashes the executable's path, so the
    // decisions under each seed (and the count of catches) are the same every time.
    let fixed = std::env::temp_dir().join(format!("chaos-classic-bugs-{mode}"));
    let _ = std::fs::remove_dir_all(&fixed);
    std::fs::create_dir_all(&fixed).unwrap();
    let bin = compile_c("classic_bugs", &fixed, &[]);
    let bin = bin.to_str().unwrap();

    let plain = run(Command::new(bin).arg(mode), 60);
    assert_eq!(
        plain.code(),
        Some(0),
        "without the shim: {}",
        plain.describe()
    );
    let none = run(&mut chaos(&dir, None, mode, &[bin, mode]), 60);
    assert_eq!(
        none.code(),
        Some(0),
        "under --profile none: {}",
        none.describe()
    );

    let mut caught = Vec::new();
    let mut results = Vec::new();
    for seed in SEEDS {
        let r = run(&mut chaos(&dir, Some(seed), mode, &[bin, mode]), 60);
        assert!(
            matches!(r.code(), Some(0) | Some(1)),
            "seed {seed}: neither a pass nor the bug: {}",
            r.describe()
        );
        let l = r
            .stdout
            .lines()
            .find(|l| l.starts_with(result_prefix))
            .unwrap_or("(no result line)")
            .to_string();
        if r.code() == Some(1) {
            caught.push(seed);
        }
        results.push(format!("seed {seed}: exit {:?}: {l}", r.code()));
    }
    assert!(
        caught.len() >= ENOUGH,
        "{mode}: the benign profile caught the bug in {} of {} seeds ({caught:?}), want at least {ENOUGH}:\n{}",
        caught.len(),
        SEEDS.count(),
        results.join("\n")
    );
}

/// a. A client that takes one recv() of a 200 KB TCP response as the whole of it. A real network
/// (and loopback under load) delivers such a response in segments.
#[test]
fn benign_catches_one_recv_taken_as_the_whole_response() {
    caught_in_most_seeds("one-recv", "one-recv ");
}

/// c. Blocking pipe reads that really wait, a SIGCHLD handler without SA_RESTART, and EINTR
/// treated as fatal.
#[test]
fn benign_catches_eintr_treated_as_fatal() {
    caught_in_most_seeds("no-eintr-retry", "no-eintr-retry ");
}

const FOUR_MB: usize = 4_000_000;

/// Runs `cmd` with its stdout read slowly (16 KiB, then a 1 ms pause) by the test, so that a big
/// write into the pipe really blocks; returns the bytes received and the run.
fn read_slowly(cmd: &mut Command, secs: u64) -> (usize, Finished) {
    let mut child = own_group(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    // wait_with_deadline drains a stdout of its own: give it an empty one.
    let empty: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    child.stdout = Some(ChildStdout::from(empty));
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let r = wait_with_deadline(child, secs, &format!("{cmd:?}"));
    (reader.join().unwrap(), r)
}

/// b. `python3 -u`, a harmless SIGCHLD handler, and one sys.stdout.write of 4,000,000 bytes to a
/// slow pipe: CPython's unbuffered text layer ignores a partial write, so the reader gets fewer
/// bytes. (With a handler installed a signal may cut a blocking write short: Linux can.)
#[test]
fn benign_catches_python_ignoring_a_short_stdout_write() {
    let Some(py) = require("python3") else { return };
    // The real interpreter, not a wrapper script (pyenv) that would run under chaos too.
    let exe = run(
        Command::new(py).args(["-c", "import sys; print(sys.executable)"]),
        30,
    );
    assert_eq!(exe.code(), Some(0), "{}", exe.describe());
    let py = exe.stdout.trim();
    let dir = TempDir::new("py-short-write");
    // Inline (-c), so that the argv, and with it the process key, is the same in every run.
    let script = format!(
        "import signal, sys; signal.signal(signal.SIGCHLD, lambda *a: None); sys.stdout.write('x' * {FOUR_MB})"
    );
    let argv = [py, "-u", "-c", &script];

    let (plain, r) = read_slowly(Command::new(py).args(&argv[1..]), 60);
    assert_eq!(r.code(), Some(0), "without the shim: {}", r.describe());
    assert_eq!(plain, FOUR_MB, "without the shim every byte arrives");
    let (none, r) = read_slowly(&mut chaos(&dir, None, "py", &argv), 60);
    assert_eq!(r.code(), Some(0), "--profile none: {}", r.describe());
    assert_eq!(none, FOUR_MB, "under --profile none every byte arrives");

    let mut caught = Vec::new();
    let mut results = Vec::new();
    for seed in SEEDS {
        let (got, r) = read_slowly(&mut chaos(&dir, Some(seed), "py", &argv), 60);
        assert!(got <= FOUR_MB, "seed {seed}: {got} bytes: {}", r.describe());
        if got < FOUR_MB {
            caught.push(seed);
        }
        results.push(format!(
            "seed {seed}: exit {:?}, {got} of {FOUR_MB} bytes",
            r.code()
        ));
    }
    assert!(
        caught.len() >= ENOUGH,
        "the benign profile caught the lost partial write in {} of {} seeds ({caught:?}), want at least {ENOUGH}:\n{}",
        caught.len(),
        SEEDS.count(),
        results.join("\n")
    );
}
