use super::*;

#[test]
fn revision_starts_at_one_and_each_write_adds_one() {
    let mut w = World::new();
    assert_eq!(w.store.revision(), 1);
    assert_eq!(w.put("a", "1"), 2);
    assert_eq!(w.put("b", "1"), 3);
    let response = w.run(put("a", "2"));
    assert_eq!(
        response.revision, 4,
        "a write's response carries its own revision"
    );
}

#[test]
fn put_tracks_create_and_mod_revision_and_version() {
    let mut w = World::new();
    let created = w.put("k", "v1");
    let modified = w.put("k", "v2");
    let kv = w.get("k").expect("k exists");
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"v2"[..], created, modified, 2)
    );
}

#[test]
fn delete_then_recreate_starts_a_new_key_life() {
    let mut w = World::new();
    w.put("k", "v1");
    w.put("k", "v2");
    w.ok(delete(KeyRange::single("k")));
    assert_eq!(w.get("k"), None);
    let recreated = w.put("k", "v3");
    let kv = w.get("k").expect("k exists again");
    assert_eq!((kv.create_revision, kv.version), (recreated, 1));
}

#[test]
fn range_by_prefix_is_ordered_and_counts_beyond_the_limit() {
    let mut w = World::new();
    for key in ["job/3", "job/1", "jobs", "job/2", "other"] {
        w.put(key, "x");
    }
    let request = RangeRequest {
        limit: 2,
        ..RangeRequest::latest(KeyRange::prefix("job/"))
    };
    let Ok(Reply::Range(reply)) = w.store.read(&ReadRequest::Range(request)).result else {
        panic!("range failed");
    };
    let keys: Vec<&[u8]> = reply.kvs.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, [&b"job/1"[..], b"job/2"]);
    assert!(reply.more);
    assert_eq!(reply.count, 3);
}

#[test]
fn prefix_of_all_ff_bytes_extends_to_the_end_of_the_key_space() {
    assert_eq!(KeyRange::prefix(vec![0xff, 0xff]).range_end, vec![0]);
    assert_eq!(KeyRange::prefix(vec![b'a', 0xff]).range_end, vec![b'b']);
    assert!(KeyRange::prefix(Vec::new()).contains(b"anything"));
}

#[test]
fn range_keys_only_omits_values_and_count_only_omits_kvs() {
    let mut w = World::new();
    w.put("a", "value");
    w.put("b", "value");
    let keys_only = RangeRequest {
        keys_only: true,
        ..RangeRequest::latest(KeyRange::all())
    };
    let Ok(Reply::Range(reply)) = w.store.read(&ReadRequest::Range(keys_only)).result else {
        panic!("range failed");
    };
    assert!(reply.kvs.iter().all(|kv| kv.value.is_empty()) && reply.kvs.len() == 2);
    let count_only = RangeRequest {
        count_only: true,
        ..RangeRequest::latest(KeyRange::all())
    };
    let Ok(Reply::Range(reply)) = w.store.read(&ReadRequest::Range(count_only)).result else {
        panic!("range failed");
    };
    assert_eq!((reply.kvs.len(), reply.count), (0, 2));
}

#[test]
fn range_at_a_past_revision_sees_the_state_then() {
    let mut w = World::new();
    let first = w.put("k", "old");
    w.put("k", "new");
    w.put("other", "x");
    w.ok(delete(KeyRange::single("k")));
    let then = w.range(KeyRange::all(), first);
    assert_eq!(then.kvs.len(), 1);
    assert_eq!(then.kvs[0].value, b"old");
    assert_eq!(
        w.range(KeyRange::all(), 0).kvs.len(),
        1,
        "only `other` is left now"
    );
}

