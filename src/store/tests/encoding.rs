use super::*;

fn roundtrip(request: Request) {
    let mut bytes = Vec::new();
    codec::encode_request(&request, &mut bytes);
    assert_eq!(
        codec::decode_request(&bytes, &StoreLimits::default()),
        Ok(request.clone())
    );
    let mut slab = vec![0; bytes.len()];
    assert_eq!(
        codec::encode_request_into(&request, &mut slab),
        Ok(bytes.len())
    );
    assert_eq!(slab, bytes);
}

#[test]
fn every_command_round_trips() {
    let session = header(7, 9, 3);
    let commands = [
        put("k", "v"),
        delete(KeyRange::prefix("p")),
        Command::Read(ReadRequest::Range(RangeRequest {
            range: KeyRange::from_key("a"),
            revision: 4,
            limit: 2,
            keys_only: true,
            count_only: false,
        })),
        Command::Read(ReadRequest::LeaseKeepAlive { id: 3 }),
        Command::Read(ReadRequest::LeaseTimeToLive { id: 3, keys: true }),
        Command::Read(ReadRequest::Leases),
        Command::Read(ReadRequest::Leader {
            name: b"e".to_vec(),
        }),
        Command::Read(ReadRequest::Counter {
            name: b"c".to_vec(),
        }),
        Command::Txn(TxnRequest {
            compare: vec![Compare {
                key: b"k".to_vec(),
                op: CompareOp::Greater,
                target: CompareTarget::ModRevision(3),
            }],
            success: vec![TxnOp::Put(PutRequest::new("k", "v"))],
            failure: vec![TxnOp::Range(RangeRequest::latest(KeyRange::single("k")))],
        }),
        Command::Compact { revision: 5 },
        Command::LeaseGrant { id: 0, ttl_ms: 10 },
        Command::LeaseRevoke {
            id: 4,
            reason: RevokeReason::Expired,
        },
        Command::Lock {
            name: b"l".to_vec(),
            lease: 2,
        },
        Command::Unlock {
            name: b"l".to_vec(),
            token: 8,
        },
        Command::Campaign {
            name: b"e".to_vec(),
            lease: 2,
            value: b"v".to_vec(),
        },
        Command::Proclaim {
            name: b"e".to_vec(),
            token: 3,
            value: b"w".to_vec(),
        },
        Command::Resign {
            name: b"e".to_vec(),
            token: 3,
        },
        Command::Arrive {
            name: b"b".to_vec(),
            n: 4,
            lease: 2,
        },
        Command::FetchAdd {
            name: b"c".to_vec(),
            delta: -2,
        },
        Command::CloseSession,
    ];
    for command in commands {
        roundtrip(Request { session, command });
    }
    roundtrip(Request {
        session: SessionHeader::none(1),
        command: Command::RegisterSession,
    });
}

#[test]
fn a_response_round_trips_and_its_length_is_known_in_advance() {
    let response = Response {
        revision: 12,
        result: Err(StoreError::BarrierBroken {
            name: b"b".to_vec(),
            generation: 3,
            reason: BreakReason::LeaseExpired { lease: 9 },
        }),
    };
    let mut bytes = Vec::new();
    codec::encode_response(&response, &mut bytes);
    assert_eq!(codec::response_len(&response), bytes.len());
    assert_eq!(codec::decode_response(&bytes), Ok(response.clone()));
    let mut small = [0; 4];
    assert_eq!(
        codec::encode_response_into(&response, &mut small),
        Err(codec::BufferTooSmall {
            need: bytes.len(),
            have: 4
        })
    );
}

#[test]
fn an_oversize_key_is_refused_while_decoding() {
    let limits = StoreLimits {
        max_key_bytes: 4,
        ..StoreLimits::default()
    };
    let request = Request {
        session: SessionHeader::none(1),
        command: put("toolong", "v"),
    };
    let mut bytes = Vec::new();
    codec::encode_request(&request, &mut bytes);
    assert_eq!(
        codec::decode_request(&bytes, &limits),
        Err(CodecError::TooLong {
            what: "put key",
            len: 7,
            max: 4
        })
    );
}

#[test]
fn damaged_requests_get_precise_errors() {
    let request = Request {
        session: SessionHeader::none(1),
        command: put("k", "v"),
    };
    let mut bytes = Vec::new();
    codec::encode_request(&request, &mut bytes);
    let limits = StoreLimits::default();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        codec::decode_request(&trailing, &limits),
        Err(CodecError::TrailingBytes { count: 1 })
    );
    assert!(matches!(
        codec::decode_request(&bytes[..bytes.len() - 1], &limits),
        Err(CodecError::Truncated {
            what: "ignore_lease",
            ..
        })
    ));
    let mut bad_bool = bytes.clone();
    *bad_bool.last_mut().expect("non-empty") = 7;
    assert_eq!(
        codec::decode_request(&bad_bool, &limits),
        Err(CodecError::InvalidBool {
            what: "ignore_lease",
            got: 7
        })
    );
    let mut response_bytes = Vec::new();
    codec::encode_response(
        &Response {
            revision: 1,
            result: Ok(Reply::Unlocked),
        },
        &mut response_bytes,
    );
    assert!(matches!(
        codec::decode_request(&response_bytes, &limits),
        Err(CodecError::WrongMessageKind { .. })
    ));
}

#[test]
fn event_batches_round_trip() {
    let events = vec![
        Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                create_revision: 2,
                mod_revision: 3,
                version: 2,
                lease: 0,
            },
            prev_kv: None,
        },
        Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: b"k".to_vec(),
                mod_revision: 4,
                ..KeyValue::default()
            },
            prev_kv: Some(KeyValue::default()),
        },
    ];
    let mut bytes = Vec::new();
    codec::encode_events(&events, &mut bytes);
    assert_eq!(codec::decode_events(&bytes), Ok(events));
}
