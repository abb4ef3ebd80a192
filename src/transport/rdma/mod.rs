//! `rdma` (feature `rdma`): RC queue pairs over verbs, connected with rdma_cm (DESIGN.md §4).
//!
//! - **Binding**: a 250-line C shim (`shim.c`, compiled by build.rs against the system's
//!   libibverbs-dev and librdmacm-dev) behind [`ffi`]. The fast-path verbs are static inline
//!   functions in the headers, and the structs are header-owned unions, so compiling against the
//!   installed rdma-core is the one way to be ABI-exact; it builds in a second, with no bindgen,
//!   cmake or vendored rdma-core, on any distribution that packages rdma-core.
//! - **Device and GID** like perftest ([`device`]): `--rdma-device`, `--gid-index`, or the first
//!   IPv4-mapped RoCE v2 GID. That GID's IPv4 address is the one rdma_cm binds and dials from.
//! - **Memory**: the shard's [`BufferPool`] region is one memory region (`ibv_reg_mr`, local write
//!   only: peers never write the pool). Every posted receive is one pool slab; a send is the slab
//!   itself (`lkey` + slab address), parked until its completion.
//! - **Queue pairs**: one RC QP per peer; send and receive completions of all QPs go to one CQ,
//!   polled with one `ibv_poll_cq` per batch. A work request id packs (connection generation,
//!   slot, kind, index) so a completion of a torn-down QP is recognised and ignored.
//! - **Peers**: the smaller id dials, the larger accepts (as tcp_uring), then the HMAC handshake of
//!   [`super::handshake`] runs over SEND/RECV before any other frame is delivered. `rnr_retry` is
//!   infinite: a sender waits for a receiver that is re-posting, instead of failing.
//! - **Failures**: an error completion, a DISCONNECTED event or a broken protocol closes only that
//!   connection (QP destroyed, slabs back to the pool), reports [`Event::PeerDown`], and a dialed
//!   peer is redialed with exponential backoff and jitter — never a panic.
//! - **One-sided log ring** ([`ring`]): `ring_slots > 0` gives this node a follower ring that the
//!   leader of a granted term writes with RDMA WRITE WITH IMMEDIATE; see [`RdmaTransport::grant_ring`].
//! - **Park**: `ibv_req_notify_cq` + `poll(2)` on the completion channel and the rdma_cm channel.
//!
//! Bounds: connections (`max_connections` ≤ 255), send work requests per QP (`send_depth`, full →
//! [`SendErrorKind::QueueFull`]), receives per QP (`recv_depth`), handshake and connect deadlines,
//! events buffered between polls, and the pool.

pub mod device;
mod ffi;
pub mod ring;

use super::handshake::{self, Acceptor, ClusterSecret, Connector};
use super::{
    Buf, BufferPool, DownReason, Event, PeerId, PoolError, RejectReason, Remote, SendError,
    SendErrorKind, Transport, TransportError, TransportStats,
};
use crate::wire::{FrameKind, FrameRules, HEADER_LEN};
use device::{DeviceChoice, DeviceError};
use ffi::Wc;
use ring::{RingAppend, RingError, RingGrant, RingMemory};
use std::collections::VecDeque;
use std::ffi::CString;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::ptr::null_mut;

/// rdma_cm events, deadlines and redials are looked at this often when all connections are up.
const CM_INTERVAL_NS: u64 = 1_000_000;
/// Completions reaped per `ibv_poll_cq`.
const WC_BATCH: usize = 32;
const MAX_BACKOFF_SHIFT: u32 = 16;
/// rdma_cm id context of the listener (connections use slot and generation).
const LISTENER_CONTEXT: u64 = u64::MAX;

/// Configuration of one shard's RDMA transport; [`RdmaConfig::new`] fills defaults.
#[derive(Debug, Clone)]
pub struct RdmaConfig {
    pub node_id: PeerId,
    pub cluster_id: u64,
    pub secret: ClusterSecret,
    /// `--rdma-device`; `None` picks the first device.
    pub device: Option<String>,
    /// `--gid-index`; `None` picks the first IPv4-mapped RoCE v2 GID.
    pub gid_index: Option<u32>,
    /// Where RDMA devices are listed (tests point it at fixture trees).
    pub sysfs: PathBuf,
    /// rdma_cm port to listen on (on the chosen GID's address); `None` does not listen, `Some(0)`
    /// picks one ([`RdmaTransport::local_port`]).
    pub listen_port: Option<u16>,
    /// Peers this node dials (larger ids), at their GID's IPv4 address and rdma_cm port.
    pub dial: Vec<(PeerId, SocketAddrV4)>,
    /// Peers that dial this node (smaller ids).
    pub accept_from: Vec<PeerId>,
    /// Connection slots (≤ 255, a work request id holds the slot in 8 bits).
    pub max_connections: u16,
    /// Send work requests in flight per QP (frames and ring writes).
    pub send_depth: u16,
    /// Receives posted per QP.
    pub recv_depth: u16,
    /// Pool slab size: the largest frame.
    pub slab_bytes: usize,
    pub pool_slabs: usize,
    pub handshake_timeout_ms: u64,
    /// Address and route resolution, and the connection request, each within this.
    pub connect_timeout_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Frames up to this size are sent inline (copied into the work request at post time, so the
    /// NIC does not fetch them from the memory region): cheaper for small consensus messages.
    pub inline_max_bytes: u32,
    /// Local ACK timeout exponent of every QP: a try waits 4.096 µs × 2^exp, and after 6 retries
    /// the send fails and the peer is reported down (16: 268 ms a try, about 1.9 s in all).
    pub ack_timeout_exp: u8,
    /// Slots of this node's follower log ring (0: no ring).
    pub ring_slots: u32,
    /// Bytes per ring slot (a multiple of 8, header included).
    pub ring_slot_bytes: u32,
    /// A connection that sent nothing for this long sends a Ping (0: never). Without traffic an
    /// RC queue pair never learns that its peer is gone (its DISCONNECT may have been lost in a
    /// partition), so the side that redials would wait forever while the other waits for it.
    pub keepalive_ms: u64,
}

impl RdmaConfig {
    /// Defaults: 16 connections, 64 sends and 64 receives per QP, 8 KiB slabs, 2048 slabs (16 MiB),
    /// 2 s handshake, 1 s connect, 50 ms–2 s backoff, no ring.
    pub fn new(node_id: PeerId, cluster_id: u64, secret: ClusterSecret) -> Self {
        Self {
            node_id,
            cluster_id,
            secret,
            device: None,
            gid_index: None,
            sysfs: device::default_sysfs(),
            listen_port: None,
            dial: Vec::new(),
            accept_from: Vec::new(),
            max_connections: 16,
            send_depth: 64,
            recv_depth: 64,
            slab_bytes: 8192,
            pool_slabs: 2048,
            handshake_timeout_ms: 2_000,
            connect_timeout_ms: 1_000,
            backoff_min_ms: 50,
            backoff_max_ms: 2_000,
            inline_max_bytes: 128,
            ack_timeout_exp: 16,
            ring_slots: 0,
            ring_slot_bytes: 4096,
            keepalive_ms: 0,
        }
    }

