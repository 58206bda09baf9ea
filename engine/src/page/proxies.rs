//! Toxiproxy's proxies in the page: a fixed table of proxies (`listen`, `upstream`, enabled) and
//! of their toxics (type, attributes, stream, toxicity), written whole by chaos-ctl's Toxiproxy
//! API as one change (one generation), read by every shim with plain loads. A process under chaos
//! that connects to a proxy's `listen` is connected to its `upstream` instead, and the proxy's
//! toxics act on that connection in the process (`toxics_for`), so there is no relay hop.
//!
//! Readers take a consistent copy (`consistent`): a connect or a data call that straddles a change
//! reads again rather than pair one generation's listen address with another's upstream.

use super::{Page, W_PROXIES, W_PROXY_COUNT, W_PROXY_TOXICS};
use crate::toxic::Toxics;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

/// Proxies a page holds (Toxiproxy has no limit; a test suite defines a handful).
pub const MAX_PROXIES: usize = 32;
/// Toxics a page holds, over all proxies.
pub const MAX_TOXICS: usize = 64;
/// A proxy: its state word, then `listen` and `upstream` (3 words each, `encode`).
pub(super) const PROXY_WORDS: usize = 7;
/// A toxic: proxy + 1 (0: a free entry), type and stream; toxicity's threshold; three attributes.
pub(super) const TOXIC_WORDS: usize = 5;

const PRESENT: u64 = 1;
const ENABLED: u64 = 2;
/// Some toxic of the table is the proxy's.
const TOXICS: u64 = 4;

/// Toxiproxy's toxic types, in the page as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Noop = 0,
    /// latency, jitter (ms)
    Latency = 1,
    /// rate (KB/s: 1000 bytes, as toxics/bandwidth.go counts)
    Bandwidth = 2,
    /// delay (ms)
    SlowClose = 3,
    /// timeout (ms; 0: never ends)
    Timeout = 4,
    /// timeout (ms)
    ResetPeer = 5,
    /// average_size, size_variation (bytes), delay (µs)
    Slicer = 6,
    /// bytes
    LimitData = 7,
}

impl Kind {
    pub fn of(name: &str) -> Option<Kind> {
        Some(match name {
            "noop" => Kind::Noop,
            "latency" => Kind::Latency,
            "bandwidth" => Kind::Bandwidth,
            "slow_close" => Kind::SlowClose,
            "timeout" => Kind::Timeout,
            "reset_peer" => Kind::ResetPeer,
            "slicer" => Kind::Slicer,
            "limit_data" => Kind::LimitData,
            _ => return None,
        })
    }

    fn from_bits(b: u64) -> Kind {
        match b {
            1 => Kind::Latency,
            2 => Kind::Bandwidth,
            3 => Kind::SlowClose,
            4 => Kind::Timeout,
            5 => Kind::ResetPeer,
            6 => Kind::Slicer,
            7 => Kind::LimitData,
            _ => Kind::Noop,
        }
    }
}

/// A proxy as chaos-ctl writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyEntry {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub enabled: bool,
}

/// A toxic as chaos-ctl writes it. `upstream`: it acts on the client's writes, else its reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToxicEntry {
    pub proxy: usize,
    pub kind: Kind,
    pub upstream: bool,
    pub toxicity: f32,
    pub attributes: [i64; 3],
}

/// What a connect to a proxy's `listen` address becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// Connect to this instead; the connection is the proxy's (its index).
    To(usize, SocketAddr),
    /// The proxy is disabled: nobody listens there.
    Refused,
}

/// A socket address in three words: family and port, then the 16 address bytes.
fn encode(a: &SocketAddr) -> [u64; 3] {
    let (family, bytes) = match a.ip() {
        IpAddr::V4(ip) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&ip.octets());
            (4u64, b)
        }
        IpAddr::V6(ip) => (6u64, ip.octets()),
    };
    [
        family << 16 | u64::from(a.port()),
        u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")),
    ]
}

