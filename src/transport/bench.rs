//! Transport ping-pong benchmark: tcp_uring against a raw-socket floor measured in the same run.
//!
//! Two threads pinned to two cores play client and echo server over loopback. The floor is the
//! simplest thing that can move the same bytes: plain non-blocking TCP sockets (TCP_NODELAY)
//! spinning on `read(2)`. Aurora's side is two [`TcpUring`] transports, each created on its own
//! thread; the echo sends the received pool buffer straight back (header rewritten in place, no
//! copy), and the client encodes each ping into a pool buffer, as the consensus core will. Both
//! move frames of `HEADER_LEN + payload` bytes and record every round trip in an HDR histogram.
//! Used by `aurora bench transport` and `cargo bench --bench transport`.

use super::handshake::ClusterSecret;
use super::tcp_uring::{TcpUring, TcpUringConfig};
use super::{Event, Remote, Transport};
use crate::wire::{encode_payload, FrameBuilder, FrameKind, HeaderFields, HEADER_LEN};
use hdrhistogram::Histogram;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CLUSTER: u64 = 0xBE7C;
const CLIENT: u64 = 1;
const SERVER: u64 = 2;
/// Pool slab size of the benchmark transports: a 4 KiB payload plus header fits.
const SLAB_BYTES: usize = 8192;
/// Longest a single round trip may take before the run is declared broken.
const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone)]
pub struct PingPongSpec {
    /// Payload sizes; each runs the floor and tcp_uring.
    pub payload_bytes: Vec<usize>,
    pub warmup_round_trips: u64,
    pub round_trips: u64,
    /// Cores for the client and the server thread (`None`: do not pin).
    pub cores: Option<(usize, usize)>,
    /// The round trips are split into this many blocks, alternating floor and tcp_uring, so
    /// background load on a shared machine hits both paths alike.
    pub blocks: u64,
}

/// One block of one path: a fresh connection, its warm-up, then measured round trips.
struct Block {
    warmup_round_trips: u64,
    round_trips: u64,
    cores: Option<(usize, usize)>,
}

/// Latency percentiles of one path.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub count: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            count: h.len(),
        }
    }
}

/// One payload size: the floor, tcp_uring, and their p50 ratio.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CaseResult {
    pub payload_bytes: usize,
    pub frame_bytes: usize,
    pub floor: Percentiles,
    pub aurora: Percentiles,
    pub ratio_p50: f64,
    /// Kernel entries (`io_uring_enter`) of the tcp_uring client per measured round trip; the
    /// floor makes one `write` plus at least one `read`.
    pub aurora_enters_per_round_trip: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("benchmark i/o failed ({what}): {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("transport failed: {0}")]
    Transport(#[from] super::TransportError),
    #[error("a round trip took longer than {ROUND_TRIP_LIMIT:?}: {0}")]
    Stalled(&'static str),
    #[error("benchmark thread failed: {0}")]
    Thread(String),
    #[error(
        "payload of {payload_bytes} B does not fit the 8 KiB benchmark slabs; use at most {max} B"
    )]
    PayloadTooLarge { payload_bytes: usize, max: usize },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> BenchError {
    move |source| BenchError::Io { what, source }
}

fn histogram() -> Histogram<u64> {
    // 100 ns .. 1 s at 3 significant digits; preallocated, so recording never allocates.
    Histogram::new_with_bounds(100, 1_000_000_000, 3).expect("static bounds are valid")
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            tracing::warn!(core = id, "could not pin the benchmark thread");
        }
    }
}

/// The cores to pin to: the first two the process may run on, if there are two.
pub fn default_cores() -> Option<(usize, usize)> {
    let ids = core_affinity::get_core_ids()?;
    (ids.len() >= 2).then(|| (ids[0].id, ids[1].id))
}

