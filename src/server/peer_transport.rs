//! The node's peer fabric: tcp_uring, (feature `dpdk`) the DPDK datagram transport, or (feature
//! `rdma`) RC queue pairs over verbs, behind one type so the node loop is the same for all.

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
    #[cfg(feature = "rdma")]
    Rdma(crate::transport::rdma::RdmaTransport),
}

impl PeerTransport {
    /// Adds `fd` to what `park` wakes on. DPDK parks by sleeping (poll-mode drivers have no
    /// wakeup the node can wait on), so there client input waits out the park timeout; RDMA
    /// parks in `poll(2)` on its completion channel, rdma_cm channel and this fd.
    pub(super) fn watch_wakeup_fd(&mut self, fd: RawFd) {
        match self {
            PeerTransport::Tcp(t) => t.watch_wakeup_fd(fd),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(_) => {}
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(t) => t.watch_wakeup_fd(fd),
        }
    }

    /// The transport's name for `/status`.
    pub(super) fn name(&self) -> &'static str {
        match self {
            PeerTransport::Tcp(_) => "tcp_uring",
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(_) => "dpdk",
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(_) => "rdma",
        }
    }
}

/// The one-sided ring of the RDMA transport ([`super::ring_path`]); other fabrics have none.
#[cfg(feature = "rdma")]
impl PeerTransport {
    /// Registers this node's ring for `leader` in `term` (revoking earlier grants); the grant's
    /// bytes, or `None` (logged) if it cannot be registered.
    pub(super) fn ring_grant(&mut self, leader: u64, term: u64) -> Option<[u8; 32]> {
        let PeerTransport::Rdma(t) = self else {
            return None;
        };
        match t.grant_ring(leader, term) {
            Ok(grant) => Some(grant.to_bytes()),
            Err(e) => {
                tracing::warn!(leader, term, error = %e, "ring not granted; the leader sends by SEND");
                None
            }
        }
    }

    /// Drops this node's ring registration: the holder of the last grant can no longer write.
    pub(super) fn ring_revoke(&mut self) {
        if let PeerTransport::Rdma(t) = self {
            t.revoke_ring();
        }
    }

    pub(super) fn ring_accept(
        &mut self,
        peer: u64,
        grant: crate::transport::rdma::ring::RingGrant,
    ) {
        if let PeerTransport::Rdma(t) = self {
            t.accept_ring_grant(peer, grant);
        }
    }

    /// RDMA-WRITEs `frame` into slot `index` of `to`'s ring under its grant for `term`.
    pub(super) fn ring_write(
        &mut self,
        to: u64,
        term: u64,
        index: u64,
        commit_index: u64,
        frame: &[u8],
    ) -> Result<(), crate::transport::rdma::ring::RingError> {
        match self {
            PeerTransport::Rdma(t) => t.ring_append(to, term, index, term, commit_index, frame),
            _ => Err(crate::transport::rdma::ring::RingError::NoRing),
        }
    }

    pub(super) fn take_ring_appends(
        &mut self,
        out: &mut Vec<crate::transport::rdma::ring::RingAppend>,
    ) -> usize {
        match self {
            PeerTransport::Rdma(t) => t.take_ring_appends(out),
            _ => 0,
        }
    }

    pub(super) fn ring_entry(&self, index: u64) -> Option<&[u8]> {
        match self {
            PeerTransport::Rdma(t) => t.ring_entry(index),
            _ => None,
        }
    }
}

impl Transport for PeerTransport {
    fn buffers(&self) -> &BufferPool {
        match self {
            PeerTransport::Tcp(t) => t.buffers(),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.buffers(),
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(t) => t.buffers(),
        }
    }

    fn send(&mut self, to: Remote, buf: Buf) -> Result<(), SendError> {
        match self {
            PeerTransport::Tcp(t) => t.send(to, buf),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.send(to, buf),
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(t) => t.send(to, buf),
        }
    }

