//! Recording, publishing and collecting metrics allocates nothing in steady state: a counting global
//! allocator watches this thread while it plays both the shard and the admin side.

use aurora::metrics::{Collector, CoreMetrics, LatencyHistogram, Registry, ShardMetrics};

mod counting_alloc;
use counting_alloc::allocations_in;

#[test]
fn counting_allocator_sees_a_histogram_being_created() {
    let n = allocations_in(|| drop(std::hint::black_box(LatencyHistogram::new())));
    assert!(n >= 1);
}

#[test]
fn record_add_publish_and_collect_do_not_allocate() {
    let mut registry = Registry::new();
    let core = CoreMetrics::register(&mut registry, &[2, 3, 4]).expect("valid names");
    let frames = registry
        .counter("aurora_test_frames_total", "Frames.", &[])
        .expect("valid");
    let schema = registry.finish();
    let (mut shard, link) = ShardMetrics::new(&schema);
    let mut collector = Collector::new(&schema);
    collector.attach(link).expect("same schema");
    let peer3 = core.replication_rtt(3).expect("peer 3");

    let mut published = 0;
    let n = allocations_in(|| {
        for i in 0..100_000u64 {
            // Spread over 1 ns .. beyond the 60 s ceiling, so saturation is exercised too.
            let value_ns = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 40);
            shard.record(core.commit_latency, value_ns);
            shard.record(peer3, value_ns / 3);
            shard.inc(frames);
            if i % 1_000 == 999 {
                published += usize::from(shard.publish());
                collector.collect();
            }
        }
    });
    assert_eq!(n, 0, "the metrics hot path allocated {n} times");
    assert_eq!(published, 100);
    assert_eq!(collector.histogram(core.commit_latency).count(), 100_000);
    assert!(collector.histogram(core.commit_latency).saturated() > 0);
    assert_eq!(collector.counter(frames), 100_000);
}
