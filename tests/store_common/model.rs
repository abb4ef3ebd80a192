//! A plain reference model of the store, written separately from it and as naively as possible:
//! the key space is the list of every write ever made (nothing is really forgotten; compaction
//! only moves a number), every view is recomputed by scanning, queues are vectors. It answers with
//! the store's public types so that responses can be compared field for field.

use std::collections::BTreeMap;

use aurora::store::{
    Acquire, Addressed, BarrierStatus, BreakReason, ClientId, Command, Compare, CompareOp,
    CompareTarget, DeleteRangeReply, DeleteRangeRequest, Event, EventKind, KeyRange, KeyValue,
    LeaderInfo, LeaseId, LeaseInfo, Notification, OpReply, PutReply, PutRequest, RangeReply,
    RangeRequest, ReadRequest, Reply, Request, Response, RevokeReason, StoreError, StoreLimits,
    TxnOp, TxnReply, TxnRequest,
};

const OVERHEAD: u64 = 32;

/// One write: a put (`value: Some`) or a deletion.
#[derive(Debug, Clone)]
struct Write {
    revision: u64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    lease: LeaseId,
}

/// A holder or waiter of a lock or election.
#[derive(Debug, Clone)]
struct Entry {
    lease: LeaseId,
    client: ClientId,
    seq: u64,
    value: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Queue {
    token: u64,
    /// `entries[0]` holds; the rest wait in order.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Barrier {
    n: u32,
    generation: u64,
    members: Vec<(LeaseId, ClientId, u64)>,
}

#[derive(Debug, Clone)]
struct Session {
    last_active: u64,
    acked: u64,
    evicted: u64,
    cache: BTreeMap<u64, (Response, bool)>,
}

/// What one apply produced, as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub response: Addressed,
    pub notifications: Vec<Notification>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone)]
pub struct Model {
    limits: StoreLimits,
    revision: u64,
    compact: u64,
    writes: Vec<Write>,
    leases: BTreeMap<LeaseId, u64>,
    locks: BTreeMap<Vec<u8>, Queue>,
    elections: BTreeMap<Vec<u8>, Queue>,
    barriers: BTreeMap<Vec<u8>, Barrier>,
    counters: BTreeMap<Vec<u8>, i64>,
    sessions: BTreeMap<ClientId, Session>,
    // Scratch for the command being applied.
    bumped: bool,
    completions: Vec<(ClientId, u64, Result<Reply, StoreError>)>,
    notifications: Vec<Notification>,
    events: Vec<Event>,
}

fn in_range(range: &KeyRange, key: &[u8]) -> bool {
    if range.range_end.is_empty() {
        key == range.key.as_slice()
    } else if range.range_end == [0] {
        key >= range.key.as_slice()
    } else {
        key >= range.key.as_slice() && key < range.range_end.as_slice()
    }
}

impl Model {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            revision: 1,
            compact: 0,
            writes: Vec::new(),
            leases: BTreeMap::new(),
            locks: BTreeMap::new(),
            elections: BTreeMap::new(),
            barriers: BTreeMap::new(),
            counters: BTreeMap::new(),
            sessions: BTreeMap::new(),
            bumped: false,
            completions: Vec::new(),
            notifications: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn compact_revision(&self) -> u64 {
        self.compact
    }

    /// The revision being written by the current command.
    fn next(&self) -> u64 {
        self.revision + 1
    }

    /// What "latest" means inside a command: its own writes included.
    fn latest(&self) -> u64 {
        if self
            .writes
            .last()
            .is_some_and(|w| w.revision == self.next())
        {
            self.next()
        } else {
            self.revision
        }
    }

