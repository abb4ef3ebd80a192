//! Who votes, who only learns, and how big each quorum is — including the joint configuration
//! (C_old,new) of a membership change, where every decision needs a quorum of both voter groups.
//!
//! Fixed-capacity sets (no heap): a membership is `Copy` and small enough to live in every snapshot
//! meta and config entry.

use thiserror::Error;

use super::types::NodeId;
use crate::config::{QuorumError, QuorumSizes, MAX_VOTERS};

/// Most learners a membership may hold.
pub const MAX_LEARNERS: usize = 8;

/// Most distinct members across a joint configuration: both voter groups plus learners.
pub const MAX_MEMBERS: usize = 2 * MAX_VOTERS + MAX_LEARNERS;

/// A set of node ids with a fixed capacity, in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSet<const CAP: usize> {
    ids: [NodeId; CAP],
    len: u8,
}

impl<const CAP: usize> NodeSet<CAP> {
    pub const fn new() -> Self {
        Self {
            ids: [0; CAP],
            len: 0,
        }
    }

    /// Builds a set from `ids`; duplicates and overflow are errors.
    pub fn from_ids(ids: &[NodeId]) -> Result<Self, MembershipError> {
        let mut set = Self::new();
        for &id in ids {
            set.insert(id)?;
        }
        Ok(set)
    }

    /// Adds `id`; fails on a duplicate or when the set is full.
    pub fn insert(&mut self, id: NodeId) -> Result<(), MembershipError> {
        if self.contains(id) {
            return Err(MembershipError::Duplicate(id));
        }
        if self.len() == CAP {
            return Err(MembershipError::TooMany { capacity: CAP });
        }
        self.ids[self.len()] = id;
        self.len += 1;
        Ok(())
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.as_slice().contains(&id)
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[NodeId] {
        &self.ids[..self.len()]
    }

    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.as_slice().iter().copied()
    }
}

impl<const CAP: usize> Default for NodeSet<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

/// The voters of one configuration and their quorum sizes (the one quorum rule: [`QuorumSizes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterGroup {
    voters: NodeSet<MAX_VOTERS>,
    quorums: QuorumSizes,
}

impl VoterGroup {
    /// Voters `ids` with election quorum `election` (Q1) and replication quorum `replication` (Q2).
    pub fn new(
        ids: &[NodeId],
        election: usize,
        replication: usize,
    ) -> Result<Self, MembershipError> {
        if ids.len() > MAX_VOTERS {
            return Err(MembershipError::TooMany {
                capacity: MAX_VOTERS,
            });
        }
        let voters = NodeSet::from_ids(ids)?;
        let quorums = QuorumSizes::new(voters.len(), election, replication)?;
        Ok(Self { voters, quorums })
    }

    /// Voters `ids` with majority quorums.
    pub fn majority(ids: &[NodeId]) -> Result<Self, MembershipError> {
        let majority = ids.len() / 2 + 1;
        Self::new(ids, majority, majority)
    }

    pub fn voters(&self) -> &NodeSet<MAX_VOTERS> {
        &self.voters
    }

    pub fn quorums(&self) -> QuorumSizes {
        self.quorums
    }

    /// Whether the voters for which `yes` holds reach `need` of this group.
    fn count(&self, need: usize, mut yes: impl FnMut(NodeId) -> bool) -> bool {
        self.voters.iter().filter(|&id| yes(id)).count() >= need
    }

    /// The highest index that at least `need` voters have reached, given each voter's `matched` index.
    fn kth_highest(&self, need: usize, mut matched: impl FnMut(NodeId) -> u64) -> u64 {
        debug_assert!(need >= 1 && need <= self.voters.len());
        let mut values = [0u64; MAX_VOTERS];
        for (slot, id) in values.iter_mut().zip(self.voters.iter()) {
            *slot = matched(id);
        }
        let values = &mut values[..self.voters.len()];
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[need - 1]
    }
}

/// Which quorum a decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumKind {
    /// Q1: votes to win an election (and PreVote grants).
    Election,
    /// Q2: replicas (leader included) for an entry to commit.
    Replication,
    /// `N - Q1 + 1`: promises that intersect every election quorum (leases, ReadIndex).
    Lease,
}

