//! One consensus replica as a deterministic state machine: inputs in, a [`Ready`] out.
//!
//! See the module documentation of [`consensus`](super) for the contract the host follows.

use std::collections::VecDeque;

use super::codec::EntriesView;
use super::config::NodeConfig;
use super::error::{
    CompactError, NodeError, ProposeError, ReadError, ReadMode, StepError, TransferError,
};
use super::log::Log;
use super::membership::{Membership, QuorumKind, MAX_MEMBERS};
use super::message::{
    Append, AppendResponse, Envelope, InMessage, InstallSnapshot, LogRange, Message, OutMessage,
    TimeoutNow, VoteRequest, VoteResponse,
};
use super::progress::{Progress, ReplicaState};
use super::ready::{Persist, PersistId, ReadState, Ready};
use super::types::{
    Entry, EntryKind, HardState, LogIndex, NodeId, Role, SnapshotMeta, SoftState, Term,
};

/// What the host restored from storage at start-up.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub hard_state: HardState,
    /// The latest snapshot, if any; the host has loaded it into its state machine.
    pub snapshot: Option<SnapshotMeta>,
    /// Durable entries after the snapshot, contiguous and in order.
    pub entries: Vec<Entry>,
}

/// A proposal accepted into the leader's log at `first..=last` in `term`. If the entry the host later
/// applies at one of these indexes has another term, the proposal was lost to a leader change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub term: Term,
    pub first: LogIndex,
    pub last: LogIndex,
}

/// Counters a host exports as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages dropped because the outbox or the persistence-held queue was full.
    pub dropped_messages: u64,
    /// Lease reads served through ReadIndex because the lease was not valid.
    pub lease_fallbacks: u64,
    /// Appends dropped by a follower whose in-memory log was full.
    pub appends_dropped_log_full: u64,
}

#[derive(Debug, Clone, Copy)]
struct Transfer {
    to: NodeId,
    deadline_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct PendingRead {
    id: u64,
    /// The read index, once the leader has committed an entry of its term.
    index: Option<LogIndex>,
    /// Leadership is confirmed once a lease quorum acknowledged an append with `seq >= round_seq`;
    /// `0` when a valid lease already confirmed it.
    round_seq: u64,
}

/// A write handed to the host and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct IssuedPersist {
    id: u64,
    /// The last log position the write made durable, if it carried entries or a snapshot.
    last: Option<(LogIndex, Term)>,
}

/// Tracks what is durable and what is still owed to the host.
#[derive(Debug)]
struct Durability {
    next_id: u64,
    acked_id: u64,
    issued: VecDeque<IssuedPersist>,
    /// First index not yet handed to the host for persistence.
    persist_from: LogIndex,
    truncate_from: Option<LogIndex>,
    snapshot: Option<SnapshotMeta>,
    /// Highest index known durable in the local log.
    stable: LogIndex,
    /// The hard state last handed to the host.
    handed: HardState,
}

/// Bound on writes handed out and not acknowledged; beyond it no new write is issued (backpressure).
const MAX_ISSUED_PERSISTS: usize = 1024;

/// One replica of the hybrid Raft/Flexible-Paxos core. Sans-IO: no clock, socket, thread or random
/// source inside.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    id: NodeId,
    term: Term,
    vote: Option<NodeId>,
    commit: LogIndex,
    role: Role,
    leader: Option<NodeId>,
    log: Log,
    membership: Membership,
    membership_index: LogIndex,
    progress: Vec<Progress>,
    votes: Vec<(NodeId, bool)>,
    now_ns: u64,
    election_deadline_ns: u64,
    heartbeat_deadline_ns: u64,
    check_quorum_deadline_ns: u64,
    /// This node grants no vote to a non-transfer candidate before this time: its promise to the
    /// leader it last heard from (also set at start-up, since a restarted node forgot its promise).
    promise_until_ns: u64,
    rng: u64,
    transfer: Option<Transfer>,
    /// Set once this leader sent TimeoutNow: a transfer target may win votes despite the followers'
    /// promises, so no lease read is served for the rest of the term.
    lease_revoked: bool,
    /// Next append sequence number (per leadership).
    next_seq: u64,
    dur: Durability,
    held: VecDeque<(u64, Envelope)>,
    outbox: Vec<Envelope>,
    applied: LogIndex,
    handed: LogIndex,
    reads: VecDeque<PendingRead>,
    ready_reads: Vec<ReadState>,
    read_round_pending: bool,
    heartbeat_pending: bool,
    soft_reported: SoftState,
    ready_persist: Option<Persist>,
    ready_committed: LogRange,
    ready_soft: Option<SoftState>,
    ready_outstanding: bool,
    stats: Stats,
}

