//! Who may reach a run's control page: whoever can write it can switch rules and cut traffic, so
//! it is the run's owner's alone (0600 in a 0700 directory), shared only with the user a
//! `[[process]]` runs as.

use chaos_tests::*;
use std::process::Command;

/// `stat` of the page and its directory, as the program under chaos sees them during the run.
const STAT: &str = "stat -c '%a %u %g' \"$1/control\" \"$1\"";

#[test]
fn a_runs_control_page_is_its_owners_alone() {
    let dir = TempDir::new("control-mode");
    let run_dir = dir.join("p.run");
    let r = run(
        &mut ctl_run(
            &dir,
            None,
            "p.jsonl",
            &["sh", "-c", STAT, "sh", run_dir.to_str().unwrap()],
        ),
        30,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    // SAFETY: plain id getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(
        r.stdout,
        format!("600 {uid} {gid}\n700 {uid} {gid}\n"),
        "{}",
        r.describe()
    );
}

fn ids_of(user: &str) -> (String, String) {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).arg(user).output().unwrap();
        assert!(out.status.success(), "id {flag} {user}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    (id("-u"), id("-g"))
}

#[test]
fn a_process_run_as_another_user_gets_the_page_and_nobody_else_does() {
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test runs a process as `nobody`: CI must run it as root"
        );
        eprintln!("skipped: not root, cannot run a process as another user");
        return;
    }
    let dir = TempDir::new("control-user");
    let sleep = require("sleep").expect("sleep");
    let policy = dir.write(
        "u.toml",
        &format!(
            "[[process]]\nname = \"idle\"\nuser = \"nobody\"\ncmd = [\"{}\", \"30\"]\n",
            sleep.display()
        ),
    );
    let run_dir = dir.join("u.run");
    let r = run(
        Command::new(&bins().ctl)
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--log")
            .arg(dir.join("u.jsonl"))
            .args(["--", "sh", "-c", STAT, "sh"])
            .arg(&run_dir),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let (uid, gid) = ids_of("nobody");
    // The page is nobody's; the directory stays root's, and nobody's group may only pass through.
    assert_eq!(
        r.stdout,
        format!("600 {uid} {gid}\n710 0 {gid}\n"),
        "{}",
        r.describe()
    );
    // nobody's process mapped the page and logged its start.
    let log = read_events(&dir.join("u.jsonl"));
    assert!(
        log.iter()
            .filter_map(Event::as_start)
            .any(|s| s.process.as_deref() == Some("idle")),
        "{log:?}"
    );
}
