//! Shared helpers for the integration tests: the built binaries, per-test temp dirs, C fixtures
//! compiled at test time, children with hard deadlines, and the event log.

pub use chaos_engine::event::schema::{Event, Fault};
pub use chaos_engine::key::Key;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub struct Bins {
    pub ctl: PathBuf,
    pub shim: PathBuf,
    /// tests/programs/tokio-echo
    pub tokio_echo: PathBuf,
    /// tests/programs/tokio-echo's client with its own timeouts
    pub tokio_timeout_client: PathBuf,
}

/// The release chaos-ctl and shim. `cargo test` never builds a cdylib where we could find it
/// (cargo#8311), so this runs `cargo build --release` once (fast when up to date).
/// `CHAOS_TEST_BIN_DIR` points at an existing build instead.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = match std::env::var_os("CHAOS_TEST_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = Command::new(cargo)
                    .args(["build", "--release", "-p", "chaos-shim", "-p", "chaos-ctl"])
                    .args(["-p", "chaos-tokio-echo"])
                    .current_dir(workspace_root())
                    .status()
                    .expect("run cargo build");
                assert!(status.success(), "cargo build --release failed");
                workspace_root().join("target/release")
            }
        };
        let bins = Bins {
            ctl: dir.join("chaos-ctl"),
            shim: dir.join("libchaos_shim.so"),
            tokio_echo: dir.join("tokio-echo"),
            tokio_timeout_client: dir.join("tokio-timeout-client"),
        };
        assert!(bins.ctl.is_file(), "missing {}", bins.ctl.display());
        assert!(bins.shim.is_file(), "missing {}", bins.shim.display());
        bins
    })
}

/// A directory removed when dropped; unique per test.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("chaos-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A program a test needs. Under CI (CI=true) a missing one fails the test; elsewhere the test is
/// skipped with a message.
pub fn require(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{program} is required under CI but is not installed (.ci/run installs it)");
        }
        eprintln!("SKIPPED: {program} is not installed");
    }
    found
}

/// Compiles `tests/fixtures/NAME.c` into `dir` with the given extra flags.
pub fn compile_c(name: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    require("cc").expect("a C compiler");
    let src = workspace_root().join(format!("tests/fixtures/{name}.c"));
    let out = dir.join(name);
    let output = Command::new("cc")
        .args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .args(flags)
        .output()
        .expect("run cc");
    assert!(
        output.status.success(),
        "cc {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The calls the seccomp filter handed to the supervisor, per call, from the line
/// `CHAOS_DEBUG=1` makes chaos-ctl print when the program ends.
pub fn notifications(stderr: &str) -> std::collections::BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("chaos: debug: seccomp notifications: "))
        .unwrap_or_else(|| panic!("no notification counts on stderr: {stderr}"));
    line.rsplit(": ")
        .next()
        .unwrap()
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("call=count");
            (k.to_string(), v.parse().expect("a count"))
        })
        .collect()
}

/// `chaos-ctl run -q --backend BACKEND --policy POLICY --log LOG -- EXE`, to which the caller adds
/// the program's arguments: how the cross-backend tests run a dynamic and a static build alike.
pub fn ctl_run_on(backend: &str, policy: &Path, log: &Path, exe: &Path) -> Command {
    let mut cmd = Command::new(&bins().ctl);
    cmd.args(["run", "-q", "--backend", backend, "--policy"])
        .arg(policy)
        .arg("--log")
        .arg(log)
        .arg("--")
        .arg(exe);
    cmd
}

/// Runs `cmd` to completion, killing it and everything it started (and failing the test) after
/// `secs` seconds.
pub fn run(cmd: &mut Command, secs: u64) -> Finished {
    let child = own_group(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    wait_with_deadline(child, secs, &format!("{cmd:?}"))
}

pub fn wait_with_deadline(mut child: Child, secs: u64, what: &str) -> Finished {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            let stdout = t_out.join().unwrap_or_default();
            let stderr = t_err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {secs}s (killed)\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Puts the child in a session (and process group) of its own, so that it and everything it starts
/// can be killed together: chaos-ctl's program has a process group of its own inside the session,
/// and nginx's workers are in the program's.
pub fn own_group(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        })
    }
}

/// The pids of every process in session `sid`, from /proc.
fn session_members(sid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command's ")": state ppid pgrp session ...
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            rest.split_whitespace().nth(3).and_then(|s| s.parse().ok()) == Some(sid)
        })
        .collect()
}

