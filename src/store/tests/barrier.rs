use super::*;

fn arrive(name: &str, n: u32, lease: LeaseId) -> Command {
    Command::Arrive {
        name: name.into(),
        n,
        lease,
    }
}

#[test]
fn the_nth_arrival_releases_every_waiter_of_the_generation() {
    let mut w = World::new();
    let lease = w.grant(1000);
    let first = w.run_as(header(0, 1, 0), arrive("B", 3, lease));
    let generation = w.index;
    assert_eq!(
        first.result,
        Ok(Reply::Barrier(BarrierStatus::Waiting {
            generation,
            arrived: 1,
            n: 3
        }))
    );
    w.run_as(header(0, 2, 0), arrive("B", 3, lease));
    assert!(w.completed().is_empty());
    let last = w.run_as(header(0, 3, 0), arrive("B", 3, lease));
    let released = Reply::Barrier(BarrierStatus::Released { generation });
    assert_eq!(last.result, Ok(released.clone()));
    let completed = w.completed();
    let seqs: Vec<u64> = completed.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert!(completed
        .iter()
        .all(|c| c.response.result == Ok(released.clone())));
}

#[test]
fn a_released_barrier_starts_a_new_generation_and_may_change_size() {
    let mut w = World::new();
    let lease = w.grant(1000);
    w.ok(arrive("B", 2, lease));
    let first_generation = w.index;
    w.ok(arrive("B", 2, lease));
    let Reply::Barrier(BarrierStatus::Waiting { generation, n, .. }) = w.ok(arrive("B", 3, lease))
    else {
        panic!("not waiting");
    };
    assert!(generation > first_generation);
    assert_eq!(n, 3);
}

#[test]
fn a_barrier_of_one_releases_at_once() {
    let mut w = World::new();
    let lease = w.grant(1000);
    assert!(matches!(
        w.ok(arrive("B", 1, lease)),
        Reply::Barrier(BarrierStatus::Released { .. })
    ));
}

#[test]
fn a_mismatched_size_is_refused() {
    let mut w = World::new();
    let lease = w.grant(1000);
    w.ok(arrive("B", 3, lease));
    assert_eq!(
        w.err(arrive("B", 4, lease)),
        StoreError::BarrierSizeMismatch {
            name: b"B".to_vec(),
            expected: 3,
            got: 4
        }
    );
}

#[test]
fn a_waiting_members_lease_expiring_breaks_the_generation_for_everyone() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    w.run_as(header(0, 1, 0), arrive("B", 3, a));
    let generation = w.index;
    w.run_as(header(0, 2, 0), arrive("B", 3, b));
    w.revoke(a, RevokeReason::Expired);
    let broken = Err(StoreError::BarrierBroken {
        name: b"B".to_vec(),
        generation,
        reason: BreakReason::LeaseExpired { lease: a },
    });
    let completed = w.completed();
    assert_eq!(completed.len(), 2);
    assert!(completed.iter().all(|c| c.response.result == broken));
    let Reply::Barrier(BarrierStatus::Waiting { arrived, .. }) = w.ok(arrive("B", 3, b)) else {
        panic!("not waiting");
    };
    assert_eq!(arrived, 1, "the broken generation is gone");
}

#[test]
fn arriving_needs_a_live_lease() {
    let mut w = World::new();
    assert_eq!(
        w.err(arrive("B", 2, 3)),
        StoreError::LeaseNotFound { id: 3 }
    );
}

fn fetch_add(name: &str, delta: i64) -> Command {
    Command::FetchAdd {
        name: name.into(),
        delta,
    }
}

#[test]
fn fetch_add_returns_the_previous_value_and_works_as_a_sequencer() {
    let mut w = World::new();
    let tickets: Vec<Reply> = (0..3).map(|_| w.ok(fetch_add("seq", 1))).collect();
    assert_eq!(
        tickets,
        [0, 1, 2].map(|previous| Reply::FetchAdd { previous })
    );
    assert_eq!(
        w.store
            .read(&ReadRequest::Counter {
                name: b"seq".to_vec()
            })
            .result,
        Ok(Reply::Counter { value: 3 })
    );
    assert_eq!(w.store.revision(), 1, "counters are not key writes");
}

#[test]
fn an_overflowing_add_fails_and_changes_nothing() {
    let mut w = World::new();
    w.ok(fetch_add("c", i64::MAX));
    assert_eq!(
        w.err(fetch_add("c", 1)),
        StoreError::CounterOverflow {
            name: b"c".to_vec(),
            value: i64::MAX,
            delta: 1
        }
    );
    assert_eq!(
        w.store
            .read(&ReadRequest::Counter {
                name: b"c".to_vec()
            })
            .result,
        Ok(Reply::Counter { value: i64::MAX })
    );
}

#[test]
fn a_counter_back_at_zero_costs_no_quota() {
    let mut w = World::new();
    w.ok(fetch_add("c", 5));
    assert_eq!(w.store.used_bytes(), cost::counter(b"c"));
    w.ok(fetch_add("c", -5));
    assert_eq!(w.store.used_bytes(), 0);
}
