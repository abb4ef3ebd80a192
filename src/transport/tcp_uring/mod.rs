//! `tcp_uring`: TCP peers on one io_uring per shard, the default transport (no system libraries).
//!
//! - **Ring**: `SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG`. With DEFER_TASKRUN completions are
//!   produced only when this thread enters the kernel with GETEVENTS (notes/fabric-rigs.md); with
//!   TASKRUN_FLAG the kernel raises a flag in the shared SQ ring when such work is waiting. So
//!   [`Transport::poll`] enters the kernel only when it has submissions or the flag is up — one
//!   `io_uring_enter` per poll at most, submitting and reaping together, and none when idle. The
//!   ring must be created and used on the shard's thread (SINGLE_ISSUER enforces it). SQPOLL is
//!   not used: it needs a spare core (ms-scale latency on 2 vCPUs).
//! - **Registered files**: every connection socket sits in a fixed-file slot (the slot index is
//!   the connection index), so submissions skip the per-op fd lookup.
//! - **Registered buffers**: the whole [`BufferPool`] region is fixed buffer 0. Frames of at least
//!   `zerocopy_min_bytes` go out with `SEND_ZC` from the fixed buffer (pages pinned once, no copy);
//!   smaller ones with plain `SEND`, which copies into the socket buffer — for small frames the
//!   copy is cheaper than zero-copy's extra notification completion (measured, see
//!   docs/BENCHMARKS.md). Either way the frame is never copied in user space.
//! - **Receive**: one multishot `RECV` per connection picks buffers from a provided-buffer ring
//!   whose buffers are pool slabs (see `bufring`); frames are reassembled into their own slabs
//!   (see `reader` for why that one copy is the right trade).
//! - **Framing**: the wire header (`crate::wire`) is the length prefix; it is validated as soon as
//!   its bytes are in, the checksum when the frame is complete.
//! - **Peers**: the smaller node id dials, the larger accepts; both run the HMAC handshake of
//!   [`super::handshake`] before any other frame is delivered. A dial that fails or a connection
//!   that drops is retried with exponential backoff and jitter. Dead peers are detected by TCP
//!   keepalive and `TCP_USER_TIMEOUT`.
//! - **Bounds**: connections (`max_connections`), frames queued per connection
//!   (`send_queue_frames`, full → [`SendErrorKind::QueueFull`]), handshake time, the time one
//!   frame may take to arrive (a peer dribbling a byte at a time is cut off), events buffered
//!   between polls, and the pool.
//!
//! Bad input closes only the offending connection, with a log line naming peer, address and
//! reason and a counter in [`TransportStats`] under the same reason; everyone else keeps being
//! served.

mod bufring;
mod reader;
mod socket;

use super::handshake::{self, Acceptor, ClusterSecret, Connector};
use super::{
    Buf, BufferPool, DownReason, Event, PeerId, RejectReason, Remote, SendError, SendErrorKind,
};
use super::{Transport, TransportError, TransportStats};
use crate::wire::{FrameKind, FrameRules, HEADER_LEN};
use bufring::BufRing;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use reader::{FrameReader, ReadError, ReadFrame};
use socket::RawAddr;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

/// Provided-buffer group id of the receive ring.
const RECV_GROUP: u16 = 0;
/// Deadlines are checked at most this often (they are milliseconds-scale; the hot loop stays lean).
const SWEEP_INTERVAL_NS: u64 = 1_000_000;
/// Cap on the backoff exponent (2^16 × the minimum is far above any sane maximum anyway).
const MAX_BACKOFF_SHIFT: u32 = 16;

/// Configuration of one shard's TCP transport. [`TcpUringConfig::new`] fills defaults that suit a
/// 3–7 voter cluster.
#[derive(Debug, Clone)]
pub struct TcpUringConfig {
    pub node_id: PeerId,
    pub cluster_id: u64,
    pub secret: ClusterSecret,
    /// Where to accept peers (and, later, clients); port 0 picks one (see [`TcpUring::local_addr`]).
    pub listen_addr: Option<SocketAddr>,
    /// Peers this node dials: those with a larger id.
    pub dial: Vec<(PeerId, SocketAddr)>,
    /// Peers that dial this node: those with a smaller id.
    pub accept_from: Vec<PeerId>,
    /// Connection slots (dialed + accepted, including handshakes in progress).
    pub max_connections: u16,
    /// Frames queued per connection beyond the one in flight.
    pub send_queue_frames: u16,
    /// Pool slab size: the largest frame (header + payload) this node sends or accepts.
    pub slab_bytes: usize,
    /// Pool slabs (receive ring, queued sends, frames held by the consumer).
    pub pool_slabs: usize,
    /// Provided receive buffers (a power of two); each is one slab.
    pub recv_buffers: u16,
    pub handshake_timeout_ms: u64,
    /// How long one frame may take from its first byte to its last.
    pub frame_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// `TCP_USER_TIMEOUT`: unacknowledged data fails the connection after this long.
    pub user_timeout_ms: u32,
    /// Frames at least this long are sent with `SEND_ZC` from the registered region.
    pub zerocopy_min_bytes: usize,
    /// Submission queue entries.
    pub ring_entries: u32,
}

