//! Bad client input against a real 3-node cluster: oversize keys and values, unknown op codes,
//! garbage bytes, oversize frames, and a client that never reads its responses. Each gets a clear
//! error (or, when the stream lost framing, a closed connection), and the node keeps serving
//! other clients throughout.

mod local_cluster;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use aurora::cli::up::{DurabilityArg, LOCAL_CLUSTER_ID};
use aurora::client::ClientError;
use aurora::server::protocol::{
    client_fields, decode_response, frame_request, ClientRequest, ClientResponse, RequestOp,
    ServerError,
};
use aurora::wire::{encode_payload, FrameHeader, FrameKind, HEADER_LEN, MAGIC, VERSION};
use local_cluster::{LocalCluster, LEADER_WAIT};

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

fn read_response(s: &mut TcpStream) -> std::io::Result<ClientResponse> {
    let mut header = [0u8; HEADER_LEN];
    s.read_exact(&mut header)?;
    let len = FrameHeader::read_from(&header).expect("header").length as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok(decode_response(&payload).expect("valid response"))
}

fn status_frame(correlation: u64) -> Vec<u8> {
    let mut frame = Vec::new();
    let request = ClientRequest {
        deadline_ms: 0,
        op: RequestOp::Status,
    };
    frame_request(LOCAL_CLUSTER_ID, correlation, &request, &mut frame).expect("frame");
    frame
}

/// Whether the node closed the connection (EOF or reset) within the read timeout.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// The cluster still does its job for a well-behaved client.
fn still_serves(cluster: &LocalCluster, tag: &str) {
    let mut client = cluster.client();
    client
        .put(format!("ok/{tag}").as_bytes(), b"fine")
        .unwrap_or_else(|e| cluster.fail(&format!("after {tag}: {e}")));
    assert_eq!(
        client
            .get(format!("ok/{tag}").as_bytes())
            .expect("get")
            .expect("present")
            .value,
        b"fine"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_the_node_keeps_serving() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let addr = cluster.client_addr(leader);
    let mut client = cluster.client();

    // Oversize key (limit 4096 B) and value (limit 1 MiB): refused with both numbers named.
    let err = client
        .put(&vec![b'k'; 5000], b"v")
        .expect_err("oversize key");
    let text = err.to_string();
    assert!(matches!(err, ClientError::Server(_)), "{text}");
    assert!(text.contains("5000") && text.contains("4096"), "{text}");
    let err = client
        .put(b"big", &vec![b'v'; 1_500_000])
        .expect_err("oversize value");
    let text = err.to_string();
    // The request's size and the limit it broke are both named (the server's limit for one
    // request may be below max_value_bytes; see the report).
    assert!(matches!(err, ClientError::Server(_)), "{text}");
    assert!(text.contains("15000") && text.contains("limit"), "{text}");
    still_serves(&cluster, "oversize");

    // An unknown op code in a well-framed request: BadRequest, and the connection keeps working.
    let mut s = connect(addr);
    let mut frame = vec![0u8; HEADER_LEN + 6];
    let fields = client_fields(FrameKind::ClientRequest, LOCAL_CLUSTER_ID, 7);
    let n = encode_payload(&mut frame, &fields, &[1, 0x7f, 0, 0, 0, 0]).expect("frame");
    s.write_all(&frame[..n]).expect("send");
    match read_response(&mut s).expect("an answer, not a dropped connection") {
        ClientResponse::Error(ServerError::BadRequest { reason }) => {
            assert!(reason.contains("0x7f") || reason.contains("op"), "{reason}")
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    s.write_all(&status_frame(8)).expect("send status");
    assert!(matches!(
        read_response(&mut s).expect("status after a bad request"),
        ClientResponse::Status(_)
    ));

    // Garbage bytes: the stream has no framing left, so the node closes it.
    let mut s = connect(addr);
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
    s.write_all(&garbage).expect("send garbage");
    assert!(
        closed(&mut s),
        "the node closes a connection that sent garbage"
    );
    still_serves(&cluster, "garbage");

    // A header claiming a 64 MiB payload: rejected before the payload is read.
    let mut s = connect(addr);
    let header = FrameHeader {
        magic: MAGIC,
        version: VERSION,
        kind: FrameKind::ClientRequest.to_byte(),
        flags: 0,
        cluster_id: LOCAL_CLUSTER_ID,
        from: 0,
        to: 0,
        term: 0,
        length: 64 << 20,
        crc32c: 0,
        correlation_id: 9,
    };
    s.write_all(bytemuck::bytes_of(&header)).expect("send");
    assert!(closed(&mut s), "an oversize frame closes the connection");
    still_serves(&cluster, "oversize-frame");

    // A client that sends requests and never reads the answers is cut off, while others are
    // served meanwhile.
    client
        .put(b"wide", &vec![b'w'; 16 * 1024])
        .expect("a 16 KiB value");
    let mut hog = connect(addr);
    hog.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut get = Vec::new();
    let request = aurora::store::Request {
        session: aurora::store::SessionHeader::none(1),
        command: aurora::store::Command::Read(aurora::store::ReadRequest::Range(
            aurora::store::RangeRequest::latest(aurora::store::KeyRange::single(&b"wide"[..])),
        )),
    };
    aurora::store::codec::encode_request(&request, &mut get);
    let mut frame = Vec::new();
    let sent_requests = 4000u64;
    for c in 0..sent_requests {
        frame.clear();
        let r = ClientRequest {
            deadline_ms: 0,
            op: RequestOp::Store {
                consistency: aurora::server::protocol::Consistency::Linearizable,
                request: get.clone(),
            },
        };
        frame_request(LOCAL_CLUSTER_ID, c, &r, &mut frame).expect("frame");
        if hog.write_all(&frame).is_err() {
            break; // the node stopped reading from us or closed the connection
        }
    }
    still_serves(&cluster, "while-hogged");
    // Now read. 4000 answers of 16 KiB (64 MiB) cannot all have reached a client that did not
    // read (loopback socket buffers hold a few MiB) unless the node buffered them without bound;
    // a bounded node cut the connection, stopped reading (our writes timed out), or answered
    // Busy — any of these keeps the count of full answers below what was asked.
    let started = Instant::now();
    let (mut full_answers, mut refusals) = (0u64, 0u64);
    while let Ok(response) = read_response(&mut hog) {
        match response {
            ClientResponse::Store(_) => full_answers += 1,
            // Busy, or NotLeader/NoLeader if the flood delayed heartbeats into an election.
            ClientResponse::Error(_) => refusals += 1,
            other => panic!("unexpected answer to a read: {other:?}"),
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    println!(
        "non-reading client: {full_answers} of {sent_requests} reads answered in full, {refusals} refused"
    );
    assert!(
        full_answers < sent_requests,
        "a client that never read got all {full_answers} answers buffered for it"
    );
    still_serves(&cluster, "after-hog");
    assert!(cluster.is_running(leader), "the leader survived all of it");
}
