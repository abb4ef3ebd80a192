//! The node's peer fabric: tcp_uring, or (feature `dpdk`) the DPDK datagram transport, behind one
//! type so the node loop is the same for both.

use crate::transport::tcp_uring::TcpUring;
use crate::transport::{
    Buf, BufferPool, Event, Remote, SendError, Transport, TransportError, TransportStats,
};
use std::os::fd::RawFd;

/// The fabric peers talk over (`transport` in the configuration).
pub(super) enum PeerTransport {
    Tcp(TcpUring),
    #[cfg(feature = "dpdk")]
    Dpdk(crate::transport::dpdk::node::DpdkTransport),
}

impl PeerTransport {
    /// Adds `fd` to what `park` wakes on. DPDK parks by sleeping (poll-mode drivers have no
    /// wakeup the node can wait on), so there client input waits out the park timeout.
    pub(super) fn watch_wakeup_fd(&mut self, fd: RawFd) {
        match self {
            PeerTransport::Tcp(t) => t.watch_wakeup_fd(fd),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(_) => {}
        }
    }

    /// The transport's name for `/status`.
    pub(super) fn name(&self) -> &'static str {
        match self {
            PeerTransport::Tcp(_) => "tcp_uring",
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(_) => "dpdk",
        }
    }
}

impl Transport for PeerTransport {
    fn buffers(&self) -> &BufferPool {
        match self {
            PeerTransport::Tcp(t) => t.buffers(),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.buffers(),
        }
    }

    fn send(&mut self, to: Remote, buf: Buf) -> Result<(), SendError> {
        match self {
            PeerTransport::Tcp(t) => t.send(to, buf),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.send(to, buf),
        }
    }

    fn poll(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError> {
        match self {
            PeerTransport::Tcp(t) => t.poll(now_ns, events),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.poll(now_ns, events),
        }
    }

    fn park(&mut self, timeout_ns: u64) -> Result<(), TransportError> {
        match self {
            PeerTransport::Tcp(t) => t.park(timeout_ns),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.park(timeout_ns),
        }
    }

    fn stats(&self) -> &TransportStats {
        match self {
            PeerTransport::Tcp(t) => t.stats(),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.stats(),
        }
    }
}
