//! Values up to `limits.max_value_bytes` (1 MiB by default) on a real 3-node cluster: entries larger
//! than a 32 KiB peer slab replicate in pieces, survive the leader's death and a restart of every
//! node (WAL records split around large entries), and one byte more is refused with both sizes.

mod local_cluster;

use aurora::cli::up::DurabilityArg;
use local_cluster::{LocalCluster, LEADER_WAIT};

const MIB: usize = 1 << 20;

/// A value whose bytes depend on `seed` and position, so a misplaced piece shows.
fn value(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn check_all(cluster: &LocalCluster, written: &[(String, Vec<u8>)], when: &str) {
    let mut client = cluster.client();
    for (key, expected) in written {
        let got = client
            .get(key.as_bytes())
            .unwrap_or_else(|e| cluster.fail(&format!("{when}: get {key}: {e}")))
            .unwrap_or_else(|| cluster.fail(&format!("{when}: {key} is missing")));
        if got.value != *expected {
            cluster.fail(&format!(
                "{when}: {key} holds {} bytes that differ from the {} written",
                got.value.len(),
                expected.len()
            ));
        }
    }
}

fn large_values(durability: DurabilityArg) {
    let mut cluster = LocalCluster::start(3, durability);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let sizes = [MIB, 600 * 1024, 32 * 1024, 100, 256 * 1024, MIB - 1];
    let mut written: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("big/{i}"), value(i as u64, len)))
        .collect();
    // Two writers at once, so several large entries share a batch, a persist and a WAL flush.
    let halves: Vec<Vec<(String, Vec<u8>)>> = written
        .chunks(3)
        .map(<[(String, Vec<u8>)]>::to_vec)
        .collect();
    let writers: Vec<_> = halves
        .into_iter()
        .map(|half| {
            let mut client = cluster.client();
            std::thread::spawn(move || {
                for (key, v) in &half {
                    client
                        .put(key.as_bytes(), v)
                        .unwrap_or_else(|e| panic!("put {key} ({} bytes): {e}", v.len()));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    check_all(&cluster, &written, "after the writes");

    // One byte over the limit: refused with both sizes, and the cluster goes on.
    let mut client = cluster.client();
    let err = client
        .put(b"too/big", &value(99, MIB + 1))
        .expect_err("a value over limits.max_value_bytes is refused");
    let text = err.to_string();
    assert!(
        text.contains(&(MIB + 1).to_string()) && text.contains(&MIB.to_string()),
        "the error names the size and the limit: {text}"
    );

    // The new leader holds every acknowledged large value: they were replicated, in pieces.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader_other_than(Some(leader), LEADER_WAIT);
    check_all(&cluster, &written, "after the leader's death");
    let extra = ("big/after".to_string(), value(7, MIB));
    client = cluster.client();
    client
        .put(extra.0.as_bytes(), &extra.1)
        .expect("put on the new leader");
    written.push(extra);

    // Every node restarts from its own storage (fsync: the WAL; memory: from the others).
    cluster.restart(leader);
    if durability == DurabilityArg::Fsync {
        for id in cluster.ids() {
            cluster.kill(id);
        }
        for id in cluster.ids() {
            cluster.start_node(id);
        }
        cluster.wait_for_leader(LEADER_WAIT);
        check_all(&cluster, &written, "after restarting every node");
    } else {
        // The restarted node rebuilt its log from the leader (in pieces) before it may vote again.
        let target = cluster
            .status(new_leader)
            .map_or(0, |s| s.commit_index)
            .max(1);
        let deadline = std::time::Instant::now() + LEADER_WAIT;
        while cluster
            .status(leader)
            .is_none_or(|s| s.applied_index < target)
        {
            if std::time::Instant::now() > deadline {
                cluster.fail(&format!("node {leader} did not catch up to index {target}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        cluster.kill(new_leader);
        cluster.wait_for_leader_other_than(Some(new_leader), LEADER_WAIT);
        check_all(&cluster, &written, "after the second leader's death");
    }
}

#[test]
fn large_values_replicate_in_pieces_fsync() {
    large_values(DurabilityArg::Fsync);
}

#[test]
fn large_values_replicate_in_pieces_memory() {
    large_values(DurabilityArg::Memory);
}

/// 40 MiB of 1 MiB values through a log bounded at 8 MiB of payload: snapshots are taken by bytes
/// (every ~4 MiB), not only every `snapshot_every_entries` (10,000) entries, so the log never
/// fills and every write commits.
#[test]
fn a_log_bounded_in_bytes_snapshots_by_bytes_and_keeps_accepting_large_values() {
    let cluster = LocalCluster::start_with(
        3,
        DurabilityArg::Memory,
        &["limits.max_log_bytes_in_memory=8388608"],
    );
    let mut client = cluster.client();
    let mut log_full = 0;
    for i in 0..40u64 {
        let v = value(i, MIB);
        // A write may meet the log full while a snapshot is being saved; it must then clear.
        let mut attempt = 0;
        loop {
            match client.put(format!("bytes/{i}").as_bytes(), &v) {
                Ok(_) => break,
                Err(e) if e.to_string().contains("log is full") && attempt < 50 => {
                    log_full += 1;
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => cluster.fail(&format!("put {i}: {e}")),
            }
        }
    }
    println!("40 x 1 MiB through an 8 MiB log: {log_full} transient 'log full' answers");
    let mut client = cluster.client();
    for i in [0u64, 17, 39] {
        let got = client
            .get(format!("bytes/{i}").as_bytes())
            .expect("get")
            .expect("present");
        assert!(got.value == value(i, MIB), "bytes/{i} reads back intact");
    }
}
