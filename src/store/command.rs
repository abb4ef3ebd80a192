//! Requests and responses: what a client asks the store and what it answers.
//!
//! These types are the client protocol and the log format at once (see [`super::codec`] for the
//! bytes). A [`Request`] is either a [`Command::Read`], which [`super::Store::read`] can serve
//! without the log, or a write that only [`super::Store::apply`] may execute.
//!
//! Conventions follow etcd's v3 API where this module is silent: revisions start at 1, a key range
//! is `[key, range_end)` with an empty `range_end` meaning "just `key`" and `range_end == [0]`
//! meaning "every key from `key` on", a lease id of [`NO_LEASE`] means "no lease".

use super::error::StoreError;

/// A lease's identity; [`NO_LEASE`] (0) means "not attached to a lease".
pub type LeaseId = u64;
/// A client session's identity, assigned by [`Command::RegisterSession`]; 0 means "no session".
pub type ClientId = u64;
/// The lease id that means "none".
pub const NO_LEASE: LeaseId = 0;
/// The client id that means "no session": such requests are not deduplicated.
pub const NO_SESSION: ClientId = 0;

/// The exactly-once header every request carries (Raft thesis §6.3).
///
/// `client_id` is [`NO_SESSION`] for requests outside a session (server-internal commands such as
/// lease expiry and auto-compaction, [`Command::RegisterSession`] itself, and clients that accept
/// at-least-once). Within a session `seq` numbers the client's requests from 1 upward (gaps and
/// out-of-order arrival are fine); `acked_seq` tells the store that the client holds the final
/// response of every request with a sequence number `<= acked_seq`, so the store may forget them.
/// A client must not ack a request that is still waiting (a queued lock, a barrier arrival) before
/// it has received that request's completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionHeader {
    pub client_id: ClientId,
    pub seq: u64,
    pub acked_seq: u64,
}

impl SessionHeader {
    /// A sessionless header carrying `seq` only as the caller's correlation number.
    pub const fn none(seq: u64) -> Self {
        Self {
            client_id: NO_SESSION,
            seq,
            acked_seq: 0,
        }
    }
}

/// One client request: the unit a client sends and the server proposes into the log unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub session: SessionHeader,
    pub command: Command,
}

/// Everything the store can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A read; servable by [`super::Store::read`] without the log, or through the log for the
    /// simplest linearizable read. Reads through the log are not cached by sessions: a retried
    /// read simply reads again.
    Read(ReadRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    /// Forgets every key revision older than `revision` and the watch history up to it. The
    /// revision counter itself is not bumped (etcd's rule).
    Compact {
        revision: u64,
    },
    /// Grants a lease of `ttl_ms`; `id` is [`NO_LEASE`] to let the store choose one.
    LeaseGrant {
        id: LeaseId,
        ttl_ms: u64,
    },
    /// Revokes a lease: its keys vanish (one revision), its locks and election candidacies are
    /// released, the barriers it waits in break. The server proposes this with
    /// [`RevokeReason::Expired`] when the lease's deadline passes on the leader.
    LeaseRevoke {
        id: LeaseId,
        reason: RevokeReason,
    },
    /// Acquires lock `name` for `lease` (granted now, or queued until the holder lets go).
    Lock {
        name: Vec<u8>,
        lease: LeaseId,
    },
    /// Releases lock `name` held under fencing `token`.
    Unlock {
        name: Vec<u8>,
        token: u64,
    },
    /// Runs for leader of election `name` with `value` (etcd's concurrency.Election).
    Campaign {
        name: Vec<u8>,
        lease: LeaseId,
        value: Vec<u8>,
    },
    /// The current leader (identified by its `token`) publishes a new value.
    Proclaim {
        name: Vec<u8>,
        token: u64,
        value: Vec<u8>,
    },
    /// The current leader (identified by its `token`) steps down.
    Resign {
        name: Vec<u8>,
        token: u64,
    },
    /// Arrives at barrier `name` of `n` members, as a member held alive by `lease`.
    Arrive {
        name: Vec<u8>,
        n: u32,
        lease: LeaseId,
    },
    /// Adds `delta` to counter `name` (a missing counter is 0) and returns the previous value.
    FetchAdd {
        name: Vec<u8>,
        delta: i64,
    },
    /// Opens a session; must be sent without one. The new client id is the entry's log index.
    RegisterSession,
    /// Closes the request's session and forgets its cached responses.
    CloseSession,
}

