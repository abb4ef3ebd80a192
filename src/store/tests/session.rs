use super::*;

#[test]
fn a_retried_request_is_answered_from_the_cache_and_applied_once() {
    let mut w = World::new();
    let client = w.register();
    let first = w.run_as(
        header(client, 1, 0),
        Command::FetchAdd {
            name: b"c".to_vec(),
            delta: 1,
        },
    );
    let retry = w.run_as(
        header(client, 1, 0),
        Command::FetchAdd {
            name: b"c".to_vec(),
            delta: 1,
        },
    );
    assert_eq!(first, retry);
    assert_eq!(
        w.store
            .read(&ReadRequest::Counter {
                name: b"c".to_vec()
            })
            .result,
        Ok(Reply::Counter { value: 1 })
    );
}

#[test]
fn a_retried_put_does_not_bump_the_revision_or_emit_events() {
    let mut w = World::new();
    let client = w.register();
    let first = w.run_as(header(client, 1, 0), put("k", "v"));
    let revision = w.store.revision();
    let retry = w.run_as(header(client, 1, 0), put("k", "v"));
    assert_eq!(first, retry);
    assert_eq!(w.store.revision(), revision);
    assert!(w.out.events.is_empty());
}

#[test]
fn requests_may_arrive_out_of_order_within_a_session() {
    let mut w = World::new();
    let client = w.register();
    w.run_as(header(client, 2, 0), put("b", "2"));
    let late = w.run_as(header(client, 1, 0), put("a", "1"));
    assert!(late.result.is_ok());
    assert!(w.get("a").is_some());
}

#[test]
fn an_acknowledged_request_retried_gets_session_expired() {
    let mut w = World::new();
    let client = w.register();
    w.run_as(header(client, 1, 0), put("k", "v"));
    w.run_as(header(client, 2, 1), put("k", "w"));
    let late_duplicate = w.run_as(header(client, 1, 0), put("k", "v"));
    assert_eq!(
        late_duplicate.result,
        Err(StoreError::SessionExpired {
            client_id: client,
            seq: 1
        })
    );
    assert_eq!(
        w.get("k").expect("k").value,
        b"w",
        "the duplicate was not applied"
    );
}

#[test]
fn an_evicted_response_retried_gets_session_expired() {
    let mut w = World::with_limits(StoreLimits {
        max_session_responses: 2,
        ..StoreLimits::default()
    });
    let client = w.register();
    for seq in 1..=3 {
        w.run_as(
            header(client, seq, 0),
            Command::FetchAdd {
                name: b"c".to_vec(),
                delta: 1,
            },
        );
    }
    let retry = w.run_as(
        header(client, 1, 0),
        Command::FetchAdd {
            name: b"c".to_vec(),
            delta: 1,
        },
    );
    assert_eq!(
        retry.result,
        Err(StoreError::SessionExpired {
            client_id: client,
            seq: 1
        })
    );
    let kept = w.run_as(
        header(client, 3, 0),
        Command::FetchAdd {
            name: b"c".to_vec(),
            delta: 1,
        },
    );
    assert_eq!(kept.result, Ok(Reply::FetchAdd { previous: 2 }));
    assert_eq!(
        w.store
            .read(&ReadRequest::Counter {
                name: b"c".to_vec()
            })
            .result,
        Ok(Reply::Counter { value: 3 })
    );
}

#[test]
fn a_request_of_an_unknown_session_gets_session_expired() {
    let mut w = World::new();
    let response = w.run_as(header(99, 1, 0), put("k", "v"));
    assert_eq!(
        response.result,
        Err(StoreError::SessionExpired {
            client_id: 99,
            seq: 1
        })
    );
    assert_eq!(w.get("k"), None);
}

#[test]
fn registering_beyond_the_bound_evicts_the_least_recently_active_session() {
    let mut w = World::with_limits(StoreLimits {
        max_sessions: 2,
        ..StoreLimits::default()
    });
    let a = w.register();
    let b = w.register();
    w.run_as(header(a, 1, 0), put("k", "1"));
    let c = w.register();
    let from_b = w.run_as(header(b, 1, 0), put("k", "2"));
    assert_eq!(
        from_b.result,
        Err(StoreError::SessionExpired {
            client_id: b,
            seq: 1
        })
    );
    assert!(w.run_as(header(a, 2, 0), put("k", "3")).result.is_ok());
    assert!(w.run_as(header(c, 1, 0), put("k", "4")).result.is_ok());
}

