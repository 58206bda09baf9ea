//! The in-process path: the proxies and their toxics written into the run's control page after
//! every change, so that a process under chaos connecting to a proxy's `listen` is connected to
//! its `upstream` by its shim, with the toxics applied there (`chaos_engine::page::proxies`).
//! The relay keeps serving clients that are not under chaos.
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
    pub fn new(page: Arc<Mapped>) -> InProcess {
        InProcess {
            page,
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
            for t in proxy.toxics() {
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
