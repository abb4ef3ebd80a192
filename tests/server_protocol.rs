//! The client protocol: every message round-trips, encodings are canonical, and no byte string
//! makes a decoder panic.

use aurora::config::Durability;
use aurora::server::protocol::{
    decode_request, decode_response, encode_request, encode_response, encode_response_into,
    frame_request, frame_response_into, CancelReason, ClientRequest, ClientResponse, Consistency,
    NodeRole, NodeStatus, ProtocolError, RequestOp, ResponseRef, ServerError, PROTOCOL_VERSION,
};
use aurora::store::{codec, KeyRange, PutRequest, Reply, Request, Response, SessionHeader};
use aurora::wire::{FrameKind, FrameRules};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn consistency() -> impl Strategy<Value = Consistency> {
    prop_oneof![
        Just(Consistency::Linearizable),
        Just(Consistency::ReadIndex),
        Just(Consistency::Stale)
    ]
}

fn request() -> impl Strategy<Value = ClientRequest> {
    let op = prop_oneof![
        (consistency(), bytes(64)).prop_map(|(consistency, request)| RequestOp::Store {
            consistency,
            request
        }),
        (bytes(16), bytes(16), any::<u64>(), any::<bool>()).prop_map(
            |(key, range_end, start_revision, prev_kv)| RequestOp::Watch {
                range: KeyRange { key, range_end },
                start_revision,
                prev_kv
            }
        ),
        any::<u64>().prop_map(|watch_id| RequestOp::CancelWatch { watch_id }),
        Just(RequestOp::Status),
    ];
    (any::<u32>(), op).prop_map(|(deadline_ms, op)| ClientRequest { deadline_ms, op })
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9.:]{0,24}"
}

fn server_error() -> impl Strategy<Value = ServerError> {
    prop_oneof![
        (any::<u64>(), text()).prop_map(|(leader, leader_client_addr)| ServerError::NotLeader {
            leader,
            leader_client_addr
        }),
        Just(ServerError::NoLeader),
        Just(ServerError::Busy),
        Just(ServerError::DeadlineExceeded),
        (any::<u64>(), any::<u64>()).prop_map(|(len_bytes, max_bytes)| ServerError::TooLarge {
            len_bytes,
            max_bytes
        }),
        text().prop_map(|reason| ServerError::BadRequest { reason }),
        (any::<u64>(), any::<u64>()).prop_map(|(requested, compact_revision)| {
            ServerError::Compacted {
                requested,
                compact_revision,
            }
        }),
        text().prop_map(|reason| ServerError::Unavailable { reason }),
    ]
}

fn role() -> impl Strategy<Value = NodeRole> {
    prop_oneof![
        Just(NodeRole::Follower),
        Just(NodeRole::PreCandidate),
        Just(NodeRole::Candidate),
        Just(NodeRole::Leader),
        Just(NodeRole::Learner),
    ]
}

