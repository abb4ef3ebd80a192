//! Three `aurora serve` processes whose peers talk over RDMA (RC queue pairs on rxe0..rxe2 of the
//! SoftRoCE VM; clients on the TCP client port): a writer commits through the client while the
//! leader is killed with SIGKILL; a new leader is elected over RDMA, every acknowledged write is
//! readable (and a 200 KiB value, replicated as fragments), and the killed node restarts,
//! reconnects its queue pairs and catches up. Twice over SEND (memory and fsync mode), once with
//! the one-sided ring: the leader RDMA-WRITEs its Appends into the followers' rings, and after the
//! kill the new leader writes into the survivor's (granted anew for its term).
//! Runs inside the VM only (hack/rdma-test.sh); needs the guest's three rxe devices.
//! In the guest /tmp is a tmpfs: fsync mode runs the whole WAL path, but fsync on tmpfs is not
//! a disk flush.
#![cfg(feature = "rdma")]

mod local_cluster;
mod rdma_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora::cli::up::DurabilityArg;
use aurora::client::NodeRole;
use aurora::config::NodeId;
use local_cluster::LocalCluster;
use rdma_support::Partition;

/// Longest a test waits for an election, connections or a catch-up: the guest is emulated (TCG),
/// so everything is 10–50× slower than on hardware.
const WAIT: Duration = Duration::from_secs(60);
/// A value of about six 32 KiB peer slabs.
const LARGE_VALUE_BYTES: usize = 200 * 1024;
/// rdma_cm port of node i is this plus i (the rdma_cm port space is not TCP's).
const RDMA_PORT_BASE: u16 = 18_100;

/// `--set` overrides that move the peers of a local cluster onto the guest's rxe devices: node i
/// at 192.0.2.i (the address rxe(i-1)'s GID maps; the device is found by that address), with
/// timings for an emulated machine.
fn rdma_overrides(ring: Ring) -> Vec<String> {
    let mut set = vec!["transport=rdma".to_owned()];
    if ring == Ring::On {
        set.push("rdma.ring_slots=64".to_owned());
    }
    for i in 0..3u16 {
        set.push(format!(
            "members[{i}].peer_addr=192.0.2.{}:{}",
            i + 1,
            RDMA_PORT_BASE + i + 1
        ));
    }
    set.extend(
        [
            "timing.heartbeat_interval_ms=50",
            "timing.election_timeout_min_ms=1000",
            "timing.election_timeout_max_ms=2000",
            "timing.request_timeout_ms=5000",
        ]
        .map(str::to_owned),
    );
    set
}

/// How the leader is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL; later restarted (in memory mode it comes back empty and catches up).
    Kill,
    /// 100% loss both ways on its host's veth (netem on the veth and its bridge port); later
    /// healed: the deposed leader finds a higher term and follows.
    Partition,
}

/// Whether the leader replicates through followers' one-sided rings (`rdma.ring_slots`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ring {
    Off,
    On,
}

/// A node's ring counters from `/status`: (frames written as leader, frames delivered as
/// follower, slots rejected as follower).
fn ring_frames(cluster: &LocalCluster, id: NodeId) -> (u64, u64, u64) {
    let status = admin_status(cluster, id)
        .unwrap_or_else(|| cluster.fail(&format!("node {id} does not answer /status")));
    let count = |key: &str| {
        status["ring"][key]
            .as_u64()
            .unwrap_or_else(|| cluster.fail(&format!("node {id}: no ring.{key} in {status}")))
    };
    (
        count("frames_written"),
        count("frames_delivered"),
        count("frames_rejected"),
    )
}

