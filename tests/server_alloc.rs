//! The node's client path allocates nothing in steady state: reading request frames from sockets,
//! decoding the protocol envelope (a view into the batch), and framing an answer straight into the
//! connection's output buffer. A counting global allocator watches this thread while a client on
//! the same thread sends thousands of requests through a real loopback socket.
//!
//! Not covered (and allocating): decoding the store request for validation and applying it in the
//! store, whose keys and values are owned data (docs/BENCHMARKS.md, server section).

use std::io::{Read, Write};
use std::net::TcpStream;

use aurora::server::clients::ClientTable;
use aurora::server::protocol::{
    decode_request, frame_request, frame_response_into, ClientRequest, RequestOp, RequestOpView,
    ResponseRef,
};

mod counting_alloc;
use counting_alloc::allocations_in;

const CLUSTER: u64 = 0xC1;

/// One round: the client writes a request, the table reads and stages it, the "node" decodes the
/// envelope and answers into the connection, the client reads the answer back.
fn round(table: &mut ClientTable, client: &mut TcpStream, request: &[u8], answer: &mut [u8]) {
    client.write_all(request).expect("client write");
    let mut handled = 0;
    // Bounded: loopback delivers within a few polls.
    for _ in 0..100_000 {
        table.poll();
        let batch = table.take_batch();
        for incoming in &batch.incoming {
            let view = decode_request(batch.payload(incoming)).expect("valid request");
            let RequestOpView::CancelWatch { watch_id } = view.op else {
                panic!("unexpected op");
            };
            let sent = table.send(incoming.conn, |room| {
                frame_response_into(
                    room,
                    CLUSTER,
                    incoming.correlation_id,
                    ResponseRef::WatchCreated {
                        watch_id,
                        start_revision: 1,
                    },
                )
                .map_err(|e| e.need)
            });
            assert!(sent);
            handled += 1;
        }
        table.restore_batch(batch);
        if handled > 0 {
            break;
        }
    }
    assert_eq!(handled, 1);
    client.read_exact(answer).expect("client read");
}

#[test]
fn client_path_reads_decodes_and_answers_without_allocating() {
    let mut table = ClientTable::bind("127.0.0.1:0".parse().unwrap(), CLUSTER, 4, 1 << 16, 1 << 17)
        .expect("bind");
    let mut client = TcpStream::connect(table.local_addr()).expect("connect");
    client.set_nodelay(true).unwrap();
    let mut request = Vec::new();
    frame_request(
        CLUSTER,
        9,
        &ClientRequest {
            deadline_ms: 0,
            op: RequestOp::CancelWatch { watch_id: 77 },
        },
        &mut request,
    )
    .unwrap();
    let mut answer = vec![0u8; 56 + 2 + 16];
    // Warm-up: accept the connection and size every buffer once.
    for _ in 0..100 {
        round(&mut table, &mut client, &request, &mut answer);
    }
    let n = allocations_in(|| {
        for _ in 0..5_000 {
            round(&mut table, &mut client, &request, &mut answer);
        }
    });
    assert_eq!(n, 0, "the client path allocated {n} times in 5000 requests");
    assert_eq!(table.stats().accepted, 1);
}

#[test]
fn counting_allocator_sees_an_allocation() {
    let n = allocations_in(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(n, 1);
}
