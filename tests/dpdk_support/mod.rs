//! Shared world for the DPDK transport tests: configs, frame builders, a pump over a virtual clock.
#![allow(dead_code)] // each test binary uses a different part of this module

use aurora::transport::dpdk::datagram::DatagramConfig;
use aurora::transport::dpdk::packet::Endpoint;
use aurora::transport::dpdk::session::SessionConfig;
use aurora::transport::{Buf, DownReason, Event, PeerId, Remote, Transport};
use aurora::wire::{encode_payload, FrameKind, HeaderFields};
use std::net::Ipv4Addr;

pub const CLUSTER: u64 = 0xD9D7;
pub const SECRET: &[u8] = b"dpdk test secret of 32 bytes....";

pub fn endpoint(node: PeerId) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0, 0, node as u8],
        ip: Ipv4Addr::new(10, 99, 0, node as u8),
        udp_port: 9000 + node as u16,
    }
}

/// Short timers so loss tests finish in few virtual milliseconds.
pub const SESSION: SessionConfig = SessionConfig {
    window_frames: 32,
    rto_initial_ns: 200_000,
    rto_max_ns: 3_200_000,
    max_retransmits: 8,
    syn_interval_ns: 1_000_000,
};

pub fn config(node: PeerId, peers: &[PeerId]) -> DatagramConfig {
    DatagramConfig {
        node_id: node,
        cluster_id: CLUSTER,
        secret: SECRET.to_vec(),
        local: endpoint(node),
        peers: peers.iter().map(|p| (*p, endpoint(*p))).collect(),
        session: SESSION,
        slab_bytes: 1024,
        pool_slabs: 256,
        rx_burst: 32,
        max_payload_len_bytes: 900,
        test_drop_one_in: 0,
    }
}

/// A well-formed frame from `from` to `to` carrying `payload`, in a buffer of `t`'s pool.
pub fn frame(t: &impl Transport, from: PeerId, to: PeerId, seq: u64, payload: &[u8]) -> Buf {
    let mut buf = t.buffers().take().expect("test pools are large enough");
    let fields = HeaderFields {
        kind: FrameKind::Ping,
        cluster_id: CLUSTER,
        from,
        to,
        term: 0,
        correlation_id: seq,
    };
    let len = encode_payload(buf.slab_mut(), &fields, payload).expect("fits the slab");
    buf.set_len(len);
    buf
}

/// What a test compares about an event (buffers released at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Up(Remote),
    Down(Remote, DownReason),
    Received(Remote, u64, Vec<u8>),
    Sent(Remote),
}

pub fn seen(events: &mut Vec<Event>) -> Vec<Seen> {
    events
        .drain(..)
        .map(|e| match e {
            Event::PeerUp { remote } => Seen::Up(remote),
            Event::PeerDown { remote, reason } => Seen::Down(remote, reason),
            Event::Received { from, buf } => {
                let bytes = buf.as_slice();
                let corr = u64::from_le_bytes(bytes[48..56].try_into().unwrap());
                Seen::Received(from, corr, bytes[aurora::wire::HEADER_LEN..].to_vec())
            }
            Event::SendComplete { to, .. } => Seen::Sent(to),
        })
        .collect()
}

/// A virtual clock shared by the nodes of one test.
pub struct Clock(pub u64);

impl Clock {
    pub fn step(&mut self, ns: u64) -> u64 {
        self.0 += ns;
        self.0
    }
}
