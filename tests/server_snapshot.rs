//! Periodic snapshots and log compaction in the daemon: with a tiny `snapshot_every_entries` and
//! an in-memory log too small for the workload, a 3-node fsync cluster takes snapshots on every
//! node, never answers "log full", and restarting every node recovers from snapshot + WAL tail; a
//! follower stopped (fsync) or restarted empty (memory) while the others compacted past it gets
//! the snapshot, larger than one peer frame, in chunks and serves its data.

mod local_cluster;

use aurora::cli::up::DurabilityArg;
use aurora::store::{KeyRange, RangeRequest};
use local_cluster::{LocalCluster, LEADER_WAIT};

/// Writes: more than the in-memory log holds (1024 entries at the limits below), so without
/// compaction the leader would refuse them with "log full".
const WRITES: u32 = 2_500;

/// Small limits: a 256 KiB in-memory log (1024 entries) and a snapshot every 200 entries.
const SETTINGS: &[&str] = &[
    "storage.snapshot_every_entries=200",
    "limits.max_frame_bytes=65536",
    "limits.max_value_bytes=16384",
    "limits.max_log_bytes_in_memory=262144",
];

fn key(i: u32) -> Vec<u8> {
    format!("snap/{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{}", u64::from(i) * 7919).into_bytes()
}

/// Checks every written key has its value, reading in pages of 100 keys (one answer fits a frame).
fn check_all(cluster: &LocalCluster) {
    let mut client = cluster.client();
    let mut seen = 0u32;
    for page in 0..WRITES.div_ceil(100) {
        let prefix = format!("snap/{page:03}");
        let (_, reply) = client
            .range(RangeRequest::latest(KeyRange::prefix(prefix.as_bytes())))
            .unwrap_or_else(|e| cluster.fail(&format!("range {prefix}: {e}")));
        for kv in &reply.kvs {
            let i: u32 = std::str::from_utf8(&kv.key[b"snap/".len()..])
                .expect("utf8")
                .parse()
                .expect("index");
            assert_eq!(kv.value, value(i), "value of key {i}");
            seen += 1;
        }
    }
    assert_eq!(seen, WRITES, "every acknowledged write is there");
}

fn snapshot_files(cluster: &LocalCluster, id: u64) -> usize {
    let dir = cluster.layout.data_dir(id).join("snapshots");
    std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn snapshots_compact_the_log_and_restart_recovers_from_them() {
    let mut cluster = LocalCluster::start_with(3, DurabilityArg::Fsync, SETTINGS);
    let mut client = cluster.client();
    for i in 0..WRITES {
        client
            .put(&key(i), &value(i))
            .unwrap_or_else(|e| cluster.fail(&format!("put {i} of {WRITES}: {e}")));
    }
    drop(client);
    check_all(&cluster);
    for id in cluster.ids() {
        assert!(
            snapshot_files(&cluster, id) > 0,
            "node {id} saved no snapshot after {WRITES} writes\n{}",
            cluster.log(id)
        );
    }

    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.start_node(id);
    }
    cluster.wait_for_leader(LEADER_WAIT);
    check_all(&cluster);
    // And the restarted cluster keeps taking writes past its log bound.
    let mut client = cluster.client();
    for i in 0..WRITES {
        client
            .put(&key(i), &value(i))
            .unwrap_or_else(|e| cluster.fail(&format!("rewrite {i}: {e}")));
    }
    drop(client);
    check_all(&cluster);
}

#[test]
fn a_follower_behind_the_compaction_point_installs_the_snapshot_in_chunks() {
    follower_catches_up_from_a_snapshot(DurabilityArg::Fsync);
}

/// A memory-mode node restarts with an empty log; behind a compaction only a snapshot helps.
#[test]
fn a_restarted_memory_mode_follower_installs_the_snapshot() {
    follower_catches_up_from_a_snapshot(DurabilityArg::Memory);
}

fn follower_catches_up_from_a_snapshot(durability: DurabilityArg) {
    let mut cluster = LocalCluster::start_with(3, durability, SETTINGS);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let lagging = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    cluster.kill(lagging);
    // Past two snapshots (every 200 entries) and past the in-memory log bound: the entries the
    // stopped follower misses are gone from every log, so only the snapshot can bring it back.
    // The store then encodes to well over one 32 KiB peer frame.
    let mut client = cluster.client();
    for i in 0..WRITES {
        client.put(&key(i), &value(i)).unwrap_or_else(|e| {
            cluster.fail(&format!("put {i} while node {lagging} is down: {e}"))
        });
    }
    let now_leader = cluster.wait_for_leader(LEADER_WAIT);
    let target = cluster
        .status(now_leader)
        .expect("leader status")
        .commit_index;
    drop(client);
    cluster.start_node(lagging);

    let deadline = std::time::Instant::now() + LEADER_WAIT;
    loop {
        let applied = cluster.status(lagging).map_or(0, |s| s.applied_index);
        if applied >= target {
            break;
        }
        if std::time::Instant::now() > deadline {
            cluster.fail(&format!(
                "node {lagging} applied {applied} of {target} within {LEADER_WAIT:?}"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = cluster.log(lagging);
    assert!(
        log.contains("installed the leader's snapshot"),
        "node {lagging} caught up without installing a snapshot\n{log}"
    );
    if durability == DurabilityArg::Fsync {
        assert!(
            snapshot_files(&cluster, lagging) > 0,
            "node {lagging} did not save the installed snapshot\n{log}"
        );
        let largest_bytes = std::fs::read_dir(cluster.layout.data_dir(lagging).join("snapshots"))
            .expect("snapshot dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        assert!(
            largest_bytes > 32 * 1024,
            "the snapshot ({largest_bytes} bytes) fits one frame: chunking is not exercised"
        );
    }
    // It serves the data from its own state.
    let mut options = cluster.options();
    options.endpoints = vec![cluster.client_addr(lagging)];
    options.consistency = aurora::client::Consistency::Stale;
    let mut client = aurora::client::Client::connect(options).expect("connect to the follower");
    for i in (0..WRITES).step_by(7) {
        let kv = client
            .get(&key(i))
            .unwrap_or_else(|e| cluster.fail(&format!("stale get {i} on node {lagging}: {e}")))
            .unwrap_or_else(|| cluster.fail(&format!("key {i} missing on node {lagging}")));
        assert_eq!(kv.value, value(i));
    }
}
