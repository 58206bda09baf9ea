//! Toxiproxy's HTTP API without its proxy process: `chaos-ctl toxiproxy --listen ADDR` standing
//! alone, or `chaos-ctl run --toxiproxy-addr ADDR …` beside a run, so that test code written
//! against Toxiproxy (its clients in every language) drives our toxics unchanged.
//!
//! - `error`: its error messages and statuses; `gojson`: decoding bodies as Go decodes them;
//! - `toxic`: the toxic types and their attributes; `model`: proxies, toxics and what each
//!   request does to them (pure);
//! - `api`: routes, statuses and bodies; `relay`: a real listener per enabled proxy;
//!   `link`: one relayed connection through the proxy's toxics;
//! - `inproc`: beside a run, the proxies written into its control page, so that its processes
//!   connect straight to `upstream` and apply the toxics themselves (no hop).
//!
//! Every change is a `control` line in the run's log (`by: "toxiproxy"`), and beside a run a new
//! generation of its control page (which each process logs as `seen` where it first acts on it).

pub mod api;
pub mod error;
pub mod gojson;
pub mod inproc;
pub mod link;
pub mod model;
pub mod relay;
pub mod toxic;

use crate::failure::Failure;
use chaos_engine::event::schema::{ControlLine, Event};
use std::io::Write;
use std::path::PathBuf;

/// Set for a program run beside the API (`chaos-ctl run --toxiproxy-addr`): its URL, as
/// `CHAOS_CONTROL_URL` gives the control endpoint's.
pub const ENV: &str = chaos_engine::env::TOXIPROXY_URL;

/// Toxiproxy's own default address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8474";

/// Serves the API on `addr` from a thread of its own, for as long as chaos-ctl lives; changes
/// are logged to `log` if given. Returns the address bound (port 0 picks one).
/// `flag` names the option the address came from, for the error. Beside a run, `page` is its
/// control page, into which every change is written for the in-process path, and whether its
/// policy is frozen (`inproc`).
pub fn serve(
    flag: &str,
    addr: &str,
    seed: u64,
    log: Option<PathBuf>,
    page: Option<(std::sync::Arc<crate::control::page::Mapped>, bool)>,
) -> Result<std::net::SocketAddr, Failure> {
    let parsed: std::net::SocketAddr = addr.parse().map_err(|_| {
        Failure::with(
            crate::failure::USAGE,
            format!("{flag} `{addr}`: expected IP:PORT, e.g. {DEFAULT_ADDR}"),
        )
    })?;
    let server = tiny_http::Server::http(parsed)
        .map_err(|e| Failure::own(format!("{flag} {addr}: cannot listen: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Failure::own("the toxiproxy API has no IP address"))?;
    let started = std::time::Instant::now();
    std::thread::Builder::new()
        .name("chaos-toxiproxy".into())
        .spawn(move || {
            let mut collection = model::Collection::default();
            let mut relays = relay::Relays::new(seed);
            let mut inproc = page.map(|(page, frozen)| inproc::InProcess::new(page, frozen));
            for request in server.incoming_requests() {
                answer(
                    request,
                    &mut collection,
                    &mut relays,
                    inproc.as_mut(),
                    log.as_deref(),
                    started,
                );
            }
        })
        .map_err(|e| Failure::own(format!("cannot start the toxiproxy API: {e}")))?;
    Ok(bound)
}

fn answer(
    mut request: tiny_http::Request,
    collection: &mut model::Collection,
    relays: &mut relay::Relays,
    inproc: Option<&mut inproc::InProcess>,
    log: Option<&std::path::Path>,
    started: std::time::Instant,
) {
    let mut body = String::new();
    // A body that is not UTF-8 is no JSON either: it is refused as the decoder would.
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let user_agent = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("User-Agent"))
        .map(|h| h.value.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().as_str().to_ascii_uppercase();
    let segments = api::segments(request.url());
    let (reply, changed) = api::handle(collection, relays, &method, &segments, &user_agent, &body);
    if let Some(changed) = changed {
        // The page first, so that the line's generation is the one processes will log as seen.
        let generation = inproc.map_or(0, |i| i.write(collection));
        if let Some(log) = log {
            append(log, &changed, generation, started);
        }
    }
    // Response::from_string would add a text/plain Content-Type where Go writes none.
    let mut headers = Vec::new();
    if !reply.content_type.is_empty() {
        headers.push(
            tiny_http::Header::from_bytes(&b"Content-Type"[..], reply.content_type.as_bytes())
                .expect("a valid header"),
        );
    }
    let length = reply.body.len();
    let response = tiny_http::Response::new(
        reply.status.into(),
        headers,
        std::io::Cursor::new(reply.body.into_bytes()),
        Some(length),
        None,
    );
    let _ = request.respond(response);
}

/// A change as a `control` line: `what` the verb (`toxic-add`…), `rule` the proxy or
/// `proxy/toxic` it changed.
/// `generation`: the control page's after the change (0 standing alone: there is no page).
fn append(
    log: &std::path::Path,
    changed: &api::Changed,
    generation: u64,
    started: std::time::Instant,
) {
    let line = ControlLine {
        ts_ns: crate::system::journal::now_ns(),
        generation,
        t_ns: Some(started.elapsed().as_nanos() as u64),
        by: Some("toxiproxy".into()),
        what: changed.what.to_string(),
        rule: changed.subject.clone(),
        disk: None,
        process: None,
        cut: Vec::new(),
        key: None,
        pid: None,
        at: None,
        enabled: None,
        proc: None,
        tid: None,
    };
    if let (Ok(mut f), Ok(mut text)) = (
        // Standing alone, the log may not exist yet: created private, never through a symlink,
        // as a run's log is.
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new().append(true).create(true),
                0o600,
            ),
            libc::O_NOFOLLOW,
        )
        .open(log),
        serde_json::to_string(&Event::Control(line)),
    ) {
        text.push('\n');
        let _ = f.write_all(text.as_bytes());
    }
}

/// `chaos-ctl toxiproxy`: serves until killed.
pub fn standalone(args: Args) -> Result<u8, Failure> {
    let bound = serve(
        "--listen",
        &args.listen,
        args.seed.unwrap_or(0),
        args.log,
        None,
    )?;
    crate::output::errout!("chaos: toxiproxy API http://{bound}");
    loop {
        std::thread::park();
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Where to serve the API (Toxiproxy's default: 127.0.0.1:8474; port 0 picks one)
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    pub listen: String,
    /// Seed for the toxicity and jitter draws (default 0)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Append every change to this event log as a `control` line
    #[arg(long, short = 'l')]
    pub log: Option<PathBuf>,
}
