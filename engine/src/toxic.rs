//! Toxiproxy's toxics, on real file descriptors: latency, bandwidth, blackhole, limit_data and
//! reset_after on a connection's data calls, per direction (reads are downstream, writes
//! upstream). One rule's fault table may stack several (`{ latency = "50ms", bandwidth =
//! "512KB/s" }`), applied in the order Toxiproxy's would be felt: a reset that is due, a blackhole,
//! the data limit, latency, then the rate.
//!
//! What each toxic does to one call is a pure function here of the connection's state in that
//! direction (when it began, how much has moved, when the current chunk became readable), so it is
//! unit-tested without a shim; the shim keeps the state in its fd table and carries the step out
//! with the stall machinery's readiness guarantees (a "not ready yet" is EAGAIN with readiness
//! hidden, or a wait on a blocking call).

/// A rule's toxics (every field optional; at least one set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toxics {
    /// Data becomes available this long after it arrived (reads), or is sent that much later
    /// (writes): once per chunk, as on a link, not once per call.
    pub latency_ns: Option<u64>,
    /// Each chunk's latency is drawn uniformly in latency ± jitter.
    pub jitter_ns: u64,
    /// Bytes per second per connection and direction, measured from the first transfer.
    pub bandwidth: Option<u64>,
    /// Nothing gets through while the rule is on: reads see nothing, writes find the buffer full.
    pub blackhole: bool,
    /// With `blackhole`, `then = "reset"` and `after`: the connection is reset this long after the
    /// blackhole began.
    pub reset_after_blackhole_ns: Option<u64>,
    /// After this many bytes in the direction, the connection ends.
    pub limit_data: Option<u64>,
    /// How it ends at the limit: a real RST (true) or a close (FIN both ways, false).
    pub limit_resets: bool,
    /// A real RST this long after the connection was established.
    pub reset_after_ns: Option<u64>,
    /// Reads: the peer's FIN reaches us this much later (its close took that long to arrive):
    /// the end of the stream is seen that late, what came before it is not delayed.
    pub slow_close_ns: Option<u64>,
    /// Toxiproxy's `slicer`: data moves in slices `delay` apart.
    pub slicer: Option<Slicer>,
}

/// toxics/slicer.go: what arrives at once is cut in slices of about `average` ± `variation`
/// bytes, each `delay_ns` after the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slicer {
    pub average: u64,
    pub variation: u64,
    pub delay_ns: u64,
}

/// What one call does under a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Transfer at most this many bytes now.
    Go(usize),
    /// Nothing may move for this long.
    Wait(u64),
}

/// How much a connection may move at once above the steady rate: 20 ms of it, at least one TCP
/// segment, so that a rate is met without bursts a real link would not pass.
pub fn burst(rate: u64) -> u64 {
    (rate / 50).max(1460)
}

/// A token bucket per connection and direction, as a link has: it holds at most one burst, fills
/// at `rate` bytes a second while the connection lives (idle time earns no more than a burst), and
/// a transfer spends it. `tokens` were there `since_ns` ago; what is there now.
pub fn refill(rate: u64, tokens: u64, since_ns: u64) -> u64 {
    let earned = (u128::from(rate) * u128::from(since_ns) / 1_000_000_000) as u64;
    tokens.saturating_add(earned).min(burst(rate))
}

/// A call asking for `requested` bytes with `tokens` in the bucket: it moves what there is (a
/// short transfer), or, with less than a useful amount (a burst, or the whole request if
/// smaller), waits until there is that much.
pub fn pace(rate: u64, tokens: u64, requested: usize) -> Pace {
    let rate = rate.max(1);
    let want = (requested as u64).clamp(1, burst(rate));
    if tokens >= want {
        return Pace::Go(tokens.min(requested as u64) as usize);
    }
    let short = want - tokens;
    Pace::Wait(((u128::from(short) * 1_000_000_000).div_ceil(u128::from(rate)) as u64).max(1))
}

/// How long until the bucket holds `requested` bytes (0: now), for a blocking write, which does
/// not come back short: a request larger than a burst waits for the rest at the rate, and the
/// bucket goes into debt for it (`spend`).
pub fn wait_for_whole(rate: u64, tokens: u64, requested: usize) -> u64 {
    let rate = rate.max(1);
    let short = (requested as u64).saturating_sub(tokens);
    (u128::from(short) * 1_000_000_000).div_ceil(u128::from(rate)) as u64
}

