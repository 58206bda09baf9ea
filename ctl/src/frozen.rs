//! Frozen policies: a log's faults as `[[inject]]` entries, each an exact fault at its decision key
//! (process, connection, site), with no probabilities. `freeze` prints one; `replay` and `minimize`
//! run them.

use crate::events::{Event, Log};
use crate::failure::Failure;
use chaos_engine::inject::parse_conn;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// One fault of a log, as a frozen policy replays it.
#[derive(Clone, Debug)]
pub struct LoggedFault {
    /// `process-conn/site`: the key without the rule, which is what a replay must hit again.
    pub ident: String,
    pub process: String,
    /// The connection as `tcp-out#3` or `tcp-connects` when that names the key's connection,
    /// otherwise its 16 hex digits.
    pub conn: String,
    pub site: String,
    pub op: String,
    /// The fault as a TOML value.
    pub fault: String,
    /// One line for people: what happened, where, under which rule.
    pub describe: String,
}

/// The parts of a logged key `PROC-CONN/rN/SITE` (or `.../inject/SITE`).
fn split_key(key: &str) -> Option<(&str, &str, &str)> {
    let (ids, rest) = key.split_once('/')?;
    let (process, conn) = ids.split_once('-')?;
    let site = rest.rsplit_once('/')?.1;
    Some((process, conn, site))
}

/// The identity a replay must reproduce: the key without its rule part.
pub fn ident_of(e: &Event) -> Option<String> {
    let (process, conn, site) = split_key(e.key.as_deref()?)?;
    Some(format!("{process}-{conn}/{site}"))
}

/// Faults a frozen policy can carry: every fault with a key, except platform quirks (those come
/// back by themselves under the same quirk settings).
pub fn replayable(e: &Event) -> bool {
    e.ev == "fault" && e.key.is_some() && e.fault.as_deref() != Some("quirk")
}

/// The distinct identities of a log's replayable faults.
pub fn idents(log: &Log) -> HashSet<String> {
    log.faults()
        .filter(|e| replayable(e))
        .filter_map(ident_of)
        .collect()
}

/// The exact fault a logged event describes, as a TOML value.
fn fault_value(e: &Event) -> Option<String> {
    let fault = e.fault.as_deref()?;
    Some(match fault {
        "reset" => "\"reset\"".to_string(),
        "delay" => format!("{{ delay = \"{}ns\" }}", e.delay_ns.unwrap_or(0)),
        // What the shortened call returned is at most the length it was cut to; replaying that
        // length gives the same transfer.
        "short" => format!("{{ short = \"{}\" }}", e.returned.unwrap_or(1).max(1)),
        "stall" => match e.stall_ns {
            Some(ns) if ns > 0 => format!("{{ stall = \"{ns}ns\" }}"),
            _ => "\"EAGAIN\"".to_string(),
        },
        errno => format!("\"{errno}\""),
    })
}

/// The connection as its readable name when that name maps to the key's connection hash.
fn conn_text(e: &Event, conn_hex: &str, site: &str) -> String {
    let hash = u64::from_str_radix(conn_hex, 16).ok();
    let named = if site.starts_with("connect#") {
        e.kind.as_ref().map(|k| format!("{k}-connects"))
    } else {
        e.conn.clone()
    };
    match named {
        Some(name) if parse_conn(&name).ok() == hash => name,
        _ => conn_hex.to_string(),
    }
}

