//! The relay: a real listener for each enabled proxy, forwarding every connection to its
//! upstream through the proxy's toxics (link.rs), for clients that are not under chaos (the test
//! harness, a container). Disabling a proxy closes its listener (new connections are refused)
//! and every connection it relays, as Toxiproxy's `stop` does.

use super::link::{self, Chains, Ends, Identity};
use super::model::{Listeners, Proxy};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Open = Arc<Mutex<HashMap<u64, Ends>>>;

struct Running {
    listener: Arc<TcpListener>,
    stopping: Arc<AtomicBool>,
    accepting: std::thread::JoinHandle<()>,
    open: Open,
}

pub struct Relays {
    seed: u64,
    running: HashMap<String, Running>,
    chains: HashMap<String, Chains>,
    /// Connections per proxy name so far: the ordinal each one's draws are keyed by.
    ordinals: HashMap<String, Arc<AtomicU64>>,
}

impl Relays {
    pub fn new(seed: u64) -> Relays {
        Relays {
            seed,
            running: HashMap::new(),
            chains: HashMap::new(),
            ordinals: HashMap::new(),
        }
    }

    fn chains(&mut self, name: &str) -> Chains {
        self.chains.entry(name.to_string()).or_default().clone()
    }
}

/// Go's `net.ResolveTCPAddr`: the first address a host:port resolves to (`:8474` is every
/// interface, which Go writes `[::]:8474`).
fn resolve(listen: &str) -> Result<SocketAddr, String> {
    let text = if listen.starts_with(':') {
        format!("[::]{listen}")
    } else if listen.is_empty() {
        "[::]:0".to_string()
    } else {
        listen.to_string()
    };
    text.to_socket_addrs()
        .map_err(|e| format!("address {listen}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {listen}: no suitable address found"))
}

impl Listeners for Relays {
    fn start(&mut self, proxy: &Proxy) -> Result<String, String> {
        let addr = resolve(&proxy.listen).map_err(|e| format!("listen tcp {e}"))?;
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("listen tcp {addr}: bind: {}", strerror(&e)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("listen tcp {addr}: {e}"))?;
        let listener = Arc::new(listener);
        let stopping = Arc::new(AtomicBool::new(false));
        let open: Open = Arc::default();
        let chains = self.chains(&proxy.name);
        let ordinal = self.ordinals.entry(proxy.name.clone()).or_default().clone();
        let (seed, name, upstream) = (self.seed, proxy.name.clone(), proxy.upstream.clone());
        let accepting = {
            let (listener, stopping, open) = (listener.clone(), stopping.clone(), open.clone());
            std::thread::Builder::new()
                .name("toxiproxy-accept".into())
                .spawn(move || {
                    for client in listener.incoming() {
                        if stopping.load(Ordering::Acquire) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        // proxy.go: an upstream that cannot be reached closes the client.
                        let Ok(upstream) = TcpStream::connect(upstream.as_str()) else {
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = upstream.set_nodelay(true);
                        let n = ordinal.fetch_add(1, Ordering::Relaxed);
                        let ends = Ends {
                            client: Arc::new(client),
                            upstream: Arc::new(upstream),
                        };
                        if let Ok(mut o) = open.lock() {
                            o.insert(n, ends.clone());
                        }
                        let open = open.clone();
                        let id = Identity::new(seed, &name, n);
                        link::start(ends, chains.clone(), id, move || {
                            if let Ok(mut o) = open.lock() {
                                o.remove(&n);
                            }
                        });
                    }
                })
                .map_err(|e| format!("cannot start the relay for {}: {e}", proxy.name))?
        };
        self.running.insert(
            proxy.name.clone(),
            Running {
                listener,
                stopping,
                accepting,
                open,
            },
        );
        Ok(bound.to_string())
    }

    fn stop(&mut self, name: &str) {
        let Some(r) = self.running.remove(name) else {
            return;
        };
        r.stopping.store(true, Ordering::Release);
        // shutdown() on a listening socket wakes a blocked accept() (EINVAL) on Linux; the
        // listener is closed once the accepting thread has let go of it, before `stop`
        // returns, so that enabling the proxy again can bind the same port at once.
        // SAFETY: the listener's fd is open for as long as `r.listener` lives.
        unsafe { libc::shutdown(r.listener.as_raw_fd(), libc::SHUT_RDWR) };
        let _ = r.accepting.join();
        drop(r.listener);
        if let Ok(open) = r.open.lock() {
            for ends in open.values() {
                ends.close();
            }
        }
    }

    fn toxics_changed(&mut self, proxy: &Proxy) {
        let chains = self.chains(&proxy.name);
        let toxics: Vec<_> = proxy.toxics().cloned().collect();
        if let Ok(mut c) = chains.write() {
            *c = Arc::new(toxics);
        }
    }

    fn resolve(&self, listen: &str) -> Result<String, String> {
        resolve(listen).map(|a| a.to_string())
    }
}

/// The kernel's words for an error, lower case as Go writes them (`address already in use`).
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_ascii_lowercase()
}
