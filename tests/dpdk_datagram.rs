//! The datagram transport (framing + reliability + peer table) over in-process links: the same
//! code the `dpdk` transport runs over an ethdev, with loss, duplication and garbage on demand.

mod dpdk_support;

use aurora::transport::dpdk::datagram::{DatagramConfig, DatagramTransport};
use aurora::transport::dpdk::packet::{self, Drop};
use aurora::transport::dpdk::port::LinkPort;
use aurora::transport::dpdk::session::SegmentDrop;
use aurora::transport::{DownReason, Event, Remote, SendErrorKind, Transport};
use dpdk_support::*;

type Node = DatagramTransport<LinkPort>;

const MTU_FRAME: usize = 1514;

fn pair_with(cfg_a: DatagramConfig, cfg_b: DatagramConfig) -> (Node, Node, LinkPort, LinkPort) {
    let (pa, pb) = LinkPort::pair(MTU_FRAME, 1024);
    // Keep handles on each end's fault knobs: clones share the link.
    let (ka, kb) = (pa.knobs(), pb.knobs());
    let a = DatagramTransport::new(vec![pa], cfg_a).unwrap();
    let b = DatagramTransport::new(vec![pb], cfg_b).unwrap();
    (a, b, ka, kb)
}

fn pair() -> (Node, Node, LinkPort, LinkPort) {
    pair_with(config(1, &[2]), config(2, &[1]))
}

/// Polls both nodes `rounds` times, stepping the clock 10 µs per round; returns what each saw.
fn pump(clock: &mut Clock, a: &mut Node, b: &mut Node, rounds: usize) -> (Vec<Seen>, Vec<Seen>) {
    let (mut ea, mut eb) = (Vec::with_capacity(256), Vec::with_capacity(256));
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let now = clock.step(10_000);
        a.poll(now, &mut ea).unwrap();
        sa.extend(seen(&mut ea));
        b.poll(now, &mut eb).unwrap();
        sb.extend(seen(&mut eb));
    }
    (sa, sb)
}

fn connect(clock: &mut Clock, a: &mut Node, b: &mut Node) {
    let (sa, sb) = pump(clock, a, b, 5);
    assert_eq!(sa, [Seen::Up(Remote::Peer(2))]);
    assert_eq!(sb, [Seen::Up(Remote::Peer(1))]);
}

fn received(seen: &[Seen]) -> Vec<u64> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Received(_, corr, _) => Some(*corr),
            _ => None,
        })
        .collect()
}

#[test]
fn nodes_connect_and_frames_arrive_in_order_then_buffers_come_back() {
    let mut clock = Clock(0);
    let (mut a, mut b, _, _) = pair();
    connect(&mut clock, &mut a, &mut b);
    for i in 0..20 {
        let f = frame(&a, 1, 2, i, format!("frame {i}").as_bytes());
        a.send(Remote::Peer(2), f).unwrap();
    }
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 5);
    assert_eq!(received(&sb), (0..20).collect::<Vec<_>>());
    assert_eq!(
        sb[3],
        Seen::Received(Remote::Peer(1), 3, b"frame 3".to_vec())
    );
    assert_eq!(
        sa.iter()
            .filter(|s| **s == Seen::Sent(Remote::Peer(2)))
            .count(),
        20
    );
    assert_eq!(a.buffers().free_count(), a.buffers().slab_count());
    assert_eq!(b.buffers().free_count(), b.buffers().slab_count());
    assert_eq!(a.retransmitted_frames(), 0);
}