    fn poll(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError> {
        match self {
            PeerTransport::Tcp(t) => t.poll(now_ns, events),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.poll(now_ns, events),
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(t) => t.poll(now_ns, events),
        }
    }

    fn park(&mut self, timeout_ns: u64) -> Result<(), TransportError> {
        match self {
            PeerTransport::Tcp(t) => t.park(timeout_ns),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.park(timeout_ns),
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(t) => t.park(timeout_ns),
        }
    }

    fn stats(&self) -> &TransportStats {
        match self {
            PeerTransport::Tcp(t) => t.stats(),
            #[cfg(feature = "dpdk")]
            PeerTransport::Dpdk(t) => t.stats(),
            #[cfg(feature = "rdma")]
            PeerTransport::Rdma(t) => t.stats(),
        }
    }
}

/// Opens the RDMA transport for this node (`transport = "rdma"`).
///
/// Addresses: rdma_cm binds and dials IPv4 addresses, and the address of a RoCE port is the
/// IPv4-mapped GID (`::ffff:a.b.c.d`) of its netdev. So the members' `peer_addr`s are the
/// fabric addresses: this node listens on its own `peer_addr` (whose IP must be the chosen
/// GID's), and dials the larger ids at theirs; the port is the rdma_cm port space's, not TCP's.
/// Without `rdma.device` the device whose GID carries this member's IP is used, so one shared
/// file serves every node. Clients stay on the TCP client port.
///
/// Frames: the pool's slabs are the server's peer slab ([`ServerConfig::peer_slab_bytes`],
/// 32 KiB for the default frame limit), so every peer frame — the largest write's Append and a
/// snapshot chunk — is one SEND of one registered slab, as on tcp_uring.
#[cfg(feature = "rdma")]
pub(super) fn open_rdma(cfg: &super::ServerConfig) -> Result<PeerTransport, String> {
    use crate::transport::handshake::ClusterSecret;
    use crate::transport::rdma::{device, RdmaConfig, RdmaTransport};
    use std::net::SocketAddr;

    let c = &cfg.config;
    let fail = |why: String| format!("peer transport (rdma): {why}");
    let r = c
        .rdma
        .clone()
        .ok_or_else(|| fail("the configuration has no validated [rdma] section".into()))?;
    let me = c.this_member();
    let v4 = |id: u64, addr: SocketAddr| match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(fail(format!(
            "member {id}'s peer_addr {addr} is not IPv4: rdma_cm reaches a RoCE port at the IPv4 \
             address its GID maps (::ffff:a.b.c.d); give the member that address"
        ))),
    };
    let listen = v4(me.id, me.peer_addr)?;
    let sysfs = device::default_sysfs();
    let gid_index = r.gid_index.map(u32::from);
    let hint = "(configuration keys rdma.device and rdma.gid_index; transport = \"tcp_uring\" \
                runs without RDMA)";
    let choice = match &r.device {
        Some(name) => device::choose(&sysfs, Some(name), gid_index)
            .map_err(|e| fail(format!("{e} {hint}")))?,
        None => device_by_address(&sysfs, *listen.ip(), gid_index)
            .map_err(|e| fail(format!("{e} {hint}")))?,
    };
    if choice.addr != *listen.ip() {
        return Err(fail(format!(
            "member {}'s peer_addr is {listen}, but {} GID {} maps {}: rdma_cm listens on the \
             GID's address, so set this member's peer_addr to {}:{}, or choose the device and \
             GID that carry {} {hint}",
            me.id,
            choice.device,
            choice.gid_index,
            choice.addr,
            choice.addr,
            listen.port(),
            listen.ip()
        )));
    }
    let secret = ClusterSecret::new(c.secret.as_bytes())
        .map_err(|e| fail(format!("cluster secret: {e}")))?;
    let mut t = RdmaConfig::new(c.node_id, c.cluster_id, secret);
    t.device = Some(choice.device.clone());
    t.gid_index = Some(choice.gid_index);
    t.listen_port = Some(listen.port());
    for m in &c.members {
        if m.id > c.node_id {
            t.dial.push((m.id, v4(m.id, m.peer_addr)?));
        } else if m.id < c.node_id {
            t.accept_from.push(m.id);
        }
    }
    let peers = c.members.len().saturating_sub(1);
    // Two slots per peer: a redialed peer's new connection arrives before the old one is torn down.
    t.max_connections = u16::try_from(2 * peers + 2).unwrap_or(u16::MAX).min(255);
    t.send_depth = r.send_depth;
    t.recv_depth = r.recv_depth;
    t.slab_bytes = cfg.peer_slab_bytes;
    // Every slot's posted receives, every peer's sends in flight, and room for the frames the
    // loop holds while it encodes and steps them.
    t.pool_slabs = usize::from(t.max_connections) * usize::from(t.recv_depth)
        + peers * usize::from(t.send_depth)
        + 256;
    t.backoff_min_ms = c.timing.reconnect_backoff_ms.max(1);
    t.backoff_max_ms = t.backoff_min_ms.max(1_000);
    // Followers send nothing to each other: a connection between two of them broken during a
    // partition would stay half-open (the dialer never learns) without a probe.
    t.keepalive_ms = c.timing.heartbeat_interval_ms.saturating_mul(5).max(100);
    // The one-sided ring (`rdma.ring_slots`): one peer slab per slot, so an Append frame that
    // fits a slab fits a slot.
    t.ring_slots = r.ring_slots;
    t.ring_slot_bytes = u32::try_from(super::ring_path::ring_slot_bytes(cfg))
        .map_err(|_| fail("the peer slab does not fit a ring slot".into()))?;
    RdmaTransport::new(t)
        .map(PeerTransport::Rdma)
        .map_err(|e| fail(format!("{e} {hint}")))
}

/// The device whose IPv4-mapped GID (`gid_index`, or the first RoCE v2 one) is `ip`.
#[cfg(feature = "rdma")]
fn device_by_address(
    sysfs: &std::path::Path,
    ip: std::net::Ipv4Addr,
    gid_index: Option<u32>,
) -> Result<crate::transport::rdma::device::DeviceChoice, String> {
    use crate::transport::rdma::device;

    let names = device::list(sysfs);
    if names.is_empty() {
        // The transport's own error: no device, and how to get one.
        return device::choose(sysfs, None, gid_index).map_err(|e| e.to_string());
    }
    let mut seen = Vec::with_capacity(names.len());
    for name in &names {
        match device::choose(sysfs, Some(name), gid_index) {
            Ok(choice) if choice.addr == ip => return Ok(choice),
            Ok(choice) => seen.push(format!("{name} GID {} = {}", choice.gid_index, choice.addr)),
            Err(e) => seen.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "no RDMA device has an IPv4-mapped GID for this member's peer_addr IP {ip} (devices: {}); \
         set the member's peer_addr to its device's address, or name the device in rdma.device",
        seen.join("; ")
    ))
}