/// SIGKILLs a child's whole session (see `own_group`) and reaps the child.
pub fn kill_group(child: &mut Child) {
    let sid = child.id() as i32;
    // SAFETY: kill takes integers; the session is led by our unreaped child, so its id is not
    // reused.
    unsafe { libc::kill(-sid, libc::SIGKILL) };
    for pid in session_members(sid) {
        // SAFETY: kill takes integers; the members were just read from /proc as members of our
        // child's session.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A background child (a server) and its process group, killed when dropped.
pub struct Background(pub Child);

impl Background {
    pub fn spawn(cmd: &mut Command) -> Background {
        Background(
            own_group(cmd)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")),
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

/// `chaos-ctl run` with a policy file and log in `dir`.
pub fn ctl_run(dir: &TempDir, policy: Option<&str>, log: &str, argv: &[&str]) -> Command {
    let mut cmd = Command::new(&bins().ctl);
    cmd.arg("run").arg("--log").arg(dir.join(log));
    if let Some(text) = policy {
        cmd.arg("--policy")
            .arg(dir.write(&format!("{log}.toml"), text));
    }
    cmd.arg("--").args(argv);
    cmd
}

/// A command with the shim preloaded directly (no chaos-ctl).
pub fn preloaded(program: &Path, policy: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LD_PRELOAD", &bins().shim)
        .env("CHAOS_POLICY", policy)
        .env("CHAOS_LOG", log)
        .env_remove("CHAOS_SEED")
        .env_remove("CHAOS_PROFILE");
    cmd
}

/// Every line of a log in the engine's schema. Panics on a line that does not parse into it, of a
/// kind it does not know, or with a field it does not know (serialising the parsed line back
/// would lose it): the schema must say everything the shim and chaos-ctl write.
pub fn read_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read log {}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let raw: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("torn or invalid log line ({e}): {l}"));
            let event: Event = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a log line outside the event schema ({e}): {l}"));
            // A kind the schema does not know reads as `Other`, which the comparison below would
            // also catch, but less clearly.
            assert!(
                event != Event::Other,
                "a kind of line missing from chaos_engine::event::schema: {l}"
            );
            let back = serde_json::to_value(&event).expect("events serialise");
            let unknown: Vec<&String> = raw
                .as_object()
                .expect("lines are objects")
                .keys()
                .filter(|k| back.get(k.as_str()).is_none())
                .collect();
            assert!(
                unknown.is_empty(),
                "field(s) {unknown:?} missing from chaos_engine::event::schema: {l}"
            );
            assert_eq!(back, raw, "the schema reads this line differently: {l}");
            event
        })
        .collect()
}

/// The injected faults and quirks of a log read with `read_events`.
pub fn fault_events(events: &[Event]) -> Vec<&Fault> {
    events.iter().filter_map(Event::as_fault).collect()
}

/// How many faults of a log read with `read_events` say `fault` (`short`, `stall`, an errno...).
pub fn count_fault_events(events: &[Event], fault: &str) -> usize {
    fault_events(events)
        .iter()
        .filter(|f| f.fault == fault)
        .count()
}

/// A fault's decision key; panics, saying why, if it has none or the key does not parse.
pub fn key_of(f: &Fault) -> Key {
    match f.parsed_key() {
        Some(Ok(key)) => key,
        Some(Err(e)) => panic!("{e}: {f:?}"),
        None => panic!("a fault without a key: {f:?}"),
    }
}

/// A child's stdout as a stream of lines, read on a thread so waits can time out.
pub fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line starting with `prefix`; returns the rest of it.
pub fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, prefix: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_string();
                }
            }
            Err(_) => panic!("no line starting with {prefix:?} within {secs}s"),
        }
    }
}

/// Reads a child's stdout until a line starts with `prefix` (the rest of stdout is then ignored).
pub fn read_line_starting(child: &mut Child, prefix: &str, secs: u64) -> String {
    wait_for_line(&stdout_lines(child), prefix, secs)
}

pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The echo_threads fixture's policy in the determinism and replay tests. Writes, connects and
/// accepts only: the offsets of writes and the ordinals of connects do not depend on timing, while
/// how the kernel chunks what a reader receives does, and so does whether a loopback connect
/// completes before an EINTR could be injected (docs/reference.md, "Connections and decisions").
pub const THREADED_WRITES_POLICY: &str = r#"
[[rules]]
name = "slow-writes"
on = "writes"
fd = "tcp"
probability = 0.3
fault = { delay = "1us..30us" }

