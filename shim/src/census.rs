//! `chaos-ctl explore`'s census: in a run with CHAOS_CENSUS=1, one `point` line per distinct fault
//! point, the first time the process reaches it (the Nth with CHAOS_CENSUS_NTH=N, `explore
//! --nth`), with the decision key it was reached at. A point
//! of native code is its call site: the first return address outside the shim, found by walking
//! the shim's own frame-pointer chain (the workspace is built with frame pointers,
//! `.cargo/config.toml`), named as (object, file offset) from /proc/self/maps so that it is the
//! same in every run whatever ASLR did. Off, it costs the decision entry points one relaxed load;
//! on, a walk of a few frames and a probe of a fixed lock-free table per call, and a read of the
//! maps only for a point never seen before. No allocation, no lock: hooks run in signal handlers.

use crate::fdtable::{Meta, Slot};
use crate::sys::syscall;
use chaos_engine::key::Site;
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use libc::c_int;

static ON: AtomicBool = AtomicBool::new(false);
/// The executable mapping holding the shim's code: return addresses inside it are ours.
static SHIM_TEXT: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
/// Points seen by this process (a hash, never 0), open addressing. A fork's child inherits its
/// parent's, so a point is logged by the first process of a lineage that reaches it.
const SLOTS: usize = 4096;
static SEEN: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// How many times the point in the same slot of `SEEN` has been reached.
static REACHED: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
/// Which reach of a point is logged (1: the first).
static NTH: AtomicU32 = AtomicU32::new(1);
/// How far a probe goes before the table counts as full (a point then goes unlogged).
const PROBES: usize = 64;

/// The program is an interpreter: its calls all come from a few call sites of its own, which tell
/// nothing of the script's code paths, so a point is the op, what it acts on and its ordinal there
/// (the decision key) instead of a call site.
static INTERPRETED: AtomicBool = AtomicBool::new(false);

/// Switches the census on for this process (constructor, CHAOS_CENSUS=1); `exe` is the program.
pub fn init(on: bool, exe: &str) {
    if !on {
        return;
    }
    INTERPRETED.store(is_interpreter(exe), Relaxed);
    // Read once, in the constructor; a value that is not a count is the first reach.
    let nth = std::env::var("CHAOS_CENSUS_NTH").ok();
    NTH.store(
        nth.and_then(|n| n.parse().ok()).unwrap_or(1).max(1),
        Relaxed,
    );
    let here = call_site as fn() -> usize as usize;
    let mut text = (0, 0);
    for_each_mapping(|m| {
        if (m.start..m.end).contains(&here) {
            text = (m.start, m.end);
            return false;
        }
        true
    });
    SHIM_TEXT[0].store(text.0, Relaxed);
    SHIM_TEXT[1].store(text.1, Relaxed);
    ON.store(true, Relaxed);
}

#[inline(always)]
pub fn on() -> bool {
    ON.load(Relaxed)
}

/// What a reached call acts on, for its `point` line.
pub enum Target<'a> {
    /// A call on an fd: its cached facts (peer, local, path are read as a fault line reads them).
    Fd {
        fd: c_int,
        meta: Meta,
        slot: &'a Slot,
    },
    /// A call with no fd (open, rename, socket...): the kind of fd it names or makes, its path.
    Named {
        kind: FdKind,
        path: Option<&'a [u8]>,
    },
}

/// A fault point reached for the first time: the object and file offset of its call site (no
/// object: it is named by its key, an interpreter's, or a site the walk missed).
pub struct Point {
    object: [u8; 256],
    len: usize,
    pub offset: u64,
}

impl Point {
    pub fn object(&self) -> &[u8] {
        &self.object[..self.len]
    }
}

/// A decision entry point reached `op` at (`conn`, `site`) of this process: the point, if it is
/// new (the caller logs it). Every caller checks `on()` first.
#[inline(never)]
pub fn reached(op: Op, conn: u64, site: Site) -> Option<Point> {
    let (point, at) = if INTERPRETED.load(Relaxed) || !cfg!(frame_pointers) {
        let [a, b, c] = site.words();
        (chaos_engine::hash::mix(&[op as u64, conn, a, b, c]), 0)
    } else {
        let at = call_site();
        (chaos_engine::hash::mix(&[op as u64, at as u64]), at)
    };
    let point = point | 1;
    if reach(point) != NTH.load(Relaxed) {
        return None;
    }
    let mut object = [0u8; 256];
    let (len, offset) = if at == 0 {
        (0, 0)
    } else {
        locate(at, &mut object)
    };
    Some(Point {
        object,
        len,
        offset,
    })
}

