//! The control endpoint (`chaos-ctl run --control-addr 127.0.0.1:PORT`): the same changes as
//! `chaos-ctl control`, as JSON over HTTP, for a test in any language with a plain HTTP client.
//!
//! - `GET /status` → the status (`chaos-ctl control status --json`)
//! - `POST /rules/NAME` with `{"enabled": true|false}`
//! - `POST /partition` with `{"between": [["kv#0"], ["kv#1", "kv#2"]], "one_way": false}`
//! - `POST /heal`
//! - `POST /power-loss/NAME` (a replica, or a process for all its replicas)
//!
//! A change answers 200 with the `control` line it logged; bad input 400, an unknown rule,
//! process or path 404, each with `{"error": "…"}`.

use super::page::Mapped;
use super::{Change, UNKNOWN_NAME, apply, status};
use crate::failure::Failure;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionBody {
    between: Vec<Vec<String>>,
    #[serde(default)]
    one_way: bool,
}

/// Serves `page` on `addr` (loopback only) from a thread of its own, for as long as chaos-ctl
/// lives. Returns the address bound (port 0 picks one).
pub fn serve(addr: &str, page: Arc<Mapped>) -> Result<std::net::SocketAddr, Failure> {
    let parsed: std::net::SocketAddr = addr.parse().map_err(|_| {
        Failure::with(
            crate::failure::USAGE,
            format!("--control-addr `{addr}`: expected IP:PORT, e.g. 127.0.0.1:7474"),
        )
    })?;
    if !parsed.ip().is_loopback() {
        return Err(Failure::with(
            crate::failure::USAGE,
            format!(
                "--control-addr `{addr}`: the control endpoint listens on loopback only \
                 (127.0.0.1 or ::1), since anyone who reaches it can change the run"
            ),
        ));
    }
    let server = tiny_http::Server::http(parsed)
        .map_err(|e| Failure::own(format!("--control-addr {addr}: cannot listen: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Failure::own("the control endpoint has no IP address"))?;
    std::thread::Builder::new()
        .name("chaos-control".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                answer(request, &page);
            }
        })
        .map_err(|e| Failure::own(format!("cannot start the control endpoint: {e}")))?;
    Ok(bound)
}

fn answer(mut request: tiny_http::Request, mapped: &Mapped) {
    let page = mapped.page();
    let mut body = String::new();
    let read = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let method = request.method().clone();
    let url = request.url().to_string();
    let result: Result<String, (u16, String)> = if read.is_err() {
        Err((400, "the request body is not UTF-8 text".into()))
    } else {
        route(&method, &url, &body).and_then(|change| match change {
            None => Ok(serde_json::to_string(&status(&page)).expect("status serialises")),
            Some(change) => apply(&page, &change, "http", None)
                .map(|line| serde_json::to_string(&line).expect("line serialises"))
                .map_err(|f: Failure| {
                    let code = if f.code == UNKNOWN_NAME { 404 } else { 400 };
                    (code, f.message)
                }),
        })
    };
    let (code, text) = match result {
        Ok(text) => (200, text),
        Err((code, message)) => (code, serde_json::json!({ "error": message }).to_string()),
    };
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
        .expect("a valid header");
    let _ = request.respond(
        tiny_http::Response::from_string(text + "\n")
            .with_status_code(code)
            .with_header(header),
    );
}

/// What a request asks for: None for the status, else a change.
fn route(
    method: &tiny_http::Method,
    url: &str,
    body: &str,
) -> Result<Option<Change>, (u16, String)> {
    use tiny_http::Method::{Get, Post};
    let path = url.split('?').next().unwrap_or("");
    let bad = |what: &str, e: serde_json::Error| (400, format!("{what}: {e}"));
    match (method, path) {
        (Get, "/status") => Ok(None),
        (Post, "/heal") => Ok(Some(Change::Heal)),
        (Post, p) if p.starts_with("/power-loss/") && p.len() > "/power-loss/".len() => Ok(Some(
            Change::PowerLoss(percent_decoded(&p["/power-loss/".len()..])),
        )),
        (Post, "/partition") => {
            let b: PartitionBody = serde_json::from_str(body).map_err(|e| {
                bad(
                    "expected {\"between\": [[\"kv#0\"], [\"kv#1\"]], \"one_way\": false}",
                    e,
                )
            })?;
            Ok(Some(Change::Partition {
                between: b.between,
                one_way: b.one_way,
            }))
        }
        (Post, p) if p.starts_with("/rules/") && p.len() > "/rules/".len() => {
            let name = percent_decoded(&p["/rules/".len()..]);
            let b: RuleBody = serde_json::from_str(body)
                .map_err(|e| bad("expected {\"enabled\": true} or {\"enabled\": false}", e))?;
            Ok(Some(if b.enabled {
                Change::Enable(name)
            } else {
                Change::Disable(name)
            }))
        }
        _ => Err((
            404,
            format!(
                "no {method} {path}; expected GET /status, POST /rules/NAME, POST /partition, \
                 POST /heal or POST /power-loss/NAME"
            ),
        )),
    }
}

/// `%23` → `#` and the like: rule names may hold characters a URL must escape.
pub(crate) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_http::Method::{Get, Post};

    #[test]
    fn routes_map_to_changes_and_bad_input_is_refused() {
        assert_eq!(route(&Get, "/status", ""), Ok(None));
        assert_eq!(route(&Post, "/heal", ""), Ok(Some(Change::Heal)));
        assert_eq!(
            route(&Post, "/power-loss/kv%230", ""),
            Ok(Some(Change::PowerLoss("kv#0".into())))
        );
        assert_eq!(route(&Post, "/power-loss/", "").unwrap_err().0, 404);
        assert_eq!(
            route(&Post, "/rules/db%2Ddown", r#"{"enabled": true}"#),
            Ok(Some(Change::Enable("db-down".into())))
        );
        assert_eq!(
            route(&Post, "/rules/x", r#"{"enabled": false}"#),
            Ok(Some(Change::Disable("x".into())))
        );
        assert_eq!(
            route(
                &Post,
                "/partition",
                r#"{"between": [["a"], ["b"]], "one_way": true}"#
            ),
            Ok(Some(Change::Partition {
                between: vec![vec!["a".into()], vec!["b".into()]],
                one_way: true
            }))
        );
        let (code, msg) = route(&Post, "/rules/x", r#"{"enable": true}"#).unwrap_err();
        assert_eq!(code, 400);
        assert!(msg.contains("expected {\"enabled\": true}"), "{msg}");
        assert_eq!(route(&Get, "/rules/x", "").unwrap_err().0, 404);
        assert_eq!(route(&Post, "/rules/", "{}").unwrap_err().0, 404);
    }
}
