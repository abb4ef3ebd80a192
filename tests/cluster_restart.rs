//! Restarting every node of a 3-node fsync cluster (kill -9 all, start all) keeps every
//! acknowledged write, lease-free key, counter and revision.

mod local_cluster;

use aurora::cli::up::DurabilityArg;
use aurora::store::{DeleteRangeRequest, KeyRange, RangeRequest};
use local_cluster::{LocalCluster, LEADER_WAIT};

#[test]
fn restarting_every_node_keeps_the_state() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Fsync);
    let mut client = cluster.client();
    for i in 0..200u32 {
        client
            .put(format!("restart/{i:03}").as_bytes(), &i.to_le_bytes())
            .expect("put");
    }
    let (_, deleted) = client
        .delete(DeleteRangeRequest {
            range: KeyRange::single(&b"restart/007"[..]),
            prev_kv: false,
        })
        .expect("delete");
    assert_eq!(deleted.deleted, 1);
    client.fetch_add(b"counter/restart", 42).expect("counter");
    let (revision_before, _) = client
        .range(RangeRequest::latest(KeyRange::prefix(&b"restart/"[..])))
        .expect("range");
    drop(client);

    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.start_node(id);
    }
    cluster.wait_for_leader(LEADER_WAIT);

    let mut client = cluster.client();
    let (revision_after, reply) = client
        .range(RangeRequest::latest(KeyRange::prefix(&b"restart/"[..])))
        .unwrap_or_else(|e| cluster.fail(&format!("range after restart: {e}")));
    assert!(
        revision_after >= revision_before,
        "revision went back from {revision_before} to {revision_after}"
    );
    assert_eq!(reply.count, 199, "200 puts minus one delete survive");
    for kv in &reply.kvs {
        let i: u32 = std::str::from_utf8(&kv.key["restart/".len()..])
            .expect("utf8")
            .parse()
            .expect("index");
        assert_ne!(i, 7, "the deleted key stays deleted");
        assert_eq!(kv.value, i.to_le_bytes());
    }
    assert_eq!(client.counter(b"counter/restart").expect("counter"), 42);
}
