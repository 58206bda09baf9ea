//! A held call's arguments that live in the target's memory: its buffers, the bytes a send
//! would send, a `MSG_*` flags argument, a sockaddr. Read with process_vm_readv; None when the
//! memory cannot be read (the thread is gone, the address is bad: the call then runs as made).
//! And the fields a receive made by us writes back besides the data (`fill_reply_fields`).

use super::sys;
use chaos_engine::op::Op;

/// The buffers of a data call in the target's memory, as (address, length) pairs.
pub fn buffers(pid: i32, op: Op, args: &[u64; 6]) -> Option<Vec<(u64, usize)>> {
    let iovecs = |addr: u64, cnt: u64| -> Option<Vec<(u64, usize)>> {
        let cnt = cnt.min(1024) as usize;
        let mut out = Vec::with_capacity(cnt);
        for i in 0..cnt {
            let v: libc::iovec = sys::read_target_value(
                pid,
                addr + (i * std::mem::size_of::<libc::iovec>()) as u64,
            )?;
            out.push((v.iov_base as u64, v.iov_len));
        }
        Some(out)
    };
    match op {
        Op::Read
        | Op::Write
        | Op::Pread
        | Op::Pwrite
        | Op::Recv
        | Op::Recvfrom
        | Op::Send
        | Op::Sendto => Some(vec![(args[1], args[2] as usize)]),
        Op::Readv | Op::Writev | Op::Preadv | Op::Pwritev => iovecs(args[1], args[2]),
        Op::Recvmsg | Op::Sendmsg => {
            let m: libc::msghdr = sys::read_target_value(pid, args[1])?;
            iovecs(m.msg_iov as u64, m.msg_iovlen as u64)
        }
        _ => None,
    }
}

/// The bytes a send would send (its buffers, up to `limit`), read from the target.
pub fn gather(pid: i32, op: Op, args: &[u64; 6], limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    for (addr, len) in buffers(pid, op, args)? {
        let take = len.min(limit - out.len());
        let start = out.len();
        out.resize(start + take, 0);
        if !sys::read_target(pid, addr, &mut out[start..]) {
            return None;
        }
        if out.len() == limit {
            break;
        }
    }
    Some(out)
}

/// The `MSG_*` flags a data call passed (0 for the calls that take none).
pub fn msg_flags(op: Op, args: &[u64; 6]) -> i32 {
    match op {
        Op::Recv | Op::Recvfrom | Op::Send | Op::Sendto | Op::Recvmmsg | Op::Sendmmsg => {
            args[3] as i32
        }
        Op::Recvmsg | Op::Sendmsg => args[2] as i32,
        _ => 0,
    }
}

/// A sockaddr the target passed, copied out of its memory.
pub fn target_sockaddr(pid: i32, addr: u64, len: usize) -> Option<sys::SockAddr> {
    let mut a = sys::SockAddr {
        // SAFETY: all zeroes is a valid sockaddr_storage (plain integers).
        storage: unsafe { std::mem::zeroed() },
        len: 0,
    };
    let len = len.min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: the slice covers `len` bytes of our storage.
    let bytes = unsafe { std::slice::from_raw_parts_mut(&mut a.storage as *mut _ as *mut u8, len) };
    if addr == 0 || !sys::read_target(pid, addr, bytes) {
        return None;
    }
    a.len = len as libc::socklen_t;
    Some(a)
}

/// What a stream socket's receive reports besides the data: no source address (TCP and
/// connected unix streams leave it empty) and, for recvmsg, no control data and no flags.
pub fn fill_reply_fields(pid: i32, op: Op, args: &[u64; 6]) {
    match op {
        Op::Recvfrom if args[5] != 0 => {
            sys::write_target(pid, args[5], &0u32.to_ne_bytes());
        }
        Op::Recvmsg => {
            let base = args[1];
            let namelen = std::mem::offset_of!(libc::msghdr, msg_namelen) as u64;
            let flags = std::mem::offset_of!(libc::msghdr, msg_flags) as u64;
            sys::write_target(pid, base + namelen, &0u32.to_ne_bytes());
            sys::write_target(pid, base + flags, &0i32.to_ne_bytes());
        }
        _ => {}
    }
}