    fn validate(&self) -> Result<(), RdmaError> {
        let bad = |why: String| Err(RdmaError::Config(why));
        if let Some((peer, addr)) = self.dial.iter().find(|(p, _)| *p <= self.node_id) {
            return bad(format!(
                "node {} would dial peer {peer} at {addr}, but the smaller id dials: list peer {peer} \
                 under accept_from instead",
                self.node_id
            ));
        }
        if let Some(peer) = self.accept_from.iter().find(|p| **p >= self.node_id) {
            return bad(format!(
                "node {} would accept peer {peer}, but the larger id accepts: give peer {peer}'s \
                 address under dial instead",
                self.node_id
            ));
        }
        if !self.accept_from.is_empty() && self.listen_port.is_none() {
            return bad("accept_from lists peers but listen_port is not set".into());
        }
        let peers = self.dial.len() + self.accept_from.len();
        if self.max_connections == 0
            || self.max_connections > 255
            || usize::from(self.max_connections) < peers
        {
            return bad(format!(
                "max_connections = {} must be in 1..=255 and hold the {peers} configured peers",
                self.max_connections
            ));
        }
        if self.send_depth == 0 || self.recv_depth < 4 {
            return bad(format!(
                "send_depth = {} must be > 0 and recv_depth = {} at least 4",
                self.send_depth, self.recv_depth
            ));
        }
        if self.slab_bytes < HEADER_LEN + handshake::CHALLENGE_LEN {
            return bad(format!(
                "slab_bytes = {} cannot hold a handshake frame",
                self.slab_bytes
            ));
        }
        let need = usize::from(self.max_connections) * usize::from(self.recv_depth)
            + usize::from(self.send_depth);
        if self.pool_slabs < need {
            return bad(format!(
                "pool_slabs = {} is too small: {} connections × {} posted receives plus {} sends \
                 need {need}; raise pool_slabs or lower recv_depth/max_connections",
                self.pool_slabs, self.max_connections, self.recv_depth, self.send_depth
            ));
        }
        if self.ring_slots > 0
            && (self.ring_slot_bytes % 8 != 0
                || (self.ring_slot_bytes as usize) <= ring::SLOT_HEADER_BYTES
                || self.ring_slot_bytes as usize > self.slab_bytes)
        {
            return bad(format!(
                "ring_slot_bytes = {} must be a multiple of 8, above the {} B slot header and at \
                 most slab_bytes = {} (a slot is written from one slab)",
                self.ring_slot_bytes,
                ring::SLOT_HEADER_BYTES,
                self.slab_bytes
            ));
        }
        if !(8..=24).contains(&self.ack_timeout_exp) {
            return bad(format!(
                "ack_timeout_exp = {} must be in 8..=24 (1 ms .. 69 s a try)",
                self.ack_timeout_exp
            ));
        }
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            return bad(format!(
                "need 0 < backoff_min_ms = {} <= backoff_max_ms = {}",
                self.backoff_min_ms, self.backoff_max_ms
            ));
        }
        Ok(())
    }
}

/// Why the RDMA transport could not start. Each message names the device, value or limit and the fix.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("invalid RDMA transport configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(
        "registering the {region_bytes} B buffer pool with {device} failed: the locked-memory \
         limit (RLIMIT_MEMLOCK) is {limit_bytes} B; raise it (`ulimit -l unlimited`, \
         LimitMEMLOCK=infinity in the systemd unit, or memlock in /etc/security/limits.conf) or \
         shrink the pool"
    )]
    Memlock {
        device: String,
        region_bytes: usize,
        limit_bytes: u64,
    },
    #[error("{op} on {device} failed: {source}")]
    Verbs {
        op: &'static str,
        device: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<RdmaError> for TransportError {
    fn from(error: RdmaError) -> Self {
        TransportError::Config(error.to_string())
    }
}

/// Exponential backoff with jitter (as tcp_uring): uniform in `[base/2, base]`.
fn backoff_delay_ms(failures: u32, min_ms: u64, max_ms: u64, random: u64) -> u64 {
    let base_ms = min_ms
        .saturating_mul(1 << failures.min(MAX_BACKOFF_SHIFT))
        .min(max_ms);
    base_ms - random % (base_ms / 2 + 1)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u64)]
enum WrKind {
    Recv = 0,
    Send = 1,
    RingWrite = 2,
}

const GEN_MASK: u32 = 0xFF_FFFF;

fn wr_id(gen: u32, slot: usize, kind: WrKind, index: usize) -> u64 {
    debug_assert!(slot < 256 && index < 1 << 30);
    u64::from(gen & GEN_MASK) << 40 | (slot as u64) << 32 | (kind as u64) << 30 | index as u64
}

fn decode_wr_id(id: u64) -> (u32, usize, u64, usize) {
    (
        (id >> 40) as u32 & GEN_MASK,
        ((id >> 32) & 0xFF) as usize,
        (id >> 30) & 3,
        (id & ((1 << 30) - 1)) as usize,
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Free,
    /// Dialing: address and route resolution.
    Resolving,
    /// QP created, connection request sent or accepted; waiting for ESTABLISHED.
    Connecting,
    Handshake,
    Up,
}

enum Hs {
    None,
    AwaitHello,
    AwaitResponse(Acceptor),
    AwaitChallenge(Connector),
    AwaitAccept(Connector),
    Done,
}

/// What a send slot holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SendUse {
    /// A frame from [`Transport::send`]: its completion is reported.
    Frame,
    /// A handshake frame of the transport's own.
    Control,
    RingWrite,
}

/// One connection slot, preallocated; `gen` tells a stale completion or event from a live one.
struct Conn {
    gen: u32,
    phase: Phase,
    id: *mut ffi::CmId,
    qp: *mut ffi::Qp,
    peer: Option<PeerId>,
    dialed: bool,
    hs: Hs,
    deadline_ns: u64,
    /// Posted receive slabs by index; `None` where posting waits for a free slab.
    recvs: Box<[Option<Buf>]>,
    recv_missing: usize,
    sends: Box<[Option<(Buf, SendUse)>]>,
    send_free: Vec<u16>,
    /// When this connection last posted a send or a ring write (for the keepalive).
    last_send_ns: u64,
}

impl Conn {
    fn new(send_depth: u16, recv_depth: u16) -> Self {
        Self {
            gen: 0,
            phase: Phase::Free,
            id: null_mut(),
            qp: null_mut(),
            peer: None,
            dialed: false,
            hs: Hs::None,
            deadline_ns: 0,
            recvs: (0..recv_depth).map(|_| None).collect(),
            recv_missing: 0,
            sends: (0..send_depth).map(|_| None).collect(),
            send_free: (0..send_depth).rev().collect(),
            last_send_ns: 0,
        }
    }
}

struct PeerSlot {
    id: PeerId,
    dial: Option<SocketAddrV4>,
    conn: Option<usize>,
    up: bool,
    failures: u32,
    next_dial_ns: u64,
    /// Write permission this peer granted us for its ring (we lead that term).
    remote_ring: Option<RingGrant>,
}

/// The follower side of the ring: its memory, the registration of the granted term, and who holds it.
struct LocalRing {
    memory: RingMemory,
    mr: *mut ffi::Mr,
    granted: Option<(PeerId, u64)>,
    /// The term of the last grant, kept across a revocation: grants only move to higher terms,
    /// except once within a term, from the candidate this node voted for to the leader it accepted.
    last_term: u64,
    /// Whether the grant of `last_term` already moved once.
    moved_in_term: bool,
    appends: VecDeque<RingAppend>,
}

/// Counters of the ring, beside [`TransportStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Ring writes this node posted that completed.
    pub writes_completed: u64,
    /// Slots written into this node's ring and delivered.
    pub appends_delivered: u64,
    /// Slots written into this node's ring that failed their check (not delivered).
    pub appends_rejected: u64,
    /// Appends dropped because the caller did not drain [`RdmaTransport::take_ring_appends`].
    pub appends_overflowed: u64,
    /// Grants issued (each a fresh registration).
    pub grants: u64,
    /// Grants revoked with no new holder (registration dropped).
    pub revocations: u64,
}

