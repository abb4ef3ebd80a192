//! The WAL's steady state allocates nothing: a counting global allocator watches this thread while
//! it appends, sets hard states, flushes and polls hundreds of batches.

use aurora::storage::{Durability, EntryRef, HardState, Wal, WalOptions};

mod counting_alloc;
use counting_alloc::allocations_in;

#[test]
fn counting_allocator_sees_an_allocation() {
    let n = allocations_in(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(n, 1);
}

/// Appends `batches` batches of 16 entries after `next_index`, one synced flush each.
fn run_batches(wal: &mut Wal, next_index: &mut u64, batches: u64, payload: &[u8]) {
    for _ in 0..batches {
        let first = *next_index;
        wal.append_entries(
            first,
            (0..16).map(|k| EntryRef {
                term: 1,
                kind: 0,
                data: &payload[..(k * 7) % payload.len()],
            }),
        )
        .expect("append");
        *next_index += 16;
        wal.set_hard_state(HardState {
            term: 1,
            vote: Some(1),
            commit: first,
        })
        .expect("hard state");
        let seq = wal.flush(true, first).expect("flush");
        let durable = wal.wait_durable(seq).expect("durable");
        assert_eq!(durable.last.index, *next_index - 1);
    }
}

fn steady_state_allocations(durability: Durability) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal = Wal::open(
        dir.path(),
        WalOptions {
            durability,
            segment_bytes: 64 << 20,
            buffer_bytes: 1 << 20,
        },
    )
    .expect("open");
    let payload = vec![0x5a_u8; 256];
    let mut next_index = 1;
    // Warm-up: the first batch rolls into the first segment and prepares the next one (a file
    // name is formatted then — once per segment, not per batch).
    run_batches(&mut wal, &mut next_index, 20, &payload);
    wal.wait_idle().expect("idle");
    allocations_in(|| run_batches(&mut wal, &mut next_index, 300, &payload))
}

#[test]
fn append_flush_and_poll_do_not_allocate_in_fsync_mode() {
    assert_eq!(steady_state_allocations(Durability::Fsync), 0);
}

#[test]
fn append_flush_and_poll_do_not_allocate_in_memory_mode() {
    assert_eq!(steady_state_allocations(Durability::Memory), 0);
}
