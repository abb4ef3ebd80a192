//! The datagram transport: Aurora frames over Ethernet/IPv4/UDP on any [`Port`], made reliable by
//! one [`Session`] per peer. With a DPDK ethdev as the port this is the `dpdk` transport.
//!
//! Per poll: hand out events left over from the last poll; if none are left, send the lone acks
//! due, flush queued frames, receive one burst, run each frame through [`packet::parse`], the peer
//! table (source IP and port, then source MAC), [`SegmentHeader::read`], the control
//! authenticator, the peer's session, and — for in-order data — [`FrameRules::decode_datagram`]
//! before the frame is copied into a pool buffer and handed up; then run the session timers
//! (SYN, retransmission) and flush again. Every drop is counted by reason in [`DatagramStats`].
//!
//! Copies, by design (eRPC: small messages copy cheaper than they pin): a sent frame is copied
//! once into the device buffer behind the headers, and stays in its pool buffer until the peer
//! acknowledges it (that copy is what a retransmission resends); a received frame is copied once
//! from the device buffer into a pool buffer, so the device buffer goes back to the NIC at once.
//!
//! Bounds: at most `window_frames` unacked frames per peer (`QueueFull` beyond), one receive
//! burst per poll, and an event backlog preallocated for the worst case of one burst plus every
//! window released and every peer going up and down; receiving pauses while a backlog remains, so
//! a consumer that stops polling is backpressure, not growth.

use super::packet::{self, Endpoint, HEADERS_LEN};
use super::port::Port;
use super::session::{
    DownCause, SegmentDrop, SegmentHeader, SegmentKind, Session, SessionConfig, Sink,
    CONTROL_PAYLOAD_LEN, SEGMENT_HEADER_LEN,
};
use crate::transport::{
    Buf, BufferPool, DownReason, Event, PeerId, RejectReason, Remote, SendError, SendErrorKind,
    Transport, TransportError, TransportStats,
};
use crate::wire::{FrameHeader, FrameRules, HEADER_LEN};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use std::ops::Range;

type HmacSha256 = Hmac<Sha256>;

/// The shortest cluster secret accepted (as the TCP handshake).
pub const MIN_SECRET_BYTES: usize = crate::transport::handshake::MIN_SECRET_BYTES;

/// How a datagram transport is set up.
#[derive(Debug, Clone)]
pub struct DatagramConfig {
    pub node_id: PeerId,
    pub cluster_id: u64,
    /// Authenticates `SYN`/`SYNACK`: a node without it cannot open a session.
    pub secret: Vec<u8>,
    /// This node's MAC, IP and UDP port (the MAC is the port's own).
    pub local: Endpoint,
    /// Every other member, by id.
    pub peers: Vec<(PeerId, Endpoint)>,
    pub session: SessionConfig,
    /// Pool slab size: the largest frame (header + payload) sent or accepted.
    pub slab_bytes: usize,
    pub pool_slabs: usize,
    /// Frames received per poll at most.
    pub rx_burst: usize,
    /// Largest payload accepted in a frame (the wire rules' limit).
    pub max_payload_len_bytes: u32,
    /// Test-only loss knob: the transport itself discards each segment it would send with
    /// probability 1/n (0: off; pseudo-random, seeded, so losses never fall into step with a
    /// retransmission window). Lets the loss tests run over a device that never loses anything.
    pub test_drop_one_in: u64,
}

/// Counters beyond [`TransportStats`]: every drop by its reason, and the reliability layer's work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatagramStats {
    packet_drops: [u64; packet::Drop::ALL.len()],
    segment_drops: [u64; SegmentDrop::ALL.len()],
    /// From an IP and UDP port in no peer entry, or a peer's address with another MAC.
    pub unknown_peer: u64,
    /// A `SYN`/`SYNACK` whose authenticator did not verify (no cluster secret).
    pub bad_mac: u64,
    /// In-order data that is not one valid Aurora frame (bad magic, cluster, crc, length…).
    pub bad_frame: u64,
    /// Frames a full device queue or an empty device mempool lost on send.
    pub tx_device_full: u64,
    /// Segments discarded by the test-only drop knob.
    pub tx_test_dropped: u64,
    /// Segments handed to the device.
    pub tx_segments: u64,
    /// Frames received from the device (before any check).
    pub rx_frames: u64,
}

impl DatagramStats {
    /// Frames dropped by the Ethernet/IPv4/UDP checks for `reason`.
    pub fn packet_drops(&self, reason: packet::Drop) -> u64 {
        self.packet_drops[reason as usize]
    }