impl TcpUringConfig {
    /// Defaults: 64 connections, 64 queued frames each, 8 KiB slabs (4 KiB payloads fit), 4096
    /// slabs (32 MiB), 256 receive buffers, 2 s handshake, 1 s frame deadline, 50 ms–2 s backoff.
    pub fn new(node_id: PeerId, cluster_id: u64, secret: ClusterSecret) -> Self {
        Self {
            node_id,
            cluster_id,
            secret,
            listen_addr: None,
            dial: Vec::new(),
            accept_from: Vec::new(),
            max_connections: 64,
            send_queue_frames: 64,
            slab_bytes: 8192,
            pool_slabs: 4096,
            recv_buffers: 256,
            handshake_timeout_ms: 2_000,
            frame_timeout_ms: 1_000,
            connect_timeout_ms: 1_000,
            backoff_min_ms: 50,
            backoff_max_ms: 2_000,
            user_timeout_ms: 5_000,
            zerocopy_min_bytes: usize::MAX,
            ring_entries: 256,
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |why: String| Err(TransportError::Config(why));
        for (peer, addr) in &self.dial {
            if *peer <= self.node_id {
                return bad(format!(
                    "node {} would dial peer {peer} at {addr}, but the smaller id dials: list peer {peer} \
                     under accept_from instead",
                    self.node_id
                ));
            }
        }
        for peer in &self.accept_from {
            if *peer >= self.node_id {
                return bad(format!(
                    "node {} would accept peer {peer}, but the larger id accepts: give peer {peer}'s \
                     address under dial instead",
                    self.node_id
                ));
            }
        }
        if !self.accept_from.is_empty() && self.listen_addr.is_none() {
            return bad("accept_from lists peers but listen_addr is not set".into());
        }
        if self.max_connections == 0
            || usize::from(self.max_connections) < self.dial.len() + self.accept_from.len()
        {
            return bad(format!(
                "max_connections = {} cannot hold the {} configured peers",
                self.max_connections,
                self.dial.len() + self.accept_from.len()
            ));
        }
        if self.slab_bytes < HEADER_LEN + handshake::CHALLENGE_LEN {
            return bad(format!(
                "slab_bytes = {} cannot hold a handshake frame",
                self.slab_bytes
            ));
        }
        if !self.recv_buffers.is_power_of_two() || self.recv_buffers > 1 << 15 {
            return bad(format!(
                "recv_buffers = {} must be a power of two <= 32768",
                self.recv_buffers
            ));
        }
        let reserve = recv_reserve_slabs(self.slab_bytes);
        let need = usize::from(self.recv_buffers) + 2 * reserve;
        if self.pool_slabs < need {
            return bad(format!(
                "pool_slabs = {} is too small: the receive ring takes {} and reassembly needs {} more; \
                 use at least {need}",
                self.pool_slabs,
                self.recv_buffers,
                2 * reserve
            ));
        }
        if self.send_queue_frames == 0
            || self.backoff_min_ms == 0
            || self.backoff_max_ms < self.backoff_min_ms
        {
            return bad(format!(
                "send_queue_frames = {} must be > 0 and 0 < backoff_min_ms = {} <= backoff_max_ms = {}",
                self.send_queue_frames, self.backoff_min_ms, self.backoff_max_ms
            ));
        }
        Ok(())
    }
}

/// Frames one receive buffer can complete at most (each needs a slab): every frame is at least a
/// header, plus the one that was already in progress.
fn recv_reserve_slabs(slab_bytes: usize) -> usize {
    slab_bytes / HEADER_LEN + 1
}

/// Exponential backoff with jitter: the base doubles per consecutive failure from `min_ms` up to
/// `max_ms`, and the delay is uniform in `[base/2, base]` (from `random`) so peers that lost a
/// node at the same moment do not redial in lockstep.
fn backoff_delay_ms(failures: u32, min_ms: u64, max_ms: u64, random: u64) -> u64 {
    let shift = failures.min(MAX_BACKOFF_SHIFT);
    let base_ms = min_ms.saturating_mul(1 << shift).min(max_ms);
    base_ms - random % (base_ms / 2 + 1)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Op {
    Accept = 1,
    Connect = 2,
    Recv = 3,
    Send = 4,
    Wake = 5,
    Cancel = 6,
    /// Cancelling the listener's accept at teardown (no connection slot).
    Teardown = 7,
}

fn user_data(op: Op, slot: usize, gen: u32) -> u64 {
    (op as u64) << 56 | (slot as u64) << 32 | u64::from(gen)
}

fn decode_user_data(data: u64) -> (u8, usize, u32) {
    (
        (data >> 56) as u8,
        ((data >> 32) & 0xFF_FFFF) as usize,
        data as u32,
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Free,
    Connecting,
    Handshake,
    Up,
    /// Shut down; waiting for its operations to complete before the slot is reused.
    Closing,
}

enum Hs {
    None,
    AwaitHello,
    AwaitResponse(Acceptor),
    AwaitChallenge(Connector),
    AwaitAccept(Connector),
    Done,
}

/// One connection slot. Slots are preallocated; `gen` tells a stale completion from a live one.
struct Conn {
    gen: u32,
    phase: Phase,
    fd: RawFd,
    /// The peer: known from the start when dialing, once authenticated when accepting.
    peer: Option<PeerId>,
    addr: Option<SocketAddr>,
    hs: Hs,
    deadline_ns: u64,
    reader: FrameReader,
    /// Frames to send; the front one is in flight when `send_inflight`.
    sendq: VecDeque<Buf>,
    send_inflight: bool,
    /// Zero-copy sends whose data is out but whose pages the kernel still holds.
    zc_waiting: VecDeque<Buf>,
    /// Submitted operations that will still complete (each ends with a CQE without F_MORE).
    ops: u32,
    recv_armed: bool,
    /// Receive buffers (id, offset, len) not yet consumed because the pool had no free slab.
    stash: VecDeque<(u16, u32, u32)>,
    dial_addr: Option<RawAddr>,
}

impl Conn {
    fn new(send_queue_frames: usize, recv_buffers: usize) -> Self {
        Self {
            gen: 0,
            phase: Phase::Free,
            fd: -1,
            peer: None,
            addr: None,
            hs: Hs::None,
            deadline_ns: 0,
            reader: FrameReader::new(),
            sendq: VecDeque::with_capacity(send_queue_frames + 1),
            send_inflight: false,
            zc_waiting: VecDeque::with_capacity(send_queue_frames + 1),
            ops: 0,
            recv_armed: false,
            stash: VecDeque::with_capacity(recv_buffers),
            dial_addr: None,
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Handshake | Phase::Up)
    }
}

struct PeerSlot {
    id: PeerId,
    dial: Option<(SocketAddr, RawAddr)>,
    conn: Option<usize>,
    up: bool,
    failures: u32,
    next_dial_ns: u64,
}

/// The io_uring TCP transport of one shard. See the module docs.
pub struct TcpUring {
    // Declared first so it drops first: the ring's teardown cancels what is still in flight before
    // the buffer ring and the pool (which the kernel may be writing into) are unmapped.
    ring: IoUring,
    bufring: BufRing,
    pool: BufferPool,
    cfg: TcpUringConfig,
    rules: FrameRules,
    conns: Box<[Conn]>,
    peers: Vec<PeerSlot>,
    listener: Option<TcpListener>,
    local_addr: Option<SocketAddr>,
    pending: VecDeque<Event>,
    pending_limit: usize,
    /// Room a single completion may need in `pending`.
    events_per_cqe: usize,
    stats: TransportStats,
    rng: u64,
    sweep_due_ns: u64,
    wake_fd: Option<RawFd>,
    /// Whether some connection holds receive data it could not consume yet (pool exhausted).
    stashed: bool,
    now_ns: u64,
}

impl TcpUring {
    /// Builds the ring, maps and registers the pool, binds the listener. Call on the shard's
    /// thread: the ring is single-issuer and the pool is first touched here.
    pub fn new(cfg: TcpUringConfig) -> Result<Self, TransportError> {
        cfg.validate()?;
        let io = |op: &'static str| move |source| TransportError::Io { op, source };
        let cq_entries = (cfg.ring_entries * 2)
            .max(u32::from(cfg.recv_buffers) * 2 + u32::from(cfg.max_connections) * 4);
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_cqsize(cq_entries.next_power_of_two())
            .build(cfg.ring_entries)
            .map_err(io(
                "io_uring_setup (SINGLE_ISSUER | DEFER_TASKRUN needs Linux 6.1+)",
            ))?;
        let pool = BufferPool::new(cfg.slab_bytes, cfg.pool_slabs)?;
        let (base, len) = pool.region();
        let region = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        // SAFETY: the region stays mapped while the ring lives (field order: the ring drops first,
        // and `Buf`s keep the mapping alive besides).
        unsafe { ring.submitter().register_buffers(&[region]) }
            .map_err(io("io_uring_register_buffers"))?;
        ring.submitter()
            .register_files_sparse(u32::from(cfg.max_connections))
            .map_err(io("io_uring_register_files_sparse"))?;
        let bufring = BufRing::new(&pool, cfg.recv_buffers)?;
        let (ring_addr, ring_len) = bufring.registration();
        // SAFETY: the buffer ring's mapping outlives the io_uring (field order).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ring_addr, ring_len, RECV_GROUP, 0)
        }
        .map_err(io(
            "io_uring_register_buf_ring (provided buffers need Linux 5.19+)",
        ))?;

        let (listener, local_addr) = match cfg.listen_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr).map_err(io("bind of the peer listener"))?;
                listener
                    .set_nonblocking(true)
                    .map_err(io("set_nonblocking on the listener"))?;
                let local = listener
                    .local_addr()
                    .map_err(io("getsockname of the listener"))?;
                (Some(listener), Some(local))
            }
            None => (None, None),
        };
        let max_payload = u32::try_from(cfg.slab_bytes - HEADER_LEN)
            .unwrap_or(u32::MAX)
            .min(crate::wire::MAX_PAYLOAD_LEN_BYTES);
        let rules = FrameRules::new(cfg.cluster_id, max_payload)
            .map_err(|e| TransportError::Config(e.to_string()))?
            .with_local_node(cfg.node_id);
        let conns = (0..cfg.max_connections)
            .map(|_| {
                Conn::new(
                    usize::from(cfg.send_queue_frames),
                    usize::from(cfg.recv_buffers),
                )
            })
            .collect();
        let mut peers: Vec<PeerSlot> = cfg
            .dial
            .iter()
            .map(|(id, addr)| PeerSlot {
                id: *id,
                dial: Some((*addr, RawAddr::new(*addr))),
                conn: None,
                up: false,
                failures: 0,
                next_dial_ns: 0,
            })
            .chain(cfg.accept_from.iter().map(|id| PeerSlot {
                id: *id,
                dial: None,
                conn: None,
                up: false,
                failures: 0,
                next_dial_ns: 0,
            }))
            .collect();
        peers.sort_by_key(|p| p.id);
        if peers.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(TransportError::Config(
                "a peer id is listed twice in dial/accept_from".into(),
            ));
        }
        let events_per_cqe = recv_reserve_slabs(cfg.slab_bytes) + 4;
        // Room for a few completions' worth plus a sweep that closes every connection at once.
        let pending_limit = events_per_cqe * 4 + usize::from(cfg.max_connections);
        let seed = u64::from_le_bytes(
            handshake::fresh_nonce().map_err(io("getrandom"))?[..8]
                .try_into()
                .expect("8 bytes"),
        );
        tracing::info!(node = cfg.node_id, listen = ?local_addr, peers = peers.len(), "tcp_uring transport ready");
        let mut transport = Self {
            ring,
            bufring,
            pool,
            rules,
            conns,
            peers,
            listener,
            local_addr,
            pending: VecDeque::with_capacity(pending_limit),
            pending_limit,
            events_per_cqe,
            stats: TransportStats::default(),
            rng: seed | 1,
            sweep_due_ns: 0,
            wake_fd: None,
            stashed: false,
            now_ns: 0,
            cfg,
        };
        transport.arm_accept();
        Ok(transport)
    }

    /// The address the listener is bound to (with the port the kernel picked for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Whether `peer` has a connection that finished its handshake.
    pub fn is_up(&self, peer: PeerId) -> bool {
        self.peers.iter().any(|p| p.id == peer && p.up)
    }

    /// Folds the shard's [`Doorbell`](crate::runtime::Doorbell) into this ring's wait:
    /// a mailbox push that rings it wakes [`Transport::park`] like a socket completion does, so one
    /// kernel wait covers both. The shard keeps the doorbell alive (an `Arc`) and drains it after a
    /// park, as its contract says.
    pub fn watch_doorbell(&mut self, doorbell: &crate::runtime::Doorbell) {
        use std::os::fd::AsRawFd as _;
        self.watch_wakeup_fd(doorbell.fd().as_raw_fd());
    }

    /// Adds `fd` (an eventfd such as the runtime's doorbell) to what [`Transport::park`] wakes on,
    /// through a multishot poll in this ring, so one kernel wait covers sockets and mailboxes. The
    /// owner of the fd drains it.
    pub fn watch_wakeup_fd(&mut self, fd: RawFd) {
        self.wake_fd = Some(fd);
        self.arm_wake();
    }

    fn arm_wake(&mut self) {
        if let Some(fd) = self.wake_fd {
            let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                .multi(true)
                .build();
            self.push(entry.user_data(user_data(Op::Wake, 0, 0)));
        }
    }

    fn arm_accept(&mut self) {
        if let Some(listener) = &self.listener {
            let entry = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
                .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                .build();
            self.push(entry.user_data(user_data(Op::Accept, 0, 0)));
        }
    }

    /// Queues a submission; if the queue is full, submits what is there first.
    fn push(&mut self, entry: squeue::Entry) {
        // Bounded: one submit frees the whole queue (the kernel consumes every SQE on enter).
        for _ in 0..2 {
            // SAFETY: every pointer an entry carries (sockaddr, pool slab) stays valid until its
            // completion: they live in preallocated slots or the registered region.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::error!(error = %e, "io_uring_enter failed while flushing a full submission queue");
            }
        }
        panic!("io_uring submission queue still full after a submit: the kernel consumed nothing");
    }

    fn jitter(&mut self) -> u64 {
        // xorshift64: jitter only needs to de-synchronise reconnect storms.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn emit(&mut self, event: Event) {
        assert!(
            self.pending.len() < self.pending_limit,
            "transport event buffer overflow: reaping must stop before it fills"
        );
        self.pending.push_back(event);
    }

    /// The remote of a connection that carries consumer frames (only up connections do).
    fn remote_of(&self, slot: usize) -> Remote {
        Remote::Peer(
            self.conns[slot]
                .peer
                .expect("consumer frames are only queued on up connections, which know their peer"),
        )
    }

    // ---- timers: dialing and deadlines ----

    fn sweep(&mut self, now_ns: u64) {
        for p in 0..self.peers.len() {
            let peer = &self.peers[p];
            if peer.dial.is_some() && peer.conn.is_none() && now_ns >= peer.next_dial_ns {
                self.dial(p, now_ns);
            }
        }
        let frame_timeout_ns = self.cfg.frame_timeout_ms * 1_000_000;
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            let expired = match conn.phase {
                Phase::Connecting if now_ns > conn.deadline_ns => Some(DownReason::Io {
                    errno: libc::ETIMEDOUT,
                }),
                Phase::Handshake if now_ns > conn.deadline_ns => {
                    Some(DownReason::Rejected(RejectReason::HandshakeTimeout))
                }
                Phase::Handshake | Phase::Up => conn
                    .reader
                    .frame_started_ns()
                    .filter(|started| now_ns.saturating_sub(*started) > frame_timeout_ns)
                    .map(|_| DownReason::Rejected(RejectReason::FrameTimeout)),
                _ => None,
            };
            if let Some(reason) = expired {
                self.close(slot, reason);
            }
        }
    }

    fn free_slot(&self) -> Option<usize> {
        self.conns.iter().position(|c| c.phase == Phase::Free)
    }

    fn dial(&mut self, p: usize, now_ns: u64) {
        let (addr, raw) = self.peers[p].dial.expect("only dialing peers are dialed");
        let peer = self.peers[p].id;
        let Some(slot) = self.free_slot() else {
            tracing::warn!(peer, %addr, "no free connection slot to dial; retrying later");
            self.schedule_redial(p, now_ns);
            return;
        };
        self.stats.connect_attempts += 1;
        let fd = match socket::tcp_socket(&addr) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(peer, %addr, error = %e, "cannot create a socket to dial");
                self.schedule_redial(p, now_ns);
                return;
            }
        };
        if let Err(e) = socket::tune(fd, self.cfg.user_timeout_ms) {
            tracing::warn!(peer, %addr, error = %e, "cannot set socket options to dial");
            socket::close(fd);
            self.schedule_redial(p, now_ns);
            return;
        }
        if let Err(e) = self
            .ring
            .submitter()
            .register_files_update(slot as u32, &[fd])
        {
            tracing::warn!(peer, %addr, error = %e, "cannot register the socket with the ring");
            socket::close(fd);
            self.schedule_redial(p, now_ns);
            return;
        }
        let conn = &mut self.conns[slot];
        conn.fd = fd;
        conn.phase = Phase::Connecting;
        conn.peer = Some(peer);
        conn.addr = Some(addr);
        conn.deadline_ns = now_ns + self.cfg.connect_timeout_ms * 1_000_000;
        conn.dial_addr = Some(raw);
        conn.ops += 1;
        let raw_ref = conn.dial_addr.as_ref().expect("just set");
        let entry =
            opcode::Connect::new(types::Fixed(slot as u32), raw_ref.as_ptr(), raw_ref.len())
                .build();
        let ud = user_data(Op::Connect, slot, conn.gen);
        self.peers[p].conn = Some(slot);
        self.push(entry.user_data(ud));
        tracing::debug!(peer, %addr, "dialing");
    }

    fn schedule_redial(&mut self, p: usize, now_ns: u64) {
        let random = self.jitter();
        let delay_ms = backoff_delay_ms(
            self.peers[p].failures,
            self.cfg.backoff_min_ms,
            self.cfg.backoff_max_ms,
            random,
        );
        let peer = &mut self.peers[p];
        peer.failures = peer.failures.saturating_add(1);
        peer.next_dial_ns = now_ns + delay_ms * 1_000_000;
    }

    // ---- connection life cycle ----

    fn open_accepted(&mut self, fd: RawFd, now_ns: u64) {
        self.stats.accepted += 1;
        let addr = socket::peer_addr(fd);
        let Some(slot) = self.free_slot() else {
            tracing::warn!(addr = ?addr, reason = RejectReason::TooManyConnections.label(), "connection closed");
            self.stats.count_rejected(RejectReason::TooManyConnections);
            socket::close(fd);
            return;
        };
        if let Err(e) = socket::tune(fd, self.cfg.user_timeout_ms) {
            tracing::warn!(addr = ?addr, error = %e, "cannot tune an accepted socket; closing it");
            socket::close(fd);
            return;
        }
        if let Err(e) = self
            .ring
            .submitter()
            .register_files_update(slot as u32, &[fd])
        {
            tracing::warn!(addr = ?addr, error = %e, "cannot register an accepted socket; closing it");
            socket::close(fd);
            return;
        }
        let conn = &mut self.conns[slot];
        conn.fd = fd;
        conn.phase = Phase::Handshake;
        conn.peer = None;
        conn.addr = addr;
        conn.hs = Hs::AwaitHello;
        conn.deadline_ns = now_ns + self.cfg.handshake_timeout_ms * 1_000_000;
        self.arm_recv(slot);
    }

    fn on_connected(&mut self, slot: usize, now_ns: u64) {
        let peer = self.conns[slot]
            .peer
            .expect("a dialed connection knows its peer");
        let nonce = match handshake::fresh_nonce() {
            Ok(nonce) => nonce,
            Err(e) => {
                tracing::error!(peer, error = %e, "no randomness for the handshake nonce");
                self.close(
                    slot,
                    DownReason::Io {
                        errno: e.raw_os_error().unwrap_or(libc::EIO),
                    },
                );
                return;
            }
        };
        let mut hello = [0u8; handshake::HELLO_LEN];
        let connector = Connector::start(
            self.cfg.node_id,
            peer,
            self.cfg.cluster_id,
            nonce,
            &mut hello,
        );
        let conn = &mut self.conns[slot];
        conn.phase = Phase::Handshake;
        conn.hs = Hs::AwaitChallenge(connector);
        conn.deadline_ns = now_ns + self.cfg.handshake_timeout_ms * 1_000_000;
        self.arm_recv(slot);
        self.send_control(slot, FrameKind::Hello, peer, &hello);
    }

    /// Marks an authenticated connection up and tells the consumer.
    fn mark_up(&mut self, slot: usize, peer: PeerId) {
        let p = self
            .peers
            .iter()
            .position(|p| p.id == peer)
            .expect("authenticated peers are configured");
        if let Some(old) = self.peers[p].conn.filter(|old| *old != slot) {
            self.close(old, DownReason::Replaced);
        }
        let conn = &mut self.conns[slot];
        conn.phase = Phase::Up;
        conn.hs = Hs::Done;
        conn.peer = Some(peer);
        let addr = conn.addr;
        let entry = &mut self.peers[p];
        entry.conn = Some(slot);
        entry.up = true;
        entry.failures = 0;
        self.stats.peers_up += 1;
        tracing::info!(peer, addr = ?addr, "peer up");
        self.emit(Event::PeerUp {
            remote: Remote::Peer(peer),
        });
    }

    /// Closes a connection for `reason`: logs, counts, tells the consumer if it was up, shuts the
    /// socket so its operations complete, and frees the slot once they have.
    fn close(&mut self, slot: usize, reason: DownReason) {
        let conn = &mut self.conns[slot];
        if !conn.is_open() {
            return;
        }
        let was_up = conn.phase == Phase::Up;
        let peer = conn.peer;
        let addr = conn.addr;
        let connecting = conn.phase == Phase::Connecting;
        conn.phase = Phase::Closing;
        conn.hs = Hs::None;
        conn.reader = FrameReader::new();
        // The in-flight send's buffer stays until its completion; the kernel may still read it.
        let keep = usize::from(conn.send_inflight);
        conn.sendq.truncate(keep);
        for (bid, _, _) in conn.stash.drain(..) {
            self.bufring.give_back(bid);
        }
        socket::shutdown(conn.fd);
        // A connect still in flight (deadline passed) is cancelled; shutdown does not end it.
        if connecting && self.conns[slot].ops > 0 {
            let cancel = opcode::AsyncCancel2::new(
                types::CancelBuilder::fd(types::Fixed(slot as u32)).all(),
            )
            .build();
            self.push(cancel.user_data(user_data(Op::Cancel, slot, self.conns[slot].gen)));
            self.conns[slot].ops += 1;
        }
        if let DownReason::Rejected(r) = reason {
            self.stats.count_rejected(r);
            tracing::warn!(peer = ?peer, addr = ?addr, reason = r.label(), "connection closed: bad input");
        } else if was_up {
            tracing::info!(peer = ?peer, addr = ?addr, %reason, "peer down");
        } else {
            tracing::debug!(peer = ?peer, addr = ?addr, %reason, "connection attempt failed");
        }
        if let Some(peer) = peer {
            if let Some(p) = self
                .peers
                .iter()
                .position(|p| p.id == peer && p.conn == Some(slot))
            {
                self.peers[p].conn = None;
                self.peers[p].up = false;
                if self.peers[p].dial.is_some() {
                    let now = self.now_ns;
                    self.schedule_redial(p, now);
                }
            }
        }
        if was_up {
            self.stats.peers_down += 1;
            self.emit(Event::PeerDown {
                remote: Remote::Peer(peer.expect("an up connection has a peer")),
                reason,
            });
        }
        self.maybe_free(slot);
    }

    fn maybe_free(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.phase != Phase::Closing || conn.ops > 0 {
            return;
        }
        if let Err(e) = self
            .ring
            .submitter()
            .register_files_update(slot as u32, &[-1])
        {
            tracing::error!(slot, error = %e, "cannot clear a fixed-file slot");
        }
        socket::close(conn.fd);
        conn.fd = -1;
        conn.sendq.clear();
        conn.zc_waiting.clear();
        conn.send_inflight = false;
        conn.recv_armed = false;
        conn.peer = None;
        conn.addr = None;
        conn.dial_addr = None;
        conn.gen = conn.gen.wrapping_add(1);
        conn.phase = Phase::Free;
    }

    // ---- sending ----

    fn arm_recv(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        debug_assert!(!conn.recv_armed);
        conn.recv_armed = true;
        conn.ops += 1;
        let entry = opcode::RecvMulti::new(types::Fixed(slot as u32), RECV_GROUP).build();
        let ud = user_data(Op::Recv, slot, conn.gen);
        self.push(entry.user_data(ud));
    }

    /// Sends a handshake frame on a connection that is not up yet (ahead of nothing: the consumer
    /// cannot queue before `PeerUp`).
    fn send_control(&mut self, slot: usize, kind: FrameKind, to: PeerId, body: &[u8]) {
        let (cluster_id, from) = (self.cfg.cluster_id, self.cfg.node_id);
        let buf = match handshake::control_frame(&self.pool, cluster_id, from, to, kind, body) {
            Ok(buf) => buf,
            Err(e) => {
                tracing::warn!(slot, error = %e, "no buffer for a handshake frame; closing the connection");
                self.close(
                    slot,
                    DownReason::Io {
                        errno: libc::ENOBUFS,
                    },
                );
                return;
            }
        };
        let conn = &mut self.conns[slot];
        if conn.sendq.len() >= conn.sendq.capacity() {
            self.close(
                slot,
                DownReason::Io {
                    errno: libc::ENOBUFS,
                },
            );
            return;
        }
        conn.sendq.push_back(buf);
        self.kick_send(slot);
    }

    fn kick_send(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.send_inflight || !matches!(conn.phase, Phase::Handshake | Phase::Up) {
            return;
        }
        let Some(buf) = conn.sendq.front() else {
            return;
        };
        let len = buf.len() as u32;
        let ptr = buf.as_ptr();
        let flags = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;
        let entry = if buf.len() >= self.cfg.zerocopy_min_bytes {
            opcode::SendZc::new(types::Fixed(slot as u32), ptr, len)
                .buf_index(Some(0))
                .flags(flags)
                .build()
        } else {
            opcode::Send::new(types::Fixed(slot as u32), ptr, len)
                .flags(flags)
                .build()
        };
        conn.send_inflight = true;
        conn.ops += 1;
        let ud = user_data(Op::Send, slot, conn.gen);
        self.push(entry.user_data(ud));
    }

    // ---- completions ----

    fn reap(&mut self, now_ns: u64) {
        // Stalled receive data first, in arrival order, before any newer completion.
        if self.stashed {
            self.stashed = false;
            for slot in 0..self.conns.len() {
                if !self.conns[slot].stash.is_empty() {
                    self.drain_stash(slot, now_ns);
                    self.stashed |= !self.conns[slot].stash.is_empty();
                }
            }
        }
        // Bounded by the CQ size; stops while the consumer has not made room for more events.
        loop {
            if self.pending_limit - self.pending.len() < self.events_per_cqe {
                break;
            }
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            self.complete(cqe.user_data(), cqe.result(), cqe.flags(), now_ns);
        }
        self.bufring.publish();
    }

    fn complete(&mut self, data: u64, res: i32, flags: u32, now_ns: u64) {
        let (op, slot, gen) = decode_user_data(data);
        match op {
            x if x == Op::Accept as u8 => {
                if !cqueue::more(flags) {
                    self.arm_accept();
                }
                if res >= 0 {
                    self.open_accepted(res, now_ns);
                } else {
                    tracing::warn!(error = %std::io::Error::from_raw_os_error(-res), "accept failed");
                }
                return;
            }
            x if x == Op::Wake as u8 => {
                if !cqueue::more(flags) {
                    self.arm_wake();
                }
                return;
            }
            _ => {}
        }
        let Some(conn) = self.conns.get_mut(slot) else {
            debug_assert!(false, "completion for slot {slot} beyond the table");
            return;
        };
        if conn.gen != gen {
            debug_assert!(false, "completion for a freed slot generation");
            return;
        }
        let ends_op = !cqueue::more(flags);
        if ends_op {
            debug_assert!(conn.ops > 0);
            conn.ops -= 1;
        }
        match op {
            x if x == Op::Connect as u8 && conn.phase == Phase::Connecting => {
                if res == 0 {
                    self.on_connected(slot, now_ns);
                } else {
                    self.close(slot, DownReason::Io { errno: -res });
                }
            }
            x if x == Op::Recv as u8 => self.on_recv(slot, res, flags, ends_op, now_ns),
            x if x == Op::Send as u8 => self.on_send(slot, res, flags),
            _ => {}
        }
        self.maybe_free(slot);
    }

    fn on_send(&mut self, slot: usize, res: i32, flags: u32) {
        let conn = &mut self.conns[slot];
        if cqueue::notif(flags) {
            // Zero-copy: the kernel released the pages of the oldest zero-copy send.
            let buf = conn
                .zc_waiting
                .pop_front()
                .expect("a notification follows a zero-copy send");
            self.finish_send(slot, buf);
            return;
        }
        let buf = conn
            .sendq
            .pop_front()
            .expect("a send completion has its buffer at the queue front");
        conn.send_inflight = false;
        // MSG_WAITALL makes the ring retry short sends itself, so anything short means the
        // connection is gone.
        let complete = res >= 0 && res as usize == buf.len();
        if cqueue::more(flags) {
            // Zero-copy: the buffer is released by the notification that follows.
            conn.zc_waiting.push_back(buf);
        } else if complete {
            self.finish_send(slot, buf);
        }
        if !complete {
            let errno = if res < 0 { -res } else { libc::EPIPE };
            self.close(slot, DownReason::Io { errno });
            return;
        }
        self.kick_send(slot);
    }

    fn finish_send(&mut self, slot: usize, buf: Buf) {
        let len_bytes = buf.len();
        let handshake = buf
            .as_slice()
            .get(5)
            .and_then(|kind| FrameKind::from_byte(*kind))
            .is_some_and(FrameKind::is_handshake);
        drop(buf);
        // Handshake frames are the transport's own; the consumer hears only about its frames.
        if !handshake {
            self.stats.frames_sent += 1;
            let to = self.remote_of(slot);
            self.emit(Event::SendComplete { to, len_bytes });
        }
    }

    fn on_recv(&mut self, slot: usize, res: i32, flags: u32, ends_op: bool, now_ns: u64) {
        if ends_op {
            self.conns[slot].recv_armed = false;
        }
        let open = self.conns[slot].is_open();
        if res > 0 {
            let bid =
                cqueue::buffer_select(flags).expect("a multishot receive always selects a buffer");
            if !open {
                self.bufring.give_back(bid);
            } else if self.conns[slot].stash.is_empty() {
                self.consume(slot, bid, 0, res as u32, now_ns);
            } else {
                self.conns[slot].stash.push_back((bid, 0, res as u32));
                self.stashed = true;
            }
        } else if open {
            match -res {
                0 => {
                    let reason = if self.conns[slot].reader.mid_frame() {
                        DownReason::Rejected(RejectReason::Truncated)
                    } else if self.conns[slot].phase == Phase::Handshake {
                        DownReason::Rejected(RejectReason::HandshakeProtocol)
                    } else {
                        DownReason::Closed
                    };
                    self.close(slot, reason);
                    return;
                }
                libc::ENOBUFS => self.stats.receive_stalls += 1,
                errno => {
                    self.close(slot, DownReason::Io { errno });
                    return;
                }
            }
        }
        let conn = &self.conns[slot];
        if ends_op && conn.is_open() && conn.stash.is_empty() && !conn.recv_armed {
            self.arm_recv(slot);
        }
    }

    fn drain_stash(&mut self, slot: usize, now_ns: u64) {
        while let Some((bid, offset, len)) = self.conns[slot].stash.pop_front() {
            if !self.consume(slot, bid, offset, len, now_ns) {
                return;
            }
        }
        let conn = &self.conns[slot];
        if conn.is_open() && !conn.recv_armed {
            self.arm_recv(slot);
        }
    }

    /// Feeds bytes `offset..len` of receive buffer `bid` to the connection's reader. Returns
    /// `false` if it had to stop for want of a slab (the rest is stashed, in order).
    fn consume(&mut self, slot: usize, bid: u16, offset: u32, len: u32, now_ns: u64) -> bool {
        let bytes = self.bufring.bytes(bid, len as usize);
        // SAFETY: the provided buffer is not given back (so neither reused by the kernel nor
        // touched by us) until after this function is done with `input`; detaching the borrow from
        // `self.bufring` lets frame handling below use `&mut self`.
        let mut input: &[u8] = unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        input = &input[offset as usize..];
        loop {
            if !self.conns[slot].is_open() {
                break;
            }
            let conn = &mut self.conns[slot];
            let result = conn
                .reader
                .next(&mut input, now_ns, &self.rules, &self.pool);
            match result {
                Ok(Some(frame)) => self.on_frame(slot, frame),
                Ok(None) => {
                    // The reader only stops short when it has swallowed all the input, so this
                    // loop ends: every turn consumes bytes or yields a frame.
                    debug_assert!(input.is_empty());
                    break;
                }
                Err(ReadError::Reject(reason)) => {
                    self.close(slot, DownReason::Rejected(reason));
                    break;
                }
                Err(ReadError::PoolExhausted) => {
                    self.stats.receive_stalls += 1;
                    let consumed = len - input.len() as u32;
                    self.conns[slot].stash.push_front((bid, consumed, len));
                    self.stashed = true;
                    return false;
                }
            }
        }
        self.bufring.give_back(bid);
        true
    }

    fn on_frame(&mut self, slot: usize, frame: ReadFrame) {
        let ReadFrame { kind, from, buf } = frame;
        let payload = &buf.as_slice()[HEADER_LEN..];
        let hs = std::mem::replace(&mut self.conns[slot].hs, Hs::None);
        let outcome: Result<Hs, RejectReason> = match (hs, kind) {
            (Hs::Done, kind) if kind.is_handshake() => Err(RejectReason::HandshakeProtocol),
            (Hs::Done, _) => {
                let peer = self.conns[slot].peer.expect("an up connection has a peer");
                if from != peer {
                    Err(RejectReason::WrongSender)
                } else {
                    self.stats.frames_received += 1;
                    self.stats.bytes_received += buf.len() as u64;
                    self.emit(Event::Received {
                        from: Remote::Peer(peer),
                        buf,
                    });
                    Ok(Hs::Done)
                }
            }
            (Hs::AwaitHello, FrameKind::Hello) => self.on_hello(slot, from, payload),
            (Hs::AwaitResponse(acceptor), FrameKind::Response) => {
                match acceptor.on_response(&self.cfg.secret, payload) {
                    Ok(peer) => {
                        self.send_control(slot, FrameKind::Accept, peer, &[]);
                        if self.conns[slot].is_open() {
                            self.mark_up(slot, peer);
                        }
                        Ok(Hs::Done)
                    }
                    Err(r) => Err(r),
                }
            }
            (Hs::AwaitChallenge(mut connector), FrameKind::Challenge) => {
                let mut response = [0u8; handshake::RESPONSE_LEN];
                match connector.on_challenge(&self.cfg.secret, payload, &mut response) {
                    Ok(()) => {
                        let peer = self.conns[slot]
                            .peer
                            .expect("a dialed connection knows its peer");
                        self.send_control(slot, FrameKind::Response, peer, &response);
                        Ok(Hs::AwaitAccept(connector))
                    }
                    Err(r) => Err(r),
                }
            }
            (Hs::AwaitAccept(connector), FrameKind::Accept) => match connector.on_accept(payload) {
                Ok(()) => {
                    let peer = self.conns[slot]
                        .peer
                        .expect("a dialed connection knows its peer");
                    self.mark_up(slot, peer);
                    Ok(Hs::Done)
                }
                Err(r) => Err(r),
            },
            // Anything else before the handshake finished: nothing is delivered.
            _ => Err(RejectReason::HandshakeProtocol),
        };
        match outcome {
            Ok(next) => {
                if self.conns[slot].is_open() {
                    self.conns[slot].hs = next;
                }
            }
            Err(reason) => self.close(slot, DownReason::Rejected(reason)),
        }
    }

    fn on_hello(&mut self, slot: usize, from: PeerId, payload: &[u8]) -> Result<Hs, RejectReason> {
        let nonce = handshake::fresh_nonce().map_err(|_| RejectReason::HandshakeProtocol)?;
        let mut challenge = [0u8; handshake::CHALLENGE_LEN];
        let peers = &self.peers;
        let acceptor = Acceptor::on_hello(
            self.cfg.node_id,
            self.cfg.cluster_id,
            &self.cfg.secret,
            nonce,
            payload,
            |id| peers.iter().any(|p| p.id == id && p.dial.is_none()),
            &mut challenge,
        )?;
        if acceptor.claimed_peer() != from {
            return Err(RejectReason::WrongSender);
        }
        self.send_control(slot, FrameKind::Challenge, from, &challenge);
        Ok(Hs::AwaitResponse(acceptor))
    }

    fn enter(&mut self, want: usize, timeout_ns: Option<u64>) -> Result<(), TransportError> {
        self.stats.kernel_enters += 1;
        let result = match timeout_ns {
            Some(ns) => {
                let ts = types::Timespec::new()
                    .sec(ns / 1_000_000_000)
                    .nsec((ns % 1_000_000_000) as u32);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submit(),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(source) => Err(TransportError::Io {
                op: "io_uring_enter",
                source,
            }),
        }
    }
}