/// Counts a reach of `point` in the table: which reach this is (1 the first), or 0 when the
/// table is full.
fn reach(point: u64) -> u32 {
    let mut i = (point as usize) % SLOTS;
    for _ in 0..PROBES {
        match SEEN[i].compare_exchange(0, point, Relaxed, Relaxed) {
            Err(seen) if seen != point => i = (i + 1) % SLOTS,
            _ => return REACHED[i].fetch_add(1, Relaxed).saturating_add(1),
        }
    }
    0
}

/// Interpreters and VMs that run programs of their own (python3.12, node, java...).
fn is_interpreter(exe: &str) -> bool {
    let name = exe.rsplit('/').next().unwrap_or(exe);
    [
        "python", "node", "ruby", "perl", "java", "php", "lua", "bash", "dash",
    ]
    .iter()
    .any(|i| name.starts_with(i))
}

/// The first return address on the stack outside the shim's code: where the program called us.
/// 0 when the chain ends first or the architecture is not one we walk.
#[inline(never)]
fn call_site() -> usize {
    let (lo, hi) = (SHIM_TEXT[0].load(Relaxed), SHIM_TEXT[1].load(Relaxed));
    let (mut fp, sp): (usize, usize);
    // SAFETY: reads the frame-pointer and stack-pointer registers; no memory is touched.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {}, rbp", "mov {}, rsp", out(reg) fp, out(reg) sp,
            options(nomem, nostack, preserves_flags))
    };
    // SAFETY: as above; x29 is aarch64's frame pointer.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("mov {}, x29", "mov {}, sp", out(reg) fp, out(reg) sp,
            options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        (fp, sp) = (0, 0);
    }
    // The shim's frames between a hook and here are a few KiB of the live stack above `sp`, all
    // mapped: a frame pointer outside that is not one of ours, and is not followed.
    let ours = sp..sp.saturating_add(256 << 10);
    // Only the shim's own frames are walked, and every one of them keeps a frame pointer: the
    // walk stops at the first return address that is not ours, before it would read a frame of
    // the program's (which may not keep one).
    for _ in 0..64 {
        if !ours.contains(&fp) || fp % core::mem::align_of::<usize>() != 0 {
            return 0;
        }
        // SAFETY: `fp` is the frame pointer of a live frame of the shim's: it holds the caller's
        // frame pointer, and the return address above it.
        let (next, ret) = unsafe {
            (
                *(fp as *const usize),
                *((fp + core::mem::size_of::<usize>()) as *const usize),
            )
        };
        if !(lo..hi).contains(&ret) {
            return ret;
        }
        // Frames grow down: a caller's frame is above its callee's.
        if next <= fp {
            return 0;
        }
        fp = next;
    }
    0
}

/// `addr` as (object path, offset in that file): its mapping in /proc/self/maps. The path's
/// length in `out` is 0 when no mapping holds it (then the offset is the address).
fn locate(addr: usize, out: &mut [u8]) -> (usize, u64) {
    let mut found = (0, addr as u64);
    for_each_mapping(|m| {
        if !(m.start..m.end).contains(&addr) {
            return true;
        }
        let n = m.path.len().min(out.len());
        out[..n].copy_from_slice(&m.path[..n]);
        found = (n, (addr - m.start) as u64 + m.offset);
        false
    });
    found
}

struct Mapping<'a> {
    start: usize,
    end: usize,
    offset: u64,
    path: &'a [u8],
}

/// Calls `each` for the lines of /proc/self/maps, read with raw system calls into a buffer on
/// the stack, until it returns false.
fn for_each_mapping(mut each: impl FnMut(&Mapping) -> bool) {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe {
        syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC
        )
    } as c_int;
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut have = 0;
    'read: loop {
        // SAFETY: the kernel writes at most `buf.len() - have` bytes after the kept part.
        let r = unsafe {
            syscall!(
                libc::SYS_read,
                fd,
                buf[have..].as_mut_ptr(),
                buf.len() - have
            )
        };
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r <= 0 {
            break;
        }
        have += r as usize;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            if let Some(m) = parse_mapping(&buf[start..start + nl])
                && !each(&m)
            {
                break 'read;
            }
            start += nl + 1;
        }
        if start == 0 && have == buf.len() {
            // A line longer than the buffer (a very long path): skip it.
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
    }
    crate::sys::close(fd);
}

/// `start-end perms offset dev inode path`.
fn parse_mapping(line: &[u8]) -> Option<Mapping<'_>> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let _perms = fields.next()?;
    let offset = hex(fields.next()?)?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or(b"");
    let skip = path.iter().take_while(|&&b| b == b' ').count();
    let dash = range.iter().position(|&b| b == b'-')?;
    Some(Mapping {
        start: hex(&range[..dash])? as usize,
        end: hex(&range[dash + 1..])? as usize,
        offset,
        path: &path[skip..],
    })
}

fn hex(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n << 4 | d as u64)
    })
}
