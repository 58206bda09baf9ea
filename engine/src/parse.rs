//! TOML policy text -> validated `Policy`, with errors that name the file, line and column.

use crate::addr::AddrPattern;
use crate::errno::{allowed_names, can_return, errno_name, op_allowed_names, op_can_return};
use crate::fault::{Fault, parse_errno, parse_ns_range, parse_short};
use crate::glob::Glob;
use crate::inject::{self, Injection};
use crate::kind::{KIND_NAMES_HELP, KindSet};
use crate::op::{OP_NAMES_HELP, Op, OpClass, OpSet};
use crate::policy::{MAX_RULES, Policy, Rule, fnv1a};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub origin: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for PolicyError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    seed: Option<Spanned<u64>>,
    platform: Option<Spanned<String>>,
    quirks: Option<Spanned<Vec<String>>>,
    no_quirks: Option<Spanned<Vec<String>>>,
    quirk_probability: Option<Spanned<Number>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
    #[serde(default)]
    inject: Vec<Spanned<RawInjection>>,
    #[serde(default)]
    process: Vec<Spanned<crate::system::parse::RawProcess>>,
    attrition: Option<Spanned<crate::system::parse::RawAttrition>>,
    #[serde(default)]
    nemesis: Vec<Spanned<crate::system::parse::RawNemesis>>,
    #[serde(default)]
    partition: Vec<Spanned<crate::system::parse::RawPartition>>,
    partitions: Option<Spanned<crate::system::parse::RawPartitions>>,
    #[serde(default)]
    disk: Vec<Spanned<RawDisk>>,
    durability: Option<Spanned<RawDurability>>,
}

/// `[durability]`: files under a glob lose what was not made durable when a process crashes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDurability {
    path: Spanned<String>,
    torn: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    crash: Option<Spanned<String>>,
}

/// `[[disk]]`: files under a glob share a capacity.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisk {
    name: Option<Spanned<String>>,
    path: Spanned<String>,
    capacity: Spanned<String>,
}

/// `[[disk]]` sections: names unique, paths absolute globs, capacities sizes.
fn build_disks(
    raw: &[Spanned<RawDisk>],
    err_at: &dyn Fn(Range<usize>, String) -> PolicyError,
) -> Result<Vec<crate::disk::Disk>, PolicyError> {
    use crate::disk::{Disk, MAX_DISKS};
    if raw.len() > MAX_DISKS {
        return Err(err_at(
            raw[MAX_DISKS].span(),
            format!("too many disks ({}); at most {MAX_DISKS}", raw.len()),
        ));
    }
    let mut disks: Vec<Disk> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let d = d.get_ref();
        let name = d
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| format!("disk-{i}"));
        if let Some(n) = &d.name
            && (name.is_empty() || name.len() > crate::control::NAME_BYTES)
        {
            return Err(err_at(
                n.span(),
                format!(
                    "a disk's name must be 1 to {} bytes",
                    crate::control::NAME_BYTES
                ),
            ));
        }
        if disks.iter().any(|o| o.name == name) {
            let span = d.name.as_ref().map_or(d.path.span(), |n| n.span());
            return Err(err_at(span, format!("duplicate disk name `{name}`")));
        }
        if !d.path.get_ref().starts_with('/') {
            return Err(err_at(
                d.path.span(),
                format!(
                    "disk path `{}` must be absolute (a glob such as \"/var/lib/app/*\")",
                    d.path.get_ref()
                ),
            ));
        }
        let capacity = crate::system::parse::parse_bytes(d.capacity.get_ref())
            .map_err(|m| err_at(d.capacity.span(), format!("capacity: {m}")))?;
        disks.push(Disk {
            name,
            path: Glob(d.path.get_ref().clone()),
            capacity,
        });
    }
    Ok(disks)
}

/// `[[inject]]`: one exact fault at one decision key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInjection {
    process: Spanned<String>,
    conn: Spanned<String>,
    at: Spanned<String>,
    /// The op that took the fault in the original run: documentation, checked to be an op name.
    on: Option<Spanned<String>>,
    fault: Spanned<toml::Value>,
}

