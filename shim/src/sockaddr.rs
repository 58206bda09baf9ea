//! Socket addresses as the kernel reports them, decoded without copying or allocating into the
//! engine's `Endpoint` (what rules match and log lines name).

use crate::sys;
use chaos_engine::addr::{Endpoint, ipv4, ipv6};
use libc::c_int;

/// A sockaddr read from the kernel, kept on the caller's stack.
pub struct SockAddrBuf {
    pub storage: libc::sockaddr_storage,
    pub len: usize,
}

impl SockAddrBuf {
    pub fn read(fd: c_int, peer: bool) -> SockAddrBuf {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
        let mut storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        let len = sys::sockname(fd, peer, &mut storage).unwrap_or(0);
        SockAddrBuf { storage, len }
    }

    pub fn endpoint(&self) -> Endpoint<'_> {
        // SAFETY: `len` is what the kernel reported (0 on failure), and no address it reports
        // is longer than a sockaddr_storage, so all `len` bytes are inside `storage`; the
        // endpoint borrows `self`.
        unsafe { endpoint_of(&self.storage as *const _ as *const libc::sockaddr, self.len) }
    }
}

/// Decodes a sockaddr without copying: IPv4, IPv6, unix paths (abstract names shown with `@`).
///
/// # Safety
/// `sa` must point to at least `len` readable bytes.
pub unsafe fn endpoint_of<'a>(sa: *const libc::sockaddr, len: usize) -> Endpoint<'a> {
    if sa.is_null() || len < 2 {
        return Endpoint::Unknown;
    }
    // SAFETY: `sa` is non-null with at least 2 readable bytes (the contract), enough for the family.
    match unsafe { (*sa).sa_family } as c_int {
        libc::AF_INET if len >= core::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in and `len` covers one (the guard above);
            // sockaddr_in needs no more alignment than a sockaddr.
            let a = unsafe { &*(sa as *const libc::sockaddr_in) };
            ipv4(a.sin_addr.s_addr.to_ne_bytes(), u16::from_be(a.sin_port))
        }
        libc::AF_INET6 if len >= core::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says sockaddr_in6 and `len` covers one (the guard above).
            let a = unsafe { &*(sa as *const libc::sockaddr_in6) };
            ipv6(a.sin6_addr.s6_addr, u16::from_be(a.sin6_port))
        }
        libc::AF_UNIX => {
            let un = sa as *const libc::sockaddr_un;
            let path_len = len.saturating_sub(2).min(108);
            // SAFETY: sun_path starts 2 bytes in and `path_len` is `len - 2` capped at its 108
            // bytes, so every byte of the slice is within the `len` readable ones.
            let path = unsafe {
                core::slice::from_raw_parts((*un).sun_path.as_ptr() as *const u8, path_len)
            };
            // Pathname sockets are NUL-terminated; abstract ones keep their leading NUL (the engine
            // matches it against `@` patterns, the log writes it `@`).
            let path = match path.iter().position(|b| *b == 0) {
                Some(0) if path.len() > 1 => path,
                Some(end) => &path[..end],
                None => path,
            };
            Endpoint::Unix(path)
        }
        _ => Endpoint::Unknown,
    }
}
