//! The in-process path: the proxies and their toxics written into the run's control page after
//! every change, so that a process under chaos connecting to a proxy's `listen` is connected to
//! its `upstream` by its shim, with the toxics applied there (`chaos_engine::page::proxies`).
//! The relay keeps serving clients that are not under chaos.
//!
//! Replaying a frozen policy (one with injections), the page gets the proxies without their
//! toxics: what the toxics did in the original run is in the policy as exact injections at its
//! keys, which the redirected connections meet again.
//!
//! A connection keeps its proxy's slot in the table for its life, so a slot is handed out again
//! only once every other slot has been used since (a deleted proxy's connections, which Toxiproxy
//! closes, must not pick up another proxy's toxics).

use super::model::Collection;
use super::toxic::Stream;
use crate::control::page::Mapped;
use chaos_engine::page::proxies::{Kind, MAX_PROXIES, ProxyEntry, ToxicEntry};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

pub struct InProcess {
    page: Arc<Mapped>,
    /// The run replays a frozen policy: the toxics' effects are its injections, at the keys the
    /// original run logged them, so the page gets the proxies (the redirect) without toxics.
    frozen: bool,
    slots: HashMap<String, usize>,
    /// Where the search for a free slot starts (round robin).
    next: usize,
}

/// The first address `text` (`host:port`, `:port`) resolves to, as Go's dialer would take it.
fn resolve(text: &str) -> Option<SocketAddr> {
    let text = if text.starts_with(':') {
        format!("[::]{text}")
    } else {
        text.to_string()
    };
    text.to_socket_addrs().ok()?.next()
}

impl InProcess {
    pub fn new(page: Arc<Mapped>, frozen: bool) -> InProcess {
        InProcess {
            page,
            frozen,
            slots: HashMap::new(),
            next: 0,
        }
    }

    fn slot_for(&mut self, name: &str) -> Option<usize> {
        if let Some(s) = self.slots.get(name) {
            return Some(*s);
        }
        let used: Vec<usize> = self.slots.values().copied().collect();
        let free = (0..MAX_PROXIES)
            .map(|k| (self.next + k) % MAX_PROXIES)
            .find(|s| !used.contains(s))?;
        self.next = free + 1;
        self.slots.insert(name.to_string(), free);
        Some(free)
    }

    /// Writes `collection` into the page as one change; returns the page's generation after it.
    /// A proxy whose addresses do not resolve (or past the table's size) stays the relay's only.
    pub fn write(&mut self, collection: &Collection) -> u64 {
        self.slots
            .retain(|name, _| collection.proxies().any(|p| &p.name == name));
        let mut table: Vec<Option<ProxyEntry>> = vec![None; MAX_PROXIES];
        let mut toxics = Vec::new();
        for proxy in collection.proxies() {
            let (Some(listen), Some(upstream)) = (resolve(&proxy.listen), resolve(&proxy.upstream))
            else {
                continue;
            };
            let Some(slot) = self.slot_for(&proxy.name) else {
                continue;
            };
            table[slot] = Some(ProxyEntry {
                listen,
                upstream,
                enabled: proxy.enabled,
            });
            for t in proxy.toxics().filter(|_| !self.frozen) {
                let Some(kind) = Kind::of(t.kind) else {
                    continue;
                };
                let mut attributes = [0i64; 3];
                for (a, (_, v)) in attributes.iter_mut().zip(&t.attributes) {
                    *a = *v;
                }
                toxics.push(ToxicEntry {
                    proxy: slot,
                    kind,
                    upstream: t.stream == Stream::Upstream,
                    toxicity: t.toxicity,
                    attributes,
                });
            }
        }
        let used = table.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        let page = self.page.page();
        page.set_proxies(&table[..used], &toxics);
        page.generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxiproxy::model::{Listeners, Proxy};
    use chaos_engine::page::proxies::Redirect;

    /// Listeners that bind nothing: each proxy gets the next port.
    #[derive(Default)]
    struct Ports(u16);

    impl Listeners for Ports {
        fn start(&mut self, _: &Proxy) -> Result<String, String> {
            self.0 += 1;
            Ok(format!("127.0.0.1:{}", 41000 + self.0))
        }
        fn stop(&mut self, _: &str) {}
        fn toxics_changed(&mut self, _: &Proxy) {}
        fn resolve(&self, listen: &str) -> Result<String, String> {
            Ok(listen.to_string())
        }
    }

    fn create(c: &mut Collection, l: &mut Ports, name: &str) {
        let body =
            format!(r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"127.0.0.1:6379"}}"#);
        c.create(&body, l).unwrap();
    }

    #[test]
    fn each_change_is_a_generation_and_a_deleted_proxys_slot_waits_its_turn() {
        let dir = std::env::temp_dir().join(format!("chaos-inproc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let page =
            Arc::new(Mapped::create(&dir.join("control"), &[], &[], 0, &dir.join("log")).unwrap());
        let mut w = InProcess::new(page.clone(), false);
        let (mut c, mut l) = (Collection::default(), Ports::default());
        let to = |port: u16| {
            page.page()
                .redirect(&SocketAddr::from(([127, 0, 0, 1], port)))
        };
        create(&mut c, &mut l, "a");
        create(&mut c, &mut l, "b");
        let g1 = w.write(&c);
        assert!(g1 > 0);
        let up: SocketAddr = "127.0.0.1:6379".parse().unwrap();
        assert_eq!(to(41001), Some(Redirect::To(0, up)));
        assert_eq!(to(41002), Some(Redirect::To(1, up)));
        c.add_toxic(
            "b",
            r#"{"type":"latency","attributes":{"latency":7}}"#,
            &mut l,
        )
        .unwrap();
        let g2 = w.write(&c);
        assert!(g2 > g1, "every change is a new generation");
        let (x, _) = page.page().toxics_for(1, false, |_| 0).unwrap();
        assert_eq!(x.latency_ns, Some(7_000_000));
        assert_eq!(page.page().toxics_for(0, false, |_| 0), None);

        c.delete("a", &mut l).unwrap();
        create(&mut c, &mut l, "c");
        w.write(&c);
        assert_eq!(to(41001), None, "a is gone");
        assert_eq!(
            to(41003),
            Some(Redirect::To(2, up)),
            "c does not take a's slot while others are free: a's connections keep it"
        );
        assert_eq!(to(41002), Some(Redirect::To(1, up)), "b keeps its slot");
        let mut frozen = InProcess::new(page.clone(), true);
        frozen.write(&c);
        let Some(Redirect::To(b, _)) = to(41002) else {
            panic!("b redirects")
        };
        assert_eq!(
            page.page().toxics_for(b, false, |_| 0),
            None,
            "replaying a frozen policy, the toxics' effects are its injections"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