#[test]
fn range_outside_the_retained_revisions_is_a_typed_error() {
    let mut w = World::new();
    w.put("k", "1");
    let mid = w.put("k", "2");
    w.put("k", "3");
    w.ok(Command::Compact { revision: mid });
    let read_at = |w: &World, revision| {
        w.store
            .read(&ReadRequest::Range(RangeRequest {
                revision,
                ..RangeRequest::latest(KeyRange::single("k"))
            }))
            .result
    };
    assert_eq!(
        read_at(&w, mid - 1),
        Err(StoreError::Compacted {
            requested: mid - 1,
            compact_revision: mid
        })
    );
    assert!(
        read_at(&w, mid).is_ok(),
        "the compact revision itself stays readable"
    );
    assert_eq!(
        read_at(&w, 99),
        Err(StoreError::FutureRevision {
            requested: 99,
            current: w.store.revision()
        })
    );
}

#[test]
fn deleting_nothing_does_not_bump_the_revision() {
    let mut w = World::new();
    w.put("a", "1");
    let before = w.store.revision();
    let reply = w.ok(delete(KeyRange::single("missing")));
    assert_eq!(reply, Reply::DeleteRange(DeleteRangeReply::default()));
    assert_eq!(w.store.revision(), before);
}

#[test]
fn delete_range_deletes_every_key_at_one_revision_and_returns_them() {
    let mut w = World::new();
    w.put("d/1", "a");
    w.put("d/2", "b");
    w.put("e", "c");
    let before = w.store.revision();
    let Reply::DeleteRange(reply) = w.ok(delete(KeyRange::prefix("d/"))) else {
        panic!("not a delete reply");
    };
    assert_eq!(reply.deleted, 2);
    let prev: Vec<&[u8]> = reply
        .prev_kvs
        .iter()
        .map(|kv| kv.value.as_slice())
        .collect();
    assert_eq!(prev, [&b"a"[..], b"b"]);
    assert_eq!(w.store.revision(), before + 1);
    assert_eq!(w.range(KeyRange::all(), 0).count, 1);
}

#[test]
fn put_ignore_value_keeps_the_value_and_needs_an_existing_key() {
    let mut w = World::new();
    let lease = w.grant(1000);
    w.put("k", "kept");
    let command = Command::Put(PutRequest {
        ignore_value: true,
        lease,
        ..PutRequest::new("k", "")
    });
    w.ok(command);
    let kv = w.get("k").expect("k exists");
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"kept"[..], lease, 2)
    );
    let missing = Command::Put(PutRequest {
        ignore_value: true,
        ..PutRequest::new("missing", "")
    });
    assert_eq!(
        w.err(missing),
        StoreError::KeyNotFound {
            key: b"missing".to_vec()
        }
    );
}

#[test]
fn put_ignore_lease_keeps_the_lease() {
    let mut w = World::new();
    let lease = w.grant(1000);
    w.ok(put_leased("k", "v1", lease));
    w.ok(Command::Put(PutRequest {
        ignore_lease: true,
        ..PutRequest::new("k", "v2")
    }));
    assert_eq!(w.get("k").expect("k exists").lease, lease);
}

#[test]
fn put_prev_kv_returns_what_was_replaced() {
    let mut w = World::new();
    w.put("k", "before");
    let reply = w.ok(Command::Put(PutRequest {
        prev_kv: true,
        ..PutRequest::new("k", "after")
    }));
    let Reply::Put(PutReply {
        prev_kv: Some(prev),
    }) = reply
    else {
        panic!("no prev_kv in {reply:?}");
    };
    assert_eq!(prev.value, b"before");
}

#[test]
fn a_write_over_the_quota_fails_with_no_space_and_changes_nothing() {
    let mut w = World::with_limits(StoreLimits {
        max_store_bytes: 200,
        ..StoreLimits::default()
    });
    w.put("k", &"x".repeat(100));
    let before = w.store.revision();
    let error = w.err(put("k2", &"y".repeat(100)));
    assert_eq!(
        error,
        StoreError::NoSpace {
            needed_bytes: cost::key_revision(b"k2", &[b'y'; 100]),
            used_bytes: w.store.used_bytes(),
            quota_bytes: 200
        }
    );
    assert_eq!(w.store.revision(), before);
    assert_eq!(w.get("k2"), None);
}