/// A name or an array of names; each array item keeps its own span, so an error points at it.
enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl OneOrMany {
    /// Each name with where it is (`whole` is the span of the value as a whole).
    fn items(&self, whole: Range<usize>) -> Vec<(&str, Range<usize>)> {
        match self {
            OneOrMany::One(s) => vec![(s.as_str(), whole)],
            OneOrMany::Many(v) => v.iter().map(|s| (s.get_ref().as_str(), s.span())).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or an array of names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Any TOML number (a too-large integer too: it is then out of range, not a type error).
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number from 0.0 to 1.0")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number::Float(v as f64))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Number, E> {
                Ok(Number::Float(v as f64))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Number, E> {
                Ok(Number::Float(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Spanned<String>>,
    on: Spanned<OneOrMany>,
    fd: Option<Spanned<OneOrMany>>,
    peer: Option<Spanned<String>>,
    local: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    probability: Option<Spanned<Number>>,
    after: Option<u64>,
    every: Option<Spanned<u64>>,
    times: Option<u64>,
    window: Option<Spanned<Vec<String>>>,
    fault: Spanned<toml::Value>,
    #[serde(default)]
    any_errno: bool,
    signal: Option<Spanned<String>>,
    min_bytes: Option<u64>,
    process: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    per: Option<Spanned<String>>,
    enabled: Option<bool>,
}

/// Parses and validates policy text. `origin` is what error messages and events call it.
pub fn parse_policy(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let err_at = |span: Range<usize>, message: String| {
        let (line, col) = line_col(text, span.start);
        PolicyError {
            origin: origin.to_string(),
            line,
            col,
            message,
        }
    };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = humanize(text, span.start, &e.message().trim().replace('\n', " "));
        err_at(span, message)
    })?;
    if raw.rules.len() > MAX_RULES {
        return Err(err_at(
            raw.rules[MAX_RULES].span(),
            format!(
                "too many rules ({}); at most {MAX_RULES} are supported",
                raw.rules.len()
            ),
        ));
    }
    let mut rules = Vec::with_capacity(raw.rules.len());
    let rule_spans: Vec<Range<usize>> = raw.rules.iter().map(|r| r.span()).collect();
    for (index, raw_rule) in raw.rules.into_iter().enumerate() {
        let span = raw_rule.span();
        let rule = build_rule(raw_rule.into_inner(), index, &|s, m| err_at(s, m)).map_err(|e| {
            if e.line == 0 {
                err_at(span.clone(), e.message)
            } else {
                e
            }
        })?;
        if let Some(prev) = rules.iter().find(|r: &&Rule| r.name == rule.name) {
            return Err(err_at(span, format!("duplicate rule name `{}`", prev.name)));
        }
        rules.push(rule);
    }
    let names = |list: &Option<Spanned<Vec<String>>>| -> Vec<String> {
        list.as_ref()
            .map(|l| l.get_ref().clone())
            .unwrap_or_default()
    };
    let (add, remove) = (names(&raw.quirks), names(&raw.no_quirks));
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
    let quirks = crate::quirk::resolve(
        raw.platform.as_ref().map(|p| p.get_ref().as_str()),
        &add,
        &remove,
    )
    .map_err(|m| {
        let span = if m.starts_with("unknown platform") {
            raw.platform.as_ref().map(|p| p.span())
        } else if add.iter().any(|n| m.contains(&format!("`{n}`"))) {
            raw.quirks.as_ref().map(|q| q.span())
        } else {
            raw.no_quirks.as_ref().map(|q| q.span())
        };
        err_at(span.unwrap_or(0..0), m)
    })?;
    let quirk_probability = match &raw.quirk_probability {
        None => 1.0,
        Some(p) => probability(p, "quirk_probability", &err_at)?,
    };
    let mut injections = Vec::with_capacity(raw.inject.len());
    for raw_inj in &raw.inject {
        injections.push(build_injection(raw_inj.get_ref(), &err_at)?);
    }
    let disks = build_disks(&raw.disk, &err_at)?;
    let durability = match &raw.durability {
        None => None,
        Some(d) => {
            let d = d.get_ref();
            if !d.path.get_ref().starts_with('/') {
                return Err(err_at(
                    d.path.span(),
                    format!(
                        "durability path `{}` must be absolute (a glob such as \"/var/lib/app/*\")",
                        d.path.get_ref()
                    ),
                ));
            }
            let torn = d
                .torn
                .as_ref()
                .map(|t| {
                    crate::system::parse::parse_bytes(t.get_ref())
                        .map_err(|m| err_at(t.span(), format!("torn: {m}")))
                })
                .transpose()?;
            let model = match &d.model {
                None => crate::durability::Model::default(),
                Some(m) => crate::durability::Model::from_name(m.get_ref()).ok_or_else(|| {
                    err_at(
                        m.span(),
                        format!(
                            "durability model `{}` is not one of \"ext4\" (the default) or \"posix\"",
                            m.get_ref()
                        ),
                    )
                })?,
            };
            let crash = match &d.crash {
                None => crate::durability::Crash::default(),
                Some(c) => crate::durability::Crash::from_name(c.get_ref()).ok_or_else(|| {
                    err_at(
                        c.span(),
                        format!(
                            "durability crash `{}` is not one of \"power-loss\" (the default: a \
                             SIGKILL loses what was not durable) or \"process\" (only a \
                             `power-loss` fault does)",
                            c.get_ref()
                        ),
                    )
                })?,
            };
            Some(crate::durability::Durability {
                path: Glob(d.path.get_ref().clone()),
                torn,
                model,
                crash,
            })
        }
    };
    let rule_names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let system = crate::system::parse::build(
        raw.process,
        raw.attrition,
        raw.nemesis,
        raw.partition,
        raw.partitions,
        &rule_names,
        &err_at,
    )?;
    for (rule, raw_span) in rules.iter().zip(&rule_spans) {
        if let Some(g) = &rule.process
            && !system.is_empty()
            && !system
                .replica_names()
                .iter()
                .any(|n| g.matches(n.as_bytes()))
            && !g.matches(b"workload")
        {
            return Err(err_at(
                raw_span.clone(),
                format!(
                    "rule `{}`: process = \"{}\" matches no process of the system ({}, or \"workload\")",
                    rule.name,
                    g.0,
                    system.replica_names().join(", ")
                ),
            ));
        }
    }
    Ok(Policy {
        system,
        disks,
        durability,
        injections: crate::inject::Injections::new(injections),
        platform: raw.platform.map(|p| p.into_inner()),
        quirks_on: add.iter().map(|s| s.to_string()).collect(),
        quirks_off: remove.iter().map(|s| s.to_string()).collect(),
        quirks,
        quirk_probability,
        seed: raw.seed.map(|s| s.into_inner()).unwrap_or(1),
        rules,
        origin: origin.to_string(),
        digest: fnv1a(text.as_bytes()),
    })
}

type ErrAt<'a> = &'a dyn Fn(Range<usize>, String) -> PolicyError;

fn build_injection(raw: &RawInjection, err_at: ErrAt) -> Result<Injection, PolicyError> {
    let field = |v: &Spanned<String>, parse: fn(&str) -> Result<u64, String>| {
        parse(v.get_ref()).map_err(|m| err_at(v.span(), m))
    };
    let process = field(&raw.process, inject::parse_process)?;
    let conn = field(&raw.conn, inject::parse_conn)?;
    let site = inject::parse_site(raw.at.get_ref()).map_err(|m| err_at(raw.at.span(), m))?;
    if let Some(on) = &raw.on
        && Op::from_name(on.get_ref()).is_none()
    {
        return Err(err_at(
            on.span(),
            format!(
                "unknown op `{}` in `on`; expected {OP_NAMES_HELP}",
                on.get_ref()
            ),
        ));
    }
    let fault = parse_fault(raw.fault.get_ref()).map_err(|m| err_at(raw.fault.span(), m))?;
    Ok(Injection {
        process,
        conn,
        site,
        fault,
    })
}

/// A number in 0.0..=1.0 (an integer 0 or 1 is fine too).
fn probability(p: &Spanned<Number>, field: &str, err_at: ErrAt) -> Result<f64, PolicyError> {
    let v = match p.get_ref() {
        Number::Int(i) => *i as f64,
        Number::Float(f) => *f,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(err_at(
            p.span(),
            format!("{field} {v} is outside 0.0..=1.0"),
        ));
    }
    Ok(v)
}

fn build_rule(raw: RawRule, index: usize, err_at: ErrAt) -> Result<Rule, PolicyError> {
    let name = match raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(err_at(n.span(), "rule name must not be empty".into()));
        }
        Some(n) => n.into_inner(),
        None => format!("rule-{}", index + 1),
    };

    let mut ops = OpSet::default();
    // Ops named one by one: a fault that cannot act on one of them is an error, while a group
    // keeps only the ops the fault can act on (`left_out`).
    let mut named = OpSet::default();
    for (item, at) in raw.on.get_ref().items(raw.on.span()) {
        let set = OpSet::from_name(item).ok_or_else(|| {
            err_at(
                at,
                format!("unknown op `{item}` in `on`; expected {OP_NAMES_HELP}"),
            )
        })?;
        if set.0.count_ones() == 1 {
            named.0 |= set.0;
        }
        ops.0 |= set.0;
    }
    if ops.is_empty() {
        return Err(err_at(raw.on.span(), "`on` names no ops".into()));
    }

    let kinds = match &raw.fd {
        None => ops.default_kinds(),
        Some(fd) => {
            let mut set = KindSet(0);
            for (item, at) in fd.get_ref().items(fd.span()) {
                let k = KindSet::from_name(item).ok_or_else(|| {
                    err_at(
                        at,
                        format!("unknown fd kind `{item}`; expected {KIND_NAMES_HELP}"),
                    )
                })?;
                set.0 |= k.0;
            }
            set
        }
    };

    let addr = |field: &Option<Spanned<String>>| -> Result<Option<AddrPattern>, PolicyError> {
        field
            .as_ref()
            .map(|s| AddrPattern::parse(s.get_ref()).map_err(|m| err_at(s.span(), m)))
            .transpose()
    };
    let peer = addr(&raw.peer)?;
    let local = addr(&raw.local)?;
    if let Some(s) = raw.peer.as_ref().or(raw.local.as_ref())
        && kinds.0 & KindSet::SOCKET.0 == 0
    {
        return Err(err_at(
            s.span(),
            "`peer`/`local` only match sockets, but `fd` selects no socket kind".into(),
        ));
    }
    let per_connection = match raw.per.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("call", _)) => false,
        Some(("connection", _)) => true,
        Some((other, span)) => {
            return Err(err_at(
                span,
                format!("per `{other}`: expected \"call\" (the default) or \"connection\""),
            ));
        }
    };
    let resolving = ops.iter().any(|o| o.class() == OpClass::Resolve);
    if resolving && ops.iter().any(|o| o.class() != OpClass::Resolve) {
        return Err(err_at(
            raw.on.span(),
            "name resolution (`resolve`, getaddrinfo…) cannot share a rule with calls on fds: \
             give it a rule of its own"
                .into(),
        ));
    }
    if let Some(h) = &raw.host
        && !resolving
    {
        return Err(err_at(
            h.span(),
            "`host` matches the name being resolved: it applies to `on = \"resolve\"` rules \
             (use `peer` for a socket's address)"
                .into(),
        ));
    }
    if resolving
        && let Some(s) = raw
            .peer
            .as_ref()
            .or(raw.local.as_ref())
            .or(raw.path.as_ref())
    {
        return Err(err_at(
            s.span(),
            "a `resolve` rule has no fd: match the name with `host`, not `peer`, `local` or `path`"
                .into(),
        ));
    }
    let path = raw.path.map(|p| Glob(p.into_inner()));

    let probability = match &raw.probability {
        None => 1.0,
        Some(p) => probability(p, "probability", err_at)?,
    };
    let every = match raw.every {
        Some(e) if *e.get_ref() == 0 => {
            return Err(err_at(e.span(), "`every` must be at least 1".into()));
        }
        Some(e) => e.into_inner(),
        None => 1,
    };
    let window = raw
        .window
        .map(|w| crate::fault::parse_window(w.get_ref()).map_err(|m| err_at(w.span(), m)))
        .transpose()?;

    let fault_span = raw.fault.span();
    let fault = parse_fault(raw.fault.get_ref()).map_err(|m| err_at(fault_span.clone(), m))?;
    let (ops, left_out) =
        fitting_ops(&fault, ops, named, kinds, raw.any_errno).map_err(|m| err_at(fault_span, m))?;
    let signal = match raw.signal {
        None => None,
        Some(s) => {
            let signo =
                crate::signal::parse_signal(s.get_ref()).map_err(|m| err_at(s.span(), m))?;
            if !matches!(fault, Fault::Errno(libc::EINTR) | Fault::Short(_)) {
                return Err(err_at(
                    s.span(),
                    "`signal` names the handler that may interrupt a call: it applies to \
                     fault = \"EINTR\" and to short writes"
                        .into(),
                ));
            }
            Some(signo)
        }
    };

    Ok(Rule {
        name,
        ops,
        left_out,
        kinds,
        peer,
        local,
        path,
        probability,
        after: raw.after.unwrap_or(0),
        every,
        times: raw.times,
        window,
        fault,
        signal,
        min_bytes: raw.min_bytes.unwrap_or(0),
        process: raw.process.map(|p| Glob(p.into_inner())),
        host: raw.host.map(|h| Glob(h.into_inner())),
        per_connection,
        enabled: raw.enabled.unwrap_or(true),
    })
}

