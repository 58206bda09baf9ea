//! Partitions between named processes: fixed ones (`[[partition]]`, a window each) and seeded ones
//! (`[partitions]`, Jepsen's shapes at drawn intervals). Pure: given the seed, the config and the
//! replica names, the sequence of cuts and heals. chaos-ctl writes each into the control page, where
//! the shims of both ends of every connection read it.

use crate::fault::NsRange;
use rand_pcg::Pcg64;
use rand_pcg::rand_core::Rng;

/// `[[partition]]`: these groups cannot reach each other during the window (or these directed
/// pairs, `cut`, what `freeze` writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedPartition {
    /// Replica names (`kv#0`) or process names (every replica), and `workload`.
    pub between: Vec<Vec<String>>,
    /// Directed pairs (from, to) cut besides `between`'s.
    pub pairs: Vec<(String, String)>,
    /// Since the workload started: `[start, end)`.
    pub window: (u64, u64),
    /// Only traffic from the first group to the others is cut.
    pub one_way: bool,
}

/// Jepsen's partition shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Two halves (the first the smaller for an odd count).
    Halves,
    /// One node alone against the rest.
    One,
    /// Every node sees a majority, no two the same one (a ring of overlapping majorities).
    MajoritiesRing,
    /// Two halves with one node in both: it talks to everyone, the halves not to each other.
    Bridge,
}

impl Shape {
    pub const ALL: [Shape; 4] = [
        Shape::Halves,
        Shape::One,
        Shape::MajoritiesRing,
        Shape::Bridge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Halves => "halves",
            Shape::One => "one",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
        }
    }

    pub fn from_name(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// `[partitions]`: seeded cuts of the listed processes, one at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Partitions {
    pub processes: Vec<String>,
    pub shapes: Vec<Shape>,
    /// Healed time before each cut.
    pub interval: NsRange,
    /// How long each cut lasts.
    pub duration: NsRange,
    pub window: (u64, u64),
}

/// One change of the cut matrix: `cut` holds every (from, to) pair cut from then on; empty heals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionEvent {
    pub at_ns: u64,
    pub cut: Vec<(String, String)>,
    /// `partition#N` for `[[partition]]`, `partitions#N` for drawn ones.
    pub key: String,
    /// What the cut is: the shape's name, `fixed`, or `heal`.
    pub what: String,
}

/// The directed pairs cut between `groups`: both ways, or from the first group only.
pub fn pairs_between(groups: &[Vec<String>], one_way: bool) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (hi, h) in groups.iter().enumerate() {
            if gi == hi || (one_way && gi != 0) {
                continue;
            }
            for a in g {
                for b in h {
                    if a != b && !pairs.contains(&(a.clone(), b.clone())) {
                        pairs.push((a.clone(), b.clone()));
                    }
                }
            }
        }
    }
    pairs
}

/// The pairs a shape cuts among `nodes` (already shuffled: the shape takes them in this order).
pub fn shape_pairs(shape: Shape, nodes: &[String]) -> Vec<(String, String)> {
    let n = nodes.len();
    if n < 2 {
        return Vec::new();
    }
    match shape {
        Shape::Halves => {
            let (a, b) = nodes.split_at(n / 2);
            pairs_between(&[a.to_vec(), b.to_vec()], false)
        }
        Shape::One => pairs_between(&[nodes[..1].to_vec(), nodes[1..].to_vec()], false),
        Shape::Bridge => {
            // The middle node is in both halves: it is cut from nobody.
            let mid = n / 2;
            let a = nodes[..mid].to_vec();
            let b = nodes[mid + 1..].to_vec();
            pairs_between(&[a, b], false)
        }
        Shape::MajoritiesRing => {
            // On a ring, each node keeps the `reach` nearest on either side: with itself that is a
            // majority, and each node's majority is centred on it, so no two are the same.
            let majority = n / 2 + 1;
            let reach = (majority - 1).div_ceil(2);
            let mut pairs = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    let d = (i + n - j) % n;
                    let dist = d.min(n - d);
                    if i != j && dist > reach {
                        pairs.push((nodes[i].clone(), nodes[j].clone()));
                    }
                }
            }
            pairs
        }
    }
}

