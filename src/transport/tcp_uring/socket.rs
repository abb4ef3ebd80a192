//! Socket set-up: the few calls made once per connection, outside the hot path.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// TCP keepalive probes start after this idle time, so a peer that vanished (power loss, cable)
/// is detected even when no frame is pending.
const KEEPALIVE_IDLE_S: libc::c_int = 1;
const KEEPALIVE_INTERVAL_S: libc::c_int = 1;
const KEEPALIVE_PROBES: libc::c_int = 3;

fn check(rc: libc::c_int, op: &'static str) -> io::Result<libc::c_int> {
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{op}: {err}")));
    }
    Ok(rc)
}

fn set_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    op: &'static str,
) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(rc, op).map(drop)
}

/// TCP_NODELAY (frames leave at once, no Nagle batching), keepalive probes for dead-peer
/// detection, and a user timeout so unacknowledged data fails the connection in bounded time.
pub(super) fn tune(fd: RawFd, user_timeout_ms: u32) -> io::Result<()> {
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        1,
        "setsockopt TCP_NODELAY",
    )?;
    set_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        1,
        "setsockopt SO_KEEPALIVE",
    )?;
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPIDLE,
        KEEPALIVE_IDLE_S,
        "setsockopt TCP_KEEPIDLE",
    )?;
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        KEEPALIVE_INTERVAL_S,
        "setsockopt TCP_KEEPINTVL",
    )?;
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        KEEPALIVE_PROBES,
        "setsockopt TCP_KEEPCNT",
    )?;
    let timeout = libc::c_int::try_from(user_timeout_ms).unwrap_or(libc::c_int::MAX);
    set_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        timeout,
        "setsockopt TCP_USER_TIMEOUT",
    )
}

/// A socket address in the form `connect(2)` takes, stored inline so its address stays valid while
/// an io_uring Connect is in flight.
#[derive(Clone, Copy)]
pub(super) struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    pub fn new(addr: SocketAddr) -> Self {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        Self {
            storage,
            len: len as libc::socklen_t,
        }
    }

    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub fn len(&self) -> libc::socklen_t {
        self.len
    }
}

/// A new non-blocking, close-on-exec TCP socket for `addr`'s family.
pub(super) fn tcp_socket(addr: &SocketAddr) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall with constant arguments.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    check(fd, "socket")
}

/// Closes a descriptor this transport owns.
pub(super) fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and no io_uring operation references it any more.
    unsafe { libc::close(fd) };
}

/// Shuts both directions down so every pending operation on the socket completes promptly.
pub(super) fn shutdown(fd: RawFd) {
    // SAFETY: the caller owns `fd`; errors (e.g. ENOTCONN) are irrelevant to a socket being closed.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// The peer address of a connected socket, for log lines.
pub(super) fn peer_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: zeroed storage is valid; `len` describes it.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len are valid for writing.
    let rc = unsafe {
        libc::getpeername(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::from((
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
            )))
        }
        _ => None,
    }
}
