//! `chaos-ctl explore`'s census under the seccomp backend (CHAOS_CENSUS=1): the shim's `point`
//! lines, for programs the shim cannot reach (static, Go). A point is the call site: the first
//! return address in the program's own code, as (object, file offset), the same in every run
//! whatever ASLR did.
//!
//! The held thread's stack pointer comes from /proc/PID/task/TID/syscall. Its stack is read with
//! process_vm_readv and scanned upwards, word by word, for return addresses: words inside an
//! executable mapping that follow a call instruction. Not a frame-pointer walk: static glibc
//! keeps no frame pointer, and the register itself is out of reach without ptrace; Go keeps
//! them, but its syscall stub makes no frame of its own. A scan finds the same chain on both.
//! Each return address is looked up in its object's symbols (`symbols`): frames of a language
//! runtime (libc, stdio, Go's os, net and syscall packages) are passed over, and the first
//! frame of the program's own code is the point. Without symbols (a stripped program), the
//! first return address is.

use super::decide::Position;
use super::events::{Log, OnCall};
use super::symbols::{Symbols, is_runtime};
use chaos_engine::key::INJECTED;
use std::collections::{HashMap, HashSet};

/// How much of the stack above the held call is scanned: glibc's stdio and Go's os and poll
/// packages stand a few hundred bytes between the system call and the program's frame.
const SCAN: usize = 4096;

pub struct Census {
    /// How many times each point was reached in this run, by id (`op@object+offset`).
    reached: HashMap<String, u32>,
    /// Which reach of a point is logged (1: the first).
    nth: u32,
    objects: HashMap<String, Option<Symbols>>,
    /// Per process, its executable mappings, read again when a held call's pc is in none.
    maps: HashMap<i32, Vec<Mapping>>,
    /// What the system's C library exports: a static program's copy of it has the same names.
    libc: HashSet<String>,
}

#[derive(Clone)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    path: String,
}

impl Census {
    pub fn new(nth: u32) -> Census {
        Census {
            reached: HashMap::new(),
            nth,
            objects: HashMap::new(),
            maps: HashMap::new(),
            libc: libc_names(),
        }
    }

    /// A decision is about to be made on the call `on`, at `at`, for process `pid`: logs the
    /// point if it is new.
    pub fn reached(&mut self, log: &mut Log, pid: i32, at: &Position, on: &OnCall) {
        let site = self.call_site(pid, on.tid);
        let key = at.key(INJECTED);
        let id = match &site {
            Some((object, offset)) => format!("{}@{object}+{offset:x}", on.op.name()),
            None => format!("{}@{key}", on.op.name()),
        };
        let count = self.reached.entry(id).or_insert(0);
        *count += 1;
        if *count != self.nth {
            return;
        }
        let (object, offset) = site.unwrap_or_default();
        super::events::point(log, (pid, at.process), on, &key, object, offset);
    }

    /// The first return address of the program's own code on `tid`'s stack, as (object, offset
    /// in its file).
    fn call_site(&mut self, pid: i32, tid: i32) -> Option<(String, u64)> {
        let regs = registers(pid, tid)?;
        // `nr arg1 ... arg6 sp pc`, the last two in hex.
        let fields: Vec<&str> = regs.split_whitespace().collect();
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        let (sp, pc) = match fields[..] {
            [.., sp, pc] if fields.len() >= 9 => (hex(sp)?, hex(pc)?),
            _ => return None,
        };
        let cached = self.maps.get(&pid);
        if cached.is_none_or(|m| !m.iter().any(|m| (m.start..m.end).contains(&pc))) {
            self.maps.insert(pid, executable_mappings(pid));
        }
        let stack = read_stack(pid, sp)?;
        let mut first = None;
        for word in stack.chunks_exact(8) {
            let addr = u64::from_le_bytes(word.try_into().ok()?);
            let maps = self.maps.get(&pid)?;
            let Some(m) = maps.iter().find(|m| (m.start..m.end).contains(&addr)) else {
                continue;
            };
            if !follows_a_call(pid, addr) {
                continue;
            }
            let (path, offset) = (m.path.clone(), addr - m.start + m.offset);
            if !self.in_runtime(&path, offset) {
                return Some((path, offset));
            }
            first.get_or_insert((path, offset));
        }
        first
    }

