//! [`Store`]: the deterministic state machine that applies committed log entries.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::barrier::{Arrival, Barriers, Member};
use super::codec;
use super::command::{
    Acquire, BarrierStatus, ClientId, Command, Compare, CompareOp, CompareTarget, DeleteRangeReply,
    DeleteRangeRequest, Event, KeyRange, LeaseId, LeaseInfo, OpReply, PutReply, PutRequest,
    ReadRequest, Reply, Request, Response, RevokeReason, SessionHeader, TxnOp, TxnReply,
    TxnRequest, NO_LEASE, NO_SESSION,
};
use super::counter::Counters;
use super::error::{BreakReason, Compacted, StoreError};
use super::kv::Kv;
use super::lease::{Lease, Leases};
use super::limits::{cost, StoreLimits};
use super::output::{Addressed, ApplyOutput, Notification};
use super::queue::{Queues, Waiter};
use super::session::{Admission, Cached, Sessions};

/// Which of the two queue-based primitives an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueKind {
    Lock,
    Election,
}

impl QueueKind {
    fn reply(self, acquire: Acquire) -> Reply {
        match self {
            QueueKind::Lock => Reply::Lock(acquire),
            QueueKind::Election => Reply::Campaign(acquire),
        }
    }
}

/// The replicated state machine: revisioned KV, leases, locks, elections, barriers, counters and
/// client sessions.
///
/// Pure and deterministic: no clock, no randomness, no I/O, ordered maps only. Applying the same
/// entries in the same order gives byte-identical state ([`Store::snapshot`]) and identical outputs
/// on every replica.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) limits: StoreLimits,
    pub(super) applied_index: u64,
    pub(super) kv: Kv,
    pub(super) leases: Leases,
    pub(super) locks: Queues,
    pub(super) elections: Queues,
    pub(super) barriers: Barriers,
    pub(super) counters: Counters,
    pub(super) sessions: Sessions,
    /// Waiting requests completed by the entry being applied; answered once its revision is final.
    completions: Vec<(ClientId, u64, Result<Reply, StoreError>)>,
}

impl Store {
    /// An empty store at revision 1 that has applied nothing. `limits` must pass
    /// [`StoreLimits::validate`] (configuration loading checks it and reports a typed error).
    pub fn new(limits: StoreLimits) -> Self {
        if let Err(error) = limits.validate() {
            panic!("Store::new needs validated limits: {error}");
        }
        Self::from_parts(
            limits,
            0,
            Kv::new(),
            Leases::default(),
            Queues::default(),
            Queues::default(),
            Barriers::default(),
            Counters::default(),
            Sessions::default(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn from_parts(
        limits: StoreLimits,
        applied_index: u64,
        kv: Kv,
        leases: Leases,
        locks: Queues,
        elections: Queues,
        barriers: Barriers,
        counters: Counters,
        sessions: Sessions,
    ) -> Self {
        Self {
            limits,
            applied_index,
            kv,
            leases,
            locks,
            elections,
            barriers,
            counters,
            sessions,
            completions: Vec::new(),
        }
    }

    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// The index of the last entry applied (0 before the first).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The current revision (1 in an empty store; each command that writes a key or grants a
    /// fencing token adds one).
    pub fn revision(&self) -> u64 {
        self.kv.revision()
    }

    /// Revisions before this one are forgotten (0: nothing compacted yet).
    pub fn compact_revision(&self) -> u64 {
        self.kv.compact_revision()
    }

    /// Bytes charged against [`StoreLimits::max_store_bytes`] (see [`super::limits::cost`]).
    pub fn used_bytes(&self) -> u64 {
        self.kv.bytes()
            + self.leases.len() as u64 * cost::LEASE
            + self.locks.bytes()
            + self.elections.bytes()
            + self.barriers.bytes()
            + self.counters.bytes()
    }

    /// Every live lease with its TTL, by id: what a new leader needs to start deadlines.
    pub fn leases(&self) -> impl Iterator<Item = LeaseInfo> + '_ {
        self.leases.infos()
    }

    /// The auto-compaction policy "keep the last `keep_revisions` revisions": the revision to
    /// propose in a sessionless [`Command::Compact`], if compaction would free anything.
    pub fn compaction_target(&self, keep_revisions: u64) -> Option<u64> {
        let target = self.revision().saturating_sub(keep_revisions);
        (target > self.compact_revision()).then_some(target)
    }

    /// The changes to keys in `range` at revisions `>= from`, in revision order (and, within a
    /// revision, in the order they were made).
    ///
    /// Watchers live in the server; this is how one starts or resumes without loss or duplication:
    /// on the thread that applies entries, take `events_since(start, range)` and send them, then
    /// from the next applied entry on send the [`ApplyOutput::events`] in `range`. The store's
    /// revision when the iterator is taken is the seam: the history holds every event up to it,
    /// and every later event appears in exactly one later output, at a greater revision. A watcher
    /// that fell behind can resume with `events_since(last_seen + 1, range)`. History exists from
    /// the compact revision on: `from` must be greater than [`Store::compact_revision`], otherwise
    /// [`Compacted`] (the client should read the state at a revision `>= compact_revision` and
    /// watch from the revision after that read).
    pub fn events_since<'a>(
        &'a self,
        from: u64,
        range: &'a KeyRange,
    ) -> Result<impl Iterator<Item = Event> + 'a, Compacted> {
        if from <= self.compact_revision() {
            return Err(Compacted {
                requested: from,
                compact_revision: self.compact_revision(),
            });
        }
        Ok(self.kv.events_since(from, range))
    }