impl QuorumKind {
    fn size(self, group: &VoterGroup) -> usize {
        let q = group.quorums;
        match self {
            QuorumKind::Election => q.election(),
            QuorumKind::Replication => {
                if crate::mutant!(WeakQuorums) {
                    // Mutant: counts one replica short, so Q1 + Q2 <= N in effect.
                    q.replication().saturating_sub(1).max(1)
                } else {
                    q.replication()
                }
            }
            QuorumKind::Lease => q.lease(),
        }
    }
}

/// The cluster membership: one voter group, or two during a joint-consensus change, plus learners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    incoming: VoterGroup,
    outgoing: Option<VoterGroup>,
    learners: NodeSet<MAX_LEARNERS>,
}

impl Membership {
    /// A simple (non-joint) membership; a node may not be both voter and learner.
    pub fn new(voters: VoterGroup, learners: &[NodeId]) -> Result<Self, MembershipError> {
        let learners = NodeSet::from_ids(learners)?;
        let m = Self {
            incoming: voters,
            outgoing: None,
            learners,
        };
        m.validate()?;
        Ok(m)
    }

    /// A learner may not be an incoming voter. During a joint change it may still be an outgoing
    /// voter: a voter being demoted keeps voting until C_new.
    fn validate(&self) -> Result<(), MembershipError> {
        for id in self.learners.iter() {
            if self.incoming.voters.contains(id) {
                return Err(MembershipError::VoterAndLearner(id));
            }
        }
        Ok(())
    }

    /// The joint configuration C_old,new for moving from `self` (must not be joint) to `target`.
    /// Learners come from `target`, except that a leaving voter is not silently demoted.
    pub fn joint_with(&self, target: &Membership) -> Result<Self, MembershipError> {
        if self.outgoing.is_some() {
            return Err(MembershipError::AlreadyJoint);
        }
        if target.outgoing.is_some() {
            return Err(MembershipError::TargetJoint);
        }
        let m = Self {
            incoming: target.incoming,
            outgoing: Some(self.incoming),
            learners: target.learners,
        };
        m.validate()?;
        Ok(m)
    }

    /// The final configuration C_new after a joint configuration committed.
    pub fn leave_joint(&self) -> Self {
        Self {
            incoming: self.incoming,
            outgoing: None,
            learners: self.learners,
        }
    }

    pub fn is_joint(&self) -> bool {
        self.outgoing.is_some()
    }

    pub fn incoming(&self) -> &VoterGroup {
        &self.incoming
    }

    pub fn outgoing(&self) -> Option<&VoterGroup> {
        self.outgoing.as_ref()
    }

    pub fn learners(&self) -> &NodeSet<MAX_LEARNERS> {
        &self.learners
    }