/// A log's replayable faults in the order they happened, one per identity.
pub fn logged_faults(log: &Log) -> Vec<LoggedFault> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in log.faults().filter(|e| replayable(e)) {
        let (Some(key), Some(fault)) = (e.key.as_deref(), fault_value(e)) else {
            continue;
        };
        let Some((process, conn_hex, site)) = split_key(key) else {
            continue;
        };
        let Some(ident) = ident_of(e) else { continue };
        if !seen.insert(ident.clone()) {
            continue;
        }
        let conn = conn_text(e, conn_hex, site);
        let op = e.op.clone().unwrap_or_default();
        let peer = e
            .peer
            .as_deref()
            .map(|p| format!(" to {p}"))
            .unwrap_or_default();
        let rule = e.rule.as_deref().unwrap_or("?");
        out.push(LoggedFault {
            describe: format!(
                "{op} on {} ({conn}{peer}) at {site}: {fault}, from rule \"{rule}\"",
                e.conn.as_deref().unwrap_or("?")
            ),
            ident,
            process: process.to_string(),
            conn,
            site: site.to_string(),
            op,
            fault,
        });
    }
    out
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// The frozen policy text for `faults` (a selection of the log's), with comments saying where they
/// came from.
pub fn render(log: &Log, log_path: &Path, faults: &[&LoggedFault], total: usize) -> String {
    let first = log.starts().next();
    let mut commands: HashMap<&str, String> = HashMap::new();
    for s in log.starts() {
        if let (Some(p), Some(argv)) = (s.proc.as_deref(), s.argv.as_ref()) {
            commands.entry(p).or_insert_with(|| argv.join(" "));
        }
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Frozen by `chaos-ctl freeze` from {}.",
        log_path.display()
    );
    if let Some(s) = first {
        let _ = writeln!(
            t,
            "# The original run: seed {}, policy {} (digest {}).",
            s.seed.unwrap_or(0),
            s.policy.as_deref().unwrap_or("?"),
            s.policy_digest.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(
        t,
        "# {} of the {total} logged fault(s). Each [[inject]] fires whenever the program reaches its\n\
         # decision key (process, connection, site on it): no probabilities, the same every run.\n\
         # Run it: chaos-ctl run --policy THIS_FILE -- CMD\n\
         #     or: CHAOS_POLICY=THIS_FILE LD_PRELOAD=/path/to/libchaos_shim.so CMD\n",
        faults.len()
    );
    if let Some(s) = first {
        // Race-type quirks draw from the seed; the rest of the policy no longer does.
        let _ = writeln!(t, "seed = {}", s.seed.unwrap_or(1));
        let quirks = s.quirks.clone().unwrap_or_default();
        if !quirks.is_empty() {
            let names: Vec<String> = quirks.iter().map(|q| quoted(q)).collect();
            let _ = writeln!(t, "quirks = [{}]", names.join(", "));
            if let Some(p) = s
                .quirk_probability
                .as_deref()
                .and_then(|p| p.parse::<f64>().ok())
                && p < 1.0
            {
                let _ = writeln!(t, "quirk_probability = {p:?}");
            }
        }
    }
    for (i, f) in faults.iter().enumerate() {
        let cmd = commands.get(f.process.as_str()).map(String::as_str);
        let _ = write!(
            t,
            "\n# {}. {}\n#    in process {}{}\n[[inject]]\nprocess = {}\nconn = {}\nat = {}\n",
            i + 1,
            f.describe,
            f.process,
            cmd.map(|c| format!(" ({c})")).unwrap_or_default(),
            quoted(&f.process),
            quoted(&f.conn),
            quoted(&f.site),
        );
        if !f.op.is_empty() {
            let _ = writeln!(t, "on = {}", quoted(&f.op));
        }
        let _ = writeln!(t, "fault = {}", f.fault);
    }
    t
}

/// Checks a rendered policy with the same parser the shim uses.
pub fn check(text: &str, origin: &str) -> Result<(), Failure> {
    chaos_engine::parse::parse_policy(text, origin)
        .map(drop)
        .map_err(|e| {
            Failure::own(format!(
                "the frozen policy does not parse ({e}); please report this"
            ))
        })
}

/// `chaos-ctl freeze LOG`: the frozen policy on stdout.
pub fn freeze(log_path: &Path) -> Result<u8, Failure> {
    let log = Log::read_or_fail(log_path)?;
    if log.starts().next().is_none() {
        return Err(Failure::own(format!(
            "{} has no `start` event: not a chaos event log",
            log_path.display()
        )));
    }
    let faults = logged_faults(&log);
    let all: Vec<&LoggedFault> = faults.iter().collect();
    let text = render(&log, log_path, &all, faults.len());
    check(&text, "frozen policy")?;
    print!("{text}");
    Ok(0)
}
