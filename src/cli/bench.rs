//! `aurora bench …`: benchmarks that print the baseline they compare against, measured in the
//! same run. One subcommand per kind; `transport` is the first.

use crate::transport::bench::{self, CaseResult, PingPongSpec};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Ping-pong between two pinned shards over tcp_uring on loopback, beside a raw
    /// non-blocking-socket floor measured in the same run (64 B and 4 KiB payloads).
    Transport(TransportArgs),
}

#[derive(Debug, Args)]
pub struct TransportArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measured round trips per path and size.
    #[arg(long, default_value_t = 100_000)]
    pub round_trips: u64,
    /// Round trips run first and not recorded.
    #[arg(long, default_value_t = 10_000)]
    pub warmup: u64,
    /// Do not pin the two threads to the first two cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Blocks the round trips are split into, alternating floor and tcp_uring, so background
    /// load hits both alike.
    #[arg(long, default_value_t = 10)]
    pub blocks: u64,
}

/// `aurora bench` alone benchmarks a running cluster ([`super::bench_cluster`]); a subcommand
/// names another benchmark.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub kind: Option<BenchKind>,
    #[command(flatten)]
    pub cluster: super::bench_cluster::ClusterBenchArgs,
}

/// Runs a benchmark; returns the process exit code.
pub fn run(args: BenchArgs) -> i32 {
    match args.kind {
        None => super::bench_cluster::run(&args.cluster),
        Some(BenchKind::Transport(args)) => transport(&args),
    }
}

fn transport(args: &TransportArgs) -> i32 {
    let spec = PingPongSpec {
        payload_bytes: vec![64, 4096],
        warmup_round_trips: args.warmup,
        round_trips: args.round_trips.max(1),
        blocks: args.blocks,
        cores: if args.no_pin {
            None
        } else {
            bench::default_cores()
        },
    };
    match bench::run(&spec) {
        Ok(cases) => {
            if args.json {
                println!("{}", json_report(&spec, &cases));
            } else {
                print!("{}", table_report(&spec, &cases));
            }
            0
        }
        Err(e) => {
            eprintln!("aurora bench transport: {e}");
            1
        }
    }
}

/// One JSON object; the top-level `aurora_*`/`floor_*`/`ratio_p50` fields are the 64 B case.
pub fn json_report(spec: &PingPongSpec, cases: &[CaseResult]) -> serde_json::Value {
    let headline = cases.first();
    serde_json::json!({
        "bench": "transport_pingpong",
        "transport": "tcp_uring",
        "floor": "raw non-blocking TCP sockets spinning on read(2)",
        "payload_bytes": headline.map(|c| c.payload_bytes),
        "aurora_p50_ns": headline.map(|c| c.aurora.p50_ns),
        "aurora_p99_ns": headline.map(|c| c.aurora.p99_ns),
        "aurora_p999_ns": headline.map(|c| c.aurora.p999_ns),
        "floor_p50_ns": headline.map(|c| c.floor.p50_ns),
        "floor_p99_ns": headline.map(|c| c.floor.p99_ns),
        "floor_p999_ns": headline.map(|c| c.floor.p999_ns),
        "ratio_p50": headline.map(|c| (c.ratio_p50 * 1000.0).round() / 1000.0),
        "round_trips": spec.round_trips,
        "warmup_round_trips": spec.warmup_round_trips,
        "blocks": spec.blocks,
        "pinned_cores": spec.cores.map(|(a, b)| [a, b]),
        "cases": cases,
    })
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

/// The human-readable table.
pub fn table_report(spec: &PingPongSpec, cases: &[CaseResult]) -> String {
    let mut out = format!(
        "transport ping-pong over loopback: {} round trips after {} warm-up in {} alternating blocks, threads {}\n\
         floor = raw non-blocking TCP sockets (TCP_NODELAY) spinning on read(2), same run\n\n\
         {:>8}  {:<11} {:>10} {:>10} {:>10}\n",
        spec.round_trips,
        spec.warmup_round_trips,
        spec.blocks,
        match spec.cores {
            Some((a, b)) => format!("pinned to cores {a} and {b}"),
            None => "unpinned".to_string(),
        },
        "payload",
        "path",
        "p50",
        "p99",
        "p99.9"
    );
    for c in cases {
        for (name, p) in [("raw socket", c.floor), ("tcp_uring", c.aurora)] {
            out += &format!(
                "{:>6} B  {:<11} {:>10} {:>10} {:>10}\n",
                c.payload_bytes,
                name,
                us(p.p50_ns),
                us(p.p99_ns),
                us(p.p999_ns)
            );
        }
        out += &format!(
            "{:>8}  ratio p50 tcp_uring / floor = {:.2}x (goal <= 1.30x); client io_uring_enter \
             calls per round trip: {:.2}\n\n",
            "", c.ratio_p50, c.aurora_enters_per_round_trip
        );
    }
    out
}
