//! The selection loop as the policy reference describes it, over a fake backend that records
//! what it was asked.

use super::*;
use crate::chance::key_base;
use crate::key::Dir;
use crate::op::OpClass;
use crate::parse::inject::{parse_conn, parse_process};
use crate::parse::parse_policy;

/// A backend whose answers a test sets, and which records what the loop asked of it.
struct Fake {
    since_start_ns: u64,
    clock_reads: u32,
    times_used: Vec<u64>,
    can_log: bool,
    /// The realism model's answer for every fault (None: it may happen).
    refuse: Option<NotHere>,
    tallies: Vec<(usize, Result<(), Reason>)>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            since_start_ns: 0,
            clock_reads: 0,
            times_used: vec![0; 8],
            can_log: true,
            refuse: None,
            tallies: Vec::new(),
        }
    }
}

impl Backend for Fake {
    fn since_start_ns(&mut self) -> u64 {
        self.clock_reads += 1;
        self.since_start_ns
    }
    fn take_one_of_times(&mut self, rule: usize, times: u64) -> bool {
        let used = &mut self.times_used[rule];
        *used += 1;
        *used <= times
    }
    fn can_log(&mut self) -> bool {
        self.can_log
    }
    fn realise(&mut self, fault: &Fault, _: RuleContext, _: u64) -> Result<Action, NotHere> {
        match (self.refuse, fault) {
            (Some(r), _) => Err(r),
            (None, Fault::Errno(errno)) => Ok(Action::Fail {
                errno: *errno,
                brk: crate::realise::Break::None,
            }),
            (None, _) => Ok(Action::Delay(1)),
        }
    }
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
        self.tallies.push((rule, outcome));
    }
}

const SEED: u64 = 7;
const PROCESS: u64 = 0x1234;

fn policy(text: &str) -> (Policy, Vec<Gate>) {
    let p = parse_policy(text, "t.toml").expect("test policy parses");
    let gates = Gate::all(&p.rules);
    (p, gates)
}

fn call(n: u64) -> Position {
    Position {
        process: PROCESS,
        base: key_base(SEED, PROCESS),
        conn: parse_conn("tcp-out#0").unwrap(),
        site: Site::Call {
            class: OpClass::Connect,
            n,
        },
        n,
        requested: 0,
    }
}

fn all(p: &Policy) -> u32 {
    (1u32 << p.rules.len()) - 1
}