const FAULT_HELP: &str = "expected an errno name (\"ECONNRESET\", \"EINTR\"...), \
{ errno = \"...\" }, { errno = \"ETIMEDOUT\", after = \"3s\" }, { reset = true }, { delay = \"10ms..200ms\" }, { short = \"1..50%\" } \
{ stall = \"5ms..200ms\" }, \"drop\", \"duplicate\" (udp), a process fault: \"crash\", \"terminate\", { pause = \"2s\" }, \
or toxics: { latency = \"100ms\", jitter = \"20ms\" }, { bandwidth = \"512KB/s\" }, { blackhole = true }, { limit_data = \"64KB\", then = \"close\" }, { reset_after = \"500ms\" }";

fn parse_fault(value: &toml::Value) -> Result<Fault, String> {
    let errno_fault = |name: &str| -> Result<Fault, String> { parse_errno(name).map(Fault::Errno) };
    match value {
        toml::Value::String(s) if s == "reset" => Ok(Fault::Reset),
        toml::Value::String(s) if s.starts_with("EAI_") => crate::fault::RESOLVER_ERRORS
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, c)| Fault::Resolver(*c))
            .ok_or_else(|| {
                format!("unknown resolver error `{s}`; expected EAI_AGAIN, EAI_NONAME or EAI_FAIL")
            }),
        toml::Value::String(s) if s == "drop" => Ok(Fault::Drop),
        toml::Value::String(s) if s == "duplicate" => Ok(Fault::Duplicate),
        toml::Value::String(s) if s == "crash" => Ok(Fault::Crash),
        toml::Value::String(s) if s == "power-loss" => Ok(Fault::PowerLoss),
        toml::Value::String(s) if s == "terminate" => Ok(Fault::Terminate),
        toml::Value::String(s) => errno_fault(s),
        toml::Value::Table(t)
            if t.len() == 2 && t.contains_key("errno") && t.contains_key("after") =>
        {
            let name = t["errno"]
                .as_str()
                .ok_or_else(|| format!("`errno` takes a string; {FAULT_HELP}"))?;
            let errno = parse_errno(name)?;
            if errno != libc::ETIMEDOUT {
                return Err(format!(
                    "`after` applies to ETIMEDOUT (the time a connect's SYN retries take), not to {name}"
                ));
            }
            let after = t["after"]
                .as_str()
                .ok_or_else(|| "`after` takes a duration string, e.g. \"3s\"".to_string())?;
            let after_ns = crate::fault::parse_duration(after)?;
            Ok(Fault::ErrnoAfter { errno, after_ns })
        }
        toml::Value::Table(t) if crate::toxic::is_toxic_table(t) => {
            crate::toxic::parse(t).map(Fault::Toxic)
        }
        toml::Value::Table(t) => {
            if t.len() != 1 {
                return Err(format!("a fault table has exactly one key; {FAULT_HELP}"));
            }
            let (key, v) = t.iter().next().expect("one entry");
            let text = || {
                v.as_str()
                    .ok_or_else(|| format!("`{key}` takes a string; {FAULT_HELP}"))
            };
            match key.as_str() {
                "errno" => errno_fault(text()?),
                "reset" if v.as_bool() == Some(true) => Ok(Fault::Reset),
                "reset" => Err("`reset` takes `true`".into()),
                "delay" => parse_ns_range(text()?).map(Fault::Delay),
                "short" => {
                    let t = text()?;
                    parse_short(t)
                        .map(Fault::Short)
                        .map_err(|m| short_backwards(t).unwrap_or(m))
                }
                "stall" => parse_ns_range(text()?).map(Fault::Stall),
                "reorder" => match v.as_integer() {
                    Some(n @ 1..=64) => Ok(Fault::Reorder(n as u32)),
                    _ => Err(
                        "`reorder` takes how many later datagrams overtake this one: 1 to 64"
                            .into(),
                    ),
                },
                "pause" => parse_ns_range(text()?).map(Fault::Pause),
                other => Err(format!("unknown fault `{other}`; {FAULT_HELP}")),
            }
        }
        _ => Err(FAULT_HELP.to_string()),
    }
}

