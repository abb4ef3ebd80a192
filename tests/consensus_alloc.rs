//! Steady-state propose → replicate → commit → apply on a 3-node in-process cluster allocates
//! nothing: a counting global allocator watches this thread for thousands of committed entries.

#[path = "consensus_loopback/mod.rs"]
mod consensus_loopback;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use consensus_loopback::Loopback;

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

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
