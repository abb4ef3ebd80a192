//! Coordination features through a running node: watches stream events, leases expire by the
//! leader's decision committed through the log (and keep-alives hold them), a queued lock gets its
//! grant as a second answer, sessions make a retried write apply once, and a memory-mode node that
//! restarted without its log catches up before it serves or votes.

mod server_support;

use std::time::{Duration, Instant};

use aurora::server::protocol::{ClientResponse, Consistency, RequestOp};
use aurora::store::{
    codec, Acquire, Command, EventKind, KeyRange, LeaseId, PutRequest, ReadRequest, Reply, Request,
    Response, SessionHeader, NO_LEASE,
};
use server_support::{admin_get, put_anywhere, Client, Cluster};

const ELECTION: Duration = Duration::from_secs(10);

fn ok(r: std::io::Result<Result<Response, aurora::server::protocol::ServerError>>) -> Reply {
    let resp = r.expect("io").expect("no server error");
    resp.result.expect("store accepted")
}

fn sessionless(command: Command) -> Request {
    Request {
        session: SessionHeader::none(1),
        command,
    }
}

fn grant(c: &mut Client, ttl_ms: u64) -> LeaseId {
    match ok(c.store(
        &sessionless(Command::LeaseGrant {
            id: NO_LEASE,
            ttl_ms,
        }),
        Consistency::Linearizable,
    )) {
        Reply::LeaseGranted { id, .. } => id,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn watch_streams_history_and_new_events_in_order() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut writer = Client::connect(cluster.client_addr(leader)).unwrap();
    writer.put("w/old", b"1").unwrap().unwrap();
    writer.put("other", b"x").unwrap().unwrap();
    let mut watcher = Client::connect(cluster.client_addr(leader)).unwrap();
    let watch_id = watcher
        .send(RequestOp::Watch {
            range: KeyRange::prefix("w/"),
            start_revision: 1,
            prev_kv: false,
        })
        .unwrap();
    match watcher.recv().unwrap() {
        (
            id,
            ClientResponse::WatchCreated {
                watch_id: w,
                start_revision: 1,
            },
        ) => {
            assert_eq!((id, w), (watch_id, watch_id));
        }
        other => panic!("expected WatchCreated, got {other:?}"),
    }
    writer.put("w/new", b"2").unwrap().unwrap();
    writer
        .store(
            &sessionless(Command::DeleteRange(aurora::store::DeleteRangeRequest {
                range: KeyRange::single("w/old"),
                prev_kv: false,
            })),
            Consistency::Linearizable,
        )
        .unwrap()
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match watcher.recv().unwrap() {
            (
                id,
                ClientResponse::WatchEvents {
                    watch_id: w,
                    events,
                },
            ) => {
                assert_eq!((id, w), (watch_id, watch_id));
                for e in codec::decode_events(&events).unwrap() {
                    seen.push((
                        e.kind,
                        String::from_utf8(e.kv.key).unwrap(),
                        e.kv.mod_revision,
                    ));
                }
            }
            other => panic!("expected events, got {other:?}"),
        }
    }
    let kinds: Vec<(EventKind, &str)> = seen.iter().map(|(k, key, _)| (*k, key.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Put, "w/old"),
            (EventKind::Put, "w/new"),
            (EventKind::Delete, "w/old")
        ]
    );
    assert!(
        seen.windows(2).all(|w| w[0].2 < w[1].2),
        "revisions increase: {seen:?}"
    );
}