    /// Whether the code at `offset` of `object` is a language runtime's.
    fn in_runtime(&mut self, object: &str, offset: u64) -> bool {
        let file = object.rsplit('/').next().unwrap_or(object);
        if [
            "libc.so",
            "libc-",
            "ld-linux",
            "libpthread",
            "libstdc++",
            "libgcc_s",
        ]
        .iter()
        .any(|lib| file.starts_with(lib))
        {
            return true;
        }
        if !self.objects.contains_key(object) {
            self.objects
                .insert(object.to_string(), Symbols::read(object));
        }
        let Some(symbols) = self.objects.get(object) else {
            return false;
        };
        let Some(symbols) = symbols else {
            return false;
        };
        symbols
            .at_offset(offset)
            .is_some_and(|name| is_runtime(name, symbols.is_go(), &self.libc))
    }
}

/// `nr arg1 ... arg6 sp pc` of thread `tid`, held in its system call. The kernel says `running`
/// while the thread has not yet gone to sleep waiting for our answer: asked again, briefly.
fn registers(pid: i32, tid: i32) -> Option<String> {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    for _ in 0..100 {
        let text = std::fs::read_to_string(&path).ok()?;
        if !text.starts_with("running") {
            return Some(text);
        }
        std::thread::yield_now();
    }
    None
}

/// The executable, file-backed mappings of process `pid`.
fn executable_mappings(pid: i32) -> Vec<Mapping> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path: path.to_string(),
            })
        })
        .collect()
}

/// Up to `SCAN` bytes of the stack from `sp`; less near the stack's top (the read stops at the
/// end of its mapping).
fn read_stack(pid: i32, sp: u64) -> Option<Vec<u8>> {
    let mut len = SCAN;
    while len >= 64 {
        let mut buf = vec![0u8; len];
        if super::sys::read_target(pid, sp, &mut buf) {
            return Some(buf);
        }
        len /= 4;
    }
    None
}

/// Whether the instruction before `addr` is a call: what makes a stack word a return address
/// rather than a stale code pointer or a function pointer held in a local.
fn follows_a_call(pid: i32, addr: u64) -> bool {
    let mut before = [0u8; 8];
    if !super::sys::read_target(pid, addr.wrapping_sub(8), &mut before) {
        return false;
    }
    is_call_before(&before)
}

/// `before` holds the 8 bytes that end where a return address points.
#[cfg(target_arch = "x86_64")]
fn is_call_before(before: &[u8; 8]) -> bool {
    // call rel32: E8 and four bytes.
    if before[3] == 0xe8 {
        return true;
    }
    // call r/m64: FF /2, its length from the ModRM byte (and a SIB, and a displacement).
    (2..=7).any(|len| {
        let at = 8 - len;
        if before[at] != 0xff {
            return false;
        }
        let modrm = before[at + 1];
        if (modrm >> 3) & 7 != 2 {
            return false;
        }
        let (md, rm) = (modrm >> 6, modrm & 7);
        let sib = md != 3 && rm == 4;
        let disp = match md {
            1 => 1,
            2 => 4,
            0 if rm == 5 => 4,
            0 if sib && before.get(at + 2).is_some_and(|s| s & 7 == 5) => 4,
            _ => 0,
        };
        2 + usize::from(sib) + disp == len
    })
}

/// `before` holds the 8 bytes that end where a return address points.
#[cfg(target_arch = "aarch64")]
fn is_call_before(before: &[u8; 8]) -> bool {
    let insn = u32::from_le_bytes([before[4], before[5], before[6], before[7]]);
    // BL imm26, BLR Xn.
    insn & 0xfc00_0000 == 0x9400_0000 || insn & 0xffff_fc1f == 0xd63f_0000
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn is_call_before(_: &[u8; 8]) -> bool {
    true
}

/// The functions the C library chaos-ctl itself runs on exports: the names a static program's
/// own copy of the C library has too (fwrite, printf, recv...).
fn libc_names() -> HashSet<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let libc = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|f| f.starts_with("libc.so"))
        });
    libc.and_then(Symbols::read)
        .map(|s| s.names().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn return_addresses_follow_the_calls_x86_64_has() {
        let cases: [(&[u8], bool); 7] = [
            (&[0xe8, 1, 2, 3, 4], true),                    // call rel32
            (&[0xff, 0xd0], true),                          // call rax
            (&[0x41, 0xff, 0xd3], true),                    // call r11
            (&[0xff, 0x50, 0x08], true),                    // call [rax+8]
            (&[0xff, 0x15, 1, 2, 3, 4], true),              // call [rip+disp32]
            (&[0xff, 0x14, 0x25, 1, 2, 3, 4], true),        // call [disp32] through a SIB
            (&[0x48, 0x89, 0xc7, 0x0f, 0x05, 0x90], false), // mov rdi, rax; syscall; nop
        ];
        for (code, call) in cases {
            let mut before = [0x90u8; 8];
            before[8 - code.len()..].copy_from_slice(code);
            assert_eq!(is_call_before(&before), call, "{code:x?}");
        }
    }
}
