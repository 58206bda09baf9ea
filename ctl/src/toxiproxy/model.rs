//! Toxiproxy's proxies and their toxics (proxy_collection.go, proxy.go, toxic_collection.go):
//! which exist, what each request does to them and what it answers. Pure: listening and
//! forwarding are behind `Listeners`, so every rule here is unit-tested without a socket.

use super::error::{self, ApiError};
use super::gojson;
use super::toxic::{self, Stream, Toxic};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    /// Each stream's chain, in the order the toxics were added (Toxiproxy lists upstream's first).
    pub upstream_toxics: Vec<Toxic>,
    pub downstream_toxics: Vec<Toxic>,
}

impl Proxy {
    pub fn toxics(&self) -> impl Iterator<Item = &Toxic> {
        self.upstream_toxics.iter().chain(&self.downstream_toxics)
    }

    fn find(&mut self, name: &str) -> Option<&mut Toxic> {
        self.upstream_toxics
            .iter_mut()
            .chain(&mut self.downstream_toxics)
            .find(|t| t.name == name)
    }

    /// api.go `proxyWithToxics`, in its field order: name, listen, upstream, enabled, toxics.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"name\":{},\"listen\":{},\"upstream\":{},\"enabled\":{},\"toxics\":{}}}",
            json!(self.name),
            json!(self.listen),
            json!(self.upstream),
            self.enabled,
            json_array(self.toxics().map(Toxic::to_json))
        )
    }
}

/// A JSON array of values already written as JSON.
pub fn json_array(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(","))
}

/// What the API needs of the world: a listener per enabled proxy, and the toxics it applies.
pub trait Listeners {
    /// Starts listening for `proxy`; the address bound (`127.0.0.1:0` → its port), or the error
    /// text (`listen tcp …: bind: address already in use`).
    fn start(&mut self, proxy: &Proxy) -> Result<String, String>;
    /// Stops listening and closes every connection of the proxy.
    fn stop(&mut self, name: &str);
    /// The proxy's toxics changed.
    fn toxics_changed(&mut self, proxy: &Proxy);
    /// proxy.go `Differs` resolves a listen address (`localhost:8080` → `127.0.0.1:8080`).
    fn resolve(&self, listen: &str) -> Result<String, String>;
}

#[derive(Default)]
pub struct Collection {
    proxies: BTreeMap<String, Proxy>,
}

/// A proxy as a request body gives it (`toxiproxy.Proxy`), each field absent or set.
struct ProxyInput {
    name: Option<String>,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

fn proxy_input(value: &Value, go_type: &str) -> Result<ProxyInput, String> {
    let map = gojson::object(value, go_type)?;
    Ok(ProxyInput {
        name: gojson::string(map, "Proxy", "name")?,
        listen: gojson::string(map, "Proxy", "listen")?,
        upstream: gojson::string(map, "Proxy", "upstream")?,
        enabled: gojson::boolean(map, "Proxy", "enabled")?,
    })
}

fn new_proxy(name: String, listen: String, upstream: String) -> Proxy {
    Proxy {
        name,
        listen,
        upstream,
        enabled: false,
        upstream_toxics: Vec::new(),
        downstream_toxics: Vec::new(),
    }
}

/// proxy.go `start`: only an enabled proxy listens, and the address it reports is the one bound.
fn start(proxy: &mut Proxy, listeners: &mut dyn Listeners) -> Result<(), ApiError> {
    let bound = listeners.start(proxy).map_err(ApiError::internal)?;
    proxy.listen = bound;
    proxy.enabled = true;
    listeners.toxics_changed(proxy);
    Ok(())
}

fn stop(proxy: &mut Proxy, listeners: &mut dyn Listeners) {
    if proxy.enabled {
        proxy.enabled = false;
        listeners.stop(&proxy.name);
    }
}

/// proxy.go `Differs`.
fn differs(
    proxy: &Proxy,
    listen: &str,
    upstream: &str,
    listeners: &dyn Listeners,
) -> Result<bool, ApiError> {
    let resolved = listeners.resolve(listen).map_err(ApiError::internal)?;
    Ok(proxy.listen != resolved || proxy.upstream != upstream)
}

impl Collection {
    pub fn proxies(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.values()
    }

