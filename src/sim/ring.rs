//! The one-sided channel of DESIGN.md §2.5 in the simulator: a follower's registered log ring, the
//! grants that open it to one leader for one term, and the leader's side that writes into it.
//!
//! Every host runs the daemon's permission rule ([`RingPermission`]) after every step and keeps the
//! registration the rule asks for (a fresh rkey per grant, like the transport's re-registration in
//! `transport/rdma/ring.rs`). In the seeds where [`Scenario::one_sided`](super::Scenario) is on:
//!
//! - a grant travels to its holder as a message over the faulty network;
//! - a leader that holds a usable grant of a follower for an Append's term writes that Append into
//!   the follower's ring instead of sending it; the write lands only if, at landing time, the
//!   follower's registration is exactly that grant (leader, term and rkey) — otherwise, like a remote
//!   access error, it completes in error at the leader, which falls back to messages until a newer
//!   grant arrives;
//! - writes on one link arrive in order (a reliable connection); a lost packet costs a
//!   retransmission, a cut link or a dead follower fails the write, a full ring fails it
//!   (receiver-not-ready retries run out);
//! - a paused follower's NIC still lands writes; the ring is drained into the node before its next
//!   input; a crash loses the ring and the registration;
//! - the follower acknowledges an append after its core processed it, as for a message;
//! - a follower that receives a message-path Append from the holder of its grant (the holder lost
//!   its connection, or never got the grant) offers the grant again, at most once per heartbeat.

use std::collections::{BTreeMap, VecDeque};

use crate::consensus::ring_permission::{Grant, GrantChange, PermissionInput, RingPermission};
use crate::consensus::{NodeId, Term};

/// Slots of a follower's ring.
pub const RING_SLOTS: usize = 64;
/// What a lost packet costs a write on a reliable connection: the NIC retransmits it.
pub const RC_RETRANSMIT_NS: u64 = 2_000_000;
/// When a write on a cut link, or to a dead node, completes in error (the NIC's retries ran out).
pub const RC_ERROR_NS: u64 = 20_000_000;

/// What the channel did in a run (or, summed, a sweep).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Grants and revocations by the permission rule (a grant replaced by another counts as
    /// revoked), in every seed.
    pub grants: u64,
    pub revocations: u64,
    /// One-sided writes posted, landed, and failed (of those, `refused` by the follower's NIC
    /// because the grant they were written under was revoked or replaced).
    pub writes: u64,
    pub landed: u64,
    pub failed: u64,
    pub refused: u64,
}

impl RingStats {
    pub fn add(&mut self, other: &RingStats) {
        self.grants += other.grants;
        self.revocations += other.revocations;
        self.writes += other.writes;
        self.landed += other.landed;
        self.failed += other.failed;
        self.refused += other.refused;
    }
}

/// The ring's registration for one grant: what the follower's NIC checks a write against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub grant: Grant,
    pub rkey: u32,
}

/// A frame written into a ring and not yet stepped by the follower's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub from: NodeId,
    pub code: u8,
    pub bytes: Vec<u8>,
}

/// What the follower's NIC did with a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Landed,
    /// The rkey is not the registered one (the grant was revoked or replaced, or never existed).
    Refused,
    /// Every slot holds a frame the core has not stepped yet.
    Full,
}

/// A grant a leader received from one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    term: Term,
    rkey: u32,
    /// Cleared by a failed write: the leader falls back to messages until a newer grant (or the
    /// same one, offered again) arrives.
    usable: bool,
}

/// One host's end of the channel: its ring as a follower, the grants it holds as a leader.
#[derive(Debug, Default)]
pub struct RingHost {
    /// `None` until the node runs (and again after a crash).
    permission: Option<RingPermission>,
    registration: Option<Registration>,
    /// rkeys are never reused, across crashes too (a registration's key dies with it).
    last_rkey: u32,
    slots: VecDeque<Slot>,
    offered_ns: u64,
    held: BTreeMap<NodeId, Held>,
}

impl RingHost {
    pub fn registration(&self) -> Option<Registration> {
        self.registration
    }

    /// Applies the permission rule after a step that left the node in `input`; a new grant comes
    /// back with its registration, to be sent to its holder.
    pub fn update(
        &mut self,
        input: PermissionInput,
        now_ns: u64,
    ) -> (GrantChange, Option<Registration>) {
        let permission = self
            .permission
            .get_or_insert_with(|| RingPermission::new(input.id, input.term));
        let change = permission.observe(input);
        let announce = match change {
            GrantChange::Unchanged => None,
            GrantChange::Grant { grant, .. } => {
                self.last_rkey += 1;
                let registration = Registration {
                    grant,
                    rkey: self.last_rkey,
                };
                self.registration = Some(registration);
                self.offered_ns = now_ns;
                Some(registration)
            }
            GrantChange::Revoke { .. } => {
                self.registration = None;
                None
            }
        };
        debug_assert_eq!(
            self.registration.map(|r| r.grant),
            permission.grant(),
            "the registration follows the rule"
        );
        (change, announce)
    }

    /// The process died: the ring's contents, its registration and every held grant are gone.
    pub fn crash(&mut self) {
        self.permission = None;
        self.registration = None;
        self.slots.clear();
        self.held.clear();
    }

    /// A write of `slot` under (`term`, `rkey`) reaches this host's NIC.
    pub fn land(&mut self, term: Term, rkey: u32, slot: Slot) -> Landing {
        let expected = Registration {
            grant: Grant {
                leader: slot.from,
                term,
            },
            rkey,
        };
        if self.registration != Some(expected) {
            return Landing::Refused;
        }
        if self.slots.len() == RING_SLOTS {
            return Landing::Full;
        }
        self.slots.push_back(slot);
        Landing::Landed
    }