/// With the ring on, `leader` wrote Append frames into its followers' rings and each follower in
/// `followers` stepped frames from its own; with it off, nobody did.
fn assert_ring_use(cluster: &LocalCluster, ring: Ring, leader: NodeId, followers: &[NodeId]) {
    let (written, _, _) = ring_frames(cluster, leader);
    let delivered: Vec<u64> = followers
        .iter()
        .map(|&f| ring_frames(cluster, f).1)
        .collect();
    for &f in followers {
        let (_, _, rejected) = ring_frames(cluster, f);
        assert_eq!(rejected, 0, "follower {f} rejected ring slots");
    }
    match ring {
        Ring::On => assert!(
            written > 0 && delivered.iter().all(|&d| d > 0),
            "leader {leader} wrote {written} ring frames; followers {followers:?} delivered \
             {delivered:?}"
        ),
        Ring::Off => assert!(
            written == 0 && delivered.iter().all(|&d| d == 0),
            "the ring is off, yet leader {leader} wrote {written} and followers delivered \
             {delivered:?}"
        ),
    }
}

/// `/status` of a node from its admin port, if it answers.
fn admin_status(cluster: &LocalCluster, id: NodeId) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(cluster.layout.node(id).admin).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// Waits until `id` reports transport rdma with every peer in `peers` connected.
fn wait_connected_over_rdma(cluster: &LocalCluster, id: NodeId, peers: &[NodeId]) {
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(status) = admin_status(cluster, id) {
            assert_eq!(status["transport"], "rdma", "node {id}: {status}");
            let connected = |peer: NodeId| {
                status["peers"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|p| p["id"] == peer && p["connected"] == true)
                })
            };
            if peers.iter().all(|&p| connected(p)) {
                return;
            }
            last = Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.fail(&format!(
        "node {id} did not connect to {peers:?} over rdma within {WAIT:?}; last status {last:?}"
    ))
}

fn wait_for_leader(cluster: &mut LocalCluster, not: Option<NodeId>) -> NodeId {
    cluster.wait_for_leader_other_than(not, WAIT)
}

/// The rig's AURORA_RDMA_DEV0… variables describe the guest to the tests; `aurora serve` would
/// read them as configuration keys (AURORA_* is its environment layer) and refuse them. The
/// nodes and CLI runs inherit this process's environment, so they go from it first (the suite
/// runs one test at a time: no other thread reads the environment meanwhile).
fn hide_rig_variables() {
    let rig: Vec<String> = std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("AURORA_RDMA_"))
        .collect();
    for name in rig {
        std::env::remove_var(name);
    }
}