/// A request that does not change the store, answerable by [`super::Store::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRequest {
    Range(RangeRequest),
    /// Checks that a lease is alive, for the leader's keep-alive path (see [`super::lease`]).
    LeaseKeepAlive {
        id: LeaseId,
    },
    /// A lease's granted TTL and, with `keys`, the keys attached to it.
    LeaseTimeToLive {
        id: LeaseId,
        keys: bool,
    },
    /// Every live lease.
    Leases,
    /// The current leader of election `name`.
    Leader {
        name: Vec<u8>,
    },
    /// The value of counter `name` (0 if never added to).
    Counter {
        name: Vec<u8>,
    },
}

/// A half-open key interval in etcd's encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRange {
    pub key: Vec<u8>,
    /// Empty: the single key `key`. `[0]`: every key `>= key`. Otherwise: `[key, range_end)`.
    pub range_end: Vec<u8>,
}

impl KeyRange {
    /// Exactly `key`.
    pub fn single(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            range_end: Vec::new(),
        }
    }

    /// Every key that starts with `prefix` (every key at all for an empty prefix).
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        let key = prefix.into();
        let mut range_end = key.clone();
        while let Some(last) = range_end.pop() {
            if last < u8::MAX {
                range_end.push(last + 1);
                return Self { key, range_end };
            }
        }
        Self {
            key,
            range_end: vec![0],
        }
    }

    /// Every key `>= key`.
    pub fn from_key(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            range_end: vec![0],
        }
    }

    /// Every key.
    pub fn all() -> Self {
        Self::from_key(Vec::new())
    }

    /// Whether `candidate` lies in this range.
    pub fn contains(&self, candidate: &[u8]) -> bool {
        if self.range_end.is_empty() {
            return candidate == self.key.as_slice();
        }
        candidate >= self.key.as_slice() && self.end_bound().is_none_or(|end| candidate < end)
    }

    /// Whether this range names exactly one key.
    pub fn is_single(&self) -> bool {
        self.range_end.is_empty()
    }

    /// The exclusive upper bound, or `None` when the range is unbounded above. Only meaningful for
    /// ranges that are not [`KeyRange::is_single`].
    pub fn end_bound(&self) -> Option<&[u8]> {
        if self.range_end.as_slice() == [0] {
            None
        } else {
            Some(&self.range_end)
        }
    }

    /// Whether no key can lie in the range (`range_end <= key`).
    pub fn is_empty(&self) -> bool {
        !self.is_single()
            && self
                .end_bound()
                .is_some_and(|end| end <= self.key.as_slice())
    }
}

/// Reads keys in a range, at the latest revision or a past one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    pub range: KeyRange,
    /// 0 for the latest revision; otherwise a revision `>= compact_revision` and `<=` the current.
    pub revision: u64,
    /// At most this many key-values in the reply; 0 for no limit. `count` still counts them all.
    pub limit: u64,
    /// Omit values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
}

impl RangeRequest {
    /// The latest value of every key in `range`.
    pub fn latest(range: KeyRange) -> Self {
        Self {
            range,
            revision: 0,
            limit: 0,
            keys_only: false,
            count_only: false,
        }
    }
}

/// Writes one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRequest {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Attach the key to this lease ([`NO_LEASE`] detaches it).
    pub lease: LeaseId,
    /// Return the key-value this put replaced.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist; `value` must be empty).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist; `lease` must be [`NO_LEASE`]).
    pub ignore_lease: bool,
}

impl PutRequest {
    /// A plain put of `value` at `key`, with no lease.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            lease: NO_LEASE,
            prev_kv: false,
            ignore_value: false,
            ignore_lease: false,
        }
    }
}

/// Deletes every key in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    pub range: KeyRange,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

/// A mini-transaction: if every compare holds, run `success`, else `failure`; all writes share one
/// revision. Compares see the state before the transaction; each op sees the ops before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// One condition of a transaction on a single key. A missing key has version, create and mod
/// revision 0 and lease [`NO_LEASE`]; a compare on the value of a missing key is false (etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: Vec<u8>,
    pub op: CompareOp,
    pub target: CompareTarget,
}

