//! One relayed connection: each direction's data read as it arrives and written on through the
//! proxy's toxics, as Toxiproxy's links do (link.go, toxics/*.go), with the engine's models where
//! the shim has the same toxic (latency ± jitter, limit_data) and seeded draws instead of Go's
//! global `rand`: a connection's toxicity draws and jitter are a function of (seed, proxy,
//! connection ordinal, toxic), so a run with the same seed draws the same.

use super::toxic::{Stream, Toxic};
use chaos_engine::chance::fmix;
use chaos_engine::hash::fnv1a;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A proxy's toxics as the relay reads them: replaced whole on every change.
pub type Chains = Arc<RwLock<Arc<Vec<Toxic>>>>;

/// Which connection of which proxy, under which seed: what every draw on it is a function of.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    pub seed: u64,
    pub proxy: u64,
    pub ordinal: u64,
}

impl Identity {
    pub fn new(seed: u64, proxy: &str, ordinal: u64) -> Identity {
        Identity {
            seed,
            proxy: fnv1a(proxy.as_bytes()),
            ordinal,
        }
    }

    fn word(&self, what: u64, n: u64) -> u64 {
        fmix(fmix(fmix(self.seed ^ 0x9e37_79b9_7f4a_7c15) ^ self.proxy) ^ self.ordinal)
            .wrapping_add(fmix(what ^ n.wrapping_mul(0xa076_1d64_78bd_642f)))
    }

    /// Toxiproxy's toxicity: whether this toxic acts on this connection at all (toxic.go `Run`
    /// draws once per link, `rand.Float32() < toxicity`).
    pub fn acts(&self, toxic: &Toxic) -> bool {
        let draw = fmix(self.word(fnv1a(toxic.name.as_bytes()), 0)) >> 40;
        (draw as f64 / (1u64 << 24) as f64) < f64::from(toxic.toxicity)
    }

    /// The `n`th chunk's latency: latency ± jitter (toxics/latency.go), in ms.
    fn latency_ms(&self, toxic: &Toxic, n: u64) -> u64 {
        let latency = toxic.attribute("latency").max(0) as u64;
        let jitter = toxic.attribute("jitter").max(0) as u64;
        let draw = fmix(self.word(fnv1a(toxic.name.as_bytes()), n + 1));
        chaos_engine::toxic::chunk_latency(latency, jitter, draw)
    }
}

/// Both ends of one connection, to end it from either direction.
#[derive(Clone)]
pub struct Ends {
    pub client: Arc<TcpStream>,
    pub upstream: Arc<TcpStream>,
}

impl Ends {
    /// Both connections closed (FIN both ways), as Toxiproxy's `stop` and a finished toxic do.
    pub fn close(&self) {
        let _ = self.client.shutdown(std::net::Shutdown::Both);
        let _ = self.upstream.shutdown(std::net::Shutdown::Both);
    }

    /// A real RST each way (link.go sets linger 0 for reset_peer): connect(AF_UNSPEC)
    /// disconnects a TCP socket with a reset, whoever else holds its fd.
    pub fn reset(&self) {
        for s in [&self.client, &self.upstream] {
            let unspec = libc::sockaddr {
                sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                sa_data: [0; 14],
            };
            // SAFETY: a valid socket fd we own and a sockaddr of the size passed.
            unsafe {
                libc::connect(
                    s.as_raw_fd(),
                    &unspec,
                    std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
                )
            };
        }
        self.close();
    }
}

/// A chunk as read, with when it arrived (latency counts from there, as Toxiproxy's
/// `StreamChunk.Timestamp` does).
type Chunk = Option<(Instant, Vec<u8>)>;

/// Toxiproxy's links buffer this many chunks between reading and the toxics.
const BUFFERED_CHUNKS: usize = 1024;

/// Starts both directions of a connection; `done` runs once both have ended.
pub fn start(ends: Ends, chains: Chains, id: Identity, done: impl FnOnce() + Send + 'static) {
    let done = Arc::new(std::sync::Mutex::new(Some(done)));
    let left = Arc::new(std::sync::atomic::AtomicU8::new(2));
    for stream in [Stream::Upstream, Stream::Downstream] {
        let (from, to) = match stream {
            Stream::Upstream => (ends.client.clone(), ends.upstream.clone()),
            Stream::Downstream => (ends.upstream.clone(), ends.client.clone()),
        };
        let (tx, rx) = sync_channel::<Chunk>(BUFFERED_CHUNKS);
        let _ = std::thread::Builder::new()
            .name("toxiproxy-read".into())
            .spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match (&*from).read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(Some((Instant::now(), buf[..n].to_vec()))).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = tx.send(None);
            });
        let (ends, chains, done, left) = (ends.clone(), chains.clone(), done.clone(), left.clone());
        let _ = std::thread::Builder::new()
            .name("toxiproxy-write".into())
            .spawn(move || {
                forward(&rx, &to, stream, &chains, &ends, id);
                if left.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1
                    && let Some(done) = done.lock().ok().and_then(|mut d| d.take())
                {
                    done();
                }
            });
    }
}

/// How often a direction waiting for data looks at its toxics again (one added while idle, a
/// timeout's clock).
const RECHECK: Duration = Duration::from_millis(20);