#[test]
fn a_retried_waiting_lock_returns_waiting_then_its_grant() {
    let mut w = World::new();
    let client = w.register();
    let (a, b) = (w.grant(1000), w.grant(1000));
    let Reply::Lock(Acquire::Granted { token }) = w.ok(Command::Lock {
        name: b"L".to_vec(),
        lease: a,
    }) else {
        panic!("not granted");
    };
    let lock_b = Command::Lock {
        name: b"L".to_vec(),
        lease: b,
    };
    let queued = w.run_as(header(client, 1, 0), lock_b.clone());
    assert_eq!(
        w.run_as(header(client, 1, 0), lock_b.clone()),
        queued,
        "still waiting"
    );
    w.ok(Command::Unlock {
        name: b"L".to_vec(),
        token,
    });
    let grant = w.completed().pop().expect("b granted").response;
    assert_eq!(
        w.run_as(header(client, 1, 0), lock_b),
        grant,
        "the retry sees the grant"
    );
}

#[test]
fn reads_in_a_session_are_not_cached() {
    let mut w = World::new();
    let client = w.register();
    let read = Command::Read(ReadRequest::Counter {
        name: b"c".to_vec(),
    });
    w.run_as(header(client, 1, 0), read.clone());
    w.ok(Command::FetchAdd {
        name: b"c".to_vec(),
        delta: 4,
    });
    let again = w.run_as(header(client, 1, 0), read);
    assert_eq!(again.result, Ok(Reply::Counter { value: 4 }));
}

#[test]
fn a_closed_session_forgets_its_requests() {
    let mut w = World::new();
    let client = w.register();
    w.run_as(header(client, 1, 0), put("k", "v"));
    assert_eq!(
        w.run_as(header(client, 2, 0), Command::CloseSession).result,
        Ok(Reply::SessionClosed)
    );
    let retry = w.run_as(header(client, 1, 0), put("k", "v"));
    assert_eq!(
        retry.result,
        Err(StoreError::SessionExpired {
            client_id: client,
            seq: 1
        })
    );
}

#[test]
fn session_headers_are_validated_before_the_log() {
    let limits = StoreLimits::default();
    let invalid = [header(5, 0, 0), header(5, 3, 3), header(0, 1, 1)];
    for session in invalid {
        let request = Request {
            session,
            command: put("k", "v"),
        };
        assert!(matches!(
            codec::validate(&request, &limits),
            Err(InvalidRequest::SessionHeader { .. })
        ));
    }
    let register_in_session = Request {
        session: header(5, 1, 0),
        command: Command::RegisterSession,
    };
    assert_eq!(
        codec::validate(&register_in_session, &limits),
        Err(InvalidRequest::NeedsNoSession("RegisterSession"))
    );
}

#[test]
fn responses_beyond_the_byte_bound_are_evicted_oldest_first() {
    let one = codec::response_len(&Response {
        revision: 2,
        result: Ok(Reply::FetchAdd { previous: 0 }),
    }) as u64;
    let mut w = World::with_limits(StoreLimits {
        max_session_response_bytes: 2 * one,
        ..StoreLimits::default()
    });
    let client = w.register();
    let add = Command::FetchAdd {
        name: b"c".to_vec(),
        delta: 1,
    };
    for seq in 1..=3 {
        w.run_as(header(client, seq, 0), add.clone());
    }
    assert_eq!(
        w.run_as(header(client, 1, 0), add.clone()).result,
        Err(StoreError::SessionExpired {
            client_id: client,
            seq: 1
        })
    );
    assert_eq!(
        w.run_as(header(client, 2, 0), add).result,
        Ok(Reply::FetchAdd { previous: 1 })
    );
}

#[test]
fn a_waiting_request_is_never_evicted_by_the_response_bound() {
    let mut w = World::with_limits(StoreLimits {
        max_session_responses: 1,
        ..StoreLimits::default()
    });
    let client = w.register();
    let (a, b) = (w.grant(1000), w.grant(1000));
    let Reply::Lock(Acquire::Granted { token }) = w.ok(Command::Lock {
        name: b"L".to_vec(),
        lease: a,
    }) else {
        panic!("not granted");
    };
    let lock_b = Command::Lock {
        name: b"L".to_vec(),
        lease: b,
    };
    let queued = w.run_as(header(client, 1, 0), lock_b.clone());
    w.run_as(header(client, 2, 0), put("k", "1"));
    w.run_as(header(client, 3, 0), put("k", "2"));
    assert_eq!(
        w.run_as(header(client, 1, 0), lock_b.clone()),
        queued,
        "still waiting, still known"
    );
    w.ok(Command::Unlock {
        name: b"L".to_vec(),
        token,
    });
    let grant = w.completed().pop().expect("b granted").response;
    assert_eq!(w.run_as(header(client, 1, 0), lock_b), grant);
}