/// Every fixed partition's cut and heal, merged in time order: overlapping windows cut the union
/// of their pairs. Names are as the policy wrote them; `expand` turns a process name into its
/// replicas.
pub fn fixed_events(
    fixed: &[FixedPartition],
    expand: &dyn Fn(&str) -> Vec<String>,
) -> Vec<PartitionEvent> {
    let mut times: Vec<u64> = fixed
        .iter()
        .flat_map(|p| [p.window.0, p.window.1])
        .filter(|t| *t != u64::MAX)
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut events = Vec::new();
    let mut last: Vec<(String, String)> = Vec::new();
    for t in times {
        let mut cut = Vec::new();
        for p in fixed
            .iter()
            .filter(|p| (p.window.0..p.window.1).contains(&t))
        {
            let groups: Vec<Vec<String>> = p
                .between
                .iter()
                .map(|g| g.iter().flat_map(|n| expand(n)).collect())
                .collect();
            let expanded_pairs = p.pairs.iter().flat_map(|(a, b)| {
                expand(a)
                    .into_iter()
                    .flat_map(move |a| expand(b).into_iter().map(move |b| (a.clone(), b)))
            });
            for pair in pairs_between(&groups, p.one_way)
                .into_iter()
                .chain(expanded_pairs)
            {
                if !cut.contains(&pair) {
                    cut.push(pair);
                }
            }
        }
        if cut == last {
            continue;
        }
        let what = if cut.is_empty() { "heal" } else { "fixed" };
        events.push(PartitionEvent {
            at_ns: t,
            cut: cut.clone(),
            key: format!("partition#{}", events.len()),
            what: what.to_string(),
        });
        last = cut;
    }
    events
}

/// The seeded `[partitions]` schedule over `nodes` (replica names), lazily: a heal, then a cut
/// after each interval, healed after its duration.
pub fn drawn_events(seed: u64, cfg: &Partitions, nodes: &[String]) -> DrawnPartitions {
    let state = (u128::from(seed) << 64) | u128::from(crate::hash::fnv1a(b"partitions"));
    DrawnPartitions {
        cfg: cfg.clone(),
        nodes: nodes.to_vec(),
        rng: Pcg64::new(state, 0x1405_7b7e_f767_814f),
        t: cfg.window.0,
        drawn: 0,
        heal_at: None,
    }
}

pub struct DrawnPartitions {
    cfg: Partitions,
    nodes: Vec<String>,
    rng: Pcg64,
    t: u64,
    drawn: u64,
    heal_at: Option<u64>,
}

impl Iterator for DrawnPartitions {
    type Item = PartitionEvent;

