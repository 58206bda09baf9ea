//! Toxiproxy's HTTP API (api.go `Routes`) over the collection: which request is which handler,
//! and the status, content type and body each answers, as its source writes them.

use super::error::ApiError;
use super::model::{Collection, Listeners, json_array};
use serde_json::json;

/// The Toxiproxy release whose API this is (its `/version` answer; version.go).
pub const VERSION: &str = "2.12.0";

#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Empty: no Content-Type header.
    pub content_type: &'static str,
    pub body: String,
}

const JSON: &str = "application/json";
/// What Go's `http.Error` sets, which Toxiproxy's `apiError` and the browser check go through.
const TEXT: &str = "text/plain; charset=utf-8";

/// A success: JSON written in Toxiproxy's field order.
fn ok(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: JSON,
        body,
    }
}

/// Go writes no Content-Type for a response without a body.
fn no_content() -> Reply {
    Reply {
        status: 204,
        content_type: "",
        body: String::new(),
    }
}

/// api.go `apiError`: the error as JSON, through `http.Error` (text/plain, a newline after it).
fn error(e: ApiError) -> Reply {
    Reply {
        status: e.status,
        content_type: TEXT,
        body: serde_json::to_string(&e).expect("an error serialises") + "\n",
    }
}

fn reply(result: Result<Reply, ApiError>) -> Reply {
    result.unwrap_or_else(error)
}

/// A change the run's log should hold: what was asked, of which proxy and toxic.
#[derive(Debug, PartialEq, Eq)]
pub struct Changed {
    /// `proxy-create`, `proxy-update`, `proxy-delete`, `populate`, `reset`, `toxic-add`,
    /// `toxic-update`, `toxic-remove`.
    pub what: &'static str,
    /// The proxy, or `proxy/toxic`, with what it became (`enabled`, the toxic's JSON).
    pub subject: Option<String>,
}

/// Answers one request. `path` is the URL's path, already percent-decoded per segment.
pub fn handle(
    collection: &mut Collection,
    listeners: &mut dyn Listeners,
    method: &str,
    segments: &[String],
    user_agent: &str,
    body: &str,
) -> (Reply, Option<Changed>) {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    // gorilla/mux: a path no route has is a 404 page, a route's path with another method a bare
    // 405; only a matched route runs the middleware (the browser check).
    let allowed: &[&str] = match seg.as_slice() {
        ["reset"] | ["populate"] => &["POST"],
        ["version"] => &["GET"],
        ["proxies"] | ["proxies", _, "toxics"] => &["GET", "POST"],
        ["proxies", _] | ["proxies", _, "toxics", _] => &["GET", "POST", "PATCH", "DELETE"],
        _ => {
            let page = Reply {
                status: 404,
                content_type: TEXT,
                body: "404 page not found\n".into(),
            };
            return (page, None);
        }
    };
    if !allowed.contains(&method) {
        let refused = Reply {
            status: 405,
            content_type: "",
            body: String::new(),
        };
        return (refused, None);
    }
    // api.go `stopBrowsersMiddleware`.
    if user_agent.starts_with("Mozilla/") {
        let refused = Reply {
            status: 403,
            content_type: TEXT,
            body: "User agent not allowed\n".into(),
        };
        return (refused, None);
    }
    let change = |what: &'static str, subject: String| {
        Some(Changed {
            what,
            subject: (!subject.is_empty()).then_some(subject),
        })
    };
    match (method, seg.as_slice()) {
        ("GET", ["version"]) => (
            Reply {
                status: 200,
                content_type: "application/json;charset=utf-8",
                body: format!("{{\"version\": \"{VERSION}\"}}\n"),
            },
            None,
        ),
        ("GET", ["proxies"]) => {
            // A Go map: written with its keys sorted, as the collection keeps them.
            let all: Vec<String> = collection
                .proxies()
                .map(|p| format!("{}:{}", json!(p.name), p.to_json()))
                .collect();
            (ok(200, format!("{{{}}}", all.join(","))), None)
        }
        ("POST", ["proxies"]) => match collection.create(body, listeners) {
            Ok(p) => {
                let what = format!("{} listen {} upstream {}", p.name, p.listen, p.upstream);
                (ok(201, p.to_json()), change("proxy-create", what))
            }
            Err(e) => (error(e), None),
        },
        ("POST", ["populate"]) => {
            let (done, err) = collection.populate(body, listeners);
            let names: Vec<&str> = done.iter().map(|p| p.name.as_str()).collect();
            // api.go `Populate`: the error's fields inline (omitted without one), then the
            // proxies, `null` when there are none (a nil Go slice).
            let proxies = if done.is_empty() {
                "null".to_string()
            } else {
                json_array(done.iter().map(|p| p.to_json()))
            };
            let (status, error) = match &err {
                Some(e) => (
                    e.status,
                    format!("\"error\":{},\"status\":{},", json!(e.message), e.status),
                ),
                None => (201, String::new()),
            };
            let what = (!names.is_empty()).then(|| names.join(", "));
            (
                ok(status, format!("{{{error}\"proxies\":{proxies}}}")),
                what.and_then(|w| change("populate", w)),
            )
        }
        ("POST", ["reset"]) => match collection.reset(listeners) {
            Ok(()) => (no_content(), change("reset", String::new())),
            Err(e) => (error(e), None),
        },
        ("GET", ["proxies", name]) => (
            reply(collection.get(name).map(|p| ok(200, p.to_json()))),
            None,
        ),
        ("POST" | "PATCH", ["proxies", name]) => match collection.update(name, body, listeners) {
            Ok(p) => {
                let what = format!(
                    "{} listen {} upstream {} enabled {}",
                    p.name, p.listen, p.upstream, p.enabled
                );
                (ok(200, p.to_json()), change("proxy-update", what))
            }
            Err(e) => (error(e), None),
        },
        ("DELETE", ["proxies", name]) => match collection.delete(name, listeners) {
            Ok(()) => (no_content(), change("proxy-delete", name.to_string())),
            Err(e) => (error(e), None),
        },
        ("GET", ["proxies", name, "toxics"]) => (
            reply(
                collection
                    .get(name)
                    .map(|p| ok(200, json_array(p.toxics().map(|t| t.to_json())))),
            ),
            None,
        ),
        // api.go `ToxicCreate` writes no status of its own: a created toxic answers 200.
        ("POST", ["proxies", name, "toxics"]) => {
            match collection.add_toxic(name, body, listeners) {
                Ok(t) => {
                    let what = format!("{name}/{} {}", t.name, t.to_json());
                    (ok(200, t.to_json()), change("toxic-add", what))
                }
                Err(e) => (error(e), None),
            }
        }
        ("GET", ["proxies", name, "toxics", toxic]) => (
            reply(collection.toxic(name, toxic).map(|t| ok(200, t.to_json()))),
            None,
        ),
        ("POST" | "PATCH", ["proxies", name, "toxics", toxic]) => {
            match collection.update_toxic(name, toxic, body, listeners) {
                Ok(t) => {
                    let what = format!("{name}/{} {}", t.name, t.to_json());
                    (ok(200, t.to_json()), change("toxic-update", what))
                }
                Err(e) => (error(e), None),
            }
        }
        ("DELETE", ["proxies", name, "toxics", toxic]) => {
            match collection.remove_toxic(name, toxic, listeners) {
                Ok(()) => (
                    no_content(),
                    change("toxic-remove", format!("{name}/{toxic}")),
                ),
                Err(e) => (error(e), None),
            }
        }
        _ => unreachable!("every allowed method of every route is handled"),
    }
}