    /// Segments dropped by the reliability layer for `reason`.
    pub fn segment_drops(&self, reason: SegmentDrop) -> u64 {
        self.segment_drops[reason as usize]
    }

    /// Every drop counter with its label, for rendering.
    pub fn drops_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let packets = packet::Drop::ALL
            .iter()
            .map(|r| (r.label(), self.packet_drops(*r)));
        let segments = SegmentDrop::ALL
            .iter()
            .map(|r| (r.label(), self.segment_drops(*r)));
        let others = [
            ("unknown_peer", self.unknown_peer),
            ("bad_mac", self.bad_mac),
            ("bad_frame", self.bad_frame),
        ];
        packets.chain(segments).chain(others)
    }
}

struct PeerSlot {
    id: PeerId,
    endpoint: Endpoint,
    /// The port the peer's authenticated control segments arrive on; `None` until the first.
    port: Option<usize>,
    session: Session<Buf>,
    partial: Partial,
}

/// A frame being reassembled from its segments.
#[derive(Default)]
struct Partial {
    buf: Option<Buf>,
    /// The frame outgrew a slab: its remaining segments are consumed and it is dropped.
    overflow: bool,
}

/// The transport. See the module docs.
pub struct DatagramTransport<P: Port> {
    ports: Vec<P>,
    /// Frame bytes one datagram carries on every port.
    mss: usize,
    pool: BufferPool,
    rules: FrameRules,
    cfg: DatagramConfig,
    mac_key: HmacSha256,
    peers: Vec<PeerSlot>,
    backlog: VecDeque<Event>,
    rx: Vec<P::Rx>,
    stats: TransportStats,
    dstats: DatagramStats,
    now_ns: u64,
    /// State of the test-only loss knob's generator.
    loss_rng: u64,
}

impl<P: Port> DatagramTransport<P> {
    /// Builds the transport over `ports` (one segment joins them all, or each reaches some
    /// peers: a memif mesh has one port per peer); a peer is reached on the port its
    /// authenticated `SYN` arrived on, and `SYN`s go out on every port until then. Sessions start
    /// connecting on the first poll. Create it on the shard's thread (the pool is touched here).
    pub fn new(ports: Vec<P>, cfg: DatagramConfig) -> Result<Self, TransportError> {
        let bad = TransportError::Config;
        cfg.session.validate().map_err(bad)?;
        if cfg.secret.len() < MIN_SECRET_BYTES {
            return Err(bad(format!(
                "cluster secret is {} bytes; use at least {MIN_SECRET_BYTES}",
                cfg.secret.len()
            )));
        }
        if cfg.rx_burst == 0 || cfg.rx_burst > 512 {
            return Err(bad(format!(
                "rx_burst = {} must be in 1..=512",
                cfg.rx_burst
            )));
        }
        let Some(max_frame_bytes) = ports.iter().map(P::max_frame_bytes).min() else {
            return Err(bad("the datagram transport needs at least one port".into()));
        };
        let smallest = packet::frame_len(SEGMENT_HEADER_LEN + HEADER_LEN);
        if max_frame_bytes < smallest {
            return Err(bad(format!(
                "a port carries frames of at most {max_frame_bytes} B, less than the {smallest} B \
                 of an empty Aurora frame with its headers; raise the device MTU"
            )));
        }
        for (i, (id, ep)) in cfg.peers.iter().enumerate() {
            if *id == cfg.node_id || cfg.peers[..i].iter().any(|(o, e)| o == id || e == ep) {
                return Err(bad(format!(
                    "peer table entry {i} (node {id}) repeats a node or address"
                )));
            }
        }
        let rules = FrameRules::new(cfg.cluster_id, cfg.max_payload_len_bytes)
            .map_err(|e| TransportError::Config(e.to_string()))?
            .with_local_node(cfg.node_id);
        let pool = BufferPool::new(cfg.slab_bytes, cfg.pool_slabs)?;
        let mut peers = Vec::with_capacity(cfg.peers.len());
        for (id, endpoint) in &cfg.peers {
            let epoch = random_epoch().map_err(|source| TransportError::Io {
                op: "getrandom (session epoch)",
                source,
            })?;
            peers.push(PeerSlot {
                id: *id,
                endpoint: *endpoint,
                session: Session::new(cfg.session, epoch),
                port: None,
                partial: Partial::default(),
            });
        }
        // Worst case between two drains: each frame of a burst delivers one frame or flips the
        // session down and up; every window is released; every peer goes down on a timer.
        let backlog_bound = 2 * cfg.rx_burst * ports.len()
            + cfg.peers.len() * (usize::from(cfg.session.window_frames) + 2);
        let mac_key =
            HmacSha256::new_from_slice(&cfg.secret).expect("HMAC accepts keys of any length");
        Ok(Self {
            ports,
            mss: max_frame_bytes - HEADERS_LEN - SEGMENT_HEADER_LEN,
            pool,
            rules,
            mac_key,
            peers,
            backlog: VecDeque::with_capacity(backlog_bound),
            rx: Vec::with_capacity(cfg.rx_burst),
            stats: TransportStats::default(),
            dstats: DatagramStats::default(),
            now_ns: 0,
            loss_rng: u64::from(random_epoch().unwrap_or(1)) << 32 | 0x5DEE_CE66,
            cfg,
        })
    }