#[test]
fn deletes_and_compaction_work_when_the_quota_is_full_and_free_space() {
    let mut w = World::with_limits(StoreLimits {
        max_store_bytes: 300,
        ..StoreLimits::default()
    });
    w.put("k", &"x".repeat(100));
    w.put("k", &"x".repeat(100));
    assert!(matches!(
        w.err(put("k", &"x".repeat(100))),
        StoreError::NoSpace { .. }
    ));
    w.ok(delete(KeyRange::single("k")));
    let full = w.store.used_bytes();
    w.ok(Command::Compact {
        revision: w.store.revision(),
    });
    assert!(w.store.used_bytes() < full);
    assert_eq!(
        w.store.used_bytes(),
        0,
        "a compacted tombstone leaves nothing"
    );
    w.put("k", &"x".repeat(100));
}

#[test]
fn compaction_keeps_the_latest_value_and_rejects_old_targets() {
    let mut w = World::new();
    w.put("k", "1");
    w.put("k", "2");
    let target = w.put("j", "1");
    w.put("k", "3");
    w.ok(Command::Compact { revision: target });
    assert_eq!(w.range(KeyRange::single("k"), target).kvs[0].value, b"2");
    assert_eq!(w.get("k").expect("k").value, b"3");
    assert_eq!(
        w.err(Command::Compact { revision: target }),
        StoreError::Compacted {
            requested: target,
            compact_revision: target
        }
    );
    let current = w.store.revision();
    assert_eq!(
        w.err(Command::Compact {
            revision: current + 1
        }),
        StoreError::FutureRevision {
            requested: current + 1,
            current
        }
    );
}

#[test]
fn compaction_target_keeps_the_requested_number_of_revisions() {
    let mut w = World::new();
    assert_eq!(w.store.compaction_target(10), None);
    for i in 0..20 {
        w.put("k", &i.to_string());
    }
    let target = w.store.compaction_target(5).expect("history to free");
    assert_eq!(target, w.store.revision() - 5);
    w.ok(Command::Compact { revision: target });
    assert_eq!(w.store.compaction_target(5), None);
}

#[test]
fn an_empty_entry_is_a_no_op_that_advances_the_applied_index() {
    let mut w = World::new();
    w.apply_bytes(&[]);
    assert_eq!(w.store.applied_index(), 1);
    assert_eq!(w.store.revision(), 1);
    assert_eq!(w.out.response, None);
    assert_eq!(w.out.rejected, None);
}

#[test]
fn an_undecodable_entry_is_rejected_and_changes_nothing_but_the_applied_index() {
    let mut w = World::new();
    w.put("k", "v");
    let mut twin = w.store.clone();
    w.apply_bytes(b"garbage");
    assert_eq!(w.out.response, None);
    assert!(matches!(
        w.out.rejected,
        Some(CodecError::UnsupportedVersion { .. })
    ));
    twin.apply(w.index, &[], &mut ApplyOutput::default());
    let (mut rejected, mut no_op) = (Vec::new(), Vec::new());
    w.store.snapshot(&mut rejected).expect("in memory");
    twin.snapshot(&mut no_op).expect("in memory");
    assert_eq!(rejected, no_op, "a rejected entry is a no-op");
}

#[test]
#[should_panic(expected = "entries apply once")]
fn applying_an_index_twice_is_a_programming_error() {
    let mut w = World::new();
    w.put("k", "v");
    let mut out = ApplyOutput::default();
    w.store.apply(w.index, &[], &mut out);
}

#[test]
fn reads_through_the_log_answer_like_direct_reads() {
    let mut w = World::new();
    w.put("k", "v");
    let read = ReadRequest::Range(RangeRequest::latest(KeyRange::single("k")));
    let direct = w.store.read(&read);
    let logged = w.run(Command::Read(read));
    assert_eq!(direct, logged);
}

#[test]
fn limits_that_leave_nothing_possible_are_refused() {
    let limits = StoreLimits {
        max_sessions: 0,
        ..StoreLimits::default()
    };
    assert_eq!(
        limits.validate(),
        Err(LimitsError {
            name: "max_sessions",
            value: 0
        })
    );
    assert_eq!(StoreLimits::default().validate(), Ok(()));
}