#[test]
fn sends_before_the_session_is_up_or_past_the_window_hand_the_buffer_back() {
    let mut clock = Clock(0);
    let (mut a, mut b, _, _) = pair();
    let f = frame(&a, 1, 2, 0, b"early");
    let err = a.send(Remote::Peer(2), f).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::NotConnected);
    drop(err);
    connect(&mut clock, &mut a, &mut b);
    for i in 0..SESSION.window_frames as u64 {
        a.send(Remote::Peer(2), frame(&a, 1, 2, i, b"x")).unwrap();
    }
    let err = a
        .send(Remote::Peer(2), frame(&a, 1, 2, 99, b"x"))
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::QueueFull { capacity: 32 });
    let err = a.send(Remote::Peer(7), err.buf).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::NotConnected, "not a peer");
    let mut bad = err.buf;
    bad.set_len(10);
    let err = a.send(Remote::Peer(2), bad).unwrap_err();
    assert!(matches!(err.kind, SendErrorKind::MalformedFrame { .. }));
}

#[test]
fn lossy_link_and_the_test_drop_knob_still_deliver_everything_once_in_order() {
    let mut cfg_a = config(1, &[2]);
    cfg_a.test_drop_one_in = 7;
    let mut clock = Clock(0);
    let (mut a, mut b, _ka, kb) = pair_with(cfg_a, config(2, &[1]));
    connect(&mut clock, &mut a, &mut b);
    kb.set_loss_one_in(5); // acks from b are lost too
    let mut got = Vec::new();
    let mut next = 0u64;
    for _ in 0..20_000 {
        while next < 500 {
            match a.send(Remote::Peer(2), frame(&a, 1, 2, next, b"payload")) {
                Ok(()) => next += 1,
                Err(e) if matches!(e.kind, SendErrorKind::QueueFull { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let (sa, sb) = pump(&mut clock, &mut a, &mut b, 1);
        assert!(!sa.iter().any(|s| matches!(s, Seen::Down(..))), "{sa:?}");
        got.extend(received(&sb));
        if got.len() == 500 && a.buffers().free_count() == a.buffers().slab_count() {
            break;
        }
    }
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    assert!(a.retransmitted_frames() > 0);
    assert!(a.datagram_stats().tx_test_dropped > 0);
    let drops = b.datagram_stats();
    assert!(drops.segment_drops(SegmentDrop::OutOfOrder) > 0);
    assert_eq!(
        a.buffers().free_count(),
        a.buffers().slab_count(),
        "every buffer came back"
    );
}

#[test]
fn duplicated_frames_are_delivered_once() {
    let mut clock = Clock(0);
    let (mut a, mut b, ka, _) = pair();
    connect(&mut clock, &mut a, &mut b);
    ka.set_duplicate(true);
    for i in 0..10 {
        a.send(Remote::Peer(2), frame(&a, 1, 2, i, b"d")).unwrap();
    }
    let (_, sb) = pump(&mut clock, &mut a, &mut b, 5);
    assert_eq!(received(&sb), (0..10).collect::<Vec<_>>());
    assert_eq!(b.datagram_stats().segment_drops(SegmentDrop::Duplicate), 10);
}

/// A valid Ethernet/IPv4/UDP frame from `src` to node 2 with `body`, for mangling.
fn raw(src: u64, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; packet::frame_len(body.len())];
    f[packet::HEADERS_LEN..packet::HEADERS_LEN + body.len()].copy_from_slice(body);
    packet::write_headers(&mut f, &endpoint(src), &endpoint(2), body.len());
    f
}

#[test]
fn bad_input_is_dropped_and_counted_while_the_session_keeps_serving() {
    let mut clock = Clock(0);
    let (mut a, mut b, ka, _) = pair();
    connect(&mut clock, &mut a, &mut b);
    let good = raw(1, &[0u8; 40]);
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut ipsum = good.clone();
    ipsum[14 + 8] ^= 0xFF;
    let mut udpsum = good.clone();
    udpsum[packet::HEADERS_LEN + 3] ^= 1;
    let truncated = good[..30].to_vec();
    let unknown = raw(9, &[0u8; 40]);
    let mut spoofed_mac = good.clone();
    spoofed_mac[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    let garbage_segment = raw(1, &[0xEE; 40]);
    let oversize = vec![0x45u8; 9000];
    for f in [
        arp,
        ipsum,
        udpsum,
        truncated,
        unknown,
        spoofed_mac,
        garbage_segment,
        oversize,
    ] {
        ka.inject(f);
    }
    for i in 0..3 {
        a.send(Remote::Peer(2), frame(&a, 1, 2, i, b"still fine"))
            .unwrap();
    }
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 5);
    assert_eq!(received(&sb), [0, 1, 2]);
    assert!(!sa.iter().chain(&sb).any(|s| matches!(s, Seen::Down(..))));
    let s = b.datagram_stats();
    assert_eq!(
        s.packet_drops(Drop::ForeignEthertype),
        2,
        "arp + 9000 bytes of 0x45"
    );
    assert_eq!(s.packet_drops(Drop::BadIpChecksum), 1);
    assert_eq!(s.packet_drops(Drop::BadUdpChecksum), 1);
    assert_eq!(s.packet_drops(Drop::Truncated), 1);
    assert_eq!(s.unknown_peer, 2, "unknown address and spoofed MAC");
    assert_eq!(s.segment_drops(SegmentDrop::Malformed), 1);
}

#[test]
fn an_oversize_ip_length_or_a_corrupt_aurora_frame_never_reaches_the_consumer() {
    let mut clock = Clock(0);
    let (mut a, mut b, ka, _) = pair();
    connect(&mut clock, &mut a, &mut b);
    // Claims an IP datagram longer than the frame: truncated.
    let mut long_claim = raw(1, &[0u8; 40]);
    long_claim[16..18].copy_from_slice(&1400u16.to_be_bytes());
    ka.inject(long_claim);
    let (_, sb) = pump(&mut clock, &mut a, &mut b, 2);
    assert!(sb.is_empty());
    assert_eq!(b.datagram_stats().packet_drops(Drop::Truncated), 1);
    // A frame that the peer's wire rules reject (payload above max_payload_len_bytes) is consumed
    // (acked, so not resent forever) but not delivered.
    let big = frame(&a, 1, 2, 1, &[7u8; 950]);
    a.send(Remote::Peer(2), big).unwrap();
    a.send(Remote::Peer(2), frame(&a, 1, 2, 2, b"next"))
        .unwrap();
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 5);
    assert_eq!(received(&sb), [2]);
    assert_eq!(b.datagram_stats().bad_frame, 1);
    assert_eq!(sa.iter().filter(|s| matches!(s, Seen::Sent(_))).count(), 2);
}

#[test]
fn a_node_without_the_secret_never_opens_a_session() {
    let mut cfg_b = config(2, &[1]);
    cfg_b.secret = b"not the secret, but 32 bytes....".to_vec();
    let mut clock = Clock(0);
    let (mut a, mut b, _, _) = pair_with(config(1, &[2]), cfg_b);
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 500);
    assert!(sa.is_empty() && sb.is_empty(), "{sa:?} {sb:?}");
    assert!(a.datagram_stats().bad_mac > 0 && b.datagram_stats().bad_mac > 0);
}

#[test]
fn a_cut_link_takes_the_peer_down_and_it_comes_back_when_restored() {
    let mut clock = Clock(0);
    let (mut a, mut b, ka, kb) = pair();
    connect(&mut clock, &mut a, &mut b);
    ka.set_cut(true);
    kb.set_cut(true);
    a.send(Remote::Peer(2), frame(&a, 1, 2, 0, b"lost"))
        .unwrap();
    let mut down = Vec::new();
    for _ in 0..10_000 {
        let (sa, _) = pump(&mut clock, &mut a, &mut b, 1);
        down.extend(sa);
        if !down.is_empty() {
            break;
        }
    }
    let timed_out = DownReason::Io {
        errno: libc::ETIMEDOUT,
    };
    assert_eq!(down, [Seen::Down(Remote::Peer(2), timed_out)]);
    assert_eq!(a.buffers().free_count(), a.buffers().slab_count());
    ka.set_cut(false);
    kb.set_cut(false);
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 300);
    assert_eq!(sa, [Seen::Up(Remote::Peer(2))]);
    // b never noticed a timeout (it had nothing to send) but sees a's new epoch as a restart.
    assert_eq!(
        sb,
        [
            Seen::Down(Remote::Peer(1), DownReason::Closed),
            Seen::Up(Remote::Peer(1))
        ]
    );
    a.send(Remote::Peer(2), frame(&a, 1, 2, 5, b"again"))
        .unwrap();
    let (_, sb) = pump(&mut clock, &mut a, &mut b, 3);
    assert_eq!(received(&sb), [5]);
}