    /// Answers a read without the log and without changing anything, from this replica's state:
    /// linearizable if the server first made sure this replica has applied everything committed
    /// before the read arrived (leader lease or ReadIndex), otherwise a stale read.
    pub fn read(&self, request: &ReadRequest) -> Response {
        self.respond(self.read_result(request))
    }

    fn respond(&self, result: Result<Reply, StoreError>) -> Response {
        Response {
            revision: self.kv.revision(),
            result,
        }
    }

    fn read_result(&self, request: &ReadRequest) -> Result<Reply, StoreError> {
        match request {
            ReadRequest::Range(range) => self.kv.range(range).map(Reply::Range),
            ReadRequest::LeaseKeepAlive { id } => {
                let lease = self.lease(*id)?;
                Ok(Reply::LeaseAlive {
                    id: *id,
                    ttl_ms: lease.ttl_ms,
                })
            }
            ReadRequest::LeaseTimeToLive { id, keys } => {
                let lease = self.lease(*id)?;
                Ok(Reply::LeaseTimeToLive {
                    id: *id,
                    ttl_ms: lease.ttl_ms,
                    keys: if *keys {
                        lease.keys.iter().cloned().collect()
                    } else {
                        Vec::new()
                    },
                })
            }
            ReadRequest::Leases => Ok(Reply::Leases(self.leases.infos().collect())),
            ReadRequest::Leader { name } => self
                .elections
                .leader(name)
                .map(Reply::Leader)
                .ok_or_else(|| StoreError::NoLeader { name: name.clone() }),
            ReadRequest::Counter { name } => Ok(Reply::Counter {
                value: self.counters.get(name),
            }),
        }
    }

    fn lease(&self, id: LeaseId) -> Result<&Lease, StoreError> {
        self.leases.get(id).ok_or(StoreError::LeaseNotFound { id })
    }

    /// Applies the committed entry at `index`: decodes it (an empty entry is a leader's no-op),
    /// executes it exactly once per session sequence number, and reports the response,
    /// notifications and watch events in `out` (cleared first).
    ///
    /// Indices must strictly increase (gaps are allowed for entries the server does not hand to the
    /// store, such as configuration changes); applying an index at or below
    /// [`Store::applied_index`] is a programming error and panics. A request that fails a rule at
    /// apply time gets a deterministic error response and changes nothing.
    pub fn apply(&mut self, index: u64, entry: &[u8], out: &mut ApplyOutput) {
        assert!(
            index > self.applied_index,
            "entry {index} applied after entry {}: entries apply once, in increasing order",
            self.applied_index
        );
        out.reset(index);
        self.applied_index = index;
        if entry.is_empty() {
            return;
        }
        match codec::decode_request(entry, &self.limits) {
            Ok(request) => {
                let response = self.apply_request(index, request, out);
                out.response = Some(response);
            }
            Err(error) => out.rejected = Some(error),
        }
    }

