//! Metrics: HDR latency histograms and counters recorded per shard without allocation, locks or
//! atomics, merged on the admin thread and rendered as Prometheus text (DESIGN.md §8).
//!
//! ```text
//!  start-up   Registry ──finish──▶ Arc<Schema> ──▶ ShardMetrics::new (on each shard thread)
//!                                       │                 │ ShardLink
//!                                       ▼                 ▼
//!  admin      Collector::attach ◀─────────────────────────┘
//!  hot path   ShardMetrics::record / add         (plain stores into shard-owned memory)
//!  timer      ShardMetrics::publish ──full──▶ Collector::collect ──free──▶ back to the shard
//!  scrape     Collector::collect, then Collector::render_prometheus
//! ```
//!
//! # How a shard hands its numbers to the admin thread
//!
//! Each shard owns a *live interval* (one [`LatencyHistogram`] per histogram series, one `u64` per
//! counter series) and two spares. Publishing swaps the live interval for a reset spare taken from
//! a bounded SPSC queue (`crossbeam_queue::ArrayQueue`) and pushes the finished one into a second
//! queue; the collector merges it into its running totals, resets it and queues it back.
//!
//! Why this and not a seqlock: a histogram is ~200 KiB of buckets, so a seqlock would make the
//! shard copy every bucket on each publish (or the reader retry a 200 KiB read while the shard keeps
//! writing), and a seqlock over non-atomic memory is a data race in Rust's memory model unless every
//! bucket becomes an atomic — which would put atomics back on the hot path. The exchange moves only
//! ownership: the shard's cost per publish is two lock-free queue operations plus copying its
//! counters (a few hundred bytes); the O(buckets) work of merging and resetting happens on the admin
//! thread. Buffers circulate and are never created after start-up, so neither side allocates. If the
//! collector is slow the shard simply keeps recording into its live interval — nothing is dropped,
//! staleness grows instead, and the shard counts the deferred publish.
//!
//! Histograms hold *interval* values (what was recorded since the last publish) so the collector
//! can add them up; counters travel as cumulative values, so the shard can always read its own.

mod collector;
mod core;
mod histogram;
mod prometheus;
mod registry;
mod shard;

pub use self::core::CoreMetrics;
pub use collector::Collector;
pub use histogram::LatencyHistogram;
pub use prometheus::{QUANTILES, SATURATED_FAMILY, SATURATED_LABEL};
pub use registry::{CounterId, HistogramId, MetricsError, Registry, Schema, MAX_SERIES};
pub use shard::{ShardLink, ShardMetrics, SPARE_INTERVALS};