impl Node {
    /// Builds a node from `config` and what the host restored. `now_ns` is the host's monotonic clock;
    /// `rng_seed` seeds the election-timeout randomness (a deterministic SplitMix64 stream).
    pub fn new(
        config: NodeConfig,
        restored: Restored,
        now_ns: u64,
        rng_seed: u64,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let snapshot = restored.snapshot.unwrap_or(SnapshotMeta {
            index: 0,
            term: 0,
            membership: config.membership,
        });
        let mut log = Log::new(snapshot, config.max_log_entries, config.max_log_bytes);
        if restored.entries.len() > config.max_log_entries {
            return Err(NodeError::Restore(
                "more restored entries than max_log_entries; compact first",
            ));
        }
        for e in &restored.entries {
            let expected = log.last_index() + 1;
            if e.index != expected {
                return Err(NodeError::RestoreGap {
                    index: e.index,
                    expected,
                });
            }
            if e.term < log.last_term() || e.term > restored.hard_state.term {
                return Err(NodeError::Restore(
                    "entry terms must not decrease nor exceed the hard-state term",
                ));
            }
            if e.kind == EntryKind::Config && Membership::decode(&e.payload).is_err() {
                return Err(NodeError::Restore("a config entry does not decode"));
            }
            log.append(e.term, e.kind, &e.payload);
        }
        let (membership, membership_index) = log.membership_at(log.last_index());
        let id = config.id;
        let commit = restored
            .hard_state
            .commit
            .clamp(snapshot.index, log.last_index());
        let last = log.last_index();
        let mut node = Self {
            id,
            term: restored.hard_state.term,
            vote: restored.hard_state.vote,
            commit,
            role: Role::Follower,
            leader: None,
            membership,
            membership_index,
            progress: Vec::with_capacity(MAX_MEMBERS),
            votes: Vec::with_capacity(MAX_MEMBERS),
            now_ns,
            election_deadline_ns: 0,
            heartbeat_deadline_ns: 0,
            check_quorum_deadline_ns: 0,
            promise_until_ns: now_ns + config.election_timeout_min_ns,
            rng: rng_seed,
            transfer: None,
            lease_revoked: false,
            next_seq: 1,
            dur: Durability {
                next_id: 1,
                acked_id: 0,
                issued: VecDeque::with_capacity(MAX_ISSUED_PERSISTS),
                persist_from: last + 1,
                truncate_from: None,
                snapshot: None,
                stable: last,
                handed: restored.hard_state,
            },
            held: VecDeque::with_capacity(config.max_outbox_messages),
            outbox: Vec::with_capacity(config.max_outbox_messages),
            applied: snapshot.index,
            handed: snapshot.index,
            reads: VecDeque::with_capacity(config.max_pending_reads),
            ready_reads: Vec::with_capacity(config.max_pending_reads),
            read_round_pending: false,
            heartbeat_pending: false,
            soft_reported: SoftState {
                role: Role::Follower,
                term: restored.hard_state.term,
                leader: None,
            },
            ready_persist: None,
            ready_committed: LogRange { first: 1, last: 0 },
            ready_soft: None,
            ready_outstanding: false,
            stats: Stats::default(),
            log,
            cfg: config,
        };
        node.role = node.follower_role();
        node.soft_reported.role = node.role;
        node.reset_election_deadline();
        node.assert_invariants();
        Ok(node)
    }

