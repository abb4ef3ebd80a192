//! What one shard records into, and how it hands finished intervals to the collector.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::histogram::LatencyHistogram;
use super::registry::{CounterId, HistogramId, Schema};

/// Spare intervals per shard besides the live one: one the collector may be merging while the shard
/// publishes the next. More would only let a shard run further ahead of a slow collector.
pub const SPARE_INTERVALS: usize = 2;

/// Everything a shard recorded since its last publish (histograms) plus its counters as of then.
#[derive(Debug)]
pub(super) struct Interval {
    /// Values recorded since the previous publish, one per histogram series of the schema.
    pub(super) histograms: Vec<LatencyHistogram>,
    /// Cumulative since start-up, one per counter series of the schema.
    pub(super) counters: Vec<u64>,
}

impl Interval {
    fn new(schema: &Schema) -> Self {
        Self {
            histograms: (0..schema.histogram_count())
                .map(|_| LatencyHistogram::new())
                .collect(),
            counters: vec![0; schema.counter_count()],
        }
    }

    pub(super) fn is_reset(&self) -> bool {
        self.histograms.iter().all(|h| h.count() == 0)
    }
}

/// The collector's end of one shard's exchange; hand it to [`Collector::attach`](super::Collector::attach).
#[derive(Debug)]
pub struct ShardLink {
    pub(super) schema: Arc<Schema>,
    /// Intervals the shard published, oldest first.
    pub(super) full: Arc<ArrayQueue<Interval>>,
    /// Merged and reset intervals going back to the shard.
    pub(super) free: Arc<ArrayQueue<Interval>>,
}

/// One shard's metrics: recorded on the hot path with plain stores into memory only this shard
/// touches — no atomics, no locks, no allocation.
///
/// Hand-off to the admin thread is a double-buffer exchange through two bounded lock-free SPSC
/// queues (see the module doc for why not a seqlock): [`ShardMetrics::publish`] swaps the live
/// interval for a reset spare and pushes the finished one to the collector, which merges it, resets
/// it and sends it back. Buffers only circulate, so neither side allocates after start-up.
#[derive(Debug)]
pub struct ShardMetrics {
    live: Interval,
    full: Arc<ArrayQueue<Interval>>,
    free: Arc<ArrayQueue<Interval>>,
    deferred_publishes: u64,
}

impl ShardMetrics {
    /// Allocates a shard's live and spare intervals. Call on the shard's own thread at start-up, so
    /// the memory is first touched (and placed) on the shard's NUMA node, then pass the [`ShardLink`]
    /// to the admin thread's collector.
    pub fn new(schema: &Arc<Schema>) -> (Self, ShardLink) {
        let full = Arc::new(ArrayQueue::new(SPARE_INTERVALS));
        let free = Arc::new(ArrayQueue::new(SPARE_INTERVALS));
        for _ in 0..SPARE_INTERVALS {
            free.push(Interval::new(schema))
                .expect("the free queue has room for every spare");
        }
        let shard = Self {
            live: Interval::new(schema),
            full: Arc::clone(&full),
            free: Arc::clone(&free),
            deferred_publishes: 0,
        };
        let link = ShardLink {
            schema: Arc::clone(schema),
            full,
            free,
        };
        (shard, link)
    }

    /// Records one latency in nanoseconds. Hot path.
    #[inline]
    pub fn record(&mut self, id: HistogramId, value_ns: u64) {
        debug_assert!(id.0 < self.live.histograms.len(), "id from another schema");
        self.live.histograms[id.0].record(value_ns);
    }

    /// Adds `n` to a counter (saturating). Hot path.
    #[inline]
    pub fn add(&mut self, id: CounterId, n: u64) {
        debug_assert!(id.0 < self.live.counters.len(), "id from another schema");
        let slot = &mut self.live.counters[id.0];
        *slot = slot.saturating_add(n);
    }

    /// Adds one to a counter. Hot path.
    #[inline]
    pub fn inc(&mut self, id: CounterId) {
        self.add(id, 1);
    }

    /// This shard's counter value since start-up.
    pub fn counter(&self, id: CounterId) -> u64 {
        self.live.counters[id.0]
    }

    /// What this shard recorded for `id` since its last successful publish.
    pub fn interval_histogram(&self, id: HistogramId) -> &LatencyHistogram {
        &self.live.histograms[id.0]
    }

    /// Hands everything recorded since the last publish to the collector; call from a timer (every
    /// 100 ms or so — it bounds how stale a scrape can be). Costs two queue operations and a copy of
    /// the counters; no allocation. Returns `false` if the collector has not returned a spare yet:
    /// nothing is lost, the live interval keeps accumulating and goes out with the next publish.
    pub fn publish(&mut self) -> bool {
        let Some(mut next) = self.free.pop() else {
            self.deferred_publishes += 1;
            return false;
        };
        debug_assert!(next.is_reset(), "the collector resets intervals it returns");
        debug_assert_eq!(next.counters.len(), self.live.counters.len());
        next.counters.copy_from_slice(&self.live.counters);
        let finished = std::mem::replace(&mut self.live, next);
        self.full.push(finished).expect(
            "SPARE_INTERVALS buffers besides the live one circulate, and full holds as many",
        );
        true
    }

    /// How many publishes found no spare interval (the collector fell behind).
    pub fn deferred_publishes(&self) -> u64 {
        self.deferred_publishes
    }
}
