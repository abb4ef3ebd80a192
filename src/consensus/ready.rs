//! The output contract: what one [`Node::ready`](super::Node::ready) hands the host.
//!
//! Ordering rules the types encode:
//! - [`Ready::messages`] may leave at once: every message that vouches for durable state (a vote
//!   grant, an append acknowledgement, a candidate's vote request) is held inside the node until the
//!   host acknowledges the write it depends on with [`Node::persisted`](super::Node::persisted), and
//!   only then appears in a later `Ready`.
//! - [`Ready::persist`] is one write, acknowledged by its [`PersistId`] in issue order.
//! - [`Ready::committed`] entries are committed and locally durable; apply them in order.
//! - [`Ready::reads`] are safe to answer now from the applied state.

use super::error::ReadError;
use super::log::Log;
use super::message::{Envelope, LogRange};
use super::node::Node;
use super::types::{Entry, HardState, LogIndex, SnapshotMeta, SoftState};

/// Names one write; acknowledge with [`Node::persisted`](super::Node::persisted) once durable (ids are
/// issued in order, and acknowledging one acknowledges all earlier ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PersistId(pub u64);

/// One write the host must make durable, in this order: install `snapshot` (replace the state
/// machine and the log by it; its bytes came with the InstallSnapshot message), drop log entries from
/// `truncate_from` on, append `entries`, store `hard_state`. `fdatasync` when `must_sync` (in
/// `memory` durability mode the host still persists term and vote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persist {
    pub id: PersistId,
    pub snapshot: Option<SnapshotMeta>,
    pub truncate_from: Option<LogIndex>,
    /// Log entries to append (read them through [`Ready::persist_entries`]); empty when `first > last`.
    pub entries: LogRange,
    pub hard_state: Option<HardState>,
    pub must_sync: bool,
}

/// The outcome of a read: the index the applied state has reached for it, or why it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub id: u64,
    pub outcome: Result<LogIndex, ReadError>,
}

/// A borrowed view of everything due; drop it, then call [`Node::advance`](super::Node::advance).
pub struct Ready<'a> {
    node: &'a Node,
}

impl<'a> Ready<'a> {
    pub(crate) fn new(node: &'a Node) -> Self {
        Self { node }
    }

    /// Messages to send now. Encode them with [`codec::encode`](super::codec::encode) against
    /// [`Ready::log`] before the next input to the node.
    pub fn messages(&self) -> &'a [Envelope] {
        self.node.ready_parts().0
    }

    /// The write to make durable, if any.
    pub fn persist(&self) -> Option<&'a Persist> {
        self.node.ready_parts().1
    }

    /// The entries of [`Persist::entries`].
    pub fn persist_entries(&self) -> impl DoubleEndedIterator<Item = &'a Entry> + 'a {
        let range = self
            .persist()
            .map_or(LogRange { first: 1, last: 0 }, |p| p.entries);
        self.log().entries(range.first, range.last)
    }

    /// Committed entries to apply, in order (config entries included: the core already acted on them).
    pub fn committed(&self) -> impl DoubleEndedIterator<Item = &'a Entry> + 'a {
        let range = self.node.ready_parts().2;
        self.log().entries(range.first, range.last)
    }

    /// The range of [`Ready::committed`]; empty when `first > last`.
    pub fn committed_range(&self) -> LogRange {
        self.node.ready_parts().2
    }

    /// Reads that completed (served or failed).
    pub fn reads(&self) -> &'a [ReadState] {
        self.node.ready_parts().3
    }

    /// Role, term or leader, when any of them changed since the last `Ready`.
    pub fn soft_state(&self) -> Option<SoftState> {
        self.node.ready_parts().4
    }

    /// The node's log, to encode messages and read entries.
    pub fn log(&self) -> &'a Log {
        self.node.log()
    }
}
