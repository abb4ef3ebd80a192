//! The transport benchmark runs end to end and reports what `--json` promises (no timing is
//! asserted: benchmarks measure, tests do not).

use aurora::cli::bench::json_report;
use aurora::transport::bench::{run, PingPongSpec};

#[test]
fn pingpong_bench_measures_every_round_trip_and_reports_the_ratio_to_the_floor() {
    let spec = PingPongSpec {
        payload_bytes: vec![64, 4096],
        warmup_round_trips: 20,
        round_trips: 200,
        cores: None,
    };
    let cases = run(&spec).unwrap();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        assert_eq!(case.aurora.count, 200);
        assert_eq!(case.floor.count, 200);
        assert!(case.floor.p50_ns > 0 && case.aurora.p50_ns > 0);
        assert!(
            case.aurora.p50_ns <= case.aurora.p99_ns && case.aurora.p99_ns <= case.aurora.p999_ns
        );
        let ratio = case.aurora.p50_ns as f64 / case.floor.p50_ns as f64;
        assert!((case.ratio_p50 - ratio).abs() < 1e-9);
    }
    let json = json_report(&spec, &cases);
    for key in [
        "aurora_p50_ns",
        "floor_p50_ns",
        "ratio_p50",
        "aurora_p99_ns",
        "aurora_p999_ns",
        "floor_p99_ns",
        "cases",
    ] {
        assert!(!json[key].is_null(), "missing {key} in {json}");
    }
    assert_eq!(json["aurora_p50_ns"], cases[0].aurora.p50_ns);
    assert_eq!(json["cases"][1]["payload_bytes"], 4096);
}
