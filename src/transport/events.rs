//! What a transport reports from `poll`, and how `send` and `poll` fail.

use super::{Buf, ConnId, PeerId, RejectReason};
use std::fmt;

/// The other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Remote {
    /// A cluster node, authenticated with the cluster secret.
    Peer(PeerId),
    /// An accepted connection that is not a peer (clients; a later issue).
    Conn(ConnId),
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Peer(id) => write!(f, "peer {id}"),
            Remote::Conn(ConnId(id)) => write!(f, "connection {id}"),
        }
    }
}

/// One completion.
#[derive(Debug)]
pub enum Event {
    /// A complete, checksum-verified frame (header included) in a pool buffer. Dropping the buffer
    /// returns it to the pool; holding it holds a slab (backpressure on the receive path).
    Received { from: Remote, buf: Buf },
    /// The fabric is done with a buffer passed to `send`; it is back in the pool.
    SendComplete { to: Remote, len_bytes: usize },
    /// The remote is reachable (for a peer: the authenticated handshake succeeded). Frames from it
    /// are delivered only after this event.
    PeerUp { remote: Remote },
    /// The connection is gone; nothing more arrives from it and queued sends were dropped. The
    /// transport reconnects to peers on its own (with backoff) and reports `PeerUp` again.
    PeerDown { remote: Remote, reason: DownReason },
}

/// Why a connection went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// The remote closed the connection (end of stream).
    Closed,
    /// The socket or queue pair failed with this errno.
    Io { errno: i32 },
    /// This side closed it because the remote broke the protocol or a deadline (counted in
    /// [`super::TransportStats`] under the same reason).
    Rejected(RejectReason),
    /// A newer authenticated connection from the same peer replaced this one.
    Replaced,
    /// The in-process fabric cut the link (simulated partition or crash).
    Cut,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Closed => f.write_str("closed by remote"),
            DownReason::Io { errno } => {
                write!(
                    f,
                    "i/o error: {}",
                    std::io::Error::from_raw_os_error(*errno)
                )
            }
            DownReason::Rejected(reason) => write!(f, "rejected: {}", reason.label()),
            DownReason::Replaced => f.write_str("replaced by a newer connection"),
            DownReason::Cut => f.write_str("link cut by the in-process fabric"),
        }
    }
}

/// Why a send was refused. The buffer is returned in [`SendError::buf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendErrorKind {
    /// No established connection to the remote (it is down or reconnecting): retry after `PeerUp`.
    #[error("not connected (wait for PeerUp)")]
    NotConnected,
    /// The per-connection send queue is full: the remote is slow; retry after a `SendComplete`.
    #[error("send queue full ({capacity} frames queued); retry after a SendComplete")]
    QueueFull { capacity: usize },
    /// The buffer is not from this transport's pool, so the fabric has not registered it.
    #[error("buffer is not from this transport's pool; take it from Transport::buffers()")]
    ForeignBuffer,
    /// The buffer does not hold exactly one well-formed frame.
    #[error("buffer of {len_bytes} B is not one well-formed frame: {why}")]
    MalformedFrame { len_bytes: usize, why: &'static str },
}

/// A refused send, with the buffer handed back.
#[derive(Debug, thiserror::Error)]
#[error("send to {to} failed: {kind}")]
pub struct SendError {
    pub to: Remote,
    pub kind: SendErrorKind,
    pub buf: Buf,
}

/// A failure of the transport itself (not of one connection): the shard cannot go on polling it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A system call on the ring, socket or device failed.
    #[error("{op} failed: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The configuration cannot work.
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The buffer pool could not be created.
    #[error(transparent)]
    Pool(#[from] super::PoolError),
}
