use super::*;

#[test]
fn a_grant_without_id_gets_the_entry_index_deterministically() {
    let mut w = World::new();
    w.put("x", "y");
    let id = w.grant(5000);
    assert_eq!(id, w.index);
    assert_eq!(
        w.out.notifications,
        [Notification::LeaseGranted { id, ttl_ms: 5000 }]
    );
    let mut collision = World::new();
    collision.ok(Command::LeaseGrant { id: 2, ttl_ms: 10 });
    assert_eq!(
        collision.grant(10),
        3,
        "index 2 is taken, so the next free id"
    );
}

#[test]
fn granting_an_existing_id_or_beyond_the_lease_bound_fails() {
    let mut w = World::with_limits(StoreLimits {
        max_leases: 1,
        ..StoreLimits::default()
    });
    w.ok(Command::LeaseGrant { id: 9, ttl_ms: 10 });
    assert_eq!(
        w.err(Command::LeaseGrant { id: 9, ttl_ms: 10 }),
        StoreError::LeaseExists { id: 9 }
    );
    assert_eq!(
        w.err(Command::LeaseGrant { id: 0, ttl_ms: 10 }),
        StoreError::TooManyLeases { max: 1 }
    );
}

#[test]
fn revoking_a_lease_deletes_its_keys_at_one_revision() {
    let mut w = World::new();
    let lease = w.grant(1000);
    w.ok(put_leased("a", "1", lease));
    w.ok(put_leased("b", "2", lease));
    w.put("c", "3");
    let before = w.store.revision();
    assert_eq!(
        w.revoke(lease, RevokeReason::Expired),
        Reply::LeaseRevoked { keys_deleted: 2 }
    );
    assert_eq!(w.store.revision(), before + 1);
    assert_eq!(w.out.events.len(), 2);
    assert!(w
        .out
        .events
        .iter()
        .all(|e| e.kind == EventKind::Delete && e.revision() == before + 1));
    assert!(w
        .out
        .notifications
        .contains(&Notification::LeaseRevoked { id: lease }));
    assert_eq!(w.range(KeyRange::all(), 0).count, 1);
    assert_eq!(
        w.err(Command::LeaseRevoke {
            id: lease,
            reason: RevokeReason::Expired
        }),
        StoreError::LeaseNotFound { id: lease },
        "a second expiry proposal is harmless"
    );
}

#[test]
fn revoking_a_lease_without_keys_does_not_bump_the_revision() {
    let mut w = World::new();
    let lease = w.grant(1000);
    let before = w.store.revision();
    w.revoke(lease, RevokeReason::Revoked);
    assert_eq!(w.store.revision(), before);
}

#[test]
fn a_put_with_an_unknown_lease_fails() {
    let mut w = World::new();
    assert_eq!(
        w.err(put_leased("k", "v", 42)),
        StoreError::LeaseNotFound { id: 42 }
    );
    assert_eq!(w.get("k"), None);
}

#[test]
fn a_key_moved_to_another_lease_survives_the_first_lease() {
    let mut w = World::new();
    let first = w.grant(1000);
    let second = w.grant(1000);
    w.ok(put_leased("k", "v1", first));
    w.ok(put_leased("k", "v2", second));
    w.revoke(first, RevokeReason::Revoked);
    assert_eq!(w.get("k").expect("k").lease, second);
    w.ok(put("k", "v3"));
    w.revoke(second, RevokeReason::Revoked);
    assert!(w.get("k").is_some(), "a put without lease detaches the key");
}

#[test]
fn keep_alive_is_answered_by_read_and_rejects_unknown_leases() {
    let mut w = World::new();
    let lease = w.grant(3000);
    assert_eq!(
        w.store
            .read(&ReadRequest::LeaseKeepAlive { id: lease })
            .result,
        Ok(Reply::LeaseAlive {
            id: lease,
            ttl_ms: 3000
        })
    );
    w.revoke(lease, RevokeReason::Expired);
    assert_eq!(
        w.store
            .read(&ReadRequest::LeaseKeepAlive { id: lease })
            .result,
        Err(StoreError::LeaseNotFound { id: lease })
    );
}

#[test]
fn time_to_live_lists_attached_keys_and_leases_lists_every_lease() {
    let mut w = World::new();
    let lease = w.grant(3000);
    let other = w.grant(10);
    w.ok(put_leased("b", "1", lease));
    w.ok(put_leased("a", "1", lease));
    assert_eq!(
        w.store
            .read(&ReadRequest::LeaseTimeToLive {
                id: lease,
                keys: true
            })
            .result,
        Ok(Reply::LeaseTimeToLive {
            id: lease,
            ttl_ms: 3000,
            keys: vec![b"a".to_vec(), b"b".to_vec()]
        })
    );
    let all: Vec<LeaseInfo> = w.store.leases().collect();
    assert_eq!(
        all,
        [
            LeaseInfo {
                id: lease,
                ttl_ms: 3000
            },
            LeaseInfo {
                id: other,
                ttl_ms: 10
            }
        ]
    );
    assert_eq!(
        w.store.read(&ReadRequest::Leases).result,
        Ok(Reply::Leases(all))
    );
}

#[test]
fn a_ttl_outside_the_bounds_is_refused_before_the_log() {
    let limits = StoreLimits::default();
    let request = Request {
        session: SessionHeader::none(1),
        command: Command::LeaseGrant { id: 0, ttl_ms: 0 },
    };
    assert_eq!(
        codec::validate(&request, &limits),
        Err(InvalidRequest::TtlOutOfRange {
            ttl_ms: 0,
            max_ttl_ms: limits.max_lease_ttl_ms
        })
    );
}
