//! Leases: the store's half of etcd's lease contract.
//!
//! The store keeps each lease's id, granted TTL and everything the lease owns (keys, lock and
//! election queue entries, barrier memberships). It keeps **no clock and no deadline**: expiry is
//! decided by the leader, so replicas never disagree about it. The server's half:
//!
//! - On becoming leader, give every lease in [`super::Store::leases`] a deadline of a full TTL from
//!   now (etcd's rule: a new leader cannot know how much time the old one had left, and must not
//!   expire a lease early). Track grants and revocations through
//!   [`super::Notification::LeaseGranted`] / [`super::Notification::LeaseRevoked`].
//! - Keep-alives are answered by the leader without the log: check the lease with
//!   [`super::Store::read`] of [`super::ReadRequest::LeaseKeepAlive`] (an unknown or expired lease is
//!   rejected with [`super::StoreError::LeaseNotFound`]), then reset the deadline to the returned
//!   `ttl_ms` from now. A leader may only do this while it is sure it is leader (its leader lease).
//! - When a deadline passes, propose [`super::Command::LeaseRevoke`] with
//!   [`super::RevokeReason::Expired`], sessionless. Revoking twice is harmless: the second gets
//!   `LeaseNotFound`.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{LeaseId, LeaseInfo};

/// What one lease owns. Each set holds names (keys, or lock / election / barrier names); a lease
/// has at most one entry per lock or election queue, and may arrive at a barrier more than once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Lease {
    pub ttl_ms: u64,
    pub keys: BTreeSet<Vec<u8>>,
    pub locks: BTreeSet<Vec<u8>>,
    pub elections: BTreeSet<Vec<u8>>,
    pub barriers: BTreeSet<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Leases {
    map: BTreeMap<LeaseId, Lease>,
}

impl Leases {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, id: LeaseId) -> Option<&Lease> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: LeaseId) -> Option<&mut Lease> {
        self.map.get_mut(&id)
    }

    pub fn contains(&self, id: LeaseId) -> bool {
        self.map.contains_key(&id)
    }

    /// The id for a grant that named none: the entry's index, or the next free id after it (a
    /// client may have chosen that number). Deterministic, and found within `len() + 1` probes.
    pub fn free_id(&self, index: u64) -> LeaseId {
        let mut id = index.max(1);
        while self.map.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(1);
        }
        id
    }

    pub fn grant(&mut self, id: LeaseId, ttl_ms: u64) {
        let fresh = self.map.insert(
            id,
            Lease {
                ttl_ms,
                ..Lease::default()
            },
        );
        assert!(fresh.is_none(), "lease {id:#x} granted twice");
    }

    pub fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        self.map.remove(&id)
    }

    pub fn infos(&self) -> impl Iterator<Item = LeaseInfo> + '_ {
        self.map.iter().map(|(&id, lease)| LeaseInfo {
            id,
            ttl_ms: lease.ttl_ms,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (LeaseId, &Lease)> {
        self.map.iter().map(|(&id, lease)| (id, lease))
    }
}