    fn apply_request(&mut self, index: u64, request: Request, out: &mut ApplyOutput) -> Addressed {
        let SessionHeader { client_id, seq, .. } = request.session;
        let is_read = matches!(request.command, Command::Read(_));
        let cacheable = !is_read && request.command != Command::CloseSession;
        let response = if client_id == NO_SESSION {
            self.execute(index, request, out).0
        } else {
            match self.sessions.admit(&request.session, index, is_read) {
                Admission::Replay(response) => response,
                Admission::Expired => {
                    self.respond(Err(StoreError::SessionExpired { client_id, seq }))
                }
                Admission::Fresh => {
                    let (response, waiting) = self.execute(index, request, out);
                    if cacheable {
                        let cached = Cached::new(response.clone(), waiting);
                        self.sessions.record(client_id, seq, cached, &self.limits);
                    }
                    response
                }
            }
        };
        Addressed {
            client_id,
            seq,
            response,
        }
    }

    /// Runs one command, then fixes the revision and answers the requests it completed.
    fn execute(&mut self, index: u64, request: Request, out: &mut ApplyOutput) -> (Response, bool) {
        let SessionHeader { client_id, seq, .. } = request.session;
        let revision_before = self.kv.revision();
        let result = match request.command {
            Command::Read(read) => self.read_result(&read),
            Command::Put(put) => self.put(put, &mut out.events),
            Command::DeleteRange(delete) => Ok(Reply::DeleteRange(
                self.delete_range(&delete, &mut out.events),
            )),
            Command::Txn(txn) => self.txn(txn, &mut out.events),
            Command::Compact { revision } => self.compact(revision),
            Command::LeaseGrant { id, ttl_ms } => self.lease_grant(index, id, ttl_ms, out),
            Command::LeaseRevoke { id, reason } => self.lease_revoke(id, reason, out),
            Command::Lock { name, lease } => {
                let waiter = Waiter {
                    lease,
                    client_id,
                    seq,
                    value: Vec::new(),
                };
                self.acquire(QueueKind::Lock, &name, waiter, out)
            }
            Command::Unlock { name, token } => self.release(QueueKind::Lock, &name, token, out),
            Command::Campaign { name, lease, value } => {
                let waiter = Waiter {
                    lease,
                    client_id,
                    seq,
                    value,
                };
                self.acquire(QueueKind::Election, &name, waiter, out)
            }
            Command::Proclaim { name, token, value } => self.proclaim(&name, token, &value, out),
            Command::Resign { name, token } => self.release(QueueKind::Election, &name, token, out),
            Command::Arrive { name, n, lease } => {
                let member = Member {
                    lease,
                    client_id,
                    seq,
                };
                self.arrive(index, &name, n, member)
            }
            Command::FetchAdd { name, delta } => self.fetch_add(&name, delta),
            Command::RegisterSession => Ok(Reply::SessionRegistered {
                client_id: self.sessions.register(index, self.limits.max_sessions),
            }),
            Command::CloseSession => {
                self.sessions.close(client_id);
                Ok(Reply::SessionClosed)
            }
        };
        if result.is_err() {
            assert!(
                out.events.is_empty() && !self.kv.is_pending(),
                "a refused command changes nothing"
            );
            assert!(
                self.completions.is_empty(),
                "a refused command completes nothing"
            );
        }
        self.kv.finish_command();
        let response = self.respond(result);
        assert!(response.revision >= revision_before, "revisions only grow");
        for (client_id, seq, result) in self.completions.drain(..) {
            let completed = Response {
                revision: response.revision,
                result,
            };
            self.sessions
                .complete(client_id, seq, &completed, &self.limits);
            out.notifications.push(Notification::Completed(Addressed {
                client_id,
                seq,
                response: completed,
            }));
        }
        let waiting = matches!(
            response.result,
            Ok(Reply::Lock(Acquire::Queued { .. })
                | Reply::Campaign(Acquire::Queued { .. })
                | Reply::Barrier(BarrierStatus::Waiting { .. }))
        );
        (response, waiting)
    }

    /// Refuses a request that needs `needed_bytes` more than the quota has left (etcd's NOSPACE).
    fn charge(&self, needed_bytes: u64) -> Result<(), StoreError> {
        let used_bytes = self.used_bytes();
        let quota_bytes = self.limits.max_store_bytes;
        if used_bytes.saturating_add(needed_bytes) > quota_bytes {
            return Err(StoreError::NoSpace {
                needed_bytes,
                used_bytes,
                quota_bytes,
            });
        }
        Ok(())
    }