/// The path's segments, each percent-decoded (Go's mux matches the decoded path).
pub fn segments(url: &str) -> Vec<String> {
    let path = url.split('?').next().unwrap_or("");
    path.strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(crate::control::http::percent_decoded)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxiproxy::model::Proxy;

    struct Nothing;
    impl Listeners for Nothing {
        fn start(&mut self, p: &Proxy) -> Result<String, String> {
            Ok(p.listen.clone())
        }
        fn stop(&mut self, _: &str) {}
        fn toxics_changed(&mut self, _: &Proxy) {}
        fn resolve(&self, l: &str) -> Result<String, String> {
            Ok(l.into())
        }
    }

    fn call(c: &mut Collection, method: &str, url: &str, body: &str) -> Reply {
        handle(c, &mut Nothing, method, &segments(url), "curl/8", body).0
    }

    #[test]
    fn routes_statuses_and_bodies_are_toxiproxys() {
        let mut c = Collection::default();
        let r = call(
            &mut c,
            "POST",
            "/proxies",
            r#"{"name":"r","listen":"127.0.0.1:1","upstream":"u:1"}"#,
        );
        assert_eq!(r.status, 201);
        assert_eq!(
            call(&mut c, "POST", "/proxies/r/toxics", r#"{"type":"latency"}"#).status,
            200
        );
        assert_eq!(
            call(&mut c, "GET", "/proxies/r/toxics/latency_downstream", "").status,
            200
        );
        assert_eq!(
            call(&mut c, "DELETE", "/proxies/r/toxics/latency_downstream", "").status,
            204
        );
        let missing = call(&mut c, "GET", "/proxies/nope", "");
        assert_eq!(
            (missing.status, missing.body.as_str()),
            (404, "{\"error\":\"proxy not found\",\"status\":404}\n")
        );
        assert_eq!(call(&mut c, "PUT", "/proxies/r", "").status, 405);
        assert_eq!(call(&mut c, "GET", "/proxies/", "").status, 404);
        assert_eq!(
            call(&mut c, "GET", "/version", "").body,
            "{\"version\": \"2.12.0\"}\n"
        );
        let populated = call(&mut c, "POST", "/populate", "[]");
        assert_eq!(
            (populated.status, populated.body.as_str()),
            (201, r#"{"proxies":null}"#)
        );
        let browser = handle(
            &mut c,
            &mut Nothing,
            "GET",
            &segments("/proxies"),
            "Mozilla/5.0",
            "",
        );
        assert_eq!(browser.0.status, 403);
        assert_eq!(call(&mut c, "POST", "/reset", "").status, 204);
        assert_eq!(call(&mut c, "DELETE", "/proxies/r", "").status, 204);
        assert_eq!(call(&mut c, "GET", "/proxies", "").body, "{}");
    }
}
