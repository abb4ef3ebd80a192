//! What can go wrong: [`StoreError`] is an answer the store gives (it travels in a
//! [`super::Response`] and is cached by sessions like any reply); [`CodecError`] rejects bytes that
//! are not a valid message; [`SnapshotError`] rejects a snapshot that cannot be restored.

use thiserror::Error;

use super::command::{ClientId, LeaseId};

/// A deterministic refusal: every replica gives the same one for the same entry, and the request
/// changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error(
        "revision {requested} is compacted (history starts after revision {compact_revision}): read \
         at a revision >= {compact_revision} or watch from a revision > {compact_revision}"
    )]
    Compacted {
        requested: u64,
        compact_revision: u64,
    },
    #[error("revision {requested} is in the future (current revision is {current}); ask for at most {current}")]
    FutureRevision { requested: u64, current: u64 },
    #[error("key {} does not exist; ignore_value/ignore_lease need an existing key", key.escape_ascii())]
    KeyNotFound { key: Vec<u8> },
    #[error("lease {id:#x} does not exist (never granted, revoked or expired); grant a new lease")]
    LeaseNotFound { id: LeaseId },
    #[error("lease {id:#x} already exists; choose another id or pass 0 to let the store choose")]
    LeaseExists { id: LeaseId },
    #[error("lease {id:#x} was revoked while this request waited; grant a new lease and retry")]
    LeaseRevoked { id: LeaseId },
    #[error(
        "the store holds the maximum of {max} leases; revoke unused leases or raise max_leases"
    )]
    TooManyLeases { max: u32 },
    #[error(
        "no space: this request needs {needed_bytes} bytes, the store uses {used_bytes} of its \
         {quota_bytes}-byte quota; delete keys and compact, or raise max_store_bytes"
    )]
    NoSpace {
        needed_bytes: u64,
        used_bytes: u64,
        quota_bytes: u64,
    },
    #[error(
        "the queue of {} is full ({capacity} waiters); retry later or raise max_lock_waiters",
        name.escape_ascii()
    )]
    QueueFull { name: Vec<u8>, capacity: u32 },
    #[error("lease {lease:#x} is already waiting for {}; wait for that request to complete", name.escape_ascii())]
    AlreadyWaiting { name: Vec<u8>, lease: LeaseId },
    #[error(
        "token {token} does not hold {} (holder token: {holder_token}, 0 = nobody); the lock or \
         leadership was lost, so the holder must stop acting on it",
        name.escape_ascii()
    )]
    NotHolder {
        name: Vec<u8>,
        token: u64,
        holder_token: u64,
    },
    #[error("election {} has no leader", name.escape_ascii())]
    NoLeader { name: Vec<u8> },
    #[error(
        "barrier {} is waiting for {expected} members, this arrival says {got}; every member of a \
         generation must agree on n",
        name.escape_ascii()
    )]
    BarrierSizeMismatch {
        name: Vec<u8>,
        expected: u32,
        got: u32,
    },
    #[error("barrier {} generation {generation} broke: {reason}; start a new generation", name.escape_ascii())]
    BarrierBroken {
        name: Vec<u8>,
        generation: u64,
        reason: BreakReason,
    },
    #[error(
        "counter {} at {value} would overflow adding {delta}; nothing was changed",
        name.escape_ascii()
    )]
    CounterOverflow {
        name: Vec<u8>,
        value: i64,
        delta: i64,
    },
    #[error(
        "session {client_id} no longer knows request {seq} (the session or the response was \
         evicted, or the request was acknowledged): its outcome is unknown; register a new session \
         and check the state before retrying"
    )]
    SessionExpired { client_id: ClientId, seq: u64 },
}

/// Why a barrier generation broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum BreakReason {
    #[error("the lease {lease:#x} of a waiting member expired")]
    LeaseExpired { lease: LeaseId },
    #[error("the lease {lease:#x} of a waiting member was revoked")]
    LeaseRevoked { lease: LeaseId },
}

/// A watch asked for history that compaction already dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "cannot watch from revision {requested}: history up to revision {compact_revision} is \
     compacted; read at revision {compact_revision} or later, then watch from the revision after it"
)]
pub struct Compacted {
    pub requested: u64,
    pub compact_revision: u64,
}

impl From<Compacted> for StoreError {
    fn from(c: Compacted) -> Self {
        StoreError::Compacted {
            requested: c.requested,
            compact_revision: c.compact_revision,
        }
    }
}

/// Bytes that are not a valid message of this codec version. Never a panic: everything a decoder
/// reads is checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("truncated message: {what} needs {need} more bytes, {have} left; the message is damaged or cut short")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error(
        "unsupported store codec version {got} (this build speaks {supported}); run the same Aurora \
         release on clients and servers"
    )]
    UnsupportedVersion { got: u8, supported: u8 },
    #[error("expected a {expected} message, got message kind {got:#04x}; the bytes are not what the caller thinks")]
    WrongMessageKind { expected: &'static str, got: u8 },
    #[error("unknown {what} tag {tag:#04x}; the sender runs a different release or the message is corrupt")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("{what} byte must be 0 or 1, got {got:#04x}; the message is corrupt")]
    InvalidBool { what: &'static str, got: u8 },
    #[error("{count} trailing bytes after a complete message; the length framing is wrong")]
    TrailingBytes { count: usize },
    #[error("{what} is {len} bytes, over the limit of {max}; shorten it or raise the limit")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{what} has {count} entries, over the limit of {max}; split the request or raise the limit"
    )]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("invalid request: {0}")]
    Invalid(#[from] InvalidRequest),
}

/// A request that decodes but breaks a rule that needs no store state to check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidRequest {
    #[error("an empty key is not allowed here; give a key (an empty key is allowed only as the start of a range)")]
    EmptyKey,
    #[error("key {} is written twice in one transaction branch; etcd forbids it, merge the writes", key.escape_ascii())]
    DuplicateKeyInTxn { key: Vec<u8> },
    #[error("{0} must not be 0")]
    Zero(&'static str),
    #[error("ttl_ms {ttl_ms} is outside 1..={max_ttl_ms}")]
    TtlOutOfRange { ttl_ms: u64, max_ttl_ms: u64 },
    #[error("barrier size n = {n} is outside 1..={max}")]
    BarrierSizeOutOfRange { n: u32, max: u32 },
    #[error("ignore_value needs an empty value and ignore_lease needs lease 0")]
    IgnoreWithValue,
    #[error(
        "session header ({client_id}, seq {seq}, acked {acked_seq}) is invalid: in a session seq \
         must be >= 1 and acked_seq < seq; without a session acked_seq must be 0"
    )]
    SessionHeader {
        client_id: ClientId,
        seq: u64,
        acked_seq: u64,
    },
    #[error("{0} must be sent without a session (client_id 0)")]
    NeedsNoSession(&'static str),
    #[error("{0} must be sent within a session (client_id != 0)")]
    NeedsSession(&'static str),
}

/// A snapshot that cannot be restored; the caller keeps whatever store it had.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("snapshot I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a store snapshot (magic {got:02x?}); the file is something else or its start is damaged")]
    BadMagic { got: [u8; 8] },
    #[error("snapshot format version {got} is not supported (this build reads {supported}); restore with the release that wrote it")]
    UnsupportedVersion { got: u32, supported: u32 },
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}; the snapshot is corrupt, fetch it again")]
    Checksum { stored: u32, computed: u32 },
    #[error("snapshot is malformed: {0}; the snapshot is corrupt or from an incompatible writer")]
    Malformed(String),
    #[error("snapshot cached response does not decode: {0}")]
    Codec(#[from] CodecError),
}