/// The verbs transport of one shard. See the module docs.
pub struct RdmaTransport {
    cfg: RdmaConfig,
    choice: DeviceChoice,
    rules: FrameRules,
    /// `rules` without the destination check: what `send` checks an outgoing frame against.
    send_rules: FrameRules,
    ctx: *mut ffi::Context,
    pd: *mut ffi::Pd,
    comp: *mut ffi::CompChannel,
    cq: *mut ffi::Cq,
    mr: *mut ffi::Mr,
    lkey: u32,
    cm: *mut ffi::CmChannel,
    listener: *mut ffi::CmId,
    local_port: Option<u16>,
    conns: Box<[Conn]>,
    peers: Vec<PeerSlot>,
    ring: Option<LocalRing>,
    ring_stats: RingStats,
    pending: VecDeque<Event>,
    pending_limit: usize,
    wcs: Box<[Wc]>,
    /// Completions reaped by `park` before sleeping, handled first by the next `poll`.
    parked_wcs: usize,
    stats: TransportStats,
    rng: u64,
    cm_due_ns: u64,
    now_ns: u64,
    /// Connections not yet up (while any exist, rdma_cm is looked at on every poll).
    opening: usize,
    /// An eventfd `park` also wakes on (the runtime's doorbell), as tcp_uring's.
    wake_fd: Option<std::os::fd::RawFd>,
    // Dropped last: outstanding `Buf`s keep the region mapped anyway; the MR is deregistered
    // in `drop` before this.
    pool: BufferPool,
}

