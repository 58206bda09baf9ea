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
//!
//! Every call the census sees waits for it, so its cost per call is kept to two or three system
//! calls: a read of the thread's /proc file (kept open), one or two reads of the stack; each
//! stack word's verdict (a return address or not, the runtime's or the program's) is computed
//! once per process, and what the call acts on is gathered only for a new point.

use super::decide::Position;
use super::events::{Log, OnCall};
use super::symbols::{Symbols, is_runtime};
use chaos_engine::key::{INJECTED, Key};
use chaos_engine::op::Op;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::fs::FileExt;

/// How much of the stack above the held call is scanned: glibc's stdio and Go's os and poll
/// packages stand a few hundred bytes between the system call and the program's frame.
const SCAN: usize = 4096;
/// The first part of it read: most calls find their frame there, and a read of one page or less
/// costs the kernel one page to pin instead of two.
const NEAR: usize = 1024;
/// How many threads' /proc/…/syscall files are kept open at once: the ones of threads that have
/// ended are only found out when read, so the lot is dropped (and reopened as needed) at this
/// many, well under a default limit of 1,024 open files.
const THREADS: usize = 256;
/// How many stack words' verdicts a process keeps: a bound on memory for a program with a huge
/// text; past it they are worked out again.
const FRAMES: usize = 1 << 20;

pub struct Census {
    /// How many times each point was reached in this run.
    reached: HashMap<Reach, u32>,
    /// Which reach of a point is logged (1: the first).
    nth: u32,
    /// The objects met, by the index the other tables use; each with its symbols once they are
    /// needed (none for a file that is not an ELF object).
    objects: Vec<(String, Option<Symbols>)>,
    procs: HashMap<i32, Proc>,
    /// Per thread, its /proc/PID/task/TID/syscall, kept open and read again at offset 0: the
    /// kernel shows a single-record file afresh on every read from 0 (seq_read_iter), and the
    /// path walk of an open was most of the census's cost.
    threads: HashMap<i32, (i32, File)>,
    /// What the system's C library exports: a static program's copy of it has the same names.
    libc: HashSet<String>,
    /// The stack as read for the call in hand, kept to save an allocation per call.
    stack: Vec<u8>,
}

/// A point, as counted: the call site, or where there is none the call's key.
#[derive(PartialEq, Eq, Hash)]
enum Reach {
    Site(Op, u32, u64),
    Key(Op, Key),
}

/// What the census knows of one process.
struct Proc {
    /// The key it had when this was gathered: another (an exec) makes all of it stale.
    key: u64,
    /// Its executable, file-backed mappings, by address; read again when a held call's pc is
    /// in none of them.
    maps: Vec<Mapping>,
    /// Per stack word seen in an executable mapping, what it is: not a return address, or
    /// the frame it returns to. Code does not change under a mapping, so a verdict holds until
    /// the mappings are read again.
    frames: HashMap<u64, Option<Frame>, BuildHasherDefault<AddrHash>>,
}

/// A hash of a code address for `Proc::frames`: one multiply. A Go stack has dozens of words
/// in the program's text to look up per call, and SipHash made that most of the scan's cost;
/// the addresses are the target's, not chosen to collide by whoever reads the log.
#[derive(Default)]
struct AddrHash(u64);

impl Hasher for AddrHash {
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: a product's best are its high ones.
        self.0 ^ self.0 >> 32
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, addr: u64) {
        self.0 = (addr ^ addr >> 29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Clone, Copy)]
struct Frame {
    object: u32,
    offset: u64,
    runtime: bool,
}

struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    object: u32,
}

impl Census {
    pub fn new(nth: u32) -> Census {
        Census {
            reached: HashMap::new(),
            nth,
            objects: Vec::new(),
            procs: HashMap::new(),
            threads: HashMap::new(),
            libc: libc_names(),
            stack: vec![0; SCAN],
        }
    }