fn response() -> impl Strategy<Value = ClientResponse> {
    let status = (
        any::<u64>(),
        role(),
        any::<[u64; 5]>(),
        any::<bool>(),
        text(),
    )
        .prop_map(|(node_id, role, n, memory, leader_client_addr)| {
            ClientResponse::Status(NodeStatus {
                node_id,
                role,
                term: n[0],
                leader: n[1],
                commit_index: n[2],
                applied_index: n[3],
                revision: n[4],
                durability: if memory {
                    Durability::Memory
                } else {
                    Durability::Fsync
                },
                leader_client_addr,
            })
        });
    let reason = prop_oneof![
        Just(CancelReason::Requested),
        any::<u64>().prop_map(|compact_revision| CancelReason::Compacted { compact_revision }),
        Just(CancelReason::SlowConsumer),
    ];
    prop_oneof![
        bytes(64).prop_map(ClientResponse::Store),
        (any::<u64>(), any::<u64>()).prop_map(|(watch_id, start_revision)| {
            ClientResponse::WatchCreated {
                watch_id,
                start_revision,
            }
        }),
        (any::<u64>(), bytes(64))
            .prop_map(|(watch_id, events)| ClientResponse::WatchEvents { watch_id, events }),
        (any::<u64>(), reason)
            .prop_map(|(watch_id, reason)| ClientResponse::WatchCanceled { watch_id, reason }),
        status,
        server_error().prop_map(ClientResponse::Error),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip_canonically(req in request()) {
        let mut out = Vec::new();
        encode_request(&req, &mut out);
        let view = decode_request(&out).expect("a valid encoding decodes");
        prop_assert_eq!(view.to_owned(), req.clone());
        let mut again = Vec::new();
        encode_request(&view.to_owned(), &mut again);
        prop_assert_eq!(again, out);
    }

    #[test]
    fn responses_round_trip_through_vec_and_slice(resp in response()) {
        let mut out = Vec::new();
        encode_response(&resp, &mut out);
        prop_assert_eq!(decode_response(&out).expect("valid"), resp.clone());
        let mut slice = vec![0u8; out.len()];
        prop_assert_eq!(encode_response_into(resp.as_ref(), &mut slice), Ok(out.len()));
        prop_assert_eq!(&slice, &out);
        if !out.is_empty() {
            let mut short = vec![0u8; out.len() - 1];
            prop_assert!(encode_response_into(resp.as_ref(), &mut short).is_err());
        }
    }

    #[test]
    fn truncated_fixed_size_messages_are_rejected(resp in response(), cut in 0usize..64) {
        // STORE and WATCH_EVENTS end in an opaque store-codec body, so any prefix past their
        // header is still a well-formed envelope; every other message has an exact length.
        prop_assume!(!matches!(resp, ClientResponse::Store(_) | ClientResponse::WatchEvents { .. }));
        let mut out = Vec::new();
        encode_response(&resp, &mut out);
        let cut = cut % out.len();
        prop_assert!(decode_response(&out[..cut]).is_err());
        out.push(0);
        let trailing = matches!(decode_response(&out), Err(ProtocolError::TrailingBytes { count: 1 }));
        prop_assert!(trailing);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in bytes(256)) {
        let _ = decode_request(&raw);
        let _ = decode_response(&raw);
    }

    #[test]
    fn request_frames_pass_wire_validation(req in request(), corr in any::<u64>()) {
        let mut frame = Vec::new();
        let len = frame_request(0xA, corr, &req, &mut frame).expect("fits");
        prop_assert_eq!(len, frame.len());
        let rules = FrameRules::new(0xA, 1 << 20).unwrap();
        let parsed = rules.decode_datagram(&frame).expect("valid frame");
        prop_assert_eq!(parsed.header().kind(), FrameKind::ClientRequest);
        prop_assert_eq!(parsed.header().correlation_id(), corr);
        prop_assert_eq!(decode_request(parsed.payload()).unwrap().to_owned(), req);
    }
}

#[test]
fn unknown_op_and_version_are_named() {
    let mut out = Vec::new();
    encode_request(
        &ClientRequest {
            deadline_ms: 0,
            op: RequestOp::Status,
        },
        &mut out,
    );
    let mut bad_op = out.clone();
    bad_op[1] = 0x7f;
    assert_eq!(
        decode_request(&bad_op),
        Err(ProtocolError::UnknownTag {
            what: "op",
            got: 0x7f
        })
    );
    let mut bad_version = out;
    bad_version[0] = PROTOCOL_VERSION + 1;
    assert!(matches!(
        decode_request(&bad_version),
        Err(ProtocolError::UnsupportedVersion { .. })
    ));
}

#[test]
fn store_response_encoded_in_place_equals_store_codec_bytes() {
    let response = Response {
        revision: 9,
        result: Ok(Reply::Put(Default::default())),
    };
    let mut frame = vec![0u8; 256];
    let len = frame_response_into(&mut frame, 3, 77, ResponseRef::StoreResponse(&response))
        .expect("fits");
    let rules = FrameRules::new(3, 1 << 20).unwrap();
    let parsed = rules.decode_datagram(&frame[..len]).expect("valid");
    assert_eq!(parsed.header().correlation_id(), 77);
    match decode_response(parsed.payload()).expect("valid") {
        ClientResponse::Store(bytes) => {
            assert_eq!(
                codec::decode_response(&bytes).expect("store codec"),
                response
            )
        }
        other => panic!("expected a store response, got {other:?}"),
    }
}

#[test]
fn store_request_bytes_travel_unchanged() {
    let request = Request {
        session: SessionHeader::none(1),
        command: aurora::store::Command::Put(PutRequest::new("k", "v")),
    };
    let mut store_bytes = Vec::new();
    codec::encode_request(&request, &mut store_bytes);
    let mut out = Vec::new();
    encode_request(
        &ClientRequest {
            deadline_ms: 0,
            op: RequestOp::Store {
                consistency: Consistency::Linearizable,
                request: store_bytes.clone(),
            },
        },
        &mut out,
    );
    match decode_request(&out).unwrap().op {
        aurora::server::protocol::RequestOpView::Store { request: bytes, .. } => {
            assert_eq!(bytes, store_bytes.as_slice())
        }
        other => panic!("expected a store op, got {other:?}"),
    }
}