impl RdmaTransport {
    /// Chooses the device and GID, maps and registers the pool, creates the CQ and the rdma_cm
    /// channel, and listens. Call on the shard's thread (the pool is first-touched here).
    pub fn new(cfg: RdmaConfig) -> Result<Self, RdmaError> {
        cfg.validate()?;
        let choice = device::choose(&cfg.sysfs, cfg.device.as_deref(), cfg.gid_index)?;
        let dev = choice.device.clone();
        let verbs_err = |op: &'static str| RdmaError::Verbs {
            op,
            device: dev.clone(),
            source: std::io::Error::last_os_error(),
        };
        let pool = BufferPool::new(cfg.slab_bytes, cfg.pool_slabs)?;
        let max_payload = u32::try_from(cfg.slab_bytes - HEADER_LEN)
            .unwrap_or(u32::MAX)
            .min(crate::wire::MAX_PAYLOAD_LEN_BYTES);
        let send_rules = FrameRules::new(cfg.cluster_id, max_payload)
            .map_err(|e| RdmaError::Config(e.to_string()))?;
        let rules = send_rules.with_local_node(cfg.node_id);
        let name = CString::new(dev.clone())
            .map_err(|_| RdmaError::Config(format!("device name {dev:?} holds a NUL byte")))?;
        let mut this = Self {
            choice,
            rules,
            send_rules,
            ctx: null_mut(),
            pd: null_mut(),
            comp: null_mut(),
            cq: null_mut(),
            mr: null_mut(),
            lkey: 0,
            cm: null_mut(),
            listener: null_mut(),
            local_port: None,
            conns: (0..cfg.max_connections)
                .map(|_| Conn::new(cfg.send_depth, cfg.recv_depth))
                .collect(),
            peers: cfg
                .dial
                .iter()
                .map(|(id, addr)| (*id, Some(*addr)))
                .chain(cfg.accept_from.iter().map(|id| (*id, None)))
                .map(|(id, dial)| PeerSlot {
                    id,
                    dial,
                    conn: None,
                    up: false,
                    failures: 0,
                    next_dial_ns: 0,
                    remote_ring: None,
                })
                .collect(),
            ring: None,
            ring_stats: RingStats::default(),
            pending_limit: usize::from(cfg.max_connections)
                * (usize::from(cfg.recv_depth) + usize::from(cfg.send_depth) + 2)
                + WC_BATCH * 2,
            pending: VecDeque::new(),
            wcs: vec![Wc::default(); WC_BATCH].into_boxed_slice(),
            parked_wcs: 0,
            stats: TransportStats::default(),
            rng: u64::from_le_bytes(
                handshake::fresh_nonce().map_err(|source| RdmaError::Verbs {
                    op: "getrandom",
                    device: dev.clone(),
                    source,
                })?[..8]
                    .try_into()
                    .expect("nonce has 8 bytes"),
            ) | 1,
            cm_due_ns: 0,
            now_ns: 0,
            opening: 0,
            wake_fd: None,
            pool,
            cfg,
        };
        this.pending = VecDeque::with_capacity(this.pending_limit);
        // SAFETY (all calls below): pointers are checked for null right after each call and only
        // passed on while alive; `drop` releases them in reverse order.
        unsafe {
            this.ctx = ffi::aur_device_open(name.as_ptr());
            if this.ctx.is_null() {
                return Err(verbs_err(
                    "opening the device through rdma_cm (rdma_get_devices)",
                ));
            }
            this.pd = ffi::aur_pd_alloc(this.ctx);
            if this.pd.is_null() {
                return Err(verbs_err("ibv_alloc_pd"));
            }
            let (base, len) = this.pool.region();
            this.mr = ffi::aur_mr_reg(this.pd, base.cast(), len, 0);
            if this.mr.is_null() {
                return Err(registration_error(
                    &dev,
                    len,
                    "ibv_reg_mr of the buffer pool",
                ));
            }
            this.lkey = ffi::aur_mr_lkey(this.mr);
            this.comp = ffi::aur_comp_channel_create(this.ctx);
            if this.comp.is_null() {
                return Err(verbs_err("ibv_create_comp_channel"));
            }
            let cqe = i32::from(this.cfg.max_connections)
                * (i32::from(this.cfg.send_depth) + i32::from(this.cfg.recv_depth));
            this.cq = ffi::aur_cq_create(this.ctx, cqe, this.comp);
            if this.cq.is_null() {
                return Err(verbs_err("ibv_create_cq"));
            }
            this.cm = ffi::aur_cm_channel_create();
            if this.cm.is_null() {
                return Err(verbs_err("rdma_create_event_channel (is rdma_ucm loaded?)"));
            }
            if let Some(port) = this.cfg.listen_port {
                this.listener = ffi::aur_cm_id_create(this.cm, LISTENER_CONTEXT);
                if this.listener.is_null() {
                    return Err(verbs_err("rdma_create_id for the listener"));
                }
                let backlog = i32::from(this.cfg.max_connections);
                if ffi::aur_cm_listen(
                    this.listener,
                    u32::from(this.choice.addr).to_be(),
                    port,
                    backlog,
                ) != 0
                {
                    return Err(RdmaError::Verbs {
                        op: "rdma_bind_addr + rdma_listen",
                        device: format!("{dev} ({}:{port})", this.choice.addr),
                        source: std::io::Error::last_os_error(),
                    });
                }
                this.local_port = Some(ffi::aur_cm_local_port(this.listener));
            }
            if this.cfg.ring_slots > 0 {
                this.ring = Some(LocalRing {
                    memory: RingMemory::new(this.cfg.ring_slots, this.cfg.ring_slot_bytes),
                    mr: null_mut(),
                    granted: None,
                    last_term: 0,
                    moved_in_term: false,
                    appends: VecDeque::with_capacity(this.cfg.ring_slots as usize),
                });
            }
        }
        tracing::info!(
            device = %this.choice.device,
            gid_index = this.choice.gid_index,
            addr = %this.choice.addr,
            port = ?this.local_port,
            "rdma transport up"
        );
        Ok(this)
    }

    /// The device, GID index and address in use.
    pub fn device(&self) -> &DeviceChoice {
        &self.choice
    }

    /// The rdma_cm port peers dial, if listening.
    pub fn local_port(&self) -> Option<u16> {
        self.local_port
    }

    /// Adds `fd` (an eventfd such as the runtime's doorbell) to what [`Transport::park`] wakes on,
    /// so one wait covers completions, rdma_cm events and mailboxes. The owner of the fd drains it.
    pub fn watch_wakeup_fd(&mut self, fd: std::os::fd::RawFd) {
        self.wake_fd = Some(fd);
    }

    /// Whether `peer` is up (authenticated, frames flow).
    pub fn is_up(&self, peer: PeerId) -> bool {
        self.peers.iter().any(|p| p.id == peer && p.up)
    }

    /// Ring counters.
    pub fn ring_stats(&self) -> &RingStats {
        &self.ring_stats
    }

    /// Grants `leader` write permission to this node's ring for `term` and revokes every earlier
    /// grant: the ring is registered anew (fresh rkey) and only then is the previous registration
    /// dropped, so the old leader's rkey is dead before this returns. Call it when this node
    /// votes for (or accepts) a leader in a higher term; carry the grant to the leader in the
    /// consensus reply.
    pub fn grant_ring(&mut self, leader: PeerId, term: u64) -> Result<RingGrant, RingError> {
        let ring = self.ring.as_mut().ok_or(RingError::NoRing)?;
        // The one move a term allows: from the voted-for candidate to the term's leader.
        let moves_to_winner = term == ring.last_term
            && !ring.moved_in_term
            && ring.granted.is_some_and(|(holder, _)| holder != leader);
        if ring.last_term > 0 && term <= ring.last_term && !moves_to_winner {
            return Err(RingError::StaleTerm {
                term,
                granted: ring.last_term,
            });
        }
        let (base, len) = ring.memory.region();
        // SAFETY: the ring memory lives as long as `self` and is never moved; the PD is alive.
        let mr = unsafe { ffi::aur_mr_reg(self.pd, base.cast(), len, 1) };
        if mr.is_null() {
            return Err(RingError::Register {
                term,
                errno: ffi::last_errno(),
            });
        }
        let old = std::mem::replace(&mut ring.mr, mr);
        if !old.is_null() {
            // SAFETY: `old` was registered here and is no longer handed out.
            let rc = unsafe { ffi::aur_mr_dereg(old) };
            assert_eq!(rc, 0, "deregistering the previous ring registration failed");
        }
        ring.granted = Some((leader, term));
        ring.moved_in_term = moves_to_winner;
        ring.last_term = term;
        // Appends reported under the old term stay valid log data; the consensus core judges them.
        self.ring_stats.grants += 1;
        // SAFETY: `mr` is the live registration made above.
        let rkey = unsafe { ffi::aur_mr_rkey(mr) };
        tracing::info!(
            leader,
            term,
            rkey,
            "ring write permission granted (earlier grants revoked)"
        );
        Ok(RingGrant {
            term,
            addr: base as u64,
            rkey,
            slots: ring.memory.slots,
            slot_bytes: ring.memory.slot_bytes,
        })
    }

    /// Revokes the current grant without granting anyone (this node moved to a term with no
    /// leader to grant, e.g. it campaigns): the registration is deregistered, so the holder's rkey
    /// dies at this NIC and its writes fail there; nobody writes the ring until the next grant.
    /// Returns the revoked grant, `None` if there was none.
    pub fn revoke_ring(&mut self) -> Option<(PeerId, u64)> {
        let ring = self.ring.as_mut()?;
        let revoked = ring.granted.take()?;
        let old = std::mem::replace(&mut ring.mr, null_mut());
        if !old.is_null() {
            // SAFETY: `old` was registered by `grant_ring` and is no longer handed out.
            let rc = unsafe { ffi::aur_mr_dereg(old) };
            assert_eq!(rc, 0, "deregistering the revoked ring registration failed");
        }
        self.ring_stats.revocations += 1;
        tracing::info!(
            leader = revoked.0,
            term = revoked.1,
            "ring write permission revoked"
        );
        Some(revoked)
    }

    /// Records the write permission `peer` granted this node (as the leader of `grant.term`).
    pub fn accept_ring_grant(&mut self, peer: PeerId, grant: RingGrant) {
        if let Some(slot) = self.peers.iter_mut().find(|p| p.id == peer) {
            slot.remote_ring = Some(grant);
        }
    }

    /// RDMA-WRITEs log entry `index` into `to`'s ring under the permission for `term`, with the
    /// commit index piggybacked. The completion is counted in [`RingStats::writes_completed`]; a
    /// revoked permission fails at the follower's NIC and brings the connection down.
    pub fn ring_append(
        &mut self,
        to: PeerId,
        term: u64,
        index: u64,
        entry_term: u64,
        commit_index: u64,
        payload: &[u8],
    ) -> Result<(), RingError> {
        let peer = self
            .peers
            .iter()
            .find(|p| p.id == to)
            .ok_or(RingError::NotConnected { peer: to })?;
        let grant = match peer.remote_ring {
            Some(grant) if grant.term == term => grant,
            other => {
                return Err(RingError::NoGrant {
                    peer: to,
                    term,
                    granted: other.map(|g| g.term),
                })
            }
        };
        let len_bytes = ring::SLOT_HEADER_BYTES + payload.len();
        if len_bytes > grant.slot_bytes as usize || len_bytes > self.pool.slab_bytes() {
            return Err(RingError::TooLarge {
                len_bytes: payload.len(),
                slot_bytes: grant.slot_bytes,
            });
        }
        let slot = match peer.conn {
            Some(slot) if peer.up => slot,
            _ => return Err(RingError::NotConnected { peer: to }),
        };
        let mut buf = self.pool.take().map_err(|_| RingError::Busy)?;
        let len = ring::encode_slot(
            buf.slab_mut(),
            index,
            entry_term,
            term,
            commit_index,
            payload,
        );
        buf.set_len(len);
        let conn = &mut self.conns[slot];
        let Some(send_index) = conn.send_free.pop() else {
            return Err(RingError::Busy);
        };
        let id = wr_id(conn.gen, slot, WrKind::RingWrite, usize::from(send_index));
        // SAFETY: the QP is alive while the connection is up; the buffer lies in the registered
        // pool and is parked in `sends` until its completion.
        let rc = unsafe {
            ffi::aur_post_write(
                conn.qp,
                id,
                buf.as_ptr().cast(),
                len as u32,
                self.lkey,
                grant.slot_addr(index),
                grant.rkey,
                1,
                (index as u32).to_be(),
                i32::from(len <= self.cfg.inline_max_bytes as usize),
            )
        };
        if rc != 0 {
            conn.send_free.push(send_index);
            let errno = ffi::last_errno();
            self.close(slot, DownReason::Io { errno });
            return Err(RingError::NotConnected { peer: to });
        }
        conn.sends[usize::from(send_index)] = Some((buf, SendUse::RingWrite));
        conn.last_send_ns = self.now_ns;
        Ok(())
    }

    /// Moves the verified ring appends received so far into `out` (at most its spare capacity).
    pub fn take_ring_appends(&mut self, out: &mut Vec<RingAppend>) -> usize {
        let Some(ring) = self.ring.as_mut() else {
            return 0;
        };
        let n = ring.appends.len().min(out.capacity() - out.len());
        out.extend(ring.appends.drain(..n));
        n
    }

    /// The payload of ring entry `index`, if its slot still holds that entry under the granted term.
    pub fn ring_entry(&self, index: u64) -> Option<&[u8]> {
        let ring = self.ring.as_ref()?;
        let (from, term) = ring.granted?;
        ring::check_slot(ring.memory.slot(index), index as u32, term, from)
            .ok()
            .filter(|(append, _)| append.index == index)
            .map(|(_, payload)| payload)
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: jitter only, not security.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn emit(&mut self, event: Event) {
        assert!(
            self.pending.len() < self.pending_limit,
            "rdma event queue over its bound {}: poll reaps only while there is room",
            self.pending_limit
        );
        self.pending.push_back(event);
    }

    fn free_slot(&self) -> Option<usize> {
        self.conns.iter().position(|c| c.phase == Phase::Free)
    }

    fn context(&self, slot: usize) -> u64 {
        (slot as u64) << 32 | u64::from(self.conns[slot].gen)
    }

    /// The connection an rdma_cm event is for, if it is still the same connection.
    fn slot_of(&self, context: u64) -> Option<usize> {
        let slot = (context >> 32) as usize;
        let conn = self.conns.get(slot)?;
        (conn.phase != Phase::Free && conn.gen == context as u32).then_some(slot)
    }

    fn dial_due(&mut self) {
        for p in 0..self.peers.len() {
            let peer = &self.peers[p];
            let Some(addr) = peer.dial else { continue };
            if peer.conn.is_some() || self.now_ns < peer.next_dial_ns {
                continue;
            }
            let Some(slot) = self.free_slot() else { return };
            let peer_id = peer.id;
            self.stats.connect_attempts += 1;
            let context = self.context(slot);
            // SAFETY: the channel is alive; the id is checked for null.
            let id = unsafe { ffi::aur_cm_id_create(self.cm, context) };
            if id.is_null() {
                tracing::warn!(
                    peer = peer_id,
                    errno = ffi::last_errno(),
                    "rdma_create_id failed"
                );
                self.retry_later(p);
                continue;
            }
            let conn = &mut self.conns[slot];
            conn.phase = Phase::Resolving;
            conn.id = id;
            conn.peer = Some(peer_id);
            conn.dialed = true;
            conn.deadline_ns = self.now_ns + self.cfg.connect_timeout_ms * 1_000_000;
            self.opening += 1;
            self.peers[p].conn = Some(slot);
            let timeout_ms = self.cfg.connect_timeout_ms.min(i32::MAX as u64) as i32;
            // SAFETY: `id` is alive.
            let rc = unsafe {
                ffi::aur_cm_resolve_addr(
                    id,
                    u32::from(self.choice.addr).to_be(),
                    u32::from(*addr.ip()).to_be(),
                    addr.port(),
                    timeout_ms,
                )
            };
            if rc != 0 {
                let errno = ffi::last_errno();
                tracing::warn!(peer = peer_id, %addr, errno, "rdma_resolve_addr failed");
                self.close(slot, DownReason::Io { errno });
            }
        }
    }

    fn retry_later(&mut self, p: usize) {
        let failures = self.peers[p].failures;
        let random = self.random();
        let delay_ms = backoff_delay_ms(
            failures,
            self.cfg.backoff_min_ms,
            self.cfg.backoff_max_ms,
            random,
        );
        let peer = &mut self.peers[p];
        peer.failures = failures.saturating_add(1);
        peer.next_dial_ns = self.now_ns + delay_ms * 1_000_000;
    }

    /// Creates the QP on the connection's id and posts its receives.
    fn setup_qp(&mut self, slot: usize) -> Result<(), i32> {
        let conn = &mut self.conns[slot];
        // SAFETY: id, PD and CQ are alive.
        let qp = unsafe {
            ffi::aur_cm_create_qp(
                conn.id,
                self.pd,
                self.cq,
                u32::from(self.cfg.send_depth),
                u32::from(self.cfg.recv_depth),
                self.cfg.inline_max_bytes,
            )
        };
        if qp.is_null() {
            return Err(ffi::last_errno());
        }
        conn.qp = qp;
        // SAFETY: the id is alive.
        if unsafe { ffi::aur_cm_set_ack_timeout(conn.id, self.cfg.ack_timeout_exp) } != 0 {
            return Err(ffi::last_errno());
        }
        for index in 0..conn.recvs.len() {
            let buf = self.pool.take().map_err(|_| libc::ENOMEM)?;
            post_recv(conn, slot, index, buf, self.lkey)?;
        }
        Ok(())
    }

    fn poll_cm(&mut self) {
        let mut ev = ffi::CmEvent::default();
        // Bounded: at most this many events per poll; the rest wait for the next.
        for _ in 0..64 {
            // SAFETY: the channel is alive; `ev` is a valid out-pointer.
            if unsafe { ffi::aur_cm_get_event(self.cm, &mut ev) } != 0 {
                break;
            }
            self.on_cm_event(&ev);
        }
    }

    fn on_cm_event(&mut self, ev: &ffi::CmEvent) {
        if ev.kind == ffi::cm::CONNECT_REQUEST {
            self.on_connect_request(ev.id);
            return;
        }
        if ev.id == self.listener {
            tracing::warn!(
                kind = ev.kind,
                status = ev.status,
                "rdma_cm event on the listener"
            );
            return;
        }
        let Some(slot) = self.slot_of(ev.id_context) else {
            return; // a connection torn down since
        };
        let peer = self.conns[slot].peer;
        let timeout_ms = self.cfg.connect_timeout_ms.min(i32::MAX as u64) as i32;
        match ev.kind {
            // SAFETY: the id is alive while the slot holds it.
            ffi::cm::ADDR_RESOLVED
                if unsafe { ffi::aur_cm_resolve_route(self.conns[slot].id, timeout_ms) } != 0 =>
            {
                let errno = ffi::last_errno();
                self.close(slot, DownReason::Io { errno });
            }
            ffi::cm::ROUTE_RESOLVED => {
                let result = self.setup_qp(slot).and_then(|()| {
                    let me = self.cfg.node_id.to_le_bytes();
                    // SAFETY: the id is alive; the private data outlives the call.
                    let rc =
                        unsafe { ffi::aur_cm_connect(self.conns[slot].id, me.as_ptr().cast(), 8) };
                    if rc == 0 {
                        Ok(())
                    } else {
                        Err(ffi::last_errno())
                    }
                });
                match result {
                    Ok(()) => self.conns[slot].phase = Phase::Connecting,
                    Err(errno) => self.close(slot, DownReason::Io { errno }),
                }
            }
            ffi::cm::ESTABLISHED => self.on_established(slot),
            ffi::cm::DISCONNECTED => self.close(slot, DownReason::Closed),
            ffi::cm::ADDR_ERROR
            | ffi::cm::ROUTE_ERROR
            | ffi::cm::CONNECT_ERROR
            | ffi::cm::UNREACHABLE
            | ffi::cm::REJECTED => {
                tracing::debug!(
                    ?peer,
                    kind = ev.kind,
                    status = ev.status,
                    "rdma connection attempt failed"
                );
                let errno = if ev.status < 0 {
                    -ev.status
                } else {
                    libc::ECONNREFUSED
                };
                self.close(slot, DownReason::Io { errno });
            }
            ffi::cm::DEVICE_REMOVAL => {
                tracing::error!(device = %self.choice.device, "RDMA device removed");
                self.close(
                    slot,
                    DownReason::Io {
                        errno: libc::ENODEV,
                    },
                );
            }
            _ => {}
        }
    }

    fn on_connect_request(&mut self, id: *mut ffi::CmId) {
        self.stats.accepted += 1;
        // SAFETY (block): `id` is the new connection's id from the event; rejected ids are destroyed.
        let Some(slot) = self.free_slot() else {
            self.stats.count_rejected(RejectReason::TooManyConnections);
            tracing::warn!(
                max = self.cfg.max_connections,
                "rdma connection table full: request rejected"
            );
            unsafe {
                ffi::aur_cm_reject(id);
                ffi::aur_cm_id_destroy(id);
            }
            return;
        };
        let context = self.context(slot);
        unsafe { ffi::aur_cm_id_set_context(id, context) };
        let conn = &mut self.conns[slot];
        conn.phase = Phase::Connecting;
        conn.id = id;
        conn.peer = None;
        conn.dialed = false;
        conn.deadline_ns = self.now_ns + self.cfg.handshake_timeout_ms * 1_000_000;
        self.opening += 1;
        let result = self.setup_qp(slot).and_then(|()| {
            // SAFETY: the id is alive.
            if unsafe { ffi::aur_cm_accept(id) } == 0 {
                Ok(())
            } else {
                Err(ffi::last_errno())
            }
        });
        if let Err(errno) = result {
            tracing::warn!(errno, "accepting an rdma connection failed");
            self.close(slot, DownReason::Io { errno });
        }
    }

    fn on_established(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.phase != Phase::Connecting {
            return;
        }
        conn.phase = Phase::Handshake;
        conn.deadline_ns = self.now_ns + self.cfg.handshake_timeout_ms * 1_000_000;
        if !conn.dialed {
            conn.hs = Hs::AwaitHello;
            return;
        }
        let peer = conn.peer.expect("a dialed connection knows its peer");
        let nonce = match handshake::fresh_nonce() {
            Ok(nonce) => nonce,
            Err(e) => {
                tracing::error!(error = %e, "getrandom failed");
                self.close(slot, DownReason::Rejected(RejectReason::HandshakeProtocol));
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
        self.conns[slot].hs = Hs::AwaitChallenge(connector);
        self.send_control(slot, FrameKind::Hello, peer, &hello);
    }

    fn send_control(&mut self, slot: usize, kind: FrameKind, to: PeerId, body: &[u8]) {
        let (cluster_id, from) = (self.cfg.cluster_id, self.cfg.node_id);
        let Ok(buf) = handshake::control_frame(&self.pool, cluster_id, from, to, kind, body) else {
            self.close(
                slot,
                DownReason::Io {
                    errno: libc::ENOBUFS,
                },
            );
            return;
        };
        if let Err((_, errno)) = self.post_send(slot, buf, SendUse::Control) {
            self.close(slot, DownReason::Io { errno });
        }
    }

    fn post_send(&mut self, slot: usize, buf: Buf, what: SendUse) -> Result<(), (Buf, i32)> {
        let conn = &mut self.conns[slot];
        let Some(index) = conn.send_free.pop() else {
            return Err((buf, libc::ENOBUFS));
        };
        let id = wr_id(conn.gen, slot, WrKind::Send, usize::from(index));
        // SAFETY: the QP is alive (connection open); the buffer is in the registered pool and is
        // parked in `sends` until its completion.
        let rc = unsafe {
            ffi::aur_post_send(
                conn.qp,
                id,
                buf.as_ptr().cast(),
                buf.len() as u32,
                self.lkey,
                i32::from(buf.len() <= self.cfg.inline_max_bytes as usize),
            )
        };
        if rc != 0 {
            conn.send_free.push(index);
            return Err((buf, ffi::last_errno()));
        }
        conn.sends[usize::from(index)] = Some((buf, what));
        conn.last_send_ns = self.now_ns;
        Ok(())
    }

    /// Tears a connection down: QP destroyed first (no more DMA into its slabs), then its slabs
    /// return to the pool. Reports `PeerDown` if it was up; schedules a redial if we dial.
    fn close(&mut self, slot: usize, reason: DownReason) {
        let conn = &mut self.conns[slot];
        assert_ne!(conn.phase, Phase::Free, "closing a free connection slot");
        let was_up = conn.phase == Phase::Up;
        if !was_up {
            self.opening -= 1;
        }
        // SAFETY: id and QP are alive until here and forgotten below.
        unsafe {
            if !conn.qp.is_null() {
                ffi::aur_cm_disconnect(conn.id);
                ffi::aur_cm_destroy_qp(conn.id);
            }
            if !conn.id.is_null() {
                ffi::aur_cm_id_destroy(conn.id);
            }
        }
        conn.qp = null_mut();
        conn.id = null_mut();
        conn.recvs.iter_mut().for_each(|r| *r = None);
        conn.recv_missing = 0;
        conn.send_free.clear();
        for (i, s) in conn.sends.iter_mut().enumerate().rev() {
            *s = None;
            conn.send_free.push(i as u16);
        }
        conn.hs = Hs::None;
        conn.gen = conn.gen.wrapping_add(1) & GEN_MASK;
        conn.phase = Phase::Free;
        let peer = conn.peer.take();
        let dialed = conn.dialed;
        if let Some(p) = self.peers.iter().position(|p| p.conn == Some(slot)) {
            self.peers[p].conn = None;
            self.peers[p].up = false;
            if dialed {
                self.retry_later(p);
            }
        }
        if let DownReason::Rejected(r) = reason {
            self.stats.count_rejected(r);
        }
        if was_up {
            let peer = peer.expect("an up connection has a peer");
            self.stats.peers_down += 1;
            tracing::warn!(peer, %reason, "rdma peer down");
            self.emit(Event::PeerDown {
                remote: Remote::Peer(peer),
                reason,
            });
        } else if let DownReason::Rejected(r) = reason {
            tracing::warn!(
                ?peer,
                reason = r.label(),
                "rdma connection rejected during setup"
            );
        }
    }

    fn mark_up(&mut self, slot: usize, peer: PeerId) {
        // A newer authenticated connection from the same peer replaces an older one.
        if let Some(p) = self.peers.iter().position(|p| p.id == peer) {
            if let Some(old) = self.peers[p].conn.filter(|old| *old != slot) {
                self.close(old, DownReason::Replaced);
            }
            self.peers[p].conn = Some(slot);
            self.peers[p].up = true;
            self.peers[p].failures = 0;
        }
        let conn = &mut self.conns[slot];
        conn.phase = Phase::Up;
        conn.peer = Some(peer);
        conn.last_send_ns = self.now_ns;
        self.opening -= 1;
        self.stats.peers_up += 1;
        tracing::info!(peer, "rdma peer up");
        self.emit(Event::PeerUp {
            remote: Remote::Peer(peer),
        });
    }

    fn sweep(&mut self) {
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            if matches!(conn.phase, Phase::Free | Phase::Up) || self.now_ns < conn.deadline_ns {
                continue;
            }
            let reason = if conn.phase == Phase::Handshake {
                DownReason::Rejected(RejectReason::HandshakeTimeout)
            } else {
                DownReason::Io {
                    errno: libc::ETIMEDOUT,
                }
            };
            self.close(slot, reason);
        }
        // Idle connections probe their peer, so a dead one fails here (retry exceeded) and is
        // redialed rather than waited on.
        let keepalive_ns = self.cfg.keepalive_ms * 1_000_000;
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            if keepalive_ns == 0
                || conn.phase != Phase::Up
                || self.now_ns < conn.last_send_ns.saturating_add(keepalive_ns)
            {
                continue;
            }
            if let Some(peer) = conn.peer {
                self.send_control(slot, FrameKind::Ping, peer, &[]);
            }
        }
        // Receives that could not be re-posted for want of a slab.
        for slot in 0..self.conns.len() {
            if self.conns[slot].recv_missing > 0 && self.conns[slot].phase != Phase::Free {
                self.refill_recvs(slot);
            }
        }
    }

    fn refill_recvs(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        for index in 0..conn.recvs.len() {
            if conn.recvs[index].is_some() {
                continue;
            }
            let Ok(buf) = self.pool.take() else { return };
            if post_recv(conn, slot, index, buf, self.lkey).is_err() {
                return;
            }
            conn.recv_missing -= 1;
        }
    }

    fn on_wc(&mut self, wc: Wc) {
        let (gen, slot, kind, index) = decode_wr_id(wc.wr_id);
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        if conn.phase == Phase::Free || conn.gen != gen {
            return; // a completion of a torn-down QP
        }
        if wc.status != ffi::WC_SUCCESS {
            let errno = match wc.status {
                ffi::WC_REM_ACCESS_ERR => libc::EACCES,
                ffi::WC_WR_FLUSH_ERR => libc::ECONNRESET,
                12 => libc::ETIMEDOUT, // IBV_WC_RETRY_EXC_ERR
                13 => libc::ETIMEDOUT, // IBV_WC_RNR_RETRY_EXC_ERR
                _ => libc::EIO,
            };
            tracing::warn!(
                peer = ?conn.peer,
                status = ffi::wc_status_str(wc.status),
                ring_write = kind == WrKind::RingWrite as u64,
                "rdma work completion failed: the queue pair is in error; reconnecting"
            );
            self.close(slot, DownReason::Io { errno });
            return;
        }
        match kind {
            k if k == WrKind::Recv as u64 => self.on_recv(slot, index, wc),
            _ => {
                let conn = &mut self.conns[slot];
                let (buf, what) = conn.sends[index]
                    .take()
                    .expect("a send completion has its buffer parked");
                conn.send_free.push(index as u16);
                let to = conn.peer;
                match what {
                    SendUse::Frame => {
                        self.stats.frames_sent += 1;
                        let to = Remote::Peer(to.expect("frames are sent only to up peers"));
                        self.emit(Event::SendComplete {
                            to,
                            len_bytes: buf.len(),
                        });
                    }
                    SendUse::RingWrite => self.ring_stats.writes_completed += 1,
                    SendUse::Control => {}
                }
            }
        }
    }

    fn on_recv(&mut self, slot: usize, index: usize, wc: Wc) {
        let lkey = self.lkey;
        let conn = &mut self.conns[slot];
        let mut buf = conn.recvs[index]
            .take()
            .expect("a receive completion has its slab posted");
        if wc.opcode == ffi::WC_RECV_RDMA_WITH_IMM {
            // A ring write: the slab was not touched; post it again as it is.
            if let Err(errno) = post_recv(conn, slot, index, buf, lkey) {
                self.close(slot, DownReason::Io { errno });
                return;
            }
            self.on_ring_write(slot, u32::from_be(wc.imm_be));
            return;
        }
        match self.pool.take() {
            Ok(fresh) => {
                if let Err(errno) = post_recv(conn, slot, index, fresh, lkey) {
                    self.close(slot, DownReason::Io { errno });
                    return;
                }
            }
            Err(_) => {
                conn.recv_missing += 1;
                self.stats.receive_stalls += 1;
            }
        }
        buf.set_len(wc.byte_len as usize);
        self.on_frame(slot, buf);
    }

    fn on_ring_write(&mut self, slot: usize, imm: u32) {
        let conn = &self.conns[slot];
        let (Some(peer), Some(ring)) = (
            conn.peer.filter(|_| conn.phase == Phase::Up),
            self.ring.as_mut(),
        ) else {
            self.close(slot, DownReason::Rejected(RejectReason::HandshakeProtocol));
            return;
        };
        let Some((leader, term)) = ring.granted.filter(|(leader, _)| *leader == peer) else {
            // Only the granted leader holds the live rkey; anyone else writing is broken or hostile.
            tracing::warn!(peer, granted = ?ring.granted, "ring write from a peer without the grant");
            self.close(slot, DownReason::Rejected(RejectReason::WrongSender));
            return;
        };
        match ring::check_slot(ring.memory.slot(u64::from(imm)), imm, term, leader) {
            Ok((append, _)) => {
                if ring.appends.len() == ring.appends.capacity() {
                    self.ring_stats.appends_overflowed += 1;
                } else {
                    ring.appends.push_back(append);
                    self.ring_stats.appends_delivered += 1;
                }
            }
            Err(why) => {
                self.ring_stats.appends_rejected += 1;
                tracing::warn!(peer, imm, ?why, "ring slot failed its check; not delivered");
            }
        }
    }

    fn on_frame(&mut self, slot: usize, buf: Buf) {
        // The peer's first SEND can complete here before rdma_cm reports ESTABLISHED: a receive
        // on the QP proves the connection is established.
        if self.conns[slot].phase == Phase::Connecting {
            self.on_established(slot);
        }
        let (kind, from) = match self.rules.decode_datagram(buf.as_slice()) {
            Ok(frame) => (frame.header().kind(), frame.header().from()),
            Err(error) => {
                tracing::warn!(peer = ?self.conns[slot].peer, %error, "rdma frame rejected");
                self.close(
                    slot,
                    DownReason::Rejected(RejectReason::for_wire_error(&error)),
                );
                return;
            }
        };
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
                    self.conns[slot].hs = Hs::Done;
                    return;
                }
            }
            (Hs::AwaitHello, FrameKind::Hello) => self.on_hello(slot, from, payload),
            (Hs::AwaitResponse(acceptor), FrameKind::Response) => {
                acceptor.on_response(&self.cfg.secret, payload).map(|peer| {
                    self.send_control(slot, FrameKind::Accept, peer, &[]);
                    if self.conns[slot].phase != Phase::Free {
                        self.mark_up(slot, peer);
                    }
                    Hs::Done
                })
            }
            (Hs::AwaitChallenge(mut connector), FrameKind::Challenge) => {
                let mut response = [0u8; handshake::RESPONSE_LEN];
                connector
                    .on_challenge(&self.cfg.secret, payload, &mut response)
                    .map(|()| {
                        let peer = self.conns[slot]
                            .peer
                            .expect("a dialed connection knows its peer");
                        self.send_control(slot, FrameKind::Response, peer, &response);
                        Hs::AwaitAccept(connector)
                    })
            }
            (Hs::AwaitAccept(connector), FrameKind::Accept) => {
                connector.on_accept(payload).map(|()| {
                    let peer = self.conns[slot]
                        .peer
                        .expect("a dialed connection knows its peer");
                    self.mark_up(slot, peer);
                    Hs::Done
                })
            }
            _ => Err(RejectReason::HandshakeProtocol),
        };
        match outcome {
            Ok(next) => {
                if self.conns[slot].phase != Phase::Free {
                    self.conns[slot].hs = next;
                }
            }
            Err(reason) => {
                tracing::warn!(peer = ?self.conns[slot].peer, from, reason = reason.label(), "rdma connection rejected");
                if self.conns[slot].phase != Phase::Free {
                    self.close(slot, DownReason::Rejected(reason));
                }
            }
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
        self.conns[slot].peer = Some(from);
        self.send_control(slot, FrameKind::Challenge, from, &challenge);
        Ok(Hs::AwaitResponse(acceptor))
    }

    fn reap(&mut self, n: usize) {
        for i in 0..n {
            let wc = self.wcs[i];
            self.on_wc(wc);
        }
    }
}