    /// A decision is about to be made on the call `op` of thread `tid`, at `at`, for process
    /// `pid`: logs the point if it is new. What the call acts on (`on`) is gathered only then:
    /// for a socket it is two system calls, for a file a readlink.
    pub fn reached<C: Borrow<OnCall>>(
        &mut self,
        log: &mut Log,
        (pid, tid): (i32, i32),
        (op, at): (Op, &Position),
        on: impl FnOnce() -> C,
    ) {
        let site = self.call_site(pid, tid, at.process);
        let key = at.key(INJECTED);
        let id = match site {
            Some(f) => Reach::Site(op, f.object, f.offset),
            None => Reach::Key(op, key),
        };
        let count = self.reached.entry(id).or_insert(0);
        *count = count.saturating_add(1);
        if *count != self.nth {
            return;
        }
        let (object, offset) = site
            .map(|f| (self.objects[f.object as usize].0.clone(), f.offset))
            .unwrap_or_default();
        super::events::point(log, (pid, at.process), on().borrow(), &key, object, offset);
    }

    /// The first return address of the program's own code on `tid`'s stack (else the first
    /// return address at all).
    fn call_site(&mut self, pid: i32, tid: i32, key: u64) -> Option<Frame> {
        let (sp, pc) = self.registers(pid, tid)?;
        let stale = self
            .procs
            .get(&pid)
            .is_none_or(|p| p.key != key || !p.maps.iter().any(|m| (m.start..m.end).contains(&pc)));
        if stale {
            let maps = executable_mappings(pid, &mut self.objects);
            self.procs.insert(
                pid,
                Proc {
                    key,
                    maps,
                    frames: HashMap::default(),
                },
            );
        }
        let proc = self.procs.get_mut(&pid)?;
        let mut first = None;
        let mut from = 0;
        for end in [NEAR, SCAN] {
            let len = from + read_stack(pid, sp + from as u64, &mut self.stack[from..end]);
            for at in (from..len).step_by(8) {
                let word = u64::from_le_bytes(self.stack[at..at + 8].try_into().ok()?);
                let Some(frame) = proc.frame(pid, word, &mut self.objects, &self.libc) else {
                    continue;
                };
                if !frame.runtime {
                    return Some(frame);
                }
                first.get_or_insert(frame);
            }
            if len < end {
                break;
            }
            from = end;
        }
        first
    }

    /// `sp` and `pc` of thread `tid`, held in its system call, from /proc/PID/task/TID/syscall
    /// (`nr arg1 ... arg6 sp pc`, in hex but for nr). The kernel says `running` while the
    /// thread has not yet gone to sleep waiting for our answer: asked again, briefly.
    fn registers(&mut self, pid: i32, tid: i32) -> Option<(u64, u64)> {
        let mut text = [0u8; 256];
        for attempt in 0..100 {
            let file = self.syscall_file(pid, tid)?;
            let n = match file.read_at(&mut text, 0) {
                Ok(n) => n,
                // The thread ended, or its id now names another one (an exec by another
                // thread of its process): opened again, once.
                Err(_) if attempt == 0 => {
                    self.threads.remove(&tid);
                    continue;
                }
                Err(_) => return None,
            };
            let text = &text[..n];
            if !text.starts_with(b"running") {
                let mut fields = text
                    .split(|c| c.is_ascii_whitespace())
                    .filter(|f| !f.is_empty());
                let hex = |f: &[u8]| {
                    let f = std::str::from_utf8(f).ok()?;
                    u64::from_str_radix(f.trim_start_matches("0x"), 16).ok()
                };
                // Fewer than 9 fields: not in a system call at all.
                let (sp, pc) = (fields.nth(7)?, fields.next()?);
                return Some((hex(sp)?, hex(pc)?));
            }
            std::thread::yield_now();
        }
        None
    }

