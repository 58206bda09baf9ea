//! `[[process]]`, `[attrition]` and `[[nemesis]]` as TOML, checked with errors that point at the
//! value (called by `parse_policy`, which owns the file's positions).

use super::error::{ErrAt, PolicyError};
use super::raw::{Number, RawAttrition, RawNemesis, RawPartition, RawPartitions, RawProcess};
use super::units::{parse_bytes, parse_duration, parse_ns_range, parse_percent, parse_window};
use crate::fault::NsRange;
use crate::system::attrition::{Attrition, Kind, NemesisEvent};
use crate::system::partition::{FixedPartition, Partitions, Shape};
use crate::system::template;
use crate::system::{Limits, ProcessSpec, Ready, Restart, System};
use toml::Spanned;

/// The system sections of a policy. `rule_names`: the policy's rules, which `rules` may list.
pub(super) fn build(
    processes: Vec<Spanned<RawProcess>>,
    attrition: Option<Spanned<RawAttrition>>,
    nemesis: Vec<Spanned<RawNemesis>>,
    partition: Vec<Spanned<RawPartition>>,
    partitions: Option<Spanned<RawPartitions>>,
    rule_names: &[String],
    err_at: ErrAt,
) -> Result<System, PolicyError> {
    let mut system = System::default();
    for raw in processes {
        let spec = build_process(raw, rule_names, err_at)?;
        if system.process(&spec.name).is_some() {
            return Err(err_at(
                0..0,
                format!("two [[process]] named `{}`", spec.name),
            ));
        }
        system.processes.push(spec);
    }
    let replicas = system.replica_names();
    if let Some(a) = attrition {
        if system.processes.is_empty() {
            return Err(err_at(
                a.span(),
                "[attrition] needs [[process]] entries to act on".into(),
            ));
        }
        system.attrition = Some(build_attrition(a.into_inner(), &system, err_at)?);
    }
    for (i, raw) in nemesis.into_iter().enumerate() {
        let n = raw.into_inner();
        if !replicas.contains(n.process.get_ref()) {
            return Err(err_at(
                n.process.span(),
                format!(
                    "no process replica named `{}`; expected one of {}",
                    n.process.get_ref(),
                    replicas.join(", ")
                ),
            ));
        }
        let kind = Kind::from_name(n.kind.get_ref()).ok_or_else(|| {
            err_at(
                n.kind.span(),
                format!(
                    "unknown kind `{}`; expected graceful, crash, wipe, pause or power-loss",
                    n.kind.get_ref()
                ),
            )
        })?;
        let dur = |v: &Option<Spanned<String>>| -> Result<u64, PolicyError> {
            v.as_ref().map_or(Ok(0), |s| {
                parse_duration(s.get_ref()).map_err(|m| err_at(s.span(), m.to_string()))
            })
        };
        system.nemesis.push(NemesisEvent {
            at_ns: parse_duration(n.at.get_ref())
                .map_err(|m| err_at(n.at.span(), m.to_string()))?,
            target: n.process.into_inner(),
            kind,
            grace_ns: dur(&n.grace)?,
            recovery_ns: dur(&n.recovery)?,
            paused_ns: dur(&n.paused)?,
            key: format!("nemesis#{i}"),
        });
    }
    system.nemesis.sort_by_key(|e| e.at_ns);
    for raw in partition {
        let span = raw.span();
        system
            .partition
            .push(build_partition(raw.into_inner(), span, &system, err_at)?);
    }
    if let Some(p) = partitions {
        system.partitions = Some(build_partitions(p, &system, err_at)?);
    }
    Ok(system)
}

/// A name a partition may cut: a replica (`kv#1`), a process (all its replicas), or `workload`.
fn partition_member(
    name: &Spanned<String>,
    system: &System,
    err_at: ErrAt,
) -> Result<(), PolicyError> {
    let n = name.get_ref();
    let replicas = system.replica_names();
    if n == "workload" || system.process(n).is_some() || replicas.contains(n) {
        return Ok(());
    }
    Err(err_at(
        name.span(),
        format!(
            "no process or replica named `{n}`; expected one of {}, or \"workload\"",
            replicas.join(", ")
        ),
    ))
}