/// The rule's ops the fault can act on, and the ops of its groups it cannot (left out). An op
/// named on its own that the fault cannot act on is an error, as is a rule left with no op.
/// Whether a fault fits is a property of each op alone (every check below is "some op ..." or
/// about the fd kinds), so an op fits when the rule with that op alone would.
fn fitting_ops(
    fault: &Fault,
    ops: OpSet,
    named: OpSet,
    kinds: KindSet,
    any_errno: bool,
) -> Result<(OpSet, OpSet), String> {
    let mut left_out = OpSet::default();
    for op in ops.iter() {
        let alone = OpSet(op.bit());
        if let Err(why) = check_fault_fits(fault, alone, kinds, any_errno) {
            if named.contains(op) {
                return Err(why);
            }
            left_out.insert(op);
        }
    }
    let kept = OpSet(ops.0 & !left_out.0);
    if kept.is_empty() {
        // Nothing left: say why in the words of the whole rule.
        check_fault_fits(fault, ops, kinds, any_errno)?;
        return Err(format!(
            "{} acts on none of the rule's ops",
            fault.kind_name()
        ));
    }
    check_fault_fits(fault, kept, kinds, any_errno)?;
    Ok((kept, left_out))
}

/// Rejects faults the rule's calls could never produce on Linux.
fn check_fault_fits(
    fault: &Fault,
    ops: OpSet,
    kinds: KindSet,
    any_errno: bool,
) -> Result<(), String> {
    let classes: Vec<OpClass> = {
        let mut v: Vec<OpClass> = ops.iter().map(|o| o.class()).collect();
        v.dedup();
        v
    };
    let resolving = classes.contains(&OpClass::Resolve);
    let moves_no_data = classes.iter().find(|c| {
        matches!(
            c,
            OpClass::Opens
                | OpClass::Syncs
                | OpClass::Space
                | OpClass::Entries
                | OpClass::NewFds
                | OpClass::Waits
        )
    });
    if let Some(class) = moves_no_data
        && !matches!(
            fault,
            Fault::Errno(_)
                | Fault::Delay(_)
                | Fault::Crash
                | Fault::PowerLoss
                | Fault::Terminate
                | Fault::Pause(_)
        )
    {
        return Err(format!(
            "{} move no data: they can fail with an errno, be delayed ({{ delay = \"…\" }}) or \
             hit the process (\"crash\", \"terminate\", {{ pause = \"…\" }})",
            class.name()
        ));
    }
    match fault {
        Fault::Resolver(_) if !resolving => Err(
            "EAI_* errors are what name resolution returns: use them with `on = \"resolve\"`"
                .into(),
        ),
        Fault::Resolver(_) => Ok(()),
        Fault::Delay(_) if resolving => Ok(()),
        _ if resolving => Err(
            "name resolution can fail with \"EAI_AGAIN\", \"EAI_NONAME\" or \"EAI_FAIL\", or be \
             delayed ({ delay = \"…\" })"
                .into(),
        ),
        Fault::Errno(e) if !any_errno => {
            for class in classes {
                if !can_return(class, *e) {
                    return Err(format!(
                        "{} cannot return {} on Linux; it can return {} (or set any_errno = true)",
                        class.name(),
                        errno_name(*e),
                        allowed_names(class).join(", ")
                    ));
                }
            }
            for op in ops.iter() {
                if !op_can_return(op, *e) {
                    return Err(format!(
                        "{} cannot return {} on Linux; it can return {} (or set any_errno = true)",
                        op.name(),
                        errno_name(*e),
                        op_allowed_names(op).join(", ")
                    ));
                }
            }
            Ok(())
        }
        Fault::ErrnoAfter { .. } => match ops.iter().find(|o| o.class() != OpClass::Connect) {
            Some(op) => Err(format!(
                "a timeout with `after` is what connect reports after its SYN retries; it does not \
                 apply to {}",
                op.name()
            )),
            None => Ok(()),
        },
        Fault::Errno(_) | Fault::Delay(_) => Ok(()),
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_)
            if kinds.0 & !KindSet::from_name("udp").unwrap().0 != 0 =>
        {
            Err(
                "\"drop\", \"duplicate\" and reorder lose, repeat or reorder datagrams: they \
                 need fd = \"udp\""
                    .into(),
            )
        }
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_) => match ops.iter().find(|o| {
            o.is_multi_message()
                || !o.class().is_data()
                || (*fault != Fault::Drop && o.class() != OpClass::Writes)
        }) {
            Some(op) => Err(format!(
                "{} does not apply to {}: drop applies to single-datagram sends and receives, \
                 duplicate and reorder to sends",
                fault.kind_name(),
                op.name()
            )),
            None => Ok(()),
        },
        // The mmsg calls move several datagrams at once: a connection's stream has no place
        // for them, and the shim passes them through.
        Fault::Toxic(_) => match ops
            .iter()
            .find(|o| !o.class().is_data() || o.is_multi_message())
        {
            Some(op) => Err(format!(
                "toxics (latency, bandwidth, blackhole, limit_data, reset_after) act on a \
                 connection's reads and writes, not on {}",
                op.name()
            )),
            None => Ok(()),
        },
        // A process can be killed or stopped at any call.
        Fault::Crash | Fault::PowerLoss | Fault::Terminate | Fault::Pause(_) => Ok(()),
        Fault::Stall(_) => match ops.iter().find(|o| {
            !matches!(
                o.class(),
                OpClass::Reads | OpClass::Writes | OpClass::Accept | OpClass::Connect
            )
        }) {
            Some(op) => Err(format!(
                "`stall` applies to reads, writes, accept and connect, not to {}",
                op.name()
            )),
            None => Ok(()),
        },
        Fault::Short(_) => match ops.iter().find(|o| !o.class().is_data()) {
            Some(op) => Err(format!(
                "`short` applies to reads and writes only, not to {}",
                op.name()
            )),
            None => Ok(()),
        },
        Fault::Reset => {
            if let Some(op) = ops.iter().find(|o| !o.class().is_data()) {
                return Err(format!(
                    "`reset` applies to reads and writes on TCP, not to {}; use an errno such as \
                     ECONNREFUSED for {}",
                    op.name(),
                    op.name()
                ));
            }
            if !kinds.contains(crate::kind::FdKind::Tcp) {
                return Err("`reset` needs TCP sockets, but `fd` excludes tcp".into());
            }
            Ok(())
        }
    }
}

