//! The sans-IO consensus core: Raft's structure with Flexible-Paxos quorums, leader leases,
//! batching and pipelining (DESIGN.md §2 items 1–4).
//!
//! A [`Node`] has no clock, socket, thread or random source: the host injects time through
//! [`Node::tick`], messages through [`Node::step`], commands through [`Node::propose`] /
//! [`Node::propose_batch`] / [`Node::propose_conf_change`], reads through [`Node::read`], and drains
//! the results with [`Node::ready`] → [`Ready`] → [`Node::advance`]. Durability is acknowledged with
//! [`Node::persisted`], application with [`Node::applied`], snapshots with [`Node::compact`].
//!
//! The rules live here, the I/O in the host:
//! - elections use an election quorum Q1, commits a replication quorum Q2 (`config::QuorumSizes`,
//!   the one quorum rule; in a joint configuration both voter groups must agree);
//! - an entry commits by counting only if it is from the leader's term (Raft §5.4.2);
//! - leases and ReadIndex need acknowledgements from `N - Q1 + 1` voters, a set that intersects
//!   every election quorum; followers promise not to elect another leader for an election timeout
//!   after hearing from theirs, and the leader's lease lasts that long minus the clock-drift bound;
//! - messages that depend on durable state leave only after the host persisted it.
//!
//! Messages travel as bytes: [`codec`] encodes an [`OutMessage`] straight from the sender's log into
//! a buffer and decodes a received payload into an [`InMessage`] that borrows the buffer.

pub mod codec;
mod config;
mod error;
mod log;
mod membership;
mod message;
mod node;
mod progress;
mod ready;
pub mod ring_permission;
mod types;

pub use config::{NodeConfig, NodeConfigError, MAX_INFLIGHT_APPENDS};
pub use error::{
    CompactError, NodeError, ProposeError, ReadError, ReadMode, StepError, TransferError,
};
pub use log::Log;
pub use membership::{
    Membership, MembershipError, NodeSet, QuorumKind, VoterGroup, MAX_LEARNERS, MAX_MEMBERS,
};
pub use message::{
    Append, AppendResponse, Envelope, InMessage, InstallSnapshot, LogRange, Message, OutMessage,
    TimeoutNow, VoteRequest, VoteResponse,
};
pub use node::{Node, Proposal, Restored, Stats};
pub use progress::{Inflights, Progress, ReplicaState};
pub use ready::{Persist, PersistId, ReadState, Ready};
pub use types::{
    Entry, EntryKind, HardState, LogIndex, NodeId, Role, SnapshotMeta, SoftState, Term,
};
