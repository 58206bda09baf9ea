//! Before anything starts: the run directory, every replica with its port, address, data
//! directory and command line, the users it runs as, and the environment all processes share.

use super::ready::Probe;
use super::replica::{Replica, State};
use crate::failure::Failure;
use chaos_engine::system::template::{self, Vars};
use chaos_engine::system::{self as sys, ProcessSpec, Ready};
use std::path::{Path, PathBuf};

/// The `[[process]]` tables of a policy's text, as TOML of their own.
pub(super) fn process_tables(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let mut only = toml::Table::new();
    only.insert("process".into(), table.get("process")?.clone());
    toml::to_string(&only).ok()
}

/// Marks a run directory as chaos-ctl's, so that the next run with the same log may empty it.
const RUN_DIR_MARK: &str = ".chaos-run";

/// `LOG.run/`, empty: a run starts from nothing (a previous run's data, output or a minimize
/// candidate's files would change what this one does). A directory of that name that chaos-ctl did
/// not make is refused rather than emptied.
pub(crate) fn fresh_run_dir(log: &Path) -> Result<PathBuf, Failure> {
    let dir = log.with_extension("run");
    let fail = |e: std::io::Error| Failure::own(format!("cannot prepare {}: {e}", dir.display()));
    if dir.exists() {
        if !dir.join(RUN_DIR_MARK).exists() {
            return Err(Failure::own(format!(
                "{} exists and is not a chaos run directory; move it or choose another --log",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(&dir).map_err(fail)?;
    }
    // Owner-only: it holds the control page, and whoever reaches that can change the run.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(fail)?;
    std::fs::write(dir.join(RUN_DIR_MARK), "").map_err(fail)?;
    Ok(dir)
}

/// Removes `LOG.run/` if chaos-ctl made it (a directory of that name it did not make is left).
pub(crate) fn remove_run_dir(log: &Path) {
    let dir = log.with_extension("run");
    if dir.join(RUN_DIR_MARK).exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Every replica with its port, address, data directory and expanded command line.
pub(super) fn plan_replicas(
    specs: &[ProcessSpec],
    run_dir: &Path,
) -> Result<Vec<Replica>, Failure> {
    let run = run_dir.display().to_string();
    let mut ports = Vec::new();
    for spec in specs {
        for i in 0..spec.replicas {
            ports.push(match spec.port {
                Some(p) => p + i as u16,
                None => free_port()?,
            });
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    for (si, spec) in specs.iter().enumerate() {
        let mine: Vec<u16> = ports[at..at + spec.replicas as usize].to_vec();
        at += spec.replicas as usize;
        for i in 0..spec.replicas {
            let port = mine[i as usize];
            let peers: Vec<String> = mine
                .iter()
                .enumerate()
                .filter(|(j, _)| *j as u32 != i)
                .map(|(_, p)| format!("127.0.0.1:{p}"))
                .collect();
            let mut vars = Vars {
                i,
                port: Some(port),
                data: None,
                run: run.clone(),
                peers: peers.join(","),
            };
            let name = spec.replica_name(i);
            let bad =
                |what: &str, e: String| Failure::own(format!("process `{name}`: {what}: {e}"));
            if let Some(d) = &spec.data {
                vars.data = Some(template::expand(d, &vars).map_err(|e| bad("data", e))?);
            }
            let argv = spec
                .cmd
                .iter()
                .map(|a| template::expand(a, &vars))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("cmd", e))?;
            let env = spec
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), template::expand(v, &vars)?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| bad("env", e))?;
            let probe = match &spec.ready {
                None => Probe::Started,
                Some(ready) => {
                    let (Ready::Tcp(t) | Ready::Unix(t) | Ready::Log(t) | Ready::Cmd(t)) = ready;
                    let text = template::expand(t, &vars).map_err(|e| bad("ready", e))?;
                    match ready {
                        Ready::Tcp(_) => Probe::Tcp(Probe::tcp_target(&text)),
                        Ready::Unix(_) => Probe::Unix(PathBuf::from(text)),
                        Ready::Log(_) => Probe::Log(regex::Regex::new(&text).map_err(|e| {
                            bad(
                                "ready",
                                format!("`log:{text}` is not a regular expression: {e}"),
                            )
                        })?),
                        Ready::Cmd(_) => Probe::Cmd(text),
                    }
                }
            };
            out.push(Replica {
                output: run_dir.join(format!("{}.out", name.replace('#', "-"))),
                name,
                spec: si,
                addr: format!("127.0.0.1:{port}"),
                data: vars.data.map(PathBuf::from),
                argv,
                env,
                probe,
                state: State::Dead {
                    restart_at: None,
                    wipe: false,
                },
                pid: 0,
                life: 0,
                stats: Default::default(),
                down_since: None,
                limits: Default::default(),
                self_deaths: 0,
                duty_stopped: false,
                killed_by_fault: false,
                ids: spec.user.as_deref().map(user_ids).transpose()?,
            });
        }
    }
    Ok(out)
}

/// The uid and gid of `user`; chaos-ctl must be root to run a process as another user.
fn user_ids(user: &str) -> Result<(libc::uid_t, libc::gid_t), Failure> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| Failure::own(format!("user `{user}`: contains a NUL byte")))?;
    // SAFETY: a NUL-terminated name; getpwnam's result is read at once, before any other call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(Failure::own(format!(
            "user `{user}`: no such user on this machine"
        )));
    }
    // SAFETY: non-null, so it points at a valid passwd record.
    let ids = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 && ids.0 != unsafe { libc::geteuid() } {
        return Err(Failure::own(format!(
            "user `{user}`: chaos-ctl must run as root to start a process as another user"
        )));
    }
    Ok(ids)
}

