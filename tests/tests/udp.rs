//! Datagram faults: `drop` (on send: reported sent, never delivered; on receive: consumed, never
//! seen), `duplicate` (sent twice) and `reorder` (held behind later sends), counted by a real
//! receiver; never on streams; a frozen drop run replays to the same datagrams.

use chaos_tests::*;
use std::process::Command;

fn counts(dir: &TempDir, policy: &str, log: &str) -> (usize, usize, String) {
    require("python3").expect("python3");
    let fixture = workspace_root().join("tests/fixtures/udp_count.py");
    let r = run(
        &mut ctl_run(
            dir,
            Some(policy),
            log,
            &["python3", fixture.to_str().unwrap()],
        ),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("received"))
        .unwrap()
        .to_string();
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap(), line)
}

fn rule(on: &str, p: f64, fault: &str) -> String {
    format!("[[rules]]\non = \"{on}\"\nfd = \"udp\"\nprobability = {p}\nfault = \"{fault}\"\n")
}

#[test]
fn dropped_sends_are_reported_sent_and_never_arrive() {
    let dir = TempDir::new("udp-drop-send");
    let (received, distinct, line) = counts(&dir, &rule("sendto", 0.3, "drop"), "drop.jsonl");
    assert!((6790..=7210).contains(&received), "7,000 ± 3%: {line}");
    assert_eq!(received, distinct, "{line}");
    let dropped = fault_events(&read_events(&dir.join("drop.jsonl"))).len();
    assert_eq!(
        received + dropped,
        10_000,
        "every datagram is delivered or logged as dropped"
    );
}

#[test]
fn dropped_receives_are_consumed_and_never_seen() {
    let dir = TempDir::new("udp-drop-recv");
    let (received, _, line) = counts(&dir, &rule("recvfrom", 0.3, "drop"), "rdrop.jsonl");
    assert!((6790..=7210).contains(&received), "{line}");
    let dropped = fault_events(&read_events(&dir.join("rdrop.jsonl"))).len();
    assert_eq!(received + dropped, 10_000);
}

#[test]
fn duplicated_sends_arrive_twice() {
    let dir = TempDir::new("udp-dup");
    let (received, distinct, line) = counts(&dir, &rule("sendto", 0.1, "duplicate"), "dup.jsonl");
    assert_eq!(distinct, 10_000, "{line}");
    let duplicated = fault_events(&read_events(&dir.join("dup.jsonl"))).len();
    assert!((900..=1100).contains(&duplicated), "{duplicated}");
    assert_eq!(received, 10_000 + duplicated, "{line}");
}

#[test]
fn reordered_sends_arrive_late_by_their_count_and_none_is_lost() {
    let dir = TempDir::new("udp-reorder");
    let policy =
        "[[rules]]\non = \"sendto\"\nfd = \"udp\"\nprobability = 0.05\nfault = { reorder = 3 }\n";
    let (received, distinct, line) = counts(&dir, policy, "reorder.jsonl");
    assert_eq!((received, distinct), (10_000, 10_000), "{line}");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[5], "False", "out of order: {line}");
    let late: usize = words[7].parse().unwrap();
    let most: usize = words[9].parse().unwrap();
    let held = fault_events(&read_events(&dir.join("reorder.jsonl")))
        .iter()
        .filter(|f| f.effect.as_deref() == Some("reordered") && f.held_for == Some(3))
        .count();
    assert!((400..=600).contains(&held), "{held}");
    // Each held datagram arrives after the next three: late, by three places (more when two holds
    // overlap), and only the held ones are late.
    assert!(
        late > 0 && late <= held,
        "{late} late of {held} held: {line}"
    );
    assert!((3..=12).contains(&most), "{line}");
}

#[test]
fn latency_on_datagrams_makes_each_readable_that_much_later() {
    let dir = TempDir::new("udp-latency");
    let fixture = workspace_root().join("tests/fixtures/udp_latency.py");
    let policy = "[[rules]]\non = \"recvfrom\"\nfd = \"udp\"\nfault = { latency = \"100ms\" }\n";
    let r = run(
        &mut ctl_run(
            &dir,
            Some(policy),
            "lat.jsonl",
            &["python3", fixture.to_str().unwrap()],
        ),
        60,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let took: Vec<f64> = r
        .stdout
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(took.len(), 5, "{}", r.describe());
    for t in took {
        assert!((0.099..0.2).contains(&t), "{t} s: {}", r.describe());
    }
}

#[test]
fn a_frozen_drop_run_loses_the_same_datagrams() {
    let dir = TempDir::new("udp-replay");
    let (received, _, _) = counts(&dir, &rule("sendto", 0.3, "drop"), "orig.jsonl");
    let r = run(
        Command::new(&bins().ctl)
            .arg("replay")
            .arg("--log")
            .arg(dir.join("again.jsonl"))
            .arg(dir.join("orig.jsonl")),
        120,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(
        r.stdout.contains(&format!("received {received} ")),
        "{}",
        r.describe()
    );
}

#[test]
fn datagram_faults_are_refused_where_they_cannot_happen() {
    let dir = TempDir::new("udp-bad");
    assert_refused(
        &dir,
        &[
            (
                "[[rules]]\non = \"recv\"\nfault = \"drop\"\n",
                "they need fd = \"udp\"",
            ),
            (
                "[[rules]]\non = \"recv\"\nfd = \"tcp\"\nfault = \"duplicate\"\n",
                "they need fd = \"udp\"",
            ),
            (
                "[[rules]]\non = \"recv\"\nfd = \"udp\"\nfault = \"duplicate\"\n",
                "duplicate and reorder to sends",
            ),
            (
                "[[rules]]\non = \"sendto\"\nfd = \"udp\"\nfault = { reorder = 0 }\n",
                "`reorder` takes how many later datagrams overtake this one: 1 to 64",
            ),
            (
                "[[rules]]\non = \"sendmmsg\"\nfd = \"udp\"\nfault = \"drop\"\n",
                "single-datagram",
            ),
        ],
    );
}