fn active(chains: &Chains, stream: Stream, id: Identity) -> Vec<Toxic> {
    let all = chains.read().map(|c| c.clone()).unwrap_or_default();
    all.iter()
        .filter(|t| t.stream == stream && id.acts(t))
        .cloned()
        .collect()
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

/// One direction: chunks from `rx` to `to` through the stream's toxics, in chain order.
fn forward(
    rx: &Receiver<Chunk>,
    mut to: &TcpStream,
    stream: Stream,
    chains: &Chains,
    ends: &Ends,
    id: Identity,
) {
    let mut moved: u64 = 0;
    let mut chunks: u64 = 0;
    // When the data stopped flowing under a timeout toxic (toxics/timeout.go closes the
    // connection `timeout` ms after the last chunk it swallowed, 0 never).
    let mut timing_out: Option<Instant> = None;
    // The bandwidth toxic's sleep debt (toxics/bandwidth.go carries its rounding error over).
    let mut owed = Duration::ZERO;
    loop {
        let toxics = active(chains, stream, id);
        let timeout = toxics.iter().find(|t| t.kind == "timeout");
        match (timeout, timing_out) {
            (Some(_), None) => timing_out = Some(Instant::now()),
            (None, Some(_)) => timing_out = None,
            _ => {}
        }
        if let (Some(t), Some(since)) = (timeout, timing_out)
            && t.attribute("timeout") > 0
            && since.elapsed() >= ms(t.attribute("timeout"))
        {
            ends.close();
            return;
        }
        let chunk = match rx.recv_timeout(RECHECK) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => None,
        };
        // The toxics as they are now: one added while this direction waited acts on what came.
        let toxics = active(chains, stream, id);
        let Some((arrived, mut data)) = chunk else {
            if let Some(t) = toxics.iter().find(|t| t.kind == "slow_close") {
                std::thread::sleep(ms(t.attribute("delay")));
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
            return;
        };
        chunks += 1;
        let mut slicer = None;
        let mut ends_after = false;
        for t in &toxics {
            match t.kind {
                "timeout" => {
                    timing_out = Some(Instant::now());
                    data.clear();
                }
                "reset_peer" => {
                    std::thread::sleep(ms(t.attribute("timeout")));
                    ends.reset();
                    return;
                }
                "latency" => {
                    let due = arrived + Duration::from_millis(id.latency_ms(t, chunks));
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                "bandwidth" => {
                    let rate = t.attribute("rate");
                    if rate > 0 {
                        // Rate is KB/s, i.e. bytes per millisecond.
                        owed += Duration::from_micros(data.len() as u64 * 1000 / rate as u64);
                        let start = Instant::now();
                        std::thread::sleep(owed);
                        owed = owed.saturating_sub(start.elapsed());
                    }
                }
                "limit_data" => {
                    let limit = t.attribute("bytes").max(0) as u64;
                    match chaos_engine::toxic::limit(limit, moved, data.len()) {
                        chaos_engine::toxic::Limit::Under => {}
                        chaos_engine::toxic::Limit::Reaches(n) => {
                            data.truncate(n);
                            ends_after = true;
                        }
                        chaos_engine::toxic::Limit::Ended => {
                            data.clear();
                            ends_after = true;
                        }
                    }
                }
                "slicer" => slicer = Some(t.clone()),
                _ => {}
            }
        }
        let ok = match &slicer {
            Some(t) => write_sliced(to, &data, t, id, chunks),
            None => to.write_all(&data).is_ok(),
        };
        moved += data.len() as u64;
        if !ok || ends_after {
            ends.close();
            return;
        }
    }
}

/// toxics/slicer.go: the chunk cut in pieces of about `average_size` ± `size_variation` bytes,
/// written `delay` µs apart.
fn write_sliced(mut to: &TcpStream, data: &[u8], t: &Toxic, id: Identity, n: u64) -> bool {
    let average = t.attribute("average_size").max(1) as usize;
    let variation = t.attribute("size_variation").clamp(0, average as i64 - 1) as usize;
    let delay = Duration::from_micros(t.attribute("delay").max(0) as u64);
    let mut at = 0;
    let mut piece = 0u64;
    while at < data.len() {
        piece += 1;
        let draw = fmix(id.word(fnv1a(t.name.as_bytes()) ^ piece, n)) as usize;
        let size = if variation == 0 {
            average
        } else {
            average - variation + draw % (2 * variation + 1)
        };
        let end = (at + size.max(1)).min(data.len());
        if to.write_all(&data[at..end]).is_err() {
            return false;
        }
        at = end;
        if at < data.len() {
            std::thread::sleep(delay);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toxic(toxicity: f32, name: &str) -> Toxic {
        let mut t =
            Toxic::from_body(&format!(r#"{{"type": "latency", "name": "{name}"}}"#)).unwrap();
        t.toxicity = toxicity;
        t
    }

    #[test]
    fn toxicity_is_a_seeded_per_connection_draw() {
        let half = toxic(0.5, "l");
        let acting = |seed| {
            (0..1000)
                .filter(|&c| Identity::new(seed, "redis", c).acts(&half))
                .count()
        };
        let n = acting(1);
        assert!((400..600).contains(&n), "about half the connections: {n}");
        assert_eq!(acting(1), n, "the same seed draws the same");
        assert_ne!(acting(2), n, "another seed draws otherwise");
        assert!((0..100).all(|c| Identity::new(1, "r", c).acts(&toxic(1.0, "l"))));
        assert!((0..100).all(|c| !Identity::new(1, "r", c).acts(&toxic(0.0, "l"))));
    }

    #[test]
    fn jitter_stays_within_latency_plus_or_minus_jitter() {
        let mut t = toxic(1.0, "l");
        t.attributes = vec![("latency", 100), ("jitter", 10)];
        let id = Identity::new(7, "p", 0);
        let all: Vec<u64> = (0..200).map(|n| id.latency_ms(&t, n)).collect();
        assert!(all.iter().all(|l| (90..=110).contains(l)));
        assert!(all.iter().any(|&l| l != all[0]), "jitter varies");
    }
}