    /// Whether `id` votes in either voter group.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.incoming.voters.contains(id) || self.outgoing.is_some_and(|g| g.voters.contains(id))
    }

    /// Whether `id` only learns (a demoted voter counts as a voter until the joint change ends).
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(id) && !self.is_voter(id)
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member once: incoming voters, then outgoing-only voters, then learners.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        let out = self
            .outgoing
            .iter()
            .flat_map(|g| g.voters.iter())
            .filter(|&id| !self.incoming.voters.contains(id));
        self.incoming
            .voters
            .iter()
            .chain(out)
            .chain(self.learners.iter())
    }

    /// Whether the nodes for which `yes` holds form a quorum of `kind` in every voter group.
    pub fn has_quorum(&self, kind: QuorumKind, mut yes: impl FnMut(NodeId) -> bool) -> bool {
        let incoming = self.incoming.count(kind.size(&self.incoming), &mut yes);
        incoming
            && self
                .outgoing
                .as_ref()
                .is_none_or(|g| g.count(kind.size(g), &mut yes))
    }

    /// Whether the nodes for which `no` holds make a quorum of `kind` impossible in some group.
    pub fn quorum_impossible(&self, kind: QuorumKind, mut no: impl FnMut(NodeId) -> bool) -> bool {
        let lost = |g: &VoterGroup, no: &mut dyn FnMut(NodeId) -> bool| {
            let against = g.voters.iter().filter(|&id| no(id)).count();
            g.voters.len() - against < kind.size(g)
        };
        lost(&self.incoming, &mut no) || self.outgoing.as_ref().is_some_and(|g| lost(g, &mut no))
    }

    /// The highest value that a quorum of `kind` in every group has reached, given each voter's value
    /// (the commit index from match indexes; the lease start from ack times).
    pub fn quorum_value(&self, kind: QuorumKind, mut value: impl FnMut(NodeId) -> u64) -> u64 {
        let incoming = self
            .incoming
            .kth_highest(kind.size(&self.incoming), &mut value);
        match &self.outgoing {
            Some(g) => incoming.min(g.kth_highest(kind.size(g), &mut value)),
            None => incoming,
        }
    }

    /// Bytes [`Membership::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let group = |g: &VoterGroup| 3 + 8 * g.voters.len();
        group(&self.incoming)
            + 1
            + self.outgoing.as_ref().map_or(0, group)
            + 1
            + 8 * self.learners.len()
    }

    /// Appends the encoding to `out` (see [`Membership::encode_into`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + self.encoded_len(), 0);
        let written = self.encode_into(&mut out[at..]);
        debug_assert_eq!(written, Some(self.encoded_len()));
    }

    /// Writes the encoding into `out`, returning the bytes written, or `None` if `out` is too short:
    /// `group, has_outgoing u8, [group], learners u8, ids u64 LE..`, where a group is
    /// `count u8, ids u64 LE.., election u8, replication u8`.
    pub fn encode_into(&self, out: &mut [u8]) -> Option<usize> {
        if out.len() < self.encoded_len() {
            return None;
        }
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        let group = |g: &VoterGroup, put: &mut dyn FnMut(&[u8])| {
            put(&[g.voters.len() as u8]);
            for id in g.voters.iter() {
                put(&id.to_le_bytes());
            }
            put(&[g.quorums.election() as u8, g.quorums.replication() as u8]);
        };
        group(&self.incoming, &mut put);
        match &self.outgoing {
            Some(g) => {
                put(&[1]);
                group(g, &mut put);
            }
            None => put(&[0]),
        }
        put(&[self.learners.len() as u8]);
        for id in self.learners.iter() {
            put(&id.to_le_bytes());
        }
        Some(at)
    }

    /// Decodes what [`Membership::encode`] wrote, validating every field; returns the membership and the
    /// bytes consumed.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), MembershipError> {
        let mut r = Reader { bytes, at: 0 };
        fn ids<const CAP: usize>(
            r: &mut Reader<'_>,
            count: usize,
        ) -> Result<NodeSet<CAP>, MembershipError> {
            if count > CAP {
                return Err(MembershipError::TooMany { capacity: CAP });
            }
            let mut set = NodeSet::new();
            for _ in 0..count {
                set.insert(r.u64()?)?;
            }
            Ok(set)
        }
        fn group(r: &mut Reader<'_>) -> Result<VoterGroup, MembershipError> {
            let count = usize::from(r.u8()?);
            let voters: NodeSet<MAX_VOTERS> = ids(r, count)?;
            let election = usize::from(r.u8()?);
            let replication = usize::from(r.u8()?);
            let quorums = QuorumSizes::new(voters.len(), election, replication)?;
            Ok(VoterGroup { voters, quorums })
        }
        let incoming = group(&mut r)?;
        let outgoing = match r.u8()? {
            0 => None,
            1 => Some(group(&mut r)?),
            other => {
                return Err(MembershipError::Malformed(
                    "outgoing flag is neither 0 nor 1",
                    u64::from(other),
                ))
            }
        };
        let count = usize::from(r.u8()?);
        let learners = ids(&mut r, count)?;
        let m = Self {
            incoming,
            outgoing,
            learners,
        };
        m.validate()?;
        Ok((m, r.at))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MembershipError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(MembershipError::Truncated {
            need: self.at + n,
            len: self.bytes.len(),
        })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, MembershipError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, MembershipError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().expect("take(8) returns 8 bytes"),
        ))
    }
}

/// Why a membership was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MembershipError {
    #[error("node {0} is listed twice; list every member once")]
    Duplicate(NodeId),
    #[error("more than {capacity} nodes in one set; remove some")]
    TooMany { capacity: usize },
    #[error("node {0} is both a voter and a learner; make it one or the other")]
    VoterAndLearner(NodeId),
    #[error(
        "a membership change is already in progress (joint configuration); wait for it to finish"
    )]
    AlreadyJoint,
    #[error("the target membership is itself joint; give a simple voter set")]
    TargetJoint,
    #[error("invalid quorum sizes: {0}")]
    Quorum(#[from] QuorumError),
    #[error("membership encoding truncated: needs {need} bytes, has {len}")]
    Truncated { need: usize, len: usize },
    #[error("malformed membership encoding: {0} (got {1})")]
    Malformed(&'static str, u64),
}