    /// The oldest frame not yet stepped.
    pub fn pop_slot(&mut self) -> Option<Slot> {
        self.slots.pop_front()
    }

    pub fn has_slots(&self) -> bool {
        !self.slots.is_empty()
    }

    /// A message-path Append of `term` from `from` arrived: if `from` holds this ring's grant for
    /// that term and the grant was last offered at least `interval_ns` ago, offer it again.
    pub fn offer_again(
        &mut self,
        from: NodeId,
        term: Term,
        now_ns: u64,
        interval_ns: u64,
    ) -> Option<Registration> {
        let registration = self
            .registration
            .filter(|r| r.grant == Grant { leader: from, term })?;
        if now_ns < self.offered_ns + interval_ns {
            return None;
        }
        self.offered_ns = now_ns;
        Some(registration)
    }

    /// The rkey to write `to`'s ring with under `term`, if this host holds a usable grant for it.
    pub fn write_key(&self, to: NodeId, term: Term) -> Option<u32> {
        self.held
            .get(&to)
            .filter(|h| h.usable && h.term == term)
            .map(|h| h.rkey)
    }

    /// A grant of `from` arrived; kept if newer than the one held, or the same one offered again
    /// after a failure. Returns whether it is now usable.
    pub fn grant_arrived(&mut self, from: NodeId, term: Term, rkey: u32) -> bool {
        let newer = match self.held.get(&from) {
            None => true,
            Some(h) => (term, rkey) >= (h.term, h.rkey),
        };
        if newer {
            self.held.insert(
                from,
                Held {
                    term,
                    rkey,
                    usable: true,
                },
            );
        }
        newer
    }

    /// A write to `follower` under (`term`, `rkey`) completed in error: stop using that grant.
    pub fn write_failed(&mut self, follower: NodeId, term: Term, rkey: u32) {
        if let Some(h) = self
            .held
            .get_mut(&follower)
            .filter(|h| (h.term, h.rkey) == (term, rkey))
        {
            h.usable = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Role;

    fn follower(term: Term, vote: Option<NodeId>, leader: Option<NodeId>) -> PermissionInput {
        PermissionInput {
            id: 1,
            term,
            vote,
            leader,
            role: Role::Follower,
        }
    }

    fn slot(from: NodeId) -> Slot {
        Slot {
            from,
            code: 0,
            bytes: vec![1, 2, 3],
        }
    }

    #[test]
    fn only_the_registered_grant_lands_and_a_revoke_closes_the_ring() {
        let mut ring = RingHost::default();
        let (_, announce) = ring.update(follower(2, None, Some(2)), 0);
        let r = announce.expect("accepting a leader grants");
        assert_eq!(ring.land(2, r.rkey, slot(2)), Landing::Landed);
        assert_eq!(ring.land(2, r.rkey + 1, slot(2)), Landing::Refused);
        assert_eq!(ring.land(1, r.rkey, slot(2)), Landing::Refused);
        assert_eq!(ring.land(2, r.rkey, slot(3)), Landing::Refused);
        ring.update(follower(3, None, None), 1);
        assert_eq!(ring.registration(), None);
        assert_eq!(ring.land(2, r.rkey, slot(2)), Landing::Refused);
        assert_eq!(ring.pop_slot(), Some(slot(2)));
        assert_eq!(ring.pop_slot(), None);
    }

    #[test]
    fn a_regrant_after_a_crash_gets_a_fresh_rkey_and_the_ring_fills() {
        let mut ring = RingHost::default();
        let first = ring.update(follower(2, None, Some(2)), 0).1.unwrap();
        ring.crash();
        assert_eq!(ring.land(2, first.rkey, slot(2)), Landing::Refused);
        let second = ring.update(follower(2, None, Some(2)), 0).1.unwrap();
        assert_eq!(first.grant, second.grant);
        assert_ne!(first.rkey, second.rkey);
        for _ in 0..RING_SLOTS {
            assert_eq!(ring.land(2, second.rkey, slot(2)), Landing::Landed);
        }
        assert_eq!(ring.land(2, second.rkey, slot(2)), Landing::Full);
    }

    #[test]
    fn a_leader_falls_back_after_a_failure_until_the_grant_is_offered_again() {
        let mut leader = RingHost::default();
        assert!(leader.grant_arrived(5, 3, 7));
        assert_eq!(leader.write_key(5, 3), Some(7));
        assert_eq!(leader.write_key(5, 4), None);
        leader.write_failed(5, 3, 7);
        assert_eq!(leader.write_key(5, 3), None);
        assert!(!leader.grant_arrived(5, 3, 6), "an older grant is ignored");
        assert!(leader.grant_arrived(5, 3, 7));
        assert_eq!(leader.write_key(5, 3), Some(7));
        leader.write_failed(5, 2, 7);
        assert_eq!(
            leader.write_key(5, 3),
            Some(7),
            "a stale failure changes nothing"
        );
    }

    #[test]
    fn the_grant_is_offered_again_to_its_holder_once_per_interval() {
        let mut ring = RingHost::default();
        ring.update(follower(2, None, Some(2)), 100);
        assert_eq!(ring.offer_again(2, 2, 150, 100), None);
        assert!(ring.offer_again(2, 2, 200, 100).is_some());
        assert_eq!(ring.offer_again(2, 2, 250, 100), None);
        assert_eq!(ring.offer_again(3, 2, 400, 100), None, "not the holder");
        assert_eq!(
            ring.offer_again(2, 1, 400, 100),
            None,
            "not the grant's term"
        );
    }
}
