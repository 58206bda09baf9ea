//! Decision keys: where a decision is made (process, connection, site on it) and by which rule,
//! with the text form logs, policies and replays use (`PROCESS-CONN/rN/SITE`). The numbers drawn
//! at a key are `chance`'s.

pub use crate::op::Dir;
use crate::op::OpClass;
use core::fmt;
use core::str::FromStr;

/// Where on a connection a decision is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// Data calls on byte streams: the offset reached in that direction and how many calls were
    /// already made at that offset (so a retried EINTR gets a fresh draw).
    Stream { dir: Dir, pos: u64, attempt: u32 },
    /// Everything else (and datagrams): the n-th call of that class on the connection.
    Call { class: OpClass, n: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub process: u64,
    pub conn: u64,
    pub rule: u16,
    pub site: Site,
}

impl Site {
    /// The site as three numbers, for hashing and ordering.
    pub fn words(&self) -> [u64; 3] {
        match *self {
            Site::Stream { dir, pos, attempt } => [1 + dir as u64, pos, attempt as u64],
            Site::Call { class, n } => [16 + class as u64, n, 0],
        }
    }
}

/// The `rule` of a key whose fault came from an exact injection, not a rule's draw.
pub const INJECTED: u16 = u16::MAX;
/// The `rule` of a key whose fault came from a Toxiproxy proxy's toxics (`r65534`).
pub const PROXY: u16 = u16::MAX - 1;

/// Why the text of a key or a site does not parse: the text, and what was expected where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseKeyError {
    /// `key` or `site`: what was being parsed.
    pub what: &'static str,
    pub text: String,
    /// What was expected, and where in the text.
    pub expected: String,
}

impl fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} `{}`: {}", self.what, self.text, self.expected)
    }
}

impl std::error::Error for ParseKeyError {}

/// A decimal number exactly as `Display` writes one: digits only, no sign, no leading zero.
fn decimal<T: FromStr>(text: &str) -> Option<T> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// 16 lowercase hex digits, as `{:016x}` writes them.
fn hex16(text: &str) -> Option<u64> {
    let canonical =
        text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

/// The site as the log prints it: `rx@4096#1`, `tx@0#0`, `connect#0`, `reads#5`.
impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Site::Stream { dir, pos, attempt } => write!(f, "{}@{pos}#{attempt}", dir.name()),
            Site::Call { class, n } => write!(f, "{}#{n}", class.name()),
        }
    }
}

/// Parses exactly what `Display` writes.
impl FromStr for Site {
    type Err = ParseKeyError;

    fn from_str(text: &str) -> Result<Site, ParseKeyError> {
        let err = |expected: &str| ParseKeyError {
            what: "site",
            text: text.to_string(),
            expected: expected.to_string(),
        };
        let Some((head, count)) = text.rsplit_once('#') else {
            return Err(err(
                "expected rx@OFFSET#ATTEMPT, tx@OFFSET#ATTEMPT or CLASS#N (connect#0, reads#3)",
            ));
        };
        if let Some((dir, pos)) = head.split_once('@') {
            let dir = match dir {
                "rx" => Dir::Rx,
                "tx" => Dir::Tx,
                _ => return Err(err("expected `rx` or `tx` before `@`")),
            };
            let pos = decimal(pos).ok_or_else(|| {
                err("expected the stream offset (a decimal number) between `@` and `#`")
            })?;
            let attempt = decimal(count)
                .ok_or_else(|| err("expected the attempt (a decimal number) after `#`"))?;
            return Ok(Site::Stream { dir, pos, attempt });
        }
        let class = OpClass::from_name(head).ok_or_else(|| {
            err(
                "expected rx@OFFSET, tx@OFFSET or a call class (reads, writes, connect, accept, \
                 setsockopt, shutdown, close) before `#`",
            )
        })?;
        let n = decimal(count)
            .ok_or_else(|| err("expected the call's ordinal (a decimal number) after `#`"))?;
        Ok(Site::Call { class, n })
    }
}

/// The key as it appears in the event log, e.g. `9f..-3a../r0/rx@4096#1` or `.../r2/connect#0`
/// (`.../inject/...` for an exact injection). `replay` and `freeze` read it back with `FromStr`.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}-{:016x}/", self.process, self.conn)?;
        if self.rule == INJECTED {
            f.write_str("inject/")?;
        } else {
            write!(f, "r{}/", self.rule)?;
        }
        write!(f, "{}", self.site)
    }
}

/// Parses exactly what `Display` writes: `PROCESS-CONN/rRULE/SITE` or `PROCESS-CONN/inject/SITE`,
/// PROCESS and CONN as 16 lowercase hex digits.
impl FromStr for Key {
    type Err = ParseKeyError;