fn post_recv(conn: &mut Conn, slot: usize, index: usize, buf: Buf, lkey: u32) -> Result<(), i32> {
    let id = wr_id(conn.gen, slot, WrKind::Recv, index);
    // SAFETY: the QP is alive; the slab is in the registered pool and stays parked in `recvs`
    // (so it is not reused) until its completion or the QP's destruction.
    let rc = unsafe {
        ffi::aur_post_recv(
            conn.qp,
            id,
            buf.as_ptr().cast_mut().cast(),
            buf.capacity() as u32,
            lkey,
        )
    };
    if rc != 0 {
        return Err(ffi::last_errno());
    }
    conn.recvs[index] = Some(buf);
    Ok(())
}

/// A failed registration: the memlock limit when it is the cause, else the errno.
fn registration_error(device: &str, region_bytes: usize, op: &'static str) -> RdmaError {
    let source = std::io::Error::last_os_error();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    let have_limit = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    let limited = have_limit
        && limit.rlim_cur != libc::RLIM_INFINITY
        && (limit.rlim_cur as usize) < region_bytes;
    if limited
        && matches!(
            source.raw_os_error(),
            Some(libc::ENOMEM | libc::EPERM | libc::EAGAIN)
        )
    {
        return RdmaError::Memlock {
            device: device.to_string(),
            region_bytes,
            limit_bytes: limit.rlim_cur,
        };
    }
    RdmaError::Verbs {
        op,
        device: device.to_string(),
        source,
    }
}

