//! A watch survives the death of the node serving it: after kill -9 of that node the stream
//! resumes on another node from the last delivered revision, and the watcher sees every change
//! exactly once, in revision order.

mod local_cluster;

use std::time::{Duration, Instant};

use aurora::cli::up::DurabilityArg;
use aurora::client::Watch;
use aurora::store::{EventKind, KeyRange};
use local_cluster::{LocalCluster, LEADER_WAIT};

#[test]
fn a_watch_resumes_after_its_node_dies_without_losing_or_repeating_events() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    cluster.wait_for_leader(LEADER_WAIT);
    let mut watch = Watch::open(cluster.options(), KeyRange::prefix(&b"w/"[..]), 0, false)
        .unwrap_or_else(|e| cluster.fail(&format!("open watch: {e}")));
    let mut writer = cluster.client();
    for i in 0..50u32 {
        writer
            .put(format!("w/{i:03}").as_bytes(), b"a")
            .expect("put");
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 50 && Instant::now() < deadline {
        if let Some(e) = watch.next_event(Duration::from_millis(100)).expect("event") {
            seen.push(e);
        }
    }
    assert_eq!(seen.len(), 50, "events before the kill");

    let serving = watch.connected_to().expect("the watch is connected");
    let victim = cluster
        .ids()
        .into_iter()
        .find(|id| cluster.client_addr(*id) == serving)
        .expect("the watch is served by a cluster node");
    cluster.kill(victim);
    cluster.wait_for_leader_other_than(Some(victim), LEADER_WAIT);
    let mut writer = cluster.client();
    for i in 50..100u32 {
        writer
            .put(format!("w/{i:03}").as_bytes(), b"b")
            .expect("put after the kill");
    }
    writer
        .delete(aurora::store::DeleteRangeRequest {
            range: KeyRange::single(&b"w/000"[..]),
            prev_kv: false,
        })
        .expect("delete");
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 101 && Instant::now() < deadline {
        match watch.next_event(Duration::from_millis(100)) {
            Ok(Some(e)) => seen.push(e),
            Ok(None) => {}
            Err(e) => cluster.fail(&format!("watch after the kill: {e}")),
        }
    }
    // Nothing more arrives: no duplicates trailing behind.
    assert!(watch
        .next_event(Duration::from_millis(500))
        .expect("quiet")
        .is_none());
    assert_eq!(seen.len(), 101, "every change once: 100 puts and 1 delete");
    for (i, e) in seen.iter().take(100).enumerate() {
        assert_eq!(e.kind, EventKind::Put);
        assert_eq!(
            e.kv.key,
            format!("w/{i:03}").as_bytes(),
            "event {i} in order"
        );
    }
    assert_eq!(seen[100].kind, EventKind::Delete);
    assert!(
        seen.windows(2).all(|w| w[0].revision() < w[1].revision()),
        "revisions strictly increase"
    );
    assert_ne!(watch.connected_to(), Some(serving), "the watch moved");
}
