//! The small value types every part of the core shares: ids, terms, indexes, entries, hard state.

pub use crate::config::NodeId;

/// A Raft term. Terms only grow; `0` is "before any election".
pub type Term = u64;

/// A position in the replicated log. Index `0` is the empty prefix; the first entry is `1`.
pub type LogIndex = u64;

/// What an entry carries. The payload bytes live next to it in [`Entry::payload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A client command for the state machine; the payload is opaque to consensus.
    Normal,
    /// Appended by a new leader so an entry of its own term can commit (Raft §5.4.2, §8).
    Noop,
    /// A membership: the payload is an encoded [`Membership`](super::Membership).
    Config,
}

/// One log entry. The payload buffer is recycled by the log after the entry is compacted or
/// truncated, so appending in steady state does not allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub kind: EntryKind,
    pub payload: Vec<u8>,
}

/// The state that must be durable before any vote or acknowledgement depending on it leaves the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    /// Whom this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
    /// Highest index known committed. Persisting it is an optimisation (faster apply on restart), not
    /// a safety requirement.
    pub commit: LogIndex,
}

/// A node's role in its current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Running a PreVote round: the term is not bumped until a Q1 of voters would grant a vote.
    PreCandidate,
    Candidate,
    Leader,
    /// A non-voting member: receives the log, never votes, never campaigns, never counts.
    Learner,
}

/// Role, term and known leader: reported in [`Ready::soft_state`](super::Ready::soft_state) when any
/// of them changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftState {
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
}

/// Where a snapshot ends: everything up to `index` (of `term`) is in it, with the membership in force
/// at `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: LogIndex,
    pub term: Term,
    pub membership: super::Membership,
}
