//! tcp_uring on loopback: round trips between two shard threads, reconnection after a restart,
//! and the handshake keeping out a node without the cluster secret.

mod transport_support;

use aurora::transport::tcp_uring::{TcpUring, TcpUringConfig};
use aurora::transport::{DownReason, Event, Remote, SendErrorKind, Transport};
use aurora::wire::{FrameKind, HEADER_LEN};
use std::sync::mpsc;
use transport_support::*;

#[test]
fn frames_round_trip_between_two_shard_threads_in_order() {
    const ROUND_TRIPS: u32 = 2_000;
    let (addr_tx, addr_rx) = mpsc::channel();
    let echo = std::thread::spawn(move || {
        // The ring is single-issuer: it is created on the thread that polls it.
        let mut node = acceptor(2, &[1]);
        addr_tx.send(node.local_addr().unwrap()).unwrap();
        let mut events = Vec::with_capacity(64);
        let mut echoed = 0;
        while echoed < ROUND_TRIPS {
            node.poll(now_ns(), &mut events).unwrap();
            for event in events.drain(..) {
                if let Event::Received { from, buf } = event {
                    let reply = frame(&node, FrameKind::Pong, 2, 1, &buf.as_slice()[HEADER_LEN..]);
                    node.send(from, reply).unwrap();
                    echoed += 1;
                }
            }
        }
        // Let the last pong leave before the ring is torn down.
        for _ in 0..1000 {
            node.poll(now_ns(), &mut events).unwrap();
            events.clear();
        }
    });
    let addr = addr_rx.recv().unwrap();
    let mut node = dialer(1, &[(2, addr)]);
    let mut logs = Vec::new();
    assert!(
        pump(&mut [&mut node], &mut logs, 5_000, |l| is_up(&l[0], 2)),
        "handshake did not finish: {logs:?}"
    );
    let mut events = Vec::with_capacity(64);
    for i in 0..ROUND_TRIPS {
        let payload = i.to_le_bytes().repeat(1 + (i as usize % 64));
        let ping = frame(&node, FrameKind::Ping, 1, 2, &payload);
        node.send(Remote::Peer(2), ping).unwrap();
        let mut answered = false;
        let deadline = now_ns() + 5_000_000_000;
        while !answered && now_ns() < deadline {
            node.poll(now_ns(), &mut events).unwrap();
            for event in events.drain(..) {
                if let Event::Received { from, buf } = event {
                    assert_eq!(from, Remote::Peer(2));
                    assert_eq!(
                        &buf.as_slice()[HEADER_LEN..],
                        &payload[..],
                        "round trip {i} came back changed or out of order"
                    );
                    answered = true;
                }
            }
        }
        assert!(answered, "round trip {i} timed out");
    }
    echo.join().unwrap();
    assert_eq!(node.stats().frames_received, u64::from(ROUND_TRIPS));
    assert_eq!(
        node.stats()
            .rejected_by_reason()
            .map(|(_, n)| n)
            .sum::<u64>(),
        0
    );
}

#[test]
fn dialer_reconnects_after_the_peer_restarts() {
    let mut server = acceptor(2, &[1]);
    let addr = server.local_addr().unwrap();
    let mut client = dialer(1, &[(2, addr)]);
    let mut logs = Vec::new();
    assert!(pump(
        &mut [&mut client, &mut server],
        &mut logs,
        5_000,
        |l| is_up(&l[0], 2) && is_up(&l[1], 1)
    ));

    drop(server); // crash
    assert!(
        pump(&mut [&mut client], &mut logs, 5_000, |l| !is_up(&l[0], 2)),
        "no PeerDown: {logs:?}"
    );
    assert!(matches!(
        logs[0].last(),
        Some(Seen::Down(
            Remote::Peer(2),
            DownReason::Closed | DownReason::Io { .. }
        ))
    ));
    let refused = client
        .send(
            Remote::Peer(2),
            frame(&client, FrameKind::Ping, 1, 2, b"while down"),
        )
        .unwrap_err();
    assert_eq!(refused.kind, SendErrorKind::NotConnected);

    let mut cfg = config(2);
    cfg.listen_addr = Some(addr); // restart on the same port
    cfg.accept_from = vec![1];
    let mut server = TcpUring::new(cfg).unwrap();
    let mut logs = Vec::new();
    assert!(
        pump(
            &mut [&mut client, &mut server],
            &mut logs,
            5_000,
            |l| is_up(&l[0], 2) && is_up(&l[1], 1)
        ),
        "no reconnection: {logs:?}"
    );
    client
        .send(
            Remote::Peer(2),
            frame(&client, FrameKind::Ping, 1, 2, b"after restart"),
        )
        .unwrap();
    assert!(pump(
        &mut [&mut client, &mut server],
        &mut logs,
        5_000,
        |l| received(&l[1], 1, b"after restart")
    ));
    assert!(client.stats().connect_attempts >= 2);
}

#[test]
fn a_node_without_the_secret_never_comes_up_nor_delivers_a_frame() {
    let mut server = acceptor(2, &[1]);
    let mut cfg = TcpUringConfig::new(1, CLUSTER, wrong_secret());
    cfg.dial = vec![(2, server.local_addr().unwrap())];
    cfg.pool_slabs = 1024;
    cfg.recv_buffers = 64;
    cfg.backoff_min_ms = 10;
    cfg.backoff_max_ms = 20;
    let mut intruder = TcpUring::new(cfg).unwrap();
    let mut logs = Vec::new();
    // Several attempts, each refused at the handshake: the intruder rejects the server's MAC.
    pump(&mut [&mut intruder, &mut server], &mut logs, 1_000, |_| {
        false
    });
    assert!(
        intruder.stats().connect_attempts >= 2,
        "{:?}",
        intruder.stats()
    );
    assert!(
        intruder
            .stats()
            .rejected(aurora::transport::RejectReason::HandshakeBadMac)
            >= 1
    );
    assert!(
        logs.iter()
            .flatten()
            .all(|s| !matches!(s, Seen::Up(_) | Seen::Received(..))),
        "{logs:?}"
    );
    assert_eq!(server.stats().frames_received, 0);
}

#[test]
fn a_full_send_queue_is_backpressure_not_loss() {
    let mut server = acceptor(2, &[1]);
    let mut cfg = config(1);
    cfg.dial = vec![(2, server.local_addr().unwrap())];
    cfg.send_queue_frames = 4;
    let mut client = TcpUring::new(cfg).unwrap();
    let mut logs = Vec::new();
    assert!(pump(
        &mut [&mut client, &mut server],
        &mut logs,
        5_000,
        |l| is_up(&l[0], 2) && is_up(&l[1], 1)
    ));
    // Without polling nothing completes: one in flight plus four queued, then the queue is full.
    let mut accepted = 0;
    let err = loop {
        match client.send(
            Remote::Peer(2),
            frame(&client, FrameKind::Ping, 1, 2, &[accepted]),
        ) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "the queue never filled");
    };
    assert_eq!(err.kind, SendErrorKind::QueueFull { capacity: 4 });
    assert_eq!(accepted, 5);
    assert!(pump(
        &mut [&mut client, &mut server],
        &mut logs,
        5_000,
        |l| (0..5).all(|i| received(&l[1], 1, &[i]))
    ));
    // After the completions there is room again.
    client
        .send(
            Remote::Peer(2),
            frame(&client, FrameKind::Ping, 1, 2, b"again"),
        )
        .unwrap();
    assert!(pump(
        &mut [&mut client, &mut server],
        &mut logs,
        5_000,
        |l| received(&l[1], 1, b"again")
    ));
}