    fn from_str(text: &str) -> Result<Key, ParseKeyError> {
        let err = |expected: String| ParseKeyError {
            what: "key",
            text: text.to_string(),
            expected,
        };
        let (process, rest) = text.split_once('-').unwrap_or((text, ""));
        let process = hex16(process).ok_or_else(|| {
            err("expected 16 lowercase hex digits (the process) before `-`".to_string())
        })?;
        let (conn, rest) = rest.split_once('/').ok_or_else(|| {
            err(
                "expected `-`, 16 hex digits (the connection) and `/` after the process"
                    .to_string(),
            )
        })?;
        let conn = hex16(conn).ok_or_else(|| {
            err("expected 16 lowercase hex digits (the connection) between `-` and `/`".to_string())
        })?;
        let (rule, site) = rest.split_once('/').ok_or_else(|| {
            err("expected `rRULE/` or `inject/` and a site after the connection".to_string())
        })?;
        let rule = match rule {
            "inject" => INJECTED,
            _ => rule
                .strip_prefix('r')
                .and_then(decimal::<u16>)
                .filter(|r| *r != INJECTED)
                .ok_or_else(|| {
                    err(format!(
                        "expected `rRULE` (a rule index below {INJECTED}) or `inject` after the \
                         connection, found `{rule}`"
                    ))
                })?,
        };
        let site = site
            .parse()
            .map_err(|e: ParseKeyError| err(format!("in the site `{site}`: {}", e.expected)))?;
        Ok(Key {
            process,
            conn,
            rule,
            site,
        })
    }
}

/// A key without its rule: the process, the connection and the site on it. A frozen policy's
/// injection fires where a rule's fault was drawn, under `inject` instead of the rule, so a
/// replay's faults are matched to the original's by place. Displayed `PROCESS-CONN/SITE` (for
/// messages: no log or policy holds this text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Place {
    pub process: u64,
    pub conn: u64,
    pub site: Site,
}

impl Key {
    pub fn place(&self) -> Place {
        Place {
            process: self.process,
            conn: self.conn,
            site: self.site,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}-{:016x}/{}", self.process, self.conn, self.site)
    }
}

