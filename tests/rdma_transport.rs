//! The RDMA transport between real queue pairs on the two SoftRoCE devices of the test VM
//! (hack/rdma-test.sh). Node ids: the smaller dials.
#![cfg(feature = "rdma")]

mod rdma_support;

use aurora::transport::handshake::ClusterSecret;
use aurora::transport::rdma::RdmaTransport;
use aurora::transport::{DownReason, Event, RejectReason, Remote, SendErrorKind, Transport};
use rdma_support::*;

#[test]
fn frames_flow_both_ways_in_order_and_every_buffer_returns() {
    let mut b = RdmaTransport::new(node(2, 1, &[], &[1])).unwrap();
    let mut a = RdmaTransport::new(node(1, 0, &[(2, addr_of(&b))], &[])).unwrap();
    let free_a = a.buffers().free_count();
    let free_b = b.buffers().free_count();
    until_up(&mut [&mut a, &mut b], 0, 2);
    until_up(&mut [&mut a, &mut b], 1, 1);
    assert!(
        a.buffers().free_count() < free_a,
        "receives are posted from the pool"
    );

    const N: u64 = 300;
    let (mut sent, mut echoed, mut completed_a) = (0u64, Vec::new(), 0u64);
    let deadline = Deadline::new("300 pings echoed");
    let mut to_echo = std::collections::VecDeque::new();
    let mut events = Vec::with_capacity(64);
    while !(echoed.len() as u64 == N && completed_a == N) {
        deadline.check();
        // A sends while its queue has room (QueueFull is backpressure, retried later).
        while sent < N {
            let buf = ping(&a, 1, 2, sent);
            match a.send(Remote::Peer(2), buf) {
                Ok(()) => sent += 1,
                Err(e) => {
                    assert!(matches!(e.kind, SendErrorKind::QueueFull { .. }), "{e}");
                    break;
                }
            }
        }
        // B echoes every ping back with the same sequence number (in order, queueing locally
        // while its send queue is full).
        b.poll(now_ns(), &mut events).unwrap();
        for e in events.drain(..) {
            if let Event::Received { from, buf } = e {
                assert_eq!(from, Remote::Peer(1));
                to_echo.push_back(seq_of(&buf));
            }
        }
        while let Some(&seq) = to_echo.front() {
            match b.send(Remote::Peer(1), ping(&b, 2, 1, seq)) {
                Ok(()) => drop(to_echo.pop_front()),
                Err(e) if matches!(e.kind, SendErrorKind::QueueFull { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        a.poll(now_ns(), &mut events).unwrap();
        for e in events.drain(..) {
            match e {
                Event::Received { from, buf } => {
                    assert_eq!(from, Remote::Peer(2));
                    echoed.push(seq_of(&buf));
                }
                Event::SendComplete { to, len_bytes } => {
                    assert_eq!(to, Remote::Peer(2));
                    assert!(len_bytes > 56);
                    completed_a += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(echoed, (0..N).collect::<Vec<_>>(), "in order, exactly once");
    assert_eq!(a.stats().frames_received, N);
    assert_eq!(b.stats().frames_received, N);
    // Let B's last send completions arrive, then every slab not posted as a receive is free.
    pump_until(&mut [&mut a, &mut b], "B's sends complete", |ts| {
        ts[1].stats().frames_sent == N
    });
    assert_eq!(
        a.buffers().free_count() + 16,
        free_a,
        "only the 16 posted receives are out"
    );
    assert_eq!(b.buffers().free_count() + 16, free_b);
}

#[test]
fn a_node_without_the_secret_or_of_another_cluster_is_rejected_while_the_good_peer_keeps_working() {
    let mut b = RdmaTransport::new(node(4, 1, &[], &[1, 2, 3])).unwrap();
    let target = addr_of(&b);
    let mut good = RdmaTransport::new(node(1, 0, &[(4, target)], &[])).unwrap();
    let mut wrong_secret = node(2, 0, &[(4, target)], &[]);
    wrong_secret.secret = ClusterSecret::new(&[0x11; 32]).unwrap();
    let mut wrong_secret = RdmaTransport::new(wrong_secret).unwrap();
    let mut foreign = node(3, 0, &[(4, target)], &[]);
    foreign.cluster_id = 0xBAD;
    let mut foreign = RdmaTransport::new(foreign).unwrap();

    pump_until(
        &mut [&mut b, &mut good, &mut wrong_secret, &mut foreign],
        "both bad nodes rejected by B",
        |ts| {
            assert!(!ts[0].is_up(2) && !ts[0].is_up(3));
            // The acceptor's Challenge fails the wrong-secret node's check, which hangs up; the
            // foreign cluster's Hello fails B's frame check.
            ts[2].stats().rejected(RejectReason::HandshakeBadMac) > 0
                && ts[0].stats().rejected(RejectReason::WrongCluster) > 0
                && ts[0].is_up(1)
        },
    );
    assert!(!b.is_up(2) && !b.is_up(3));
    // The good peer is served all along.
    let buf = ping(&good, 1, 4, 77);
    good.send(Remote::Peer(4), buf).unwrap();
    let mut got = None;
    pump(
        &mut [&mut b, &mut good, &mut wrong_secret, &mut foreign],
        "the good peer's frame",
        |i, e| {
            if let (0, Event::Received { from, buf }) = (i, e) {
                got = Some((from, seq_of(&buf)));
            }
            got.is_some()
        },
    );
    assert_eq!(got, Some((Remote::Peer(1), 77)));
}

#[test]
fn a_peer_that_goes_away_is_reported_down_and_redialed_when_it_returns() {
    let b = RdmaTransport::new(node(2, 1, &[], &[1])).unwrap();
    let target = addr_of(&b);
    let mut b = Some(b);
    let mut a = RdmaTransport::new(node(1, 0, &[(2, target)], &[])).unwrap();
    until_up(&mut [&mut a, b.as_mut().unwrap()], 0, 2);

    drop(b.take()); // its QP and rdma_cm id are destroyed: a disconnect reaches A
    pump(&mut [&mut a], "PeerDown after the peer vanished", |_, e| {
        is_down(&e, 2)
    });
    assert!(!a.is_up(2));

    let mut again = node(2, 1, &[], &[1]);
    again.listen_port = Some(target.port());
    let mut b = RdmaTransport::new(again).unwrap();
    until_up(&mut [&mut a, &mut b], 0, 2);
    assert!(a.stats().connect_attempts >= 2, "A redialed");
    assert_eq!(a.stats().peers_up, 2);
}

#[test]
fn a_partitioned_peer_goes_down_with_its_queue_pair_in_error_and_comes_back_when_healed() {
    let netdev = guest("AURORA_RDMA_NETDEV0");
    let mut b = RdmaTransport::new(node(2, 1, &[], &[1])).unwrap();
    let mut a = RdmaTransport::new(node(1, 0, &[(2, addr_of(&b))], &[])).unwrap();
    until_up(&mut [&mut a, &mut b], 0, 2);
    until_up(&mut [&mut a, &mut b], 1, 1);

    let partition = Partition::new(&netdev);
    let buf = ping(&a, 1, 2, 1);
    a.send(Remote::Peer(2), buf).unwrap();
    let mut reason = None;
    pump(
        &mut [&mut a, &mut b],
        "A's send fails across the partition",
        |i, e| {
            if let (0, Event::PeerDown { reason: r, .. }) = (i, e) {
                reason = Some(r);
            }
            reason.is_some()
        },
    );
    partition.heal();
    assert!(
        matches!(reason, Some(DownReason::Io { errno }) if errno == libc::ETIMEDOUT),
        "retries exhausted: {reason:?}"
    );
    until_up(&mut [&mut a, &mut b], 0, 2);
    // After healing, frames flow again (B may have replaced its stale connection).
    let buf = ping(&a, 1, 2, 9);
    a.send(Remote::Peer(2), buf).unwrap();
    pump(
        &mut [&mut a, &mut b],
        "a frame after healing",
        |i, e| matches!((i, e), (1, Event::Received { buf, .. }) if seq_of(&buf) == 9),
    );
}

/// `park` sleeps in the kernel, and wakes for a completion or for the watched doorbell fd, not for
/// its timeout (which is a minute here: returning near it would mean the wakeup was lost).
#[test]
fn park_wakes_for_an_arriving_frame_and_for_the_doorbell() {
    const PARK_NS: u64 = 60_000_000_000;
    let mut b = RdmaTransport::new(node(2, 1, &[], &[1])).unwrap();
    let mut a = RdmaTransport::new(node(1, 0, &[(2, addr_of(&b))], &[])).unwrap();
    until_up(&mut [&mut a, &mut b], 0, 2);
    until_up(&mut [&mut a, &mut b], 1, 1);
    let mut events = Vec::with_capacity(16);
    b.poll(now_ns(), &mut events).unwrap();
    events.clear();

    a.send(Remote::Peer(2), ping(&a, 1, 2, 5)).unwrap();
    let started = std::time::Instant::now();
    b.park(PARK_NS).unwrap();
    assert!(
        started.elapsed().as_nanos() < u128::from(PARK_NS / 2),
        "park missed the completion"
    );
    pump(
        &mut [&mut a, &mut b],
        "the frame after park",
        |i, e| matches!((i, e), (1, Event::Received { buf, .. }) if seq_of(&buf) == 5),
    );

    // SAFETY: plain eventfd syscalls on a descriptor this test owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
    assert!(fd >= 0);
    b.watch_wakeup_fd(fd);
    assert_eq!(unsafe { libc::eventfd_write(fd, 1) }, 0);
    let started = std::time::Instant::now();
    b.park(PARK_NS).unwrap();
    assert!(
        started.elapsed().as_nanos() < u128::from(PARK_NS / 2),
        "park missed the doorbell"
    );
    unsafe { libc::close(fd) };
}