#[test]
fn a_restarted_peer_is_reported_down_then_up() {
    let mut clock = Clock(0);
    let (pa, pb) = LinkPort::pair(MTU_FRAME, 1024);
    let pb2 = pb.knobs();
    let mut a = DatagramTransport::new(vec![pa], config(1, &[2])).unwrap();
    let mut b = DatagramTransport::new(vec![pb], config(2, &[1])).unwrap();
    connect(&mut clock, &mut a, &mut b);
    drop(b);
    let mut b = DatagramTransport::new(vec![pb2], config(2, &[1])).unwrap();
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 300);
    assert_eq!(
        sa,
        [
            Seen::Down(Remote::Peer(2), DownReason::Closed),
            Seen::Up(Remote::Peer(2))
        ]
    );
    assert_eq!(sb, [Seen::Up(Remote::Peer(1))]);
}

#[test]
fn a_consumer_that_stops_polling_is_backpressure_not_growth() {
    let mut clock = Clock(0);
    let (mut a, mut b, _, _) = pair();
    connect(&mut clock, &mut a, &mut b);
    for i in 0..32 {
        a.send(Remote::Peer(2), frame(&a, 1, 2, i, b"bp")).unwrap();
    }
    // b polls with room for one event at a time: nothing is lost, order holds.
    let mut got = Vec::new();
    let mut ea: Vec<Event> = Vec::with_capacity(64);
    let mut eb: Vec<Event> = Vec::with_capacity(1);
    for _ in 0..200 {
        let now = clock.step(10_000);
        a.poll(now, &mut ea).unwrap();
        ea.clear();
        b.poll(now, &mut eb).unwrap();
        got.extend(received(&seen(&mut eb)));
    }
    assert_eq!(got, (0..32).collect::<Vec<_>>());
}

