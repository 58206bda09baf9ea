//! Exact injections: "this fault, at this decision key". A frozen policy (`chaos-ctl freeze`) is a
//! list of them, and `replay`/`minimize` run one. They fire whenever their key is reached, with no
//! probability, so a failing run's faults come back exactly where they were.
//!
//! A key names the process (a hash of exe and argv, or of the parent's key and fork ordinal), the
//! connection (`tcp-out#3`: the fourth outbound TCP connection of that process) and the site on it
//! (`rx@1024#0`: a read at stream offset 1024, first attempt; `connect#0`: the first connect call).

use crate::fault::Fault;
use crate::hash::mix;
use crate::key::Site;
use crate::kind::FdKind;

/// Names of the connection roles, in the shim's role order.
pub const ROLE_NAMES: [&str; 4] = ["out", "in", "listen", "fd"];

/// The connection part of a decision key: what the shim stores per fd and what `tcp-out#3` names.
pub fn conn_key(kind: FdKind, role: u8, ordinal: u32) -> u64 {
    mix(&[kind as u64, role as u64, ordinal as u64])
}

/// connect() calls are keyed by attempt among all connects of their kind (a client retrying on new
/// sockets gets fresh draws): this is their connection part, named `tcp-connects`.
pub fn connects_key(kind: FdKind) -> u64 {
    mix(&[kind as u64, 0, u64::MAX])
}

/// Calls made before there is an fd (open, rename, unlink, mkdir) are keyed by the path they name,
/// made absolute, and by their class: the same file opened by two threads in any order gets the
/// same decisions. `socket` and `pipe`, which name nothing, are keyed by their op alone. Never 0
/// (the shim's count table uses 0 for a free slot).
pub fn named_key(class: crate::op::OpClass, name: &[u8]) -> u64 {
    mix(&[crate::hash::fnv1a(name), class as u64, u64::MAX - 1]) | 1
}

/// One fault at one decision key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    pub process: u64,
    pub conn: u64,
    pub site: Site,
    /// An exact fault: ranges are single values.
    pub fault: Fault,
}

impl Injection {
    fn order_key(&self) -> (u64, u64, [u64; 3]) {
        (self.process, self.conn, self.site.words())
    }
}

/// A policy's injections, sorted for binary search.
#[derive(Clone, Debug, Default)]
pub struct Injections(Vec<Injection>);

impl Injections {
    pub fn new(mut list: Vec<Injection>) -> Injections {
        list.sort_by_key(Injection::order_key);
        Injections(list)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, i: usize) -> &Injection {
        &self.0[i]
    }

    /// The first injection on `dir` of a byte stream at an offset in `from..to` that `owed`
    /// accepts (index, entry and offset): the grid's exact faults (see `crate::grid`), where a
    /// read's span, not its start, says what it meets.
    pub fn first_on_stream(
        &self,
        process: u64,
        conn: u64,
        dir: crate::key::Dir,
        (from, to): (u64, u64),
        owed: impl Fn(&Injection, u64) -> bool,
    ) -> Option<(usize, &Injection, u64)> {
        let lo = (process, conn, [1 + dir as u64, from, 0]);
        let first = self.0.partition_point(|inj| inj.order_key() < lo);
        self.0[first..]
            .iter()
            .enumerate()
            .map_while(|(i, inj)| match inj.site {
                Site::Stream { dir: d, pos, .. }
                    if inj.process == process && inj.conn == conn && d == dir && pos < to =>
                {
                    Some((first + i, inj, pos))
                }
                _ => None,
            })
            .find(|(_, inj, pos)| owed(inj, *pos))
    }

    /// The injection at this key, if any (index and entry).
    pub fn at(&self, process: u64, conn: u64, site: Site) -> Option<(usize, &Injection)> {
        let wanted = (process, conn, site.words());
        let i = self
            .0
            .binary_search_by(|inj| inj.order_key().cmp(&wanted))
            .ok()?;
        Some((i, &self.0[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpClass;

    #[test]
    fn lookup_finds_exactly_the_listed_keys() {
        let site = |n| Site::Call {
            class: OpClass::Connect,
            n,
        };
        let inj = |process, n| Injection {
            process,
            conn: 9,
            site: site(n),
            fault: Fault::Reset,
        };
        let set = Injections::new(vec![inj(2, 5), inj(1, 0), inj(2, 1)]);
        assert!(set.at(2, 9, site(5)).is_some());
        assert!(set.at(1, 9, site(0)).is_some());
        assert!(set.at(2, 9, site(0)).is_none());
        assert!(set.at(2, 8, site(5)).is_none());
    }

    #[test]
    fn a_reads_span_finds_the_first_stream_injection_inside_it() {
        use crate::key::Dir;
        let at = |conn, dir, pos| Injection {
            process: 1,
            conn,
            site: Site::Stream {
                dir,
                pos,
                attempt: 0,
            },
            fault: Fault::Reset,
        };
        let set = Injections::new(vec![
            at(9, Dir::Rx, 5000),
            at(9, Dir::Rx, 100),
            at(9, Dir::Tx, 50),
            at(8, Dir::Rx, 60),
        ]);
        let any = |_: &Injection, _: u64| true;
        let pos = |r: Option<(usize, &Injection, u64)>| r.map(|(_, _, p)| p);
        assert_eq!(
            pos(set.first_on_stream(1, 9, Dir::Rx, (0, 200), any)),
            Some(100)
        );
        assert_eq!(
            pos(set.first_on_stream(1, 9, Dir::Rx, (101, 200), any)),
            None
        );
        assert_eq!(
            pos(set.first_on_stream(1, 9, Dir::Rx, (100, 6000), |_, p| p > 100)),
            Some(5000)
        );
        assert_eq!(
            pos(set.first_on_stream(1, 9, Dir::Tx, (0, 6000), any)),
            Some(50)
        );
        assert_eq!(
            pos(set.first_on_stream(1, 8, Dir::Rx, (0, 60), any)),
            None,
            "to is exclusive"
        );
        assert_eq!(
            pos(set.first_on_stream(2, 9, Dir::Rx, (0, 6000), any)),
            None
        );
    }
}
