use super::*;

fn lock(name: &str, lease: LeaseId) -> Command {
    Command::Lock {
        name: name.into(),
        lease,
    }
}

fn unlock(name: &str, token: u64) -> Command {
    Command::Unlock {
        name: name.into(),
        token,
    }
}

fn granted(reply: Reply) -> u64 {
    match reply {
        Reply::Lock(Acquire::Granted { token }) | Reply::Campaign(Acquire::Granted { token }) => {
            token
        }
        other => panic!("not granted: {other:?}"),
    }
}

#[test]
fn a_free_lock_is_granted_with_the_revision_of_the_grant_as_token() {
    let mut w = World::new();
    let lease = w.grant(1000);
    let before = w.store.revision();
    let token = granted(w.ok(lock("L", lease)));
    assert_eq!(token, before + 1);
    assert_eq!(
        w.store.revision(),
        token,
        "a grant takes a revision of its own"
    );
}

#[test]
fn a_held_lock_queues_and_unlock_grants_the_next_waiter_a_larger_token() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    let token_a = granted(w.ok(lock("L", a)));
    let queued = w.run_as(header(0, 500, 0), lock("L", b));
    assert_eq!(queued.result, Ok(Reply::Lock(Acquire::Queued { ahead: 1 })));
    assert_eq!(w.ok(unlock("L", token_a)), Reply::Unlocked);
    let completed = w.completed();
    assert_eq!(completed.len(), 1);
    assert_eq!((completed[0].client_id, completed[0].seq), (0, 500));
    let token_b = granted(completed[0].response.result.clone().expect("granted"));
    assert!(token_b > token_a);
    assert_eq!(completed[0].response.revision, token_b);
}

#[test]
fn unlock_with_a_stale_token_is_refused() {
    let mut w = World::new();
    let lease = w.grant(1000);
    let token = granted(w.ok(lock("L", lease)));
    assert_eq!(
        w.err(unlock("L", token + 1)),
        StoreError::NotHolder {
            name: b"L".to_vec(),
            token: token + 1,
            holder_token: token
        }
    );
    w.ok(unlock("L", token));
    assert_eq!(
        w.err(unlock("L", token)),
        StoreError::NotHolder {
            name: b"L".to_vec(),
            token,
            holder_token: 0
        }
    );
}

#[test]
fn the_holders_lease_expiring_grants_the_next_waiter() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    let token_a = granted(w.ok(lock("L", a)));
    w.run_as(header(0, 7, 0), lock("L", b));
    w.revoke(a, RevokeReason::Expired);
    let completed = w.completed();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].seq, 7);
    assert!(granted(completed[0].response.result.clone().expect("granted")) > token_a);
}

#[test]
fn a_waiters_lease_expiring_fails_its_request_and_keeps_the_holder() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    let token_a = granted(w.ok(lock("L", a)));
    w.run_as(header(0, 7, 0), lock("L", b));
    w.revoke(b, RevokeReason::Expired);
    let completed = w.completed();
    assert_eq!(completed.len(), 1);
    assert_eq!(
        completed[0].response.result,
        Err(StoreError::LeaseRevoked { id: b })
    );
    assert_eq!(w.ok(unlock("L", token_a)), Reply::Unlocked);
    assert!(w.completed().is_empty(), "nobody is left to grant");
}

#[test]
fn the_holder_lease_asking_again_gets_its_token_back() {
    let mut w = World::new();
    let lease = w.grant(1000);
    let token = granted(w.ok(lock("L", lease)));
    let revision = w.store.revision();
    assert_eq!(granted(w.ok(lock("L", lease))), token);
    assert_eq!(w.store.revision(), revision);
}

#[test]
fn a_lease_already_waiting_is_told_so() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    w.ok(lock("L", a));
    w.ok(lock("L", b));
    assert_eq!(
        w.err(lock("L", b)),
        StoreError::AlreadyWaiting {
            name: b"L".to_vec(),
            lease: b
        }
    );
}

