//! Flexible Paxos quorum sizes (Howard, Malkhi, Spiegelman 2016).
//!
//! An election quorum Q1 and a replication quorum Q2 are safe for N voters when every Q1 intersects
//! every Q2 and every other Q1: `Q1 + Q2 > N` and `2 * Q1 > N`. Leader leases and ReadIndex need
//! promises from a set that intersects every Q1, which is `N - Q1 + 1` voters.
//!
//! This is the one place the rule lives: configuration loading, the consensus core and the simulator
//! all build quorums through [`QuorumSizes::new`].

use thiserror::Error;

/// The largest voter group Aurora supports (DESIGN.md: 3–7 voters; 1 is allowed for development).
pub const MAX_VOTERS: usize = 7;

/// Why a set of quorum sizes was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuorumError {
    #[error("voters must be between 1 and {MAX_VOTERS} (got {0})")]
    Voters(usize),
    #[error("election_quorum must be between 1 and voters ({voters}), got {election}")]
    ElectionRange { election: usize, voters: usize },
    #[error("replication_quorum must be between 1 and voters ({voters}), got {replication}")]
    ReplicationRange { replication: usize, voters: usize },
    #[error(
        "replication_quorum + election_quorum must exceed voters ({replication} + {election} <= {voters}); \
         raise one of them"
    )]
    NoIntersection {
        replication: usize,
        election: usize,
        voters: usize,
    },
    #[error(
        "election_quorum must be a majority of voters ({election} * 2 <= {voters}), or two leaders \
         could be elected in one term; raise election_quorum"
    )]
    SplitElection { election: usize, voters: usize },
}

/// Validated quorum sizes for one voter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumSizes {
    voters: usize,
    election: usize,
    replication: usize,
}

impl QuorumSizes {
    /// Validates `election` (Q1) and `replication` (Q2) for `voters` (N).
    pub fn new(voters: usize, election: usize, replication: usize) -> Result<Self, QuorumError> {
        if voters == 0 || voters > MAX_VOTERS {
            return Err(QuorumError::Voters(voters));
        }
        if election == 0 || election > voters {
            return Err(QuorumError::ElectionRange { election, voters });
        }
        if replication == 0 || replication > voters {
            return Err(QuorumError::ReplicationRange {
                replication,
                voters,
            });
        }
        if !crate::mutant!(WeakQuorums) {
            if replication + election <= voters {
                return Err(QuorumError::NoIntersection {
                    replication,
                    election,
                    voters,
                });
            }
            if election * 2 <= voters {
                return Err(QuorumError::SplitElection { election, voters });
            }
        }
        Ok(Self {
            voters,
            election,
            replication,
        })
    }

    /// Majority for both quorums: the Raft default.
    pub fn majority(voters: usize) -> Result<Self, QuorumError> {
        let majority = voters / 2 + 1;
        Self::new(voters, majority, majority)
    }

    pub fn voters(&self) -> usize {
        self.voters
    }

    /// Q1: votes a candidate needs.
    pub fn election(&self) -> usize {
        self.election
    }

    /// Q2: acknowledgements (leader included) an entry needs to commit.
    pub fn replication(&self) -> usize {
        self.replication
    }

    /// Voters whose promises intersect every election quorum: what a leader lease, ReadIndex and
    /// CheckQuorum need (`N - Q1 + 1`, never more than Q2).
    pub fn lease(&self) -> usize {
        self.voters - self.election + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_is_valid_for_every_size() {
        for n in 1..=MAX_VOTERS {
            let q = QuorumSizes::majority(n).expect("majority is always valid");
            assert_eq!(q.election(), n / 2 + 1);
            assert!(q.lease() <= q.replication());
        }
    }

    #[test]
    fn flexible_quorums_that_intersect_are_accepted() {
        let q = QuorumSizes::new(5, 4, 2).expect("4 + 2 > 5");
        assert_eq!(q.lease(), 2);
    }

    #[test]
    fn non_intersecting_quorums_are_rejected_with_the_rule() {
        let err = QuorumSizes::new(5, 3, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "replication_quorum + election_quorum must exceed voters (2 + 3 <= 5); raise one of them"
        );
    }

    #[test]
    fn minority_election_quorum_is_rejected() {
        assert_eq!(
            QuorumSizes::new(4, 2, 3),
            Err(QuorumError::SplitElection {
                election: 2,
                voters: 4
            })
        );
    }

    #[test]
    fn out_of_range_sizes_are_rejected() {
        assert_eq!(QuorumSizes::new(0, 1, 1), Err(QuorumError::Voters(0)));
        assert_eq!(QuorumSizes::new(8, 5, 5), Err(QuorumError::Voters(8)));
        assert_eq!(
            QuorumSizes::new(3, 4, 2),
            Err(QuorumError::ElectionRange {
                election: 4,
                voters: 3
            })
        );
        assert_eq!(
            QuorumSizes::new(3, 2, 0),
            Err(QuorumError::ReplicationRange {
                replication: 0,
                voters: 3
            })
        );
    }
}