fn build_partition(
    raw: RawPartition,
    span: std::ops::Range<usize>,
    system: &System,
    err_at: ErrAt,
) -> Result<FixedPartition, PolicyError> {
    if system.processes.is_empty() {
        return Err(err_at(
            span,
            "[[partition]] cuts between named processes: it needs [[process]] entries".into(),
        ));
    }
    let mut pairs = Vec::new();
    if let Some(cut) = &raw.cut {
        for pair in cut.get_ref() {
            let [a, b] = pair.as_slice() else {
                return Err(err_at(
                    cut.span(),
                    "`cut` takes directed pairs, e.g. [[\"kv#0\", \"kv#1\"]] (traffic from kv#0 to kv#1)"
                        .into(),
                ));
            };
            partition_member(a, system, err_at)?;
            partition_member(b, system, err_at)?;
            pairs.push((a.get_ref().clone(), b.get_ref().clone()));
        }
    }
    let Some(between) = &raw.between else {
        if raw.cut.is_none() {
            return Err(err_at(
                span,
                "[[partition]] needs `between` (groups) or `cut` (directed pairs)".into(),
            ));
        }
        let window = window_or_always(&raw.window, err_at)?;
        return Ok(FixedPartition {
            between: Vec::new(),
            pairs,
            window,
            one_way: raw.one_way,
        });
    };
    let groups = between.get_ref();
    if groups.len() < 2 || groups.iter().any(|g| g.is_empty()) {
        return Err(err_at(
            between.span(),
            "`between` takes two or more non-empty groups, e.g. [[\"kv#0\"], [\"kv#1\", \"kv#2\"]]"
                .into(),
        ));
    }
    // Each replica in one group only, once process names are expanded (`kv` is every `kv#N`).
    let mut seen: Vec<String> = Vec::new();
    for name in groups.iter().flatten() {
        partition_member(name, system, err_at)?;
        for replica in system.expand_member(name.get_ref()) {
            if seen.contains(&replica) {
                return Err(err_at(
                    name.span(),
                    format!("`{replica}` is in more than one group of `between`"),
                ));
            }
            seen.push(replica);
        }
    }
    let window = window_or_always(&raw.window, err_at)?;
    Ok(FixedPartition {
        between: groups
            .iter()
            .map(|g| g.iter().map(|n| n.get_ref().clone()).collect())
            .collect(),
        pairs,
        window,
        one_way: raw.one_way,
    })
}

fn build_partitions(
    raw: Spanned<RawPartitions>,
    system: &System,
    err_at: ErrAt,
) -> Result<Partitions, PolicyError> {
    let span = raw.span();
    let raw = raw.into_inner();
    if system.processes.is_empty() {
        return Err(err_at(
            span,
            "[partitions] cuts between named processes: it needs [[process]] entries".into(),
        ));
    }
    let processes = match &raw.processes {
        None => system.processes.iter().map(|p| p.name.clone()).collect(),
        Some(list) => {
            for p in list.get_ref() {
                partition_member(p, system, err_at)?;
            }
            list.get_ref().iter().map(|p| p.get_ref().clone()).collect()
        }
    };
    let shapes = match &raw.shapes {
        None => vec![Shape::Halves],
        Some(list) => {
            let mut v = Vec::new();
            for s in list.get_ref() {
                v.push(Shape::from_name(s.get_ref()).ok_or_else(|| {
                    err_at(
                        s.span(),
                        format!(
                            "unknown shape `{}`; expected halves, one, majorities-ring or bridge",
                            s.get_ref()
                        ),
                    )
                })?);
            }
            if v.is_empty() {
                return Err(err_at(
                    list.span(),
                    "`shapes` is empty; name at least one".into(),
                ));
            }
            v
        }
    };
    let range = |v: &Option<Spanned<String>>, default: &str| range_or(v, default, err_at);
    let window = window_or_always(&raw.window, err_at)?;
    Ok(Partitions {
        processes,
        shapes,
        interval: range(&raw.interval, "2s..5s")?,
        duration: range(&raw.duration, "1s..5s")?,
        window,
    })
}

