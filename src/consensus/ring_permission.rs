//! Who may write this node's log ring (DESIGN.md §2.5, after Mu and DARE): the sans-IO rule the
//! daemon and the simulator both run after every step of the core.
//!
//! One-sided replication lets a leader RDMA-WRITE entries into a follower's registered ring without
//! the follower's CPU taking part, so the follower's consensus core cannot be the only guard against
//! a deposed leader: by the time the core would refuse a stale append, the bytes are already in the
//! ring. The guard is the permission itself. **Write permission belongs to one term**:
//!
//! - a follower grants its ring to the candidate it votes for in term `T` (so a winner can write at
//!   once) and to the leader it accepts in term `T` (a leader it never voted for, a learner's
//!   leader);
//! - moving to a higher term without a leader or candidate to grant to revokes the grant; moving to
//!   a higher term with one replaces it (the transport registers the ring anew for every grant, so
//!   the old holder's rkey dies with the old registration);
//! - within one term a grant to a voted-for candidate may move to that term's accepted leader, never
//!   the other way, and an accepted leader's grant never moves to another node (one leader per
//!   term);
//! - a node never holds two grants, never grants itself, and a grant is valid only while the node's
//!   current term equals the grant's term.
//!
//! The host's side of the contract: after every step, before the messages of the resulting `Ready`
//! leave, call [`RingPermission::observe`] with the node's state and act on the [`GrantChange`]:
//! register the ring for a new grant and send it to the holder, or deregister on a revoke. A vote
//! granted in a higher term therefore never leaves before the old leader's access is gone.

use super::node::Node;
use super::types::{NodeId, Role, Term};

/// Permission for `leader` to write this node's ring while this node is in `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub leader: NodeId,
    pub term: Term,
}

/// What the host must do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    /// Keep the current registration (or the lack of one).
    Unchanged,
    /// Register the ring for `grant` and send it to `grant.leader`; `replaced` (if any) loses its
    /// access with its registration.
    Grant {
        grant: Grant,
        replaced: Option<Grant>,
    },
    /// Deregister the ring: `revoked` loses its access and nobody holds one.
    Revoke { revoked: Grant },
}

/// The part of a node's state the rule reads: its term, vote, known leader and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionInput {
    pub id: NodeId,
    pub term: Term,
    pub vote: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub role: Role,
}

impl PermissionInput {
    /// The state of `node` now.
    pub fn of(node: &Node) -> Self {
        Self {
            id: node.id(),
            term: node.term(),
            vote: node.vote(),
            leader: node.leader(),
            role: node.role(),
        }
    }