/// The relation a [`Compare`] checks: `actual op expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// What a [`Compare`] looks at, with the expected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    Value(Vec<u8>),
    Version(u64),
    CreateRevision(u64),
    ModRevision(u64),
    Lease(LeaseId),
}

/// One operation inside a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
}

/// Why a lease is revoked; it decides the reason barriers report when they break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// A client asked.
    Revoked,
    /// The leader saw the lease's deadline pass without a keep-alive.
    Expired,
}

/// The store's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The store's revision after the request (for a read at a past revision: still the current).
    pub revision: u64,
    pub result: Result<Reply, StoreError>,
}

/// A successful answer, one variant per kind of request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Range(RangeReply),
    Put(PutReply),
    DeleteRange(DeleteRangeReply),
    Txn(TxnReply),
    /// The compaction happened; the new compact revision is the request's.
    Compacted,
    LeaseGranted {
        id: LeaseId,
        ttl_ms: u64,
    },
    LeaseRevoked {
        keys_deleted: u64,
    },
    /// The lease is alive: the leader may reset its deadline to `ttl_ms` from now.
    LeaseAlive {
        id: LeaseId,
        ttl_ms: u64,
    },
    LeaseTimeToLive {
        id: LeaseId,
        /// The granted TTL; the remaining time is known only to the leader, which fills it in.
        ttl_ms: u64,
        keys: Vec<Vec<u8>>,
    },
    Leases(Vec<LeaseInfo>),
    Lock(Acquire),
    Unlocked,
    Campaign(Acquire),
    Proclaimed,
    Resigned,
    Leader(LeaderInfo),
    Barrier(BarrierStatus),
    /// Counter value before the add.
    FetchAdd {
        previous: i64,
    },
    Counter {
        value: i64,
    },
    SessionRegistered {
        client_id: ClientId,
    },
    SessionClosed,
}

/// Key-values read from a range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeReply {
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` allowed.
    pub more: bool,
    /// How many keys matched, regardless of `limit`.
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutReply {
    pub prev_kv: Option<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRangeReply {
    pub deleted: u64,
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnReply {
    /// Whether the compares held (and `success` ran).
    pub succeeded: bool,
    /// One reply per op of the branch that ran, in order.
    pub replies: Vec<OpReply>,
}

/// The reply to one [`TxnOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpReply {
    Range(RangeReply),
    Put(PutReply),
    DeleteRange(DeleteRangeReply),
}

/// A key's value at some revision, with its MVCC metadata (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Revision of the put that created the key (since its last deletion).
    pub create_revision: u64,
    /// Revision of the last change.
    pub mod_revision: u64,
    /// Number of puts since creation (1 for a new key; 0 for a deleted one in a delete event).
    pub version: u64,
    pub lease: LeaseId,
}

/// A live lease as the store knows it: identity and granted TTL. Deadlines are the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseInfo {
    pub id: LeaseId,
    pub ttl_ms: u64,
}

/// The outcome of a lock request or a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acquire {
    /// Held now; `token` is the fencing token: the revision of the grant, strictly increasing per
    /// name, to be checked by whatever the lock protects.
    Granted { token: u64 },
    /// Queued behind `ahead` others; the grant arrives as a [`super::Notification::Completed`]
    /// for this request's `(client_id, seq)`.
    Queued { ahead: u32 },
}

/// The leader of an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    pub lease: LeaseId,
    /// The revision at which this candidate became leader.
    pub token: u64,
    pub value: Vec<u8>,
}

/// Where a barrier arrival stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarrierStatus {
    /// `arrived` of `n` members (this one included) are in; the release arrives as a
    /// [`super::Notification::Completed`] for this request's `(client_id, seq)`.
    Waiting {
        generation: u64,
        arrived: u32,
        n: u32,
    },
    /// All `n` arrived: the generation is complete and the barrier is reset.
    Released { generation: u64 },
}

/// A change to one key, as watchers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The key after the change; for a delete only `key` and `mod_revision` (the deletion's
    /// revision) are set, as in etcd.
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision of the change.
    pub fn revision(&self) -> u64 {
        self.kv.mod_revision
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}
