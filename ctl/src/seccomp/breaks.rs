//! Breaking a connection from outside the target: on our copy of its fd (`pidfd_getfd`), which is
//! the same socket, so an RST or a shutdown reaches the peer as if the target had made it.

use chaos_engine::realise::Break;

/// Resets the connection on our copy (an RST to the peer; the target's fd is the same socket).
pub fn reset(fd: i32) {
    break_connection(fd, Break::Rst);
}

/// Breaks the connection on our copy as the error says (the same file, so the target's too).
pub fn break_connection(fd: i32, brk: Break) -> Option<&'static str> {
    // SAFETY: our copy of the fd; shutdown and connect(AF_UNSPEC) have no other effect.
    unsafe {
        match brk {
            Break::None => None,
            Break::Rst => {
                let unspec = libc::sockaddr {
                    sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                    sa_data: [0; 14],
                };
                libc::connect(
                    fd,
                    &unspec,
                    std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
                );
                Some("rst-sent")
            }
            Break::ShutBoth => {
                libc::shutdown(fd, libc::SHUT_RDWR);
                Some("shutdown-both")
            }
            Break::ShutWrite => {
                libc::shutdown(fd, libc::SHUT_WR);
                Some("shutdown-write")
            }
        }
    }
}