fn leader_loss_over_rdma(durability: DurabilityArg, ring: Ring, fault: Fault) {
    hide_rig_variables();
    let set = rdma_overrides(ring);
    let set: Vec<&str> = set.iter().map(String::as_str).collect();
    let mut cluster = LocalCluster::start_with(3, durability, &set);
    let ids = cluster.ids();
    for &id in &ids {
        let others: Vec<NodeId> = ids.iter().copied().filter(|&p| p != id).collect();
        wait_connected_over_rdma(&cluster, id, &others);
    }
    let old_leader = wait_for_leader(&mut cluster, None);
    // A value several peer slabs long: its AppendEntries travels as Fragment pieces, one SEND each.
    let large: Vec<u8> = (0..LARGE_VALUE_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    cluster
        .client()
        .put(b"rdma/large", &large)
        .unwrap_or_else(|e| cluster.fail(&format!("put of {LARGE_VALUE_BYTES} bytes: {e}")));

    // One writer commits sequentially through the client across the kill; what it was told is
    // committed is what must survive.
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        let mut client = cluster.client();
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            // Bounded by the stop flag, which the test raises within WAIT.
            for i in 0u64.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("rdma/{i:06}");
                match client.put(key.as_bytes(), format!("v{i}").as_bytes()) {
                    Ok(_) => acked.lock().expect("lock").push(i),
                    Err(e) => failures.push(format!("{key}: {e}")),
                }
            }
            failures
        })
    };
    let acked_count = || acked.lock().expect("lock").len();
    let deadline = Instant::now() + WAIT;
    while acked_count() < 20 {
        if Instant::now() > deadline {
            cluster.fail("the rdma cluster did not commit 20 writes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let before_kill = acked_count();
    let followers: Vec<NodeId> = ids.iter().copied().filter(|&p| p != old_leader).collect();
    assert_ring_use(&cluster, ring, old_leader, &followers);
    let host = old_leader - 1;
    let partition = match fault {
        Fault::Kill => {
            cluster.kill(old_leader);
            None
        }
        Fault::Partition => Some([
            Partition::new(&format!("veth{host}")),
            Partition::new(&format!("vbr{host}")),
        ]),
    };
    let new_leader = wait_for_leader(&mut cluster, Some(old_leader));
    let deadline = Instant::now() + WAIT;
    while acked_count() < before_kill + 20 {
        if Instant::now() > deadline {
            cluster.fail("writes did not resume after the leader's loss");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    let failures = writer.join().expect("writer thread");
    assert!(
        failures.is_empty(),
        "writes failed instead of riding the failover: {failures:?}"
    );
    let acked = acked.lock().expect("lock").clone();

    // The new leader got the surviving follower's grant for its term and writes into its ring.
    let survivor: Vec<NodeId> = followers
        .iter()
        .copied()
        .filter(|&p| p != new_leader)
        .collect();
    assert_ring_use(&cluster, ring, new_leader, &survivor);

    // Every acknowledged write, read linearizably through the new leader.
    let mut client = cluster.client();
    for &i in &acked {
        let key = format!("rdma/{i:06}");
        let kv = client
            .get(key.as_bytes())
            .unwrap_or_else(|e| cluster.fail(&format!("read {key}: {e}")))
            .unwrap_or_else(|| cluster.fail(&format!("acknowledged write {key} is lost")));
        assert_eq!(kv.value, format!("v{i}").as_bytes(), "{key}");
    }

    let kv = client
        .get(b"rdma/large")
        .unwrap_or_else(|e| cluster.fail(&format!("read rdma/large: {e}")))
        .unwrap_or_else(|| cluster.fail("the acknowledged large value is lost"));
    assert!(kv.value == large, "the large value came back changed");

    // The killed node comes back (the partitioned one is let back), redials / is redialed over
    // rdma_cm, and catches up: a stale read on it alone sees the last acknowledged write.
    match partition {
        None => cluster.start_node(old_leader),
        Some(sides) => sides.into_iter().for_each(Partition::heal),
    }
    let others: Vec<NodeId> = ids.iter().copied().filter(|&p| p != old_leader).collect();
    wait_connected_over_rdma(&cluster, old_leader, &others);
    let last_index = *acked.last().expect("writes were acked");
    let last = format!("rdma/{last_index:06}");
    let last_value = format!("v{last_index}");
    let endpoint = cluster.client_addr(old_leader).to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let out = cluster.cli(&["get", &last, "--stale", "--endpoints", &endpoint]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&last_value) {
            break;
        }
        if Instant::now() > deadline {
            cluster.fail(&format!(
                "restarted node {old_leader} never caught up to {last}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if fault == Fault::Partition {
        // The deposed leader saw the higher term and follows; its old ring grants are dead.
        let status = cluster
            .status(old_leader)
            .unwrap_or_else(|| cluster.fail(&format!("node {old_leader} does not answer")));
        assert_eq!(
            status.role,
            NodeRole::Follower,
            "the deposed leader {old_leader} still claims {:?} in term {}",
            status.role,
            status.term
        );
    }
    println!(
        "rdma cluster ({durability:?}, ring {ring:?}, {fault:?}): node {old_leader} lost, node \
         {new_leader} led after it; {} writes acknowledged and read back; node {old_leader} back \
         and caught up",
        acked.len()
    );
}

#[test]
fn rdma_cluster_survives_the_leaders_loss_in_memory_mode() {
    leader_loss_over_rdma(DurabilityArg::Memory, Ring::Off, Fault::Kill);
}

#[test]
fn rdma_cluster_survives_the_leaders_loss_in_fsync_mode() {
    leader_loss_over_rdma(DurabilityArg::Fsync, Ring::Off, Fault::Kill);
}

#[test]
fn rdma_cluster_replicating_through_the_one_sided_ring_survives_the_leaders_loss() {
    leader_loss_over_rdma(DurabilityArg::Memory, Ring::On, Fault::Kill);
}

#[test]
fn rdma_cluster_on_the_ring_deposes_a_partitioned_leader_and_takes_it_back() {
    leader_loss_over_rdma(DurabilityArg::Memory, Ring::On, Fault::Partition);
}
