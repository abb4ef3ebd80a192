//! Bad client input gets a precise error (or, for a broken stream, a closed connection) and the
//! node keeps serving everyone else: oversize keys and values, unknown op codes, garbage bytes, a
//! client that never reads its answers.

mod server_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aurora::server::protocol::{
    encode_request, ClientRequest, ClientResponse, Consistency, RequestOp, ServerError,
};
use aurora::store::{
    codec, Command, KeyRange, PutRequest, RangeRequest, ReadRequest, Request, SessionHeader,
};
use aurora::wire::{encode_payload, FrameKind, HeaderFields, HEADER_LEN};
use server_support::{wait_metric, Client, Cluster, CLUSTER};

const ELECTION: Duration = Duration::from_secs(10);

fn healthy(c: &mut Client) {
    let resp = c
        .put("health-probe", b"ok")
        .unwrap()
        .expect("node still serves");
    assert!(resp.result.is_ok());
}

fn raw_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let fields = HeaderFields {
        kind,
        cluster_id: CLUSTER,
        from: 0,
        to: 0,
        term: 0,
        correlation_id: 42,
    };
    let mut frame = vec![0u8; HEADER_LEN + payload.len()];
    encode_payload(&mut frame, &fields, payload).unwrap();
    frame
}

/// Reads until the server closes the connection; panics if it stays open past the timeout.
fn expect_closed(stream: &mut std::net::TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => assert!(Instant::now() < until, "connection was not closed"),
        }
    }
}

#[test]
fn oversize_values_and_keys_get_too_large_with_both_numbers() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut c = Client::connect(cluster.client_addr(leader)).unwrap();
    // One byte over max_value_bytes (65,536 in these nodes' configuration).
    match c.put("big", &vec![7u8; 65_537]).unwrap() {
        Err(ServerError::TooLarge {
            len_bytes,
            max_bytes,
        }) => {
            assert_eq!((len_bytes, max_bytes), (65_537, 65_536));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // A key over max_key_bytes (4096 by default).
    let request = Request {
        session: SessionHeader::none(1),
        command: Command::Put(PutRequest::new(vec![b'k'; 5000], b"v".to_vec())),
    };
    match c.store(&request, Consistency::Linearizable).unwrap() {
        Err(ServerError::TooLarge {
            len_bytes: 5000,
            max_bytes: 4096,
        }) => {}
        other => panic!("expected TooLarge 5000 > 4096, got {other:?}"),
    }
    // The largest value still commits, and the connection keeps working.
    let resp = c
        .put("fits", &vec![1u8; 65_536])
        .unwrap()
        .expect("64 KiB fits");
    assert!(resp.result.is_ok());
    healthy(&mut c);
}

#[test]
fn unknown_op_code_and_undecodable_store_request_are_bad_requests() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut c = Client::connect(cluster.client_addr(leader)).unwrap();
    let mut payload = Vec::new();
    encode_request(
        &ClientRequest {
            deadline_ms: 0,
            op: RequestOp::Status,
        },
        &mut payload,
    );
    payload[1] = 0x7e;
    c.stream
        .write_all(&raw_frame(FrameKind::ClientRequest, &payload))
        .unwrap();
    match c.recv().unwrap() {
        (42, ClientResponse::Error(ServerError::BadRequest { reason })) => {
            assert!(reason.contains("op") && reason.contains("0x7e"), "{reason}");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    // A store request whose command tag is unknown.
    let mut store = Vec::new();
    codec::encode_request(
        &Request {
            session: SessionHeader::none(1),
            command: Command::Read(ReadRequest::Range(RangeRequest::latest(KeyRange::single(
                "a",
            )))),
        },
        &mut store,
    );
    store[26] = 0xEE;
    match c
        .call(RequestOp::Store {
            consistency: Consistency::Linearizable,
            request: store,
        })
        .unwrap()
    {
        ClientResponse::Error(ServerError::BadRequest { reason }) => {
            assert!(reason.contains("tag"), "{reason}");
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    healthy(&mut c);
}

#[test]
fn garbage_bytes_close_only_that_connection() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut bystander = Client::connect(cluster.client_addr(leader)).unwrap();
    let mut garbage = Client::connect(cluster.client_addr(leader)).unwrap();
    garbage.stream.write_all(&[0xAB; 200]).unwrap();
    expect_closed(&mut garbage.stream);
    // A frame longer than max_frame_bytes is refused from its header alone.
    let mut oversize = Client::connect(cluster.client_addr(leader)).unwrap();
    let frame = raw_frame(FrameKind::ClientRequest, &vec![0u8; 200_000]);
    let _ = oversize.stream.write_all(&frame[..HEADER_LEN]);
    expect_closed(&mut oversize.stream);
    healthy(&mut bystander);
    wait_metric(
        cluster.ports[leader - 1].admin,
        "aurora_clients_bad_frames_total 2",
    );
}

#[test]
fn a_client_that_never_reads_is_dropped_and_counted() {
    let cluster = Cluster::start(1, "fsync");
    let leader = cluster.wait_leader(ELECTION);
    let mut writer = Client::connect(cluster.client_addr(leader)).unwrap();
    writer.put("wide", &vec![9u8; 20_000]).unwrap().unwrap();
    let mut lazy = Client::connect(cluster.client_addr(leader)).unwrap();
    // Each answer carries 20 kB; the kernel buffers a few MB, the node 2 x max_frame_bytes.
    let mut one = Vec::new();
    aurora::server::protocol::frame_request(
        CLUSTER,
        7,
        &ClientRequest {
            deadline_ms: 0,
            op: RequestOp::Store {
                consistency: Consistency::Stale,
                request: {
                    let mut b = Vec::new();
                    codec::encode_request(
                        &Request {
                            session: SessionHeader::none(1),
                            command: Command::Read(ReadRequest::Range(RangeRequest::latest(
                                KeyRange::single("wide"),
                            ))),
                        },
                        &mut b,
                    );
                    b
                },
            },
        },
        &mut one,
    )
    .unwrap();
    lazy.stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..5_000 {
        if lazy.stream.write_all(&one).is_err() {
            break;
        }
    }
    wait_metric(
        cluster.ports[leader - 1].admin,
        "aurora_clients_slow_dropped_total 1",
    );
    expect_closed(&mut lazy.stream);
    healthy(&mut writer);
}