    /// Checks a put against the state before it; returns its quota cost.
    fn check_put(&self, put: &PutRequest) -> Result<u64, StoreError> {
        let latest = self.kv.latest(&put.key);
        let value = match (put.ignore_value || put.ignore_lease, latest) {
            (true, None) => {
                return Err(StoreError::KeyNotFound {
                    key: put.key.clone(),
                })
            }
            (true, Some(latest)) if put.ignore_value => {
                latest.value.as_deref().expect("latest is a put")
            }
            _ => &put.value,
        };
        if !put.ignore_lease && put.lease != NO_LEASE && !self.leases.contains(put.lease) {
            return Err(StoreError::LeaseNotFound { id: put.lease });
        }
        Ok(cost::key_revision(&put.key, value))
    }

    /// Performs a put that [`Store::check_put`] accepted.
    fn do_put(&mut self, put: PutRequest, events: &mut Vec<Event>) -> PutReply {
        let (mut value, mut lease) = (put.value, put.lease);
        if put.ignore_value || put.ignore_lease {
            let latest = self.kv.latest(&put.key).expect("check_put found the key");
            if put.ignore_value {
                value = latest.value.clone().expect("latest is a put");
            }
            if put.ignore_lease {
                lease = latest.lease;
            }
        }
        let prev_lease = self.kv.put(&put.key, value, lease, events);
        self.relink_key(&put.key, prev_lease.unwrap_or(NO_LEASE), lease);
        let prev_kv = if put.prev_kv {
            events.last().and_then(|event| event.prev_kv.clone())
        } else {
            None
        };
        PutReply { prev_kv }
    }

    /// Moves `key`'s attachment from lease `old` to lease `new`.
    fn relink_key(&mut self, key: &[u8], old: LeaseId, new: LeaseId) {
        if old == new {
            return;
        }
        if old != NO_LEASE {
            let lease = self
                .leases
                .get_mut(old)
                .expect("a live key's lease is live");
            assert!(lease.keys.remove(key), "lease records its keys");
        }
        if new != NO_LEASE {
            let lease = self.leases.get_mut(new).expect("check_put found the lease");
            lease.keys.insert(key.to_vec());
        }
    }

    fn put(&mut self, put: PutRequest, events: &mut Vec<Event>) -> Result<Reply, StoreError> {
        let needed = self.check_put(&put)?;
        self.charge(needed)?;
        Ok(Reply::Put(self.do_put(put, events)))
    }

    fn delete_range(
        &mut self,
        delete: &DeleteRangeRequest,
        events: &mut Vec<Event>,
    ) -> DeleteRangeReply {
        let mut reply = DeleteRangeReply::default();
        for key in self.kv.live_keys(&delete.range) {
            let prev_lease = self
                .kv
                .delete(&key, events)
                .expect("live_keys lists existing keys");
            self.relink_key(&key, prev_lease, NO_LEASE);
            reply.deleted += 1;
            if delete.prev_kv {
                let prev = events.last().and_then(|event| event.prev_kv.clone());
                reply
                    .prev_kvs
                    .push(prev.expect("a deleted key had a value"));
            }
        }
        reply
    }

    fn compare(&self, compare: &Compare) -> bool {
        let latest = self.kv.latest(&compare.key);
        let ordering = match &compare.target {
            CompareTarget::Value(expected) => match latest {
                None => return false,
                Some(latest) => latest
                    .value
                    .as_deref()
                    .expect("latest is a put")
                    .cmp(expected.as_slice()),
            },
            CompareTarget::Version(expected) => latest.map_or(0, |l| l.version).cmp(expected),
            CompareTarget::CreateRevision(expected) => {
                latest.map_or(0, |l| l.create_revision).cmp(expected)
            }
            CompareTarget::ModRevision(expected) => latest.map_or(0, |l| l.main).cmp(expected),
            CompareTarget::Lease(expected) => latest.map_or(NO_LEASE, |l| l.lease).cmp(expected),
        };
        match compare.op {
            CompareOp::Equal => ordering == Ordering::Equal,
            CompareOp::NotEqual => ordering != Ordering::Equal,
            CompareOp::Less => ordering == Ordering::Less,
            CompareOp::Greater => ordering == Ordering::Greater,
        }
    }

