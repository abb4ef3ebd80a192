//! The messages consensus peers exchange. The core emits [`OutMessage`]s whose entries are a range of
//! the sender's log (the host encodes them straight from the log with [`codec`](super::codec), no
//! copy into the message), and steps [`InMessage`]s whose entries are a validated view into the
//! receive buffer.

use super::codec::EntriesView;
use super::types::{LogIndex, NodeId, SnapshotMeta, Term};

/// A message with entries of type `E`.
///
/// InstallSnapshot carries a membership inline and makes the enum large; boxing it would allocate
/// per message, and envelopes live in a reused buffer, so the size is accepted.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<E> {
    Append(Append<E>),
    AppendResponse(AppendResponse),
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    InstallSnapshot(InstallSnapshot),
    TimeoutNow(TimeoutNow),
}

/// What the core sends: entries are a range of its own log.
pub type OutMessage = Message<LogRange>;

/// What the core receives: entries are a view into the received frame.
pub type InMessage<'a> = Message<EntriesView<'a>>;

impl<E> Message<E> {
    /// The sender's term (for a PreVote request: the term the candidate would campaign in).
    pub fn term(&self) -> Term {
        match self {
            Message::Append(m) => m.term,
            Message::AppendResponse(m) => m.term,
            Message::Vote(m) => m.term,
            Message::VoteResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::TimeoutNow(m) => m.term,
        }
    }
}

/// Entries `first..=last` of the sender's log; empty when `first > last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    pub first: LogIndex,
    pub last: LogIndex,
}

impl LogRange {
    pub fn len(&self) -> u64 {
        (self.last + 1).saturating_sub(self.first)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// AppendEntries; with no entries it is the heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append<E> {
    pub term: Term,
    pub prev_index: LogIndex,
    pub prev_term: Term,
    /// The leader's commit index.
    pub commit: LogIndex,
    /// The leader's clock when it sent this; echoed in the response to time the leader lease.
    pub ctx_ns: u64,
    /// The leader's send sequence number, strictly increasing within its term; echoed in the response
    /// so ReadIndex counts only acknowledgements of appends sent after the read arrived.
    pub seq: u64,
    pub entries: E,
}

/// The answer to [`Append`] and [`InstallSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResponse {
    pub term: Term,
    /// On success: the follower's log matches the leader's up to here. On rejection: the
    /// `prev_index` that did not match.
    pub index: LogIndex,
    pub reject: bool,
    /// On rejection: the follower's guess of the last index that could match (Raft §5.3
    /// optimisation, as in etcd's `findConflictByTerm`) and its term there.
    pub hint_index: LogIndex,
    pub hint_term: Term,
    /// Echo of the request's `ctx_ns` and `seq`.
    pub ctx_ns: u64,
    pub seq: u64,
}

/// RequestVote, or a PreVote probe when `pre_vote` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteRequest {
    pub term: Term,
    pub last_index: LogIndex,
    pub last_term: Term,
    pub pre_vote: bool,
    /// Sent after [`TimeoutNow`]: voters grant it even while they still hear from a leader.
    pub transfer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteResponse {
    pub term: Term,
    pub pre_vote: bool,
    pub granted: bool,
}

/// Tells a follower to replace its log by the leader's snapshot. The host attaches the snapshot
/// bytes when encoding (see [`codec::encode`](super::codec::encode)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallSnapshot {
    pub term: Term,
    pub meta: SnapshotMeta,
    pub ctx_ns: u64,
    pub seq: u64,
}

/// Leader transfer: "campaign now" (Raft §3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutNow {
    pub term: Term,
}

/// An outgoing message and its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub to: NodeId,
    pub message: OutMessage,
}