/// Whether an accept is a call the key counts (`accept#N`). A non-blocking listener with no
/// connection pending answers EAGAIN at once (inet_csk_accept, unix_accept: `O_NONBLOCK` and an
/// empty queue); whether an event loop makes such a call at all (it accepts until EAGAIN, and
/// how many connections are queued by then is timing) depends on how threads and processes
/// interleave. Counting it would shift the key of every later accept, so such a call is neither
/// counted nor faulted: `accept#N` is then the N-th call that found a connection (or waited for
/// one), the same in every run. A fault there would change nothing the program could see
/// anyway (a delay before an EAGAIN, a stall that is an EAGAIN). Both backends answer such a
/// call EAGAIN themselves, without making it: a connection that arrived between the look and
/// the real call would otherwise be accepted uncounted.
pub fn accept_is_counted(nonblocking: bool, pending: bool) -> bool {
    !nonblocking || pending
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A key at receive offset `pos` (the other parts fixed), for tests here and in `chance`.
    pub(crate) fn key(pos: u64) -> Key {
        Key {
            process: 1,
            conn: 2,
            rule: 0,
            site: Site::Stream {
                dir: Dir::Rx,
                pos,
                attempt: 0,
            },
        }
    }

    #[test]
    fn key_text_is_stable() {
        assert_eq!(
            key(4096).to_string(),
            "0000000000000001-0000000000000002/r0/rx@4096#0"
        );
    }

    fn every_site() -> Vec<Site> {
        let mut sites = Vec::new();
        for dir in [Dir::Rx, Dir::Tx] {
            for (pos, attempt) in [(0, 0), (4096, 1), (u64::MAX, u32::MAX)] {
                sites.push(Site::Stream { dir, pos, attempt });
            }
        }
        for class in OpClass::ALL {
            for n in [0, 17, u64::MAX] {
                sites.push(Site::Call { class, n });
            }
        }
        sites
    }

    #[test]
    fn every_site_and_class_round_trips_through_its_text() {
        for site in every_site() {
            let text = site.to_string();
            assert_eq!(text.parse::<Site>(), Ok(site), "{text}");
        }
        for class in OpClass::ALL {
            let text = format!("{}#3", class.name());
            assert_eq!(text.parse::<Site>().unwrap().to_string(), text);
        }
        assert_eq!(
            "rx@1024#0".parse::<Site>(),
            Ok(Site::Stream {
                dir: Dir::Rx,
                pos: 1024,
                attempt: 0
            })
        );
    }

    #[test]
    fn every_key_round_trips_through_its_text() {
        for site in every_site() {
            for rule in [0, 2, INJECTED - 1, INJECTED] {
                for (process, conn) in [(0, 0), (1, 2), (u64::MAX, 0x9f3a_0000_0000_00ff)] {
                    let key = Key {
                        process,
                        conn,
                        rule,
                        site,
                    };
                    let text = key.to_string();
                    assert_eq!(text.parse::<Key>(), Ok(key), "{text}");
                    assert_eq!(text.parse::<Key>().unwrap().to_string(), text);
                }
            }
        }
    }

    #[test]
    fn injected_keys_read_back_as_injected() {
        let text = "3d77538f4f44f7a1-322c491dea8e590c/inject/connect#2";
        let key: Key = text.parse().unwrap();
        assert_eq!(key.rule, INJECTED);
        assert_eq!(
            key.site,
            Site::Call {
                class: OpClass::Connect,
                n: 2
            }
        );
        assert_eq!(key.process, 0x3d77_538f_4f44_f7a1);
        assert_eq!(
            key.place().to_string(),
            "3d77538f4f44f7a1-322c491dea8e590c/connect#2"
        );
        // A rule's key and the injection replaying it are at the same place.
        let drawn: Key = "3d77538f4f44f7a1-322c491dea8e590c/r3/connect#2"
            .parse()
            .unwrap();
        assert_eq!(drawn.rule, 3);
        assert_eq!(drawn.place(), key.place());
    }

    #[test]
    fn malformed_keys_say_what_was_expected_where() {
        let good = "3d77538f4f44f7a1-322c491dea8e590c";
        for (text, says) in [
            (
                "",
                "expected 16 lowercase hex digits (the process) before `-`",
            ),
            (
                "3d77538f4f44f7a-322c491dea8e590c/r0/rx@0#0",
                "(the process)",
            ),
            (
                "3D77538F4F44F7A1-322c491dea8e590c/r0/rx@0#0",
                "(the process)",
            ),
            (
                "3d77538f4f44f7a1",
                "expected `-`, 16 hex digits (the connection)",
            ),
            (
                "3d77538f4f44f7a1-322c491dea8e590c",
                "and `/` after the process",
            ),
            (
                "3d77538f4f44f7a1-322c491dea8e59xx/r0/rx@0#0",
                "(the connection) between `-` and `/`",
            ),
            (&format!("{good}/r0"), "expected `rRULE/` or `inject/`"),
            (&format!("{good}/x0/rx@0#0"), "found `x0`"),
            (&format!("{good}/r65535/rx@0#0"), "below 65535"),
            (&format!("{good}/r01/rx@0#0"), "found `r01`"),
            (&format!("{good}/r-1/rx@0#0"), "found `r-1`"),
            (&format!("{good}/injected/rx@0#0"), "found `injected`"),
            (
                &format!("{good}/r0/up@0#0"),
                "in the site `up@0#0`: expected `rx` or `tx` before `@`",
            ),
            (&format!("{good}/r0/rx@+1#0"), "the stream offset"),
            (
                &format!("{good}/r0/rx@1#"),
                "the attempt (a decimal number)",
            ),
            (&format!("{good}/r0/rx@1#4294967296"), "the attempt"),
            (&format!("{good}/r0/rx@1"), "expected rx@OFFSET#ATTEMPT"),
            (&format!("{good}/r0/bogus#1"), "or a call class"),
            (&format!("{good}/r0/connect#01"), "the call's ordinal"),
            (&format!("{good}/r0/connect#0/x"), "the call's ordinal"),
            (&format!("{good}/r0/connect#0 "), "the call's ordinal"),
        ] {
            let e = text.parse::<Key>().expect_err(text);
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("key `{text}`: ")) && msg.contains(says),
                "{text}: {msg}"
            );
        }
        assert_eq!(
            "up@1#0".parse::<Site>().unwrap_err().to_string(),
            "site `up@1#0`: expected `rx` or `tx` before `@`"
        );
    }

    #[test]
    fn only_accepts_that_find_or_wait_for_a_connection_are_counted() {
        assert!(
            accept_is_counted(false, false),
            "a blocking accept waits: counted"
        );
        assert!(accept_is_counted(false, true));
        assert!(
            accept_is_counted(true, true),
            "a connection is pending: counted"
        );
        assert!(
            !accept_is_counted(true, false),
            "a non-blocking accept with nothing pending is the kernel's EAGAIN"
        );
    }
}
