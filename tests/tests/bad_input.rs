//! Bad input gets a clear message saying what was expected and where, and a documented status.
//! Nothing silently runs without chaos.

use chaos_tests::*;
use std::process::Command;

fn ctl(args: &[&str]) -> Command {
    let mut c = Command::new(&bins().ctl);
    c.args(args);
    c
}

fn validate(dir: &TempDir, text: &str) -> Finished {
    let p = dir.write("p.toml", text);
    run(&mut ctl(&["validate", p.to_str().unwrap()]), 20)
}

#[test]
fn malformed_toml_names_file_line_and_column() {
    let dir = TempDir::new("bad-toml");
    let r = validate(&dir, "seed = 1\n[[rules]\non = \"recv\"\n");
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let p = dir.join("p.toml");
    assert!(
        r.stderr.starts_with(&format!("{}:2:", p.display())),
        "{}",
        r.describe()
    );
}

#[test]
fn unknown_op_errno_and_kind_say_what_was_expected() {
    let dir = TempDir::new("bad-names");
    let r = validate(&dir, "[[rules]]\non = \"recieve\"\nfault = \"EINTR\"\n");
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr.contains(":2:6: unknown op `recieve`")
            && r.stderr.contains("expected read, readv"),
        "{}",
        r.stderr
    );

    let r = validate(&dir, "[[rules]]\non = \"recv\"\nfault = \"ECONNRESETT\"\n");
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr.contains(":3:9: unknown errno `ECONNRESETT`"),
        "{}",
        r.stderr
    );

    let r = validate(
        &dir,
        "[[rules]]\non = \"recv\"\nfd = \"socks\"\nfault = \"EINTR\"\n",
    );
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr
            .contains(":3:6: unknown fd kind `socks`; expected tcp, udp"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_errno_the_call_cannot_return_is_rejected() {
    let dir = TempDir::new("bad-errno");
    let r = validate(&dir, "[[rules]]\non = \"recv\"\nfault = \"ENOENT\"\n");
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr
            .contains("reads cannot return ENOENT on Linux; it can return"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("any_errno = true"));
    let ok = validate(
        &dir,
        "[[rules]]\non = \"recv\"\nfault = \"ENOENT\"\nany_errno = true\n",
    );
    assert_eq!(ok.code(), Some(0), "{}", ok.describe());
}

#[test]
fn run_refuses_a_bad_policy_before_starting_the_program() {
    let dir = TempDir::new("bad-run");
    let marker = dir.join("ran");
    let script = format!("touch {}", marker.display());
    let r = run(
        &mut ctl_run(
            &dir,
            Some("[[rules]]\non = \"recv\"\nfault = \"EBOGUS\"\n"),
            "x.jsonl",
            &["sh", "-c", &script],
        ),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("unknown errno `EBOGUS`"), "{}", r.stderr);
    assert!(!marker.exists(), "the program must not run");
}

#[test]
fn missing_policy_file() {
    let r = run(
        &mut ctl(&["run", "--policy", "/nonexistent/p.toml", "--", "true"]),
        20,
    );
    assert_eq!(r.code(), Some(125));
    assert!(
        r.stderr.contains("cannot read policy /nonexistent/p.toml"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_shim_itself_exits_125_on_a_bad_policy() {
    let dir = TempDir::new("shim-bad");
    let p = dir.write("bad.toml", "[[rules]]\non = \"recv\"\nfault = \"EBOGUS\"\n");
    let r = run(
        Command::new("true")
            .env("LD_PRELOAD", &bins().shim)
            .env("CHAOS_POLICY", &p),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    assert!(
        r.stderr
            .starts_with(&format!("{}:3:9: unknown errno", p.display())),
        "{}",
        r.stderr
    );

    let r = run(
        Command::new("true")
            .env("LD_PRELOAD", &bins().shim)
            .env("CHAOS_POLICY", dir.join("missing.toml")),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("cannot read policy"), "{}", r.stderr);

    let r = run(
        Command::new("true")
            .env("LD_PRELOAD", &bins().shim)
            .env("CHAOS_PROFILE", "nope"),
        20,
    );
    assert_eq!(r.code(), Some(125));
    assert!(
        r.stderr
            .contains("unknown profile `nope`; expected one of benign"),
        "{}",
        r.stderr
    );
}

#[test]
fn static_binaries_are_refused_by_the_preload_backend_unless_forced() {
    let dir = TempDir::new("static");
    let src = dir.write("hello.c", "int main(void){return 0;}\n");
    let exe = dir.join("hello-static");
    let cc = run(
        Command::new("cc")
            .args(["-static", "-o"])
            .arg(&exe)
            .arg(&src),
        60,
    );
    assert_eq!(cc.code(), Some(0), "static build: {}", cc.describe());
    let r = run(
        &mut ctl(&["run", "--backend", "preload", "--", exe.to_str().unwrap()]),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(
        r.stderr.contains("statically linked (no PT_INTERP)"),
        "{}",
        r.stderr
    );
    // By default (`--backend auto`) it runs under the seccomp backend instead. It makes no call
    // the filter sees, and is still logged, with its parent (chaos-ctl's launcher was it) and
    // its cwd, though it is gone by the time the line is written.
    let log = dir.join("auto.jsonl");
    let auto = run(
        &mut ctl(&[
            "run",
            "-q",
            "--log",
            log.to_str().unwrap(),
            "--",
            exe.to_str().unwrap(),
        ]),
        20,
    );
    assert_eq!(auto.code(), Some(0), "{}", auto.describe());
    let events = read_events(&log);
    let start = events
        .iter()
        .find_map(Event::as_start)
        .unwrap_or_else(|| panic!("a start line: {events:?}"));
    assert_eq!(start.backend.as_deref(), Some("seccomp"), "{start:?}");
    assert_eq!(start.exe.as_deref(), exe.to_str(), "{start:?}");
    assert!(start.ppid > 1, "{start:?}");
    assert!(start.cwd.is_some(), "{start:?}");
    let forced = run(
        &mut ctl(&[
            "run",
            "--backend",
            "preload",
            "--force",
            "--",
            exe.to_str().unwrap(),
        ]),
        20,
    );
    assert_eq!(forced.code(), Some(0), "{}", forced.describe());
    assert!(
        forced.stderr.contains("never loaded the shim"),
        "{}",
        forced.stderr
    );
}

/// A dynamically linked C program dressed up as Go (the section Go's linker writes): Go makes its
/// system calls directly, so the preload backend's preflight refuses it.
#[test]
fn go_programs_are_refused_by_the_preload_backend() {
    let Some(_) = require("objcopy") else { return };
    let dir = TempDir::new("go");
    let src = dir.write("main.c", "int main(void){return 0;}\n");
    let plain = dir.join("plain");
    let cc = run(Command::new("cc").arg("-o").arg(&plain).arg(&src), 60);
    assert_eq!(cc.code(), Some(0), "{}", cc.describe());
    let info = dir.write("buildinfo", "\u{ff} Go buildinf:");
    let go = dir.join("gobin");
    let oc = run(
        Command::new("objcopy")
            .arg(format!("--add-section=.go.buildinfo={}", info.display()))
            .arg(&plain)
            .arg(&go),
        60,
    );
    assert_eq!(oc.code(), Some(0), "{}", oc.describe());
    let r = run(
        &mut ctl(&["run", "--backend", "preload", "--", go.to_str().unwrap()]),
        20,
    );
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("is a Go program"), "{}", r.stderr);
    let r = run(&mut ctl(&["run", "--", plain.to_str().unwrap()]), 20);
    assert_eq!(
        r.code(),
        Some(0),
        "the same program without the section runs: {}",
        r.describe()
    );
}

#[test]
fn setuid_programs_are_refused() {
    let dir = TempDir::new("setuid");
    let src = dir.write("main.c", "int main(void){return 0;}\n");
    let exe = dir.join("suid");
    let cc = run(Command::new("cc").arg("-o").arg(&exe).arg(&src), 60);
    assert_eq!(cc.code(), Some(0));
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    let r = run(&mut ctl(&["run", "--", exe.to_str().unwrap()]), 20);
    assert_eq!(r.code(), Some(125), "{}", r.describe());
    assert!(r.stderr.contains("is setuid/setgid"), "{}", r.stderr);
}

#[test]
fn scripts_are_followed_to_their_interpreter() {
    let dir = TempDir::new("shebang");
    let src = dir.write("i.c", "int main(void){return 0;}\n");
    let interp = dir.join("static-interp");
    let cc = run(
        Command::new("cc")
            .args(["-static", "-o"])
            .arg(&interp)
            .arg(&src),
        60,
    );
    assert_eq!(cc.code(), Some(0));
    let script = dir.write("s", &format!("#!{}\n", interp.display()));
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = run(
        &mut ctl(&[
            "run",
            "--backend",
            "preload",
            "--",
            script.to_str().unwrap(),
        ]),
        20,
    );
    assert_eq!(r.code(), Some(125));
    assert!(
        r.stderr.contains("static-interp is statically linked"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_shim_is_an_error_not_a_silent_run() {
    let r = run(
        ctl(&["run", "--", "true"]).env("CHAOS_SHIM", "/nonexistent/libchaos_shim.so"),
        20,
    );
    assert_eq!(r.code(), Some(125));
    assert!(
        r.stderr
            .contains("CHAOS_SHIM=/nonexistent/libchaos_shim.so does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn command_not_found_and_not_executable() {
    let r = run(&mut ctl(&["run", "--", "no-such-command-xyz"]), 20);
    assert_eq!(r.code(), Some(127), "{}", r.describe());
    assert!(r.stderr.contains("no-such-command-xyz: command not found"));
    let dir = TempDir::new("noexec");
    let f = dir.write("data.txt", "x");
    let r = run(&mut ctl(&["run", "--", f.to_str().unwrap()]), 20);
    assert_eq!(r.code(), Some(126), "{}", r.describe());
}

#[test]
fn bad_seed_in_the_environment() {
    let r = run(
        Command::new("true")
            .env("LD_PRELOAD", &bins().shim)
            .env("CHAOS_SEED", "seven"),
        20,
    );
    assert_eq!(r.code(), Some(125));
    assert!(
        r.stderr
            .contains("CHAOS_SEED must be an unsigned integer, got `seven`"),
        "{}",
        r.stderr
    );
}
