//! The node's loop: consensus, store and WAL on one thread, peers over `tcp_uring`, clients over
//! the epoll table of [`super::clients`].
//!
//! One iteration, with one clock read (DESIGN.md §3):
//!
//! ```text
//!  now ─► peers: poll, step ─► WAL: reap durable flushes, ack the core ─► clients: read requests,
//!         propose / read / watch ─► tick ─► Ready: send, persist + flush, apply + answer, reads
//!         ─► sweeps (deadlines, lease expiry, snapshots, status) ─► park if idle
//! ```
//!
//! Writes are answered after apply, linearizable reads once the core says the read is safe (leader
//! lease or ReadIndex) and the store has applied up to the read's index. Everything the loop holds
//! is bounded: pending writes by the core's uncommitted limit and each connection's queue depth,
//! reads by the core's pending-read limit, watches by `limits.max_watches`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::clients::{ClientTable, ConnRef};
use super::fragments::{self, Reassembly};
use super::protocol::{
    decode_request, frame_response_into, CancelReason, Consistency, NodeRole, NodeStatus,
    RequestOpView, ResponseRef, ServerError,
};
use super::status::{PeerStatus, Shared, StatusSnapshot};
use super::{Counters, ServerConfig};
use crate::config::Durability;
use crate::consensus::{
    self, codec, Entry, EntryKind, InMessage, Node, PersistId, ProposeError, ReadError, ReadMode,
    Role,
};
use crate::metrics::{CoreMetrics, HistogramId, ShardMetrics};
use crate::runtime::{Clock, MonotonicClock};
use crate::storage::{EntryRef, Wal};
use crate::store::{
    codec as store_codec, Acquire, ApplyOutput, BarrierStatus, ClientId, Command, Event, KeyRange,
    LeaseId, Notification, ReadRequest, Reply, Request, Response, RevokeReason, SessionHeader,
    Store, StoreLimits,
};
use crate::transport::{Event as NetEvent, Remote, Transport};

use super::peer_transport::PeerTransport;
use super::snapshot_transfer::{Receiver, Shipments, CHUNKS_PER_ITERATION, CHUNK_HEADER_BYTES};
use super::snapshotter::{HeldSnapshot, Snapshotter};
use crate::wire::{FrameBuilder, FrameHeader, FrameKind, FrameRules, HeaderFields, HEADER_LEN};

/// How often deadlines, lease expiry and the shared status are swept.
const SWEEP_INTERVAL_NS: u64 = 1_000_000;
/// How often metrics are published to the admin thread.
const PUBLISH_INTERVAL_NS: u64 = 100_000_000;
/// Transport events reaped per poll.
const NET_EVENTS_PER_POLL: usize = 256;

fn entry_kind_byte(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Normal => 0,
        EntryKind::Noop => 1,
        EntryKind::Config => 2,
    }
}

/// WAL record and entries headers, budgeted once per record.
const WAL_RECORD_HEAD_BYTES: usize = 64;
/// WAL bytes per entry besides its payload (term, kind, length).
const WAL_ENTRY_HEAD_BYTES: usize = 8 + 1 + 4;

/// How many of `entries` form the next WAL record of at most `budget_bytes` (always at least one:
/// the write buffer is sized for the largest entry); `None` when there are none left.
fn record_group<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    budget_bytes: usize,
) -> Option<usize> {
    let mut count = 0;
    let mut bytes = 0;
    for e in entries {
        let cost = WAL_ENTRY_HEAD_BYTES + e.payload.len();
        if count > 0 && bytes + cost > budget_bytes {
            break;
        }
        bytes += cost;
        count += 1;
    }
    (count > 0).then_some(count)
}

pub(super) fn entry_kind_from_byte(byte: u8) -> Option<EntryKind> {
    Some(match byte {
        0 => EntryKind::Normal,
        1 => EntryKind::Noop,
        2 => EntryKind::Config,
        _ => return None,
    })
}

struct PendingWrite {
    index: u64,
    term: u64,
    conn: ConnRef,
    correlation_id: u64,
    proposed_ns: u64,
    deadline_ns: u64,
    /// Answered already (its deadline passed); the entry may still apply.
    answered: bool,
}

struct PendingRead {
    id: u64,
    conn: ConnRef,
    correlation_id: u64,
    deadline_ns: u64,
    request: ReadRequest,
    answered: bool,
}

struct Watch {
    conn: ConnRef,
    id: u64,
    range: KeyRange,
    prev_kv: bool,
}

/// Where a memory-mode node that restarted without its log stands. Storage keeps term and vote
/// but not the log, so until the node holds everything a leader had committed it must not vote:
/// its empty log would vouch for a candidate that lacks acknowledged writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recovery {
    /// Normal operation.
    Done,
    /// No leader heard since the restart.
    WaitingForLeader,
    /// A leader's commit index is known; votes resume once the local commit index reaches it.
    CatchingUp { target: u64 },
}

/// The client-facing half of the loop: connections and everything waiting for an answer. Split
/// from the consensus node so answers can be written while a `Ready` borrows the node.
struct Desk {
    cfg: Arc<ServerConfig>,
    clients: ClientTable,
    writes: VecDeque<PendingWrite>,
    reads: VecDeque<PendingRead>,
    next_read_id: u64,
    /// Lock / campaign / barrier requests answered "waiting", by session.
    waiters: HashMap<(ClientId, u64), (ConnRef, u64)>,
    watches: Vec<Watch>,
    watch_scratch: Vec<Event>,
    /// Leader-side lease deadlines (ns); every replica tracks grants so a new leader has them all.
    lease_deadlines: HashMap<LeaseId, u64>,
    counters: Counters,
}

impl Desk {
    fn answer(&mut self, conn: ConnRef, correlation_id: u64, response: ResponseRef<'_>) {
        let cluster_id = self.cfg.config.cluster_id;
        if !self.clients.send(conn, |room| {
            frame_response_into(room, cluster_id, correlation_id, response).map_err(|e| e.need)
        }) {
            self.counters.answers_dropped += 1;
        }
    }

    fn fail(&mut self, conn: ConnRef, correlation_id: u64, error: &ServerError) {
        self.counters.errors_answered += 1;
        self.answer(conn, correlation_id, ResponseRef::Error(error));
    }

    fn not_leader(&self, leader: Option<u64>) -> ServerError {
        match leader.and_then(|id| self.cfg.config.member(id)) {
            Some(member) => ServerError::NotLeader {
                leader: member.id,
                leader_client_addr: member.client_addr.to_string(),
            },
            None => ServerError::NoLeader,
        }
    }

    fn deadline_ns(&self, now_ns: u64, deadline_ms: u32) -> u64 {
        let ms = if deadline_ms == 0 {
            self.cfg.config.timing.request_timeout_ms
        } else {
            u64::from(deadline_ms).min(self.cfg.config.timing.request_timeout_ms.max(1) * 60)
        };
        now_ns + ms * 1_000_000
    }