    fn syscall_file(&mut self, pid: i32, tid: i32) -> Option<&File> {
        if self.threads.get(&tid).is_none_or(|(p, _)| *p != pid) {
            if self.threads.len() >= THREADS {
                self.threads.clear();
            }
            let file = File::open(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
            self.threads.insert(tid, (pid, file));
        }
        self.threads.get(&tid).map(|(_, f)| f)
    }
}

impl Proc {
    /// What the word `addr` on a stack of process `pid` is: a return address, and to where.
    fn frame(
        &mut self,
        pid: i32,
        addr: u64,
        objects: &mut [(String, Option<Symbols>)],
        libc: &HashSet<String>,
    ) -> Option<Frame> {
        let i = self
            .maps
            .partition_point(|m| m.start <= addr)
            .checked_sub(1)?;
        let m = &self.maps[i];
        if addr >= m.end {
            return None;
        }
        if let Some(verdict) = self.frames.get(&addr) {
            return *verdict;
        }
        let (object, offset) = (m.object, addr - m.start + m.offset);
        let verdict = follows_a_call(pid, addr).then(|| Frame {
            object,
            offset,
            runtime: in_runtime(&mut objects[object as usize], offset, libc),
        });
        if self.frames.len() >= FRAMES {
            self.frames.clear();
        }
        self.frames.insert(addr, verdict);
        verdict
    }
}

/// Whether the code at `offset` of `object` is a language runtime's.
fn in_runtime(
    (object, symbols): &mut (String, Option<Symbols>),
    offset: u64,
    libc: &HashSet<String>,
) -> bool {
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
    let symbols = symbols.get_or_insert_with(|| Symbols::read(object).unwrap_or_default());
    symbols
        .at_offset(offset)
        .is_some_and(|name| is_runtime(name, symbols.is_go(), libc))
}

/// The executable, file-backed mappings of process `pid`, by address, their objects interned
/// in `objects`.
fn executable_mappings(pid: i32, objects: &mut Vec<(String, Option<Symbols>)>) -> Vec<Mapping> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut maps: Vec<Mapping> = text
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let object = match objects.iter().position(|(p, _)| p == path) {
                Some(i) => i,
                None => {
                    objects.push((path.to_string(), None));
                    objects.len() - 1
                }
            };
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                object: u32::try_from(object).ok()?,
            })
        })
        .collect();
    maps.sort_by_key(|m| m.start);
    maps
}

/// Fills `buf` (a multiple of 64 bytes) with the stack from `sp`, or a part of it near the
/// stack's top (the read stops at the end of its mapping): how many bytes were read.
fn read_stack(pid: i32, sp: u64, buf: &mut [u8]) -> usize {
    let mut len = buf.len();
    while len >= 64 {
        if super::sys::read_target(pid, sp, &mut buf[..len]) {
            return len;
        }
        len /= 4;
    }
    0
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

    /// The census keeps a thread's /proc/…/syscall open and reads it again at offset 0: each
    /// read must show the call the thread is in now, not the first one it was read in.
    #[test]
    fn a_kept_syscall_file_shows_the_call_the_thread_is_in_now() {
        let mut fds = [0; 4];
        // SAFETY: two pipes into our own array of four ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: as above, its second half.
        assert_eq!(unsafe { libc::pipe(fds[2..].as_mut_ptr()) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let child = std::thread::spawn(move || {
            // SAFETY: gettid has no arguments.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let mut byte = 0u8;
            // SAFETY: one byte into `byte`, from our own pipe.
            unsafe { libc::read(fds[0], (&raw mut byte).cast(), 1) };
            let mut p = libc::pollfd {
                fd: fds[2],
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd of our own, no timeout, no mask.
            unsafe { libc::ppoll(&mut p, 1, std::ptr::null(), std::ptr::null()) };
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let mut census = Census::new(1);
        let in_call = |census: &mut Census, nr: i64| {
            for _ in 0..1000 {
                let file = census.syscall_file(pid, tid).unwrap();
                let mut text = [0u8; 256];
                let n = file.read_at(&mut text, 0).unwrap();
                let first = text[..n].split(|c| *c == b' ').next().unwrap();
                if first == nr.to_string().as_bytes() {
                    return census.registers(pid, tid).unwrap();
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            panic!("thread {tid} never seen in system call {nr}");
        };
        let (_, reading) = in_call(&mut census, libc::SYS_read);
        // SAFETY: one byte from a static, into our own pipe.
        assert_eq!(unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }, 1);
        let (_, polling) = in_call(&mut census, libc::SYS_ppoll);
        assert_ne!(reading, polling, "the pc of ppoll is not that of read");
        assert_eq!(census.threads.len(), 1, "one file, kept open");
        // SAFETY: as above, ending the poll.
        assert_eq!(unsafe { libc::write(fds[3], b"x".as_ptr().cast(), 1) }, 1);
        child.join().unwrap();
    }

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
