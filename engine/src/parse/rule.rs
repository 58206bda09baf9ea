//! A `[[rules]]` entry -> `Rule`: which calls it matches, when it fires and what it does.

use super::error::{ErrAt, PolicyError};
use super::fault::parse_fault;
use super::fits::fitting_ops;
use super::raw::{Number, RawRule};
use super::units::parse_window;
use crate::addr::AddrPattern;
use crate::fault::Fault;
use crate::glob::Glob;
use crate::kind::{KIND_NAMES_HELP, KindSet};
use crate::op::{OP_NAMES_HELP, OpClass, OpSet};
use crate::policy::Rule;
use toml::Spanned;

pub(super) fn build_rule(raw: RawRule, index: usize, err_at: ErrAt) -> Result<Rule, PolicyError> {
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
        .map(|w| parse_window(w.get_ref()).map_err(|m| err_at(w.span(), m.to_string())))
        .transpose()?;

    let fault_span = raw.fault.span();
    let fault =
        parse_fault(raw.fault.get_ref()).map_err(|m| err_at(fault_span.clone(), m.to_string()))?;
    let (ops, left_out) = fitting_ops(&fault, ops, named, kinds, raw.any_errno)
        .map_err(|m| err_at(fault_span, m.to_string()))?;
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

/// A number in 0.0..=1.0 (an integer 0 or 1 is fine too).
pub(super) fn probability(
    p: &Spanned<Number>,
    field: &str,
    err_at: ErrAt,
) -> Result<f64, PolicyError> {
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