    fn next(&mut self) -> Option<PartitionEvent> {
        if self.nodes.len() < 2 || self.cfg.shapes.is_empty() {
            return None;
        }
        let key = format!("partitions#{}", self.drawn);
        if let Some(at) = self.heal_at.take() {
            self.drawn += 1;
            self.t = at;
            return Some(PartitionEvent {
                at_ns: at.min(self.cfg.window.1),
                cut: Vec::new(),
                key,
                what: "heal".into(),
            });
        }
        self.t = self
            .t
            .saturating_add(self.cfg.interval.pick(self.rng.next_u64()).max(1_000_000));
        if self.t >= self.cfg.window.1 {
            return None;
        }
        let shape = self.cfg.shapes[(self.rng.next_u64() % self.cfg.shapes.len() as u64) as usize];
        // Fisher-Yates with the schedule's own stream.
        let mut order = self.nodes.clone();
        for i in (1..order.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let lasts = self.cfg.duration.pick(self.rng.next_u64()).max(1_000_000);
        self.heal_at = Some(self.t.saturating_add(lasts));
        self.drawn += 1;
        Some(PartitionEvent {
            at_ns: self.t,
            cut: shape_pairs(shape, &order),
            key,
            what: shape.name().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("kv#{i}")).collect()
    }

    /// Who `node` can still send to under `pairs`.
    fn reach(pairs: &[(String, String)], nodes: &[String], node: &str) -> Vec<String> {
        nodes
            .iter()
            .filter(|m| *m != node && !pairs.contains(&(node.to_string(), m.to_string())))
            .cloned()
            .collect()
    }

    #[test]
    fn groups_are_cut_both_ways_or_one() {
        let g = vec![
            vec!["a".to_string()],
            vec!["b".to_string(), "c".to_string()],
        ];
        let both = pairs_between(&g, false);
        assert_eq!(both.len(), 4);
        assert!(both.contains(&("b".into(), "a".into())));
        let one = pairs_between(&g, true);
        assert_eq!(
            one,
            vec![("a".into(), "b".into()), ("a".into(), "c".into())]
        );
    }

    #[test]
    fn shapes_cut_what_jepsen_means() {
        let n = names(5);
        let halves = shape_pairs(Shape::Halves, &n);
        assert_eq!(reach(&halves, &n, "kv#0"), vec!["kv#1"]);
        assert_eq!(reach(&halves, &n, "kv#4"), vec!["kv#2", "kv#3"]);

        let one = shape_pairs(Shape::One, &n);
        assert!(reach(&one, &n, "kv#0").is_empty());
        assert_eq!(reach(&one, &n, "kv#1").len(), 3);

        let bridge = shape_pairs(Shape::Bridge, &n);
        assert_eq!(
            reach(&bridge, &n, "kv#2").len(),
            4,
            "the bridge reaches all"
        );
        assert_eq!(reach(&bridge, &n, "kv#0"), vec!["kv#1", "kv#2"]);

        let ring = shape_pairs(Shape::MajoritiesRing, &n);
        let mut seen = Vec::new();
        for node in &n {
            let mut view = reach(&ring, &n, node);
            assert_eq!(view.len() + 1, 3, "{node} sees a majority of 5");
            view.push(node.clone());
            view.sort();
            assert!(!seen.contains(&view), "no two share a majority");
            seen.push(view);
        }
    }

    #[test]
    fn fixed_windows_merge_and_heal() {
        let p = |a: &str, b: &str, w: (u64, u64), one_way| FixedPartition {
            between: vec![vec![a.to_string()], vec![b.to_string()]],
            pairs: vec![],
            window: w,
            one_way,
        };
        let expand = |n: &str| vec![n.to_string()];
        let ev = fixed_events(
            &[p("a", "b", (10, 30), false), p("a", "c", (20, 40), true)],
            &expand,
        );
        let at: Vec<(u64, usize, &str)> = ev
            .iter()
            .map(|e| (e.at_ns, e.cut.len(), e.what.as_str()))
            .collect();
        assert_eq!(
            at,
            vec![
                (10, 2, "fixed"),
                (20, 3, "fixed"),
                (30, 1, "fixed"),
                (40, 0, "heal")
            ]
        );
        assert_eq!(ev[3].key, "partition#3");
        // A process name stands for its replicas.
        let ev = fixed_events(&[p("kv", "workload", (0, 5), true)], &|n: &str| {
            if n == "kv" {
                names(2)
            } else {
                vec![n.to_string()]
            }
        });
        assert_eq!(ev[0].cut.len(), 2);
    }

    #[test]
    fn drawn_partitions_alternate_and_repeat_with_the_seed() {
        let cfg = Partitions {
            processes: vec!["kv".into()],
            shapes: vec![Shape::Halves, Shape::One],
            interval: NsRange {
                lo: 1_000_000_000,
                hi: 2_000_000_000,
            },
            duration: NsRange {
                lo: 500_000_000,
                hi: 500_000_000,
            },
            window: (0, 20_000_000_000),
        };
        let a: Vec<PartitionEvent> = drawn_events(9, &cfg, &names(3)).collect();
        let b: Vec<PartitionEvent> = drawn_events(9, &cfg, &names(3)).collect();
        assert_eq!(a, b);
        assert_ne!(a, drawn_events(10, &cfg, &names(3)).collect::<Vec<_>>());
        assert!(a.len() >= 10, "{}", a.len());
        for (i, e) in a.iter().enumerate() {
            assert_eq!(e.cut.is_empty(), i % 2 == 1, "cuts and heals alternate");
            assert_eq!(e.key, format!("partitions#{i}"));
        }
        for w in a.windows(2) {
            assert!(w[0].at_ns < w[1].at_ns);
        }
        assert_eq!(
            a[1].at_ns - a[0].at_ns,
            500_000_000,
            "healed after its duration"
        );
    }
}
