//! Deliberately broken protocol variants, compiled only with feature `mutants`.
//!
//! `hack/sim-mutants.sh` switches one on and shows the simulator catches it. Production builds never
//! carry the feature, so [`mutant!`](crate::mutant) is the constant `false` there and the broken
//! branches compile away.

use std::cell::Cell;

/// One broken variant of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mutant {
    /// Accept election and replication quorums that do not intersect (Q1 + Q2 <= N).
    WeakQuorums,
    /// Grant a second vote in a term already voted in.
    DoubleVote,
    /// Commit an entry from an earlier term by counting its replicas (Raft §5.4.2 violated).
    CommitPreviousTerm,
    /// Serve lease reads without holding a valid lease.
    LeaseWithoutQuorum,
    /// Acknowledge entries and votes before they are persisted.
    AckBeforePersist,
    /// A follower keeps its ring grant when it moves to a higher term without a new holder, so a
    /// deposed leader's one-sided writes still land.
    RingKeepGrant,
}

thread_local! {
    static ACTIVE: Cell<Option<Mutant>> = const { Cell::new(None) };
}

/// Switches `mutant` on for this thread (the simulator is single-threaded), or all off with `None`.
pub fn set(mutant: Option<Mutant>) {
    ACTIVE.with(|a| a.set(mutant));
}

/// Whether `mutant` is on for this thread.
pub fn active(mutant: Mutant) -> bool {
    ACTIVE.with(|a| a.get() == Some(mutant))
}