    pub fn get(&self, name: &str) -> Result<&Proxy, ApiError> {
        self.proxies.get(name).ok_or_else(error::proxy_not_found)
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut Proxy, ApiError> {
        self.proxies
            .get_mut(name)
            .ok_or_else(error::proxy_not_found)
    }

    /// `POST /proxies` (api.go `ProxyCreate`, proxy_collection.go `Add`).
    pub fn create(
        &mut self,
        body: &str,
        listeners: &mut dyn Listeners,
    ) -> Result<&Proxy, ApiError> {
        let value = gojson::parse(body).map_err(|e| error::bad_request_body().joined(e))?;
        let input = proxy_input(&value, "toxiproxy.Proxy")
            .map_err(|e| error::bad_request_body().joined(e))?;
        let name = input.name.unwrap_or_default();
        let upstream = input.upstream.unwrap_or_default();
        if name.is_empty() {
            return Err(error::missing_field().joined("name"));
        }
        if upstream.is_empty() {
            return Err(error::missing_field().joined("upstream"));
        }
        if self.proxies.contains_key(&name) {
            return Err(error::proxy_already_exists());
        }
        let mut proxy = new_proxy(name.clone(), input.listen.unwrap_or_default(), upstream);
        if input.enabled.unwrap_or(true) {
            start(&mut proxy, listeners)?;
        }
        Ok(self.proxies.entry(name).or_insert(proxy))
    }

    /// `POST /populate` (proxy_collection.go `PopulateJson`): every entry checked before any is
    /// made; an existing proxy that does not differ is kept (with its toxics), one that does is
    /// replaced. The proxies made or kept, and the error that stopped it, if one did.
    pub fn populate(
        &mut self,
        body: &str,
        listeners: &mut dyn Listeners,
    ) -> (Vec<Proxy>, Option<ApiError>) {
        let bad = |e: String| error::bad_request_body().joined(e);
        let inputs: Vec<ProxyInput> = match gojson::parse(body).and_then(|v| match v {
            Value::Array(items) => items
                .iter()
                .map(|item| proxy_input(item, "toxiproxy.Proxy"))
                .collect(),
            other => Err(format!(
                "json: cannot unmarshal {} into Go value of type []struct {{ toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }}",
                match other {
                    Value::Object(_) => "object",
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    Value::Bool(_) => "bool",
                    _ => "null",
                }
            )),
        }) {
            Ok(inputs) => inputs,
            Err(e) => return (Vec::new(), Some(bad(e))),
        };
        for (i, input) in inputs.iter().enumerate() {
            if input.name.as_deref().unwrap_or("").is_empty() {
                let e = error::missing_field().joined(format!("name at proxy {}", i + 1));
                return (Vec::new(), Some(e));
            }
            if input.upstream.as_deref().unwrap_or("").is_empty() {
                let e = error::missing_field().joined(format!("upstream at proxy {}", i + 1));
                return (Vec::new(), Some(e));
            }
        }
        let mut done = Vec::new();
        for input in inputs {
            let name = input.name.unwrap_or_default();
            let listen = input.listen.unwrap_or_default();
            let upstream = input.upstream.unwrap_or_default();
            if let Some(existing) = self.proxies.get_mut(&name) {
                match differs(existing, &listen, &upstream, listeners) {
                    Err(e) => return (done, Some(e)),
                    Ok(false) => {
                        done.push(existing.clone());
                        continue;
                    }
                    Ok(true) => stop(existing, listeners),
                }
            }
            let mut proxy = new_proxy(name.clone(), listen, upstream);
            if input.enabled.unwrap_or(true)
                && let Err(e) = start(&mut proxy, listeners)
            {
                return (done, Some(e));
            }
            done.push(proxy.clone());
            self.proxies.insert(name, proxy);
        }
        (done, None)
    }

    /// `POST|PATCH /proxies/{proxy}` (proxy.go `Update`): fields not given keep their values; a
    /// new address restarts the proxy; `enabled` starts or stops it.
    pub fn update(
        &mut self,
        name: &str,
        body: &str,
        listeners: &mut dyn Listeners,
    ) -> Result<&Proxy, ApiError> {
        let proxy = self.get_mut(name)?;
        let value = gojson::parse(body).map_err(|e| error::bad_request_body().joined(e))?;
        let input = proxy_input(&value, "toxiproxy.Proxy")
            .map_err(|e| error::bad_request_body().joined(e))?;
        let listen = input.listen.unwrap_or_else(|| proxy.listen.clone());
        let upstream = input.upstream.unwrap_or_else(|| proxy.upstream.clone());
        let enabled = input.enabled.unwrap_or(proxy.enabled);
        if differs(proxy, &listen, &upstream, listeners)? {
            stop(proxy, listeners);
            proxy.listen = listen;
            proxy.upstream = upstream;
        }
        if enabled != proxy.enabled {
            if enabled {
                start(proxy, listeners)?;
            } else {
                stop(proxy, listeners);
            }
        }
        Ok(proxy)
    }

    /// `DELETE /proxies/{proxy}`.
    pub fn delete(&mut self, name: &str, listeners: &mut dyn Listeners) -> Result<(), ApiError> {
        let mut proxy = self
            .proxies
            .remove(name)
            .ok_or_else(error::proxy_not_found)?;
        stop(&mut proxy, listeners);
        Ok(())
    }

    /// `POST /reset` (api.go `ResetState`): every proxy enabled again, every toxic removed.
    pub fn reset(&mut self, listeners: &mut dyn Listeners) -> Result<(), ApiError> {
        for proxy in self.proxies.values_mut() {
            if !proxy.enabled {
                start(proxy, listeners)?;
            }
            proxy.upstream_toxics.clear();
            proxy.downstream_toxics.clear();
            listeners.toxics_changed(proxy);
        }
        Ok(())
    }

    /// `POST /proxies/{proxy}/toxics` (toxic_collection.go `AddToxicJson`).
    pub fn add_toxic(
        &mut self,
        name: &str,
        body: &str,
        listeners: &mut dyn Listeners,
    ) -> Result<Toxic, ApiError> {
        let proxy = self.get_mut(name)?;
        let mut toxic = Toxic::from_body(body)?;
        if proxy.find(&toxic.name).is_some() {
            return Err(error::toxic_already_exists());
        }
        toxic::attributes_of(body, &mut toxic)?;
        match toxic.stream {
            Stream::Upstream => proxy.upstream_toxics.push(toxic.clone()),
            Stream::Downstream => proxy.downstream_toxics.push(toxic.clone()),
        }
        listeners.toxics_changed(proxy);
        Ok(toxic)
    }

    pub fn toxic(&self, name: &str, toxic: &str) -> Result<&Toxic, ApiError> {
        self.get(name)?
            .toxics()
            .find(|t| t.name == toxic)
            .ok_or_else(error::toxic_not_found)
    }

    /// `POST|PATCH /proxies/{proxy}/toxics/{toxic}` (toxic_collection.go `UpdateToxicJson`).
    pub fn update_toxic(
        &mut self,
        name: &str,
        toxic: &str,
        body: &str,
        listeners: &mut dyn Listeners,
    ) -> Result<Toxic, ApiError> {
        let proxy = self.get_mut(name)?;
        let found = proxy.find(toxic).ok_or_else(error::toxic_not_found)?;
        found.update(body)?;
        let updated = found.clone();
        listeners.toxics_changed(proxy);
        Ok(updated)
    }

    /// `DELETE /proxies/{proxy}/toxics/{toxic}`.
    pub fn remove_toxic(
        &mut self,
        name: &str,
        toxic: &str,
        listeners: &mut dyn Listeners,
    ) -> Result<(), ApiError> {
        let proxy = self.get_mut(name)?;
        let before = proxy.upstream_toxics.len() + proxy.downstream_toxics.len();
        proxy.upstream_toxics.retain(|t| t.name != toxic);
        proxy.downstream_toxics.retain(|t| t.name != toxic);
        if proxy.upstream_toxics.len() + proxy.downstream_toxics.len() == before {
            return Err(error::toxic_not_found());
        }
        listeners.toxics_changed(proxy);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listeners that bind nothing: port 0 becomes 40000 + the proxies started so far; a port
    /// in `busy` fails as a taken one does.
    #[derive(Default)]
    struct Fake {
        started: Vec<String>,
        stopped: Vec<String>,
        busy: Vec<String>,
    }

    impl Listeners for Fake {
        fn start(&mut self, proxy: &Proxy) -> Result<String, String> {
            let addr = self.resolve(&proxy.listen)?;
            if self.busy.contains(&addr) {
                return Err(format!("listen tcp {addr}: bind: address already in use"));
            }
            self.started.push(proxy.name.clone());
            Ok(addr.replace(":0", &format!(":{}", 40000 + self.started.len())))
        }
        fn stop(&mut self, name: &str) {
            self.stopped.push(name.into());
        }
        fn toxics_changed(&mut self, _: &Proxy) {}
        fn resolve(&self, listen: &str) -> Result<String, String> {
            Ok(listen.replace("localhost", "127.0.0.1"))
        }
    }

    fn with_redis() -> (Collection, Fake) {
        let mut c = Collection::default();
        let mut f = Fake::default();
        c.create(
            r#"{"name": "redis", "listen": "localhost:0", "upstream": "127.0.0.1:6379"}"#,
            &mut f,
        )
        .unwrap();
        (c, f)
    }

    #[test]
    fn create_starts_the_proxy_and_reports_the_bound_address() {
        let (c, f) = with_redis();
        let p = c.get("redis").unwrap();
        assert_eq!((p.listen.as_str(), p.enabled), ("127.0.0.1:40001", true));
        assert_eq!(f.started, ["redis"]);
        assert_eq!(
            p.to_json(),
            r#"{"name":"redis","listen":"127.0.0.1:40001","upstream":"127.0.0.1:6379","enabled":true,"toxics":[]}"#
        );
    }

    #[test]
    fn create_refuses_as_toxiproxy_does() {
        let (mut c, mut f) = with_redis();
        let e = |r: Result<&Proxy, ApiError>| r.map(|_| ()).unwrap_err();
        assert_eq!(
            e(c.create(r#"{"name": "redis", "upstream": "x:1"}"#, &mut f)),
            error::proxy_already_exists()
        );
        assert_eq!(
            e(c.create(r#"{"upstream": "x:1"}"#, &mut f)).message,
            "missing required field: name"
        );
        assert_eq!(
            e(c.create(r#"{"name": "a"}"#, &mut f)).message,
            "missing required field: upstream"
        );
        assert_eq!(e(c.create("{", &mut f)).status, 400);
        f.busy.push("127.0.0.1:9".into());
        let taken = e(c.create(
            r#"{"name": "b", "listen": "127.0.0.1:9", "upstream": "x:1"}"#,
            &mut f,
        ));
        assert_eq!(taken.status, 500);
        assert!(
            c.get("b").is_err(),
            "a proxy that cannot listen is not kept"
        );
        let off = c
            .create(
                r#"{"name": "c", "listen": "127.0.0.1:0", "upstream": "x:1", "enabled": false}"#,
                &mut f,
            )
            .unwrap();
        assert_eq!((off.enabled, off.listen.as_str()), (false, "127.0.0.1:0"));
    }

    #[test]
    fn update_disables_enables_and_moves() {
        let (mut c, mut f) = with_redis();
        let p = c.update("redis", r#"{"enabled": false}"#, &mut f).unwrap();
        assert!(!p.enabled);
        assert_eq!(f.stopped, ["redis"]);
        let p = c.update("redis", r#"{"enabled": true}"#, &mut f).unwrap();
        assert_eq!((p.enabled, p.listen.as_str()), (true, "127.0.0.1:40001"));
        // The same address again: nothing restarts.
        c.update("redis", r#"{"listen": "127.0.0.1:40001"}"#, &mut f)
            .unwrap();
        assert_eq!(f.stopped.len(), 1);
        let p = c
            .update("redis", r#"{"upstream": "127.0.0.1:6380"}"#, &mut f)
            .unwrap();
        assert_eq!((p.enabled, p.upstream.as_str()), (true, "127.0.0.1:6380"));
        assert_eq!(f.stopped.len(), 2);
        assert_eq!(
            c.update("nope", "{}", &mut f).map(|_| ()).unwrap_err(),
            error::proxy_not_found()
        );
    }

    #[test]
    fn toxics_list_upstream_first_and_names_are_unique() {
        let (mut c, mut f) = with_redis();
        c.add_toxic(
            "redis",
            r#"{"type": "latency", "attributes": {"latency": 10}}"#,
            &mut f,
        )
        .unwrap();
        c.add_toxic(
            "redis",
            r#"{"type": "bandwidth", "stream": "upstream"}"#,
            &mut f,
        )
        .unwrap();
        let names: Vec<&str> = c
            .get("redis")
            .unwrap()
            .toxics()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["bandwidth_upstream", "latency_downstream"]);
        assert_eq!(
            c.add_toxic("redis", r#"{"type": "latency"}"#, &mut f)
                .unwrap_err(),
            error::toxic_already_exists()
        );
        let t = c
            .update_toxic(
                "redis",
                "latency_downstream",
                r#"{"toxicity": 0.25}"#,
                &mut f,
            )
            .unwrap();
        assert_eq!((t.attribute("latency"), t.toxicity), (10, 0.25));
        c.remove_toxic("redis", "latency_downstream", &mut f)
            .unwrap();
        assert_eq!(
            c.remove_toxic("redis", "latency_downstream", &mut f)
                .unwrap_err(),
            error::toxic_not_found()
        );
        assert_eq!(
            c.toxic("redis", "latency_downstream").unwrap_err(),
            error::toxic_not_found()
        );
    }

    #[test]
    fn reset_enables_every_proxy_and_clears_toxics() {
        let (mut c, mut f) = with_redis();
        c.add_toxic("redis", r#"{"type": "timeout"}"#, &mut f)
            .unwrap();
        c.update("redis", r#"{"enabled": false}"#, &mut f).unwrap();
        c.reset(&mut f).unwrap();
        let p = c.get("redis").unwrap();
        assert!(p.enabled);
        assert_eq!(p.toxics().count(), 0);
    }

    #[test]
    fn populate_checks_all_then_keeps_what_does_not_differ() {
        let (mut c, mut f) = with_redis();
        c.add_toxic("redis", r#"{"type": "timeout"}"#, &mut f)
            .unwrap();
        let (done, err) = c.populate(
            r#"[{"name": "a", "upstream": "x:1"}, {"name": "b"}]"#,
            &mut f,
        );
        assert_eq!(
            err.unwrap().message,
            "missing required field: upstream at proxy 2"
        );
        assert!(done.is_empty() && c.get("a").is_err());
        let (done, err) = c.populate(
            r#"[{"name": "redis", "listen": "127.0.0.1:40001", "upstream": "127.0.0.1:6379"},
                {"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1", "enabled": false}]"#,
            &mut f,
        );
        assert!(err.is_none());
        assert_eq!(done.len(), 2);
        assert_eq!(
            done[0].toxics().count(),
            1,
            "an unchanged proxy keeps its toxics"
        );
        assert!(!done[1].enabled);
        let (_, err) = c.populate(r#"{"name": "a"}"#, &mut f);
        assert_eq!(err.unwrap().status, 400);
    }
}