    /// Drop and reliability counters.
    pub fn datagram_stats(&self) -> &DatagramStats {
        &self.dstats
    }

    /// The ports, e.g. for their device counters.
    pub fn ports(&self) -> &[P] {
        &self.ports
    }

    /// Data segments resent after a timeout, over all peers.
    pub fn retransmitted_frames(&self) -> u64 {
        self.peers
            .iter()
            .map(|p| p.session.retransmitted_frames())
            .sum()
    }

    fn drain_backlog(&mut self, events: &mut Vec<Event>) -> usize {
        let room = events.capacity() - events.len();
        let n = room.min(self.backlog.len());
        events.extend(self.backlog.drain(..n));
        n
    }

    fn receive(&mut self) {
        for port in 0..self.ports.len() {
            debug_assert!(self.rx.is_empty());
            self.ports[port].rx_burst(&mut self.rx, self.cfg.rx_burst);
            debug_assert!(self.rx.len() <= self.cfg.rx_burst);
            let mut rx = std::mem::take(&mut self.rx);
            for frame in rx.drain(..) {
                self.dstats.rx_frames += 1;
                self.on_frame(port, P::rx_bytes(&frame));
            }
            self.rx = rx;
        }
    }

    fn on_frame(&mut self, port: usize, frame: &[u8]) {
        let datagram = match packet::parse(frame, &self.cfg.local) {
            Ok(d) => d,
            Err(reason) => {
                self.dstats.packet_drops[reason as usize] += 1;
                return;
            }
        };
        let src = datagram.src;
        let Some(index) = self
            .peers
            .iter()
            .position(|p| p.endpoint.ip == src.ip && p.endpoint.udp_port == src.udp_port)
            .filter(|i| self.peers[*i].endpoint.mac == src.mac)
        else {
            self.dstats.unknown_peer += 1;
            self.stats.count_rejected(RejectReason::UnknownPeer);
            return;
        };
        let (header, payload) = match SegmentHeader::read(datagram.body) {
            Ok(parts) => parts,
            Err(reason) => {
                self.dstats.segment_drops[reason as usize] += 1;
                return;
            }
        };
        let peer_id = self.peers[index].id;
        if matches!(header.kind, SegmentKind::Syn | SegmentKind::SynAck) {
            let expected =
                control_mac(&self.mac_key, &self.cfg, peer_id, self.cfg.node_id, &header);
            if !constant_time_eq(&expected, payload) {
                self.dstats.bad_mac += 1;
                self.stats.count_rejected(RejectReason::HandshakeBadMac);
                return;
            }
            self.peers[index].port = Some(port);
        }
        self.with_session(index, |session, now_ns, io| {
            if let Err(reason) = session.on_segment(now_ns, &header, payload, io) {
                io.dstats.segment_drops[reason as usize] += 1;
            }
        });
    }

    /// Runs `f` on peer `index`'s session with the I/O it needs: the transport's fields borrowed
    /// apart from that peer's slot.
    fn with_session<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut Session<Buf>, u64, &mut Io<'_, P>) -> R,
    ) -> R {
        let Self {
            ports,
            pool,
            rules,
            cfg,
            mac_key,
            peers,
            backlog,
            stats,
            dstats,
            now_ns,
            loss_rng,
            ..
        } = self;
        let slot = &mut peers[index];
        let mut io = Io {
            ports,
            pool,
            rules,
            cfg,
            mac_key,
            backlog,
            stats,
            dstats,
            peer: slot.id,
            remote: slot.endpoint,
            port: slot.port,
            partial: &mut slot.partial,
            loss_rng,
        };
        f(&mut slot.session, *now_ns, &mut io)
    }

    fn for_each_session(&mut self, mut f: impl FnMut(&mut Session<Buf>, u64, &mut Io<'_, P>)) {
        for index in 0..self.peers.len() {
            self.with_session(index, &mut f);
        }
    }
}