fn decode(w: [u64; 3]) -> Option<SocketAddr> {
    let port = (w[0] & 0xffff) as u16;
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[1].to_le_bytes());
    b[8..].copy_from_slice(&w[2].to_le_bytes());
    let ip = match w[0] >> 16 {
        4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        6 => IpAddr::V6(Ipv6Addr::from(b)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether a connect to `to` reaches a listener bound to `listen`: the same port, and the same
/// address or a wildcard listener (which any local address reaches). An IPv6 wildcard listener
/// takes IPv4 connections too (Linux's default, `bindv6only = 0`).
pub fn reaches(listen: &SocketAddr, to: &SocketAddr) -> bool {
    if listen.port() != to.port() || to.port() == 0 {
        return false;
    }
    match (listen.ip(), to.ip()) {
        (l, t) if l == t => true,
        (IpAddr::V4(l), _) if l.is_unspecified() => to.is_ipv4(),
        (IpAddr::V6(l), _) if l.is_unspecified() => true,
        (IpAddr::V4(l), IpAddr::V6(t)) => t.to_ipv4_mapped() == Some(l),
        _ => false,
    }
}

/// Toxiproxy's toxicity as a draw threshold (as a rule's probability is).
fn threshold(toxicity: f32) -> u64 {
    if toxicity >= 1.0 {
        u64::MAX
    } else if toxicity <= 0.0 {
        0
    } else {
        (f64::from(toxicity) * 18_446_744_073_709_551_616.0) as u64
    }
}

/// A connection's draw for the toxic in table entry `entry` against its toxicity: fixed per
/// connection (`base_conn`: the process's key base and the connection's key), so the shim and
/// the seccomp supervisor give a connection the same toxics. Its rule word lies apart from any
/// policy rule's.
pub fn toxicity_draw(base_conn: u64, entry: usize) -> u64 {
    crate::chance::chance_of_words(
        base_conn,
        0xC000 | entry as u16,
        crate::chance::PER_CONNECTION_WORDS,
    )
}

const MS: u64 = 1_000_000;

fn non_negative(v: i64) -> u64 {
    v.max(0) as u64
}

/// Adds one toxic to a direction's `Toxics`, as Toxiproxy's chain would feel it: latencies add
/// up, the slowest rate wins, the smallest data limit ends the connection first.
pub fn fold(into: &mut Toxics, kind: Kind, a: [i64; 3]) {
    match kind {
        Kind::Latency => {
            into.latency_ns = Some(into.latency_ns.unwrap_or(0) + non_negative(a[0]) * MS);
            into.jitter_ns += non_negative(a[1]) * MS;
        }
        Kind::Bandwidth => {
            let rate = non_negative(a[0]).saturating_mul(1000);
            into.bandwidth = Some(into.bandwidth.map_or(rate, |r| r.min(rate)));
        }
        Kind::SlowClose => into.slow_close_ns = Some(non_negative(a[0]) * MS),
        Kind::Timeout => {
            into.blackhole = true;
            if a[0] > 0 {
                into.reset_after_blackhole_ns = Some(non_negative(a[0]) * MS);
            }
        }
        Kind::ResetPeer => into.reset_after_ns = Some(non_negative(a[0]) * MS),
        Kind::LimitData => {
            let n = non_negative(a[0]);
            into.limit_data = Some(into.limit_data.map_or(n, |l| l.min(n)));
        }
        Kind::Slicer => {
            // Toxiproxy's chain passes each slice through the next slicer: the smaller wins,
            // and the delays add up.
            let mine = crate::toxic::Slicer {
                average: non_negative(a[0]),
                variation: non_negative(a[1]),
                delay_ns: non_negative(a[2]) * 1000,
            };
            into.slicer = Some(match into.slicer {
                None => mine,
                Some(s) => crate::toxic::Slicer {
                    average: s.average.min(mine.average),
                    variation: if s.average <= mine.average {
                        s.variation
                    } else {
                        mine.variation
                    },
                    delay_ns: s.delay_ns + mine.delay_ns,
                },
            });
        }
        Kind::Noop => {}
    }
}

impl Page<'_> {
    fn proxy_words(&self, i: usize) -> &[core::sync::atomic::AtomicU64] {
        &self.words[W_PROXIES + i * PROXY_WORDS..][..PROXY_WORDS]
    }

    fn toxic_words(&self, i: usize) -> &[core::sync::atomic::AtomicU64] {
        &self.words[W_PROXY_TOXICS + i * TOXIC_WORDS..][..TOXIC_WORDS]
    }

    /// Whether the run has any proxy (one load: the shim's connect checks it first).
    #[inline(always)]
    pub fn any_proxy(&self) -> bool {
        self.words[W_PROXY_COUNT].load(Relaxed) != 0
    }

    /// Replaces the whole table as one change (a new generation, so every shim logs where it
    /// saw it). `proxies[i]` is slot i (None: free): a connection keeps its proxy's slot, so a
    /// slot must not be given to another proxy while its connections may live. Entries past the
    /// table's size are left out; returns how many slots are in use.
    pub fn set_proxies(&self, proxies: &[Option<ProxyEntry>], toxics: &[ToxicEntry]) -> usize {
        let count = proxies.len().min(MAX_PROXIES);
        self.bump_after(|| {
            for i in 0..MAX_PROXIES {
                let w = self.proxy_words(i);
                match proxies.get(i).copied().flatten().filter(|_| i < count) {
                    Some(p) => {
                        let toxic = toxics.iter().take(MAX_TOXICS).any(|t| t.proxy == i);
                        let state = PRESENT
                            | if p.enabled { ENABLED } else { 0 }
                            | if toxic { TOXICS } else { 0 };
                        w[0].store(state, SeqCst);
                        for (k, v) in encode(&p.listen).into_iter().enumerate() {
                            w[1 + k].store(v, SeqCst);
                        }
                        for (k, v) in encode(&p.upstream).into_iter().enumerate() {
                            w[4 + k].store(v, SeqCst);
                        }
                    }
                    None => w[0].store(0, SeqCst),
                }
            }
            let mut kept = toxics.iter().filter(|t| t.proxy < count).take(MAX_TOXICS);
            for i in 0..MAX_TOXICS {
                let w = self.toxic_words(i);
                match kept.next() {
                    Some(t) => {
                        let head = (t.proxy as u64 + 1)
                            | (t.kind as u64) << 16
                            | u64::from(t.upstream) << 24;
                        w[0].store(head, SeqCst);
                        w[1].store(threshold(t.toxicity), SeqCst);
                        for (k, v) in t.attributes.iter().enumerate() {
                            w[2 + k].store(*v as u64, SeqCst);
                        }
                    }
                    None => w[0].store(0, SeqCst),
                }
            }
            self.words[W_PROXY_COUNT].store(count as u64, SeqCst);
        });
        count
    }

    /// `f` over a copy of the table no change was under way for (bounded: a writer that died
    /// mid-change leaves what it wrote). No allocation: the shim calls it from its hooks.
    pub fn consistent<T>(&self, f: impl Fn(&Self) -> T) -> T {
        let word = &self.words[super::W_GENERATION];
        for _ in 0..super::READER_TRIES {
            let raw = word.load(Acquire);
            if raw & 1 != 0 {
                core::hint::spin_loop();
                continue;
            }
            let got = f(self);
            if word.load(Acquire) == raw {
                return got;
            }
        }
        f(self)
    }

    /// Proxy `i`, if there is one.
    pub fn proxy(&self, i: usize) -> Option<ProxyEntry> {
        if i >= MAX_PROXIES {
            return None;
        }
        let w = self.proxy_words(i);
        let state = w[0].load(Acquire);
        if state & PRESENT == 0 {
            return None;
        }
        let listen = decode([w[1].load(Relaxed), w[2].load(Relaxed), w[3].load(Relaxed)])?;
        let upstream = decode([w[4].load(Relaxed), w[5].load(Relaxed), w[6].load(Relaxed)])?;
        Some(ProxyEntry {
            listen,
            upstream,
            enabled: state & ENABLED != 0,
        })
    }

    /// What a connect to `to` becomes, if `to` is a proxy's `listen` address (the first such).
    pub fn redirect(&self, to: &SocketAddr) -> Option<Redirect> {
        self.consistent(|page| {
            let count = (page.words[W_PROXY_COUNT].load(Relaxed) as usize).min(MAX_PROXIES);
            (0..count).find_map(|i| {
                let p = page.proxy(i)?;
                reaches(&p.listen, to).then_some(if p.enabled {
                    Redirect::To(i, p.upstream)
                } else {
                    Redirect::Refused
                })
            })
        })
    }

    /// Whether proxy `i` is there, enabled and without toxics: a connection through it needs
    /// nothing from the page on this call (one load).
    #[inline(always)]
    pub fn proxy_quiet(&self, i: usize) -> bool {
        i < MAX_PROXIES && self.proxy_words(i)[0].load(Relaxed) == PRESENT | ENABLED
    }

    /// Whether proxy `i` is still there and enabled.
    pub fn proxy_enabled(&self, i: usize) -> bool {
        self.proxy(i).is_some_and(|p| p.enabled)
    }

    /// Proxy `i`'s toxics on one direction of a connection (`upstream`: its writes), those whose
    /// toxicity draw says they act on it: `draw(entry)` is the connection's draw for the toxic
    /// in table entry `entry` (stable while the toxic stays). Returns the toxics, and the first
    /// entry that contributed (for the log line), or None when none acts.
    pub fn toxics_for(
        &self,
        proxy: usize,
        upstream: bool,
        draw: impl Fn(usize) -> u64,
    ) -> Option<(Toxics, usize)> {
        self.consistent(|page| {
            let mut x = Toxics::default();
            let mut first = None;
            for i in 0..MAX_TOXICS {
                let w = page.toxic_words(i);
                let head = w[0].load(Relaxed);
                if head & 0xffff != proxy as u64 + 1 || (head >> 24) & 1 != u64::from(upstream) {
                    continue;
                }
                let t = w[1].load(Relaxed);
                if !(t == u64::MAX || draw(i) < t) {
                    continue;
                }
                let kind = Kind::from_bits((head >> 16) & 0xff);
                let a = [2, 3, 4].map(|k| w[k].load(Relaxed) as i64);
                let before = x;
                fold(&mut x, kind, a);
                if x != before && first.is_none() {
                    first = Some(i);
                }
            }
            first.map(|f| (x, f))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU8, AtomicU64};

    fn memory() -> (Vec<AtomicU64>, Vec<AtomicU8>) {
        (
            (0..super::super::WORDS)
                .map(|_| AtomicU64::new(9))
                .collect(),
            (0..super::super::PORTS).map(|_| AtomicU8::new(0)).collect(),
        )
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_survive_the_page_both_families() {
        for a in ["127.0.0.1:8474", "[::1]:6379", "[fe80::1]:1", "0.0.0.0:0"] {
            assert_eq!(decode(encode(&sa(a))), Some(sa(a)));
        }
        assert_eq!(decode([0, 0, 0]), None, "a cleared entry is no address");
    }

    #[test]
    fn a_listener_is_reached_as_the_kernel_would_route_to_it() {
        assert!(reaches(&sa("127.0.0.1:9000"), &sa("127.0.0.1:9000")));
        assert!(!reaches(&sa("127.0.0.1:9000"), &sa("127.0.0.1:9001")));
        assert!(!reaches(&sa("127.0.0.1:9000"), &sa("127.0.0.2:9000")));
        assert!(reaches(&sa("0.0.0.0:9000"), &sa("127.0.0.1:9000")));
        assert!(!reaches(&sa("0.0.0.0:9000"), &sa("[::1]:9000")));
        assert!(
            reaches(&sa("[::]:9000"), &sa("127.0.0.1:9000")),
            "dual stack"
        );
        assert!(reaches(&sa("[::]:9000"), &sa("[::1]:9000")));
        assert!(reaches(
            &sa("127.0.0.1:9000"),
            &sa("[::ffff:127.0.0.1]:9000")
        ));
        assert!(!reaches(&sa("0.0.0.0:0"), &sa("127.0.0.1:0")));
    }

    #[test]
    fn a_table_change_is_one_generation_and_redirects_or_refuses() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &[], 0, "");
        assert!(!page.any_proxy(), "init clears the table");
        assert_eq!(page.redirect(&sa("127.0.0.1:9000")), None);
        let mut redis = ProxyEntry {
            listen: sa("127.0.0.1:9000"),
            upstream: sa("127.0.0.1:6379"),
            enabled: true,
        };
        let other = ProxyEntry {
            listen: sa("[::]:9100"),
            upstream: sa("[::1]:80"),
            enabled: true,
        };
        assert_eq!(page.set_proxies(&[Some(redis), Some(other)], &[]), 2);
        assert_eq!(page.generation(), 1);
        assert!(page.any_proxy());
        assert_eq!(
            page.redirect(&sa("127.0.0.1:9000")),
            Some(Redirect::To(0, sa("127.0.0.1:6379")))
        );
        assert_eq!(
            page.redirect(&sa("127.0.0.1:9100")),
            Some(Redirect::To(1, sa("[::1]:80")))
        );
        assert_eq!(page.redirect(&sa("127.0.0.1:9001")), None);
        redis.enabled = false;
        page.set_proxies(&[Some(redis), None], &[]);
        assert_eq!(page.generation(), 2);
        assert_eq!(
            page.redirect(&sa("127.0.0.1:9000")),
            Some(Redirect::Refused)
        );
        assert_eq!(
            page.redirect(&sa("127.0.0.1:9100")),
            None,
            "a deleted proxy is gone"
        );
        assert!(!page.proxy_enabled(0) && !page.proxy_enabled(1));
        assert!(
            !page.proxy_quiet(0),
            "a disabled proxy ends its connections"
        );
        page.set_proxies(&[], &[]);
        assert!(!page.any_proxy());
    }

    #[test]
    fn toxics_fold_per_direction_and_toxicity_draws_per_connection() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &[], 0, "");
        let proxy = ProxyEntry {
            listen: sa("127.0.0.1:9000"),
            upstream: sa("127.0.0.1:6379"),
            enabled: true,
        };
        let t = |proxy, kind, upstream, toxicity, a| ToxicEntry {
            proxy,
            kind,
            upstream,
            toxicity,
            attributes: a,
        };
        page.set_proxies(
            &[Some(proxy), Some(proxy)],
            &[
                t(0, Kind::Latency, false, 1.0, [100, 10, 0]),
                t(0, Kind::Latency, false, 1.0, [50, 0, 0]),
                t(0, Kind::Bandwidth, true, 1.0, [64, 0, 0]),
                t(0, Kind::LimitData, false, 0.5, [1000, 0, 0]),
                t(1, Kind::Timeout, false, 1.0, [2000, 0, 0]),
                t(0, Kind::Slicer, true, 1.0, [10, 5, 100]),
                t(5, Kind::Latency, false, 1.0, [1, 0, 0]),
            ],
        );
        assert!(
            !page.proxy_quiet(0) && !page.proxy_quiet(1),
            "both have toxics"
        );
        page.set_proxies(&[Some(proxy)], &[]);
        assert!(
            page.proxy_quiet(0),
            "enabled, no toxics: nothing to do per call"
        );
        page.set_proxies(
            &[Some(proxy), Some(proxy)],
            &[
                t(0, Kind::Latency, false, 1.0, [100, 10, 0]),
                t(0, Kind::Latency, false, 1.0, [50, 0, 0]),
                t(0, Kind::Bandwidth, true, 1.0, [64, 0, 0]),
                t(0, Kind::LimitData, false, 0.5, [1000, 0, 0]),
                t(1, Kind::Timeout, false, 1.0, [2000, 0, 0]),
                t(0, Kind::Slicer, true, 1.0, [10, 5, 100]),
                t(5, Kind::Latency, false, 1.0, [1, 0, 0]),
            ],
        );
        let never = |_| u64::MAX;
        let (down, first) = page.toxics_for(0, false, never).unwrap();
        assert_eq!(first, 0);
        assert_eq!(down.latency_ns, Some(150 * MS), "latencies add up");
        assert_eq!(down.jitter_ns, 10 * MS);
        assert_eq!(down.limit_data, None, "toxicity 0.5 and a draw above it");
        let (down, _) = page
            .toxics_for(0, false, |i| if i == 3 { 0 } else { u64::MAX })
            .unwrap();
        assert_eq!(down.limit_data, Some(1000), "a draw under the toxicity");
        let (up, first) = page.toxics_for(0, true, never).unwrap();
        assert_eq!(up.bandwidth, Some(64_000), "KB/s are 1000 bytes");
        assert_eq!(up.latency_ns, None);
        assert_eq!(first, 2);
        let (other, _) = page.toxics_for(1, false, never).unwrap();
        assert!(other.blackhole);
        assert_eq!(other.reset_after_blackhole_ns, Some(2000 * MS));
        assert_eq!(page.toxics_for(1, true, never), None);
        assert_eq!(
            up.slicer,
            Some(crate::toxic::Slicer {
                average: 10,
                variation: 5,
                delay_ns: 100_000
            }),
            "delay is in µs"
        );
        assert_eq!(down.slicer, None, "the slicer is upstream's");
        page.set_proxies(
            &[Some(proxy)],
            &[t(0, Kind::Slicer, false, 1.0, [100, 0, 10_000])],
        );
        let (down, first) = page.toxics_for(0, false, never).unwrap();
        assert_eq!(first, 0, "a slicer alone acts in-process");
        assert_eq!(
            down.slicer.map(|s| (s.average, s.delay_ns)),
            Some((100, 10_000_000))
        );
    }
}
