//! Bad input on tcp_uring: each case closes only the offending connection, counts the right
//! reason, and a healthy peer on the same transport keeps exchanging frames afterwards.

mod transport_support;

use aurora::transport::handshake::{HELLO_LEN, NONCE_LEN};
use aurora::transport::tcp_uring::TcpUring;
use aurora::transport::{RejectReason, Remote, Transport};
use aurora::wire::{encode_payload, FrameKind, HeaderFields, HEADER_LEN};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use transport_support::*;

const SERVER: u64 = 10;
const HEALTHY: u64 = 1;
const INTRUDER: u64 = 2;

/// A server accepting nodes 1–3 and a healthy node 1 connected to it.
fn world() -> (TcpUring, TcpUring, Vec<Vec<Seen>>) {
    let mut server = acceptor(SERVER, &[1, 2, 3]);
    let mut healthy = dialer(HEALTHY, &[(SERVER, server.local_addr().unwrap())]);
    let mut logs = Vec::new();
    assert!(pump(
        &mut [&mut server, &mut healthy],
        &mut logs,
        5_000,
        |l| is_up(&l[0], HEALTHY) && is_up(&l[1], SERVER)
    ));
    (server, healthy, logs)
}

/// Runs `misbehave` against the server (called every iteration with the milliseconds since the
/// raw connection opened) until the server counts `reason`; then checks the raw connection was
/// closed and the healthy peer still exchanges frames both ways.
fn closes_only_the_offender(reason: RejectReason, mut misbehave: impl FnMut(&mut TcpStream, u64)) {
    let (mut server, mut healthy, mut logs) = world();
    let mut raw = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    raw.set_nonblocking(true).unwrap();
    let opened = Instant::now();
    let mut closed = false;
    while opened.elapsed() < Duration::from_secs(5)
        && !(closed && server.stats().rejected(reason) > 0)
    {
        misbehave(&mut raw, opened.elapsed().as_millis() as u64);
        pump(&mut [&mut server, &mut healthy], &mut logs, 1, |_| false);
        // Peek, so a misbehaving peer that reads (the handshake one) still gets the bytes.
        let mut sink = [0u8; 1];
        match raw.peek(&mut sink) {
            Ok(0) => closed = true,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => closed = true,
            _ => {}
        }
    }
    assert_eq!(
        server.stats().rejected(reason),
        1,
        "{reason} not counted: {:?}",
        server.stats()
    );
    let others: u64 = server
        .stats()
        .rejected_by_reason()
        .filter(|(r, _)| *r != reason)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        others,
        0,
        "another reason was counted: {:?}",
        server.stats()
    );
    assert!(closed, "the offending connection was not closed");

    healthy
        .send(
            Remote::Peer(SERVER),
            frame(&healthy, consensus_kind(), HEALTHY, SERVER, b"still here"),
        )
        .unwrap();
    assert!(pump(
        &mut [&mut server, &mut healthy],
        &mut logs,
        5_000,
        |l| received(&l[0], HEALTHY, b"still here")
    ));
    server
        .send(
            Remote::Peer(HEALTHY),
            frame(&server, consensus_kind(), SERVER, HEALTHY, b"and back"),
        )
        .unwrap();
    assert!(pump(
        &mut [&mut server, &mut healthy],
        &mut logs,
        5_000,
        |l| received(&l[1], SERVER, b"and back")
    ));
    assert!(
        is_up(&logs[0], HEALTHY) && is_up(&logs[1], SERVER),
        "the healthy peer went down: {logs:?}"
    );
    assert!(
        logs[0]
            .iter()
            .all(|s| !matches!(s, Seen::Received(Remote::Peer(p), _) if *p != HEALTHY)),
        "a frame from the offender was delivered: {:?}",
        logs[0]
    );
}

/// Sends `bytes` once, on the first call.
fn once(bytes: Vec<u8>) -> impl FnMut(&mut TcpStream, u64) {
    let mut sent = false;
    move |raw, _| {
        if !sent {
            raw.write_all(&bytes).unwrap();
            sent = true;
        }
    }
}

fn hello(from: u64) -> Vec<u8> {
    let mut body = [0u8; HELLO_LEN];
    body[..8].copy_from_slice(&from.to_le_bytes());
    body[8..].copy_from_slice(&[0x5A; NONCE_LEN]);
    raw_frame(FrameKind::Hello, from, SERVER, &body)
}

