//! Entries committed per second through the consensus core, on the allocation-free in-process
//! network of tests/consensus_loopback (every message encoded into a pool slab, decoded and stepped;
//! the "disk" acknowledges at once; no faults), for 3 and 5 voters and proposal batches of 1, 16 and
//! 256 entries of 16 bytes; and heap allocations per committed entry, counted by a global allocator.
//!
//! `cargo bench --bench consensus`. Baseline, measured in the same run: the codec alone — encoding
//! and decoding the same appends (one per follower per round) without stepping any node — so the
//! ratio shows what the protocol logic costs on top of moving its bytes.

#[path = "../tests/consensus_loopback/mod.rs"]
mod consensus_loopback;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aurora::consensus::codec;
use aurora::consensus::{Append, LogRange, Message};
use consensus_loopback::Loopback;

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

/// Runs per case; the median is reported.
const RUNS: usize = 7;
/// Entries committed per measured run (rounds = this / batch).
const ENTRIES_PER_RUN: u64 = 64_000;

/// One round: propose a batch, advance the clock 1 ms (heartbeats), deliver until quiet; compact
/// every 16 rounds as a host does after snapshots.
fn rounds(c: &mut Loopback, leader: u64, batch: usize, count: u64) {
    for round in 0..count {
        c.propose(leader, batch);
        c.tick(1_000_000);
        if round % 16 == 15 {
            c.compact();
        }
    }
}

struct Measured {
    entries_per_s: f64,
    allocations_per_entry: f64,
}

fn run_case(voters: u64, batch: usize) -> Measured {
    let mut c = Loopback::new(voters, 256);
    let leader = c.elect();
    let count = ENTRIES_PER_RUN / batch as u64;
    // Warm-up: the log ring, payload free list and message queues reach their steady capacity.
    rounds(&mut c, leader, batch, count.max(2_000));
    let i = (leader - 1) as usize;
    let before = c.applied_entries[i];
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    rounds(&mut c, leader, batch, count);
    let secs = started.elapsed().as_secs_f64();
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let committed = c.applied_entries[i] - before;
    assert_eq!(committed, count * batch as u64, "every proposal committed");
    Measured {
        entries_per_s: committed as f64 / secs,
        allocations_per_entry: allocated as f64 / committed as f64,
    }
}

/// The baseline: encode and decode one append of `batch` entries per follower per round, from a
/// real leader log, with no node stepped.
fn codec_only(voters: u64, batch: usize) -> f64 {
    let mut c = Loopback::new(voters, 256);
    let leader = c.elect();
    c.propose(leader, batch);
    c.tick(1_000_000);
    let node = &c.nodes[(leader - 1) as usize];
    let last = node.log().last_index();
    let message = Message::Append(Append {
        term: node.term(),
        prev_index: last - batch as u64,
        prev_term: node.term(),
        commit: last,
        ctx_ns: 0,
        seq: 1,
        entries: LogRange {
            first: last - batch as u64 + 1,
            last,
        },
    });
    let mut buf = vec![0u8; 64 * 1024];
    let count = ENTRIES_PER_RUN / batch as u64;
    let started = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..count {
        for _ in 1..voters {
            let (kind, len) = codec::encode(&message, node.log(), &[], &mut buf).expect("encode");
            let decoded = codec::decode(kind, &buf[..len]).expect("decode");
            if let Message::Append(a) = decoded.message {
                checksum = checksum.wrapping_add(a.entries.len() as u64);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(checksum, count * (voters - 1) * batch as u64);
    (count * batch as u64) as f64 / secs
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    xs[xs.len() / 2]
}

fn main() {
    println!(
        "consensus core on the in-process loopback: {ENTRIES_PER_RUN} entries of 16 B per run, median of {RUNS} runs"
    );
    println!(
        "{:>6} {:>6} {:>16} {:>18} {:>8} {:>14}",
        "voters", "batch", "entries/s", "codec-only/s", "ratio", "allocs/entry"
    );
    for voters in [3u64, 5] {
        for batch in [1usize, 16, 256] {
            let mut rates = Vec::with_capacity(RUNS);
            let mut allocs = Vec::with_capacity(RUNS);
            let mut floors = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                // Alternate core and baseline so background load hits both alike.
                let m = run_case(voters, batch);
                rates.push(m.entries_per_s);
                allocs.push(m.allocations_per_entry);
                floors.push(codec_only(voters, batch));
            }
            let rate = median(rates);
            let floor = median(floors);
            println!(
                "{voters:>6} {batch:>6} {rate:>16.0} {floor:>18.0} {:>8.2} {:>14.4}",
                rate / floor,
                median(allocs)
            );
        }
    }
}
