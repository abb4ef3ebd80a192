//! `cargo bench --bench transport`: the transport ping-pong of `aurora bench transport`, printed as
//! a table with the raw-socket floor measured in the same run. Set AURORA_BENCH_ROUND_TRIPS to
//! change the measured round trips (default 100000, after 10000 warm-up).

use aurora::cli::bench::table_report;
use aurora::transport::bench::{default_cores, run, PingPongSpec};

fn main() {
    let round_trips = std::env::var("AURORA_BENCH_ROUND_TRIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let spec = PingPongSpec {
        payload_bytes: vec![64, 4096],
        warmup_round_trips: 10_000,
        round_trips,
        cores: default_cores(),
    };
    match run(&spec) {
        Ok(cases) => print!("{}", table_report(&spec, &cases)),
        Err(e) => {
            eprintln!("transport bench failed: {e}");
            std::process::exit(1);
        }
    }
}