impl Transport for TcpUring {
    fn buffers(&self) -> &BufferPool {
        &self.pool
    }

    fn send(&mut self, to: Remote, buf: Buf) -> Result<(), SendError> {
        if !self.pool.owns(&buf) {
            return Err(SendError {
                to,
                kind: SendErrorKind::ForeignBuffer,
                buf,
            });
        }
        let framed = buf.len() >= HEADER_LEN
            && crate::wire::FrameHeader::read_from(buf.as_slice())
                .is_some_and(|h| h.length as usize + HEADER_LEN == buf.len());
        if !framed {
            let len_bytes = buf.len();
            return Err(SendError {
                to,
                kind: SendErrorKind::MalformedFrame {
                    len_bytes,
                    why: "the header's length field must equal the payload length",
                },
                buf,
            });
        }
        let slot = match to {
            Remote::Peer(id) => self
                .peers
                .iter()
                .find(|p| p.id == id && p.up)
                .and_then(|p| p.conn),
            Remote::Conn(_) => None,
        };
        let Some(slot) = slot else {
            return Err(SendError {
                to,
                kind: SendErrorKind::NotConnected,
                buf,
            });
        };
        let capacity = usize::from(self.cfg.send_queue_frames);
        let conn = &mut self.conns[slot];
        if conn.sendq.len() > capacity {
            return Err(SendError {
                to,
                kind: SendErrorKind::QueueFull { capacity },
                buf,
            });
        }
        conn.sendq.push_back(buf);
        self.kick_send(slot);
        Ok(())
    }

