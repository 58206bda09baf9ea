//! The parser as a whole: policies in, rules or `file:line:col` errors out.

use super::*;
use crate::fault::Fault;
use crate::kind::KindSet;
use crate::op::{Op, OpSet};

fn err(text: &str) -> PolicyError {
    parse_policy(text, "p.toml").unwrap_err()
}

#[test]
fn full_rule_parses() {
    let p = parse_policy(
        r#"
seed = 7
[[rules]]
name = "reset-redis"
on = ["recv", "read"]
fd = "tcp"
peer = "127.0.0.1:6379"
probability = 0.05
after = 10
every = 3
times = 2
window = ["2s", "10s"]
fault = "ECONNRESET"

[[rules]]
on = "writes"
fault = { short = "1..50%" }
"#,
        "p.toml",
    )
    .unwrap();
    assert_eq!(p.seed, 7);
    assert_eq!(p.rules.len(), 2);
    let r = &p.rules[0];
    assert!(r.ops.contains(Op::Recv) && !r.ops.contains(Op::Send));
    assert_eq!(r.fault, Fault::Errno(libc::ECONNRESET));
    assert_eq!(r.window, Some((2_000_000_000, 10_000_000_000)));
    assert_eq!(p.rules[1].name, "rule-2");
    assert!(p.rules[1].ops.contains(Op::Sendmsg));
}

