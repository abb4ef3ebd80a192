//! Shared world for the tcp_uring integration tests: nodes on loopback, a pump that polls them,
//! and frame builders for well-formed and deliberately broken input.
#![allow(dead_code)] // each test binary uses a different part of this module

use aurora::transport::handshake::ClusterSecret;
use aurora::transport::tcp_uring::{TcpUring, TcpUringConfig};
use aurora::transport::{Buf, DownReason, Event, PeerId, Remote, Transport};
use aurora::wire::{encode_payload, FrameKind, HeaderFields, HEADER_LEN};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const CLUSTER: u64 = 0xC1;

pub fn secret() -> ClusterSecret {
    ClusterSecret::new(b"a cluster secret of 32 bytes....").unwrap()
}

pub fn wrong_secret() -> ClusterSecret {
    ClusterSecret::new(b"not the cluster secret, guessed!").unwrap()
}

pub fn now_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Small pools and short deadlines so tests run fast.
pub fn config(node: PeerId) -> TcpUringConfig {
    let mut cfg = TcpUringConfig::new(node, CLUSTER, secret());
    cfg.pool_slabs = 1024;
    cfg.recv_buffers = 64;
    cfg.max_connections = 16;
    cfg.handshake_timeout_ms = 500;
    cfg.frame_timeout_ms = 300;
    cfg.backoff_min_ms = 10;
    cfg.backoff_max_ms = 100;
    cfg
}

/// A node that accepts `from` on an ephemeral loopback port.
pub fn acceptor(node: PeerId, from: &[PeerId]) -> TcpUring {
    let mut cfg = config(node);
    cfg.listen_addr = Some("127.0.0.1:0".parse().unwrap());
    cfg.accept_from = from.to_vec();
    TcpUring::new(cfg).unwrap()
}

/// A node that dials `to`.
pub fn dialer(node: PeerId, to: &[(PeerId, SocketAddr)]) -> TcpUring {
    let mut cfg = config(node);
    cfg.dial = to.to_vec();
    TcpUring::new(cfg).unwrap()
}

/// What a test compares about an event (buffers released at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Up(Remote),
    Down(Remote, DownReason),
    Received(Remote, Vec<u8>),
    Sent(Remote),
}

/// Polls `nodes` round-robin until `done(logs)` holds or `timeout_ms` passes; returns whether it
/// held. `logs[i]` accumulates node i's events (payloads only for received frames).
pub fn pump(
    nodes: &mut [&mut TcpUring],
    logs: &mut Vec<Vec<Seen>>,
    timeout_ms: u64,
    mut done: impl FnMut(&[Vec<Seen>]) -> bool,
) -> bool {
    logs.resize(nodes.len(), Vec::new());
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut events = Vec::with_capacity(256);
    while Instant::now() < deadline {
        for (node, log) in nodes.iter_mut().zip(logs.iter_mut()) {
            node.poll(now_ns(), &mut events).unwrap();
            for event in events.drain(..) {
                log.push(match event {
                    Event::PeerUp { remote } => Seen::Up(remote),
                    Event::PeerDown { remote, reason } => Seen::Down(remote, reason),
                    Event::Received { from, buf } => {
                        Seen::Received(from, buf.as_slice()[HEADER_LEN..].to_vec())
                    }
                    Event::SendComplete { to, .. } => Seen::Sent(to),
                });
            }
        }
        if done(logs) {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

pub fn is_up(log: &[Seen], peer: PeerId) -> bool {
    log.iter().rev().find_map(|s| match s {
        Seen::Up(Remote::Peer(p)) if *p == peer => Some(true),
        Seen::Down(Remote::Peer(p), _) if *p == peer => Some(false),
        _ => None,
    }) == Some(true)
}

pub fn received(log: &[Seen], from: PeerId, payload: &[u8]) -> bool {
    log.iter()
        .any(|s| matches!(s, Seen::Received(Remote::Peer(p), got) if *p == from && got == payload))
}

pub fn fields(kind: FrameKind, from: PeerId, to: PeerId) -> HeaderFields {
    HeaderFields {
        kind,
        cluster_id: CLUSTER,
        from,
        to,
        term: 1,
        correlation_id: 7,
    }
}

/// A frame in a pool buffer of `t`, ready to send.
pub fn frame(t: &TcpUring, kind: FrameKind, from: PeerId, to: PeerId, payload: &[u8]) -> Buf {
    let mut buf = t.buffers().take().unwrap();
    let len = encode_payload(buf.slab_mut(), &fields(kind, from, to), payload).unwrap();
    buf.set_len(len);
    buf
}

/// A frame as plain bytes, for raw sockets playing a misbehaving peer.
pub fn raw_frame(kind: FrameKind, from: PeerId, to: PeerId, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN + payload.len()];
    encode_payload(&mut out, &fields(kind, from, to), payload).unwrap();
    out
}

pub fn consensus_kind() -> FrameKind {
    FrameKind::Consensus(aurora::wire::ConsensusKind::new(0).unwrap())
}