/// `short = "50..1"`: say that the range is backwards rather than just what a range looks like.
fn short_backwards(text: &str) -> Option<String> {
    let t = text.trim();
    let (body, pct) = match t.strip_suffix('%') {
        Some(b) => (b, "%"),
        None => (t, ""),
    };
    let (a, b) = body.split_once("..")?;
    let (a, b) = (a.trim().trim_end_matches('%'), b.trim());
    let (lo, hi) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
    (lo > hi).then(|| {
        format!(
            "short `{text}`: the start ({lo}) is after the end ({hi}); write the smaller first, \
             e.g. \"{hi}..{lo}{pct}\""
        )
    })
}

/// What a field expects, in the words of the policy reference (docs/reference.md), for type errors.
fn field_expects(key: &str) -> Option<&'static str> {
    Some(match key {
        "on" => "an op name or an array of them, e.g. \"reads\" or [\"recv\", \"send\"]",
        "fd" => "an fd kind or an array of them, e.g. \"tcp\" or [\"tcp\", \"unix\"]",
        "window" => "an array of two durations, e.g. [\"2s\", \"10s\"]",
        "quirks" | "no_quirks" => "an array of quirk names, e.g. [\"no-accept4\"]",
        "probability" | "quirk_probability" => "a number from 0.0 to 1.0",
        "seed" | "after" | "every" | "times" | "min_bytes" => {
            "a whole number from 0 to 18446744073709551615"
        }
        "fault" => "a fault, e.g. \"ECONNRESET\" or { delay = \"10ms\" }",
        "any_errno" => "true or false",
        "signal" => "a signal name, e.g. \"SIGUSR1\"",
        "platform" => "a platform name, e.g. \"macos\"",
        "name" => "a string",
        _ => return None,
    })
}

/// The key whose value starts at `offset`, from the text before it on its line (`key = `).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line = text[..offset].rsplit('\n').next()?;
    let (before, _) = line.rsplit_once('=')?;
    let key = before.rsplit(['{', ',']).next()?.trim();
    let key = key.rsplit('.').next()?.trim().trim_matches('"');
    (!key.is_empty() && !key.contains(' ')).then(|| key.to_string())
}