#[test]
fn a_full_queue_is_a_typed_error() {
    let mut w = World::with_limits(StoreLimits {
        max_queue_waiters: 1,
        ..StoreLimits::default()
    });
    let (a, b, c) = (w.grant(1000), w.grant(1000), w.grant(1000));
    w.ok(lock("L", a));
    w.ok(lock("L", b));
    assert_eq!(
        w.err(lock("L", c)),
        StoreError::QueueFull {
            name: b"L".to_vec(),
            capacity: 1
        }
    );
}

#[test]
fn locking_needs_a_live_lease() {
    let mut w = World::new();
    assert_eq!(w.err(lock("L", 5)), StoreError::LeaseNotFound { id: 5 });
}

#[test]
fn fencing_tokens_strictly_increase_across_holders() {
    let mut w = World::new();
    let leases: Vec<LeaseId> = (0..4).map(|_| w.grant(1000)).collect();
    let mut last = 0;
    for lease in leases {
        let token = granted(w.ok(lock("L", lease)));
        assert!(token > last);
        last = token;
        w.ok(unlock("L", token));
    }
}

fn campaign(name: &str, lease: LeaseId, value: &str) -> Command {
    Command::Campaign {
        name: name.into(),
        lease,
        value: value.into(),
    }
}

fn leader(w: &World, name: &str) -> Result<Reply, StoreError> {
    w.store
        .read(&ReadRequest::Leader { name: name.into() })
        .result
}

fn leader_changes(w: &World) -> Vec<Option<LeaderInfo>> {
    w.out
        .notifications
        .iter()
        .filter_map(|n| match n {
            Notification::LeaderChanged { leader, .. } => Some(leader.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_election_elects_proclaims_and_hands_over_on_resign() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    assert_eq!(
        leader(&w, "E"),
        Err(StoreError::NoLeader {
            name: b"E".to_vec()
        })
    );
    let token_a = granted(w.ok(campaign("E", a, "node-a")));
    assert_eq!(
        leader_changes(&w),
        [Some(LeaderInfo {
            lease: a,
            token: token_a,
            value: b"node-a".to_vec()
        })]
    );
    assert_eq!(
        w.ok(campaign("E", b, "node-b")),
        Reply::Campaign(Acquire::Queued { ahead: 1 })
    );
    w.ok(Command::Proclaim {
        name: b"E".to_vec(),
        token: token_a,
        value: b"node-a:v2".to_vec(),
    });
    let Ok(Reply::Leader(info)) = leader(&w, "E") else {
        panic!("no leader");
    };
    assert_eq!(info.value, b"node-a:v2");
    w.ok(Command::Resign {
        name: b"E".to_vec(),
        token: token_a,
    });
    let Ok(Reply::Leader(info)) = leader(&w, "E") else {
        panic!("no leader");
    };
    assert_eq!((info.lease, info.value.as_slice()), (b, &b"node-b"[..]));
    assert!(info.token > token_a);
    assert_eq!(leader_changes(&w), [Some(info)]);
}

#[test]
fn a_deposed_leader_cannot_proclaim() {
    let mut w = World::new();
    let (a, b) = (w.grant(1000), w.grant(1000));
    let token_a = granted(w.ok(campaign("E", a, "a")));
    w.ok(campaign("E", b, "b"));
    w.revoke(a, RevokeReason::Expired);
    let error = w.err(Command::Proclaim {
        name: b"E".to_vec(),
        token: token_a,
        value: b"stale".to_vec(),
    });
    assert!(matches!(error, StoreError::NotHolder { token, .. } if token == token_a));
}

#[test]
fn the_last_leader_leaving_announces_no_leader() {
    let mut w = World::new();
    let a = w.grant(1000);
    w.ok(campaign("E", a, "a"));
    w.revoke(a, RevokeReason::Revoked);
    assert_eq!(leader_changes(&w), [None]);
}

#[test]
fn the_leader_campaigning_again_proclaims_its_new_value() {
    let mut w = World::new();
    let a = w.grant(1000);
    let token = granted(w.ok(campaign("E", a, "v1")));
    assert_eq!(granted(w.ok(campaign("E", a, "v2"))), token);
    let Ok(Reply::Leader(info)) = leader(&w, "E") else {
        panic!("no leader");
    };
    assert_eq!(info.value, b"v2");
}
