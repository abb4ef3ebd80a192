//! Three real `aurora serve` processes under write load: kill -9 the leader, a new leader serves,
//! and no acknowledged write is lost. Prints the failover time (the longest a write waited across
//! the kill), which is reported, never asserted.

mod local_cluster;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora::cli::up::DurabilityArg;
use local_cluster::{LocalCluster, LEADER_WAIT};

fn killing_the_leader_under_load(durability: DurabilityArg) {
    let mut cluster = LocalCluster::start(3, durability);
    let old_leader = cluster.wait_for_leader(LEADER_WAIT);
    let acked: Arc<Mutex<Vec<(u64, Instant, Duration)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
            let mut client = cluster.client();
            std::thread::spawn(move || {
                let mut i = 0u64;
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("load/{w}/{i:06}");
                    let started = Instant::now();
                    match client.put(key.as_bytes(), format!("v{i}").as_bytes()) {
                        Ok(_) => acked.lock().expect("lock").push((
                            w * 1_000_000 + i,
                            started,
                            started.elapsed(),
                        )),
                        Err(e) => failures.push(format!("{key}: {e}")),
                    }
                    i += 1;
                }
                failures
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = acked.lock().expect("lock").len();
    assert!(
        before_kill > 0,
        "the cluster acknowledged writes before the kill"
    );
    let killed_at = Instant::now();
    cluster.kill(old_leader);
    let new_leader = cluster.wait_for_leader_other_than(Some(old_leader), LEADER_WAIT);
    let elected_after = killed_at.elapsed();
    // Keep writing through the new leader for a while.
    let resume_deadline = Instant::now() + Duration::from_secs(15);
    while acked.lock().expect("lock").len() < before_kill + 100 {
        if Instant::now() > resume_deadline {
            cluster.fail("writes did not resume after the failover");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer thread"))
        .collect();
    let acked = acked.lock().expect("lock").clone();
    // The longest write that was in flight when the leader died is what a client experienced.
    let failover = acked
        .iter()
        .filter(|(_, started, took)| *started <= killed_at && *started + *took >= killed_at)
        .map(|(_, _, took)| *took)
        .max()
        .unwrap_or_default();
    println!(
        "failover ({durability:?}): node {old_leader} killed, node {new_leader} leads after \
         {elected_after:?}; the longest write across the kill took {failover:?}; {} writes acked, \
         {} failed",
        acked.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "writes failed instead of riding the failover: {failures:?}"
    );

    // Every acknowledged write is there, read linearizably through the new leader.
    let mut client = cluster.client();
    for (id, _, _) in &acked {
        let (w, i) = (id / 1_000_000, id % 1_000_000);
        let key = format!("load/{w}/{i:06}");
        let kv = client
            .get(key.as_bytes())
            .unwrap_or_else(|e| cluster.fail(&format!("read {key}: {e}")))
            .unwrap_or_else(|| cluster.fail(&format!("acknowledged write {key} is lost")));
        assert_eq!(kv.value, format!("v{i}").as_bytes(), "{key}");
    }
    // The old leader comes back as a follower and catches up.
    cluster.start_node(old_leader);
    let last = acked.last().expect("writes were acked").0;
    let key = format!("load/{}/{:06}", last / 1_000_000, last % 1_000_000);
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let out = cluster.cli(&[
            "get",
            &key,
            "--stale",
            "--endpoints",
            &cluster.client_addr(old_leader).to_string(),
        ]);
        if out.status.success() {
            break;
        }
        if Instant::now() > deadline {
            cluster.fail(&format!(
                "restarted node {old_leader} never caught up to {key}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killing_the_leader_loses_no_acknowledged_write_in_memory_mode() {
    killing_the_leader_under_load(DurabilityArg::Memory);
}

#[test]
fn killing_the_leader_loses_no_acknowledged_write_in_fsync_mode() {
    killing_the_leader_under_load(DurabilityArg::Fsync);
}
