//! Locks across a leader failure: a lock request queued behind a holder survives the death of the
//! leader that queued it (the client re-sends it to the new leader within its session, which
//! answers "still waiting" and delivers the grant later), and the fencing token grows.

mod local_cluster;

use std::time::Duration;

use aurora::cli::up::DurabilityArg;
use local_cluster::{LocalCluster, LEADER_WAIT};

#[test]
fn a_queued_lock_is_granted_after_the_leader_that_queued_it_died() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let mut holder = cluster.client();
    let holder_lease = holder.lease_grant(60_000).expect("lease");
    let first_token = holder
        .lock(b"L", holder_lease, Duration::from_secs(5))
        .expect("the first lock is granted at once");

    let opts = cluster.options();
    let waiter = std::thread::spawn(move || {
        let mut client = aurora::client::Client::connect(opts).expect("connect");
        let lease = client.lease_grant(60_000).expect("lease");
        client.lock(b"L", lease, Duration::from_secs(60))
    });
    // Let the waiter queue behind the holder, then kill the leader that queued it.
    std::thread::sleep(Duration::from_millis(500));
    cluster.kill(leader);
    cluster.wait_for_leader_other_than(Some(leader), LEADER_WAIT);
    assert!(!waiter.is_finished(), "the waiter is still queued");
    holder
        .unlock(b"L", first_token)
        .unwrap_or_else(|e| cluster.fail(&format!("unlock on the new leader: {e}")));
    let second_token = waiter
        .join()
        .expect("waiter thread")
        .unwrap_or_else(|e| cluster.fail(&format!("queued lock after failover: {e}")));
    assert!(
        second_token > first_token,
        "fencing tokens grow: {first_token} then {second_token}"
    );
}