fn errno_of(c: &Choice) -> i32 {
    match c.action {
        Action::Fail { errno, .. } => errno,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn the_first_rule_that_fires_wins_and_is_tallied() {
    let (p, g) = policy(
        "[[rules]]\non = [\"connect\"]\nfault = \"ECONNREFUSED\"\n\
         [[rules]]\non = [\"connect\"]\nfault = \"ETIMEDOUT\"\n",
    );
    let mut b = Fake::new();
    let c = select(&p, &g, &call(0), all(&p), &mut b).expect("rule 0 fires");
    assert_eq!(c.source, Source::Rule(0));
    assert_eq!(errno_of(&c), libc::ECONNREFUSED);
    assert_eq!(c.key, call(0).key(0));
    assert_eq!(b.tallies, vec![(0, Ok(()))]);
    // Only the candidates the backend's target allows are tried.
    let c = select(&p, &g, &call(0), 0b10, &mut b).expect("rule 1 fires");
    assert_eq!(c.source, Source::Rule(1));
    assert!(select(&p, &g, &call(0), 0, &mut b).is_none());
}

#[test]
fn times_is_a_budget_the_backend_keeps_and_a_used_up_rule_lets_the_next_fire() {
    let (p, g) = policy(
        "[[rules]]\non = [\"connect\"]\ntimes = 2\nfault = \"ECONNREFUSED\"\n\
         [[rules]]\non = [\"connect\"]\nfault = \"ETIMEDOUT\"\n",
    );
    let mut b = Fake::new();
    let errnos: Vec<i32> = (0..4)
        .map(|n| errno_of(&select(&p, &g, &call(n), all(&p), &mut b).unwrap()))
        .collect();
    use libc::{ECONNREFUSED as R, ETIMEDOUT as T};
    assert_eq!(errnos, vec![R, R, T, T]);
    assert_eq!(
        b.tallies
            .iter()
            .filter(|t| **t == (0, Err(Reason::TimesUsedUp)))
            .count(),
        2
    );
    // Another process (a fresh budget from its backend) gets its own two.
    let mut child = Fake::new();
    let c = select(&p, &g, &call(9), all(&p), &mut child).unwrap();
    assert_eq!(errno_of(&c), R);
}

#[test]
fn window_is_asked_of_the_backends_clock_once_per_call_and_only_when_needed() {
    let (p, g) = policy(
        "[[rules]]\non = [\"connect\"]\nwindow = [\"1s\", \"2s\"]\nfault = \"ECONNREFUSED\"\n\
         [[rules]]\non = [\"connect\"]\nwindow = [\"1s\", \"3s\"]\nfault = \"ETIMEDOUT\"\n\
         [[rules]]\non = [\"connect\"]\nfault = \"ENETUNREACH\"\n",
    );
    let mut b = Fake::new();
    let at = |b: &mut Fake, ns: u64| {
        b.since_start_ns = ns;
        b.clock_reads = 0;
        let e = errno_of(&select(&p, &g, &call(0), all(&p), b).unwrap());
        assert_eq!(b.clock_reads, 1, "the clock is read once per call");
        e
    };
    assert_eq!(at(&mut b, 500_000_000), libc::ENETUNREACH);
    assert_eq!(at(&mut b, 1_500_000_000), libc::ECONNREFUSED);
    assert_eq!(at(&mut b, 2_500_000_000), libc::ETIMEDOUT);
    assert_eq!(
        at(&mut b, 3_000_000_000),
        libc::ENETUNREACH,
        "the end is excluded"
    );
    assert!(b.tallies.contains(&(0, Err(Reason::OutsideWindow))));
    // A rule without a window never reads the clock.
    b.clock_reads = 0;
    select(&p, &g, &call(0), 0b100, &mut b).unwrap();
    assert_eq!(b.clock_reads, 0);
}

#[test]
fn a_fault_linux_could_not_produce_here_is_refused_with_its_reason() {
    let (p, g) = policy("[[rules]]\non = [\"connect\"]\ntimes = 1\nfault = \"EINTR\"\n");
    let mut b = Fake::new();
    b.refuse = Some(NotHere::WouldNotWait);
    assert!(select(&p, &g, &call(0), 1, &mut b).is_none());
    assert_eq!(
        b.tallies,
        vec![(0, Err(Reason::Realism(NotHere::WouldNotWait)))]
    );
    assert_eq!(b.times_used[0], 0, "a refused fault uses none of its times");
}

#[test]
fn a_process_that_cannot_log_gets_no_fault_and_uses_no_times() {
    let (p, g) = policy(
        "[[rules]]\non = [\"connect\"]\ntimes = 1\nfault = \"ECONNREFUSED\"\n\
         [[rules]]\non = [\"connect\"]\nfault = \"ETIMEDOUT\"\n",
    );
    let mut b = Fake::new();
    b.can_log = false;
    assert!(select(&p, &g, &call(0), all(&p), &mut b).is_none());
    assert_eq!(b.tallies, vec![(0, Err(Reason::LogUnwritable))]);
    assert_eq!(b.times_used[0], 0);
}

#[test]
fn after_every_probability_and_min_bytes_gate_the_draw_uncounted() {
    let (p, g) =
        policy("[[rules]]\non = [\"connect\"]\nafter = 2\nevery = 3\nfault = \"ECONNREFUSED\"\n");
    let mut b = Fake::new();
    let fired: Vec<u64> = (0..10)
        .filter(|n| select(&p, &g, &call(*n), 1, &mut b).is_some())
        .collect();
    assert_eq!(fired, vec![2, 5, 8]);
    assert_eq!(b.tallies.len(), 3, "a call the counts skip is no draw");

    let (p, g) = policy("[[rules]]\non = [\"connect\"]\nprobability = 0.0\nfault = \"EINTR\"\n");
    let mut b = Fake::new();
    assert!((0..100).all(|n| select(&p, &g, &call(n), 1, &mut b).is_none()));
    assert!(b.tallies.is_empty());
}

#[test]
fn a_per_connection_rule_draws_once_for_the_whole_connection() {
    let (p, g) = policy(
        "[[rules]]\non = [\"reads\"]\nfd = \"tcp\"\nper = \"connection\"\nprobability = 0.5\n\
         fault = \"ECONNRESET\"\n",
    );
    let conns: Vec<u64> = (0..40)
        .map(|i| crate::inject::conn_key(crate::kind::FdKind::Tcp, 0, i))
        .collect();
    let mut fired_conns = 0;
    for conn in conns {
        let outcomes: Vec<bool> = (0..20u64)
            .map(|pos| {
                let at = Position {
                    conn,
                    site: Site::Stream {
                        dir: Dir::Rx,
                        pos: pos * 100,
                        attempt: 0,
                    },
                    requested: 100,
                    ..call(pos)
                };
                select(&p, &g, &at, 1, &mut Fake::new()).is_some()
            })
            .collect();
        assert!(
            outcomes.iter().all(|o| *o == outcomes[0]),
            "one connection, one draw: {outcomes:?}"
        );
        fired_conns += outcomes[0] as u32;
    }
    // Half the connections, give or take: the draw still depends on the connection.
    assert!((8..=32).contains(&fired_conns), "{fired_conns} of 40");
}

#[test]
fn an_injection_comes_before_every_rule_and_uses_no_draw() {
    let conn = "tcp-out#0";
    let text = format!(
        "[[rules]]\non = [\"connect\"]\nfault = \"ETIMEDOUT\"\n\
         [[inject]]\nprocess = \"{PROCESS:016x}\"\nconn = \"{conn}\"\nat = \"connect#3\"\n\
         fault = \"ECONNREFUSED\"\n"
    );
    let (p, g) = policy(&text);
    assert_eq!(parse_process(&format!("{PROCESS:016x}")), Ok(PROCESS));
    let mut b = Fake::new();
    let c = select(&p, &g, &call(3), 1, &mut b).expect("the injection");
    assert_eq!(c.source, Source::Injection(0));
    assert_eq!(c.key, call(3).key(INJECTED));
    assert_eq!(errno_of(&c), libc::ECONNREFUSED);
    assert!(b.tallies.is_empty(), "an injection is no draw");
    // Elsewhere the rule draws as usual; with no candidates the injection still applies.
    assert_eq!(
        select(&p, &g, &call(2), 1, &mut b).unwrap().source,
        Source::Rule(0)
    );
    assert!(select(&p, &g, &call(3), 0, &mut b).is_some());
    // An injection Linux could not produce here is not there: the rules are tried.
    b.refuse = Some(NotHere::WouldNotWait);
    assert!(select(&p, &g, &call(3), 0, &mut b).is_none());
}

#[test]
fn what_the_backend_cannot_carry_out_or_does_not_cover_is_skipped_before_the_draw() {
    struct Narrow(Fake);
    impl Backend for Narrow {
        fn since_start_ns(&mut self) -> u64 {
            self.0.since_start_ns()
        }
        fn take_one_of_times(&mut self, rule: usize, times: u64) -> bool {
            self.0.take_one_of_times(rule, times)
        }
        fn can_log(&mut self) -> bool {
            true
        }
        fn realise(&mut self, f: &Fault, c: RuleContext, p: u64) -> Result<Action, NotHere> {
            self.0.realise(f, c, p)
        }
        fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
            self.0.tally(rule, outcome)
        }
        fn carries_out(&self, fault: &Fault) -> bool {
            !matches!(fault, Fault::Errno(libc::ECONNREFUSED))
        }
        fn covers(&self, rule: &Rule) -> bool {
            rule.name != "elsewhere"
        }
    }
    let (p, g) = policy(
        "[[rules]]\non = [\"connect\"]\nfault = \"ECONNREFUSED\"\n\
         [[rules]]\nname = \"elsewhere\"\non = [\"connect\"]\nfault = \"ENETUNREACH\"\n\
         [[rules]]\non = [\"connect\"]\nfault = \"ETIMEDOUT\"\n",
    );
    let mut b = Narrow(Fake::new());
    let c = select(&p, &g, &call(0), all(&p), &mut b).unwrap();
    assert_eq!(c.source, Source::Rule(2));
    assert_eq!(b.0.tallies, vec![(2, Ok(()))]);
}

#[test]
fn the_hot_paths_early_exit_agrees_with_the_selection() {
    let (p, g) = policy(
        "[[rules]]\non = [\"reads\"]\nfd = \"tcp\"\nprobability = 0.3\nafter = 1\nfault = \"EINTR\"\n\
         [[rules]]\non = [\"reads\"]\nfd = \"tcp\"\nprobability = 0.2\nmin_bytes = 64\nfault = \"EIO\"\n",
    );
    for n in 0..200u64 {
        let at = Position {
            requested: (n as usize * 7) % 128,
            site: Site::Stream {
                dir: Dir::Rx,
                pos: n * 10,
                attempt: 0,
            },
            ..call(n)
        };
        assert_eq!(
            any_may_fire(
                &g,
                at.base ^ at.conn,
                at.site.words(),
                at.n,
                at.requested,
                all(&p)
            ),
            select(&p, &g, &at, all(&p), &mut Fake::new()).is_some(),
            "call {n}"
        );
    }
}

#[test]
fn only_a_rule_at_probability_0_is_left_out_of_the_draws_and_it_never_fires() {
    let (p, g) = policy(
        "[[rules]]\non = \"connect\"\nfault = \"ECONNREFUSED\"\nprobability = 0.0\n\
         [[rules]]\non = \"connect\"\nfault = \"ECONNREFUSED\"\nprobability = 0.000001\n\
         [[rules]]\non = \"connect\"\nfault = \"ECONNREFUSED\"\n",
    );
    assert_eq!(drawable(&g), 0b110, "p = 0 alone is left out");
    // What it leaves out is what the selection would never pick: rule 0 alone never fires,
    // whatever the call.
    for n in 0..500 {
        assert!(
            select(&p, &g, &call(n), 0b001, &mut Fake::new()).is_none(),
            "call {n}"
        );
    }
}