fn build_process(
    raw: Spanned<RawProcess>,
    rule_names: &[String],
    err_at: ErrAt,
) -> Result<ProcessSpec, PolicyError> {
    let raw = raw.into_inner();
    let name = raw.name.get_ref();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(err_at(
            raw.name.span(),
            format!(
                "process name `{name}`: expected letters, digits, `-`, `_` or `.` (`#` numbers replicas)"
            ),
        ));
    }
    if raw.cmd.get_ref().is_empty() {
        return Err(err_at(
            raw.cmd.span(),
            "`cmd` is empty; expected the program and its arguments".into(),
        ));
    }
    let replicas = match &raw.replicas {
        Some(r) if !(1..=64).contains(r.get_ref()) => {
            return Err(err_at(r.span(), "`replicas` must be 1 to 64".into()));
        }
        Some(r) => *r.get_ref(),
        None => 1,
    };
    if let Some(p) = &raw.port
        && (*p.get_ref() == 0 || u32::from(*p.get_ref()) + replicas - 1 > 65535)
    {
        return Err(err_at(
            p.span(),
            format!(
                "`port` {} with {replicas} replica(s) leaves 1..65535",
                p.get_ref()
            ),
        ));
    }
    let has_data = raw.data.is_some();
    let mut cmd_names: Vec<&str> = vec!["i", "port", "run", "peers"];
    if has_data {
        cmd_names.push("data");
    }
    for arg in raw.cmd.get_ref() {
        template::check(arg, &cmd_names).map_err(|m| err_at(raw.cmd.span(), m))?;
    }
    if let Some(d) = &raw.data {
        template::check(d.get_ref(), &["i", "run", "port"]).map_err(|m| err_at(d.span(), m))?;
    }
    let ready = match &raw.ready {
        None => None,
        Some(r) => {
            let text = r.get_ref();
            let bad = || {
                err_at(
                    r.span(),
                    format!(
                        "ready `{text}`: expected \"tcp:{{port}}\", \"tcp:HOST:PORT\", \"unix:PATH\", \
                         \"log:REGEX\" or \"cmd:SHELL COMMAND\""
                    ),
                )
            };
            let (scheme, rest) = text.split_once(':').ok_or_else(bad)?;
            if rest.is_empty() {
                return Err(bad());
            }
            template::check(rest, &cmd_names).map_err(|m| err_at(r.span(), m))?;
            Some(match scheme {
                "tcp" => Ready::Tcp(rest.to_string()),
                "unix" => Ready::Unix(rest.to_string()),
                "log" => Ready::Log(rest.to_string()),
                "cmd" => Ready::Cmd(rest.to_string()),
                _ => return Err(bad()),
            })
        }
    };
    let ready_timeout_ns = match &raw.ready_timeout {
        Some(t) => parse_duration(t.get_ref()).map_err(|m| err_at(t.span(), m.to_string()))?,
        None => 30_000_000_000,
    };
    let env: Vec<(String, String)> = raw
        .env
        .as_ref()
        .map(|e| {
            e.get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(e) = &raw.env {
        for (k, v) in e.get_ref() {
            if k.is_empty() || k.contains('=') || k.starts_with("CHAOS_") || k == "LD_PRELOAD" {
                return Err(err_at(
                    e.span(),
                    format!(
                        "env `{k}`: a variable name without `=`, and not CHAOS_* or LD_PRELOAD (chaos-ctl sets those)"
                    ),
                ));
            }
            template::check(v, &cmd_names).map_err(|m| err_at(e.span(), m))?;
        }
    }
    let stop_signal = match &raw.stop_signal {
        Some(s) => crate::signal::parse_signal(s.get_ref()).map_err(|m| err_at(s.span(), m))?,
        None => libc::SIGTERM,
    };
    let mut rules = Vec::new();
    if let Some(list) = &raw.rules {
        for r in list.get_ref() {
            if !rule_names.contains(r.get_ref()) {
                return Err(err_at(
                    r.span(),
                    format!(
                        "no rule named `{}`; `rules` lists [[rules]] by name ({})",
                        r.get_ref(),
                        if rule_names.is_empty() {
                            "there are none".to_string()
                        } else {
                            rule_names.join(", ")
                        }
                    ),
                ));
            }
            rules.push(r.get_ref().clone());
        }
    }
    let restart = match raw
        .restart
        .as_ref()
        .map(|r| (r.get_ref().as_str(), r.span()))
    {
        None | Some(("on-failure", _)) => Restart::OnFailure,
        Some(("always", _)) => Restart::Always,
        Some(("never", _)) => Restart::Never,
        Some((other, span)) => {
            return Err(err_at(
                span,
                format!("restart `{other}`: expected \"always\", \"on-failure\" or \"never\""),
            ));
        }
    };
    let limits = match &raw.limits {
        None => Limits::default(),
        Some(l) => {
            let l = l.get_ref();
            Limits {
                nofile: l.nofile,
                memory: l
                    .memory
                    .as_ref()
                    .map(|m| parse_bytes(m.get_ref()).map_err(|e| err_at(m.span(), e.to_string())))
                    .transpose()?,
                cpu_percent: l
                    .cpu
                    .as_ref()
                    .map(|c| {
                        parse_percent(c.get_ref()).map_err(|e| err_at(c.span(), e.to_string()))
                    })
                    .transpose()?,
            }
        }
    };
    if let Some(u) = &raw.user
        && (u.get_ref().is_empty() || u.get_ref().contains(['/', ':', '\0']))
    {
        return Err(err_at(
            u.span(),
            format!("user `{}`: expected a user name", u.get_ref()),
        ));
    }
    if let Some(m) = &raw.machine
        && m.get_ref().trim().is_empty()
    {
        return Err(err_at(
            m.span(),
            "machine: expected a name shared by the processes of one machine, e.g. \"m1\"".into(),
        ));
    }
    Ok(ProcessSpec {
        user: raw.user.map(|u| u.into_inner()),
        machine: raw.machine.map(|m| m.into_inner()),
        name: raw.name.into_inner(),
        cmd: raw.cmd.into_inner(),
        replicas,
        port: raw.port.map(|p| p.into_inner()),
        data: raw.data.map(|d| d.into_inner()),
        ready,
        ready_timeout_ns,
        env,
        stop_signal,
        rules,
        restart,
        limits,
    })
}

fn build_attrition(
    raw: RawAttrition,
    system: &System,
    err_at: ErrAt,
) -> Result<Attrition, PolicyError> {
    let replicas = system.replica_names();
    let processes = match &raw.processes {
        None => system.processes.iter().map(|p| p.name.clone()).collect(),
        Some(list) => {
            let mut v = Vec::new();
            for p in list.get_ref() {
                let name = p.get_ref();
                if system.process(name).is_none() && !replicas.contains(name) {
                    return Err(err_at(
                        p.span(),
                        format!(
                            "no process or replica named `{name}`; expected one of {}",
                            replicas.join(", ")
                        ),
                    ));
                }
                v.push(name.clone());
            }
            v
        }
    };
    let weight =
        |w: &Option<Spanned<Number>>, field: &str, default: f64| -> Result<f64, PolicyError> {
            match w {
                None => Ok(default),
                Some(s) => {
                    let v = match s.get_ref() {
                        Number::Int(i) => *i as f64,
                        Number::Float(f) => *f,
                    };
                    if v < 0.0 || !v.is_finite() {
                        return Err(err_at(
                            s.span(),
                            format!("`{field}` is a weight: a number >= 0"),
                        ));
                    }
                    Ok(v)
                }
            }
        };
    let weights = [
        weight(&raw.graceful, "graceful", 0.3)?,
        weight(&raw.crash, "crash", 0.5)?,
        weight(&raw.wipe, "wipe", 0.2)?,
        weight(&raw.pause, "pause", 0.0)?,
        weight(&raw.power_loss, "power-loss", 0.0)?,
    ];
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err(err_at(
            0..0,
            "[attrition]: graceful, crash, wipe, pause and power-loss are all 0; give at least one a weight"
                .into(),
        ));
    }
    let range = |v: &Option<Spanned<String>>, default: &str| range_or(v, default, err_at);
    let window = window_or_always(&raw.window, err_at)?;
    Ok(Attrition {
        processes,
        max_dead: raw.max_dead.unwrap_or(1),
        weights,
        interval: range(&raw.interval, "1s..5s")?,
        recovery: range(&raw.recovery, "1s..10s")?,
        grace: range(&raw.grace, "2s..5s")?,
        paused: range(&raw.paused, "500ms..3s")?,
        window,
    })
}

