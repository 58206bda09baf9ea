//! `limits = { nofile, memory, cpu }`, each by the strongest mechanism this machine allows: a
//! cgroup (v2 `memory.max`/`cpu.max`, or v1's memory and cpu controllers, which is what a machine
//! mounting v1 controllers has) when chaos-ctl may create one, else RLIMIT_AS for memory and
//! SIGSTOP/SIGCONT duty cycling (done by the supervisor) for cpu. nofile is always RLIMIT_NOFILE.
//! The kernel enforces all but the duty cycle: a process really gets EMFILE, ENOMEM or the OOM
//! killer.

use chaos_engine::system::Limits;
use std::ffi::CString;
use std::path::{Path, PathBuf};

const V2_ROOT: &str = "/sys/fs/cgroup";
const CPU_PERIOD_US: u64 = 100_000;

/// What one start of a replica gets.
#[derive(Default)]
pub struct Prepared {
    /// (resource, value) for setrlimit in the child.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    /// `cgroup.procs` files the child joins by writing "0" to them before exec.
    pub join: Vec<CString>,
    /// Cgroup directories made for this start, removed once it has ended.
    pub dirs: Vec<PathBuf>,
    /// The memory cgroup, to read its OOM kill count.
    pub memory_dir: Option<PathBuf>,
    /// Percent of one CPU to enforce by stopping and continuing (no cpu cgroup).
    pub duty_cycle: Option<u32>,
    /// "nofile 256: RLIMIT_NOFILE", "memory 256M: cgroup v1 memory.limit_in_bytes", ...
    pub mechanisms: Vec<String>,
}

fn write(path: &Path, text: &str) -> bool {
    std::fs::write(path, text).is_ok()
}

/// A fresh cgroup directory for `leaf` under the controller's hierarchy, or None.
fn make_dir(hierarchy: &Path, leaf: &str) -> Option<PathBuf> {
    if !hierarchy.is_dir() {
        return None;
    }
    let dir = hierarchy.join(leaf);
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir(&dir).ok()?;
    Some(dir)
}

fn cgroup_v2() -> bool {
    Path::new(V2_ROOT).join("cgroup.controllers").exists()
}

pub fn prepare(replica: &str, life: u32, limits: &Limits) -> Prepared {
    let mut p = Prepared::default();
    let leaf = format!(
        "chaos-{}-{}-{life}",
        std::process::id(),
        replica.replace('#', "-")
    );
    if let Some(n) = limits.nofile {
        p.rlimits.push((libc::RLIMIT_NOFILE, n));
        p.mechanisms.push(format!("nofile {n}: RLIMIT_NOFILE"));
    }
    let v2 = cgroup_v2();
    if v2 && (limits.memory.is_some() || limits.cpu_percent.is_some()) {
        let _ = write(
            &Path::new(V2_ROOT).join("cgroup.subtree_control"),
            "+memory +cpu",
        );
    }
    if let Some(bytes) = limits.memory {
        let (dir, file, name) = if v2 {
            (
                make_dir(Path::new(V2_ROOT), &leaf),
                "memory.max",
                "cgroup v2 memory.max",
            )
        } else {
            (
                make_dir(&Path::new(V2_ROOT).join("memory"), &leaf),
                "memory.limit_in_bytes",
                "cgroup v1 memory.limit_in_bytes",
            )
        };
        match dir {
            Some(d) if write(&d.join(file), &bytes.to_string()) => {
                // v1 counts swap separately: without this the limit only moves pages to swap.
                let _ = write(&d.join("memory.memsw.limit_in_bytes"), &bytes.to_string());
                let _ = write(&d.join("memory.swap.max"), "0");
                p.join.push(procs_file(&d));
                p.memory_dir = Some(d.clone());
                p.dirs.push(d);
                p.mechanisms
                    .push(format!("memory {}: {name}", human(bytes)));
            }
            other => {
                if let Some(d) = other {
                    let _ = std::fs::remove_dir(&d);
                }
                p.rlimits.push((libc::RLIMIT_AS, bytes));
                p.mechanisms.push(format!(
                    "memory {}: RLIMIT_AS (no cgroup could be made here)",
                    human(bytes)
                ));
            }
        }
    }
    if let Some(pct) = limits.cpu_percent {
        let quota = u64::from(pct) * CPU_PERIOD_US / 100;
        let done = if v2 {
            make_dir(Path::new(V2_ROOT), &format!("{leaf}-cpu"))
                .filter(|d| write(&d.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}")))
                .map(|d| (d, "cgroup v2 cpu.max"))
        } else {
            make_dir(&Path::new(V2_ROOT).join("cpu"), &leaf)
                .filter(|d| {
                    write(&d.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())
                        && write(&d.join("cpu.cfs_quota_us"), &quota.to_string())
                })
                .map(|d| (d, "cgroup v1 cpu.cfs_quota_us"))
        };
        match done {
            Some((d, name)) => {
                p.join.push(procs_file(&d));
                p.dirs.push(d);
                p.mechanisms.push(format!("cpu {pct}%: {name}"));
            }
            None => {
                p.duty_cycle = Some(pct);
                p.mechanisms.push(format!(
                    "cpu {pct}%: SIGSTOP/SIGCONT duty cycle (no cpu cgroup)"
                ));
            }
        }
    }
    p
}

fn procs_file(dir: &Path) -> CString {
    CString::new(
        dir.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("cgroup paths have no NUL")
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => format!("{b}B"),
    }
}

/// How many times the OOM killer has killed in the memory cgroup.
pub fn oom_kills(memory_dir: &Path) -> u64 {
    ["memory.events", "memory.oom_control"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(memory_dir.join(f)).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap_or(0)
}

/// Removes a start's cgroups once nothing is left in them.
pub fn release(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// In the child, between fork and exec: death with chaos-ctl, the rlimits, then the cgroups. Only async-signal-safe
/// calls (setrlimit, open, write, close) on data prepared before the fork.
pub fn apply_in_child(rlimits: &[(libc::__rlimit_resource_t, u64)], join: &[CString]) {
    // If chaos-ctl itself is killed (SIGKILL, a CI runner's timeout), its processes go with it
    // rather than outliving the run in their own process groups.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    for &(res, v) in rlimits {
        let lim = libc::rlimit {
            rlim_cur: v,
            rlim_max: v,
        };
        // SAFETY: a valid rlimit on the stack.
        unsafe { libc::setrlimit(res, &lim) };
    }
    for path in join {
        // SAFETY: a NUL-terminated path made before the fork; "0" moves the writing process.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }
}