    /// A new entry was appended at `index` in `term`: pending writes at or past that index were
    /// proposed in an earlier term and their entries are gone from this log, so they will never
    /// apply. Failing them now keeps the queue in index order.
    fn drop_overwritten(&mut self, index: u64, term: u64) {
        while self.writes.back().is_some_and(|w| w.index >= index) {
            let w = self.writes.pop_back().expect("back exists");
            assert!(
                w.term < term,
                "two proposals at index {} in term {term}",
                w.index
            );
            if !w.answered {
                self.fail(w.conn, w.correlation_id, &lost_write());
                self.clients.complete(w.conn);
            }
        }
    }

    /// Delivers the response of an applied entry to whoever waits for it.
    fn on_applied(
        &mut self,
        index: u64,
        term: u64,
        out: &ApplyOutput,
        now_ns: u64,
        metrics: &mut ShardMetrics,
        commit_latency: HistogramId,
    ) {
        // Pending writes are in index order; older ones were overwritten by a new leader.
        while let Some(front) = self.writes.front() {
            if front.index > index {
                break;
            }
            let w = self.writes.pop_front().expect("front exists");
            if w.answered {
                continue;
            }
            if w.index < index || w.term != term {
                // The entry at this index is another one: the proposal was lost to a leader change
                // and never applied.
                self.fail(w.conn, w.correlation_id, &lost_write());
                self.clients.complete(w.conn);
                if w.index < index {
                    continue;
                }
                break;
            }
            metrics.record(commit_latency, now_ns.saturating_sub(w.proposed_ns));
            match &out.response {
                Some(addressed) => {
                    self.answer(
                        w.conn,
                        w.correlation_id,
                        ResponseRef::StoreResponse(&addressed.response),
                    );
                    if is_waiting(&addressed.response) && addressed.client_id != 0 {
                        self.waiters.insert(
                            (addressed.client_id, addressed.seq),
                            (w.conn, w.correlation_id),
                        );
                    }
                }
                None => {
                    let reason = match &out.rejected {
                        Some(e) => format!("the store rejected the entry: {e}"),
                        None => "the entry produced no response".to_owned(),
                    };
                    self.fail(
                        w.conn,
                        w.correlation_id,
                        &ServerError::BadRequest { reason },
                    );
                }
            }
            self.clients.complete(w.conn);
            break;
        }
        for n in &out.notifications {
            match n {
                Notification::Completed(addressed) => {
                    if let Some((conn, corr)) =
                        self.waiters.remove(&(addressed.client_id, addressed.seq))
                    {
                        self.answer(conn, corr, ResponseRef::StoreResponse(&addressed.response));
                    }
                }
                Notification::LeaseGranted { id, ttl_ms } => {
                    self.lease_deadlines
                        .insert(*id, now_ns + ttl_ms.saturating_mul(1_000_000));
                }
                Notification::LeaseRevoked { id } => {
                    self.lease_deadlines.remove(id);
                }
                Notification::LeaderChanged { .. } => {}
            }
        }
        if !out.events.is_empty() && !self.watches.is_empty() {
            self.notify_watches(&out.events);
        }
    }

    fn notify_watches(&mut self, events: &[Event]) {
        let mut dead = Vec::new();
        for i in 0..self.watches.len() {
            let mut scratch = std::mem::take(&mut self.watch_scratch);
            scratch.clear();
            let w = &self.watches[i];
            for e in events.iter().filter(|e| w.range.contains(&e.kv.key)) {
                let mut e = e.clone();
                if !w.prev_kv {
                    e.prev_kv = None;
                }
                scratch.push(e);
            }
            if !scratch.is_empty() {
                let (conn, id) = (w.conn, w.id);
                if !self.clients.is_open(conn) {
                    dead.push(i);
                } else {
                    self.answer(
                        conn,
                        id,
                        ResponseRef::WatchEvents {
                            watch_id: id,
                            events: &scratch,
                        },
                    );
                }
            }
            self.watch_scratch = scratch;
        }
        for i in dead.into_iter().rev() {
            self.watches.swap_remove(i);
        }
    }
}

/// The answer to a write whose log entry was replaced by a newer leader's.
fn lost_write() -> ServerError {
    ServerError::Unavailable {
        reason: "leadership changed before the write committed; it was not applied, retry on \
                 the current leader"
            .to_owned(),
    }
}

fn is_waiting(response: &Response) -> bool {
    matches!(
        response.result,
        Ok(Reply::Lock(Acquire::Queued { .. })
            | Reply::Campaign(Acquire::Queued { .. })
            | Reply::Barrier(BarrierStatus::Waiting { .. }))
    )
}

fn role_of(role: Role) -> NodeRole {
    match role {
        Role::Follower => NodeRole::Follower,
        Role::PreCandidate => NodeRole::PreCandidate,
        Role::Candidate => NodeRole::Candidate,
        Role::Leader => NodeRole::Leader,
        Role::Learner => NodeRole::Learner,
    }
}

/// Everything the loop owns.
pub(super) struct NodeLoop {
    cfg: Arc<ServerConfig>,
    node: Node,
    store: Store,
    limits: StoreLimits,
    wal: Wal,
    snapshots: Snapshotter,
    /// Snapshots being sent to followers behind the compaction point.
    shipments: Shipments,
    /// A snapshot being received from the leader.
    receiver: Receiver,
    /// A received snapshot, restored, that the core is installing: swapped in at its persist.
    installing: Option<(HeldSnapshot, Store)>,
    chunk_scratch: Vec<u8>,
    /// A consensus frame too large for one slab is encoded here, then sent in pieces.
    frame_scratch: Vec<u8>,
    /// Pieces of such frames from each peer.
    reassembly: Reassembly,
    transport: PeerTransport,
    desk: Desk,
    net_events: Vec<NetEvent>,
    /// Persists handed to the WAL with the flush that makes each durable (`None`: nothing to wait
    /// for), in issue order.
    persists: VecDeque<(Option<u64>, PersistId)>,
    durable_flush: u64,
    apply_out: ApplyOutput,
    recovery: Recovery,
    role: Role,
    next_sweep_ns: u64,
    next_status_ns: u64,
    next_publish_ns: u64,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    metrics: ShardMetrics,
    core_metrics: CoreMetrics,
    /// Replication RTT probe per peer: (peer, seq of the timed append, send time; 0 = none).
    append_sent: Vec<(u64, u64, u64)>,
    peer_up: Vec<(u64, bool)>,
    revoke_buf: Vec<u8>,
    /// The one-sided replication path (`transport = "rdma"` with `rdma.ring_slots > 0`).
    #[cfg(feature = "rdma")]
    ring: Option<super::ring_path::RingPath>,
}

/// What start-up hands the loop.
pub(super) struct Parts {
    pub cfg: Arc<ServerConfig>,
    pub node: Node,
    pub store: Store,
    pub wal: Wal,
    pub snapshots: Snapshotter,
    pub transport: PeerTransport,
    pub clients: ClientTable,
    pub shared: Arc<Shared>,
    pub stop: Arc<AtomicBool>,
    pub metrics: ShardMetrics,
    pub core_metrics: CoreMetrics,
    pub recovery: Recovery,
}