fn big(node: u64, peer: u64, slab_bytes: usize) -> DatagramConfig {
    let mut cfg = config(node, &[peer]);
    cfg.slab_bytes = slab_bytes;
    cfg.max_payload_len_bytes = 16 * 1024;
    cfg
}

#[test]
fn frames_longer_than_a_datagram_are_segmented_and_survive_loss() {
    let mut clock = Clock(0);
    let (mut a, mut b, ka, _) = pair_with(big(1, 2, 8192), big(2, 1, 8192));
    connect(&mut clock, &mut a, &mut b);
    ka.set_loss_one_in(4);
    let payload: Vec<u8> = (0..7000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut got = Vec::new();
    let mut next = 0u64;
    for _ in 0..5_000 {
        if next < 20 {
            if let Err(e) = a.send(Remote::Peer(2), frame(&a, 1, 2, next, &payload)) {
                assert!(matches!(e.kind, SendErrorKind::QueueFull { .. }), "{e}");
            } else {
                next += 1;
            }
        }
        let (sa, sb) = pump(&mut clock, &mut a, &mut b, 1);
        assert!(
            !sa.iter().any(|s| matches!(s, Seen::Down(..))),
            "{sa:?} after {got:?} {:?} {:?}",
            a.datagram_stats(),
            b.datagram_stats()
        );
        for s in sb {
            if let Seen::Received(_, corr, bytes) = s {
                assert_eq!(bytes, payload, "frame {corr} reassembled intact");
                got.push(corr);
            }
        }
        if got.len() == 20 {
            break;
        }
    }
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert!(a.retransmitted_frames() > 0);
}

#[test]
fn a_frame_larger_than_the_receivers_slab_is_dropped_and_counted_and_the_next_one_arrives() {
    let mut clock = Clock(0);
    let (mut a, mut b, _, _) = pair_with(big(1, 2, 8192), big(2, 1, 2048));
    connect(&mut clock, &mut a, &mut b);
    a.send(Remote::Peer(2), frame(&a, 1, 2, 1, &[1u8; 3000]))
        .unwrap();
    a.send(Remote::Peer(2), frame(&a, 1, 2, 2, &[2u8; 1000]))
        .unwrap();
    let (sa, sb) = pump(&mut clock, &mut a, &mut b, 5);
    assert_eq!(received(&sb), [2]);
    assert_eq!(b.datagram_stats().bad_frame, 1);
    assert_eq!(
        b.stats()
            .rejected(aurora::transport::RejectReason::Oversize),
        1
    );
    assert_eq!(sa.iter().filter(|s| matches!(s, Seen::Sent(_))).count(), 2);
    assert_eq!(b.buffers().free_count(), b.buffers().slab_count());
}

#[test]
fn a_node_with_one_port_per_peer_learns_which_port_reaches_whom() {
    // A memif-style mesh: node 1 has a link to 2 and a link to 3; 2 and 3 have one each, so they
    // never hear of each other and only 1 can reach both.
    let (p12, p21) = LinkPort::pair(MTU_FRAME, 1024);
    let (p13, p31) = LinkPort::pair(MTU_FRAME, 1024);
    let mut n1 = DatagramTransport::new(vec![p12, p13], config(1, &[2, 3])).unwrap();
    let mut n2 = DatagramTransport::new(vec![p21], config(2, &[1])).unwrap();
    let mut n3 = DatagramTransport::new(vec![p31], config(3, &[1])).unwrap();
    let mut clock = Clock(0);
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut seen_by = [Vec::new(), Vec::new(), Vec::new()];
    let mut round = |n1: &mut Node, n2: &mut Node, n3: &mut Node, seen_by: &mut [Vec<Seen>; 3]| {
        let now = clock.step(10_000);
        for (i, n) in [n1, n2, n3].into_iter().enumerate() {
            n.poll(now, &mut events).unwrap();
            seen_by[i].extend(seen(&mut events));
        }
    };
    for _ in 0..5 {
        round(&mut n1, &mut n2, &mut n3, &mut seen_by);
    }
    assert_eq!(
        seen_by[0],
        [Seen::Up(Remote::Peer(2)), Seen::Up(Remote::Peer(3))]
    );
    // Before learning, node 1's SYNs to 3 also went out on the link to 2 (dropped there).
    let misrouted_before = n2.datagram_stats().packet_drops(Drop::NotForUs);
    n1.send(Remote::Peer(3), frame(&n1, 1, 3, 30, b"to three"))
        .unwrap();
    n1.send(Remote::Peer(2), frame(&n1, 1, 2, 20, b"to two"))
        .unwrap();
    n3.send(Remote::Peer(1), frame(&n3, 3, 1, 31, b"from three"))
        .unwrap();
    for _ in 0..5 {
        round(&mut n1, &mut n2, &mut n3, &mut seen_by);
    }
    assert_eq!(received(&seen_by[1]), [20]);
    assert_eq!(received(&seen_by[2]), [30]);
    assert_eq!(received(&seen_by[0]), [31]);
    // After learning, nothing goes out on the wrong link: 2 never saw a frame meant for 3.
    let misrouted = n2.datagram_stats().packet_drops(Drop::NotForUs);
    assert_eq!(misrouted, misrouted_before);
}