[[rules]]
name = "slow-connect"
on = "connect"
fd = "tcp"
probability = 0.3
fault = { delay = "10us..300us" }

[[rules]]
name = "slow-accept"
on = "accept"
fd = "tcp"
probability = 0.3
fault = { delay = "10us..300us" }
"#;

/// Each policy text in `cases` is refused by `chaos-ctl validate` (exit 1) with a message that
/// contains its expected text and names the file.
pub fn assert_refused(dir: &TempDir, cases: &[(&str, &str)]) {
    for (text, expect) in cases {
        let policy = dir.write("bad.toml", text);
        let r = run(Command::new(&bins().ctl).arg("validate").arg(&policy), 20);
        assert_eq!(r.code(), Some(1), "{text}: {}", r.describe());
        assert!(r.stderr.contains(expect), "{text}: {}", r.describe());
        assert!(r.stderr.contains("bad.toml:"), "{text}: {}", r.describe());
    }
}

/// A TCP port free on 127.0.0.1 now (the kernel's pick), for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port`, failing the test after `secs` seconds.
pub fn wait_for_port(port: u16, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tests/fixtures/toxic_peer.py MODE PORT` in the background, without chaos (a server for the
/// toxics tests: echo, blob, sink, hi, trickle, http).
pub fn toxic_peer(mode: &str, port: u16) -> Background {
    let bg = Background::spawn(
        Command::new("python3")
            .arg(workspace_root().join("tests/fixtures/toxic_peer.py"))
            .arg(mode)
            .arg(port.to_string())
            .stdout(Stdio::null()),
    );
    wait_for_port(port, 20);
    bg
}

/// A 1 MiB file `DIR/blob` served by python's http.server (without chaos) on the port returned.
pub fn http_blob(dir: &TempDir) -> (Background, u16) {
    let blob = dir.join("blob");
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&blob, data).unwrap();
    let port = free_port();
    let bg = Background::spawn(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_port(port, 20);
    (bg, port)
}

/// `len` bytes of a fixed xorshift stream: a file whose corruption a checksum would show.
pub fn pseudo_random_file(path: &std::path::Path, len: usize) {
    let mut data = Vec::with_capacity(len);
    let mut x: u32 = 2463534242;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    std::fs::write(path, data).unwrap();
}

/// nginx under `chaos-ctl run` with `policy` (log `nginx.jsonl`), serving an 8 MiB
/// `DIR/www/big.bin` on the returned port; `sendfile` on or off. Stopped when dropped.
pub fn start_nginx(nginx: &Path, dir: &TempDir, policy: &str, sendfile: bool) -> (Background, u16) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    pseudo_random_file(&www.join("big.bin"), 8 << 20);
    let port = free_port();
    let conf = nginx_conf(dir, port, sendfile);
    let mut server = ctl_run(
        dir,
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
    server
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let server = Background::spawn(&mut server);
    wait_for_port(port, 20);
    (server, port)
}

/// nginx serving `DIR/www` on 127.0.0.1:`port` in the foreground, everything it writes under `dir`;
/// `sendfile` on or off. Returns the config file's path.
pub fn nginx_conf(dir: &TempDir, port: u16, sendfile: bool) -> PathBuf {
    let d = dir.path().display();
    let sendfile = if sendfile { "on" } else { "off" };
    dir.write(
        "nginx.conf",
        &format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\nerror_log {d}/error.log notice;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; sendfile {sendfile}; client_body_temp_path {d}/t1; proxy_temp_path {d}/t2;\n\
             fastcgi_temp_path {d}/t3; uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;\n\
             server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}\n"
        ),
    )
}

/// Builds `tests/fixtures/go/NAME.go` with Debian's Go (`go build`), once per test process, into
/// `target/go-fixtures/`. None (the test skips) only outside CI when Go is not installed.
pub fn build_go(name: &str) -> Option<PathBuf> {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let go = require("go")?;
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return Some(p.clone());
    }
    let root = workspace_root();
    let dir = root.join("target/go-fixtures");
    std::fs::create_dir_all(&dir).expect("create target/go-fixtures");
    let out = dir.join(format!("{name}-{}", std::process::id()));
    let src = root.join(format!("tests/fixtures/go/{name}.go"));
    let output = Command::new(go)
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("run go build");
    assert!(
        output.status.success(),
        "go build {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.push((name.to_string(), out.clone()));
    Some(out)
}