/// Runs `request` on whichever node leads, retrying server errors (a leader change on a loaded
/// machine) for up to ten seconds.
fn on_leader(cluster: &Cluster, request: &Request, consistency: Consistency) -> Reply {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let leader = cluster.wait_leader(ELECTION);
        if let Ok(mut c) = Client::connect(cluster.client_addr(leader)) {
            match c.store(request, consistency) {
                Ok(Ok(resp)) => return resp.result.expect("store accepted"),
                Ok(Err(e)) => assert!(Instant::now() < until, "server error: {e}"),
                Err(e) => assert!(Instant::now() < until, "i/o error: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn leased_put(key: &str, lease: LeaseId) -> Request {
    let mut put = PutRequest::new(key, b"leased".to_vec());
    put.lease = lease;
    sessionless(Command::Put(put))
}

fn range(key: &str) -> Request {
    sessionless(Command::Read(ReadRequest::Range(
        aurora::store::RangeRequest::latest(KeyRange::single(key)),
    )))
}

fn found(reply: Reply) -> bool {
    match reply {
        Reply::Range(r) => !r.kvs.is_empty(),
        other => panic!("expected a range reply, got {other:?}"),
    }
}

#[test]
fn leases_expire_by_the_leader_and_keep_alives_hold_them() {
    let cluster = Cluster::start(3, "memory");
    let grant = |ttl_ms| match on_leader(
        &cluster,
        &sessionless(Command::LeaseGrant {
            id: NO_LEASE,
            ttl_ms,
        }),
        Consistency::Linearizable,
    ) {
        Reply::LeaseGranted { id, .. } => id,
        other => panic!("expected a lease, got {other:?}"),
    };
    let short = grant(300);
    on_leader(
        &cluster,
        &leased_put("ephemeral", short),
        Consistency::Linearizable,
    );
    let kept = grant(300);
    on_leader(
        &cluster,
        &leased_put("kept", kept),
        Consistency::Linearizable,
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(900) {
        let keep_alive = sessionless(Command::Read(ReadRequest::LeaseKeepAlive { id: kept }));
        match on_leader(&cluster, &keep_alive, Consistency::Linearizable) {
            Reply::LeaseAlive { id, .. } => assert_eq!(id, kept),
            other => panic!("expected LeaseAlive, got {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until("the unrenewed lease's key to vanish", || {
        !found(on_leader(
            &cluster,
            &range("ephemeral"),
            Consistency::Linearizable,
        ))
    });
    assert!(
        found(on_leader(
            &cluster,
            &range("kept"),
            Consistency::Linearizable
        )),
        "a kept-alive lease survives"
    );
    // The expiry went through the log: every replica agrees.
    for id in 1..=3 {
        let mut r = Client::connect(cluster.client_addr(id)).unwrap();
        wait_until("replicas to apply the expiry", || {
            r.get("ephemeral", Consistency::Stale)
                .unwrap()
                .unwrap()
                .is_none()
        });
    }
}

#[test]
fn a_queued_lock_is_granted_by_a_second_answer() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut a = Client::connect(cluster.client_addr(leader)).unwrap();
    let mut b = Client::connect(cluster.client_addr(leader)).unwrap();
    let register = |c: &mut Client| match ok(c.store(
        &sessionless(Command::RegisterSession),
        Consistency::Linearizable,
    )) {
        Reply::SessionRegistered { client_id } => client_id,
        other => panic!("{other:?}"),
    };
    let (ida, idb) = (register(&mut a), register(&mut b));
    let (la, lb) = (grant(&mut a, 60_000), grant(&mut b, 60_000));
    let lock = |client_id, seq, lease| Request {
        session: SessionHeader {
            client_id,
            seq,
            acked_seq: 0,
        },
        command: Command::Lock {
            name: b"L".to_vec(),
            lease,
        },
    };
    let token = match ok(a.store(&lock(ida, 1, la), Consistency::Linearizable)) {
        Reply::Lock(Acquire::Granted { token }) => token,
        other => panic!("expected a grant, got {other:?}"),
    };
    let mut bytes = Vec::new();
    codec::encode_request(&lock(idb, 1, lb), &mut bytes);
    let corr = b
        .send(RequestOp::Store {
            consistency: Consistency::Linearizable,
            request: bytes,
        })
        .unwrap();
    match b.recv().unwrap() {
        (id, ClientResponse::Store(r)) => {
            assert_eq!(id, corr);
            let r = codec::decode_response(&r).unwrap();
            assert!(
                matches!(r.result, Ok(Reply::Lock(Acquire::Queued { .. }))),
                "{r:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let unlock = Request {
        session: SessionHeader {
            client_id: ida,
            seq: 2,
            acked_seq: 1,
        },
        command: Command::Unlock {
            name: b"L".to_vec(),
            token,
        },
    };
    assert!(matches!(
        ok(a.store(&unlock, Consistency::Linearizable)),
        Reply::Unlocked
    ));
    match b.recv().unwrap() {
        (id, ClientResponse::Store(r)) => {
            assert_eq!(id, corr, "the grant answers the original request");
            let r = codec::decode_response(&r).unwrap();
            match r.result {
                Ok(Reply::Lock(Acquire::Granted { token: t })) => assert!(t > token),
                other => panic!("expected the grant, got {other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_retried_write_in_a_session_applies_once() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut c = Client::connect(cluster.client_addr(leader)).unwrap();
    let client_id = match ok(c.store(
        &sessionless(Command::RegisterSession),
        Consistency::Linearizable,
    )) {
        Reply::SessionRegistered { client_id } => client_id,
        other => panic!("{other:?}"),
    };
    let add = Request {
        session: SessionHeader {
            client_id,
            seq: 1,
            acked_seq: 0,
        },
        command: Command::FetchAdd {
            name: b"ctr".to_vec(),
            delta: 5,
        },
    };
    let first = ok(c.store(&add, Consistency::Linearizable));
    let retry = ok(c.store(&add, Consistency::Linearizable));
    assert_eq!(first, Reply::FetchAdd { previous: 0 });
    assert_eq!(retry, first, "the retry gets the cached answer");
    match ok(c.store(
        &sessionless(Command::Read(ReadRequest::Counter {
            name: b"ctr".to_vec(),
        })),
        Consistency::Linearizable,
    )) {
        Reply::Counter { value } => assert_eq!(value, 5, "applied once"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn memory_mode_node_restarted_without_its_log_catches_up_before_serving() {
    let mut cluster = Cluster::start(3, "memory");
    let leader = cluster.wait_leader(ELECTION);
    for i in 0..20 {
        put_anywhere(&cluster, &format!("mem{i}"), b"replicated", ELECTION);
    }
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    cluster.stop(follower);
    cluster.restart(follower);
    let admin = cluster.ports[follower - 1].admin;
    wait_until("the restarted node to finish recovery", || {
        let (_, body) = admin_get(admin, "/status");
        serde_json::from_str::<serde_json::Value>(&body)
            .map(|j| j["recovering"] == false && j["applied_index"].as_u64().unwrap_or(0) >= 21)
            .unwrap_or(false)
    });
    let mut c = Client::connect(cluster.client_addr(follower)).unwrap();
    for i in 0..20 {
        assert_eq!(
            c.get(&format!("mem{i}"), Consistency::Stale)
                .unwrap()
                .unwrap(),
            Some(b"replicated".to_vec())
        );
    }
    assert_eq!(admin_get(admin, "/health").0, 200);
}