/// Runs every case of `spec`.
pub fn run(spec: &PingPongSpec) -> Result<Vec<CaseResult>, BenchError> {
    spec.payload_bytes
        .iter()
        .map(|&payload_bytes| {
            if HEADER_LEN + payload_bytes > SLAB_BYTES {
                return Err(BenchError::PayloadTooLarge {
                    payload_bytes,
                    max: SLAB_BYTES - HEADER_LEN,
                });
            }
            let frame_bytes = HEADER_LEN + payload_bytes;
            let blocks = spec.blocks.clamp(1, spec.round_trips.max(1));
            let mut floor = histogram();
            let mut aurora = histogram();
            let mut enters = 0;
            for b in 0..blocks {
                // The last block takes the remainder, so exactly `round_trips` are measured.
                let share = spec.round_trips / blocks;
                let round_trips = if b + 1 == blocks {
                    spec.round_trips - share * (blocks - 1)
                } else {
                    share
                };
                let block = Block {
                    warmup_round_trips: (spec.warmup_round_trips / blocks).max(1),
                    round_trips,
                    cores: spec.cores,
                };
                raw_socket_pingpong(frame_bytes, &block, &mut floor)?;
                enters += tcp_uring_pingpong(payload_bytes, &block, &mut aurora)?;
            }
            let floor = Percentiles::of(&floor);
            let aurora = Percentiles::of(&aurora);
            Ok(CaseResult {
                payload_bytes,
                frame_bytes,
                floor,
                aurora,
                ratio_p50: aurora.p50_ns as f64 / floor.p50_ns.max(1) as f64,
                aurora_enters_per_round_trip: enters as f64 / spec.round_trips.max(1) as f64,
            })
        })
        .collect()
}

/// Reads exactly `buf.len()` bytes from a non-blocking socket by spinning on `read`.
fn spin_read_exact(stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), BenchError> {
    let mut have = 0;
    let started = Instant::now();
    while have < buf.len() {
        match stream.read(&mut buf[have..]) {
            Ok(0) => {
                return Err(BenchError::Io {
                    what: "floor read",
                    source: ErrorKind::UnexpectedEof.into(),
                })
            }
            Ok(n) => have += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if started.elapsed() > ROUND_TRIP_LIMIT {
                    return Err(BenchError::Stalled("raw socket floor"));
                }
            }
            Err(e) => {
                return Err(BenchError::Io {
                    what: "floor read",
                    source: e,
                })
            }
        }
    }
    Ok(())
}

fn raw_socket_pingpong(
    frame_bytes: usize,
    spec: &Block,
    hist: &mut Histogram<u64>,
) -> Result<(), BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("floor bind"))?;
    let addr = listener.local_addr().map_err(io("floor local_addr"))?;
    let total = spec.warmup_round_trips + spec.round_trips;
    let server_core = spec.cores.map(|c| c.1);
    let server = std::thread::spawn(move || -> Result<(), BenchError> {
        pin(server_core);
        let (mut stream, _) = listener.accept().map_err(io("floor accept"))?;
        stream.set_nodelay(true).map_err(io("floor nodelay"))?;
        stream
            .set_nonblocking(true)
            .map_err(io("floor nonblocking"))?;
        let mut buf = vec![0u8; frame_bytes];
        for _ in 0..total {
            spin_read_exact(&mut stream, &mut buf)?;
            stream.write_all(&buf).map_err(io("floor write"))?;
        }
        Ok(())
    });
    pin(spec.cores.map(|c| c.0));
    let mut stream = TcpStream::connect(addr).map_err(io("floor connect"))?;
    stream.set_nodelay(true).map_err(io("floor nodelay"))?;
    stream
        .set_nonblocking(true)
        .map_err(io("floor nonblocking"))?;
    let ping = vec![0xA5u8; frame_bytes];
    let mut pong = vec![0u8; frame_bytes];
    for i in 0..total {
        let started = Instant::now();
        stream.write_all(&ping).map_err(io("floor write"))?;
        spin_read_exact(&mut stream, &mut pong)?;
        if i >= spec.warmup_round_trips {
            hist.saturating_record(started.elapsed().as_nanos() as u64);
        }
    }
    server
        .join()
        .map_err(|_| BenchError::Thread("floor server panicked".into()))??;
    Ok(())
}

fn bench_config(node: u64) -> TcpUringConfig {
    let secret = ClusterSecret::new(b"benchmark-only secret, 32 bytes!").expect("32 bytes");
    let mut cfg = TcpUringConfig::new(node, CLUSTER, secret);
    cfg.slab_bytes = SLAB_BYTES;
    cfg.pool_slabs = 1024;
    cfg.recv_buffers = 64;
    cfg.max_connections = 4;
    cfg
}

/// Polls until `done` says the event it waits for arrived.
/// `epoch` is the thread's clock origin: one clock read per iteration gives the `now_ns` every
/// deadline in the transport is judged against, as in a shard's loop.
fn poll_until(
    t: &mut TcpUring,
    epoch: Instant,
    events: &mut Vec<Event>,
    what: &'static str,
    mut done: impl FnMut(Event) -> bool,
) -> Result<(), BenchError> {
    let started_ns = epoch.elapsed().as_nanos() as u64;
    let limit_ns = ROUND_TRIP_LIMIT.as_nanos() as u64;
    loop {
        let now_ns = epoch.elapsed().as_nanos() as u64;
        t.poll(now_ns, events)?;
        let mut finished = false;
        for event in events.drain(..) {
            finished |= done(event);
        }
        if finished {
            return Ok(());
        }
        if now_ns - started_ns > limit_ns {
            return Err(BenchError::Stalled(what));
        }
    }
}

