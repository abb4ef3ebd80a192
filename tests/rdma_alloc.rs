//! The RDMA transport's steady state allocates nothing: SEND/RECV ping-pong and one-sided ring
//! writes, proven with a global allocator that counts this thread's Rust allocations (the verbs
//! provider's C code does not allocate on post or poll either: rxe's user-space queues are mapped
//! at QP creation).
#![cfg(feature = "rdma")]

mod rdma_support;

use aurora::transport::rdma::ring::RingAppend;
use aurora::transport::rdma::RdmaTransport;
use aurora::transport::{Event, Remote, Transport};
use rdma_support::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// One round trip: A pings, B echoes, A receives the echo; then A writes one ring entry and B
/// (the follower) takes its append. Reused vectors only.
fn round(
    a: &mut RdmaTransport,
    b: &mut RdmaTransport,
    seq: u64,
    events: &mut Vec<Event>,
    appends: &mut Vec<RingAppend>,
) {
    a.send(Remote::Peer(2), ping(a, 1, 2, seq)).unwrap();
    let mut echoed = false;
    let mut echo_sent = false;
    // Bounded: a round trip on the VM takes well under a second; 10^8 polls would be minutes.
    for _ in 0..100_000_000u64 {
        b.poll(now_ns(), events).unwrap();
        for e in events.drain(..) {
            if let Event::Received { buf, .. } = e {
                assert_eq!(seq_of(&buf), seq);
                drop(buf);
                b.send(Remote::Peer(1), ping(b, 2, 1, seq)).unwrap();
                echo_sent = true;
            }
        }
        a.poll(now_ns(), events).unwrap();
        for e in events.drain(..) {
            if let Event::Received { buf, .. } = e {
                assert_eq!(seq_of(&buf), seq);
                echoed = true;
            }
        }
        if echoed && echo_sent {
            break;
        }
    }
    assert!(echoed, "round trip {seq} never completed");
    a.ring_append(2, 1, seq, 1, seq.saturating_sub(1), &seq.to_le_bytes())
        .unwrap();
    for _ in 0..100_000_000u64 {
        a.poll(now_ns(), events).unwrap();
        events.clear(); // SendComplete of the ping
        b.poll(now_ns(), events).unwrap();
        events.clear();
        appends.clear();
        if b.take_ring_appends(appends) == 1 {
            assert_eq!(appends[0].index, seq);
            return;
        }
    }
    panic!("ring append {seq} never arrived");
}

#[test]
fn ping_pong_and_ring_writes_allocate_nothing_in_steady_state() {
    let mut cfg = node(2, 1, &[], &[1]);
    cfg.ring_slots = 64;
    cfg.ring_slot_bytes = 256;
    let mut b = RdmaTransport::new(cfg).unwrap();
    let mut a = RdmaTransport::new(node(1, 0, &[(2, addr_of(&b))], &[])).unwrap();
    until_up(&mut [&mut a, &mut b], 0, 2);
    until_up(&mut [&mut a, &mut b], 1, 1);
    let grant = b.grant_ring(1, 1).unwrap();
    a.accept_ring_grant(2, grant);
    let mut events = Vec::with_capacity(256);
    let mut appends = Vec::with_capacity(64);
    for seq in 1..=50 {
        round(&mut a, &mut b, seq, &mut events, &mut appends); // warm-up: lazy init, logging
    }
    let before = ALLOCATIONS.with(Cell::get);
    for seq in 51..=550 {
        round(&mut a, &mut b, seq, &mut events, &mut appends);
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(
        allocations, 0,
        "500 ping-pongs and ring writes allocated {allocations} times"
    );
    assert_eq!(b.ring_stats().appends_delivered, 550);
}
