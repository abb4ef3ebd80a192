//! The store: Aurora's replicated state machine (DESIGN.md §6).
//!
//! A revisioned key-value store in the manner of etcd v3 — global revision, per-key create/mod
//! revision and version, range/put/delete/txn, leases, watch history, compaction, a byte quota —
//! plus the coordination primitives HPC jobs need: locks and elections with fencing tokens,
//! barriers, counters, and client sessions that make retried requests apply exactly once.
//!
//! The store is pure and deterministic, at the same layer as the consensus core: it imports no
//! runtime, transport or storage, reads no clock and draws no random number. The server feeds it
//! committed entries in log order and delivers what comes out:
//!
//! - [`Store::apply`] executes one entry (the bytes of a client [`Request`], proposed exactly as
//!   the client sent them; [`codec`] is both the client protocol payload and the log format) and
//!   fills an [`ApplyOutput`]: the response for `(client_id, seq)`, [`Notification`]s for requests
//!   waiting elsewhere and for lease and election changes, and the watch [`Event`]s of the entry.
//! - [`Store::read`] answers a [`ReadRequest`] without the log (leader lease, ReadIndex, stale
//!   reads), [`Store::events_since`] replays watch history, [`Store::leases`] lists leases for a new
//!   leader's deadlines (see [`lease`] for the expiry contract).
//! - [`Store::snapshot`] / [`Store::restore`] serialize the whole state with a checksum.

mod barrier;
pub mod codec;
mod command;
mod counter;
mod error;
mod kv;
pub mod lease;
mod limits;
mod machine;
mod output;
mod queue;
mod session;
mod snapshot;

pub use command::{
    Acquire, BarrierStatus, ClientId, Command, Compare, CompareOp, CompareTarget, DeleteRangeReply,
    DeleteRangeRequest, Event, EventKind, KeyRange, KeyValue, LeaderInfo, LeaseId, LeaseInfo,
    OpReply, PutReply, PutRequest, RangeReply, RangeRequest, ReadRequest, Reply, Request, Response,
    RevokeReason, SessionHeader, TxnOp, TxnReply, TxnRequest, NO_LEASE, NO_SESSION,
};
pub use error::{BreakReason, CodecError, Compacted, InvalidRequest, SnapshotError, StoreError};
pub use limits::{cost, LimitsError, StoreLimits};
pub use machine::Store;
pub use output::{Addressed, ApplyOutput, Notification};
pub use snapshot::SNAPSHOT_FORMAT_VERSION;

#[cfg(test)]
mod tests;
