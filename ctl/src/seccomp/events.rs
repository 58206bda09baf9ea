//! The seccomp backend's lines in the run's event log: the same `start` and `fault` events the
//! shim writes (engine `event::schema`), with `"backend":"seccomp"`, appended whole.

use super::decide::{Choice, Source};
use super::fdview::FdView;
use super::target::{Proc, Target};
use chaos_engine::event::schema::{self, Header};
use chaos_engine::op::Op;
use std::io::Write;

pub const BACKEND: &str = "seccomp";

/// The log, opened for appending (one `write` per line, as the shim does, so lines from many
/// processes never interleave). A clone shares the file: a call answered later from a thread
/// (a toxic's wait) logs from there.
#[derive(Clone)]
pub struct Log(Option<std::sync::Arc<std::fs::File>>);

impl Log {
    pub fn open(target: &Target) -> Log {
        Log(target
            .log
            .as_ref()
            .and_then(|p| std::fs::OpenOptions::new().append(true).open(p).ok())
            .map(std::sync::Arc::new))
    }

    fn emit(&mut self, event: &schema::Event) {
        let Some(file) = &self.0 else {
            return;
        };
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        let _ = (&**file).write_all(&line);
    }

    /// A fault line made earlier (`fault_line`), stamped now.
    pub fn emit_fault(&mut self, mut line: schema::Fault) {
        line.header.ts_ns = now_ns();
        self.emit(&schema::Event::Fault(line));
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn header(proc: &Proc, tid: Option<i32>) -> Header {
    Header {
        ts_ns: now_ns(),
        pid: proc.pid,
        tid,
        proc: format!("{:016x}", proc.key),
        truncated: false,
    }
}

/// A process's parent and working directory, from /proc (0 and None once it is gone).
pub fn lineage(pid: i32) -> (i32, Option<String>) {
    let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // `pid (comm) state ppid ...`: comm may hold spaces, so count from its `)`.
            let after = s.rsplit_once(')')?.1.to_string();
            after.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    (ppid, cwd)
}

/// `{"ev":"start",...}` for a process we first see (after its exec, or a forked child), with
/// its `lineage` and how it came to be (`via`: "exec" or "fork").
pub fn start(
    log: &mut Log,
    target: &Target,
    proc: &Proc,
    exe: &str,
    argv: Vec<String>,
    (ppid, cwd): (i32, Option<String>),
    via: &str,
) {
    let p = &target.policy;
    log.emit(&schema::Event::Start(schema::Start {
        header: Header {
            tid: None,
            ..header(proc, None)
        },
        ppid,
        via: via.into(),
        process: target.process.clone(),
        life: target.process.as_ref().map(|_| target.life),
        exe: Some(exe.to_string()),
        argv: Some(argv),
        cwd,
        argv_truncated: None,
        seed: Some(target.seed),
        policy: Some(p.origin.clone()),
        policy_digest: Some(format!("{:016x}", p.digest)),
        rules: Some(p.rules.len() as u64),
        injections: Some(p.injections.len() as u64),
        quirks: Some(
            target
                .quirks
                .names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        quirk_probability: Some(p.quirk_probability.to_string()),
        missing_symbols: None,
        shim_version: Some(chaos_engine::VERSION.into()),
        backend: Some(BACKEND.into()),
    }));
}

/// What applying a decision did, for its event.
#[derive(Default)]
pub struct Applied {
    pub errno: Option<i32>,
    pub returned: Option<i64>,
    pub delay_ns: u64,
    pub after_ns: u64,
    pub stall_ns: u64,
    pub effect: Option<&'static str>,
    pub degraded: Option<&'static str>,
}

/// The call a fault landed on, and its fd as the event describes it.
pub struct OnCall {
    pub op: Op,
    pub fd: i32,
    pub tid: i32,
    pub requested: Option<u64>,
    /// Our copy of the fd (none for a wait).
    pub ours: Option<i32>,
    pub kind: Option<String>,
    pub conn: Option<String>,
    pub peer: Option<String>,
    pub local: Option<String>,
    /// The path a call with no fd names (an open, a rename...), made absolute.
    pub path: Option<String>,
}

impl OnCall {
    pub fn new(op: Op, fd: i32, tid: i32, view: Option<&FdView>, requested: Option<u64>) -> OnCall {
        let mut on = OnCall {
            op,
            fd,
            tid,
            requested,
            ours: None,
            kind: None,
            conn: None,
            peer: None,
            local: None,
            path: None,
        };
        if let Some(v) = view {
            on.ours = (v.fd() >= 0).then(|| v.fd());
            on.kind = Some(v.kind.name().to_string());
            on.conn = Some(if op == Op::Connect {
                format!("{}-connects", v.kind.name())
            } else {
                v.conn_name()
            });
            if v.kind.is_socket() {
                on.peer = endpoint_text(&super::sys::sockname(v.fd(), true));
                on.local = endpoint_text(&super::sys::sockname(v.fd(), false));
            }
            if v.kind == chaos_engine::kind::FdKind::File {
                // Where the file is now, as the shim reads it when it logs.
                on.path = std::fs::read_link(format!("/proc/self/fd/{}", v.fd()))
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned());
            }
        }
        on
    }
}

pub fn fault(
    log: &mut Log,
    target: &Target,
    proc: &Proc,
    call: &OnCall,
    d: &Choice,
    applied: &Applied,
) {
    log.emit(&schema::Event::Fault(fault_line(
        target, proc, call, d, applied,
    )));
}

/// The fault line `fault` writes, for a caller that fills in what it did later.
pub fn fault_line(
    target: &Target,
    proc: &Proc,
    call: &OnCall,
    d: &Choice,
    applied: &Applied,
) -> schema::Fault {
    let (rule, rule_index, inject_index) = match d.source {
        Source::Rule(i) => (target.policy.rules[i].name.clone(), Some(i as u64), None),
        Source::Injection(i) => ("inject".to_string(), None, Some(i as u64)),
        Source::Proxy(_) => ("toxiproxy".to_string(), None, None),
    };
    schema::Fault {
        header: header(proc, Some(call.tid)),
        op: call.op.name().into(),
        fd: call.fd,
        kind: call.kind.clone(),
        conn: call.conn.clone(),
        peer: call.peer.clone(),
        local: call.local.clone(),
        path: call.path.clone(),
        host: None,
        rule,
        rule_index,
        inject_index,
        fault: d.source.fault(&target.policy).kind_name().into(),
        quirk: None,
        errno: applied
            .errno
            .map(|e| chaos_engine::errno::errno_name(e).to_string()),
        requested: call.requested,
        returned: applied.returned,
        delay_ns: Some(applied.delay_ns),
        after_ns: (applied.after_ns > 0).then_some(applied.after_ns),
        stall_ns: (applied.stall_ns > 0).then_some(applied.stall_ns),
        effect: applied.effect.map(Into::into),
        held_for: None,
        limit: None,
        degraded: applied.degraded.map(Into::into),
        key: Some(d.key.to_string()),
        backend: Some(BACKEND.into()),
    }
}

/// `{"ev":"point",...}`: a fault point explore's census found (`census`), at the call site
/// `object`+`offset` ("" and 0 when none was found), first reached at `key`.
pub fn point(
    log: &mut Log,
    (pid, proc): (i32, u64),
    call: &OnCall,
    key: &chaos_engine::key::Key,
    object: String,
    offset: u64,
) {
    log.emit(&schema::Event::Point(schema::PointLine {
        header: Header {
            ts_ns: now_ns(),
            pid,
            tid: Some(call.tid),
            proc: format!("{proc:016x}"),
            truncated: false,
        },
        op: call.op.name().into(),
        fd: call.fd,
        kind: call.kind.clone(),
        conn: call.conn.clone(),
        peer: call.peer.clone(),
        path: call.path.clone(),
        object,
        offset,
        key: key.to_string(),
    }));
}

/// A platform quirk that fired: `{"ev":"fault","fault":"quirk","quirk":NAME,...}`.
pub fn quirk(
    log: &mut Log,
    proc: &Proc,
    call: &OnCall,
    quirk: chaos_engine::quirk::Quirk,
    errno: i32,
) {
    log.emit(&schema::Event::Fault(schema::Fault {
        header: header(proc, Some(call.tid)),
        op: call.op.name().into(),
        fd: call.fd,
        kind: call.kind.clone(),
        conn: None,
        peer: None,
        local: None,
        path: None,
        host: None,
        rule: "quirk".into(),
        rule_index: None,
        inject_index: None,
        fault: "quirk".into(),
        quirk: Some(quirk.name().into()),
        errno: Some(chaos_engine::errno::errno_name(errno).to_string()),
        requested: None,
        returned: Some(-1),
        delay_ns: None,
        after_ns: None,
        stall_ns: None,
        effect: None,
        held_for: None,
        limit: None,
        degraded: None,
        key: None,
        backend: Some(BACKEND.into()),
    }));
}

fn endpoint_text(a: &super::sys::SockAddr) -> Option<String> {
    use chaos_engine::addr::Endpoint;
    match a.endpoint() {
        Endpoint::Ip(sa) => Some(sa.to_string()),
        Endpoint::Unix([0, name @ ..]) => Some(format!("@{}", String::from_utf8_lossy(name))),
        Endpoint::Unix(path) => Some(String::from_utf8_lossy(path).into_owned()),
        Endpoint::Unknown => None,
    }
}

/// `{"ev":"control","what":"seen",...}`: the first call of `proc` a rule was decided on after
/// the control page changed, as the shim logs it, with the rules that generation enabled.
pub fn control_seen(
    log: &mut Log,
    target: &Target,
    proc: &Proc,
    (generation, enabled): (u64, u32),
    at: &chaos_engine::key::Place,
) {
    log.emit(&schema::Event::Control(schema::ControlLine {
        ts_ns: now_ns(),
        generation,
        t_ns: None,
        by: None,
        what: "seen".into(),
        rule: None,
        disk: None,
        process: None,
        cut: Vec::new(),
        key: None,
        pid: Some(proc.pid),
        tid: None,
        proc: Some(format!("{:016x}", proc.key)),
        at: Some(at.to_string()),
        enabled: Some(
            target
                .policy
                .rules
                .iter()
                .enumerate()
                .filter(|(i, r)| enabled & (1 << i) != 0 && !r.ops.is_empty())
                .map(|(_, r)| r.name.clone())
                .collect(),
        ),
    }));
}

/// A `[[disk]]` refused a write or an allocation (`full`: ENOSPC) or cut a write where its
/// space ended (`short`), as the shim logs it.
pub fn disk(
    log: &mut Log,
    target: &Target,
    proc: &Proc,
    call: &OnCall,
    (disk, what): (usize, &str),
    requested: u64,
    returned: i64,
) {
    log.emit(&schema::Event::Disk(schema::DiskLine {
        header: header(proc, Some(call.tid)),
        disk: target.disks.names.get(disk).cloned(),
        what: what.into(),
        op: call.op.name().into(),
        fd: call.fd,
        path: call.path.clone(),
        requested: Some(requested),
        returned: Some(returned),
        errno: (what == "full").then(|| "ENOSPC".into()),
    }));
}

/// An fsync reporting a writeback error another description's fsync met, as the shim logs it:
/// `{"ev":"writeback","what":"reported",...}`.
pub fn writeback(log: &mut Log, proc: &Proc, call: &OnCall, errno: i32) {
    log.emit(&schema::Event::Writeback(schema::WritebackLine {
        header: header(proc, Some(call.tid)),
        what: "reported".into(),
        op: call.op.name().into(),
        fd: call.fd,
        path: call.path.clone(),
        errno: Some(chaos_engine::errno::errno_name(errno).to_string()),
    }));
}

/// A write `[durability]` does not journal, said once per process as the shim says it: an
/// O_DIRECT one goes past the page cache a crash empties.
pub fn durability_unseen(log: &mut Log, proc: &Proc, (tid, fd): (i32, i32), path: &str, why: &str) {
    let header = header(proc, Some(tid));
    log.emit(&schema::Event::Durability(schema::DurabilityLine {
        ts_ns: header.ts_ns,
        pid: Some(header.pid),
        tid: header.tid,
        proc: Some(header.proc),
        what: "unseen".into(),
        process: None,
        op: None,
        fd: Some(fd),
        path: Some(path.into()),
        why: Some(why.into()),
        to: None,
        range: None,
        old_size: None,
        torn_kept: None,
        error: None,
    }));
}
