use super::*;

fn compare(key: &str, op: CompareOp, target: CompareTarget) -> Compare {
    Compare {
        key: key.into(),
        op,
        target,
    }
}

fn txn(compare: Vec<Compare>, success: Vec<TxnOp>, failure: Vec<TxnOp>) -> Command {
    Command::Txn(TxnRequest {
        compare,
        success,
        failure,
    })
}

fn put_op(key: &str, value: &str) -> TxnOp {
    TxnOp::Put(PutRequest::new(key, value))
}

fn get_op(key: &str) -> TxnOp {
    TxnOp::Range(RangeRequest::latest(KeyRange::single(key)))
}

#[test]
fn compare_on_value_chooses_the_branch() {
    let mut w = World::new();
    w.put("flag", "on");
    let is_on = || {
        compare(
            "flag",
            CompareOp::Equal,
            CompareTarget::Value(b"on".to_vec()),
        )
    };
    let Reply::Txn(reply) = w.ok(txn(
        vec![is_on()],
        vec![put_op("x", "then")],
        vec![put_op("x", "else")],
    )) else {
        panic!("not a txn reply");
    };
    assert!(reply.succeeded);
    assert_eq!(w.get("x").expect("x").value, b"then");
    w.put("flag", "off");
    let Reply::Txn(reply) = w.ok(txn(
        vec![is_on()],
        vec![put_op("x", "then")],
        vec![put_op("x", "else")],
    )) else {
        panic!("not a txn reply");
    };
    assert!(!reply.succeeded);
    assert_eq!(w.get("x").expect("x").value, b"else");
}

#[test]
fn compares_on_version_and_revisions_follow_etcd_for_missing_keys() {
    let mut w = World::new();
    let created = w.put("k", "v");
    w.put("k", "v2");
    let holds = |w: &mut World, c: Compare| {
        let Reply::Txn(reply) = w.ok(txn(vec![c], vec![], vec![])) else {
            panic!("not a txn reply");
        };
        reply.succeeded
    };
    assert!(holds(
        &mut w,
        compare("k", CompareOp::Equal, CompareTarget::Version(2))
    ));
    assert!(holds(
        &mut w,
        compare(
            "k",
            CompareOp::Equal,
            CompareTarget::CreateRevision(created)
        )
    ));
    assert!(holds(
        &mut w,
        compare("k", CompareOp::Greater, CompareTarget::ModRevision(created))
    ));
    assert!(holds(
        &mut w,
        compare("k", CompareOp::Less, CompareTarget::Value(b"w".to_vec()))
    ));
    assert!(holds(
        &mut w,
        compare("missing", CompareOp::Equal, CompareTarget::Version(0))
    ));
    assert!(holds(
        &mut w,
        compare(
            "missing",
            CompareOp::Equal,
            CompareTarget::CreateRevision(0)
        )
    ));
    assert!(
        !holds(
            &mut w,
            compare(
                "missing",
                CompareOp::NotEqual,
                CompareTarget::Value(b"x".to_vec())
            )
        ),
        "a value compare on a missing key is false whatever the operator"
    );
}

#[test]
fn writes_of_one_txn_share_one_revision_and_later_ops_see_earlier_ones() {
    let mut w = World::new();
    let before = w.store.revision();
    let Reply::Txn(reply) = w.ok(txn(
        vec![],
        vec![get_op("a"), put_op("a", "1"), put_op("b", "2"), get_op("a")],
        vec![],
    )) else {
        panic!("not a txn reply");
    };
    assert_eq!(w.store.revision(), before + 1);
    assert_eq!(
        w.get("a").expect("a").mod_revision,
        w.get("b").expect("b").mod_revision
    );
    let OpReply::Range(first) = &reply.replies[0] else {
        panic!("not a range")
    };
    let OpReply::Range(last) = &reply.replies[3] else {
        panic!("not a range")
    };
    assert_eq!((first.count, last.count), (0, 1));
    assert_eq!(last.kvs[0].value, b"1");
}

#[test]
fn compares_see_the_state_before_the_txn() {
    let mut w = World::new();
    w.put("k", "0");
    let c = compare("k", CompareOp::Equal, CompareTarget::Value(b"0".to_vec()));
    let Reply::Txn(reply) = w.ok(txn(vec![c.clone(), c], vec![put_op("k", "1")], vec![])) else {
        panic!("not a txn reply");
    };
    assert!(reply.succeeded);
}

#[test]
fn a_read_only_txn_does_not_bump_the_revision() {
    let mut w = World::new();
    w.put("k", "v");
    let before = w.store.revision();
    w.ok(txn(vec![], vec![get_op("k")], vec![]));
    assert_eq!(w.store.revision(), before);
}

#[test]
fn a_txn_with_one_bad_op_changes_nothing() {
    let mut w = World::new();
    let bad = TxnOp::Put(PutRequest {
        lease: 77,
        ..PutRequest::new("b", "2")
    });
    let error = w.err(txn(vec![], vec![put_op("a", "1"), bad], vec![]));
    assert_eq!(error, StoreError::LeaseNotFound { id: 77 });
    assert_eq!(w.get("a"), None);
    assert_eq!(w.store.revision(), 1);
    assert!(w.out.events.is_empty());
}

#[test]
fn a_txn_over_the_quota_changes_nothing() {
    let mut w = World::with_limits(StoreLimits {
        max_store_bytes: 100,
        ..StoreLimits::default()
    });
    let error = w.err(txn(
        vec![],
        vec![put_op("a", "1"), put_op("b", &"x".repeat(60))],
        vec![],
    ));
    assert!(matches!(error, StoreError::NoSpace { .. }));
    assert_eq!(w.get("a"), None);
}

#[test]
fn a_txn_writing_one_key_twice_is_refused_before_the_log() {
    let request = Request {
        session: SessionHeader::none(1),
        command: txn(vec![], vec![put_op("a", "1"), put_op("a", "2")], vec![]),
    };
    let mut bytes = Vec::new();
    codec::encode_request(&request, &mut bytes);
    let error = codec::decode_request(&bytes, &StoreLimits::default()).expect_err("duplicate key");
    assert_eq!(
        error,
        CodecError::Invalid(InvalidRequest::DuplicateKeyInTxn { key: b"a".to_vec() })
    );
    let put_in_deleted_range = txn(
        vec![],
        vec![
            TxnOp::DeleteRange(DeleteRangeRequest {
                range: KeyRange::prefix("a"),
                prev_kv: false,
            }),
            put_op("ab", "1"),
        ],
        vec![],
    );
    let request = Request {
        session: SessionHeader::none(1),
        command: put_in_deleted_range,
    };
    assert_eq!(
        codec::validate(&request, &StoreLimits::default()),
        Err(InvalidRequest::DuplicateKeyInTxn {
            key: b"ab".to_vec()
        })
    );
}

#[test]
fn a_txn_range_at_a_compacted_revision_fails_the_whole_txn() {
    let mut w = World::new();
    w.put("k", "1");
    w.put("k", "2");
    w.ok(Command::Compact { revision: 3 });
    let old_read = TxnOp::Range(RangeRequest {
        revision: 2,
        ..RangeRequest::latest(KeyRange::single("k"))
    });
    let error = w.err(txn(vec![], vec![put_op("x", "1"), old_read], vec![]));
    assert_eq!(
        error,
        StoreError::Compacted {
            requested: 2,
            compact_revision: 3
        }
    );
    assert_eq!(w.get("x"), None);
}
