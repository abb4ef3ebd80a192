//! The admin thread's side: gathers every shard's intervals and merges them for scraping.

use std::sync::Arc;

use super::histogram::LatencyHistogram;
use super::prometheus;
use super::registry::{CounterId, HistogramId, MetricsError, Schema};
use super::shard::{ShardLink, SPARE_INTERVALS};

/// One attached shard: its queues and its counters as of its last collected interval.
#[derive(Debug)]
struct Shard {
    link: ShardLink,
    counters: Vec<u64>,
}

/// Merges every shard's metrics on the admin thread; never touches a shard's live data.
#[derive(Debug)]
pub struct Collector {
    schema: Arc<Schema>,
    shards: Vec<Shard>,
    /// Every value every shard has published since start-up, per histogram series.
    histograms: Vec<LatencyHistogram>,
}

impl Collector {
    pub fn new(schema: &Arc<Schema>) -> Self {
        Self {
            schema: Arc::clone(schema),
            shards: Vec::new(),
            histograms: (0..schema.histogram_count())
                .map(|_| LatencyHistogram::new())
                .collect(),
        }
    }

    /// Starts collecting from a shard created with this collector's schema.
    pub fn attach(&mut self, link: ShardLink) -> Result<(), MetricsError> {
        if !Arc::ptr_eq(&link.schema, &self.schema) {
            return Err(MetricsError::SchemaMismatch);
        }
        self.shards.push(Shard {
            link,
            counters: vec![0; self.schema.counter_count()],
        });
        Ok(())
    }

    /// Merges every interval the shards have published and returns the buffers to them. Call before
    /// rendering, and on a timer so shards get their spares back. Returns how many intervals merged.
    pub fn collect(&mut self) -> usize {
        let mut merged = 0;
        for shard in &mut self.shards {
            // Bounded: at most the buffers that exist, even if the shard keeps publishing meanwhile.
            for _ in 0..SPARE_INTERVALS {
                let Some(mut interval) = shard.link.full.pop() else {
                    break;
                };
                for (total, delta) in self.histograms.iter_mut().zip(&interval.histograms) {
                    total.merge(delta);
                }
                shard.counters.copy_from_slice(&interval.counters);
                interval
                    .histograms
                    .iter_mut()
                    .for_each(LatencyHistogram::reset);
                shard
                    .link
                    .free
                    .push(interval)
                    .expect("free holds every spare, and this one came out of full");
                merged += 1;
            }
        }
        merged
    }

    /// Every value all shards published for `id` since start-up.
    pub fn histogram(&self, id: HistogramId) -> &LatencyHistogram {
        &self.histograms[id.0]
    }

    /// The sum over shards of counter `id`, as of each shard's last collected interval.
    pub fn counter(&self, id: CounterId) -> u64 {
        self.counter_at(id.0)
    }

    fn counter_at(&self, index: usize) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.counters[index]))
    }

    /// Appends the Prometheus text exposition (format 0.0.4) of the merged metrics to `out`.
    pub fn render_prometheus(&self, out: &mut String) {
        prometheus::render(&self.schema, &self.histograms, |i| self.counter_at(i), out);
    }
}
