//! Steady-state propose → replicate → commit → apply on a 3-node in-process cluster allocates
//! nothing: a counting global allocator watches this thread for thousands of committed entries.

#[path = "consensus_loopback/mod.rs"]
mod consensus_loopback;

use consensus_loopback::Loopback;

mod counting_alloc;
use counting_alloc::allocations_in;

/// One round: propose a batch, let it replicate and commit, advance the clock (heartbeats, lease),
/// and compact every 16 rounds.
fn rounds(c: &mut Loopback, leader: u64, batch: usize, count: u64) {
    for round in 0..count {
        c.propose(leader, batch);
        c.tick(1_000_000);
        if round % 16 == 15 {
            c.compact();
        }
    }
}

fn steady_state_allocations(batch: usize) -> (u64, u64) {
    let mut c = Loopback::new(3, 256);
    let leader = c.elect();
    rounds(&mut c, leader, batch, 2_000); // warm-up: buffers reach their steady capacity
    let before = c.applied_entries.clone();
    let allocations = allocations_in(|| rounds(&mut c, leader, batch, 2_000));
    let committed = c.applied_entries[0] - before[0];
    assert_eq!(
        c.nodes[(leader - 1) as usize].term(),
        c.nodes[0].term(),
        "no election during the run"
    );
    (allocations, committed)
}

#[test]
fn steady_state_replication_allocates_nothing_batch_1() {
    let (allocations, committed) = steady_state_allocations(1);
    assert_eq!(
        committed, 2_000,
        "every proposal committed and applied on every node"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {committed} committed entries"
    );
}

#[test]
fn steady_state_replication_allocates_nothing_batch_64() {
    let (allocations, committed) = steady_state_allocations(64);
    assert_eq!(committed, 2_000 * 64);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {committed} committed entries"
    );
}