impl<P: Port> Transport for DatagramTransport<P> {
    fn buffers(&self) -> &BufferPool {
        &self.pool
    }

    fn send(&mut self, to: Remote, buf: Buf) -> Result<(), SendError> {
        let refuse = |kind, buf| Err(SendError { to, kind, buf });
        if !self.pool.owns(&buf) {
            return refuse(SendErrorKind::ForeignBuffer, buf);
        }
        let framed = buf.len() >= HEADER_LEN
            && FrameHeader::read_from(buf.as_slice())
                .is_some_and(|h| h.length as usize + HEADER_LEN == buf.len());
        if !framed {
            let len_bytes = buf.len();
            let why = "the header's length field must equal the payload length";
            return refuse(SendErrorKind::MalformedFrame { len_bytes, why }, buf);
        }
        let Remote::Peer(id) = to else {
            return refuse(SendErrorKind::NotConnected, buf);
        };
        let Some(index) = self.peers.iter().position(|p| p.id == id) else {
            return refuse(SendErrorKind::NotConnected, buf);
        };
        let mss = self.mss;
        let len_bytes = buf.len();
        match self.with_session(index, |session, now_ns, io| {
            session.send(now_ns, buf, len_bytes, mss, io)
        }) {
            Ok(()) => Ok(()),
            Err((buf, super::session::Refused::NotUp)) => refuse(SendErrorKind::NotConnected, buf),
            Err((buf, super::session::Refused::TooLarge { .. })) => {
                let why = "needs more segments than the send window holds: raise window_frames";
                refuse(SendErrorKind::MalformedFrame { len_bytes, why }, buf)
            }
            Err((buf, super::session::Refused::WindowFull { window_frames })) => refuse(
                SendErrorKind::QueueFull {
                    capacity: usize::from(window_frames),
                },
                buf,
            ),
        }
    }

    fn poll(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError> {
        let mut appended = self.drain_backlog(events);
        if !self.backlog.is_empty() {
            return Ok(appended);
        }
        self.now_ns = now_ns;
        self.for_each_session(|session, _, io| session.flush_ack(io));
        self.ports.iter_mut().for_each(P::flush);
        self.receive();
        self.for_each_session(|session, now, io| session.tick(now, io));
        self.ports.iter_mut().for_each(P::flush);
        assert!(
            self.backlog.len() <= self.backlog.capacity(),
            "event backlog stays within its preallocated bound"
        );
        appended += self.drain_backlog(events);
        Ok(appended)
    }

    /// Poll-mode devices raise no interrupt a shard could sleep on, so parking is a plain sleep of
    /// `timeout_ns`: the shard gives its core away (what lets three nodes share two cores) at the
    /// price of up to `timeout_ns` of extra latency for whatever arrives meanwhile. Production
    /// configurations pin and spin (`spin_us` large), and never get here while busy.
    fn park(&mut self, timeout_ns: u64) -> Result<(), TransportError> {
        std::thread::sleep(std::time::Duration::from_nanos(timeout_ns));
        Ok(())
    }

    fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

/// What a session's requests act on: the port, the pool, the event backlog, the counters.
struct Io<'a, P: Port> {
    ports: &'a mut [P],
    pool: &'a BufferPool,
    rules: &'a FrameRules,
    cfg: &'a DatagramConfig,
    mac_key: &'a HmacSha256,
    backlog: &'a mut VecDeque<Event>,
    stats: &'a mut TransportStats,
    dstats: &'a mut DatagramStats,
    peer: PeerId,
    remote: Endpoint,
    /// Where the peer is reached; `None`: every port.
    port: Option<usize>,
    partial: &'a mut Partial,
    loss_rng: &'a mut u64,
}

impl<P: Port> Io<'_, P> {
    fn push(&mut self, event: Event) {
        debug_assert!(
            self.backlog.len() < self.backlog.capacity(),
            "event backlog bound exceeded"
        );
        self.backlog.push_back(event);
    }
}