/// A duration range field, or its default.
fn range_or(
    v: &Option<Spanned<String>>,
    default: &str,
    err_at: ErrAt,
) -> Result<NsRange, PolicyError> {
    match v {
        None => Ok(parse_ns_range(default).expect("default range")),
        Some(s) => parse_ns_range(s.get_ref()).map_err(|m| err_at(s.span(), m.to_string())),
    }
}

/// A `window` field, or always.
fn window_or_always(
    w: &Option<Spanned<Vec<String>>>,
    err_at: ErrAt,
) -> Result<(u64, u64), PolicyError> {
    match w {
        None => Ok((0, u64::MAX)),
        Some(w) => parse_window(w.get_ref()).map_err(|m| err_at(w.span(), m.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentages() {
        assert_eq!(parse_bytes("256M"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("0").is_err());
        assert_eq!(parse_percent("50%"), Ok(50));
        assert!(parse_percent("50").is_err());
    }

    const KV: &str = "[[process]]\nname = \"kv\"\ncmd = [\"sleep\", \"9\"]\n";

    #[test]
    fn power_loss_is_an_attrition_weight_and_a_nemesis_kind() {
        let p = crate::parse::parse_policy(
            &format!(
                "{KV}[attrition]\ngraceful = 0\ncrash = 0\nwipe = 0\npower-loss = 0.5\n\
                 [[nemesis]]\nat = \"1s\"\nprocess = \"kv\"\nkind = \"power-loss\"\nrecovery = \"2s\"\n"
            ),
            "t",
        )
        .unwrap();
        assert_eq!(
            p.system.attrition.unwrap().weights,
            [0.0, 0.0, 0.0, 0.0, 0.5]
        );
        assert_eq!(p.system.nemesis[0].kind, Kind::PowerLoss);
        assert_eq!(p.system.nemesis[0].recovery_ns, 2_000_000_000);
        let e = crate::parse::parse_policy(
            &format!("{KV}[[nemesis]]\nat = \"1s\"\nprocess = \"kv\"\nkind = \"blackout\"\n"),
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("power-loss"), "{e}");
        let e = crate::parse::parse_policy(&format!("{KV}[attrition]\npower-loss = -1\n"), "t")
            .unwrap_err();
        assert!(e.to_string().contains("`power-loss` is a weight"), "{e}");
    }

    #[test]
    fn machine_groups_processes_and_an_empty_one_is_refused() {
        let p = crate::parse::parse_policy(
            &format!("{KV}machine = \"m1\"\n[[process]]\nname = \"b\"\ncmd = [\"true\"]\n"),
            "t",
        )
        .unwrap();
        assert_eq!(p.system.processes[0].machine.as_deref(), Some("m1"));
        assert_eq!(p.system.processes[1].machine, None);
        let e = crate::parse::parse_policy(&format!("{KV}machine = \" \"\n"), "t").unwrap_err();
        assert!(e.to_string().contains("machine: expected a name"), "{e}");
    }
}