/// Records into `hist`; returns the client's kernel entries during the measured round trips.
fn tcp_uring_pingpong(
    payload_bytes: usize,
    spec: &Block,
    hist: &mut Histogram<u64>,
) -> Result<u64, BenchError> {
    let total = spec.warmup_round_trips + spec.round_trips;
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let server_core = spec.cores.map(|c| c.1);
    let server = std::thread::spawn(move || -> Result<(), BenchError> {
        pin(server_core);
        let mut cfg = bench_config(SERVER);
        cfg.listen_addr = Some("127.0.0.1:0".parse().expect("literal address"));
        cfg.accept_from = vec![CLIENT];
        let mut t = TcpUring::new(cfg)?;
        addr_tx
            .send(t.local_addr().expect("listening"))
            .map_err(|_| BenchError::Thread("client gone".into()))?;
        let mut events = Vec::with_capacity(64);
        let pong = HeaderFields {
            kind: FrameKind::Pong,
            cluster_id: CLUSTER,
            from: SERVER,
            to: CLIENT,
            term: 0,
            correlation_id: 0,
        };
        // One clock read per loop iteration, as a shard does.
        let clock = Instant::now();
        let limit_ns = ROUND_TRIP_LIMIT.as_nanos() as u64;
        let mut last_progress_ns = 0;
        let mut echoed = 0;
        while echoed < total {
            let now_ns = clock.elapsed().as_nanos() as u64;
            t.poll(now_ns, &mut events)?;
            for event in events.drain(..) {
                if let Event::Received { from, mut buf } = event {
                    // Echo the very buffer: rewrite the header in place over the payload.
                    let len = buf.len() - HEADER_LEN;
                    let builder =
                        FrameBuilder::new(buf.slab_mut(), &pong).expect("slab holds a header");
                    let frame_len = builder.finish(len).expect("payload is in place");
                    buf.set_len(frame_len);
                    t.send(from, buf)
                        .map_err(|e| BenchError::Thread(e.to_string()))?;
                    echoed += 1;
                    last_progress_ns = now_ns;
                }
            }
            if now_ns - last_progress_ns > limit_ns {
                return Err(BenchError::Stalled("tcp_uring echo"));
            }
        }
        // Let the last reply leave before tearing the ring down.
        for _ in 0..10_000 {
            t.poll(0, &mut events)?;
            events.clear();
        }
        Ok(())
    });
    pin(spec.cores.map(|c| c.0));
    let addr = addr_rx
        .recv()
        .map_err(|_| BenchError::Thread("server failed to start".into()))?;
    let mut cfg = bench_config(CLIENT);
    cfg.dial = vec![(SERVER, addr)];
    let mut t = TcpUring::new(cfg)?;
    let epoch = Instant::now();
    let mut events = Vec::with_capacity(64);
    poll_until(&mut t, epoch, &mut events, "tcp_uring handshake", |e| {
        matches!(e, Event::PeerUp { .. })
    })?;
    let ping = HeaderFields {
        kind: FrameKind::Ping,
        cluster_id: CLUSTER,
        from: CLIENT,
        to: SERVER,
        term: 0,
        correlation_id: 0,
    };
    let payload = vec![0x5Au8; payload_bytes];
    let mut enters_at_start = 0;
    for i in 0..total {
        if i == spec.warmup_round_trips {
            enters_at_start = t.stats().kernel_enters;
        }
        let started = Instant::now();
        let mut buf = t.buffers().take().map_err(super::TransportError::from)?;
        let len = encode_payload(buf.slab_mut(), &ping, &payload).expect("payload fits the slab");
        buf.set_len(len);
        t.send(Remote::Peer(SERVER), buf)
            .map_err(|e| BenchError::Thread(e.to_string()))?;
        poll_until(&mut t, epoch, &mut events, "tcp_uring round trip", |e| {
            matches!(e, Event::Received { .. })
        })?;
        if i >= spec.warmup_round_trips {
            hist.saturating_record(started.elapsed().as_nanos() as u64);
        }
    }
    let enters = t.stats().kernel_enters - enters_at_start;
    drop(t);
    server
        .join()
        .map_err(|_| BenchError::Thread("tcp_uring server panicked".into()))??;
    Ok(enters)
}