impl<P: Port> Sink<Buf> for Io<'_, P> {
    fn transmit(&mut self, header: &SegmentHeader, payload: Option<(&Buf, Range<usize>)>) {
        let knob = self.cfg.test_drop_one_in;
        self.dstats.tx_segments += 1;
        if knob != 0 && super::port::xorshift(self.loss_rng) % knob == 0 {
            self.dstats.tx_test_dropped += 1;
            return;
        }
        let control = matches!(header.kind, SegmentKind::Syn | SegmentKind::SynAck);
        let mac = control
            .then(|| control_mac(self.mac_key, self.cfg, self.cfg.node_id, self.peer, header));
        let body: &[u8] = match (&mac, payload) {
            (Some(mac), _) => mac,
            (None, Some((buf, range))) => &buf.as_slice()[range],
            (None, None) => &[],
        };
        let body_len = SEGMENT_HEADER_LEN + body.len();
        let len = packet::frame_len(body_len);
        let (local, remote) = (self.cfg.local, self.remote);
        let targets = match self.port {
            Some(port) => port..port + 1,
            None => 0..self.ports.len(),
        };
        for port in &mut self.ports[targets] {
            let queued = port.send_with(len, |frame| {
                header.write(&mut frame[HEADERS_LEN..]);
                frame[HEADERS_LEN + SEGMENT_HEADER_LEN..HEADERS_LEN + body_len]
                    .copy_from_slice(body);
                packet::write_headers(frame, &local, &remote, body_len);
            });
            if !queued {
                self.dstats.tx_device_full += 1;
            }
        }
    }

    fn deliver(&mut self, payload: &[u8], last: bool) -> bool {
        if self.partial.buf.is_none() && !self.partial.overflow {
            let Ok(buf) = self.pool.take() else {
                self.stats.receive_stalls += 1;
                return false;
            };
            self.partial.buf = Some(buf);
        }
        if let Some(buf) = &mut self.partial.buf {
            if !buf.extend_from(payload) {
                // Larger than a slab: a frame this node cannot hold. Consume it to its end.
                self.partial.buf = None;
                self.partial.overflow = true;
                self.stats.count_rejected(RejectReason::Oversize);
            }
        }
        if !last {
            return true;
        }
        if std::mem::take(&mut self.partial.overflow) {
            self.dstats.bad_frame += 1;
            return true;
        }
        let buf = self
            .partial
            .buf
            .take()
            .expect("a frame in progress has its buffer");
        // Consumed (acked) even when invalid: the peer would resend the same bad bytes forever.
        let valid = match self.rules.decode_datagram(buf.as_slice()) {
            Ok(frame) => {
                let sender_ok = frame.check_sender(self.peer).is_ok();
                if !sender_ok {
                    self.stats.count_rejected(RejectReason::WrongSender);
                }
                sender_ok
            }
            Err(_) => false,
        };
        if !valid {
            self.dstats.bad_frame += 1;
            return true;
        }
        self.stats.frames_received += 1;
        self.stats.bytes_received += buf.len() as u64;
        let from = Remote::Peer(self.peer);
        self.push(Event::Received { from, buf });
        true
    }

    fn released(&mut self, frame: Buf) {
        let len_bytes = frame.len();
        drop(frame);
        self.stats.frames_sent += 1;
        let to = Remote::Peer(self.peer);
        self.push(Event::SendComplete { to, len_bytes });
    }

    fn up(&mut self) {
        self.stats.peers_up += 1;
        let remote = Remote::Peer(self.peer);
        self.push(Event::PeerUp { remote });
    }

    fn down(&mut self, cause: DownCause) {
        *self.partial = Partial::default();
        self.stats.peers_down += 1;
        let reason = match cause {
            DownCause::PeerRestarted => DownReason::Closed,
            DownCause::Unreachable { .. } => DownReason::Io {
                errno: libc::ETIMEDOUT,
            },
        };
        tracing::warn!(peer = self.peer, ?cause, "datagram session down");
        let remote = Remote::Peer(self.peer);
        self.push(Event::PeerDown { remote, reason });
    }
}

/// HMAC-SHA256 over the segment's identity: cluster, sender, receiver and the header fields, so a
/// `SYN` cannot be forged without the secret nor replayed towards another node or cluster.
fn control_mac(
    key: &HmacSha256,
    cfg: &DatagramConfig,
    from: PeerId,
    to: PeerId,
    header: &SegmentHeader,
) -> [u8; CONTROL_PAYLOAD_LEN] {
    let mut mac = key.clone();
    mac.update(b"aurora-datagram-control-v1");
    mac.update(&cfg.cluster_id.to_le_bytes());
    mac.update(&from.to_le_bytes());
    mac.update(&to.to_le_bytes());
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    header.write(&mut bytes);
    mac.update(&bytes);
    mac.finalize().into_bytes().into()
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_epoch() -> std::io::Result<u32> {
    let nonce = crate::transport::handshake::fresh_nonce()?;
    let epoch = u32::from_le_bytes(nonce[..4].try_into().expect("nonce is 32 bytes"));
    Ok(epoch.max(1))
}