    fn poll(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError> {
        self.now_ns = now_ns;
        // A sweep emits at most one event per connection; it waits while the consumer has not
        // made that much room.
        let sweep_room = self.pending_limit - self.pending.len() >= self.conns.len();
        if now_ns >= self.sweep_due_ns && sweep_room {
            self.sweep_due_ns = now_ns + SWEEP_INTERVAL_NS;
            self.sweep(now_ns);
        }
        let (has_submissions, kernel_has_work) = {
            let mut sq = self.ring.submission();
            sq.sync();
            (!sq.is_empty(), sq.taskrun() || sq.cq_overflow())
        };
        if has_submissions || kernel_has_work {
            self.enter(0, None)?;
        }
        self.reap(now_ns);
        let start = events.len();
        while events.len() < events.capacity() {
            let Some(event) = self.pending.pop_front() else {
                break;
            };
            events.push(event);
        }
        Ok(events.len() - start)
    }

    fn park(&mut self, timeout_ns: u64) -> Result<(), TransportError> {
        if !self.pending.is_empty() || !self.ring.completion().is_empty() {
            return Ok(());
        }
        self.enter(1, Some(timeout_ns))
    }

    fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

impl Drop for TcpUring {
    fn drop(&mut self) {
        // Shut every socket so in-flight operations complete, wait (bounded) for them, then close.
        for conn in self.conns.iter() {
            if conn.fd >= 0 {
                socket::shutdown(conn.fd);
            }
        }
        if let Some(listener) = &self.listener {
            let cancel = opcode::AsyncCancel2::new(
                types::CancelBuilder::fd(types::Fd(listener.as_raw_fd())).all(),
            )
            .build();
            self.push(cancel.user_data(user_data(Op::Teardown, 0, 0)));
        }
        for _ in 0..100 {
            if self.conns.iter().all(|c| c.ops == 0) {
                break;
            }
            if self.enter(1, Some(1_000_000)).is_err() {
                break;
            }
            while let Some(cqe) = self.ring.completion().next() {
                let (op, slot, gen) = decode_user_data(cqe.user_data());
                if matches!(op, 2..=4 | 6)
                    && self.conns.get(slot).is_some_and(|c| c.gen == gen)
                    && !cqueue::more(cqe.flags())
                {
                    self.conns[slot].ops = self.conns[slot].ops.saturating_sub(1);
                }
            }
        }
        for conn in self.conns.iter_mut() {
            if conn.fd >= 0 {
                socket::close(conn.fd);
                conn.fd = -1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter_in_the_upper_half() {
        for failures in 0..40 {
            let base = (50u64 << failures.min(MAX_BACKOFF_SHIFT)).min(2_000);
            for random in [0, 1, 7, 12_345, u64::MAX] {
                let delay = backoff_delay_ms(failures, 50, 2_000, random);
                assert!(
                    delay <= base && delay >= base - base / 2,
                    "failures {failures}: {delay} vs base {base}"
                );
            }
        }
        assert_eq!(backoff_delay_ms(0, 50, 2_000, 0), 50);
        assert_eq!(backoff_delay_ms(3, 50, 2_000, 0), 400);
        assert_eq!(
            backoff_delay_ms(1_000, 50, 2_000, 0),
            2_000,
            "bounded by the maximum"
        );
    }

    #[test]
    fn user_data_round_trips_op_slot_and_generation() {
        let data = user_data(Op::Send, 0xAB_CDEF, u32::MAX - 1);
        assert_eq!(
            decode_user_data(data),
            (Op::Send as u8, 0xAB_CDEF, u32::MAX - 1)
        );
    }

    #[test]
    fn configurations_that_cannot_work_are_refused_with_the_reason() {
        let secret = ClusterSecret::new(&[1; 32]).unwrap();
        let mut cfg = TcpUringConfig::new(5, 1, secret);
        cfg.dial = vec![(3, "127.0.0.1:1".parse().unwrap())];
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.contains("smaller id dials"), "{msg}");
        cfg.dial.clear();
        cfg.accept_from = vec![3];
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.contains("listen_addr"), "{msg}");
        cfg.listen_addr = Some("127.0.0.1:0".parse().unwrap());
        cfg.pool_slabs = 10;
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.contains("pool_slabs = 10"), "{msg}");
        cfg.pool_slabs = 4096;
        assert!(cfg.validate().is_ok());
    }
}
