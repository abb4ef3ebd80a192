//! Encoding, validating and counting rejected frames allocates nothing: a counting global allocator watches this
//! thread while it encodes and decodes thousands of frames, good and bad.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aurora::metrics::{Registry, ShardMetrics};
use aurora::wire::{
    encode_into, FrameKind, FrameRules, HeaderFields, RejectMetrics, RejectReason, HEADER_LEN,
};

struct CountingAllocator;

thread_local! {
    // Per thread, so tests running in parallel do not see each other's allocations.
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

/// Runs `f` and returns how many allocations this thread made inside it.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn counting_allocator_sees_an_allocation() {
    let n = allocations_in(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(n, 1);
}

#[test]
fn encode_and_validate_do_not_allocate() {
    let rules = FrameRules::new(42, 4096).expect("below ceiling");
    let mut buf = [0u8; HEADER_LEN + 4096];
    let mut registry = Registry::new();
    let rejects = RejectMetrics::register(&mut registry).expect("valid names");
    let (mut metrics, _link) = ShardMetrics::new(&registry.finish());
    let mut payload_bytes = 0usize;
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            let fields = HeaderFields {
                kind: FrameKind::Ping,
                cluster_id: 42,
                from: 1,
                to: 2,
                term: i,
                correlation_id: i,
            };
            let payload_len = (i as usize * 37) % 4096;
            let len = encode_into(&mut buf, &fields, |room| {
                room[..payload_len].fill(i as u8);
                payload_len
            })
            .expect("fits");
            let frame = rules.validate_frame(&buf[..len]).expect("valid");
            payload_bytes += frame.payload().len();
            // The rejection path must not allocate either.
            buf[HEADER_LEN - 1] ^= 0xFF;
            match rules.decode_datagram(&buf[..len]) {
                Err(e) => rejects.record(&mut metrics, &e),
                Ok(_) => unreachable!("a corrupted correlation id passes the checksum"),
            }
        }
    });
    assert_eq!(n, 0, "encode/validate allocated {n} times");
    assert_eq!(
        metrics.counter(rejects.id(RejectReason::BadChecksum)),
        10_000
    );
    assert!(payload_bytes > 0);
}
