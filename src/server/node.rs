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
use super::protocol::{
    decode_request, frame_response_into, CancelReason, Consistency, NodeRole, NodeStatus,
    RequestOpView, ResponseRef, ServerError,
};
use super::status::{PeerStatus, Shared, StatusSnapshot};
use super::{Counters, ServerConfig};
use crate::config::Durability;
use crate::consensus::{
    self, codec, EntryKind, InMessage, Node, PersistId, ProposeError, ReadError, ReadMode, Role,
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
use crate::wire::{FrameBuilder, FrameHeader, FrameKind, HeaderFields};

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
}

/// What start-up hands the loop.
pub(super) struct Parts {
    pub cfg: Arc<ServerConfig>,
    pub node: Node,
    pub store: Store,
    pub wal: Wal,
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
        if n == 0 {
            return Ok(false);
        }
        let mut events = std::mem::take(&mut self.net_events);
        for event in events.drain(..) {
            match event {
                NetEvent::Received {
                    from: Remote::Peer(from),
                    buf,
                } => self.on_peer_frame(from, buf.as_slice(), now_ns),
                NetEvent::PeerUp {
                    remote: Remote::Peer(id),
                } => {
                    self.set_peer_up(id, true);
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
                }
                _ => {}
            }
        }
        self.net_events = events;
        Ok(true)
    }

    fn set_peer_up(&mut self, id: u64, up: bool) {
        if let Some(p) = self.peer_up.iter_mut().find(|(p, _)| *p == id) {
            p.1 = up;
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
            consensus::Message::InstallSnapshot(_) => {
                // Not supported by this release (see docs/PROTOCOL.md "Limits"): the log is
                // never compacted while a follower may still need it.
                self.desk.counters.snapshots_refused += 1;
                tracing::warn!(
                    peer = from,
                    "InstallSnapshot received but not supported; dropped"
                );
                return;
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
                    ProposeError::LogFull { len, .. } => ServerError::Unavailable {
                        reason: format!(
                            "the in-memory log is full ({len} entries, limits.max_log_bytes_in_memory) \
                             and this release cannot compact it (snapshots are not implemented); \
                             raise the limit and restart the cluster"
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
        let ready = self.node.ready();
        // 1. Messages: encoded straight from the log into pool slabs.
        for env in ready.messages() {
            let msg = &env.message;
            if matches!(msg, consensus::Message::InstallSnapshot(_)) {
                self.desk.counters.snapshots_refused += 1;
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
            if self.transport.send(Remote::Peer(env.to), buf).is_err() {
                // Not connected or queue full: Raft treats it as loss and retries.
                self.desk.counters.peer_sends_dropped += 1;
            }
        }
        // 2. Persist: append, hard state, one flush (group commit).
        if let Some(p) = ready.persist() {
            assert!(
                p.snapshot.is_none(),
                "snapshots are never installed by this release"
            );
            if !p.entries.is_empty() {
                let entries = || {
                    ready.persist_entries().map(|e| EntryRef {
                        term: e.term,
                        kind: entry_kind_byte(e.kind),
                        data: &e.payload,
                    })
                };
                if let Err(e) = self.wal.append_entries(p.entries.first, entries()) {
                    // The write buffer is full: let the batch in flight land, then retry once.
                    self.wal
                        .flush(true, now_ns)
                        .and_then(|_| self.wal.wait_idle())
                        .map_err(|e2| format!("WAL append failed: {e}; then {e2}"))?;
                    self.wal
                        .append_entries(p.entries.first, entries())
                        .map_err(|e| format!("WAL append failed: {e}"))?;
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

/// How often the shared status (for `/status`) is refreshed.
const STATUS_INTERVAL_NS: u64 = 10_000_000;
