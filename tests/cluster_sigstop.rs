//! A leader that stops answering without closing its connections (SIGSTOP: a hung or partitioned
//! node) is abandoned: requests move to the new leader, including a lock request that was queued
//! on the stopped node and is granted by the new one.

mod local_cluster;

use std::time::Duration;

use aurora::cli::up::DurabilityArg;
use local_cluster::{LocalCluster, LEADER_WAIT};

#[test]
fn requests_and_queued_locks_move_off_a_stopped_leader() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let mut holder = cluster.client();
    let holder_lease = holder.lease_grant(60_000).expect("lease");
    let first = holder
        .lock(b"S", holder_lease, Duration::from_secs(5))
        .expect("granted");
    let opts = cluster.options();
    let waiter = std::thread::spawn(move || {
        let mut client = aurora::client::Client::connect(opts).expect("connect");
        let lease = client.lease_grant(60_000).expect("lease");
        client.lock(b"S", lease, Duration::from_secs(60))
    });
    std::thread::sleep(Duration::from_millis(500));

    cluster.signal(leader, libc::SIGSTOP);
    cluster.wait_for_leader_other_than(Some(leader), LEADER_WAIT);
    holder
        .put(b"after-stop", b"served")
        .unwrap_or_else(|e| cluster.fail(&format!("put with the leader stopped: {e}")));
    holder
        .unlock(b"S", first)
        .unwrap_or_else(|e| cluster.fail(&format!("unlock with the leader stopped: {e}")));
    let second = waiter
        .join()
        .expect("waiter thread")
        .unwrap_or_else(|e| cluster.fail(&format!("queued lock after SIGSTOP: {e}")));
    assert!(second > first, "fencing tokens grow: {first} then {second}");
    cluster.signal(leader, libc::SIGCONT);
}