impl NodeLoop {
    pub fn new(p: Parts) -> Self {
        let limits = *p.store.limits();
        #[cfg(feature = "rdma")]
        let ring = super::ring_path::RingPath::new(&p.cfg, &p.node);
        let me = p.cfg.config.node_id;
        let peer_up: Vec<(u64, bool)> = p
            .cfg
            .config
            .members
            .iter()
            .filter(|m| m.id != me)
            .map(|m| (m.id, false))
            .collect();
        let append_sent = peer_up.iter().map(|&(id, _)| (id, 0, 0)).collect();
        let max_payload = u32::try_from(p.cfg.max_peer_frame_bytes - HEADER_LEN)
            .expect("config validation bounds frames far below 4 GiB");
        let rules = FrameRules::new(p.cfg.config.cluster_id, max_payload)
            .expect("peer frames are below the wire's payload ceiling")
            .with_local_node(me);
        let reassembly = Reassembly::new(
            peer_up.iter().map(|&(id, _)| id),
            p.cfg.max_peer_frame_bytes,
            rules,
        );
        let max_pending = p.cfg.max_pending_requests;
        let mut lease_deadlines = HashMap::new();
        for lease in p.store.leases() {
            lease_deadlines.insert(lease.id, u64::MAX);
        }
        Self {
            node: p.node,
            store: p.store,
            limits,
            wal: p.wal,
            snapshots: p.snapshots,
            shipments: Shipments::default(),
            receiver: Receiver::default(),
            installing: None,
            chunk_scratch: Vec::new(),
            frame_scratch: vec![0; p.cfg.max_peer_frame_bytes],
            reassembly,
            transport: p.transport,
            desk: Desk {
                cfg: Arc::clone(&p.cfg),
                clients: p.clients,
                writes: VecDeque::with_capacity(max_pending),
                reads: VecDeque::with_capacity(max_pending),
                next_read_id: 1,
                waiters: HashMap::new(),
                watches: Vec::new(),
                watch_scratch: Vec::new(),
                lease_deadlines,
                counters: Counters::default(),
            },
            net_events: Vec::with_capacity(NET_EVENTS_PER_POLL),
            persists: VecDeque::with_capacity(2048),
            durable_flush: 0,
            apply_out: ApplyOutput::default(),
            recovery: p.recovery,
            role: Role::Follower,
            next_sweep_ns: 0,
            next_status_ns: 0,
            next_publish_ns: 0,
            shared: p.shared,
            stop: p.stop,
            metrics: p.metrics,
            core_metrics: p.core_metrics,
            append_sent,
            peer_up,
            revoke_buf: Vec::with_capacity(64),
            #[cfg(feature = "rdma")]
            ring,
            cfg: p.cfg,
        }
    }

    /// Runs until the stop flag is raised. Returns an error only for a failure that leaves the node
    /// unable to go on safely (the WAL or the transport broke).
    pub fn run(mut self) -> Result<(), String> {
        let mut clock = MonotonicClock;
        let mut idle_since_ns: Option<u64> = None;
        let spin_ns = self.cfg.config.runtime.spin_us * 1_000;
        let max_park_ns = self.cfg.config.runtime.max_park_us.max(1) * 1_000;
        let wake_fd = self.desk.clients.wake_fd();
        self.transport.watch_wakeup_fd(wake_fd);
        let wal_fd = self
            .desk
            .clients
            .wake_eventfd()
            .map_err(|e| format!("cannot create the WAL wake-up eventfd: {e}"))?;
        self.wal
            .register_eventfd(wal_fd)
            .map_err(|e| format!("cannot register the WAL wake-up eventfd: {e}"))?;
        self.publish_status(0);
        // Bounded by the stop flag; each iteration does a bounded amount of work.
        while !self.stop.load(Ordering::Acquire) {
            let now_ns = clock.now_ns();
            if self.iterate(now_ns)? {
                idle_since_ns = None;
                continue;
            }
            let since = *idle_since_ns.get_or_insert(now_ns);
            if now_ns.saturating_sub(since) < spin_ns {
                std::hint::spin_loop();
                continue;
            }
            if self.wal.has_pending_completions() {
                continue;
            }
            let timeout_ns = max_park_ns
                .min(self.cfg.heartbeat_interval_ns / 2)
                .max(1_000);
            self.transport
                .park(timeout_ns)
                .map_err(|e| format!("peer transport failed while parked: {e}"))?;
        }
        tracing::info!(node = self.cfg.config.node_id, "node loop stopping");
        if let Err(e) = self.wal.wait_idle() {
            tracing::warn!(error = %e, "WAL did not drain cleanly at shutdown");
        }
        Ok(())
    }

    fn iterate(&mut self, now_ns: u64) -> Result<bool, String> {
        let mut worked = self.poll_peers(now_ns)?;
        worked |= self.poll_wal(now_ns)?;
        worked |= self.poll_snapshot()?;
        worked |= self.send_snapshot_chunks();
        worked |= self.poll_clients(now_ns);
        self.node.tick(now_ns);
        // A follower's acknowledgement waits for its persist; in memory mode (and when the WAL
        // completes at once) that happens right here, so a second round sends it without another
        // trip around the loop. Bounded: two rounds.
        for _ in 0..2 {
            if !self.node.has_ready() {
                break;
            }
            self.handle_ready(now_ns)?;
            self.poll_wal(now_ns)?;
            worked = true;
        }
        if now_ns >= self.next_sweep_ns {
            self.next_sweep_ns = now_ns + SWEEP_INTERVAL_NS;
            self.sweep(now_ns);
        }
        if now_ns >= self.next_status_ns {
            self.next_status_ns = now_ns + STATUS_INTERVAL_NS;
            self.publish_status(now_ns);
        }
        if now_ns >= self.next_publish_ns {
            self.next_publish_ns = now_ns + PUBLISH_INTERVAL_NS;
            self.metrics.publish();
        }
        Ok(worked)
    }

    // ---- peers ---------------------------------------------------------------------------------

    fn poll_peers(&mut self, now_ns: u64) -> Result<bool, String> {
        self.net_events.clear();
        let n = self
            .transport
            .poll(now_ns, &mut self.net_events)
            .map_err(|e| format!("peer transport failed: {e}"))?;
        #[cfg(feature = "rdma")]
        let n = n + self.drain_ring(now_ns);
        if n == 0 {
            return Ok(false);
        }
        let mut events = std::mem::take(&mut self.net_events);
        for event in events.drain(..) {
            match event {
                NetEvent::Received {
                    from: Remote::Peer(from),
                    buf,
                } => self.on_peer_frame_or_piece(from, buf.as_slice(), now_ns),
                NetEvent::PeerUp {
                    remote: Remote::Peer(id),
                } => {
                    self.set_peer_up(id, true);
                    #[cfg(feature = "rdma")]
                    if let Some(ring) = &mut self.ring {
                        let cluster_id = self.cfg.config.cluster_id;
                        ring.peer_up(id, &self.node, &mut self.transport, cluster_id);
                    }
                    if self.cfg.config.durability == Durability::Memory {
                        // It may have restarted with an empty log: re-learn what it holds.
                        self.node.reset_progress(id);
                    }
                }
                NetEvent::PeerDown {
                    remote: Remote::Peer(id),
                    reason,
                } => {
                    tracing::info!(peer = id, %reason, "peer down");
                    self.set_peer_up(id, false);
                    #[cfg(feature = "rdma")]
                    if let Some(ring) = &mut self.ring {
                        ring.peer_down(id);
                    }
                    self.shipments.peer_down(id);
                    self.reassembly.reset(id);
                }
                _ => {}
            }
        }
        self.net_events = events;
        Ok(true)
    }