/// Turns serde's wording (`invalid type: integer `5` as i128, expected u64`) into what the user
/// wrote and what the field expects, naming the field.
fn humanize(text: &str, offset: usize, message: &str) -> String {
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    let Some((found, expected)) = body.and_then(|b| b.rsplit_once(", expected ")) else {
        return message.to_string();
    };
    let key = key_at(text, offset);
    let expected = match key.as_deref().and_then(field_expects) {
        Some(e) => e.to_string(),
        None => match expected {
            "u64" | "i64" | "u32" => "a whole number from 0 to 18446744073709551615".to_string(),
            "a sequence" => "an array".to_string(),
            "a boolean" => "true or false".to_string(),
            "any value" => "a value".to_string(),
            other => other.to_string(),
        },
    };
    let found = found
        .replace(" as i128", "")
        .replace(" as u128", "")
        .replace("floating point", "number")
        .replace("map", "table")
        .replace("sequence", "array")
        .replace('`', "");
    let found = if found.starts_with("integer ") && found.len() > 26 {
        format!("{found} (too large)")
    } else if found.starts_with("integer -") {
        format!("{found} (negative)")
    } else {
        found
    };
    match key {
        Some(k) => format!("`{k}` expects {expected}, not {found}"),
        None => format!("expected {expected}, not {found}"),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    fn err(text: &str) -> PolicyError {
        parse_policy(text, "p.toml").unwrap_err()
    }

    #[test]
    fn full_rule_parses() {
        let p = parse_policy(
            r#"
seed = 7
[[rules]]
name = "reset-redis"
on = ["recv", "read"]
fd = "tcp"
peer = "127.0.0.1:6379"
probability = 0.05
after = 10
every = 3
times = 2
window = ["2s", "10s"]
fault = "ECONNRESET"

[[rules]]
on = "writes"
fault = { short = "1..50%" }
"#,
            "p.toml",
        )
        .unwrap();
        assert_eq!(p.seed, 7);
        assert_eq!(p.rules.len(), 2);
        let r = &p.rules[0];
        assert!(r.ops.contains(Op::Recv) && !r.ops.contains(Op::Send));
        assert_eq!(r.fault, Fault::Errno(libc::ECONNRESET));
        assert_eq!(r.window, Some((2_000_000_000, 10_000_000_000)));
        assert_eq!(p.rules[1].name, "rule-2");
        assert!(p.rules[1].ops.contains(Op::Sendmsg));
    }

    #[test]
    fn errors_point_at_the_offending_value() {
        let e = err("[[rules]]\non = [\"recieve\"]\nfault = \"EINTR\"\n");
        assert_eq!((e.line, e.col), (2, 7), "{e}");
        assert!(e.message.contains("unknown op `recieve`"), "{e}");

        let e = err("[[rules]]\non = \"recv\"\nfault = \"ENOENT\"\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("reads cannot return ENOENT"), "{e}");

        let e = err("[[rules]]\non = \"recv\"\nfault = \"EBOGUS\"\n");
        assert!(e.message.contains("unknown errno `EBOGUS`"), "{e}");

        let e = err("[[rules]]\non = \"recv\"\nfd = \"socks\"\nfault = \"EINTR\"\n");
        assert!(e.message.contains("unknown fd kind `socks`"), "{e}");

        let e = err("[[rules]]\non = \"recv\"\nfault = \"EINTR\"\nprobabilty = 1\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("unknown field `probabilty`"), "{e}");

        let e = err("seed = 1\n[[rules\n");
        assert_eq!(e.line, 2, "{e}");

        let e = err("[[rules]]\non = \"connect\"\nfault = { short = \"1..5\" }\n");
        assert!(e.message.contains("reads and writes only"), "{e}");

        let e = err("[[rules]]\non = \"close\"\nfault = { stall = \"1ms\" }\n");
        assert!(e.message.contains("not to close"), "{e}");

        let e = err("[[rules]]\non = \"recv\"\nprobability = 1.5\nfault = \"EINTR\"\n");
        assert!(e.message.contains("outside"), "{e}");
        assert!(e.to_string().starts_with("p.toml:3:"), "{e}");
    }

    #[test]
    fn durability_crash_defaults_to_power_loss_and_names_the_bad_one() {
        use crate::durability::Crash;
        let p = parse_policy("[durability]\npath = \"/d/*\"\n", "p").unwrap();
        assert_eq!(p.durability.unwrap().crash, Crash::PowerLoss);
        let p = parse_policy("[durability]\npath = \"/d/*\"\ncrash = \"process\"\n", "p").unwrap();
        assert_eq!(p.durability.unwrap().crash, Crash::Process);
        let e = err("[durability]\npath = \"/d/*\"\ncrash = \"reboot\"\n");
        assert_eq!((e.line, e.col), (3, 9), "{e}");
        assert!(e.message.contains("crash `reboot` is not one of"), "{e}");
    }

    #[test]
    fn durability_model_defaults_to_ext4_and_names_the_bad_one() {
        use crate::durability::Model;
        let p = parse_policy("[durability]\npath = \"/d/*\"\n", "p").unwrap();
        assert_eq!(p.durability.unwrap().model, Model::Ext4);
        let p = parse_policy("[durability]\npath = \"/d/*\"\nmodel = \"posix\"\n", "p").unwrap();
        assert_eq!(p.durability.unwrap().model, Model::Posix);
        let e = err("[durability]\npath = \"/d/*\"\nmodel = \"xfs\"\n");
        assert_eq!((e.line, e.col), (3, 9), "{e}");
        assert!(e.message.contains("`xfs` is not one of"), "{e}");
    }

    #[test]
    fn power_loss_is_a_process_fault_at_any_call() {
        let p = parse_policy(
            "[[rules]]\non = \"fsync\"\nfd = \"file\"\nfault = \"power-loss\"\n",
            "p",
        )
        .unwrap();
        assert_eq!(p.rules[0].fault, crate::fault::Fault::PowerLoss);
        assert!(p.rules[0].fault.is_process_fault());
        assert_eq!(p.rules[0].fault.kind_name(), "power-loss");
    }

    #[test]
    fn stalls_and_eagain_parse() {
        let p = parse_policy(
            "[[rules]]\non = [\"reads\", \"accept\", \"connect\"]\nfault = { stall = \"5ms..200ms\" }\n\n[[rules]]\non = \"recv\"\nfault = \"EAGAIN\"\n",
            "p",
        )
        .unwrap();
        assert_eq!(
            p.rules[0].fault,
            Fault::Stall(crate::fault::NsRange {
                lo: 5_000_000,
                hi: 200_000_000
            })
        );
        assert_eq!(p.rules[1].fault, Fault::Errno(libc::EAGAIN));
    }

    #[test]
    fn platform_and_quirk_fields() {
        let p = parse_policy(
            "platform = \"macos\"\nno_quirks = [\"getpeername-einval\"]\nquirks = [\"no-accept4\"]\n",
            "p",
        )
        .unwrap();
        assert!(p.quirks.has(crate::quirk::Quirk::SetsockoptAfterShutdown));
        assert!(!p.quirks.has(crate::quirk::Quirk::GetpeernameEinval));
        assert!(p.quirks.has(crate::quirk::Quirk::NoAccept4));
        let e = err("platform = \"darwin\"\n");
        assert_eq!((e.line, e.col), (1, 12), "{e}");
        assert!(e.message.contains("expected one of macos"), "{e}");
        let e = err("quirks = [\"nope\"]\n");
        assert!(e.message.contains("unknown quirk `nope`"), "{e}");
    }

    #[test]
    fn file_calls_take_their_own_errnos_and_default_to_files() {
        let rule = |text: &str| parse_policy(&format!("[[rules]]\n{text}\n"), "p");
        let p = rule("on = \"fsync\"\nfault = \"EIO\"").unwrap();
        assert_eq!(p.rules[0].kinds, KindSet(crate::kind::FdKind::File.bit()));
        assert!(rule("on = \"opens\"\npath = \"/data/*\"\nfault = \"EMFILE\"").is_ok());
        assert!(rule("on = \"rename\"\nfault = \"EXDEV\"").is_ok());
        // What each call cannot return is refused, with what it can.
        let e = rule("on = \"fsync\"\nfault = \"ECONNRESET\"").unwrap_err();
        assert!(
            e.message.contains("syncs cannot return ECONNRESET"),
            "{}",
            e.message
        );
        assert!(e.message.contains("EIO"), "{}", e.message);
        let e = rule("on = \"socket\"\nfault = \"ENOENT\"").unwrap_err();
        assert!(
            e.message.contains("newfds cannot return ENOENT"),
            "{}",
            e.message
        );
        // A call that moves no data cannot be cut short or stalled.
        let e = rule("on = \"open\"\nfault = { short = \"50%\" }").unwrap_err();
        assert!(e.message.contains("opens move no data"), "{}", e.message);
        assert!(rule("on = \"fsync\"\nfault = \"crash\"").is_ok());
        // pwrite is a write: ENOSPC, EFBIG, EDQUOT are its own.
        assert!(rule("on = \"pwrite\"\nfault = \"EDQUOT\"").is_ok());
        // dup makes no new open file: out of fds it says EMFILE, never ENFILE.
        assert!(rule("on = \"dup\"\nfd = \"any\"\nfault = \"EMFILE\"").is_ok());
        let e = rule("on = \"dup\"\nfd = \"any\"\nfault = \"ENFILE\"").unwrap_err();
        assert!(
            e.message.contains("dup cannot return ENFILE"),
            "{}",
            e.message
        );
        // Only rename crosses devices.
        assert!(rule("on = \"rename\"\nfault = \"EXDEV\"").is_ok());
        let e = rule("on = \"unlink\"\nfault = \"EXDEV\"").unwrap_err();
        assert!(
            e.message.contains("unlink cannot return EXDEV"),
            "{}",
            e.message
        );
        // The group means its ops that can: rename.
        let p = rule("on = \"entries\"\nfault = \"EXDEV\"").unwrap();
        let r = &p.rules[0];
        assert_eq!(r.ops, OpSet::from_name("rename").unwrap());
        assert_eq!(
            r.left_out.iter().map(|o| o.name()).collect::<Vec<_>>(),
            ["unlink", "mkdir"]
        );
    }

    #[test]
    fn a_group_keeps_the_ops_the_fault_acts_on_and_a_named_op_it_cannot_is_an_error() {
        let rule = |text: &str| parse_policy(&format!("[[rules]]\n{text}\n"), "p");
        // drop loses single datagrams: sendmmsg is left out of "writes", not a reason to refuse.
        let p = rule("on = \"writes\"\nfd = \"udp\"\nfault = \"drop\"").unwrap();
        let r = &p.rules[0];
        assert!(r.ops.contains(Op::Sendto) && !r.ops.contains(Op::Sendmmsg));
        assert_eq!(r.left_out, OpSet(Op::Sendmmsg.bit()));
        // Toxics act on a connection's single reads and writes: the mmsg calls are left out.
        let p = rule("on = \"reads\"\nfault = { latency = \"5ms\" }").unwrap();
        assert_eq!(p.rules[0].left_out, OpSet(Op::Recvmmsg.bit()));
        // Where everything applies, nothing is left out.
        let p = rule("on = \"reads\"\nfault = \"ECONNRESET\"").unwrap();
        assert!(p.rules[0].left_out.is_empty());
        // Named on its own, an op the fault cannot act on is an error, with where and why.
        for (text, says) in [
            (
                "on = [\"sendto\", \"sendmmsg\"]\nfd = \"udp\"\nfault = \"drop\"",
                "drop does not apply to sendmmsg",
            ),
            (
                "on = \"recvmmsg\"\nfault = { bandwidth = \"1KB/s\" }",
                "not on recvmmsg",
            ),
            (
                "on = [\"reads\", \"connect\"]\nfault = { short = \"50%\" }",
                "not to connect",
            ),
        ] {
            let e = rule(text).unwrap_err();
            assert!(e.message.contains(says), "{text}: {}", e.message);
            // The fault is the text's last line, after `[[rules]]`.
            assert_eq!(e.line, text.lines().count() + 1, "{text}: the fault's line");
        }
        // A group none of whose ops the fault acts on is refused as before.
        let e = rule("on = \"writes\"\nfd = \"tcp\"\nfault = \"drop\"").unwrap_err();
        assert!(e.message.contains("need fd = \"udp\""), "{}", e.message);
        let e = rule("on = \"opens\"\nfault = { short = \"50%\" }").unwrap_err();
        assert!(e.message.contains("opens move no data"), "{}", e.message);
    }

    #[test]
    fn disks_need_an_absolute_glob_and_a_size() {
        let p = parse_policy(
            "[[disk]]\nname = \"data\"\npath = \"/srv/data/*\"\ncapacity = \"64MB\"\n",
            "p",
        )
        .unwrap();
        assert_eq!(p.disks[0].capacity, 64 << 20);
        assert_eq!(p.disks[0].name, "data");
        for (text, expect) in [
            ("path = \"data/*\"\ncapacity = \"1M\"", "must be absolute"),
            (
                "path = \"/d/*\"\ncapacity = \"lots\"",
                "capacity: `lots` is not a size",
            ),
            ("path = \"/d/*\"", "missing field `capacity`"),
        ] {
            let e = parse_policy(&format!("[[disk]]\n{text}\n"), "p").unwrap_err();
            assert!(e.message.contains(expect), "{text}: {}", e.message);
        }
        let twice = "[[disk]]\nname = \"a\"\npath = \"/x/*\"\ncapacity = \"1M\"\n\
                     [[disk]]\nname = \"a\"\npath = \"/y/*\"\ncapacity = \"1M\"\n";
        assert!(
            parse_policy(twice, "p")
                .unwrap_err()
                .message
                .contains("duplicate disk")
        );
    }

    #[test]
    fn any_errno_lifts_the_realism_check() {
        let p = parse_policy(
            "[[rules]]\non = \"recv\"\nfault = \"ENOENT\"\nany_errno = true\n",
            "p",
        );
        assert!(p.is_ok());
    }

    #[test]
    fn type_errors_say_what_the_field_expects_not_serde_internals() {
        for (text, at, expect) in [
            (
                "[[rules]]\non = 5\nfault = \"EINTR\"\n",
                (2, 6),
                "`on` expects an op name or an array of them, e.g. \"reads\" or [\"recv\", \"send\"], \
                 not integer 5",
            ),
            (
                "[[rules]]\non = [5]\nfault = \"EINTR\"\n",
                (2, 7),
                "`on` expects an op name",
            ),
            (
                "[[rules]]\non = \"reads\"\nfd = 3\nfault = \"EINTR\"\n",
                (3, 6),
                "`fd` expects an fd kind or an array of them",
            ),
            (
                "[[rules]]\non = \"reads\"\nprobability = \"x\"\nfault = \"EINTR\"\n",
                (3, 15),
                "`probability` expects a number from 0.0 to 1.0, not string \"x\"",
            ),
            (
                "quirk_probability = \"x\"\n",
                (1, 21),
                "`quirk_probability` expects a number from 0.0 to 1.0",
            ),
            (
                "seed = 99999999999999999999\n",
                (1, 8),
                "`seed` expects a whole number from 0 to 18446744073709551615, not integer \
                 99999999999999999999 (too large)",
            ),
            ("seed = -1\n", (1, 8), "not integer -1 (negative)"),
            (
                "[[rules]]\non = \"reads\"\ntimes = \"x\"\nfault = \"EINTR\"\n",
                (3, 9),
                "`times` expects a whole number",
            ),
            (
                "[[rules]]\non = \"reads\"\nwindow = \"2s\"\nfault = \"EINTR\"\n",
                (3, 10),
                "`window` expects an array of two durations",
            ),
            (
                "quirks = \"no-accept4\"\n",
                (1, 10),
                "`quirks` expects an array of quirk names",
            ),
            (
                "[[rules]]\non = \"reads\"\nsignal = 5\nfault = \"EINTR\"\n",
                (3, 10),
                "`signal` expects a signal name",
            ),
        ] {
            let e = err(text);
            assert_eq!((e.line, e.col), at, "{text}: {e}");
            assert!(e.message.contains(expect), "{text}: {e}");
            for internal in [
                "untagged enum",
                "OneOrMany",
                "Number",
                "as i128",
                "u64",
                "a sequence",
                "invalid type",
                "any value",
            ] {
                assert!(!e.message.contains(internal), "{text}: {e}");
            }
        }
    }

    #[test]
    fn a_huge_probability_is_out_of_range_not_a_type_error() {
        let e = err(
            "[[rules]]\non = \"reads\"\nprobability = 99999999999999999999\nfault = \"EINTR\"\n",
        );
        assert_eq!((e.line, e.col), (3, 15), "{e}");
        assert!(e.message.contains("is outside 0.0..=1.0"), "{e}");
    }

    #[test]
    fn unknown_names_in_an_array_point_at_the_name() {
        let e = err("[[rules]]\non = [\"recv\", \"recieve\"]\nfault = \"EINTR\"\n");
        assert_eq!((e.line, e.col), (2, 15), "{e}");
        assert!(e.message.contains("unknown op `recieve`"), "{e}");
        let e = err("[[rules]]\non = \"recieve\"\nfault = \"EINTR\"\n");
        assert_eq!((e.line, e.col), (2, 6), "{e}");
        let e = err("[[rules]]\non = \"reads\"\nfd = [\"tcp\", \"sokc\"]\nfault = \"EINTR\"\n");
        assert_eq!((e.line, e.col), (3, 14), "{e}");
        assert!(e.message.contains("unknown fd kind `sokc`"), "{e}");
    }

    #[test]
    fn a_backwards_short_range_says_start_is_after_end() {
        let e = err("[[rules]]\non = \"reads\"\nfault = { short = \"50..1\" }\n");
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(
            e.message,
            "short `50..1`: the start (50) is after the end (1); write the smaller first, e.g. \"1..50\""
        );
        let e = err("[[rules]]\non = \"reads\"\nfault = { short = \"50..10%\" }\n");
        assert!(
            e.message.contains("the start (50) is after the end (10)"),
            "{e}"
        );
        assert!(e.message.contains("\"10..50%\""), "{e}");
        // Other bad shorts keep the general message.
        let e = err("[[rules]]\non = \"reads\"\nfault = { short = \"0..5\" }\n");
        assert!(!e.message.contains("after the end"), "{e}");
    }
}