    /// The key as of revision `at`, by replaying every write of it.
    fn kv_at(&self, key: &[u8], at: u64) -> Option<KeyValue> {
        let mut kv: Option<KeyValue> = None;
        for w in self
            .writes
            .iter()
            .filter(|w| w.key == key && w.revision <= at)
        {
            kv = match (&w.value, kv) {
                (None, _) => None,
                (Some(value), None) => Some(KeyValue {
                    key: key.to_vec(),
                    value: value.clone(),
                    create_revision: w.revision,
                    mod_revision: w.revision,
                    version: 1,
                    lease: w.lease,
                }),
                (Some(value), Some(old)) => Some(KeyValue {
                    value: value.clone(),
                    mod_revision: w.revision,
                    version: old.version + 1,
                    lease: w.lease,
                    ..old
                }),
            };
        }
        kv
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.writes.iter().map(|w| w.key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn live_in(&self, range: &KeyRange, at: u64) -> Vec<KeyValue> {
        self.keys()
            .into_iter()
            .filter(|k| in_range(range, k))
            .filter_map(|k| self.kv_at(&k, at))
            .collect()
    }

    /// Bytes charged against the quota, recomputed from scratch.
    pub fn used_bytes(&self) -> u64 {
        let mut bytes = 0;
        for key in self.keys() {
            let mine: Vec<&Write> = self.writes.iter().filter(|w| w.key == key).collect();
            let last_old = mine.iter().rposition(|w| w.revision <= self.compact);
            for (i, w) in mine.iter().enumerate() {
                let kept = w.revision > self.compact || (Some(i) == last_old && w.value.is_some());
                if kept {
                    bytes += OVERHEAD
                        + key.len() as u64
                        + w.value.as_ref().map_or(0, |v| v.len() as u64);
                }
            }
        }
        bytes += OVERHEAD * self.leases.len() as u64;
        for (name, q) in self.locks.iter().chain(&self.elections) {
            for e in &q.entries {
                bytes += OVERHEAD + name.len() as u64 + e.value.len() as u64;
            }
        }
        for (name, b) in &self.barriers {
            bytes += (OVERHEAD + name.len() as u64) * b.members.len() as u64;
        }
        for name in self.counters.keys() {
            bytes += OVERHEAD + name.len() as u64 + 8;
        }
        bytes
    }

    fn room_for(&self, needed: u64) -> Result<(), StoreError> {
        let used = self.used_bytes();
        if used + needed > self.limits.max_store_bytes {
            Err(StoreError::NoSpace {
                needed_bytes: needed,
                used_bytes: used,
                quota_bytes: self.limits.max_store_bytes,
            })
        } else {
            Ok(())
        }
    }

    fn check_revision(&self, revision: u64) -> Result<u64, StoreError> {
        if revision == 0 {
            Ok(self.latest())
        } else if revision > self.revision {
            Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            })
        } else if revision < self.compact {
            Err(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact,
            })
        } else {
            Ok(revision)
        }
    }

    fn range(&self, request: &RangeRequest) -> Result<RangeReply, StoreError> {
        let at = self.check_revision(request.revision)?;
        let mut kvs = self.live_in(&request.range, at);
        let count = kvs.len() as u64;
        if request.count_only {
            return Ok(RangeReply {
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        let mut more = false;
        if request.limit > 0 && count > request.limit {
            kvs.truncate(request.limit as usize);
            more = true;
        }
        if request.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeReply { kvs, more, count })
    }

    /// Every event from `from` on, by replaying the write list.
    pub fn events_since(&self, from: u64, range: &KeyRange) -> Vec<Event> {
        self.writes
            .iter()
            .filter(|w| w.revision >= from && w.revision > self.compact && in_range(range, &w.key))
            .map(|w| self.event_of(w))
            .collect()
    }

    fn event_of(&self, w: &Write) -> Event {
        let prev_kv = self.kv_at(&w.key, w.revision - 1);
        match &w.value {
            Some(_) => Event {
                kind: EventKind::Put,
                kv: self.kv_at(&w.key, w.revision).expect("just put"),
                prev_kv,
            },
            None => Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: w.key.clone(),
                    mod_revision: w.revision,
                    ..KeyValue::default()
                },
                prev_kv,
            },
        }
    }

    fn write(&mut self, key: &[u8], value: Option<Vec<u8>>, lease: LeaseId) -> Option<KeyValue> {
        let prev = self.kv_at(key, self.latest());
        let w = Write {
            revision: self.next(),
            key: key.to_vec(),
            value,
            lease,
        };
        self.writes.push(w.clone());
        self.bumped = true;
        let event = self.event_of(&w);
        self.events.push(event);
        prev
    }

    pub fn read(&self, request: &ReadRequest) -> Response {
        Response {
            revision: self.revision,
            result: self.read_result(request),
        }
    }

    fn read_result(&self, request: &ReadRequest) -> Result<Reply, StoreError> {
        match request {
            ReadRequest::Range(r) => self.range(r).map(Reply::Range),
            ReadRequest::LeaseKeepAlive { id } => match self.leases.get(id) {
                Some(&ttl_ms) => Ok(Reply::LeaseAlive { id: *id, ttl_ms }),
                None => Err(StoreError::LeaseNotFound { id: *id }),
            },
            ReadRequest::LeaseTimeToLive { id, keys } => match self.leases.get(id) {
                Some(&ttl_ms) => Ok(Reply::LeaseTimeToLive {
                    id: *id,
                    ttl_ms,
                    keys: if *keys { self.keys_of(*id) } else { Vec::new() },
                }),
                None => Err(StoreError::LeaseNotFound { id: *id }),
            },
            ReadRequest::Leases => Ok(Reply::Leases(
                self.leases
                    .iter()
                    .map(|(&id, &ttl_ms)| LeaseInfo { id, ttl_ms })
                    .collect(),
            )),
            ReadRequest::Leader { name } => self
                .leader(name)
                .map(Reply::Leader)
                .ok_or(StoreError::NoLeader { name: name.clone() }),
            ReadRequest::Counter { name } => Ok(Reply::Counter {
                value: self.counters.get(name).copied().unwrap_or(0),
            }),
        }
    }

    fn keys_of(&self, lease: LeaseId) -> Vec<Vec<u8>> {
        self.live_in(&KeyRange::all(), self.latest())
            .into_iter()
            .filter(|kv| kv.lease == lease)
            .map(|kv| kv.key)
            .collect()
    }

    fn leader(&self, name: &[u8]) -> Option<LeaderInfo> {
        let q = self.elections.get(name)?;
        Some(LeaderInfo {
            lease: q.entries[0].lease,
            token: q.token,
            value: q.entries[0].value.clone(),
        })
    }

    pub fn apply(&mut self, index: u64, request: &Request) -> Outcome {
        self.notifications.clear();
        self.events.clear();
        let client = request.session.client_id;
        let seq = request.session.seq;
        let is_read = matches!(request.command, Command::Read(_));
        let response = if client == 0 {
            self.execute(index, request)
        } else if !self.sessions.contains_key(&client) {
            self.expired(client, seq)
        } else {
            let s = self.sessions.get_mut(&client).expect("checked");
            s.last_active = index;
            if request.session.acked_seq > s.acked {
                s.acked = request.session.acked_seq;
                let acked = s.acked;
                s.cache.retain(|&q, _| q > acked);
            }
            if is_read {
                self.execute(index, request)
            } else if let Some((cached, _)) = s.cache.get(&seq) {
                cached.clone()
            } else if seq <= s.acked.max(s.evicted) {
                self.expired(client, seq)
            } else {
                let response = self.execute(index, request);
                if request.command != Command::CloseSession {
                    let waiting = matches!(
                        response.result,
                        Ok(Reply::Lock(Acquire::Queued { .. }))
                            | Ok(Reply::Campaign(Acquire::Queued { .. }))
                            | Ok(Reply::Barrier(BarrierStatus::Waiting { .. }))
                    );
                    let s = self.sessions.get_mut(&client).expect("still open");
                    s.cache.insert(seq, (response.clone(), waiting));
                    self.trim(client);
                }
                response
            }
        };
        Outcome {
            response: Addressed {
                client_id: client,
                seq,
                response,
            },
            notifications: std::mem::take(&mut self.notifications),
            events: std::mem::take(&mut self.events),
        }
    }

    fn expired(&self, client_id: ClientId, seq: u64) -> Response {
        Response {
            revision: self.revision,
            result: Err(StoreError::SessionExpired { client_id, seq }),
        }
    }

    /// Drops the oldest completed responses while the session keeps too many.
    fn trim(&mut self, client: ClientId) {
        let max = self.limits.max_session_responses as usize;
        let s = self.sessions.get_mut(&client).expect("exists");
        while s.cache.len() > max {
            let Some(oldest) = s
                .cache
                .iter()
                .find(|(_, (_, waiting))| !waiting)
                .map(|(&q, _)| q)
            else {
                break;
            };
            s.cache.remove(&oldest);
            s.evicted = s.evicted.max(oldest);
        }
    }

    fn execute(&mut self, index: u64, request: &Request) -> Response {
        self.bumped = false;
        let client = request.session.client_id;
        let seq = request.session.seq;
        let result = self.run(index, client, seq, &request.command);
        if self.bumped {
            self.revision += 1;
        }
        for (c, q, result) in std::mem::take(&mut self.completions) {
            let response = Response {
                revision: self.revision,
                result,
            };
            if let Some(s) = self.sessions.get_mut(&c) {
                if let Some(entry) = s.cache.get_mut(&q) {
                    *entry = (response.clone(), false);
                    self.trim(c);
                }
            }
            self.notifications.push(Notification::Completed(Addressed {
                client_id: c,
                seq: q,
                response,
            }));
        }
        Response {
            revision: self.revision,
            result,
        }
    }

    fn run(
        &mut self,
        index: u64,
        client: ClientId,
        seq: u64,
        command: &Command,
    ) -> Result<Reply, StoreError> {
        match command {
            Command::Read(read) => self.read_result(read),
            Command::Put(put) => {
                let needed = self.check_put(put)?;
                self.room_for(needed)?;
                Ok(Reply::Put(self.do_put(put)))
            }
            Command::DeleteRange(d) => Ok(Reply::DeleteRange(self.delete(d))),
            Command::Txn(txn) => self.txn(txn),
            Command::Compact { revision } => {
                if *revision <= self.compact {
                    Err(StoreError::Compacted {
                        requested: *revision,
                        compact_revision: self.compact,
                    })
                } else if *revision > self.revision {
                    Err(StoreError::FutureRevision {
                        requested: *revision,
                        current: self.revision,
                    })
                } else {
                    self.compact = *revision;
                    Ok(Reply::Compacted)
                }
            }
            Command::LeaseGrant { id, ttl_ms } => {
                let id = if *id == 0 {
                    let mut id = index;
                    while self.leases.contains_key(&id) {
                        id += 1;
                    }
                    id
                } else if self.leases.contains_key(id) {
                    return Err(StoreError::LeaseExists { id: *id });
                } else {
                    *id
                };
                if self.leases.len() >= self.limits.max_leases as usize {
                    return Err(StoreError::TooManyLeases {
                        max: self.limits.max_leases,
                    });
                }
                self.room_for(OVERHEAD)?;
                self.leases.insert(id, *ttl_ms);
                self.notifications.push(Notification::LeaseGranted {
                    id,
                    ttl_ms: *ttl_ms,
                });
                Ok(Reply::LeaseGranted {
                    id,
                    ttl_ms: *ttl_ms,
                })
            }
            Command::LeaseRevoke { id, reason } => self.revoke(*id, *reason),
            Command::Lock { name, lease } => self.acquire(false, name, *lease, client, seq, &[]),
            Command::Unlock { name, token } => {
                self.release(false, name, *token).map(|()| Reply::Unlocked)
            }
            Command::Campaign { name, lease, value } => {
                self.acquire(true, name, *lease, client, seq, value)
            }
            Command::Proclaim { name, token, value } => self.proclaim(name, *token, value),
            Command::Resign { name, token } => {
                self.release(true, name, *token).map(|()| Reply::Resigned)
            }
            Command::Arrive { name, n, lease } => self.arrive(index, name, *n, *lease, client, seq),
            Command::FetchAdd { name, delta } => {
                let previous = self.counters.get(name).copied().unwrap_or(0);
                let Some(next) = previous.checked_add(*delta) else {
                    return Err(StoreError::CounterOverflow {
                        name: name.clone(),
                        value: previous,
                        delta: *delta,
                    });
                };
                if previous == 0 && next != 0 {
                    self.room_for(OVERHEAD + name.len() as u64 + 8)?;
                }
                self.counters.insert(name.clone(), next);
                self.counters.retain(|_, v| *v != 0);
                Ok(Reply::FetchAdd { previous })
            }
            Command::RegisterSession => {
                while self.sessions.len() >= self.limits.max_sessions as usize {
                    let oldest = self
                        .sessions
                        .iter()
                        .min_by_key(|(_, s)| s.last_active)
                        .map(|(&c, _)| c)
                        .expect("non-empty");
                    self.sessions.remove(&oldest);
                }
                self.sessions.insert(
                    index,
                    Session {
                        last_active: index,
                        acked: 0,
                        evicted: 0,
                        cache: BTreeMap::new(),
                    },
                );
                Ok(Reply::SessionRegistered { client_id: index })
            }
            Command::CloseSession => {
                self.sessions.remove(&client);
                Ok(Reply::SessionClosed)
            }
        }
    }

    fn check_put(&self, put: &PutRequest) -> Result<u64, StoreError> {
        let current = self.kv_at(&put.key, self.latest());
        let mut value_len = put.value.len();
        if put.ignore_value || put.ignore_lease {
            let Some(current) = &current else {
                return Err(StoreError::KeyNotFound {
                    key: put.key.clone(),
                });
            };
            if put.ignore_value {
                value_len = current.value.len();
            }
        }
        if !put.ignore_lease && put.lease != 0 && !self.leases.contains_key(&put.lease) {
            return Err(StoreError::LeaseNotFound { id: put.lease });
        }
        Ok(OVERHEAD + put.key.len() as u64 + value_len as u64)
    }

    fn do_put(&mut self, put: &PutRequest) -> PutReply {
        let current = self.kv_at(&put.key, self.latest());
        let value = match (&current, put.ignore_value) {
            (Some(c), true) => c.value.clone(),
            _ => put.value.clone(),
        };
        let lease = match (&current, put.ignore_lease) {
            (Some(c), true) => c.lease,
            _ => put.lease,
        };
        let prev = self.write(&put.key, Some(value), lease);
        PutReply {
            prev_kv: if put.prev_kv { prev } else { None },
        }
    }

    fn delete(&mut self, d: &DeleteRangeRequest) -> DeleteRangeReply {
        let mut reply = DeleteRangeReply::default();
        for kv in self.live_in(&d.range, self.latest()) {
            let prev = self.write(&kv.key, None, 0).expect("live");
            reply.deleted += 1;
            if d.prev_kv {
                reply.prev_kvs.push(prev);
            }
        }
        reply
    }

    fn holds(&self, c: &Compare) -> bool {
        let current = self.kv_at(&c.key, self.latest());
        let (actual, expected): (Vec<u8>, Vec<u8>) = match &c.target {
            CompareTarget::Value(v) => match &current {
                None => return false,
                Some(kv) => (kv.value.clone(), v.clone()),
            },
            CompareTarget::Version(v) => num(current.as_ref().map_or(0, |kv| kv.version), *v),
            CompareTarget::CreateRevision(v) => {
                num(current.as_ref().map_or(0, |kv| kv.create_revision), *v)
            }
            CompareTarget::ModRevision(v) => {
                num(current.as_ref().map_or(0, |kv| kv.mod_revision), *v)
            }
            CompareTarget::Lease(v) => num(current.as_ref().map_or(0, |kv| kv.lease), *v),
        };
        match c.op {
            CompareOp::Equal => actual == expected,
            CompareOp::NotEqual => actual != expected,
            CompareOp::Less => actual < expected,
            CompareOp::Greater => actual > expected,
        }
    }

    fn txn(&mut self, txn: &TxnRequest) -> Result<Reply, StoreError> {
        let succeeded = txn.compare.iter().all(|c| self.holds(c));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut needed = 0;
        for op in ops {
            match op {
                TxnOp::Range(r) => {
                    self.check_revision(r.revision)?;
                }
                TxnOp::Put(p) => needed += self.check_put(p)?,
                TxnOp::DeleteRange(_) => {}
            }
        }
        self.room_for(needed)?;
        let mut replies = Vec::new();
        for op in ops {
            replies.push(match op {
                TxnOp::Range(r) => OpReply::Range(self.range(r).expect("checked")),
                TxnOp::Put(p) => OpReply::Put(self.do_put(p)),
                TxnOp::DeleteRange(d) => OpReply::DeleteRange(self.delete(d)),
            });
        }
        Ok(Reply::Txn(TxnReply { succeeded, replies }))
    }

    fn revoke(&mut self, id: LeaseId, reason: RevokeReason) -> Result<Reply, StoreError> {
        if self.leases.remove(&id).is_none() {
            return Err(StoreError::LeaseNotFound { id });
        }
        let keys = self.keys_of(id);
        for key in &keys {
            self.write(key, None, 0);
        }
        for election in [false, true] {
            let names: Vec<Vec<u8>> = self.queues(election).keys().cloned().collect();
            for name in names {
                let queue = self.queues(election).get_mut(&name).expect("listed");
                let Some(at) = queue.entries.iter().position(|e| e.lease == id) else {
                    continue;
                };
                if at == 0 {
                    self.release_holder(election, &name);
                } else {
                    let entry = queue.entries.remove(at);
                    self.completions.push((
                        entry.client,
                        entry.seq,
                        Err(StoreError::LeaseRevoked { id }),
                    ));
                }
            }
        }
        let reason = match reason {
            RevokeReason::Revoked => BreakReason::LeaseRevoked { lease: id },
            RevokeReason::Expired => BreakReason::LeaseExpired { lease: id },
        };
        let broken: Vec<Vec<u8>> = self
            .barriers
            .iter()
            .filter(|(_, b)| b.members.iter().any(|m| m.0 == id))
            .map(|(name, _)| name.clone())
            .collect();
        for name in broken {
            let b = self.barriers.remove(&name).expect("listed");
            for (_, c, q) in b.members {
                self.completions.push((
                    c,
                    q,
                    Err(StoreError::BarrierBroken {
                        name: name.clone(),
                        generation: b.generation,
                        reason,
                    }),
                ));
            }
        }
        self.notifications.push(Notification::LeaseRevoked { id });
        Ok(Reply::LeaseRevoked {
            keys_deleted: keys.len() as u64,
        })
    }

    fn queues(&mut self, election: bool) -> &mut BTreeMap<Vec<u8>, Queue> {
        if election {
            &mut self.elections
        } else {
            &mut self.locks
        }
    }

    fn reply(election: bool, acquire: Acquire) -> Reply {
        if election {
            Reply::Campaign(acquire)
        } else {
            Reply::Lock(acquire)
        }
    }

    /// Removes the holder of `name`; the next waiter, if any, takes over with a new token.
    fn release_holder(&mut self, election: bool, name: &[u8]) {
        let token = self.next();
        let queue = self.queues(election).get_mut(name).expect("held");
        queue.entries.remove(0);
        if queue.entries.is_empty() {
            self.queues(election).remove(name);
        } else {
            queue.token = token;
            let next = queue.entries[0].clone();
            self.bumped = true;
            self.completions.push((
                next.client,
                next.seq,
                Ok(Self::reply(election, Acquire::Granted { token })),
            ));
        }
        if election {
            self.notifications.push(Notification::LeaderChanged {
                name: name.to_vec(),
                leader: self.leader(name),
            });
        }
    }

    fn acquire(
        &mut self,
        election: bool,
        name: &[u8],
        lease: LeaseId,
        client: ClientId,
        seq: u64,
        value: &[u8],
    ) -> Result<Reply, StoreError> {
        if !self.leases.contains_key(&lease) {
            return Err(StoreError::LeaseNotFound { id: lease });
        }
        let max = self.limits.max_queue_waiters;
        if let Some(queue) = self.queues(election).get(name).cloned() {
            if queue.entries[0].lease == lease {
                if election {
                    self.proclaim(name, queue.token, value)?;
                }
                return Ok(Self::reply(
                    election,
                    Acquire::Granted { token: queue.token },
                ));
            }
            if queue.entries.iter().any(|e| e.lease == lease) {
                return Err(StoreError::AlreadyWaiting {
                    name: name.to_vec(),
                    lease,
                });
            }
            if queue.entries.len() > max as usize {
                return Err(StoreError::QueueFull {
                    name: name.to_vec(),
                    capacity: max,
                });
            }
        }
        self.room_for(OVERHEAD + name.len() as u64 + value.len() as u64)?;
        let entry = Entry {
            lease,
            client,
            seq,
            value: value.to_vec(),
        };
        let token = self.next();
        let queues = self.queues(election);
        match queues.get_mut(name) {
            Some(queue) => {
                queue.entries.push(entry);
                let ahead = (queue.entries.len() - 1) as u32;
                Ok(Self::reply(election, Acquire::Queued { ahead }))
            }
            None => {
                queues.insert(
                    name.to_vec(),
                    Queue {
                        token,
                        entries: vec![entry],
                    },
                );
                self.bumped = true;
                if election {
                    self.notifications.push(Notification::LeaderChanged {
                        name: name.to_vec(),
                        leader: self.leader(name),
                    });
                }
                Ok(Self::reply(election, Acquire::Granted { token }))
            }
        }
    }

    fn check_token(&mut self, election: bool, name: &[u8], token: u64) -> Result<(), StoreError> {
        let holder_token = self.queues(election).get(name).map_or(0, |q| q.token);
        if holder_token == token {
            Ok(())
        } else {
            Err(StoreError::NotHolder {
                name: name.to_vec(),
                token,
                holder_token,
            })
        }
    }

    fn release(&mut self, election: bool, name: &[u8], token: u64) -> Result<(), StoreError> {
        self.check_token(election, name, token)?;
        self.release_holder(election, name);
        Ok(())
    }

    fn proclaim(&mut self, name: &[u8], token: u64, value: &[u8]) -> Result<Reply, StoreError> {
        self.check_token(true, name, token)?;
        let old = self.elections[name].entries[0].value.clone();
        if old != value {
            self.room_for(value.len().saturating_sub(old.len()) as u64)?;
            self.elections.get_mut(name).expect("held").entries[0].value = value.to_vec();
            self.notifications.push(Notification::LeaderChanged {
                name: name.to_vec(),
                leader: self.leader(name),
            });
        }
        Ok(Reply::Proclaimed)
    }

    fn arrive(
        &mut self,
        index: u64,
        name: &[u8],
        n: u32,
        lease: LeaseId,
        client: ClientId,
        seq: u64,
    ) -> Result<Reply, StoreError> {
        if !self.leases.contains_key(&lease) {
            return Err(StoreError::LeaseNotFound { id: lease });
        }
        let (generation, waiting) = match self.barriers.get(name) {
            Some(b) if b.n != n => {
                return Err(StoreError::BarrierSizeMismatch {
                    name: name.to_vec(),
                    expected: b.n,
                    got: n,
                })
            }
            Some(b) => (b.generation, b.members.len() as u32),
            None => (index, 0),
        };
        if waiting + 1 == n {
            let members = self.barriers.remove(name).map_or(Vec::new(), |b| b.members);
            let released = Reply::Barrier(BarrierStatus::Released { generation });
            for (_, c, q) in members {
                self.completions.push((c, q, Ok(released.clone())));
            }
            return Ok(released);
        }
        self.room_for(OVERHEAD + name.len() as u64)?;
        let b = self.barriers.entry(name.to_vec()).or_insert(Barrier {
            n,
            generation,
            members: Vec::new(),
        });
        b.members.push((lease, client, seq));
        Ok(Reply::Barrier(BarrierStatus::Waiting {
            generation,
            arrived: waiting + 1,
            n,
        }))
    }
}

fn num(actual: u64, expected: u64) -> (Vec<u8>, Vec<u8>) {
    (
        actual.to_be_bytes().to_vec(),
        expected.to_be_bytes().to_vec(),
    )
}