    /// etcd's Txn: compares on the state before, then the chosen branch, checked in full before any
    /// op runs so that a refusal changes nothing.
    fn txn(&mut self, txn: TxnRequest, events: &mut Vec<Event>) -> Result<Reply, StoreError> {
        let succeeded = txn.compare.iter().all(|c| self.compare(c));
        let ops = if succeeded { txn.success } else { txn.failure };
        let mut needed = 0;
        for op in &ops {
            match op {
                TxnOp::Range(range) => {
                    self.kv.check_read_revision(range.revision)?;
                }
                TxnOp::Put(put) => needed += self.check_put(put)?,
                TxnOp::DeleteRange(_) => {}
            }
        }
        self.charge(needed)?;
        let mut replies = Vec::with_capacity(ops.len());
        for op in ops {
            replies.push(match op {
                TxnOp::Range(range) => {
                    OpReply::Range(self.kv.range(&range).expect("revision checked above"))
                }
                TxnOp::Put(put) => OpReply::Put(self.do_put(put, events)),
                TxnOp::DeleteRange(delete) => {
                    OpReply::DeleteRange(self.delete_range(&delete, events))
                }
            });
        }
        Ok(Reply::Txn(TxnReply { succeeded, replies }))
    }

    fn compact(&mut self, revision: u64) -> Result<Reply, StoreError> {
        let compact_revision = self.kv.compact_revision();
        if revision <= compact_revision {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision,
            });
        }
        if revision > self.kv.revision() {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.kv.revision(),
            });
        }
        self.kv.compact(revision);
        Ok(Reply::Compacted)
    }

    fn lease_grant(
        &mut self,
        index: u64,
        id: LeaseId,
        ttl_ms: u64,
        out: &mut ApplyOutput,
    ) -> Result<Reply, StoreError> {
        let id = if id == NO_LEASE {
            self.leases.free_id(index)
        } else if self.leases.contains(id) {
            return Err(StoreError::LeaseExists { id });
        } else {
            id
        };
        if self.leases.len() >= self.limits.max_leases as usize {
            return Err(StoreError::TooManyLeases {
                max: self.limits.max_leases,
            });
        }
        self.charge(cost::LEASE)?;
        self.leases.grant(id, ttl_ms);
        out.notifications
            .push(Notification::LeaseGranted { id, ttl_ms });
        Ok(Reply::LeaseGranted { id, ttl_ms })
    }

    /// Revokes a lease and everything it owns, at one revision.
    fn lease_revoke(
        &mut self,
        id: LeaseId,
        reason: RevokeReason,
        out: &mut ApplyOutput,
    ) -> Result<Reply, StoreError> {
        let lease = self
            .leases
            .remove(id)
            .ok_or(StoreError::LeaseNotFound { id })?;
        for key in &lease.keys {
            let prev_lease = self.kv.delete(key, &mut out.events);
            assert_eq!(
                prev_lease,
                Some(id),
                "a lease records only its own live keys"
            );
        }
        for name in &lease.locks {
            self.leave_queue(QueueKind::Lock, name, id, out);
        }
        for name in &lease.elections {
            self.leave_queue(QueueKind::Election, name, id, out);
        }
        let reason = match reason {
            RevokeReason::Revoked => BreakReason::LeaseRevoked { lease: id },
            RevokeReason::Expired => BreakReason::LeaseExpired { lease: id },
        };
        for name in &lease.barriers {
            self.break_barrier(name, id, reason);
        }
        out.notifications.push(Notification::LeaseRevoked { id });
        Ok(Reply::LeaseRevoked {
            keys_deleted: lease.keys.len() as u64,
        })
    }

    /// Removes a revoked lease's entry from one queue: a waiter fails, a holder hands over.
    fn leave_queue(&mut self, kind: QueueKind, name: &[u8], id: LeaseId, out: &mut ApplyOutput) {
        let (queues, kv) = self.queues_and_kv(kind);
        let removal = queues.remove_lease(name, id, || kv.take_token());
        assert!(
            removal.was_holder || removal.dropped_waiter.is_some(),
            "a lease's queue records match the queues"
        );
        if let Some(waiter) = removal.dropped_waiter {
            self.completions.push((
                waiter.client_id,
                waiter.seq,
                Err(StoreError::LeaseRevoked { id }),
            ));
        }
        if let Some(grant) = removal.grant {
            self.completions.push((
                grant.waiter.client_id,
                grant.waiter.seq,
                Ok(kind.reply(Acquire::Granted { token: grant.token })),
            ));
        }
        if kind == QueueKind::Election && removal.was_holder {
            self.leader_changed(name, out);
        }
    }

    fn leader_changed(&self, name: &[u8], out: &mut ApplyOutput) {
        out.notifications.push(Notification::LeaderChanged {
            name: name.to_vec(),
            leader: self.elections.leader(name),
        });
    }

    fn break_barrier(&mut self, name: &[u8], revoked: LeaseId, reason: BreakReason) {
        let barrier = self
            .barriers
            .break_generation(name)
            .expect("a lease's barrier records match the barriers");
        for member in barrier.waiters {
            if member.lease != revoked {
                let lease = self
                    .leases
                    .get_mut(member.lease)
                    .expect("members' leases are live");
                lease.barriers.remove(name);
            }
            self.completions.push((
                member.client_id,
                member.seq,
                Err(StoreError::BarrierBroken {
                    name: name.to_vec(),
                    generation: barrier.generation,
                    reason,
                }),
            ));
        }
    }

    fn queues(&self, kind: QueueKind) -> &Queues {
        match kind {
            QueueKind::Lock => &self.locks,
            QueueKind::Election => &self.elections,
        }
    }

    /// The queues of `kind` and the revision counter, borrowed together so a queue can take a
    /// fencing token while it changes.
    fn queues_and_kv(&mut self, kind: QueueKind) -> (&mut Queues, &mut Kv) {
        match kind {
            QueueKind::Lock => (&mut self.locks, &mut self.kv),
            QueueKind::Election => (&mut self.elections, &mut self.kv),
        }
    }

    /// The names of `kind` that lease `id` has an entry in.
    fn lease_names(&mut self, kind: QueueKind, id: LeaseId) -> &mut BTreeSet<Vec<u8>> {
        let lease = self
            .leases
            .get_mut(id)
            .expect("queue entries' leases are live");
        match kind {
            QueueKind::Lock => &mut lease.locks,
            QueueKind::Election => &mut lease.elections,
        }
    }

    fn acquire(
        &mut self,
        kind: QueueKind,
        name: &[u8],
        waiter: Waiter,
        out: &mut ApplyOutput,
    ) -> Result<Reply, StoreError> {
        let lease_id = waiter.lease;
        self.lease(lease_id)?;
        let held =
            self.queues(kind)
                .check_acquire(name, lease_id, self.limits.max_queue_waiters)?;
        if let Some(token) = held {
            if kind == QueueKind::Election {
                self.proclaim(name, token, &waiter.value, out)?;
            }
            return Ok(kind.reply(Acquire::Granted { token }));
        }
        self.charge(cost::queue_entry(name, &waiter.value))?;
        let (queues, kv) = self.queues_and_kv(kind);
        let acquire = queues.enqueue(name, waiter, || kv.take_token());
        self.lease_names(kind, lease_id).insert(name.to_vec());
        if kind == QueueKind::Election && matches!(acquire, Acquire::Granted { .. }) {
            self.leader_changed(name, out);
        }
        Ok(kind.reply(acquire))
    }

    fn release(
        &mut self,
        kind: QueueKind,
        name: &[u8],
        token: u64,
        out: &mut ApplyOutput,
    ) -> Result<Reply, StoreError> {
        self.queues(kind).check_holder(name, token)?;
        let (queues, kv) = self.queues_and_kv(kind);
        let (released, grant) = queues.release(name, || kv.take_token());
        let recorded = self.lease_names(kind, released.lease).remove(name);
        assert!(recorded, "a lease records the queues it is in");
        if let Some(grant) = grant {
            self.completions.push((
                grant.waiter.client_id,
                grant.waiter.seq,
                Ok(kind.reply(Acquire::Granted { token: grant.token })),
            ));
        }
        Ok(match kind {
            QueueKind::Lock => Reply::Unlocked,
            QueueKind::Election => {
                self.leader_changed(name, out);
                Reply::Resigned
            }
        })
    }

    fn proclaim(
        &mut self,
        name: &[u8],
        token: u64,
        value: &[u8],
        out: &mut ApplyOutput,
    ) -> Result<Reply, StoreError> {
        let queue = self.elections.check_holder(name, token)?;
        if queue.holder.value != value {
            let grows = value.len().saturating_sub(queue.holder.value.len());
            self.charge(grows as u64)?;
            self.elections.set_value(name, value.to_vec());
            self.leader_changed(name, out);
        }
        Ok(Reply::Proclaimed)
    }

    fn arrive(
        &mut self,
        index: u64,
        name: &[u8],
        n: u32,
        member: Member,
    ) -> Result<Reply, StoreError> {
        let lease_id = member.lease;
        self.lease(lease_id)?;
        if self.barriers.check_arrive(name, n)? {
            self.charge(cost::barrier_member(name))?;
        }
        let status = match self.barriers.arrive(name, n, member, index) {
            Arrival::Waiting(status) => {
                let lease = self.leases.get_mut(lease_id).expect("checked above");
                lease.barriers.insert(name.to_vec());
                status
            }
            Arrival::Released {
                generation,
                members,
            } => {
                let released = BarrierStatus::Released { generation };
                for member in members {
                    let lease = self
                        .leases
                        .get_mut(member.lease)
                        .expect("members' leases are live");
                    lease.barriers.remove(name);
                    self.completions.push((
                        member.client_id,
                        member.seq,
                        Ok(Reply::Barrier(released)),
                    ));
                }
                released
            }
        };
        Ok(Reply::Barrier(status))
    }

    fn fetch_add(&mut self, name: &[u8], delta: i64) -> Result<Reply, StoreError> {
        let previous = self.counters.get(name);
        let next = previous
            .checked_add(delta)
            .ok_or_else(|| StoreError::CounterOverflow {
                name: name.to_vec(),
                value: previous,
                delta,
            })?;
        if previous == 0 && next != 0 {
            self.charge(cost::counter(name))?;
        }
        self.counters.set(name, next);
        Ok(Reply::FetchAdd { previous })
    }

    /// Checks every invariant of the whole state (expensive: tests, debug builds, and restore).
    pub fn verify(&self) -> Result<(), String> {
        self.kv.verify()?;
        let owns = |lease: LeaseId, pick: fn(&Lease) -> &BTreeSet<Vec<u8>>, name: &[u8]| {
            self.leases
                .get(lease)
                .is_some_and(|l| pick(l).contains(name))
        };
        self.locks.verify(
            "lock",
            self.limits.max_queue_waiters,
            self.revision(),
            |lease, name| owns(lease, |l| &l.locks, name),
        )?;
        self.elections.verify(
            "election",
            self.limits.max_queue_waiters,
            self.revision(),
            |lease, name| owns(lease, |l| &l.elections, name),
        )?;
        self.barriers.verify(self.applied_index, |lease, name| {
            owns(lease, |l| &l.barriers, name)
        })?;
        self.sessions.verify(&self.limits, self.applied_index)?;
        let mut lock_records = 0;
        let mut election_records = 0;
        for (id, lease) in self.leases.iter() {
            for key in &lease.keys {
                let current = self.kv.current(key);
                if current.as_ref().map(|kv| kv.lease) != Some(id) {
                    return Err(format!(
                        "lease {id:#x} records key {} it does not hold",
                        key.escape_ascii()
                    ));
                }
            }
            lock_records += lease.locks.len();
            election_records += lease.elections.len();
            for name in &lease.barriers {
                let member = self
                    .barriers
                    .iter()
                    .any(|(n, b)| n == name && b.waiters.iter().any(|m| m.lease == id));
                if !member {
                    return Err(format!(
                        "lease {id:#x} records barrier {} it is not in",
                        name.escape_ascii()
                    ));
                }
            }
        }
        if lock_records != self.locks.entry_count()
            || election_records != self.elections.entry_count()
        {
            return Err("lease queue records and queue entries differ".to_string());
        }
        for (key, revisions) in self.kv.keys() {
            let latest = revisions.last().expect("verified non-empty");
            if latest.value.is_some() && latest.lease != NO_LEASE {
                let recorded = self
                    .leases
                    .get(latest.lease)
                    .is_some_and(|l| l.keys.contains(key));
                if !recorded {
                    return Err(format!(
                        "key {} has lease {:#x} that does not record it",
                        key.escape_ascii(),
                        latest.lease
                    ));
                }
            }
        }
        self.counters.verify()?;
        if self.leases.len() > self.limits.max_leases as usize {
            return Err("too many leases".to_string());
        }
        Ok(())
    }
}