    /// Steps every frame the leader wrote into this node's ring, as received frames.
    #[cfg(feature = "rdma")]
    fn drain_ring(&mut self, now_ns: u64) -> usize {
        let Some(ring) = &mut self.ring else {
            return 0;
        };
        let n = ring.take_appends(&mut self.transport);
        for i in 0..n {
            let Some(ring) = &mut self.ring else {
                break;
            };
            let Some((from, frame)) = ring.load(i, &self.transport) else {
                continue;
            };
            self.on_peer_frame_or_piece(from, &frame, now_ns);
            if let Some(ring) = &mut self.ring {
                ring.restore(frame);
            }
        }
        n
    }

    fn set_peer_up(&mut self, id: u64, up: bool) {
        if let Some(p) = self.peer_up.iter_mut().find(|(p, _)| *p == id) {
            p.1 = up;
        }
    }

    /// A frame, or a piece of one too large for a slab: whole frames go on to
    /// [`NodeLoop::on_peer_frame`].
    fn on_peer_frame_or_piece(&mut self, from: u64, frame: &[u8], now_ns: u64) {
        let kind = FrameHeader::read_from(frame).and_then(|h| FrameKind::from_byte(h.kind));
        #[cfg(feature = "rdma")]
        if kind == Some(FrameKind::RingGrant) {
            if let Some(ring) = &mut self.ring {
                ring.on_grant(from, &frame[HEADER_LEN..], &self.node, &mut self.transport);
            }
            return;
        }
        let is_piece = kind == Some(FrameKind::Fragment);
        if !is_piece {
            return self.on_peer_frame(from, frame, now_ns);
        }
        match self.reassembly.add(from, &frame[HEADER_LEN..]) {
            Ok(false) => {}
            Ok(true) => {
                let whole = self.reassembly.take(from);
                self.on_peer_frame(from, &whole, now_ns);
                self.reassembly.restore(from, whole);
            }
            Err(e) => {
                self.desk.counters.bad_peer_messages += 1;
                tracing::warn!(peer = from, error = %e, "dropped a fragmented peer frame");
            }
        }
    }