    // ---- accessors -------------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader this node follows (itself when leading), if known in the current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }
    /// Highest index durable in the local log (acknowledged through [`Node::persisted`]).
    pub fn stable_index(&self) -> LogIndex {
        self.dur.stable
    }
    pub fn log(&self) -> &Log {
        &self.log
    }
    /// The membership in force: the latest config entry in the log, committed or not (Raft §4.1).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            term: self.term,
            leader: self.leader,
        }
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.commit,
        }
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// The leader's view of a follower's replication, if this node leads and `id` is a member.
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        self.progress.iter().find(|p| p.id == id)
    }
    /// Whether a lease read would be served locally right now.
    pub fn lease_valid(&self) -> bool {
        if self.role != Role::Leader
            || self.transfer.is_some()
            || self.lease_revoked
            || !self.committed_in_term()
        {
            return false;
        }
        if crate::mutant!(LeaseWithoutQuorum) {
            return true;
        }
        // Each value is 1 + the send time of the newest append the voter accepted (0 = none).
        let start_plus_one = self.membership.quorum_value(QuorumKind::Lease, |id| {
            if id == self.id {
                self.now_ns + 1
            } else {
                self.progress(id).map_or(0, |p| p.acked_ctx_ns)
            }
        });
        let lease_ns = self.cfg.election_timeout_min_ns - self.cfg.max_clock_drift_ns;
        start_plus_one > 0 && self.now_ns < start_plus_one - 1 + lease_ns
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// Advances the node's clock to `now_ns` (monotonic; an earlier time is ignored) and runs what is
    /// due: elections, heartbeats, CheckQuorum, transfer abort, snapshot retry.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let now = self.now_ns;
        if self.role == Role::Leader {
            if now >= self.heartbeat_deadline_ns {
                self.heartbeat_pending = true;
                self.heartbeat_deadline_ns = now + self.cfg.heartbeat_interval_ns;
                let retry_ns = self.cfg.election_timeout_min_ns;
                for p in &mut self.progress {
                    if let ReplicaState::Snapshot(_) = p.state {
                        if now >= p.snapshot_sent_ns + retry_ns {
                            p.become_probe();
                        }
                    }
                }
            }
            if self.transfer.is_some_and(|t| now >= t.deadline_ns) {
                self.transfer = None;
            }
            if self.cfg.check_quorum && now >= self.check_quorum_deadline_ns {
                self.check_quorum_deadline_ns = now + self.cfg.election_timeout_min_ns;
                let me = self.id;
                let progress = &self.progress;
                let active = self.membership.has_quorum(QuorumKind::Replication, |id| {
                    id == me || progress.iter().any(|p| p.id == id && p.recent_active)
                });
                for p in &mut self.progress {
                    p.recent_active = false;
                }
                if !active {
                    self.become_follower(self.term, None);
                }
            }
        } else if self.membership.is_voter(self.id) && now >= self.election_deadline_ns {
            self.campaign(self.cfg.pre_vote, false);
        }
        self.assert_invariants();
    }

    /// Steps one message received from `from`. A refusal (`Err`) leaves the node unchanged.
    pub fn step(&mut self, from: NodeId, message: InMessage<'_>) -> Result<(), StepError> {
        if from == self.id {
            return Err(StepError::FromSelf { from });
        }
        let term = message.term();
        if term > self.term {
            match &message {
                Message::Vote(v) => {
                    if !v.transfer && self.keeps_promise() {
                        return Ok(());
                    }
                    if !v.pre_vote {
                        // Raft §5.2: only granting a vote resets the election timer. A candidate
                        // with a stale log must not keep postponing the elections of the
                        // up-to-date nodes that deny it (found by the simulator: with Q1 = N and
                        // no PreVote, a stale node's rounds starved every other candidate).
                        let deadline_ns = self.election_deadline_ns;
                        let was_leader = self.role == Role::Leader;
                        self.become_follower(term, None);
                        if !was_leader {
                            self.election_deadline_ns = deadline_ns;
                        }
                    }
                }
                Message::VoteResponse(r) if r.pre_vote && r.granted => {}
                Message::Append(_) | Message::InstallSnapshot(_) | Message::TimeoutNow(_) => {
                    self.become_follower(term, Some(from));
                }
                _ => self.become_follower(term, None),
            }
        } else if term < self.term {
            match &message {
                Message::Append(a) => self.send(
                    from,
                    Message::AppendResponse(AppendResponse {
                        term: self.term,
                        index: a.prev_index,
                        reject: true,
                        hint_index: 0,
                        hint_term: 0,
                        ctx_ns: a.ctx_ns,
                        seq: a.seq,
                    }),
                ),
                Message::InstallSnapshot(s) => self.send(
                    from,
                    Message::AppendResponse(AppendResponse {
                        term: self.term,
                        index: s.meta.index,
                        reject: true,
                        hint_index: 0,
                        hint_term: 0,
                        ctx_ns: s.ctx_ns,
                        seq: s.seq,
                    }),
                ),
                // A stale (pre-)vote request is denied with the current term, so the candidate
                // catches up at once instead of campaigning its way up one term per timeout.
                Message::Vote(v) => self.send(
                    from,
                    Message::VoteResponse(VoteResponse {
                        term: self.term,
                        pre_vote: v.pre_vote,
                        granted: false,
                    }),
                ),
                _ => {}
            }
            return Ok(());
        }
        let result = match message {
            Message::Append(a) => self.on_append(from, a),
            Message::AppendResponse(r) => {
                self.on_append_response(from, r);
                Ok(())
            }
            Message::Vote(v) => {
                self.on_vote(from, v);
                Ok(())
            }
            Message::VoteResponse(r) => {
                self.on_vote_response(from, r);
                Ok(())
            }
            Message::InstallSnapshot(s) => self.on_install_snapshot(from, s),
            Message::TimeoutNow(_) => {
                if self.role != Role::Leader && self.membership.is_voter(self.id) {
                    self.campaign(false, true);
                }
                Ok(())
            }
        };
        self.assert_invariants();
        result
    }

    /// Proposes one command; see [`Node::propose_batch`].
    pub fn propose(&mut self, payload: &[u8]) -> Result<Proposal, ProposeError> {
        self.propose_batch(std::iter::once(payload))
    }

    /// Appends `payloads` as consecutive entries of the current term, all or none. Entries proposed
    /// between two [`Node::ready`] calls travel to followers in one AppendEntries (batching).
    pub fn propose_batch<'p, I>(&mut self, payloads: I) -> Result<Proposal, ProposeError>
    where
        I: IntoIterator<Item = &'p [u8]>,
        I::IntoIter: ExactSizeIterator + Clone,
    {
        let payloads = payloads.into_iter();
        let count = payloads.len();
        if count == 0 {
            return Err(ProposeError::Empty);
        }
        let mut bytes = 0usize;
        for p in payloads.clone() {
            if p.len() > self.cfg.max_entry_bytes {
                return Err(ProposeError::TooLarge {
                    len_bytes: p.len(),
                    max_bytes: self.cfg.max_entry_bytes,
                });
            }
            bytes += p.len();
        }
        self.check_can_propose(count, bytes)?;
        let first = self.log.last_index() + 1;
        for p in payloads {
            self.log.append(self.term, EntryKind::Normal, p);
        }
        let last = self.log.last_index();
        self.maybe_commit();
        self.assert_invariants();
        Ok(Proposal {
            term: self.term,
            first,
            last,
        })
    }

    /// Starts a joint-consensus change to `target` (simple voter set and learners). The leader appends
    /// C_old,new now and C_new automatically once C_old,new commits; one change at a time.
    pub fn propose_conf_change(&mut self, target: Membership) -> Result<Proposal, ProposeError> {
        // C_old,new and C_new, each one encoded membership (at most 512 bytes).
        self.check_can_propose(2, 2 * 512)?;
        if self.membership.is_joint() || self.membership_index > self.commit {
            return Err(ProposeError::ChangeInProgress {
                index: self.membership_index,
            });
        }
        let joint = self.membership.joint_with(&target)?;
        let index = self.append_config(joint);
        self.assert_invariants();
        Ok(Proposal {
            term: self.term,
            first: index,
            last: index,
        })
    }

    /// Requests a read tagged `id` (the host's correlation). The outcome appears in a later (or this
    /// iteration's) [`Ready::reads`] as `id` plus the index the state machine must have applied —
    /// the core reports it only once `applied >= index`, so the host can serve it at once.
    pub fn read(&mut self, id: u64, mode: ReadMode) -> Result<(), ReadError> {
        let pending = self.reads.len() + self.ready_reads.len();
        if pending >= self.cfg.max_pending_reads {
            return Err(ReadError::Busy {
                pending,
                limit: self.cfg.max_pending_reads,
            });
        }
        if mode == ReadMode::Stale {
            self.ready_reads.push(ReadState {
                id,
                outcome: Ok(self.applied),
            });
            return Ok(());
        }
        if self.role != Role::Leader {
            return Err(match self.leader {
                Some(leader) => ReadError::NotLeader { leader },
                None => ReadError::NoLeader,
            });
        }
        if mode == ReadMode::Lease && self.lease_valid() {
            self.reads.push_back(PendingRead {
                id,
                index: Some(self.commit),
                round_seq: 0,
            });
            return Ok(());
        }
        if mode == ReadMode::Lease {
            self.stats.lease_fallbacks += 1;
        }
        self.reads.push_back(PendingRead {
            id,
            index: self.committed_in_term().then_some(self.commit),
            round_seq: self.next_seq,
        });
        self.read_round_pending = true;
        Ok(())
    }

    /// Hands leadership to voter `to` (Raft §3.10): proposals are refused meanwhile; the target is
    /// caught up, then told to campaign at once. Aborted after an election timeout.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(match self.leader {
                Some(leader) => TransferError::NotLeader { leader },
                None => TransferError::NoLeader,
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !self.membership.incoming().voters().contains(to) {
            return Err(TransferError::NotVoter(to));
        }
        if let Some(t) = self.transfer {
            return if t.to == to {
                Ok(())
            } else {
                Err(TransferError::InProgress { to: t.to })
            };
        }
        self.transfer = Some(Transfer {
            to,
            deadline_ns: self.now_ns + self.cfg.election_timeout_min_ns,
        });
        if self
            .progress(to)
            .is_some_and(|p| p.matched == self.log.last_index())
        {
            self.send_timeout_now(to);
        }
        Ok(())
    }

    /// The host learned that `id` may have lost its log — a node of a `memory`-durability cluster
    /// reconnected, possibly after a restart that emptied it (storage keeps only term and vote). The
    /// leader forgets what `id` acknowledged and probes it from the end of the log, so the
    /// follower's rejection walks `next` back to what it really holds; without this, rejections at
    /// or below the remembered `matched` are treated as stale and the follower never catches up.
    ///
    /// Safe at any time: `matched` only feeds commit decisions, and the commit index never goes
    /// back, so lowering it can only delay commits. Lease and ReadIndex evidence is kept. A no-op
    /// unless this node leads and `id` is a member.
    pub fn reset_progress(&mut self, id: NodeId) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let window = self.cfg.max_inflight_appends;
        if let Some(p) = self.progress.iter_mut().find(|p| p.id == id) {
            let kept = *p;
            *p = Progress::new(id, last, window);
            p.recent_active = kept.recent_active;
            p.acked_ctx_ns = kept.acked_ctx_ns;
            p.acked_seq = kept.acked_seq;
        }
        self.assert_invariants();
    }

    /// The host made the write of the [`Persist`] numbered `id` (and every earlier one) durable.
    /// Releases the messages that waited for it and lets the leader count its own log.
    pub fn persisted(&mut self, id: PersistId) {
        let id = id.0;
        assert!(
            id < self.dur.next_id,
            "persisted({id}) for a write never issued (next {})",
            self.dur.next_id
        );
        if id <= self.dur.acked_id {
            return;
        }
        while let Some(w) = self.dur.issued.front().copied() {
            if w.id > id {
                break;
            }
            self.dur.issued.pop_front();
            if let Some((index, term)) = w.last {
                if self.log.term(index) == Some(term) {
                    self.dur.stable = self.dur.stable.max(index);
                }
            }
        }
        self.dur.acked_id = id;
        while self.held.front().is_some_and(|(need, _)| *need <= id) {
            let (_, env) = self.held.pop_front().expect("front exists");
            self.push_outbox(env);
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
        self.assert_invariants();
    }

    /// The host's state machine has applied every entry up to `index` (handed out in a `Ready`).
    pub fn applied(&mut self, index: LogIndex) {
        assert!(
            index <= self.handed,
            "applied({index}) beyond what was handed to apply ({})",
            self.handed
        );
        self.applied = self.applied.max(index);
    }

    /// The snapshot meta for a snapshot of the state machine at applied `index`.
    pub fn snapshot_meta(&self, index: LogIndex) -> Result<SnapshotMeta, CompactError> {
        if index > self.applied {
            return Err(CompactError::NotApplied {
                index,
                applied: self.applied,
            });
        }
        let snapshot = self.log.snapshot().index;
        if index < snapshot {
            return Err(CompactError::Compacted { index, snapshot });
        }
        let term = self
            .log
            .term(index)
            .expect("snapshot index <= index <= applied <= last index");
        let (membership, _) = self.log.membership_at(index);
        Ok(SnapshotMeta {
            index,
            term,
            membership,
        })
    }

    /// The host took a snapshot at applied `index`: drop the entries it covers from memory. Followers
    /// that need them later get the snapshot instead.
    pub fn compact(&mut self, index: LogIndex) -> Result<SnapshotMeta, CompactError> {
        let meta = self.snapshot_meta(index)?;
        self.log.compact(meta);
        Ok(meta)
    }

    // ---- output ----------------------------------------------------------------------------

    /// Whether [`Node::ready`] has anything for the host.
    pub fn has_ready(&self) -> bool {
        !self.outbox.is_empty()
            || !self.ready_reads.is_empty()
            || self.persist_owed()
            || self.handed < self.apply_limit()
            || self.soft_state() != self.soft_reported
            || self.heartbeat_pending
            || self.read_round_pending
            || self.front_read_releasable()
            || (self.role == Role::Leader
                && self
                    .progress
                    .iter()
                    .any(|p| p.can_send() && p.next <= self.log.last_index()))
    }

    /// Collects everything due for the host. The host then, in this order: sends
    /// [`Ready::messages`]; persists [`Ready::persist`] and later calls [`Node::persisted`]; applies
    /// [`Ready::committed`] and later calls [`Node::applied`]; answers [`Ready::reads`]; finally calls
    /// [`Node::advance`]. The `Ready` borrows the node, so no input can slip in between.
    pub fn ready(&mut self) -> Ready<'_> {
        assert!(
            !self.ready_outstanding,
            "ready() called twice without advance()"
        );
        self.ready_outstanding = true;
        if self.role == Role::Leader {
            if self.heartbeat_pending || self.read_round_pending {
                self.broadcast_heartbeat();
            }
            self.ensure_term_entry();
            self.flush_appends();
        }
        self.release_reads();
        self.ready_persist = self.take_persist();
        let limit = self
            .apply_limit()
            .min(self.handed + self.cfg.max_apply_batch as u64);
        self.ready_committed = LogRange {
            first: self.handed + 1,
            last: limit.max(self.handed),
        };
        self.handed = self.handed.max(limit);
        let soft = self.soft_state();
        self.ready_soft = (soft != self.soft_reported).then_some(soft);
        self.soft_reported = soft;
        Ready::new(self)
    }

    /// The host finished with the last [`Ready`]: its buffers are cleared for reuse.
    pub fn advance(&mut self) {
        assert!(self.ready_outstanding, "advance() without ready()");
        self.ready_outstanding = false;
        self.outbox.clear();
        self.ready_reads.clear();
        self.ready_persist = None;
        self.ready_soft = None;
        self.ready_committed = LogRange { first: 1, last: 0 };
    }

    pub(crate) fn ready_parts(
        &self,
    ) -> (
        &[Envelope],
        Option<&Persist>,
        LogRange,
        &[ReadState],
        Option<SoftState>,
    ) {
        (
            &self.outbox,
            self.ready_persist.as_ref(),
            self.ready_committed,
            &self.ready_reads,
            self.ready_soft,
        )
    }

    // ---- roles -----------------------------------------------------------------------------

    fn follower_role(&self) -> Role {
        if self.membership.is_voter(self.id) {
            Role::Follower
        } else {
            Role::Learner
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(
            term >= self.term,
            "term went backwards: {} -> {term}",
            self.term
        );
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        if self.role == Role::Leader {
            self.fail_reads();
        }
        self.role = self.follower_role();
        self.leader = leader;
        self.votes.clear();
        self.transfer = None;
        self.lease_revoked = false;
        self.heartbeat_pending = false;
        self.read_round_pending = false;
        self.progress.clear();
        self.reset_election_deadline();
    }

    /// Starts a PreVote round (`pre_vote`) or a real election; `transfer` marks one ordered by the
    /// leader through TimeoutNow, which voters grant despite their promise to that leader.
    fn campaign(&mut self, pre_vote: bool, transfer: bool) {
        assert!(self.role != Role::Leader, "a leader does not campaign");
        assert!(
            self.membership.is_voter(self.id),
            "a non-voter does not campaign"
        );
        self.reset_election_deadline();
        self.votes.clear();
        self.votes.push((self.id, true));
        self.leader = None;
        if pre_vote {
            self.role = Role::PreCandidate;
        } else {
            self.role = Role::Candidate;
            self.term += 1;
            self.vote = Some(self.id);
        }
        let request = VoteRequest {
            term: if pre_vote { self.term + 1 } else { self.term },
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote,
            transfer,
        };
        let membership = self.membership;
        for to in membership.members() {
            if to == self.id || !self.membership.is_voter(to) {
                continue;
            }
            let env = Envelope {
                to,
                message: Message::Vote(request),
            };
            if pre_vote {
                self.push_outbox(env);
            } else {
                // The self-vote and the new term must be durable before anyone counts on them.
                self.hold_until_persisted(env);
            }
        }
        self.tally();
    }

    fn tally(&mut self) {
        let votes = &self.votes;
        let granted = |id| votes.iter().any(|&(v, g)| v == id && g);
        let denied = |id| votes.iter().any(|&(v, g)| v == id && !g);
        let won = self.membership.has_quorum(QuorumKind::Election, granted);
        let lost = self
            .membership
            .quorum_impossible(QuorumKind::Election, denied);
        match (self.role, won, lost) {
            (Role::PreCandidate, true, _) => self.campaign(false, false),
            (Role::Candidate, true, _) => self.become_leader(),
            (Role::PreCandidate | Role::Candidate, false, true) => {
                self.become_follower(self.term, None)
            }
            _ => {}
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(
            self.vote,
            Some(self.id),
            "a leader voted for itself in its term"
        );
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.transfer = None;
        self.lease_revoked = false;
        self.next_seq = 1;
        self.sync_progress();
        self.heartbeat_deadline_ns = self.now_ns;
        self.check_quorum_deadline_ns = self.now_ns + self.cfg.election_timeout_min_ns;
        self.ensure_term_entry();
    }

    /// A new leader appends a no-op so an entry of its own term can commit (and with it every earlier
    /// entry, Raft §5.4.2); retried from `ready` if the log was full.
    fn ensure_term_entry(&mut self) {
        if self.log.last_term() != self.term && !self.log.is_full() {
            self.log.append(self.term, EntryKind::Noop, &[]);
            self.maybe_commit();
        }
    }

    /// Makes the leader's progress list match the membership: one per member other than itself.
    fn sync_progress(&mut self) {
        let last = self.log.last_index();
        let window = self.cfg.max_inflight_appends;
        let membership = self.membership;
        self.progress.retain(|p| membership.is_member(p.id));
        for id in membership.members() {
            if id != self.id && !self.progress.iter().any(|p| p.id == id) {
                self.progress.push(Progress::new(id, last, window));
            }
        }
        debug_assert!(self.progress.len() <= MAX_MEMBERS);
    }

    fn reset_election_deadline(&mut self) {
        let span = self.cfg.election_timeout_max_ns - self.cfg.election_timeout_min_ns;
        let jitter = self.next_random() % span;
        self.election_deadline_ns = self.now_ns + self.cfg.election_timeout_min_ns + jitter;
    }

    /// SplitMix64: a tiny deterministic stream from the injected seed.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Whether this node must ignore a non-transfer candidate: it leads, or it promised the leader it
    /// last heard from not to elect another before `promise_until_ns` (the basis of leader leases).
    fn keeps_promise(&self) -> bool {
        self.role == Role::Leader || self.now_ns < self.promise_until_ns
    }

    fn heard_from_leader(&mut self, leader: NodeId) {
        if self.role != self.follower_role() {
            self.become_follower(self.term, Some(leader));
        }
        self.leader = Some(leader);
        self.promise_until_ns = self.now_ns + self.cfg.election_timeout_min_ns;
        self.reset_election_deadline();
    }

    // ---- votes -----------------------------------------------------------------------------

    /// Grants depend only on term, earlier vote and log, never on this node's own view of whether it
    /// votes: a learner promoted by a config entry it has not received yet must be able to vote (as
    /// in etcd). Learners never count because candidates tally only the voters of their own config.
    fn on_vote(&mut self, from: NodeId, v: VoteRequest) {
        let up_to_date =
            (v.last_term, v.last_index) >= (self.log.last_term(), self.log.last_index());
        if v.pre_vote {
            let granted = v.term > self.term && up_to_date;
            let term = if granted { v.term } else { self.term };
            self.send(
                from,
                Message::VoteResponse(VoteResponse {
                    term,
                    pre_vote: true,
                    granted,
                }),
            );
            return;
        }
        debug_assert_eq!(v.term, self.term);
        let free = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let can_vote = free || (crate::mutant!(DoubleVote) && self.vote.is_some());
        let granted = self.role != Role::Leader && can_vote && up_to_date;
        let response = Envelope {
            to: from,
            message: Message::VoteResponse(VoteResponse {
                term: self.term,
                pre_vote: false,
                granted,
            }),
        };
        if granted {
            self.vote = Some(from);
            self.reset_election_deadline();
            self.hold_until_persisted(response);
        } else {
            self.push_outbox(response);
        }
    }

    fn on_vote_response(&mut self, from: NodeId, r: VoteResponse) {
        let counts = match self.role {
            Role::PreCandidate => r.pre_vote && (!r.granted || r.term == self.term + 1),
            Role::Candidate => !r.pre_vote && r.term == self.term,
            _ => false,
        };
        if !counts || self.votes.iter().any(|&(v, _)| v == from) || !self.membership.is_voter(from)
        {
            return;
        }
        self.votes.push((from, r.granted));
        self.tally();
    }

    // ---- replication: follower side --------------------------------------------------------

    fn on_append(&mut self, from: NodeId, a: Append<EntriesView<'_>>) -> Result<(), StepError> {
        if self.role == Role::Leader {
            return Err(StepError::TwoLeaders {
                from,
                term: self.term,
            });
        }
        let respond = |index, reject, hint_index, hint_term| AppendResponse {
            term: a.term,
            index,
            reject,
            hint_index,
            hint_term,
            ctx_ns: a.ctx_ns,
            seq: a.seq,
        };
        if a.prev_index < self.commit {
            // Everything up to the commit index matches already; entries past it may still be new.
            self.heard_from_leader(from);
            let ack = respond(self.commit, false, 0, 0);
            self.ack_after_persist(from, ack);
            return Ok(());
        }
        if self.log.term(a.prev_index) != Some(a.prev_term) {
            self.heard_from_leader(from);
            let hint = self
                .log
                .last_index_with_term_at_most(a.prev_index.min(self.log.last_index()), a.prev_term);
            let hint_term = self.log.term(hint).unwrap_or(0);
            self.send(
                from,
                Message::AppendResponse(respond(a.prev_index, true, hint, hint_term)),
            );
            return Ok(());
        }
        // prev_index >= commit here, so a conflict can only lie past the commit index.
        let mut conflict = None;
        for (i, e) in a.entries.iter().enumerate() {
            let index = a.prev_index + 1 + i as u64;
            match self.log.term(index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    conflict = Some(index);
                    break;
                }
                None => break,
            }
        }
        self.heard_from_leader(from);
        if let Some(index) = conflict {
            self.truncate_from(index);
        }
        let mut matched = a.prev_index;
        for (i, e) in a.entries.iter().enumerate() {
            let index = a.prev_index + 1 + i as u64;
            if index <= self.log.last_index() {
                matched = index;
                continue;
            }
            if self.log.is_full() {
                self.stats.appends_dropped_log_full += 1;
                break;
            }
            self.log.append(e.term, e.kind, e.payload);
            if e.kind == EntryKind::Config {
                self.adopt_config_entry(index);
            }
            matched = index;
        }
        let commit = a.commit.min(matched);
        if commit > self.commit {
            self.commit_to(commit);
        }
        self.ack_after_persist(from, respond(matched, false, 0, 0));
        Ok(())
    }

    fn on_install_snapshot(&mut self, from: NodeId, s: InstallSnapshot) -> Result<(), StepError> {
        if self.role == Role::Leader {
            return Err(StepError::TwoLeaders {
                from,
                term: self.term,
            });
        }
        self.heard_from_leader(from);
        let meta = s.meta;
        let index = if meta.index <= self.commit {
            self.commit
        } else if self.log.term(meta.index) == Some(meta.term) {
            self.commit_to(meta.index);
            meta.index
        } else {
            self.log.reset(meta);
            self.commit = meta.index;
            self.membership = meta.membership;
            self.membership_index = meta.index;
            self.role = self.follower_role();
            self.dur.persist_from = meta.index + 1;
            self.dur.truncate_from = None;
            self.dur.snapshot = Some(meta);
            self.dur.stable = self.dur.stable.min(meta.index);
            meta.index
        };
        let ack = AppendResponse {
            term: s.term,
            index,
            reject: false,
            hint_index: 0,
            hint_term: 0,
            ctx_ns: s.ctx_ns,
            seq: s.seq,
        };
        self.ack_after_persist(from, ack);
        Ok(())
    }

    fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.commit,
            "truncating committed entry {index} (commit {})",
            self.commit
        );
        self.log.truncate_from(index);
        if index < self.dur.persist_from {
            self.dur.truncate_from = Some(self.dur.truncate_from.map_or(index, |t| t.min(index)));
            self.dur.persist_from = index;
        }
        self.dur.stable = self.dur.stable.min(index - 1);
        if self.membership_index >= index {
            let (m, at) = self.log.membership_at(index - 1);
            self.membership = m;
            self.membership_index = at;
            self.role = if self.role == Role::Leader {
                Role::Leader
            } else {
                self.follower_role()
            };
        }
    }

    fn adopt_config_entry(&mut self, index: LogIndex) {
        let entry = self
            .log
            .entry(index)
            .expect("config entry was just appended");
        let (m, _) =
            Membership::decode(&entry.payload).expect("config entries are validated by the codec");
        self.membership = m;
        self.membership_index = index;
        if self.role == Role::Leader {
            self.sync_progress();
        } else if matches!(self.role, Role::Follower | Role::Learner) {
            self.role = self.follower_role();
        } else if !self.membership.is_voter(self.id) {
            self.become_follower(self.term, None);
        }
    }

    fn ack_after_persist(&mut self, to: NodeId, ack: AppendResponse) {
        self.hold_until_persisted(Envelope {
            to,
            message: Message::AppendResponse(ack),
        });
    }

    // ---- replication: leader side ----------------------------------------------------------

    fn on_append_response(&mut self, from: NodeId, r: AppendResponse) {
        if self.role != Role::Leader {
            return;
        }
        let Some(slot) = self.progress.iter().position(|p| p.id == from) else {
            return;
        };
        let last = self.log.last_index();
        let probe_from = if r.reject {
            self.log
                .last_index_with_term_at_most(r.hint_index, r.hint_term)
        } else {
            0
        };
        let p = &mut self.progress[slot];
        p.recent_active = true;
        p.acked_ctx_ns = p.acked_ctx_ns.max(r.ctx_ns.saturating_add(1));
        p.acked_seq = p.acked_seq.max(r.seq);
        if r.reject {
            p.reject(r.index, probe_from, r.seq);
            return;
        }
        if r.index > last {
            return; // not from this term's log: ignore rather than trust
        }
        if p.ack(r.index, r.seq) {
            match p.state {
                ReplicaState::Probe => p.become_replicate(),
                ReplicaState::Snapshot(index) if p.matched >= index => p.become_replicate(),
                _ => {}
            }
            let caught_up = p.matched == last;
            self.maybe_commit();
            if caught_up && self.transfer.is_some_and(|t| t.to == from) {
                self.send_timeout_now(from);
            }
        } else {
            p.heartbeat_answered();
        }
    }

    fn send_timeout_now(&mut self, to: NodeId) {
        self.lease_revoked = true;
        self.send(to, Message::TimeoutNow(TimeoutNow { term: self.term }));
    }

    /// Sends each follower what its flow control allows: entries from `next`, or the snapshot when
    /// `next` is compacted away.
    fn flush_appends(&mut self) {
        for slot in 0..self.progress.len() {
            for _ in 0..=self.cfg.max_inflight_appends {
                let p = self.progress[slot];
                if !p.can_send() || p.next > self.log.last_index() {
                    break;
                }
                if self.log.term(p.next - 1).is_none() {
                    self.send_snapshot(slot);
                    break;
                }
                let first = p.next;
                let mut last = first;
                let mut bytes = self.log.entry(first).map_or(0, |e| e.payload.len());
                while last < self.log.last_index()
                    && last - first + 1 < self.cfg.max_batch_entries as u64
                {
                    let len = self.log.entry(last + 1).map_or(0, |e| e.payload.len());
                    if bytes + len > self.cfg.max_batch_bytes {
                        break;
                    }
                    bytes += len;
                    last += 1;
                }
                self.send_append(slot, LogRange { first, last });
                if self.progress[slot].state == ReplicaState::Probe {
                    break;
                }
            }
        }
    }

    fn send_append(&mut self, slot: usize, entries: LogRange) {
        let prev_index = entries.first - 1;
        let prev_term = self
            .log
            .term(prev_index)
            .expect("caller checked prev is in the log");
        let seq = self.next_seq;
        self.next_seq += 1;
        let p = &mut self.progress[slot];
        p.sent(entries.last, !entries.is_empty());
        let to = p.id;
        let append = Append {
            term: self.term,
            prev_index,
            prev_term,
            commit: self.commit,
            ctx_ns: self.now_ns,
            seq,
            entries,
        };
        self.send(to, Message::Append(append));
    }

    fn send_snapshot(&mut self, slot: usize) {
        let meta = *self.log.snapshot();
        let seq = self.next_seq;
        self.next_seq += 1;
        let p = &mut self.progress[slot];
        p.become_snapshot(meta.index, self.now_ns);
        let to = p.id;
        let message = Message::InstallSnapshot(InstallSnapshot {
            term: self.term,
            meta,
            ctx_ns: self.now_ns,
            seq,
        });
        self.send(to, message);
    }

    /// An empty append to every follower at its `next - 1`: keeps followers' promises fresh, collects
    /// lease and ReadIndex evidence, and exposes a lost append as a rejection.
    fn broadcast_heartbeat(&mut self) {
        self.heartbeat_pending = false;
        self.read_round_pending = false;
        for slot in 0..self.progress.len() {
            let p = self.progress[slot];
            if matches!(p.state, ReplicaState::Snapshot(_)) {
                continue;
            }
            if self.log.term(p.next - 1).is_none() {
                // The log was compacted past what this follower needs while its appends were out
                // (lost to a crash or a partition): its window or probe is blocked and no append
                // can name a compacted entry, so the snapshot is the only message that can reach
                // it. Skipping it here stalled the follower forever (found by the simulator).
                self.send_snapshot(slot);
                continue;
            }
            self.send_append(
                slot,
                LogRange {
                    first: p.next,
                    last: p.next - 1,
                },
            );
        }
    }

    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = if crate::mutant!(AckBeforePersist) {
            self.log.last_index()
        } else {
            self.dur.stable
        };
        let me = self.id;
        let progress = &self.progress;
        let index = self.membership.quorum_value(QuorumKind::Replication, |id| {
            if id == me {
                own
            } else {
                progress
                    .iter()
                    .find(|p| p.id == id)
                    .map_or(0, |p| p.matched)
            }
        });
        if index <= self.commit {
            return;
        }
        // Raft §5.4.2: only an entry of the current term commits by counting replicas.
        if self.log.term(index) == Some(self.term) || crate::mutant!(CommitPreviousTerm) {
            self.commit_to(index);
        }
    }

    fn commit_to(&mut self, index: LogIndex) {
        assert!(
            index > self.commit,
            "commit never goes backwards ({} -> {index})",
            self.commit
        );
        assert!(
            index <= self.log.last_index(),
            "commit {index} past the log end {}",
            self.log.last_index()
        );
        self.commit = index;
        if self.role == Role::Leader && self.membership_index <= index {
            if self.membership.is_joint() {
                let next = self.membership.leave_joint();
                if !self.log.is_full() {
                    self.append_config(next);
                }
            } else if !self.membership.is_voter(self.id) {
                self.become_follower(self.term, None);
            }
        }
    }

    fn append_config(&mut self, membership: Membership) -> LogIndex {
        assert_eq!(self.role, Role::Leader);
        let mut payload = [0u8; 512];
        let len = membership
            .encode_into(&mut payload)
            .expect("a membership of at most MAX_MEMBERS nodes encodes in 512 bytes");
        let index = self
            .log
            .append(self.term, EntryKind::Config, &payload[..len]);
        self.adopt_config_entry(index);
        self.maybe_commit();
        index
    }

    fn check_can_propose(&self, count: usize, bytes: usize) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(match self.leader {
                Some(leader) => ProposeError::NotLeader { leader },
                None => ProposeError::NoLeader,
            });
        }
        if let Some(t) = self.transfer {
            return Err(ProposeError::TransferInProgress { to: t.to });
        }
        let uncommitted = self.log.last_index() - self.commit;
        if uncommitted + count as u64 > self.cfg.max_uncommitted_entries as u64 {
            return Err(ProposeError::Busy {
                uncommitted,
                limit: self.cfg.max_uncommitted_entries,
            });
        }
        if !self.log.has_room(count, bytes) {
            return Err(ProposeError::LogFull {
                len: self.log.len(),
                limit: self.cfg.max_log_entries,
                bytes: self.log.payload_bytes(),
                limit_bytes: self.cfg.max_log_bytes,
            });
        }
        Ok(())
    }

    fn committed_in_term(&self) -> bool {
        self.log.term(self.commit) == Some(self.term)
    }

    // ---- reads -----------------------------------------------------------------------------

    fn release_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let confirmed_seq = self.read_confirmed_seq();
        let commit = self.committed_in_term().then_some(self.commit);
        for r in self.reads.iter_mut() {
            if r.index.is_none() {
                r.index = commit;
            }
        }
        while let Some(r) = self.reads.front().copied() {
            let confirmed = r.round_seq == 0 || confirmed_seq >= r.round_seq;
            match r.index {
                Some(index) if confirmed && index <= self.applied => {
                    self.reads.pop_front();
                    self.ready_reads.push(ReadState {
                        id: r.id,
                        outcome: Ok(index),
                    });
                }
                _ => break,
            }
        }
    }

    /// Whether `release_reads` would release the oldest pending read now: its index is known and
    /// applied, and its leadership round (if any) is confirmed by a lease quorum. Without the
    /// confirmation check `has_ready` stayed true during every ReadIndex wait while `ready` had
    /// nothing to hand out, and a host polling `has_ready` spun.
    fn front_read_releasable(&self) -> bool {
        let Some(r) = self.reads.front() else {
            return false;
        };
        let index_ready = self.role == Role::Leader
            && r.index
                .or_else(|| self.committed_in_term().then_some(self.commit))
                .is_some_and(|i| i <= self.applied);
        index_ready && (r.round_seq == 0 || self.read_confirmed_seq() >= r.round_seq)
    }

    /// The highest append sequence number a lease quorum has acknowledged in this term.
    fn read_confirmed_seq(&self) -> u64 {
        let me = self.id;
        let progress = &self.progress;
        self.membership.quorum_value(QuorumKind::Lease, |id| {
            if id == me {
                u64::MAX
            } else {
                progress
                    .iter()
                    .find(|p| p.id == id)
                    .map_or(0, |p| p.acked_seq)
            }
        })
    }

    fn fail_reads(&mut self) {
        while let Some(r) = self.reads.pop_front() {
            self.ready_reads.push(ReadState {
                id: r.id,
                outcome: Err(ReadError::LeadershipLost { term: self.term }),
            });
        }
    }

    // ---- persistence and output ------------------------------------------------------------

    fn persist_owed(&self) -> bool {
        self.dur.persist_from <= self.log.last_index()
            || self.dur.truncate_from.is_some()
            || self.dur.snapshot.is_some()
            || self.hard_state() != self.dur.handed
    }

    /// Whether state that acknowledgements vouch for (log, snapshot, term, vote) awaits persistence.
    fn sync_owed(&self) -> bool {
        self.dur.persist_from <= self.log.last_index()
            || self.dur.truncate_from.is_some()
            || self.dur.snapshot.is_some()
            || self.term != self.dur.handed.term
            || self.vote != self.dur.handed.vote
    }

    fn apply_limit(&self) -> LogIndex {
        self.commit.min(self.dur.stable).max(self.handed)
    }

    fn take_persist(&mut self) -> Option<Persist> {
        if !self.persist_owed() || self.dur.issued.len() >= MAX_ISSUED_PERSISTS {
            return None;
        }
        let id = self.dur.next_id;
        self.dur.next_id += 1;
        let hard_state = self.hard_state();
        let term_or_vote_changed =
            hard_state.term != self.dur.handed.term || hard_state.vote != self.dur.handed.vote;
        let entries = LogRange {
            first: self.dur.persist_from,
            last: self.log.last_index(),
        };
        let snapshot = self.dur.snapshot.take();
        let truncate_from = self.dur.truncate_from.take();
        if let Some(meta) = snapshot {
            self.handed = self.handed.max(meta.index);
            self.applied = self.applied.max(meta.index);
        }
        let last = if !entries.is_empty() {
            Some((entries.last, self.log.last_term()))
        } else {
            snapshot.map(|m| (m.index, m.term))
        };
        self.dur.issued.push_back(IssuedPersist { id, last });
        self.dur.persist_from = self.log.last_index() + 1;
        let must_sync = term_or_vote_changed
            || !entries.is_empty()
            || truncate_from.is_some()
            || snapshot.is_some();
        let hard_state = (hard_state != self.dur.handed).then_some(hard_state);
        self.dur.handed = self.hard_state();
        Some(Persist {
            id: PersistId(id),
            snapshot,
            truncate_from,
            entries,
            hard_state,
            must_sync,
        })
    }

    /// Queues `env` to leave only after everything this node has yet to persist is durable.
    fn hold_until_persisted(&mut self, env: Envelope) {
        if crate::mutant!(AckBeforePersist) {
            self.push_outbox(env);
            return;
        }
        let need = if self.sync_owed() {
            self.dur.next_id
        } else {
            self.dur.next_id - 1
        };
        if need <= self.dur.acked_id {
            self.push_outbox(env);
        } else if self.held.len() < self.cfg.max_outbox_messages {
            self.held.push_back((need, env));
        } else {
            self.stats.dropped_messages += 1;
        }
    }

    fn send(&mut self, to: NodeId, message: OutMessage) {
        self.push_outbox(Envelope { to, message });
    }

    fn push_outbox(&mut self, env: Envelope) {
        if self.outbox.len() < self.cfg.max_outbox_messages {
            self.outbox.push(env);
        } else {
            self.stats.dropped_messages += 1;
        }
    }

    /// Invariants that hold between any two inputs (TigerBeetle style: assertions that run).
    fn assert_invariants(&self) {
        assert!(
            self.commit <= self.log.last_index(),
            "commit {} past last index {}",
            self.commit,
            self.log.last_index()
        );
        assert!(
            self.log.snapshot().index <= self.commit,
            "snapshot past commit"
        );
        assert!(
            self.applied <= self.handed
                && self.handed <= self.commit.max(self.log.snapshot().index)
        );
        assert!(
            self.dur.stable <= self.log.last_index(),
            "stable past the log end"
        );
        match self.role {
            Role::Leader => {
                assert_eq!(
                    self.leader,
                    Some(self.id),
                    "a leader knows itself as leader"
                );
                assert_eq!(self.vote, Some(self.id), "a leader voted for itself");
            }
            Role::Candidate => assert_eq!(self.vote, Some(self.id), "a candidate voted for itself"),
            Role::Learner => assert!(!self.membership.is_voter(self.id), "a learner is no voter"),
            Role::Follower | Role::PreCandidate => {
                assert!(
                    self.membership.is_voter(self.id),
                    "followers and pre-candidates vote"
                )
            }
        }
        assert!(
            self.log.last_term() <= self.term,
            "log holds an entry from a future term"
        );
    }
}
