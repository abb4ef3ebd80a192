//! The simulator is deterministic (a seed replays bit for bit) and its checks can fail: with a broken
//! protocol variant switched on, a short sweep finds a failing seed.

use aurora::sim::run_seed;

#[test]
fn same_seed_replays_the_same_run() {
    for seed in [1, 7, 42] {
        let a = run_seed(seed, false);
        let b = run_seed(seed, false);
        assert_eq!(a, b, "seed {seed} must replay identically");
        assert!(a.stats.events > 1_000, "seed {seed} ran: {:?}", a.stats);
        assert!(a.stats.committed > 0, "seed {seed} committed something");
    }
}

#[test]
fn healthy_seeds_pass() {
    for seed in 100..104 {
        let o = run_seed(seed, false);
        assert_eq!(o.failure, None, "seed {seed}");
    }
}

#[cfg(feature = "mutants")]
#[test]
fn weak_quorums_are_caught() {
    use aurora::mutants::{self, Mutant};
    mutants::set(Some(Mutant::WeakQuorums));
    let caught = (0..200).find(|&seed| run_seed(seed, false).failure.is_some());
    mutants::set(None);
    assert!(
        caught.is_some(),
        "200 seeds missed a commit quorum one short"
    );
}
