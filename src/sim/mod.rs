//! The deterministic simulator (DESIGN.md §9.2): whole clusters of the sans-IO consensus core in one
//! thread, on a simulated network and simulated disks, under a seeded fault mix, checked after every
//! step and, at the end, for linearizability of what the clients saw.
//!
//! - [`rng`]: the seeded random source every choice comes from;
//! - [`clock`]: virtual time, and per-node clocks drifting within the configured bound;
//! - [`events`]: the event queue (bounded);
//! - [`network`]: drop, duplicate, delay/reorder, long delays, symmetric and one-way partitions;
//! - [`disk`]: a checksummed WAL with torn and corrupted tails, unsynced writes lost on crash, slow
//!   disks, `memory` durability;
//! - [`kv`]: the registers clients read and write;
//! - [`workload`]: clients issuing put/get/CAS and recording the history (unknown on timeout);
//! - [`invariants`]: election safety, log matching, leader completeness, state-machine safety,
//!   monotonic commit, ring permission;
//! - [`ring`]: the one-sided channel (a follower's ring, per-term grants, the leader's writes);
//! - [`scenario`]: a seed becomes cluster shape, settings and fault mix;
//! - [`world`]: hosts, fault injector and the run loop.
//!
//! `aurora sim --seeds N --start S` sweeps seeds; `--trace` replays one with every event printed.

pub mod clock;
pub mod disk;
pub mod events;
pub mod invariants;
pub mod kv;
pub mod network;
pub mod ring;
pub mod rng;
pub mod scenario;
pub mod workload;
pub mod world;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use ring::RingStats;
pub use scenario::Scenario;
pub use world::{RunOutcome, RunStats, World};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs one seed's scenario. A panic inside (an assertion of the core or the simulator) is a
/// failure of that seed, reported with its message, not a crash of the sweep.
pub fn run_seed(seed: u64, trace: bool) -> RunOutcome {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        World::new(Scenario::from_seed(seed), trace).run()
    }));
    result.unwrap_or_else(|_| RunOutcome {
        seed,
        failure: Some(format!(
            "panic: {}",
            LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "(no message)".to_owned())
        )),
        stats: RunStats::default(),
    })
}

/// What a sweep of seeds found.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// Seeds run to completion.
    pub seeds: u64,
    /// Failed runs, by seed.
    pub failures: Vec<RunOutcome>,
    /// Sums over every run.
    pub events: u64,
    pub ops: u64,
    pub ops_ok: u64,
    pub committed: u64,
    pub crashes: u64,
    /// Seeds with one-sided appends.
    pub one_sided_seeds: u64,
    pub ring: RingStats,
}

/// Runs seeds `start..start + count` on `jobs` threads (each seed on one thread, so each run stays
/// deterministic). `init` runs first on every worker thread (the mutant switch is per thread). With
/// `stop_at_first`, workers stop taking seeds after a failure; every seed below the reported failure
/// was still run, so the first failing seed is exact.
pub fn sweep(
    start: u64,
    count: u64,
    jobs: usize,
    stop_at_first: bool,
    init: &(dyn Fn() + Sync),
    on_failure: &(dyn Fn(&RunOutcome) + Sync),
) -> SweepReport {
    let next = AtomicU64::new(start);
    let stop = AtomicBool::new(false);
    let report = Mutex::new(SweepReport::default());
    let end = start.saturating_add(count);
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
    }));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                init();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let outcome = run_seed(seed, false);
                    let mut r = report.lock().expect("no worker panics while holding it");
                    r.seeds += 1;
                    r.events += outcome.stats.events;
                    r.ops += outcome.stats.ops;
                    r.ops_ok += outcome.stats.ops_ok;
                    r.committed += outcome.stats.committed;
                    r.crashes += outcome.stats.crashes;
                    r.one_sided_seeds += u64::from(outcome.stats.one_sided);
                    r.ring.add(&outcome.stats.ring);
                    if outcome.failure.is_some() {
                        on_failure(&outcome);
                        r.failures.push(outcome);
                        if stop_at_first {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    panic::set_hook(previous_hook);
    let mut report = report.into_inner().expect("workers finished");
    report.failures.sort_by_key(|o| o.seed);
    report
}
