//! What the core answers when an input cannot be accepted. Every refusal leaves the node unchanged.

use thiserror::Error;

use super::config::NodeConfigError;
use super::membership::MembershipError;
use super::types::{LogIndex, NodeId, Term};

/// Why a proposal (or membership change) was refused; nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposeError {
    #[error("not the leader; send the request to node {leader}")]
    NotLeader { leader: NodeId },
    #[error("no leader is known right now (election in progress); retry after a short back-off")]
    NoLeader,
    #[error("leadership is being transferred to node {to}; retry on the new leader")]
    TransferInProgress { to: NodeId },
    #[error(
        "{uncommitted} entries are waiting to commit (limit {limit}); retry when commits catch up"
    )]
    Busy { uncommitted: u64, limit: usize },
    #[error(
        "the in-memory log holds {len} entries (limit {limit}) of {bytes} payload bytes (limit \
         {limit_bytes}); the host must snapshot and compact"
    )]
    LogFull {
        len: usize,
        limit: usize,
        bytes: usize,
        limit_bytes: usize,
    },
    #[error("entry of {len_bytes} bytes exceeds max_entry_bytes {max_bytes}; split it")]
    TooLarge { len_bytes: usize, max_bytes: usize },
    #[error("empty batch: propose at least one entry")]
    Empty,
    #[error("a membership change is still in progress (config entry at {index} not finished); wait for it")]
    ChangeInProgress { index: LogIndex },
    #[error("invalid membership: {0}")]
    Membership(#[from] MembershipError),
}

/// How a linearizable or stale read is to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Leader only: served without a round trip while the leader lease holds, else falls back to
    /// ReadIndex.
    Lease,
    /// Leader only: confirm leadership with a heartbeat round to a lease quorum, then wait for apply.
    ReadIndex,
    /// Any node: the local applied state, possibly stale.
    Stale,
}

/// Why a read was refused (at the call) or failed (reported later in `Ready::reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("not the leader; send the read to node {leader}")]
    NotLeader { leader: NodeId },
    #[error("no leader is known right now; retry after a short back-off")]
    NoLeader,
    #[error("{pending} reads are pending (limit {limit}); retry shortly")]
    Busy { pending: usize, limit: usize },
    #[error(
        "leadership was lost in term {term} before the read was confirmed; retry on the new leader"
    )]
    LeadershipLost { term: Term },
}

/// Why a leader transfer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransferError {
    #[error("not the leader; ask node {leader}")]
    NotLeader { leader: NodeId },
    #[error("no leader is known right now; retry later")]
    NoLeader,
    #[error("node {0} is not a voter of the current configuration; only voters can lead")]
    NotVoter(NodeId),
    #[error("a transfer to node {to} is already in progress")]
    InProgress { to: NodeId },
}

/// Why a received message was rejected without changing the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StepError {
    #[error(
        "node {from} claims leadership of term {term}, which this node leads; protocol violation"
    )]
    TwoLeaders { from: NodeId, term: Term },
    #[error("message from node {from} is from this node itself; routing error")]
    FromSelf { from: NodeId },
}

/// Why a snapshot point was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CompactError {
    #[error("index {index} is not applied yet (applied {applied}); snapshot only applied state")]
    NotApplied { index: LogIndex, applied: LogIndex },
    #[error("index {index} is already compacted (log starts after {snapshot})")]
    Compacted { index: LogIndex, snapshot: LogIndex },
}

/// Why a node could not be built from its configuration and restored state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeError {
    #[error("invalid consensus config: {0}")]
    Config(#[from] NodeConfigError),
    #[error("restored log: {0}")]
    Restore(&'static str),
    #[error("restored log: entry {index} is out of place (expected {expected})")]
    RestoreGap { index: LogIndex, expected: LogIndex },
}
