//! `aurora health` tells a serving cluster from one that lost its quorum: exit 0 while a majority
//! lives, exit 1 (with the reason on one line) once it does not.

mod local_cluster;

use aurora::cli::up::DurabilityArg;
use local_cluster::{LocalCluster, LEADER_WAIT};

#[test]
fn health_fails_when_the_quorum_is_lost() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("3 nodes");
    cluster.kill(follower);
    let degraded = cluster.cli_ok(&["health"]);
    assert!(degraded.contains("healthy: leader node"), "{degraded}");
    assert!(degraded.contains("2/3 endpoints reachable"), "{degraded}");

    cluster.kill(leader);
    let out = cluster.cli(&["health", "--timeout-ms", "2000"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let verdict = text.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with("unhealthy: 1/3 endpoints reachable"),
        "{text}"
    );
}
