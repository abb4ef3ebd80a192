//! Shared by the tests/rdma_*.rs suites, which run inside the SoftRoCE guest of hack/rdma-vm.sh
//! (hack/rdma-test.sh builds them on the host and runs them there).
#![allow(dead_code)] // each suite uses a subset

use aurora::transport::handshake::ClusterSecret;
use aurora::transport::rdma::{RdmaConfig, RdmaTransport};
use aurora::transport::{Event, PeerId, Remote, Transport};
use aurora::wire::{encode_payload, FrameKind, HeaderFields};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

pub const CLUSTER: u64 = 0xA5A5;
/// Every wait is bounded by this; reaching it fails the test with what was being waited for.
pub const WAIT: Duration = Duration::from_secs(60);

/// A guest variable set by hack/rdma/guest-init.sh; a clear failure (never a skip) outside the VM.
pub fn guest(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: the RDMA suites run inside the SoftRoCE VM; use hack/rdma-test.sh"
        )
    })
}

/// Device `n` (0 or 1) of the guest: its name and IPv4 address.
pub fn dev(n: u8) -> (String, Ipv4Addr) {
    (
        guest(&format!("AURORA_RDMA_DEV{n}")),
        guest(&format!("AURORA_RDMA_ADDR{n}"))
            .parse()
            .expect("guest address"),
    )
}

pub fn secret() -> ClusterSecret {
    ClusterSecret::new(&[0x5e; 32]).unwrap()
}

/// A node on guest device `n`, listening on an ephemeral port when it accepts anyone.
pub fn node(
    id: PeerId,
    n: u8,
    dial: &[(PeerId, SocketAddrV4)],
    accept_from: &[PeerId],
) -> RdmaConfig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut cfg = RdmaConfig::new(id, CLUSTER, secret());
    cfg.device = Some(dev(n).0);
    cfg.dial = dial.to_vec();
    cfg.accept_from = accept_from.to_vec();
    cfg.listen_port = (!accept_from.is_empty()).then_some(0);
    cfg.max_connections = 4;
    cfg.recv_depth = 16;
    cfg.send_depth = 16;
    cfg.pool_slabs = 256;
    cfg.slab_bytes = 4096;
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 200;
    cfg
}

/// Where `t` accepts, as a dial target.
pub fn addr_of(t: &RdmaTransport) -> SocketAddrV4 {
    SocketAddrV4::new(t.device().addr, t.local_port().expect("listening"))
}

pub fn now_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Polls every transport, handing each event to `on` (transport index, event), until `on`
/// returns true; fails after [`WAIT`] naming `what`.
pub fn pump(ts: &mut [&mut RdmaTransport], what: &str, mut on: impl FnMut(usize, Event) -> bool) {
    let start = Instant::now();
    let mut events = Vec::with_capacity(256);
    loop {
        let mut done = false;
        for (i, t) in ts.iter_mut().enumerate() {
            t.poll(now_ns(), &mut events).expect("poll");
            for e in events.drain(..) {
                done |= on(i, e);
            }
        }
        if done {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "gave up after {WAIT:?} waiting for: {what}"
        );
    }
}

/// Polls every transport (dropping their events) until `done` holds; fails after [`WAIT`].
pub fn pump_until(
    ts: &mut [&mut RdmaTransport],
    what: &str,
    mut done: impl FnMut(&mut [&mut RdmaTransport]) -> bool,
) {
    let start = Instant::now();
    let mut events = Vec::with_capacity(256);
    loop {
        for t in ts.iter_mut() {
            t.poll(now_ns(), &mut events).expect("poll");
            events.clear();
        }
        if done(ts) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "gave up after {WAIT:?} waiting for: {what}"
        );
    }
}

/// A bound on a hand-written polling loop: `check` fails the test after [`WAIT`] naming `what`.
pub struct Deadline {
    start: Instant,
    what: &'static str,
}

impl Deadline {
    pub fn new(what: &'static str) -> Self {
        Self {
            start: Instant::now(),
            what,
        }
    }

    pub fn check(&self) {
        assert!(
            self.start.elapsed() < WAIT,
            "gave up after {WAIT:?} waiting for: {}",
            self.what
        );
    }
}

/// Polls until `peer` is up on `t` (and every other transport keeps being polled).
pub fn until_up(ts: &mut [&mut RdmaTransport], who: usize, peer: PeerId) {
    pump_until(ts, &format!("peer {peer} up on transport {who}"), |ts| {
        ts[who].is_up(peer)
    });
}

/// A ping frame from `from` to `to` with `seq` as correlation id and payload.
pub fn ping(t: &RdmaTransport, from: PeerId, to: PeerId, seq: u64) -> aurora::transport::Buf {
    let mut buf = t.buffers().take().unwrap();
    let fields = HeaderFields {
        kind: FrameKind::Ping,
        cluster_id: CLUSTER,
        from,
        to,
        term: 0,
        correlation_id: seq,
    };
    let len = encode_payload(buf.slab_mut(), &fields, &seq.to_le_bytes()).unwrap();
    buf.set_len(len);
    buf
}

/// The correlation id of a received frame.
pub fn seq_of(buf: &aurora::transport::Buf) -> u64 {
    u64::from_le_bytes(buf.as_slice()[48..56].try_into().unwrap())
}

pub fn is_down(e: &Event, peer: PeerId) -> bool {
    matches!(e, Event::PeerDown { remote: Remote::Peer(p), .. } if *p == peer)
}

/// A 100% loss netem qdisc on a guest netdev for as long as it lives: a partition of that host,
/// healed on drop even when the test fails (later tests must not inherit it).
pub struct Partition {
    netdev: String,
    healed: bool,
}

impl Partition {
    pub fn new(netdev: &str) -> Self {
        tc(&format!("qdisc add dev {netdev} root netem loss 100%"));
        Self {
            netdev: netdev.to_string(),
            healed: false,
        }
    }

    pub fn heal(mut self) {
        self.healed = true;
        tc(&format!("qdisc del dev {} root", self.netdev));
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if !self.healed {
            let _ = std::process::Command::new("tc")
                .args(["qdisc", "del", "dev", &self.netdev, "root"])
                .status();
        }
    }
}

fn tc(args: &str) {
    let out = std::process::Command::new("tc")
        .args(args.split_whitespace())
        .output()
        .expect("tc runs in the guest");
    assert!(
        out.status.success(),
        "tc {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
