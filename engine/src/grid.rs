//! The grid of stream offsets that read faults are decided on.
//!
//! Where a read of a byte stream starts depends on how the data arrived (timing, load), so a
//! decision made at a read's start is not reproducible. Read faults are therefore drawn per cell
//! of `CELL` bytes of the stream, each at a fixed offset inside its cell, and met by whichever
//! read reaches that offset, however earlier reads were split:
//! - a cut (`short`) ends the read that covers its offset exactly there; a read that already
//!   starts there is a natural boundary and nothing is injected;
//! - every other fault (an errno, a reset, a stall, a delay, a process fault) sits at its cell's
//!   first byte: the read that would cross it is held to end there (a cut where the model allows
//!   one) and the read that starts there gets the fault. A cell fires once: a retry at the same
//!   offset after an injected EINTR or EAGAIN is not faulted again by it.
//!
//! Both backends use these rules; the key of a grid fault is its offset (`rx@OFFSET#0`).

use crate::fault::{Fault, ShortSpec};
use crate::key::{Dir, Site};
use crate::realise::MIN_SEGMENT;

/// Bytes per cell. A rule's `probability` is per cell of this many bytes, so it keeps roughly its
/// per-read meaning for readers whose reads return about this much: 16 KiB is the geometric mean
/// of the readers measured on a 1 MiB loopback download (4 KiB for a `recv(4096)` loop, 31 KiB
/// on average for Python's `recv(65536)`, 65 KiB for curl 8), and a cut at most every 16 KiB
/// still leaves segments of realistic size (see `docs/determinism.md`).
pub const CELL: u64 = 16 * 1024;

/// Where a fault sits in its cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A cut inside the cell: the read covering it ends there.
    Cut,
    /// The cell's first byte: the read starting there gets the fault.
    At,
}

impl Placement {
    /// How `fault` lies on the grid; None for faults that stay per call on a stream read (toxics
    /// emulate a link call by call, with their own state).
    pub fn of(fault: &Fault) -> Option<Placement> {
        match fault {
            Fault::Toxic(_) => None,
            Fault::Short(_) => Some(Placement::Cut),
            _ => Some(Placement::At),
        }
    }
}

/// The smallest read a cut or hold for `fault` may shorten (`realise::grid_cut`): a byte-length
/// `short` is the user's explicit choice of finer splits; anything else keeps to a segment.
pub fn cut_floor(fault: &Fault) -> usize {
    match fault {
        Fault::Short(ShortSpec::Bytes { .. }) => 1,
        _ => MIN_SEGMENT,
    }
}

/// The first byte of the cell holding stream offset `pos`.
pub fn cell_start(pos: u64) -> u64 {
    pos - pos % CELL
}

/// The site whose draw decides the cell starting at `start`: a rule fires there, or not, for every
/// read that touches the cell, however many reads do.
pub fn cell_site(dir: Dir, start: u64) -> Site {
    Site::Stream {
        dir,
        pos: start,
        attempt: 0,
    }
}

/// The offset of `fault`'s grid fault in the cell starting at `start`, from the draw's parameter
/// (`chance::param_at` of the cell's chance). A cut's offset within the cell follows its spec,
/// read as lengths out of a whole cell: `"1..60"` cuts within the cell's first 60 bytes,
/// `"1..50%"` within its first half, never below a minimum TCP segment (so two cuts of the grid
/// are never closer than one), and never at the cell's first byte (a cut of nothing).
pub fn offset_in(fault: &Fault, start: u64, param: u64) -> u64 {
    match fault {
        Fault::Short(spec) => start + cut_offset(*spec, param),
        _ => start,
    }
}

fn cut_offset(spec: ShortSpec, param: u64) -> u64 {
    let floor = match spec {
        ShortSpec::Percent { .. } => MIN_SEGMENT as u64,
        ShortSpec::Bytes { .. } => 1,
    };
    let picked = spec.pick(CELL as usize, param).unwrap_or(1) as u64;
    picked.clamp(floor, CELL - 1)
}

/// Whether a fault at offset `c` lies in the span of a read starting at `pos` asking for `len`
/// bytes, and is still owed there. `done` is one past the last `At` fault already delivered in
/// this direction (a cell fires once).
pub fn owed(placement: Placement, pos: u64, len: u64, done: u64, c: u64) -> bool {
    let within = c < pos.saturating_add(len);
    within
        && match placement {
            Placement::Cut => c > pos,
            Placement::At => c >= pos && c >= done,
        }
}

/// The first fault a read from `pos` asking for `len` bytes meets for one rule: walks the cells
/// the read touches, in order; `fired(start)` says whether the rule's draw fires in the cell
/// starting at `start`, and if so at which offset (see `offset_in`).
pub fn first_owed(
    placement: Placement,
    pos: u64,
    len: u64,
    done: u64,
    mut fired: impl FnMut(u64) -> Option<u64>,
) -> Option<u64> {
    let end = pos.saturating_add(len);
    let mut start = cell_start(pos);
    while start < end {
        if let Some(c) = fired(start)
            && owed(placement, pos, len, done, c)
        {
            return Some(c);
        }
        start = start.checked_add(CELL)?;
    }
    None
}

/// What a read from `pos` does about a fault owed at `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The read starts at the fault's offset: it gets the fault.
    Now,
    /// The read is held to end at the offset: it may take this many bytes.
    Hold(usize),
}

