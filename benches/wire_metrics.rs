//! Cost of the wire and metrics hot paths, each printed beside a baseline measured in the same run.
//!
//! - frame encode + validate vs. the checksum work alone (crc32c over the frame on both sides, plus
//!   the payload copy): the difference is what the header, its checks and the view cost;
//! - `ShardMetrics::record` vs. incrementing a plain array slot (the floor for counting anything);
//! - one `publish` (shard side) and one `collect` (admin side) of an interval.
//!
//! `cargo bench --bench wire_metrics`. Each figure is the median of 7 runs.

use std::hint::black_box;
use std::time::Instant;

use aurora::metrics::{Collector, CoreMetrics, Registry, ShardMetrics};
use aurora::wire::{encode_into, FrameKind, FrameRules, HeaderFields, HEADER_LEN};

const RUNS: usize = 7;

/// Median over `RUNS` of the time per operation of `run(ops)`, in nanoseconds.
fn ns_per_op(ops: u64, mut run: impl FnMut(u64)) -> f64 {
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run(ops);
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

fn report(what: &str, ns: f64, baseline_what: &str, baseline_ns: f64) {
    println!(
        "{what:<40} {ns:>9.1} ns/op   baseline ({baseline_what}) {baseline_ns:>8.1} ns/op   ratio {:.2}",
        ns / baseline_ns
    );
}

fn bench_wire(payload_len: usize) {
    let rules = FrameRules::new(1, 1 << 20).expect("below the ceiling");
    let payload = vec![0xA5u8; payload_len];
    let mut buf = vec![0u8; HEADER_LEN + payload_len];
    let ops = 2_000_000 / (1 + payload_len as u64 / 256);
    let frame_ns = ns_per_op(ops, |ops| {
        for i in 0..ops {
            let fields = HeaderFields {
                kind: FrameKind::Ping,
                cluster_id: 1,
                from: 1,
                to: 2,
                term: i,
                correlation_id: i,
            };
            let len = encode_into(&mut buf, &fields, |room| {
                room[..payload_len].copy_from_slice(&payload);
                payload_len
            })
            .expect("fits");
            let frame = rules.validate_frame(black_box(&buf[..len])).expect("valid");
            black_box(frame.payload());
        }
    });
    let baseline_ns = ns_per_op(ops, |ops| {
        for i in 0..ops {
            buf[HEADER_LEN..].copy_from_slice(&payload);
            buf[0] = i as u8;
            let sent = crc32c::crc32c(&buf);
            let received = crc32c::crc32c(black_box(&buf));
            black_box((sent, received));
        }
    });
    report(
        &format!("wire encode+validate, {payload_len} B payload"),
        frame_ns,
        "copy + crc32c twice",
        baseline_ns,
    );
}

fn bench_metrics() {
    let mut registry = Registry::new();
    let core = CoreMetrics::register(&mut registry, &[2, 3, 4, 5]).expect("valid names");
    let schema = registry.finish();
    let (mut shard, link) = ShardMetrics::new(&schema);
    let mut collector = Collector::new(&schema);
    collector.attach(link).expect("same schema");

    let ops = 10_000_000;
    let record_ns = ns_per_op(ops, |ops| {
        for i in 0..ops {
            // Latencies between ~1 µs and ~1 ms, varying so buckets are not all hot.
            shard.record(core.commit_latency, 1_000 + (i * 7919) % 1_000_000);
        }
    });
    let mut slots = [0u64; 64];
    let baseline_ns = ns_per_op(ops, |ops| {
        for i in 0..ops {
            slots[(i % 64) as usize] += 1;
            black_box(&mut slots);
        }
    });
    report(
        "metrics record (HDR, 1 ns..60 s, 3 digits)",
        record_ns,
        "plain array increment",
        baseline_ns,
    );

    // One interval at a time: 1000 values recorded (untimed), then publish and collect timed apart.
    let cycles = 200u32;
    let (mut publish_total_ns, mut collect_total_ns) = (0u128, 0u128);
    for c in 0..cycles {
        for i in 0..1_000u64 {
            shard.record(
                core.commit_latency,
                1_000 + (i * 7919 + u64::from(c)) % 1_000_000,
            );
        }
        let start = Instant::now();
        assert!(shard.publish());
        let published = Instant::now();
        black_box(collector.collect());
        publish_total_ns += (published - start).as_nanos();
        collect_total_ns += published.elapsed().as_nanos();
    }
    println!(
        "metrics publish (shard side)             {:>9.0} ns/interval   collect (admin side, {} histograms) {:.0} ns/interval",
        publish_total_ns as f64 / f64::from(cycles),
        schema.histogram_count(),
        collect_total_ns as f64 / f64::from(cycles),
    );
}

fn main() {
    // `cargo test --benches` runs this binary too; keep that quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    bench_wire(64);
    bench_wire(4096);
    bench_metrics();
}
