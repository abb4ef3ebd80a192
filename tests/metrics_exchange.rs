//! Shards hand their metrics to the collector through the interval exchange: nothing recorded is
//! lost or counted twice, whether the collector keeps up or not.

use std::sync::Arc;

use aurora::metrics::{
    Collector, CounterId, HistogramId, MetricsError, Registry, Schema, ShardMetrics,
    SPARE_INTERVALS,
};

fn schema() -> (Arc<Schema>, HistogramId, CounterId) {
    let mut registry = Registry::new();
    let latency = registry
        .histogram("aurora_test_latency_seconds", "Test latency.", &[])
        .expect("valid");
    let events = registry
        .counter("aurora_test_events_total", "Test events.", &[])
        .expect("valid");
    (registry.finish(), latency, events)
}

#[test]
fn published_values_reach_the_collector_only_after_collect() {
    let (schema, latency, _) = schema();
    let (mut shard, link) = ShardMetrics::new(&schema);
    let mut collector = Collector::new(&schema);
    collector.attach(link).expect("same schema");

    shard.record(latency, 1_000);
    shard.record(latency, 2_000);
    assert!(shard.publish());
    assert_eq!(shard.interval_histogram(latency).count(), 0);
    assert_eq!(collector.histogram(latency).count(), 0);

    assert_eq!(collector.collect(), 1);
    assert_eq!(collector.histogram(latency).count(), 2);
    assert_eq!(collector.histogram(latency).sum_ns(), 3_000);
    assert_eq!(collector.collect(), 0, "an interval is merged once");
    assert_eq!(collector.histogram(latency).count(), 2);
}

#[test]
fn a_shard_ahead_of_its_collector_defers_and_loses_nothing() {
    let (schema, latency, _) = schema();
    let (mut shard, link) = ShardMetrics::new(&schema);
    let mut collector = Collector::new(&schema);
    collector.attach(link).expect("same schema");

    let mut recorded = 0;
    for _ in 0..SPARE_INTERVALS {
        shard.record(latency, 10);
        recorded += 1;
        assert!(shard.publish());
    }
    shard.record(latency, 10);
    recorded += 1;
    assert!(!shard.publish(), "every spare is with the collector");
    assert_eq!(shard.deferred_publishes(), 1);
    assert_eq!(shard.interval_histogram(latency).count(), 1);

    assert_eq!(collector.collect(), SPARE_INTERVALS);
    assert!(shard.publish());
    collector.collect();
    assert_eq!(collector.histogram(latency).count(), recorded);
}

#[test]
fn counters_stay_cumulative_on_the_shard_and_sum_over_shards() {
    let (schema, _, events) = schema();
    let (mut a, link_a) = ShardMetrics::new(&schema);
    let (mut b, link_b) = ShardMetrics::new(&schema);
    let mut collector = Collector::new(&schema);
    collector.attach(link_a).expect("same schema");
    collector.attach(link_b).expect("same schema");

    a.add(events, 5);
    b.inc(events);
    assert!(a.publish() && b.publish());
    a.add(events, 2);
    assert_eq!(
        a.counter(events),
        7,
        "publishing does not reset a shard's counters"
    );
    assert!(a.publish());
    collector.collect();
    assert_eq!(collector.counter(events), 7 + 1);
}

#[test]
fn a_shard_built_from_another_schema_is_refused() {
    let (schema, _, _) = schema();
    let (other, _, _) = self::schema();
    let (_shard, link) = ShardMetrics::new(&other);
    let mut collector = Collector::new(&schema);
    assert_eq!(collector.attach(link), Err(MetricsError::SchemaMismatch));
}

#[test]
fn shard_and_admin_threads_exchange_concurrently_without_loss() {
    const VALUES: u64 = 200_000;
    let (schema, latency, events) = schema();
    let (mut shard, link) = ShardMetrics::new(&schema);
    let mut collector = Collector::new(&schema);
    collector.attach(link).expect("same schema");

    let recorder = std::thread::spawn(move || {
        for v in 0..VALUES {
            shard.record(latency, v);
            shard.inc(events);
            if v % 1_000 == 0 {
                shard.publish();
            }
        }
        shard
    });
    // Collect while the shard records; each call is bounded, the loop ends with the recorder.
    while !recorder.is_finished() {
        collector.collect();
        std::thread::yield_now();
    }
    let mut shard = recorder.join().expect("recorder thread does not panic");
    // Once the collector has drained the queue every spare is back, so the final publish succeeds.
    collector.collect();
    assert!(shard.publish());
    collector.collect();
    assert_eq!(collector.histogram(latency).count(), VALUES);
    assert_eq!(
        collector.histogram(latency).sum_ns(),
        VALUES * (VALUES - 1) / 2
    );
    assert_eq!(collector.counter(events), VALUES);
}