    fn on_peer_frame(&mut self, from: u64, frame: &[u8], now_ns: u64) {
        let Some(header) = FrameHeader::read_from(frame) else {
            return;
        };
        let Some(FrameKind::Consensus(kind)) = FrameKind::from_byte(header.kind) else {
            return;
        };
        let payload = &frame[crate::wire::HEADER_LEN..];
        let decoded = match codec::decode(kind, payload) {
            Ok(d) => d,
            Err(e) => {
                self.desk.counters.bad_peer_messages += 1;
                tracing::warn!(peer = from, error = %e, "dropped a consensus message that does not decode");
                return;
            }
        };
        let snapshot_data = decoded.snapshot_data;
        let message: InMessage<'_> = decoded.message;
        match &message {
            consensus::Message::Vote(_) if self.recovery != Recovery::Done => {
                self.desk.counters.votes_withheld += 1;
                return;
            }
            consensus::Message::Append(a) if self.recovery == Recovery::WaitingForLeader => {
                self.recovery = Recovery::CatchingUp { target: a.commit };
                tracing::info!(
                    target_index = a.commit,
                    "memory-mode recovery: catching up to the leader's commit index before voting again"
                );
            }
            consensus::Message::AppendResponse(r) => {
                if let Some(slot) = self.append_sent.iter_mut().find(|s| s.0 == from) {
                    if slot.1 == r.seq && slot.2 != 0 {
                        if let Some(h) = self.core_metrics.replication_rtt(from) {
                            self.metrics.record(h, now_ns.saturating_sub(slot.2));
                        }
                        slot.2 = 0;
                    }
                }
            }
            consensus::Message::InstallSnapshot(s) => {
                // Chunks are reassembled here; the core sees the snapshot once, whole and
                // restored (a snapshot that does not restore never reaches it).
                let bytes = match self.receiver.add(from, s, snapshot_data) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return,
                    Err(e) => {
                        self.desk.counters.snapshots_refused += 1;
                        tracing::debug!(peer = from, error = %e, "snapshot chunk dropped");
                        return;
                    }
                };
                let store = match Store::restore(&mut bytes.as_slice()) {
                    Ok(store) => store,
                    Err(e) => {
                        self.desk.counters.snapshots_refused += 1;
                        tracing::warn!(peer = from, index = s.meta.index, error = %e, "a snapshot from the leader does not restore; dropped");
                        return;
                    }
                };
                if store.applied_index() != s.meta.index {
                    self.desk.counters.snapshots_refused += 1;
                    tracing::warn!(
                        peer = from,
                        index = s.meta.index,
                        applied = store.applied_index(),
                        "a snapshot from the leader is not at its index; dropped"
                    );
                    return;
                }
                if self.recovery == Recovery::WaitingForLeader {
                    self.recovery = Recovery::CatchingUp {
                        target: s.meta.index,
                    };
                }
                let held = HeldSnapshot {
                    meta: s.meta,
                    data: bytes.into(),
                };
                self.installing = Some((held, store));
            }
            _ => {}
        }
        if let Err(e) = self.node.step(from, message) {
            tracing::warn!(peer = from, error = %e, "consensus refused a message");
        }
    }

    // ---- WAL -----------------------------------------------------------------------------------

    fn poll_wal(&mut self, now_ns: u64) -> Result<bool, String> {
        let durable = self
            .wal
            .poll(now_ns)
            .map_err(|e| format!("WAL failed: {e}"))?;
        let mut worked = false;
        if let Some(d) = durable {
            d.record_sync_latency(&mut self.metrics, self.core_metrics.fsync);
            self.durable_flush = self.durable_flush.max(d.flush_seq);
            worked = true;
        }
        let mut newest = None;
        while let Some(&(flush, id)) = self.persists.front() {
            if flush.is_some_and(|seq| seq > self.durable_flush) {
                break;
            }
            self.persists.pop_front();
            newest = Some(id);
        }
        if let Some(id) = newest {
            self.node.persisted(id);
            worked = true;
        }
        Ok(worked)
    }

    // ---- snapshots -----------------------------------------------------------------------------

    /// Starts a snapshot of the store at `applied` when one is due (see [`Snapshotter`]).
    fn maybe_snapshot(&mut self, applied: u64) {
        let log_bytes = self.node.log().payload_bytes();
        if !self
            .snapshots
            .due(applied, log_bytes, self.node.config().max_log_bytes)
        {
            return;
        }
        let meta = match self.node.snapshot_meta(applied) {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!(index = applied, error = %e, "no snapshot taken");
                return;
            }
        };
        match self
            .snapshots
            .begin(&self.store, meta, || MonotonicClock.now_ns())
        {
            Ok(taken) => {
                self.desk.counters.snapshot_len_bytes_last = taken.len_bytes;
                self.desk.counters.snapshot_encode_ns_last = taken.encode_ns;
            }
            Err(e) => {
                self.desk.counters.snapshot_failures += 1;
                tracing::warn!(index = applied, error = %e, "snapshot save not started");
            }
        }
    }

    /// A snapshot became durable: mark it in the WAL (its old segments go once the mark is
    /// durable) and drop the entries it covers from the consensus log.
    fn poll_snapshot(&mut self) -> Result<bool, String> {
        let Some(outcome) = self.snapshots.poll() else {
            return Ok(false);
        };
        let durable = match outcome {
            Ok(durable) => durable,
            Err(e) => {
                self.desk.counters.snapshot_failures += 1;
                tracing::warn!(error = %e, "snapshot save failed; the log is kept until the next one");
                return Ok(true);
            }
        };
        let index = durable.position().index;
        self.desk.counters.snapshots_saved += 1;
        self.desk.counters.snapshot_index = index;
        if index > self.wal.compacted().index {
            mark_snapshot(&mut self.wal, &durable, false)?;
        }
        if let Err(e) = self.node.compact(index) {
            // A newer snapshot was installed meanwhile; nothing left to drop.
            tracing::debug!(index, error = %e, "consensus log not compacted");
        }
        Ok(true)
    }

    /// Sends up to [`CHUNKS_PER_ITERATION`] chunks of every snapshot shipment; a full send queue
    /// or an empty pool pauses a shipment until the next iteration.
    fn send_snapshot_chunks(&mut self) -> bool {
        if self.shipments.active.is_empty() {
            return false;
        }
        let cluster_id = self.cfg.config.cluster_id;
        let me = self.cfg.config.node_id;
        let mut sent = false;
        for i in 0..self.shipments.active.len() {
            for _ in 0..CHUNKS_PER_ITERATION {
                let s = &self.shipments.active[i];
                if s.done() {
                    break;
                }
                let to = s.to;
                let msg: consensus::OutMessage = consensus::Message::InstallSnapshot(s.message);
                let Ok(mut buf) = self.transport.buffers().take() else {
                    break;
                };
                let fields = HeaderFields {
                    kind: FrameKind::Consensus(codec::kind_of(&msg)),
                    cluster_id,
                    from: me,
                    to,
                    term: msg.term(),
                    correlation_id: 0,
                };
                let Ok(mut builder) = FrameBuilder::new(buf.slab_mut(), &fields) else {
                    break;
                };
                let room = builder.payload_mut().len();
                let fixed = codec::encoded_len(&msg, self.node.log(), CHUNK_HEADER_BYTES)
                    .expect("an InstallSnapshot's length does not depend on the log");
                if room <= fixed {
                    // The membership alone fills a frame: this snapshot cannot travel.
                    self.desk.counters.snapshots_refused += 1;
                    self.shipments.active[i].next_offset = s.data.len().max(1);
                    break;
                }
                let took = s.chunk_into(room - fixed, &mut self.chunk_scratch);
                let len = match codec::encode(
                    &msg,
                    self.node.log(),
                    &self.chunk_scratch,
                    builder.payload_mut(),
                ) {
                    Ok((_, len)) => len,
                    Err(e) => {
                        tracing::warn!(peer = to, error = %e, "snapshot chunk not encoded");
                        break;
                    }
                };
                let Ok(frame_len) = builder.finish(len) else {
                    break;
                };
                buf.set_len(frame_len);
                if self.transport.send(Remote::Peer(to), buf).is_err() {
                    self.desk.counters.peer_sends_dropped += 1;
                    break;
                }
                self.shipments.active[i].next_offset += took;
                sent = true;
            }
        }
        self.shipments.retain_unfinished();
        sent
    }

    // ---- clients -------------------------------------------------------------------------------

    fn poll_clients(&mut self, now_ns: u64) -> bool {
        if !self.desk.clients.poll() {
            return false;
        }
        let batch = self.desk.clients.take_batch();
        for incoming in &batch.incoming {
            let payload = batch.payload(incoming);
            self.on_request(incoming.conn, incoming.correlation_id, payload, now_ns);
        }
        self.desk.clients.restore_batch(batch);
        true
    }

    fn on_request(&mut self, conn: ConnRef, corr: u64, payload: &[u8], now_ns: u64) {
        let view = match decode_request(payload) {
            Ok(v) => v,
            Err(e) => {
                let error = ServerError::BadRequest {
                    reason: e.to_string(),
                };
                self.desk.fail(conn, corr, &error);
                return;
            }
        };
        let deadline_ns = self.desk.deadline_ns(now_ns, view.deadline_ms);
        match view.op {
            RequestOpView::Status => {
                let status = self.node_status();
                self.desk.answer(conn, corr, ResponseRef::Status(&status));
            }
            RequestOpView::Watch {
                key,
                range_end,
                start_revision,
                prev_kv,
            } => {
                let range = KeyRange {
                    key: key.to_vec(),
                    range_end: range_end.to_vec(),
                };
                self.create_watch(conn, corr, range, start_revision, prev_kv);
            }
            RequestOpView::CancelWatch { watch_id } => {
                if let Some(at) = self
                    .desk
                    .watches
                    .iter()
                    .position(|w| w.conn == conn && w.id == watch_id)
                {
                    self.desk.watches.swap_remove(at);
                }
                self.desk.answer(
                    conn,
                    corr,
                    ResponseRef::WatchCanceled {
                        watch_id,
                        reason: CancelReason::Requested,
                    },
                );
            }
            RequestOpView::Store {
                consistency,
                request,
            } => {
                self.on_store_request(conn, corr, consistency, request, deadline_ns, now_ns);
            }
        }
    }

    fn on_store_request(
        &mut self,
        conn: ConnRef,
        corr: u64,
        consistency: Consistency,
        bytes: &[u8],
        deadline_ns: u64,
        now_ns: u64,
    ) {
        if bytes.len() > self.cfg.max_entry_bytes {
            let error = ServerError::TooLarge {
                len_bytes: bytes.len() as u64,
                max_bytes: self.cfg.max_entry_bytes as u64,
            };
            self.desk.fail(conn, corr, &error);
            return;
        }
        let request = match store_codec::decode_request(bytes, &self.limits) {
            Ok(r) => r,
            Err(crate::store::CodecError::TooLong { len, max, .. }) => {
                let error = ServerError::TooLarge {
                    len_bytes: len as u64,
                    max_bytes: max as u64,
                };
                self.desk.fail(conn, corr, &error);
                return;
            }
            Err(e) => {
                let error = ServerError::BadRequest {
                    reason: e.to_string(),
                };
                self.desk.fail(conn, corr, &error);
                return;
            }
        };
        if !self.desk.clients.admit(conn, self.cfg.client_queue_depth) {
            self.desk.fail(conn, corr, &ServerError::Busy);
            return;
        }
        match request.command {
            Command::Read(read) => self.start_read(conn, corr, consistency, read, deadline_ns),
            _ => self.propose(conn, corr, bytes, deadline_ns, now_ns),
        }
    }

    fn propose(&mut self, conn: ConnRef, corr: u64, bytes: &[u8], deadline_ns: u64, now_ns: u64) {
        if self.recovery != Recovery::Done {
            self.refuse(conn, corr, self.recovering_error());
            return;
        }
        match self.node.propose(bytes) {
            Ok(p) => {
                debug_assert_eq!(p.first, p.last);
                self.desk.drop_overwritten(p.first, p.term);
                self.desk.writes.push_back(PendingWrite {
                    index: p.first,
                    term: p.term,
                    conn,
                    correlation_id: corr,
                    proposed_ns: now_ns,
                    deadline_ns,
                    answered: false,
                });
            }
            Err(e) => {
                let error = match e {
                    ProposeError::NotLeader { leader } => self.desk.not_leader(Some(leader)),
                    ProposeError::NoLeader => ServerError::NoLeader,
                    ProposeError::Busy { .. } => ServerError::Busy,
                    ProposeError::LogFull { len, bytes, .. } => ServerError::Unavailable {
                        reason: format!(
                            "the in-memory log is full ({len} entries, {bytes} bytes; \
                             limits.max_log_bytes_in_memory): a snapshot compacts it every \
                             storage.snapshot_every_entries entries or half that many bytes; \
                             retry, or raise the limit and restart the cluster"
                        ),
                    },
                    ProposeError::TooLarge {
                        len_bytes,
                        max_bytes,
                    } => ServerError::TooLarge {
                        len_bytes: len_bytes as u64,
                        max_bytes: max_bytes as u64,
                    },
                    other => ServerError::Unavailable {
                        reason: other.to_string(),
                    },
                };
                self.refuse(conn, corr, error);
            }
        }
    }

    /// Answers an admitted request with an error and releases its queue slot.
    fn refuse(&mut self, conn: ConnRef, corr: u64, error: ServerError) {
        self.desk.fail(conn, corr, &error);
        self.desk.clients.complete(conn);
    }

    fn recovering_error(&self) -> ServerError {
        ServerError::Unavailable {
            reason: "this node restarted without its log (durability = memory) and is catching up \
                     with the leader; use another node"
                .to_owned(),
        }
    }

    fn start_read(
        &mut self,
        conn: ConnRef,
        corr: u64,
        consistency: Consistency,
        read: ReadRequest,
        deadline_ns: u64,
    ) {
        let mode = match consistency {
            Consistency::Linearizable => ReadMode::Lease,
            Consistency::ReadIndex => ReadMode::ReadIndex,
            Consistency::Stale => {
                if self.recovery != Recovery::Done {
                    self.refuse(conn, corr, self.recovering_error());
                    return;
                }
                let response = self.store.read(&read);
                self.desk
                    .answer(conn, corr, ResponseRef::StoreResponse(&response));
                self.desk.clients.complete(conn);
                return;
            }
        };
        let id = self.desk.next_read_id;
        self.desk.next_read_id += 1;
        match self.node.read(id, mode) {
            Ok(()) => self.desk.reads.push_back(PendingRead {
                id,
                conn,
                correlation_id: corr,
                deadline_ns,
                request: read,
                answered: false,
            }),
            Err(e) => {
                let error = self.read_error(e);
                self.refuse(conn, corr, error);
            }
        }
    }

    fn read_error(&self, e: ReadError) -> ServerError {
        match e {
            ReadError::NotLeader { leader } => self.desk.not_leader(Some(leader)),
            ReadError::NoLeader => ServerError::NoLeader,
            ReadError::Busy { .. } => ServerError::Busy,
            ReadError::LeadershipLost { .. } => self.desk.not_leader(self.node.leader()),
        }
    }

    fn create_watch(
        &mut self,
        conn: ConnRef,
        corr: u64,
        range: KeyRange,
        start_revision: u64,
        prev_kv: bool,
    ) {
        if self.desk.watches.len() >= self.cfg.config.limits.max_watches as usize {
            self.desk.fail(conn, corr, &ServerError::Busy);
            return;
        }
        let start = if start_revision == 0 {
            self.store.revision() + 1
        } else {
            start_revision
        };
        let history: Vec<Event> = match self.store.events_since(start, &range) {
            Ok(events) => events
                .map(|mut e| {
                    if !prev_kv {
                        e.prev_kv = None;
                    }
                    e
                })
                .collect(),
            Err(c) => {
                let error = ServerError::Compacted {
                    requested: c.requested,
                    compact_revision: c.compact_revision,
                };
                self.desk.fail(conn, corr, &error);
                return;
            }
        };
        self.desk.answer(
            conn,
            corr,
            ResponseRef::WatchCreated {
                watch_id: corr,
                start_revision: start,
            },
        );
        // Replay in bounded batches so one answer never needs more than a frame.
        for chunk in history.chunks(64) {
            self.desk.answer(
                conn,
                corr,
                ResponseRef::WatchEvents {
                    watch_id: corr,
                    events: chunk,
                },
            );
        }
        self.desk.watches.push(Watch {
            conn,
            id: corr,
            range,
            prev_kv,
        });
    }

    // ---- Ready ---------------------------------------------------------------------------------

    fn handle_ready(&mut self, now_ns: u64) -> Result<(), String> {
        let cluster_id = self.cfg.config.cluster_id;
        let me = self.cfg.config.node_id;
        // The ring's write permission follows the step before any of its messages (a vote in a
        // higher term) leaves.
        #[cfg(feature = "rdma")]
        if let Some(ring) = &mut self.ring {
            ring.observe(&self.node, &mut self.transport, cluster_id);
        }
        let ready = self.node.ready();
        // 1. Messages: encoded straight from the log into pool slabs.
        for env in ready.messages() {
            let msg = &env.message;
            if let consensus::Message::InstallSnapshot(s) = msg {
                // Sent in chunks by `send_snapshot_chunks`.
                match self.snapshots.held() {
                    Some(h) if h.meta.index == s.meta.index && h.meta.term == s.meta.term => {
                        self.shipments.start(env.to, *s, &h.data);
                    }
                    _ => {
                        self.desk.counters.snapshots_refused += 1;
                        tracing::warn!(
                            peer = env.to,
                            index = s.meta.index,
                            "no snapshot bytes held for an InstallSnapshot; not sent"
                        );
                    }
                }
                continue;
            }
            let Ok(mut buf) = self.transport.buffers().take() else {
                self.desk.counters.peer_sends_dropped += 1;
                continue;
            };
            let fields = HeaderFields {
                kind: FrameKind::Consensus(codec::kind_of(msg)),
                cluster_id,
                from: me,
                to: env.to,
                term: msg.term(),
                correlation_id: 0,
            };
            let slab = buf.slab_mut();
            let Ok(mut builder) = FrameBuilder::new(slab, &fields) else {
                self.desk.counters.peer_sends_dropped += 1;
                continue;
            };
            let len = match codec::encode(msg, ready.log(), &[], builder.payload_mut()) {
                Ok((_, len)) => len,
                Err(codec::EncodeError::BufferTooSmall { .. }) => {
                    // One entry larger than a slab: the frame goes in pieces.
                    drop(buf);
                    let scratch = &mut self.frame_scratch;
                    let sent = FrameBuilder::new(scratch, &fields)
                        .map_err(|e| e.to_string())
                        .and_then(|mut b| {
                            let (_, len) = codec::encode(msg, ready.log(), &[], b.payload_mut())
                                .map_err(|e| e.to_string())?;
                            b.finish(len).map_err(|e| e.to_string())
                        })
                        .and_then(|frame_len| {
                            fragments::send_in_pieces(
                                &mut self.transport,
                                env.to,
                                &fields,
                                &scratch[..frame_len],
                            )
                            .map_err(|e| e.to_string())
                        });
                    match sent {
                        Ok(_) => self.desk.counters.peer_frames_in_pieces += 1,
                        Err(e) => {
                            self.desk.counters.peer_sends_dropped += 1;
                            tracing::debug!(peer = env.to, error = %e, "large consensus frame not sent");
                        }
                    }
                    continue;
                }
                Err(e) => {
                    self.desk.counters.peer_sends_dropped += 1;
                    tracing::warn!(peer = env.to, error = %e, "consensus message not sent");
                    continue;
                }
            };
            let Ok(frame_len) = builder.finish(len) else {
                self.desk.counters.peer_sends_dropped += 1;
                continue;
            };
            buf.set_len(frame_len);
            if let consensus::Message::Append(a) = msg {
                if !a.entries.is_empty() {
                    if let Some(slot) = self.append_sent.iter_mut().find(|s| s.0 == env.to) {
                        if slot.2 == 0 {
                            *slot = (env.to, a.seq, now_ns.max(1));
                        }
                    }
                }
            }
            #[cfg(feature = "rdma")]
            if let Some(ring) = &mut self.ring {
                if ring.try_write(&mut self.transport, env.to, msg, &buf) {
                    continue;
                }
            }
            if self.transport.send(Remote::Peer(env.to), buf).is_err() {
                // Not connected or queue full: Raft treats it as loss and retries.
                self.desk.counters.peer_sends_dropped += 1;
            }
        }
        // 2. Persist: append, hard state, one flush (group commit).
        if let Some(p) = ready.persist() {
            if let Some(meta) = p.snapshot {
                // The core adopted a snapshot from the leader: it must be durable, and the log
                // after it discarded, before the persist is reported.
                let (held, store) = self
                    .installing
                    .take()
                    .filter(|(h, _)| h.meta.index == meta.index && h.meta.term == meta.term)
                    .ok_or_else(|| {
                        format!(
                            "the core installs snapshot {}/{} but its bytes were not received",
                            meta.index, meta.term
                        )
                    })?;
                let durable = self
                    .snapshots
                    .install_blocking(meta, held.data)
                    .map_err(|e| format!("saving the installed snapshot failed: {e}"))?;
                mark_snapshot(&mut self.wal, &durable, true)?;
                self.store = store;
                self.desk.lease_deadlines.clear();
                for lease in self.store.leases() {
                    self.desk.lease_deadlines.insert(lease.id, u64::MAX);
                }
                // Events between the old and the new state are not replayed.
                let error = ServerError::Unavailable {
                    reason: format!(
                        "this node installed the leader's snapshot at index {}; its watches \
                         missed events: watch again",
                        meta.index
                    ),
                };
                for w in std::mem::take(&mut self.desk.watches) {
                    self.desk.fail(w.conn, w.id, &error);
                }
                self.desk.counters.snapshots_installed += 1;
                self.desk.counters.snapshot_index = meta.index;
                tracing::info!(index = meta.index, "installed the leader's snapshot");
            }
            if !p.entries.is_empty() {
                // Records of at most a write buffer each (large entries make several).
                let budget_bytes = self.wal.max_record_bytes() - WAL_RECORD_HEAD_BYTES;
                let mut done = 0;
                while let Some(count) =
                    record_group(ready.persist_entries().skip(done), budget_bytes)
                {
                    let first = p.entries.first + done as u64;
                    let entries = || {
                        ready
                            .persist_entries()
                            .skip(done)
                            .take(count)
                            .map(|e| EntryRef {
                                term: e.term,
                                kind: entry_kind_byte(e.kind),
                                data: &e.payload,
                            })
                    };
                    if let Err(e) = self.wal.append_entries(first, entries()) {
                        // The write buffer is full: let the batch in flight land, then retry once.
                        self.wal
                            .flush(true, now_ns)
                            .and_then(|_| self.wal.wait_idle())
                            .map_err(|e2| format!("WAL append failed: {e}; then {e2}"))?;
                        self.wal
                            .append_entries(first, entries())
                            .map_err(|e| format!("WAL append failed: {e}"))?;
                    }
                    done += count;
                }
            } else {
                debug_assert!(
                    p.truncate_from.is_none(),
                    "a truncation always comes with entries"
                );
            }
            if let Some(hs) = p.hard_state {
                self.wal
                    .set_hard_state(crate::storage::HardState {
                        term: hs.term,
                        vote: hs.vote,
                        commit: hs.commit,
                    })
                    .map_err(|e| format!("WAL hard state failed: {e}"))?;
            }
            let seq = self
                .wal
                .flush(p.must_sync, now_ns)
                .map_err(|e| format!("WAL flush failed: {e}"))?;
            self.persists.push_back((p.must_sync.then_some(seq), p.id));
        }
        // 3. Apply committed entries and answer their clients.
        let mut applied = None;
        let apply_start_ns = now_ns;
        for entry in ready.committed() {
            match entry.kind {
                EntryKind::Normal => {
                    self.store
                        .apply(entry.index, &entry.payload, &mut self.apply_out);
                }
                EntryKind::Noop | EntryKind::Config => {
                    self.store.apply(entry.index, &[], &mut self.apply_out);
                }
            }
            self.desk.on_applied(
                entry.index,
                entry.term,
                &self.apply_out,
                now_ns,
                &mut self.metrics,
                self.core_metrics.commit_latency,
            );
            applied = Some(entry.index);
        }
        // 4. Reads that became safe.
        for r in ready.reads() {
            let Some(at) = self.desk.reads.iter().position(|p| p.id == r.id) else {
                continue;
            };
            let pending = self.desk.reads.remove(at).expect("position is in range");
            if pending.answered {
                continue;
            }
            match r.outcome {
                Ok(_) => {
                    let response = self.store.read(&pending.request);
                    if let (
                        ReadRequest::LeaseKeepAlive { .. },
                        Ok(Reply::LeaseAlive { id, ttl_ms }),
                    ) = (&pending.request, &response.result)
                    {
                        self.desk
                            .lease_deadlines
                            .insert(*id, now_ns + ttl_ms.saturating_mul(1_000_000));
                    }
                    self.desk.answer(
                        pending.conn,
                        pending.correlation_id,
                        ResponseRef::StoreResponse(&response),
                    );
                }
                Err(e) => {
                    let error = match e {
                        ReadError::NotLeader { leader } => self.desk.not_leader(Some(leader)),
                        ReadError::NoLeader => ServerError::NoLeader,
                        ReadError::Busy { .. } => ServerError::Busy,
                        ReadError::LeadershipLost { .. } => ServerError::NoLeader,
                    };
                    self.desk.fail(pending.conn, pending.correlation_id, &error);
                }
            }
            self.desk.clients.complete(pending.conn);
        }
        let soft = ready.soft_state();
        if let Some(index) = applied {
            let apply_ns = MonotonicClock.now_ns().saturating_sub(apply_start_ns);
            self.metrics.record(self.core_metrics.apply, apply_ns);
            self.node.applied(index);
        }
        self.node.advance();
        if let Some(index) = applied {
            self.maybe_snapshot(index);
        }
        if let Some(soft) = soft {
            self.on_soft_state(soft.role, now_ns);
        }
        if let Recovery::CatchingUp { target } = self.recovery {
            if self.node.commit_index() >= target && self.node.applied_index() >= target {
                self.recovery = Recovery::Done;
                tracing::info!(index = target, "memory-mode recovery done: voting again");
            }
        }
        Ok(())
    }

    fn on_soft_state(&mut self, role: Role, now_ns: u64) {
        let was_leader = self.role == Role::Leader;
        self.role = role;
        if role == Role::Leader && !was_leader {
            // etcd's rule: a new leader gives every lease a full TTL from now.
            for lease in self.store.leases() {
                self.desk
                    .lease_deadlines
                    .insert(lease.id, now_ns + lease.ttl_ms.saturating_mul(1_000_000));
            }
            tracing::info!(
                node = self.cfg.config.node_id,
                term = self.node.term(),
                "became leader"
            );
        }
        if was_leader && role != Role::Leader {
            // Waiters were registered by this leader; their completions now reach nobody here.
            let error = self.desk.not_leader(self.node.leader());
            let waiters: Vec<(ConnRef, u64)> = self.desk.waiters.drain().map(|(_, v)| v).collect();
            for (conn, corr) in waiters {
                self.desk.fail(conn, corr, &error);
            }
        }
    }

    // ---- sweeps --------------------------------------------------------------------------------

    fn sweep(&mut self, now_ns: u64) {
        // Deadlines: answer and release the slot; the entry itself may still commit.
        for i in 0..self.desk.writes.len() {
            let w = &self.desk.writes[i];
            if !w.answered && now_ns >= w.deadline_ns {
                let (conn, corr) = (w.conn, w.correlation_id);
                self.desk.writes[i].answered = true;
                self.desk.fail(conn, corr, &ServerError::DeadlineExceeded);
                self.desk.clients.complete(conn);
            }
        }
        for i in 0..self.desk.reads.len() {
            let r = &self.desk.reads[i];
            if !r.answered && now_ns >= r.deadline_ns {
                let (conn, corr) = (r.conn, r.correlation_id);
                self.desk.reads[i].answered = true;
                self.desk.fail(conn, corr, &ServerError::DeadlineExceeded);
                self.desk.clients.complete(conn);
            }
        }
        // Lease expiry is the leader's decision, committed through the log.
        if self.role == Role::Leader {
            let expired: Vec<LeaseId> = self
                .desk
                .lease_deadlines
                .iter()
                .filter(|&(_, &deadline)| now_ns >= deadline)
                .map(|(&id, _)| id)
                .collect();
            for id in expired {
                self.revoke_buf.clear();
                store_codec::encode_request(
                    &Request {
                        session: SessionHeader::none(0),
                        command: Command::LeaseRevoke {
                            id,
                            reason: RevokeReason::Expired,
                        },
                    },
                    &mut self.revoke_buf,
                );
                if let Ok(p) = self.node.propose(&self.revoke_buf) {
                    self.desk.drop_overwritten(p.first, p.term);
                    self.desk.counters.leases_expired += 1;
                    // Retry after an election timeout if the revocation does not commit.
                    self.desk
                        .lease_deadlines
                        .insert(id, now_ns + self.cfg.election_timeout_ns);
                }
            }
        }
        self.desk
            .watches
            .retain(|w| self.desk.clients.is_open(w.conn));
    }

    fn node_status(&self) -> NodeStatus {
        let leader = self.node.leader().unwrap_or(0);
        NodeStatus {
            node_id: self.cfg.config.node_id,
            role: role_of(self.node.role()),
            term: self.node.term(),
            leader,
            commit_index: self.node.commit_index(),
            applied_index: self.node.applied_index(),
            revision: self.store.revision(),
            durability: self.cfg.config.durability,
            leader_client_addr: self
                .cfg
                .config
                .member(leader)
                .map(|m| m.client_addr.to_string())
                .unwrap_or_default(),
        }
    }

    fn publish_status(&mut self, _now_ns: u64) {
        let node = self.node_status();
        let peers = self
            .peer_up
            .iter()
            .map(|&(id, up)| {
                let progress = self.node.progress(id);
                PeerStatus {
                    id,
                    connected: up,
                    matched: progress.map(|p| p.matched),
                    lag: progress.map(|p| self.node.log().last_index().saturating_sub(p.matched)),
                }
            })
            .collect();
        #[cfg(feature = "rdma")]
        if let Some(ring) = &self.ring {
            self.desk.counters.ring = ring.counters;
        }
        let snapshot = StatusSnapshot {
            transport: self.transport.name(),
            node,
            recovering: self.recovery != Recovery::Done,
            peers,
            clients_open: self.desk.clients.open(),
            client_stats: self.desk.clients.stats(),
            counters: self.desk.counters,
            pending_writes: self.desk.writes.len(),
            pending_reads: self.desk.reads.len(),
            watches: self.desk.watches.len(),
            wal: self.wal.stats(),
            consensus: self.node.stats(),
        };
        self.shared.set_status(snapshot);
    }
}