/// What the data limit leaves of a call at `pos` bytes into its direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Under the limit even after this call.
    Under,
    /// This call reaches it: transfer this many bytes, then end the connection.
    Reaches(usize),
    /// Already reached: end the connection before the call.
    Ended,
}

pub fn limit(limit: u64, pos: u64, requested: usize) -> Limit {
    if pos >= limit {
        Limit::Ended
    } else if pos + requested as u64 >= limit {
        Limit::Reaches((limit - pos) as usize)
    } else {
        Limit::Under
    }
}

/// A chunk's latency from the decision's parameter draw: latency ± jitter, uniformly.
pub fn chunk_latency(latency_ns: u64, jitter_ns: u64, draw: u64) -> u64 {
    if jitter_ns == 0 {
        return latency_ns;
    }
    let lo = latency_ns.saturating_sub(jitter_ns);
    let hi = latency_ns.saturating_add(jitter_ns);
    lo + draw % (hi - lo + 1)
}

/// Writes: whether a write at `now` begins a new chunk (the link was idle for at least the
/// latency since the last write's release) and so is held for its latency; a write right behind
/// another is pipelined on the same link and goes at once, arriving after it as on a real link.
pub fn write_starts_chunk(latency_ns: u64, last_release_ns: u64, now_ns: u64) -> bool {
    last_release_ns == 0 || now_ns.saturating_sub(last_release_ns) >= latency_ns
}

/// A slice's size from the decision's parameter draw: average ± variation, uniformly, at least
/// one byte (Toxiproxy requires the variation to be below the average, so a slice is never empty).
pub fn slice_size(s: &Slicer, draw: u64) -> usize {
    let average = s.average.max(1);
    let variation = s.variation.min(average - 1);
    (average - variation + draw % (2 * variation + 1)) as usize
}

/// A call asking for `requested` bytes under a slicer whose next slice is available at
/// `next_ns` (0: the first): it waits until then, or moves at most one slice. After a call that
/// moved data, the next slice is available `delay_ns` later (`next_slice`).
pub fn slice(s: &Slicer, next_ns: u64, now_ns: u64, requested: usize, draw: u64) -> Pace {
    if next_ns > now_ns {
        return Pace::Wait(next_ns - now_ns);
    }
    Pace::Go(requested.min(slice_size(s, draw)))
}

/// When the slice after one that moved at `now_ns` is available.
pub fn next_slice(s: &Slicer, now_ns: u64) -> u64 {
    now_ns.saturating_add(s.delay_ns).max(1)
}

