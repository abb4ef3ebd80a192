//! A retried request applies once: the same (client id, sequence number) sent again — to the same
//! leader, and to a new leader after the old one was killed — gets the first answer back and does
//! not change the state again. Speaks the protocol directly so the retry is exactly the same bytes.

mod local_cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aurora::cli::up::{DurabilityArg, LOCAL_CLUSTER_ID};
use aurora::server::protocol::{
    decode_response, frame_request, ClientRequest, ClientResponse, Consistency, RequestOp,
};
use aurora::store::codec;
use aurora::store::{Command, ReadRequest, Reply, Request, Response, SessionHeader};
use aurora::wire::{FrameHeader, HEADER_LEN};
use local_cluster::{LocalCluster, LEADER_WAIT};

/// Sends one store request to `addr` and returns the store's response.
fn call(addr: SocketAddr, request: &Request) -> Response {
    let mut bytes = Vec::new();
    codec::encode_request(request, &mut bytes);
    let mut frame = Vec::new();
    let client_request = ClientRequest {
        deadline_ms: 5000,
        op: RequestOp::Store {
            consistency: Consistency::Linearizable,
            request: bytes,
        },
    };
    frame_request(LOCAL_CLUSTER_ID, 1, &client_request, &mut frame).expect("frame");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(&frame).expect("send");
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).expect("response header");
    let len = FrameHeader::read_from(&header).expect("header").length as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).expect("response payload");
    match decode_response(&payload).expect("valid response") {
        ClientResponse::Store(bytes) => codec::decode_response(&bytes).expect("store response"),
        other => panic!("expected a store response, got {other:?}"),
    }
}

#[test]
fn a_retried_write_applies_once_even_on_a_new_leader() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let addr = cluster.client_addr(leader);
    let registered = call(
        addr,
        &Request {
            session: SessionHeader::none(1),
            command: Command::RegisterSession,
        },
    );
    let Ok(Reply::SessionRegistered { client_id }) = registered.result else {
        panic!("register: {registered:?}");
    };
    let add = Request {
        session: SessionHeader {
            client_id,
            seq: 1,
            acked_seq: 0,
        },
        command: Command::FetchAdd {
            name: b"once".to_vec(),
            delta: 5,
        },
    };
    let read = Request {
        session: SessionHeader::none(2),
        command: Command::Read(ReadRequest::Counter {
            name: b"once".to_vec(),
        }),
    };
    let first = call(addr, &add);
    assert_eq!(first.result, Ok(Reply::FetchAdd { previous: 0 }));
    let retry = call(addr, &add);
    assert_eq!(
        retry, first,
        "a retry gets the first answer, revision included"
    );
    assert_eq!(call(addr, &read).result, Ok(Reply::Counter { value: 5 }));

    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader_other_than(Some(leader), LEADER_WAIT);
    let new_addr = cluster.client_addr(new_leader);
    let retry = call(new_addr, &add);
    assert_eq!(
        retry, first,
        "the new leader answers the retry from the replicated session"
    );
    assert_eq!(
        call(new_addr, &read).result,
        Ok(Reply::Counter { value: 5 })
    );
}

#[test]
fn client_retries_across_a_leader_kill_apply_every_increment_once() {
    let mut cluster = LocalCluster::start(3, DurabilityArg::Memory);
    let leader = cluster.wait_for_leader(LEADER_WAIT);
    let mut client = cluster.client();
    client
        .fetch_add(b"increments", 0)
        .expect("session registered");
    // SIGKILL the leader from another thread while increments are in flight.
    let pid = libc::pid_t::try_from(cluster.pid(leader).expect("running")).expect("pid");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    for i in 0..400i64 {
        let previous = client
            .fetch_add(b"increments", 1)
            .unwrap_or_else(|e| cluster.fail(&format!("increment {i}: {e}")));
        assert_eq!(
            previous, i,
            "increment {i} saw every earlier one exactly once"
        );
    }
    killer.join().expect("killer");
    cluster.kill(leader); // reap
    assert_eq!(client.counter(b"increments").expect("read"), 400);
}