/// Records a durable snapshot in the WAL; a full write buffer first lets the batch in flight land.
fn mark_snapshot(
    wal: &mut Wal,
    durable: &crate::storage::DurableSnapshot,
    discard_suffix: bool,
) -> Result<(), String> {
    let index = durable.position().index;
    if wal.mark_snapshot(durable, discard_suffix).is_ok() {
        return Ok(());
    }
    wal.flush(true, MonotonicClock.now_ns())
        .and_then(|_| wal.wait_idle())
        .and_then(|()| wal.mark_snapshot(durable, discard_suffix))
        .map_err(|e| format!("WAL snapshot mark at {index} failed: {e}"))
}

/// How often the shared status (for `/status`) is refreshed.
const STATUS_INTERVAL_NS: u64 = 10_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(sizes: &[usize]) -> Vec<Entry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| Entry {
                term: 1,
                index: i as u64 + 1,
                kind: EntryKind::Normal,
                payload: vec![0; len],
            })
            .collect()
    }

    #[test]
    fn wal_records_group_entries_up_to_the_budget() {
        let cost = |len: usize| WAL_ENTRY_HEAD_BYTES + len;
        let es = entries(&[100, 100, 1000, 100]);
        // Everything fits one record.
        assert_eq!(record_group(es.iter(), 10_000), Some(4));
        // The budget ends the record before the entry that would overflow it.
        assert_eq!(record_group(es.iter(), cost(100) * 2 + 10), Some(2));
        assert_eq!(record_group(es.iter().skip(2), cost(1000)), Some(1));
        // An entry larger than the budget still forms a record of its own (the WAL buffer is
        // sized for the largest entry), and nothing left means no record.
        assert_eq!(record_group(es.iter().skip(2), 10), Some(1));
        assert_eq!(record_group(es.iter().skip(4), 10_000), None);
    }
}
