//! Periodic snapshots and log compaction in the daemon: with a tiny `snapshot_every_entries` and
//! an in-memory log too small for the workload, a 3-node fsync cluster takes snapshots on every
//! node, never answers "log full", and restarting every node recovers from snapshot + WAL tail.

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