/// How long a blocking write of `requested` bytes is held so that it takes what its slices would
/// (it does not come back short, as a blocking write does not): one delay between each two slices
/// of average size, from when its first slice is available.
pub fn whole_write_wait(s: &Slicer, next_ns: u64, now_ns: u64, requested: usize) -> u64 {
    let slices = (requested as u64).div_ceil(s.average.max(1)).max(1);
    next_ns.saturating_sub(now_ns) + (slices - 1) * s.delay_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves `total` bytes through the bucket in calls of `chunk`, advancing a clock by the
    /// waits: the time it took.
    fn transfer(rate: u64, total: u64, chunk: usize) -> u64 {
        let (mut t, mut moved, mut tokens, mut last) = (0u64, 0u64, burst(rate), 0u64);
        while moved < total {
            let want = chunk.min((total - moved) as usize);
            tokens = refill(rate, tokens, t - last);
            last = t;
            match pace(rate, tokens, want) {
                Pace::Go(n) => {
                    assert!(n > 0 && n <= want);
                    moved += n as u64;
                    tokens -= n as u64;
                    t += 1_000; // each call costs a microsecond
                }
                Pace::Wait(ns) => t += ns,
            }
        }
        t
    }

    #[test]
    fn a_megabyte_at_512k_takes_about_two_seconds_whatever_the_call_size() {
        for chunk in [1024, 16384, 65536, 1 << 20] {
            let t = transfer(512 * 1024, 1 << 20, chunk);
            let s = t as f64 / 1e9;
            assert!((1.9..2.1).contains(&s), "chunk {chunk}: {s} s");
        }
    }

    #[test]
    fn idle_time_earns_no_more_than_a_burst() {
        assert_eq!(refill(1000, 0, 60_000_000_000), burst(1000));
        assert_eq!(refill(1000, 0, 500_000_000), 500);
    }

    #[test]
    fn pace_never_waits_when_a_burst_is_there_and_never_goes_early() {
        assert_eq!(pace(1000, 1460, 100), Pace::Go(100));
        assert_eq!(pace(1000, 1460, 5000), Pace::Go(1460));
        // 100 bytes at 1000 B/s: due in a tenth of a second.
        assert_eq!(pace(1000, 0, 100), Pace::Wait(100_000_000));
        assert_eq!(pace(1000, 40, 100), Pace::Wait(60_000_000));
    }

    #[test]
    fn a_blocking_write_waits_for_its_whole_length() {
        assert_eq!(wait_for_whole(1000, 1460, 1000), 0, "within the burst");
        assert_eq!(wait_for_whole(1000, 0, 1000), 1_000_000_000);
        assert_eq!(wait_for_whole(1000, 400, 1000), 600_000_000);
    }

    #[test]
    fn the_limit_cuts_the_call_that_reaches_it() {
        assert_eq!(limit(100, 0, 50), Limit::Under);
        assert_eq!(limit(100, 60, 50), Limit::Reaches(40));
        assert_eq!(limit(100, 60, 40), Limit::Reaches(40));
        assert_eq!(limit(100, 100, 1), Limit::Ended);
    }

    const SLICER: Slicer = Slicer {
        average: 100,
        variation: 20,
        delay_ns: 10_000_000,
    };

    #[test]
    fn a_slice_is_average_plus_or_minus_variation_and_never_empty() {
        let sizes: Vec<usize> = (0..1000).map(|d| slice_size(&SLICER, d)).collect();
        assert!(sizes.iter().all(|n| (80..=120).contains(n)));
        assert!(
            sizes.contains(&80) && sizes.contains(&120),
            "the whole range"
        );
        let fixed = Slicer {
            variation: 0,
            ..SLICER
        };
        assert!((0..100).all(|d| slice_size(&fixed, d) == 100));
        let silly = Slicer {
            average: 0,
            variation: 50,
            delay_ns: 1,
        };
        assert!((0..100).all(|d| slice_size(&silly, d) == 1));
    }

    /// Moves `total` bytes in calls of `chunk` under a slicer, advancing a clock by the waits:
    /// the sizes moved and the time it took.
    fn sliced(s: &Slicer, total: usize, chunk: usize) -> (Vec<usize>, u64) {
        let (mut t, mut next, mut sizes) = (0u64, 0u64, vec![]);
        let mut moved = 0;
        while moved < total {
            match slice(s, next, t, chunk.min(total - moved), moved as u64) {
                Pace::Go(n) => {
                    sizes.push(n);
                    moved += n;
                    next = next_slice(s, t);
                    t += 1_000;
                }
                Pace::Wait(ns) => t += ns,
            }
        }
        (sizes, t)
    }

    #[test]
    fn a_thousand_bytes_in_slices_of_a_hundred_take_nine_delays() {
        let s = Slicer {
            variation: 0,
            ..SLICER
        };
        let (sizes, t) = sliced(&s, 1000, 65536);
        assert_eq!(sizes, vec![100; 10]);
        assert!((9 * s.delay_ns..10 * s.delay_ns).contains(&t), "{t}");
        let (sizes, _) = sliced(&s, 1000, 30);
        assert!(
            sizes.iter().all(|&n| n == 30 || n == 10),
            "a smaller ask is not cut"
        );
        assert_eq!(slice(&s, 500, 100, 1000, 0), Pace::Wait(400));
    }

    #[test]
    fn a_blocking_write_waits_for_its_slices() {
        let s = Slicer {
            variation: 0,
            ..SLICER
        };
        assert_eq!(whole_write_wait(&s, 0, 5, 100), 0, "one slice, available");
        assert_eq!(whole_write_wait(&s, 0, 5, 1000), 9 * s.delay_ns);
        assert_eq!(whole_write_wait(&s, 15, 5, 1), 10);
    }

    #[test]
    fn jitter_stays_in_its_range_and_writes_pipeline() {
        for d in 0..1000 {
            let l = chunk_latency(100, 20, d);
            assert!((80..=120).contains(&l));
        }
        assert_eq!(chunk_latency(100, 0, 7), 100);
        assert!(write_starts_chunk(100, 0, 5));
        assert!(!write_starts_chunk(100, 1000, 1050));
        assert!(write_starts_chunk(100, 1000, 1100));
    }
}