    /// Whom the node would grant to in its term: the leader it accepted, else the candidate it
    /// voted for (`true` when the holder is an accepted leader). Never itself: a candidate's and a
    /// leader's own ring is written by nobody.
    fn holder(&self) -> Option<(NodeId, bool)> {
        if matches!(self.role, Role::Leader | Role::Candidate) {
            return None;
        }
        let other = |n: &NodeId| *n != self.id;
        self.leader
            .filter(other)
            .map(|l| (l, true))
            .or_else(|| self.vote.filter(other).map(|c| (c, false)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    grant: Grant,
    /// Granted to the term's accepted leader (not only a voted-for candidate).
    accepted_leader: bool,
}

/// One node's ring permission across the steps of one incarnation (a restart starts afresh: the
/// registration died with the process).
#[derive(Debug, Clone)]
pub struct RingPermission {
    id: NodeId,
    /// The highest term observed.
    term: Term,
    held: Option<Held>,
}

impl RingPermission {
    /// A node `id` starting in `term` with its ring unregistered.
    pub fn new(id: NodeId, term: Term) -> Self {
        Self {
            id,
            term,
            held: None,
        }
    }

    /// The current grant, if any.
    pub fn grant(&self) -> Option<Grant> {
        self.held.map(|h| h.grant)
    }

    /// Decides the grant after a step that left the node in `input`.
    pub fn observe(&mut self, input: PermissionInput) -> GrantChange {
        assert_eq!(input.id, self.id, "one permission per node");
        assert!(
            input.term >= self.term,
            "n{}: term went backwards from {} to {}",
            self.id,
            self.term,
            input.term
        );
        let moved = input.term > self.term;
        self.term = input.term;
        let wanted = input.holder().map(|(leader, accepted_leader)| Held {
            grant: Grant {
                leader,
                term: input.term,
            },
            accepted_leader,
        });
        let current = self.held;
        let change = match (current, wanted) {
            (Some(c), Some(w)) if c.grant == w.grant => {
                // The voted-for candidate won: same grant, now an accepted leader's.
                self.held = Some(Held {
                    grant: c.grant,
                    accepted_leader: c.accepted_leader || w.accepted_leader,
                });
                GrantChange::Unchanged
            }
            // The term's leader is known and this node forgot it (a pre-candidate still holding
            // its vote for a candidate that lost): the leader keeps the grant.
            (Some(c), Some(w))
                if c.grant.term == w.grant.term && c.accepted_leader && !w.accepted_leader =>
            {
                GrantChange::Unchanged
            }
            (_, Some(w)) => {
                if let Some(c) = current {
                    self.assert_replaceable(c, w);
                }
                self.held = Some(w);
                GrantChange::Grant {
                    grant: w.grant,
                    replaced: current.map(|c| c.grant),
                }
            }
            (Some(c), None) if moved && !crate::mutant!(RingKeepGrant) => {
                self.held = None;
                GrantChange::Revoke { revoked: c.grant }
            }
            // Same term, holder no longer known (a pre-candidate, a leader lost to CheckQuorum):
            // nobody else can lead this term, so the grant stands.
            (_, None) => GrantChange::Unchanged,
        };
        if let Some(h) = self.held {
            assert_ne!(h.grant.leader, self.id, "a node never grants itself");
            assert!(
                h.grant.term == self.term || crate::mutant!(RingKeepGrant),
                "n{}: grant {:?} outlived its term (now {})",
                self.id,
                h.grant,
                self.term
            );
        }
        change
    }

    fn assert_replaceable(&self, current: Held, wanted: Held) {
        assert!(
            current.grant.term <= wanted.grant.term,
            "n{}: grants only move to higher terms ({:?} -> {:?})",
            self.id,
            current.grant,
            wanted.grant
        );
        if current.grant.term == wanted.grant.term {
            assert!(
                !current.accepted_leader && wanted.accepted_leader,
                "n{}: in term {} the grant moved from {} (accepted leader: {}) to {} (accepted \
                 leader: {}); only a voted-for candidate's grant may move, and only to the term's \
                 leader",
                self.id,
                current.grant.term,
                current.grant.leader,
                current.accepted_leader,
                wanted.grant.leader,
                wanted.accepted_leader
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(term: Term, vote: Option<NodeId>, leader: Option<NodeId>) -> PermissionInput {
        PermissionInput {
            id: 1,
            term,
            vote,
            leader,
            role: Role::Follower,
        }
    }

    fn grant(leader: NodeId, term: Term) -> Grant {
        Grant { leader, term }
    }

    #[test]
    fn a_vote_grants_the_candidate_and_its_victory_keeps_the_grant() {
        let mut p = RingPermission::new(1, 1);
        assert_eq!(p.observe(follower(1, None, None)), GrantChange::Unchanged);
        assert_eq!(
            p.observe(follower(2, Some(2), None)),
            GrantChange::Grant {
                grant: grant(2, 2),
                replaced: None
            }
        );
        assert_eq!(
            p.observe(follower(2, Some(2), Some(2))),
            GrantChange::Unchanged
        );
        assert_eq!(p.grant(), Some(grant(2, 2)));
    }

    #[test]
    fn a_higher_term_without_a_holder_revokes_the_deposed_leader() {
        let mut p = RingPermission::new(1, 3);
        p.observe(follower(3, None, Some(2)));
        assert_eq!(
            p.observe(follower(4, None, None)),
            GrantChange::Revoke {
                revoked: grant(2, 3)
            }
        );
        assert_eq!(p.grant(), None);
        // Campaigning (a vote for itself) grants nobody.
        let candidate = PermissionInput {
            role: Role::Candidate,
            ..follower(5, Some(1), None)
        };
        assert_eq!(p.observe(candidate), GrantChange::Unchanged);
        assert_eq!(p.grant(), None);
    }

    #[test]
    fn a_vote_in_a_higher_term_replaces_the_old_leaders_grant() {
        let mut p = RingPermission::new(1, 3);
        p.observe(follower(3, None, Some(2)));
        assert_eq!(
            p.observe(follower(4, Some(3), None)),
            GrantChange::Grant {
                grant: grant(3, 4),
                replaced: Some(grant(2, 3))
            }
        );
    }

    #[test]
    fn the_term_leader_takes_the_grant_from_a_losing_candidate() {
        let mut p = RingPermission::new(1, 1);
        p.observe(follower(2, Some(3), None));
        assert_eq!(
            p.observe(follower(2, Some(3), Some(4))),
            GrantChange::Grant {
                grant: grant(4, 2),
                replaced: Some(grant(3, 2))
            }
        );
    }

    #[test]
    fn the_grant_outlives_a_lost_leader_within_its_term() {
        let mut p = RingPermission::new(1, 2);
        p.observe(follower(2, None, Some(2)));
        let pre_candidate = PermissionInput {
            role: Role::PreCandidate,
            ..follower(2, None, None)
        };
        assert_eq!(p.observe(pre_candidate), GrantChange::Unchanged);
        assert_eq!(p.grant(), Some(grant(2, 2)));
    }

    #[test]
    fn a_pre_candidate_that_voted_for_a_loser_keeps_the_terms_leader() {
        let mut p = RingPermission::new(1, 1);
        p.observe(follower(2, Some(3), None));
        p.observe(follower(2, Some(3), Some(4)));
        let pre_candidate = PermissionInput {
            role: Role::PreCandidate,
            ..follower(2, Some(3), None)
        };
        assert_eq!(p.observe(pre_candidate), GrantChange::Unchanged);
        assert_eq!(p.grant(), Some(grant(4, 2)));
    }

    #[test]
    #[should_panic(expected = "only a voted-for candidate's grant may move")]
    fn a_second_vote_in_one_term_trips_the_rule() {
        let mut p = RingPermission::new(1, 1);
        p.observe(follower(2, Some(3), None));
        p.observe(follower(2, Some(4), None));
    }

    #[test]
    fn a_learner_grants_the_leader_it_follows_and_a_leader_grants_nobody() {
        let mut p = RingPermission::new(1, 0);
        let learner = PermissionInput {
            role: Role::Learner,
            ..follower(1, None, Some(3))
        };
        assert!(matches!(p.observe(learner), GrantChange::Grant { .. }));
        let leader = PermissionInput {
            role: Role::Leader,
            ..follower(2, Some(1), Some(1))
        };
        assert_eq!(
            p.observe(leader),
            GrantChange::Revoke {
                revoked: grant(3, 1)
            }
        );
    }

    #[test]
    #[should_panic(expected = "only a voted-for candidate's grant may move")]
    fn two_leaders_in_one_term_trip_the_rule() {
        let mut p = RingPermission::new(1, 2);
        p.observe(follower(2, None, Some(2)));
        p.observe(follower(2, None, Some(3)));
    }

    #[test]
    #[should_panic(expected = "term went backwards")]
    fn a_lower_term_trips_the_rule() {
        let mut p = RingPermission::new(1, 2);
        p.observe(follower(1, None, None));
    }
}