pub fn step(pos: u64, c: u64) -> Step {
    if c <= pos {
        Step::Now
    } else {
        Step::Hold((c - pos).min(usize::MAX as u64) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::NsRange;

    fn short(spec: ShortSpec) -> Fault {
        Fault::Short(spec)
    }

    #[test]
    fn errors_sit_at_the_cell_start_and_cuts_inside_it() {
        let reset = Fault::Errno(libc::ECONNRESET);
        let stall = Fault::Stall(NsRange { lo: 1, hi: 2 });
        for param in [0, 1, 12345, u64::MAX] {
            assert_eq!(offset_in(&reset, 3 * CELL, param), 3 * CELL);
            assert_eq!(offset_in(&stall, 0, param), 0);
            let half = short(ShortSpec::Percent { lo: 1, hi: 50 });
            let c = offset_in(&half, 2 * CELL, param);
            assert!(
                (2 * CELL + MIN_SEGMENT as u64..=2 * CELL + CELL / 2).contains(&c),
                "{c}"
            );
            let bytes = short(ShortSpec::Bytes { lo: 1, hi: 60 });
            let c = offset_in(&bytes, CELL, param);
            assert!((CELL + 1..=CELL + 60).contains(&c), "{c}");
        }
        assert_eq!(Placement::of(&reset), Some(Placement::At));
        assert_eq!(Placement::of(&half_cut()), Some(Placement::Cut));
    }

    fn half_cut() -> Fault {
        short(ShortSpec::Percent { lo: 50, hi: 50 })
    }

    #[test]
    fn a_cut_never_lands_on_a_cell_start_or_closer_than_a_segment_to_another() {
        // Bytes beyond the cell, or the whole of it: still strictly inside.
        let wide = short(ShortSpec::Bytes {
            lo: CELL,
            hi: 10 * CELL,
        });
        assert_eq!(offset_in(&wide, 0, 7), CELL - 1);
        let all = short(ShortSpec::Percent { lo: 100, hi: 100 });
        assert_eq!(offset_in(&all, 0, 7), CELL - 1);
        let tiny = short(ShortSpec::Percent { lo: 1, hi: 1 });
        assert_eq!(offset_in(&tiny, 0, 7), MIN_SEGMENT as u64);
        // Consecutive cells' percent cuts are at least a segment apart.
        assert!(offset_in(&tiny, CELL, 0) - offset_in(&all, 0, 0) >= MIN_SEGMENT as u64);
    }

    #[test]
    fn the_read_that_covers_a_cut_meets_it_however_earlier_reads_were_split() {
        // One cut at 5000 in cell 0: whatever the reads' boundaries, exactly the read whose span
        // holds 5000 strictly inside meets it, and it is held to end there.
        let fired = |start: u64| (start == 0).then_some(5000);
        for chunk in [1u64, 100, 536, 4096, 5000, 7000, 65536] {
            let mut pos = 0;
            let mut met = Vec::new();
            while pos < 3 * CELL {
                match first_owed(Placement::Cut, pos, chunk, 0, fired) {
                    Some(c) => {
                        assert_eq!(step(pos, c), Step::Hold((c - pos) as usize));
                        met.push(c);
                        pos = c;
                    }
                    None => pos += chunk,
                }
            }
            let expected: &[u64] = if chunk == 1 || 5000 % chunk == 0 {
                &[] // a read starts at 5000 anyway: a natural boundary, nothing injected
            } else {
                &[5000]
            };
            assert_eq!(met, expected, "reads of {chunk}");
        }
    }

    #[test]
    fn an_error_is_met_once_at_its_offset_by_every_way_of_reading() {
        let fired = |start: u64| (start == 2 * CELL).then_some(2 * CELL);
        for chunk in [1000u64, 4096, 65536] {
            let mut pos = 0;
            let mut done = 0;
            let mut faults = Vec::new();
            let mut holds = 0;
            while pos < 8 * CELL {
                match first_owed(Placement::At, pos, chunk, done, fired) {
                    Some(c) => match step(pos, c) {
                        Step::Now => {
                            faults.push(c);
                            done = c + 1; // the retry at c is not faulted again
                        }
                        Step::Hold(n) => {
                            holds += 1;
                            pos += n as u64;
                        }
                    },
                    None => pos += chunk,
                }
            }
            assert_eq!(faults, [2 * CELL], "reads of {chunk}");
            // 4096 divides the offset: the read starting there needs no hold.
            assert_eq!(
                holds,
                usize::from(2 * CELL % chunk != 0),
                "reads of {chunk}"
            );
        }
    }

    #[test]
    fn a_read_walks_every_cell_it_touches_and_stops_at_the_first_fault() {
        let mut asked = Vec::new();
        let c = first_owed(Placement::At, 100, 5 * CELL, 0, |start| {
            asked.push(start);
            (start == 3 * CELL).then_some(start)
        });
        assert_eq!(c, Some(3 * CELL));
        assert_eq!(asked, [0, CELL, 2 * CELL, 3 * CELL]);
        // The cell start behind the read's start is passed, not owed.
        assert_eq!(first_owed(Placement::At, 100, 10, 0, Some), None);
        assert_eq!(first_owed(Placement::At, 0, 10, 0, Some), Some(0));
        assert_eq!(first_owed(Placement::At, 0, 10, 1, Some), None, "delivered");
        assert_eq!(first_owed(Placement::At, 0, 0, 0, Some), None, "empty read");
        assert!(
            !owed(Placement::Cut, 10, 10, 0, 20),
            "the read ends there anyway"
        );
        assert!(owed(Placement::Cut, 10, 10, 0, 19));
    }

    #[test]
    fn cells_and_their_draw_sites() {
        assert_eq!(cell_start(0), 0);
        assert_eq!(cell_start(CELL - 1), 0);
        assert_eq!(cell_start(CELL), CELL);
        assert_eq!(cell_site(Dir::Rx, CELL).to_string(), format!("rx@{CELL}#0"));
    }
}