/// Lets the processes that run as another user (`user`) write the log, read the policy and map
/// the control page, and nobody else: the run directory becomes searchable by that user's group
/// (0710) and the page is given to that user (0600), or, when several users run processes, to
/// the first one's group (0660), as the log is.
pub(super) fn share_with_users(
    replicas: &[Replica],
    log: &Path,
    run_dir: &Path,
) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let Some((uid, gid)) = replicas.iter().find_map(|r| r.ids) else {
        return Ok(());
    };
    let fail = |p: &Path, e: std::io::Error| {
        Failure::own(format!(
            "cannot share {} with the processes' user: {e}",
            p.display()
        ))
    };
    // The log: group-writable by the (first) user's group, appended to by its processes.
    std::os::unix::fs::chown(log, None, Some(gid)).map_err(|e| fail(log, e))?;
    std::fs::set_permissions(log, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| fail(log, e))?;
    if let Some(dir) = log.parent() {
        let mode = std::fs::metadata(dir)
            .map_err(|e| fail(dir, e))?
            .permissions()
            .mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711))
            .map_err(|e| fail(dir, e))?;
    }
    // The directory stays ours (its other files are opened by chaos-ctl, which must not follow
    // what another user could plant there); the group may only pass through it.
    std::os::unix::fs::chown(run_dir, None, Some(gid)).map_err(|e| fail(run_dir, e))?;
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o710))
        .map_err(|e| fail(run_dir, e))?;
    let page = run_dir.join(crate::control::page::FILE);
    let one_user = replicas.iter().filter_map(|r| r.ids).all(|(u, _)| u == uid);
    let (owner, mode) = if one_user {
        (Some(uid), 0o600)
    } else {
        (None, 0o660)
    };
    std::os::unix::fs::chown(&page, owner, Some(gid)).map_err(|e| fail(&page, e))?;
    std::fs::set_permissions(&page, std::fs::Permissions::from_mode(mode))
        .map_err(|e| fail(&page, e))?;
    crate::policy_source::share_staged_read_only()
}

/// A port nobody listens on now, for a replica without `port`; kept for all its lives.
/// A port for a replica to listen on, free now and outside the kernel's ephemeral range: a port
/// the kernel hands out to outgoing connections (ours, the workload's, any process's) could be
/// taken by one of them between this check and the replica's bind (EADDRINUSE at start).
fn free_port() -> Result<u16, Failure> {
    let (ephemeral_lo, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let lo = 10000u16.min(ephemeral_lo.saturating_sub(1000));
    let span = u32::from(ephemeral_lo.saturating_sub(lo)).max(1);
    let mut x = (std::process::id() as u64) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..200 {
        x = chaos_engine::hash::splitmix(x);
        let port = lo + (x % u64::from(span)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // A crowded machine: fall back to one the kernel picks.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::own(format!("cannot find a free port: {e}")))
}

pub(super) fn shared_env(
    replicas: &[Replica],
    specs: &[ProcessSpec],
    run_dir: &Path,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("CHAOS_RUN".to_string(), run_dir.display().to_string()),
        (
            "CHAOS_SUPERVISOR".to_string(),
            std::process::id().to_string(),
        ),
    ];
    for (si, spec) in specs.iter().enumerate() {
        let addrs: Vec<&str> = replicas
            .iter()
            .filter(|r| r.spec == si)
            .map(|r| r.addr.as_str())
            .collect();
        env.push((sys::addrs_var(&spec.name), addrs.join(",")));
    }
    env
}