impl Transport for RdmaTransport {
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
        let frame_len = self
            .send_rules
            .validate_header(buf.as_slice())
            .map(|h| h.frame_len_bytes());
        if frame_len != Ok(buf.len()) {
            let len_bytes = buf.len();
            return Err(SendError {
                to,
                kind: SendErrorKind::MalformedFrame {
                    len_bytes,
                    why: "the header is invalid or its length is not the buffer's",
                },
                buf,
            });
        }
        let Remote::Peer(peer) = to else {
            return Err(SendError {
                to,
                kind: SendErrorKind::NotConnected,
                buf,
            });
        };
        let slot = match self.peers.iter().find(|p| p.id == peer) {
            Some(PeerSlot {
                conn: Some(slot),
                up: true,
                ..
            }) => *slot,
            _ => {
                return Err(SendError {
                    to,
                    kind: SendErrorKind::NotConnected,
                    buf,
                })
            }
        };
        match self.post_send(slot, buf, SendUse::Frame) {
            Ok(()) => Ok(()),
            Err((buf, libc::ENOBUFS)) => Err(SendError {
                to,
                kind: SendErrorKind::QueueFull {
                    capacity: usize::from(self.cfg.send_depth),
                },
                buf,
            }),
            Err((buf, errno)) => {
                self.close(slot, DownReason::Io { errno });
                Err(SendError {
                    to,
                    kind: SendErrorKind::NotConnected,
                    buf,
                })
            }
        }
    }

    fn poll(&mut self, now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError> {
        self.now_ns = now_ns;
        if self.parked_wcs > 0 {
            let n = std::mem::take(&mut self.parked_wcs);
            self.reap(n);
        }
        if self.opening > 0 || now_ns >= self.cm_due_ns {
            self.cm_due_ns = now_ns + CM_INTERVAL_NS;
            self.poll_cm();
            self.sweep();
            self.dial_due();
        }
        // Bounded: each batch is at most WC_BATCH completions and yields at most 2 events each;
        // stop when the pending queue could not take another batch.
        while self.pending.len() + 2 * WC_BATCH <= self.pending_limit {
            // SAFETY: the CQ is alive; `wcs` holds WC_BATCH entries.
            let n = unsafe { ffi::aur_cq_poll(self.cq, WC_BATCH as i32, self.wcs.as_mut_ptr()) };
            if n < 0 {
                return Err(TransportError::Io {
                    op: "ibv_poll_cq",
                    source: std::io::Error::last_os_error(),
                });
            }
            self.reap(n as usize);
            if (n as usize) < WC_BATCH {
                break;
            }
        }
        let room = events.capacity() - events.len();
        let n = room.min(self.pending.len());
        events.extend(self.pending.drain(..n));
        Ok(n)
    }

    fn park(&mut self, timeout_ns: u64) -> Result<(), TransportError> {
        if !self.pending.is_empty() || self.parked_wcs > 0 || self.opening > 0 {
            return Ok(());
        }
        // SAFETY: CQ, channels and `wcs` are alive.
        unsafe {
            if ffi::aur_cq_req_notify(self.cq) != 0 {
                return Err(TransportError::Io {
                    op: "ibv_req_notify_cq",
                    source: std::io::Error::last_os_error(),
                });
            }
            // Completions that arrived before arming raise no notification: take them now.
            let n = ffi::aur_cq_poll(self.cq, WC_BATCH as i32, self.wcs.as_mut_ptr());
            if n > 0 {
                self.parked_wcs = n as usize;
                return Ok(());
            }
            let pollfd = |fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let mut fds = [
                pollfd(ffi::aur_comp_channel_fd(self.comp)),
                pollfd(ffi::aur_cm_channel_fd(self.cm)),
                pollfd(self.wake_fd.unwrap_or(-1)), // poll(2) skips a negative fd
            ];
            let timeout_ms = timeout_ns.div_ceil(1_000_000).min(i32::MAX as u64) as i32;
            self.stats.kernel_enters += 1;
            if libc::poll(fds.as_mut_ptr(), 3, timeout_ms) > 0 && fds[0].revents != 0 {
                ffi::aur_cq_take_notification(self.comp);
            }
            if fds[1].revents != 0 {
                self.cm_due_ns = 0;
            }
        }
        Ok(())
    }

    fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

impl Drop for RdmaTransport {
    fn drop(&mut self) {
        for slot in 0..self.conns.len() {
            if self.conns[slot].phase != Phase::Free {
                // `close` reports PeerDown into `pending`, which is dropped with us anyway.
                self.pending.clear();
                self.close(slot, DownReason::Closed);
            }
        }
        // SAFETY: every QP is destroyed above, so nothing uses the MRs, CQ or PD any more; each
        // pointer is released once, in reverse order of creation.
        unsafe {
            if !self.listener.is_null() {
                ffi::aur_cm_id_destroy(self.listener);
            }
            if !self.cm.is_null() {
                ffi::aur_cm_channel_destroy(self.cm);
            }
            if let Some(ring) = &self.ring {
                if !ring.mr.is_null() {
                    ffi::aur_mr_dereg(ring.mr);
                }
            }
            if !self.cq.is_null() {
                ffi::aur_cq_destroy(self.cq);
            }
            if !self.comp.is_null() {
                ffi::aur_comp_channel_destroy(self.comp);
            }
            if !self.mr.is_null() {
                ffi::aur_mr_dereg(self.mr);
            }
            if !self.pd.is_null() {
                ffi::aur_pd_dealloc(self.pd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_request_ids_round_trip() {
        let id = wr_id(0xAB_CDEF, 254, WrKind::RingWrite, (1 << 30) - 1);
        assert_eq!(
            decode_wr_id(id),
            (0xAB_CDEF, 254, WrKind::RingWrite as u64, (1 << 30) - 1)
        );
        let id = wr_id(0, 0, WrKind::Recv, 0);
        assert_eq!(decode_wr_id(id), (0, 0, 0, 0));
    }

    #[test]
    fn a_bad_configuration_names_the_fix() {
        let secret = ClusterSecret::new(&[7; 32]).unwrap();
        let mut cfg = RdmaConfig::new(2, 1, secret);
        cfg.dial.push((1, "192.0.2.1:7000".parse().unwrap()));
        let err = RdmaTransport::new(cfg.clone()).err().unwrap();
        assert!(err.to_string().contains("the smaller id dials"), "{err}");
        cfg.dial.clear();
        cfg.pool_slabs = 10;
        let err = RdmaTransport::new(cfg).err().unwrap();
        assert!(
            err.to_string().contains("pool_slabs = 10 is too small"),
            "{err}"
        );
    }
}