#[test]
fn errors_point_at_the_offending_value() {
    let e = err("[[rules]]\non = [\"recieve\"]\nfault = \"EINTR\"\n");
    assert_eq!((e.line, e.col), (2, 7), "{e}");
    assert!(e.message.contains("unknown op `recieve`"), "{e}");

    let e = err("[[rules]]\non = \"recv\"\nfault = \"ENOENT\"\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("reads cannot return ENOENT"), "{e}");

    let e = err("[[rules]]\non = \"recv\"\nfault = \"EBOGUS\"\n");
    assert!(e.message.contains("unknown errno `EBOGUS`"), "{e}");

    let e = err("[[rules]]\non = \"recv\"\nfd = \"socks\"\nfault = \"EINTR\"\n");
    assert!(e.message.contains("unknown fd kind `socks`"), "{e}");

    let e = err("[[rules]]\non = \"recv\"\nfault = \"EINTR\"\nprobabilty = 1\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("unknown field `probabilty`"), "{e}");

    let e = err("seed = 1\n[[rules\n");
    assert_eq!(e.line, 2, "{e}");

    let e = err("[[rules]]\non = \"connect\"\nfault = { short = \"1..5\" }\n");
    assert!(e.message.contains("reads and writes only"), "{e}");

    let e = err("[[rules]]\non = \"close\"\nfault = { stall = \"1ms\" }\n");
    assert!(e.message.contains("not to close"), "{e}");

    let e = err("[[rules]]\non = \"recv\"\nprobability = 1.5\nfault = \"EINTR\"\n");
    assert!(e.message.contains("outside"), "{e}");
    assert!(e.to_string().starts_with("p.toml:3:"), "{e}");
}

#[test]
fn durability_crash_defaults_to_power_loss_and_names_the_bad_one() {
    use crate::durability::Crash;
    let p = parse_policy("[durability]\npath = \"/d/*\"\n", "p").unwrap();
    assert_eq!(p.durability.unwrap().crash, Crash::PowerLoss);
    let p = parse_policy("[durability]\npath = \"/d/*\"\ncrash = \"process\"\n", "p").unwrap();
    assert_eq!(p.durability.unwrap().crash, Crash::Process);
    let e = err("[durability]\npath = \"/d/*\"\ncrash = \"reboot\"\n");
    assert_eq!((e.line, e.col), (3, 9), "{e}");
    assert!(e.message.contains("crash `reboot` is not one of"), "{e}");
}

#[test]
fn durability_model_defaults_to_ext4_and_names_the_bad_one() {
    use crate::durability::Model;
    let p = parse_policy("[durability]\npath = \"/d/*\"\n", "p").unwrap();
    assert_eq!(p.durability.unwrap().model, Model::Ext4);
    let p = parse_policy("[durability]\npath = \"/d/*\"\nmodel = \"posix\"\n", "p").unwrap();
    assert_eq!(p.durability.unwrap().model, Model::Posix);
    let e = err("[durability]\npath = \"/d/*\"\nmodel = \"xfs\"\n");
    assert_eq!((e.line, e.col), (3, 9), "{e}");
    assert!(e.message.contains("`xfs` is not one of"), "{e}");
}

#[test]
fn power_loss_is_a_process_fault_at_any_call() {
    let p = parse_policy(
        "[[rules]]\non = \"fsync\"\nfd = \"file\"\nfault = \"power-loss\"\n",
        "p",
    )
    .unwrap();
    assert_eq!(p.rules[0].fault, crate::fault::Fault::PowerLoss);
    assert!(p.rules[0].fault.is_process_fault());
    assert_eq!(p.rules[0].fault.kind_name(), "power-loss");
}

#[test]
fn stalls_and_eagain_parse() {
    let p = parse_policy(
        "[[rules]]\non = [\"reads\", \"accept\", \"connect\"]\nfault = { stall = \"5ms..200ms\" }\n\n[[rules]]\non = \"recv\"\nfault = \"EAGAIN\"\n",
        "p",
    )
    .unwrap();
    assert_eq!(
        p.rules[0].fault,
        Fault::Stall(crate::fault::NsRange {
            lo: 5_000_000,
            hi: 200_000_000
        })
    );
    assert_eq!(p.rules[1].fault, Fault::Errno(libc::EAGAIN));
}

#[test]
fn platform_and_quirk_fields() {
    let p = parse_policy(
        "platform = \"macos\"\nno_quirks = [\"getpeername-einval\"]\nquirks = [\"no-accept4\"]\n",
        "p",
    )
    .unwrap();
    assert!(p.quirks.has(crate::quirk::Quirk::SetsockoptAfterShutdown));
    assert!(!p.quirks.has(crate::quirk::Quirk::GetpeernameEinval));
    assert!(p.quirks.has(crate::quirk::Quirk::NoAccept4));
    let e = err("platform = \"darwin\"\n");
    assert_eq!((e.line, e.col), (1, 12), "{e}");
    assert!(e.message.contains("expected one of macos"), "{e}");
    let e = err("quirks = [\"nope\"]\n");
    assert!(e.message.contains("unknown quirk `nope`"), "{e}");
    // Each unknown name points at the list it was written in.
    let e = err("quirks = [\"no-accept4\"]\nno_quirks = [\"nope\"]\n");
    assert_eq!((e.line, e.col), (2, 13), "{e}");
    let e = err("no_quirks = [\"no-accept4\"]\nquirks = [\"nope\"]\n");
    assert_eq!((e.line, e.col), (2, 10), "{e}");
}

#[test]
fn file_calls_take_their_own_errnos_and_default_to_files() {
    let rule = |text: &str| parse_policy(&format!("[[rules]]\n{text}\n"), "p");
    let p = rule("on = \"fsync\"\nfault = \"EIO\"").unwrap();
    assert_eq!(p.rules[0].kinds, KindSet(crate::kind::FdKind::File.bit()));
    assert!(rule("on = \"opens\"\npath = \"/data/*\"\nfault = \"EMFILE\"").is_ok());
    assert!(rule("on = \"rename\"\nfault = \"EXDEV\"").is_ok());
    // What each call cannot return is refused, with what it can.
    let e = rule("on = \"fsync\"\nfault = \"ECONNRESET\"").unwrap_err();
    assert!(
        e.message.contains("syncs cannot return ECONNRESET"),
        "{}",
        e.message
    );
    assert!(e.message.contains("EIO"), "{}", e.message);
    let e = rule("on = \"socket\"\nfault = \"ENOENT\"").unwrap_err();
    assert!(
        e.message.contains("newfds cannot return ENOENT"),
        "{}",
        e.message
    );
    // A call that moves no data cannot be cut short or stalled.
    let e = rule("on = \"open\"\nfault = { short = \"50%\" }").unwrap_err();
    assert!(e.message.contains("opens move no data"), "{}", e.message);
    assert!(rule("on = \"fsync\"\nfault = \"crash\"").is_ok());
    // pwrite is a write: ENOSPC, EFBIG, EDQUOT are its own.
    assert!(rule("on = \"pwrite\"\nfault = \"EDQUOT\"").is_ok());
    // dup makes no new open file: out of fds it says EMFILE, never ENFILE.
    assert!(rule("on = \"dup\"\nfd = \"any\"\nfault = \"EMFILE\"").is_ok());
    let e = rule("on = \"dup\"\nfd = \"any\"\nfault = \"ENFILE\"").unwrap_err();
    assert!(
        e.message.contains("dup cannot return ENFILE"),
        "{}",
        e.message
    );
    // Only rename crosses devices.
    assert!(rule("on = \"rename\"\nfault = \"EXDEV\"").is_ok());
    let e = rule("on = \"unlink\"\nfault = \"EXDEV\"").unwrap_err();
    assert!(
        e.message.contains("unlink cannot return EXDEV"),
        "{}",
        e.message
    );
    // The group means its ops that can: rename.
    let p = rule("on = \"entries\"\nfault = \"EXDEV\"").unwrap();
    let r = &p.rules[0];
    assert_eq!(r.ops, OpSet::from_name("rename").unwrap());
    assert_eq!(
        r.left_out.iter().map(|o| o.name()).collect::<Vec<_>>(),
        ["unlink", "mkdir"]
    );
}

#[test]
fn a_group_keeps_the_ops_the_fault_acts_on_and_a_named_op_it_cannot_is_an_error() {
    let rule = |text: &str| parse_policy(&format!("[[rules]]\n{text}\n"), "p");
    // drop loses single datagrams: sendmmsg is left out of "writes", not a reason to refuse.
    let p = rule("on = \"writes\"\nfd = \"udp\"\nfault = \"drop\"").unwrap();
    let r = &p.rules[0];
    assert!(r.ops.contains(Op::Sendto) && !r.ops.contains(Op::Sendmmsg));
    assert_eq!(r.left_out, OpSet(Op::Sendmmsg.bit()));
    // Toxics act on a connection's single reads and writes: the mmsg calls are left out.
    let p = rule("on = \"reads\"\nfault = { latency = \"5ms\" }").unwrap();
    assert_eq!(p.rules[0].left_out, OpSet(Op::Recvmmsg.bit()));
    // Where everything applies, nothing is left out.
    let p = rule("on = \"reads\"\nfault = \"ECONNRESET\"").unwrap();
    assert!(p.rules[0].left_out.is_empty());
    // Named on its own, an op the fault cannot act on is an error, with where and why.
    for (text, says) in [
        (
            "on = [\"sendto\", \"sendmmsg\"]\nfd = \"udp\"\nfault = \"drop\"",
            "drop does not apply to sendmmsg",
        ),
        (
            "on = \"recvmmsg\"\nfault = { bandwidth = \"1KB/s\" }",
            "not on recvmmsg",
        ),
        (
            "on = [\"reads\", \"connect\"]\nfault = { short = \"50%\" }",
            "not to connect",
        ),
    ] {
        let e = rule(text).unwrap_err();
        assert!(e.message.contains(says), "{text}: {}", e.message);
        // The fault is the text's last line, after `[[rules]]`.
        assert_eq!(e.line, text.lines().count() + 1, "{text}: the fault's line");
    }
    // A group none of whose ops the fault acts on is refused as before.
    let e = rule("on = \"writes\"\nfd = \"tcp\"\nfault = \"drop\"").unwrap_err();
    assert!(e.message.contains("need fd = \"udp\""), "{}", e.message);
    let e = rule("on = \"opens\"\nfault = { short = \"50%\" }").unwrap_err();
    assert!(e.message.contains("opens move no data"), "{}", e.message);
}

#[test]
fn disks_need_an_absolute_glob_and_a_size() {
    let p = parse_policy(
        "[[disk]]\nname = \"data\"\npath = \"/srv/data/*\"\ncapacity = \"64MB\"\n",
        "p",
    )
    .unwrap();
    assert_eq!(p.disks[0].capacity, 64 << 20);
    assert_eq!(p.disks[0].name, "data");
    for (text, expect) in [
        ("path = \"data/*\"\ncapacity = \"1M\"", "must be absolute"),
        (
            "path = \"/d/*\"\ncapacity = \"lots\"",
            "capacity: `lots` is not a size",
        ),
        ("path = \"/d/*\"", "missing field `capacity`"),
    ] {
        let e = parse_policy(&format!("[[disk]]\n{text}\n"), "p").unwrap_err();
        assert!(e.message.contains(expect), "{text}: {}", e.message);
    }
    let twice = "[[disk]]\nname = \"a\"\npath = \"/x/*\"\ncapacity = \"1M\"\n\
                 [[disk]]\nname = \"a\"\npath = \"/y/*\"\ncapacity = \"1M\"\n";
    assert!(
        parse_policy(twice, "p")
            .unwrap_err()
            .message
            .contains("duplicate disk")
    );
}

#[test]
fn any_errno_lifts_the_realism_check() {
    let p = parse_policy(
        "[[rules]]\non = \"recv\"\nfault = \"ENOENT\"\nany_errno = true\n",
        "p",
    );
    assert!(p.is_ok());
}

#[test]
fn type_errors_say_what_the_field_expects_not_serde_internals() {
    for (text, at, expect) in [
        (
            "[[rules]]\non = 5\nfault = \"EINTR\"\n",
            (2, 6),
            "`on` expects an op name or an array of them, e.g. \"reads\" or [\"recv\", \"send\"], \
             not integer 5",
        ),
        (
            "[[rules]]\non = [5]\nfault = \"EINTR\"\n",
            (2, 7),
            "`on` expects an op name",
        ),
        (
            "[[rules]]\non = \"reads\"\nfd = 3\nfault = \"EINTR\"\n",
            (3, 6),
            "`fd` expects an fd kind or an array of them",
        ),
        (
            "[[rules]]\non = \"reads\"\nprobability = \"x\"\nfault = \"EINTR\"\n",
            (3, 15),
            "`probability` expects a number from 0.0 to 1.0, not string \"x\"",
        ),
        (
            "quirk_probability = \"x\"\n",
            (1, 21),
            "`quirk_probability` expects a number from 0.0 to 1.0",
        ),
        (
            "seed = 99999999999999999999\n",
            (1, 8),
            "`seed` expects a whole number from 0 to 18446744073709551615, not integer \
             99999999999999999999 (too large)",
        ),
        ("seed = -1\n", (1, 8), "not integer -1 (negative)"),
        (
            "[[rules]]\non = \"reads\"\ntimes = \"x\"\nfault = \"EINTR\"\n",
            (3, 9),
            "`times` expects a whole number",
        ),
        (
            "[[rules]]\non = \"reads\"\nwindow = \"2s\"\nfault = \"EINTR\"\n",
            (3, 10),
            "`window` expects an array of two durations",
        ),
        (
            "quirks = \"no-accept4\"\n",
            (1, 10),
            "`quirks` expects an array of quirk names",
        ),
        (
            "[[rules]]\non = \"reads\"\nsignal = 5\nfault = \"EINTR\"\n",
            (3, 10),
            "`signal` expects a signal name",
        ),
    ] {
        let e = err(text);
        assert_eq!((e.line, e.col), at, "{text}: {e}");
        assert!(e.message.contains(expect), "{text}: {e}");
        for internal in [
            "untagged enum",
            "OneOrMany",
            "Number",
            "as i128",
            "u64",
            "a sequence",
            "invalid type",
            "any value",
        ] {
            assert!(!e.message.contains(internal), "{text}: {e}");
        }
    }
}

#[test]
fn a_huge_probability_is_out_of_range_not_a_type_error() {
    let e =
        err("[[rules]]\non = \"reads\"\nprobability = 99999999999999999999\nfault = \"EINTR\"\n");
    assert_eq!((e.line, e.col), (3, 15), "{e}");
    assert!(e.message.contains("is outside 0.0..=1.0"), "{e}");
}

#[test]
fn unknown_names_in_an_array_point_at_the_name() {
    let e = err("[[rules]]\non = [\"recv\", \"recieve\"]\nfault = \"EINTR\"\n");
    assert_eq!((e.line, e.col), (2, 15), "{e}");
    assert!(e.message.contains("unknown op `recieve`"), "{e}");
    let e = err("[[rules]]\non = \"recieve\"\nfault = \"EINTR\"\n");
    assert_eq!((e.line, e.col), (2, 6), "{e}");
    let e = err("[[rules]]\non = \"reads\"\nfd = [\"tcp\", \"sokc\"]\nfault = \"EINTR\"\n");
    assert_eq!((e.line, e.col), (3, 14), "{e}");
    assert!(e.message.contains("unknown fd kind `sokc`"), "{e}");
}

#[test]
fn a_backwards_short_range_says_start_is_after_end() {
    let e = err("[[rules]]\non = \"reads\"\nfault = { short = \"50..1\" }\n");
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(
        e.message,
        "short `50..1`: the start (50) is after the end (1); write the smaller first, e.g. \"1..50\""
    );
    let e = err("[[rules]]\non = \"reads\"\nfault = { short = \"50..10%\" }\n");
    assert!(
        e.message.contains("the start (50) is after the end (10)"),
        "{e}"
    );
    assert!(e.message.contains("\"10..50%\""), "{e}");
    // Other bad shorts keep the general message.
    let e = err("[[rules]]\non = \"reads\"\nfault = { short = \"0..5\" }\n");
    assert!(!e.message.contains("after the end"), "{e}");
}
