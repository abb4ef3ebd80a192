//! Admin HTTP: /metrics (HDR quantiles of commit latency, replication RTT per peer, fsync and
//! apply time), /status (JSON), /health.

mod server_support;

use std::time::Duration;

use server_support::{admin_get, put_anywhere, wait_metric, Cluster};

/// The value of an unlabelled Prometheus sample, e.g. `aurora_commit_latency_seconds_count`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

#[test]
fn the_first_scrape_after_a_burst_shows_every_commit() {
    let cluster = Cluster::start(3, "memory");
    let leader = cluster.wait_leader(Duration::from_secs(10));
    for i in 0..40 {
        put_anywhere(&cluster, &format!("b{i}"), b"x", Duration::from_secs(10));
    }
    let leader_now = cluster.wait_leader(Duration::from_secs(10));
    // Long enough for the loop to publish several intervals (every 100 ms) while nobody scrapes.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, metrics) = admin_get(cluster.ports[leader_now - 1].admin, "/metrics");
    assert_eq!(code, 200);
    let commits = sample(&metrics, "aurora_commit_latency_seconds_count").unwrap_or(0.0);
    let min_commits = if leader_now == leader { 40.0 } else { 1.0 };
    assert!(
        commits >= min_commits,
        "first scrape shows {commits} commits, expected at least {min_commits}:\n{metrics}"
    );
}

#[test]
fn admin_endpoints_report_the_cluster() {
    let cluster = Cluster::start(3, "fsync");
    let leader = cluster.wait_leader(Duration::from_secs(10));
    for i in 0..50 {
        put_anywhere(&cluster, &format!("m{i}"), b"x", Duration::from_secs(10));
    }
    let port = cluster.ports[leader - 1].admin;
    // Histograms reach the admin thread when the loop publishes (every 100 ms).
    wait_metric(port, "aurora_commit_latency_seconds_count 5");
    let (code, metrics) = admin_get(port, "/metrics");
    assert_eq!(code, 200);
    for needle in [
        "aurora_commit_latency_seconds{quantile=\"0.99\"}",
        "aurora_fsync_duration_seconds{quantile=\"0.5\"}",
        "aurora_apply_duration_seconds_count",
        "aurora_replication_rtt_seconds{peer=",
        "aurora_is_leader 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let (code, status) = admin_get(port, "/status");
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    assert_eq!(json["role"], "leader");
    assert_eq!(json["node_id"], leader as u64);
    assert_eq!(json["leader"], leader as u64);
    assert_eq!(json["durability"], "fsync");
    assert!(json["commit_index"].as_u64().unwrap() >= 50);
    assert_eq!(json["peers"].as_array().unwrap().len(), 2);
    assert_eq!(admin_get(port, "/health").0, 200);
    assert_eq!(admin_get(port, "/nope").0, 404);
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let (_, status) = admin_get(cluster.ports[follower - 1].admin, "/status");
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(json["role"], "follower");
    assert_eq!(json["leader"], leader as u64);
}