#[test]
fn garbage_bytes_close_the_connection() {
    let mut x: u32 = 12345;
    let garbage: Vec<u8> = (0..1000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    closes_only_the_offender(RejectReason::BadMagic, once(garbage));
}

#[test]
fn wrong_magic_closes_the_connection() {
    let mut bytes = hello(INTRUDER);
    bytes[..4].copy_from_slice(b"HTTP");
    closes_only_the_offender(RejectReason::BadMagic, once(bytes));
}

#[test]
fn unsupported_version_closes_the_connection() {
    let mut bytes = hello(INTRUDER);
    bytes[4] = 99;
    closes_only_the_offender(RejectReason::UnsupportedVersion, once(bytes));
}

#[test]
fn wrong_cluster_id_closes_the_connection() {
    let mut bytes = vec![0u8; HEADER_LEN + HELLO_LEN];
    let fields = HeaderFields {
        cluster_id: CLUSTER + 1,
        ..fields(FrameKind::Hello, INTRUDER, SERVER)
    };
    encode_payload(&mut bytes, &fields, &hello(INTRUDER)[HEADER_LEN..]).unwrap();
    closes_only_the_offender(RejectReason::WrongCluster, once(bytes));
}

#[test]
fn oversize_length_field_closes_the_connection_before_the_payload() {
    let mut bytes = hello(INTRUDER);
    bytes[40..44].copy_from_slice(&(1u32 << 20).to_le_bytes());
    bytes.truncate(HEADER_LEN); // the payload is never needed to reject it
    closes_only_the_offender(RejectReason::Oversize, once(bytes));
}

#[test]
fn corrupted_payload_fails_the_checksum() {
    let mut bytes = hello(INTRUDER);
    *bytes.last_mut().unwrap() ^= 0xFF;
    closes_only_the_offender(RejectReason::BadChecksum, once(bytes));
}

#[test]
fn truncated_frame_then_eof_closes_the_connection() {
    let bytes = hello(INTRUDER);
    let mut sent = false;
    closes_only_the_offender(RejectReason::Truncated, move |raw, _| {
        if !sent {
            raw.write_all(&bytes[..HEADER_LEN + 10]).unwrap();
            raw.shutdown(std::net::Shutdown::Write).unwrap();
            sent = true;
        }
    });
}

#[test]
fn peer_that_connects_and_sends_nothing_is_closed_after_the_handshake_timeout() {
    closes_only_the_offender(RejectReason::HandshakeTimeout, |_, _| {});
}

#[test]
fn peer_that_dribbles_one_byte_at_a_time_is_closed_after_the_frame_deadline() {
    let bytes = hello(INTRUDER);
    let mut next = 0;
    closes_only_the_offender(RejectReason::FrameTimeout, move |raw, elapsed_ms| {
        // One byte every 20 ms: the 96-byte Hello would take ~2 s, the frame deadline is 300 ms.
        if next < bytes.len() && elapsed_ms >= 20 * next as u64 {
            let _ = raw.write(&bytes[next..next + 1]);
            next += 1;
        }
    });
}

#[test]
fn consensus_frame_before_the_handshake_is_not_delivered() {
    let bytes = raw_frame(consensus_kind(), INTRUDER, SERVER, b"vote for me");
    closes_only_the_offender(RejectReason::HandshakeProtocol, once(bytes));
}

#[test]
fn hello_from_an_unknown_node_is_rejected() {
    closes_only_the_offender(RejectReason::UnknownPeer, once(hello(99)));
}

#[test]
fn handshake_with_a_wrong_secret_is_rejected_and_delivers_nothing() {
    // The intruder plays the protocol but cannot compute the MAC: it answers the challenge with a
    // guess, then tries to slip a consensus frame in behind it.
    let mut step = 0;
    let mut inbox = Vec::new();
    closes_only_the_offender(RejectReason::HandshakeBadMac, move |raw, _| match step {
        0 => {
            raw.write_all(&hello(INTRUDER)).unwrap();
            step = 1;
        }
        1 => {
            let mut chunk = [0u8; 256];
            if let Ok(n) = raw.read(&mut chunk) {
                inbox.extend_from_slice(&chunk[..n]);
            }
            if inbox.len() >= HEADER_LEN + aurora::transport::handshake::CHALLENGE_LEN {
                assert_eq!(inbox[5], FrameKind::Challenge.to_byte());
                let guess = [0x42u8; aurora::transport::handshake::RESPONSE_LEN];
                let mut bytes = raw_frame(FrameKind::Response, INTRUDER, SERVER, &guess);
                bytes.extend(raw_frame(
                    consensus_kind(),
                    INTRUDER,
                    SERVER,
                    b"commit this",
                ));
                raw.write_all(&bytes).unwrap();
                step = 2;
            }
        }
        _ => {}
    });
}

#[test]
fn connections_beyond_the_table_are_refused_while_established_peers_keep_working() {
    let mut cfg = config(SERVER);
    cfg.listen_addr = Some("127.0.0.1:0".parse().unwrap());
    cfg.accept_from = vec![HEALTHY];
    cfg.max_connections = 2; // the healthy peer and one spare
    let mut server = TcpUring::new(cfg).unwrap();
    let addr = server.local_addr().unwrap();
    let mut healthy = dialer(HEALTHY, &[(SERVER, addr)]);
    let mut logs = Vec::new();
    assert!(pump(
        &mut [&mut server, &mut healthy],
        &mut logs,
        5_000,
        |l| is_up(&l[0], HEALTHY) && is_up(&l[1], SERVER)
    ));

    let _spare = TcpStream::connect(addr).unwrap(); // takes the last slot, handshaking
    pump(&mut [&mut server, &mut healthy], &mut logs, 100, |_| false);
    let extra = TcpStream::connect(addr).unwrap();
    extra.set_nonblocking(true).unwrap();
    let mut refused = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !refused && Instant::now() < deadline {
        pump(&mut [&mut server, &mut healthy], &mut logs, 1, |_| false);
        let mut byte = [0u8; 1];
        refused = matches!(extra.peek(&mut byte), Ok(0))
            || matches!(extra.peek(&mut byte), Err(e) if e.kind() == ErrorKind::ConnectionReset);
    }
    assert!(refused, "the connection beyond the table was not closed");
    assert_eq!(server.stats().rejected(RejectReason::TooManyConnections), 1);

    healthy
        .send(
            Remote::Peer(SERVER),
            frame(&healthy, consensus_kind(), HEALTHY, SERVER, b"still served"),
        )
        .unwrap();
    assert!(pump(
        &mut [&mut server, &mut healthy],
        &mut logs,
        5_000,
        |l| received(&l[0], HEALTHY, b"still served")
    ));
}
