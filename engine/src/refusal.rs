//! Why a rule whose draw said "fire" did not inject: a realism rule refused it (`NotHere`), its
//! `times` were used up, or the call fell outside its `window`. Every process of a run adds these
//! to its control page (`page::Page::tally`), so that the summary and `report` can tell
//! "Linux could not do that here" from "chaos did nothing".

use crate::realise::NotHere;

/// One reason a drawn rule did not fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Realism(NotHere),
    /// `times = N` injections were already made in this process.
    TimesUsedUp,
    /// The call came outside the rule's `window`.
    OutsideWindow,
    /// The process could not write the log (it dropped privileges or chrooted before it ever
    /// opened it): a fault is never injected without its line.
    LogUnwritable,
}

/// The number of distinct reasons: a counter each in the control page.
pub const REASONS: usize = NotHere::ALL.len() + 3;

impl Reason {
    /// Every reason, in counter order.
    pub fn all() -> impl Iterator<Item = Reason> {
        (0..REASONS).map(Reason::from_index)
    }

    /// This reason's counter among `REASONS`.
    pub fn index(self) -> usize {
        match self {
            Reason::Realism(r) => NotHere::ALL
                .iter()
                .position(|x| *x == r)
                .unwrap_or_default(),
            Reason::TimesUsedUp => NotHere::ALL.len(),
            Reason::OutsideWindow => NotHere::ALL.len() + 1,
            Reason::LogUnwritable => NotHere::ALL.len() + 2,
        }
    }

    fn from_index(i: usize) -> Reason {
        match NotHere::ALL.get(i) {
            Some(r) => Reason::Realism(*r),
            None if i == NotHere::ALL.len() => Reason::TimesUsedUp,
            None if i == NotHere::ALL.len() + 1 => Reason::OutsideWindow,
            None => Reason::LogUnwritable,
        }
    }

    /// Its name in logs and messages: the realism rule's (docs/reference.md, "Realism"), or `times-used-up`
    /// `outside-window` and `log-unwritable`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Realism(r) => r.name(),
            Reason::TimesUsedUp => "times-used-up",
            Reason::OutsideWindow => "outside-window",
            Reason::LogUnwritable => "log-unwritable",
        }
    }

    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::all().find(|r| r.name() == name)
    }

    /// Why it did not fire, in plain words.
    pub fn why(self) -> &'static str {
        match self {
            Reason::Realism(r) => r.why(),
            Reason::TimesUsedUp => "the rule had made its `times` injections in that process",
            Reason::OutsideWindow => "the calls came outside the rule's `window`",
            Reason::LogUnwritable => {
                "the process could not write the log, and a fault is never injected without its line"
            }
        }
    }

    /// What would let it fire.
    pub fn hint(self) -> &'static str {
        match self {
            Reason::Realism(r) => r.hint(),
            Reason::TimesUsedUp => "raise or remove `times`",
            Reason::OutsideWindow => "widen `window` (time since each process started)",
            Reason::LogUnwritable => {
                "let the process reach the log (the summary names it and says why it could not)"
            }
        }
    }
}

/// One rule's counts: draws that said "fire", injections made, and the rest by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub drawn: u64,
    pub injected: u64,
    pub refused: [u64; REASONS],
}

impl Tally {
    /// The reason that refused most draws, with its count (the first in counter order on a tie).
    pub fn dominant(&self) -> Option<(Reason, u64)> {
        Reason::all()
            .map(|r| (r, self.refused[r.index()]))
            .filter(|(_, n)| *n > 0)
            .fold(None, |best: Option<(Reason, u64)>, (r, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((r, n)),
            })
    }

    /// The reasons that refused something, with their counts, in counter order.
    pub fn reasons(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::all()
            .map(|r| (r, self.refused[r.index()]))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_name_and_advice() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in Reason::all().enumerate() {
            assert_eq!(r.index(), i);
            assert!(names.insert(r.name()), "{r:?}: name used twice");
            assert_eq!(Reason::from_name(r.name()), Some(r));
            assert!(r.why().len() > 10 && r.hint().len() > 10, "{r:?}");
        }
        assert_eq!(names.len(), REASONS);
    }

    #[test]
    fn the_dominant_reason_is_the_one_that_refused_most() {
        let mut t = Tally::default();
        assert_eq!(t.dominant(), None);
        t.refused[Reason::TimesUsedUp.index()] = 3;
        t.refused[Reason::Realism(NotHere::CouldBlock).index()] = 5;
        t.refused[Reason::OutsideWindow.index()] = 5;
        assert_eq!(
            t.dominant(),
            Some((Reason::Realism(NotHere::CouldBlock), 5)),
            "a tie goes to the first in counter order"
        );
        assert_eq!(t.reasons().count(), 3);
    }
}
