//! RDMA latency inside the SoftRoCE VM, to be compared with perftest in the same VM run
//! (hack/bench-rdma.sh runs both and prints the ratios). Two threads, one transport each on its own
//! rxe device, busy-polling like perftest does:
//!
//! - `send`: SEND/RECV ping-pong of 64-byte frames (56-byte header + 8-byte payload) through
//!   [`Transport::send`]/[`Transport::poll`], against `ib_send_lat -s 64`.
//! - `write`: one-sided ring ping-pong: each side RDMA-WRITEs (with immediate) a 64-byte slot
//!   (40-byte header + 24-byte payload) into the other's log ring and waits for the other's write,
//!   against `ib_write_lat -s 64`.
//!
//! Prints half the round trip (what perftest's `t_typical` is) as median and p99, in µs.
//! Usage (in the VM): `rdma-bench send|write ROUND_TRIPS`.

use aurora::transport::handshake::ClusterSecret;
use aurora::transport::rdma::ring::{RingAppend, RingGrant};
use aurora::transport::rdma::{RdmaConfig, RdmaTransport};
use aurora::transport::{Event, PeerId, Remote, Transport};
use aurora::wire::{encode_payload, FrameKind, HeaderFields};
use std::net::SocketAddrV4;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CLUSTER: u64 = 0xBE7C;
const WARMUP: u64 = 200;
const LIMIT: Duration = Duration::from_secs(30);

fn env(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} unset: run inside the VM via hack/bench-rdma.sh"))
}

fn config(id: PeerId, dev: &str, dial: Option<SocketAddrV4>) -> RdmaConfig {
    let mut cfg = RdmaConfig::new(id, CLUSTER, ClusterSecret::new(&[9; 32]).unwrap());
    cfg.device = Some(env(dev));
    cfg.max_connections = 2;
    cfg.slab_bytes = 4096;
    cfg.pool_slabs = 256;
    cfg.recv_depth = 64;
    cfg.ring_slots = 64;
    cfg.ring_slot_bytes = 256;
    match dial {
        Some(addr) => cfg.dial = vec![(2, addr)],
        None => {
            cfg.accept_from = vec![1];
            cfg.listen_port = Some(0);
        }
    }
    cfg
}

fn now_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn ping(t: &RdmaTransport, from: PeerId, to: PeerId, seq: u64) -> aurora::transport::Buf {
    let mut buf = t.buffers().take().expect("pool");
    let fields = HeaderFields {
        kind: FrameKind::Ping,
        cluster_id: CLUSTER,
        from,
        to,
        term: 0,
        correlation_id: seq,
    };
    let len = encode_payload(buf.slab_mut(), &fields, &seq.to_le_bytes()).expect("fits");
    buf.set_len(len);
    buf
}

/// Polls `t` until `peer` is up (bounded).
fn connect(t: &mut RdmaTransport, peer: PeerId, start: Instant) {
    let mut events = Vec::with_capacity(64);
    while !t.is_up(peer) {
        t.poll(now_ns(start), &mut events).unwrap();
        events.clear();
        assert!(start.elapsed() < LIMIT, "peer {peer} never came up");
    }
}

/// Waits for the next received frame (send mode) or ring append (write mode), bounded.
fn wait(
    t: &mut RdmaTransport,
    mode: &str,
    start: Instant,
    events: &mut Vec<Event>,
    appends: &mut Vec<RingAppend>,
) -> u64 {
    let began = Instant::now();
    loop {
        t.poll(now_ns(start), events).unwrap();
        let mut got = None;
        for e in events.drain(..) {
            if let Event::Received { buf, .. } = e {
                got = Some(u64::from_le_bytes(
                    buf.as_slice()[48..56].try_into().unwrap(),
                ));
            }
        }
        if mode == "write" {
            appends.clear();
            if t.take_ring_appends(appends) > 0 {
                got = Some(appends[0].index);
            }
        }
        if let Some(seq) = got {
            return seq;
        }
        assert!(began.elapsed() < LIMIT, "a round trip took over {LIMIT:?}");
    }
}

fn emit(t: &mut RdmaTransport, mode: &str, me: PeerId, to: PeerId, seq: u64) {
    if mode == "send" {
        t.send(Remote::Peer(to), ping(t, me, to, seq)).unwrap();
    } else {
        t.ring_append(to, 1, seq, 1, seq.saturating_sub(1), &[7; 24])
            .unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mode = args
        .first()
        .map(String::as_str)
        .unwrap_or("send")
        .to_string();
    assert!(
        mode == "send" || mode == "write",
        "mode is send or write, not {mode}"
    );
    let round_trips: u64 = args
        .get(1)
        .map(|n| n.parse().expect("ROUND_TRIPS"))
        .unwrap_or(2000);
    let start = Instant::now();
    let (addr_tx, addr_rx) = mpsc::channel();
    let (grant_tx, grant_rx) = mpsc::channel::<[u8; RingGrant::LEN]>();
    let (back_tx, back_rx) = mpsc::channel::<[u8; RingGrant::LEN]>();
    let server_mode = mode.clone();
    let server = std::thread::spawn(move || {
        let mut t = RdmaTransport::new(config(2, "AURORA_RDMA_DEV1", None)).unwrap();
        addr_tx
            .send(SocketAddrV4::new(t.device().addr, t.local_port().unwrap()))
            .unwrap();
        connect(&mut t, 1, start);
        grant_tx
            .send(t.grant_ring(1, 1).unwrap().to_bytes())
            .unwrap();
        let grant = RingGrant::from_bytes(&back_rx.recv().unwrap()).unwrap();
        t.accept_ring_grant(1, grant);
        let (mut events, mut appends) = (Vec::with_capacity(64), Vec::with_capacity(64));
        for _ in 0..WARMUP + round_trips {
            let seq = wait(&mut t, &server_mode, start, &mut events, &mut appends);
            emit(&mut t, &server_mode, 2, 1, seq);
        }
        // Let the last echo's completion arrive before the QP goes away.
        let end = Instant::now();
        while end.elapsed() < Duration::from_millis(200) {
            t.poll(now_ns(start), &mut events).unwrap();
            events.clear();
        }
    });
    let mut t =
        RdmaTransport::new(config(1, "AURORA_RDMA_DEV0", Some(addr_rx.recv().unwrap()))).unwrap();
    connect(&mut t, 2, start);
    let grant = RingGrant::from_bytes(&grant_rx.recv().unwrap()).unwrap();
    t.accept_ring_grant(2, grant);
    back_tx
        .send(t.grant_ring(2, 1).unwrap().to_bytes())
        .unwrap();
    let (mut events, mut appends) = (Vec::with_capacity(64), Vec::with_capacity(64));
    let mut half_rtt_ns = Vec::with_capacity(round_trips as usize);
    for seq in 1..=WARMUP + round_trips {
        let sent = Instant::now();
        emit(&mut t, &mode, 1, 2, seq);
        let got = wait(&mut t, &mode, start, &mut events, &mut appends);
        assert_eq!(got, seq, "echo out of order");
        if seq > WARMUP {
            half_rtt_ns.push(sent.elapsed().as_nanos() as u64 / 2);
        }
    }
    server.join().unwrap();
    half_rtt_ns.sort_unstable();
    let pct = |p: f64| half_rtt_ns[((half_rtt_ns.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    println!(
        "aurora-rdma {mode} 64B: round_trips={round_trips} half_rtt_p50_us={:.2} half_rtt_p99_us={:.2}",
        pct(0.5),
        pct(0.99)
    );
}
