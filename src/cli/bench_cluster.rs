//! `aurora bench [--clients N] [--inflight N] [--value-size B] [--duration S] [--json]`: commit
//! latency and throughput of puts against a running cluster, beside a raw TCP round trip measured
//! in the same run.
//!
//! Each client thread has its own [`Client`] (own connection and session) and keeps `--inflight`
//! puts on the wire; a put's latency runs from submission to its answer (committed and applied
//! on the leader), recorded in an HDR histogram that never allocates. The first second is warm-up
//! and not recorded.
//!
//! The baseline is the floor any request/response over loopback TCP pays: two threads with
//! blocking sockets (TCP_NODELAY, as the client uses) bouncing frames of the same size as a put
//! request, run for one second before and one second after the cluster phase so both see the same
//! machine. On a laptop both sides share the cores with the nodes under test: compare ratios,
//! not absolute numbers, across machines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::Args;

use super::connect::{fail, ClientArgs};
use super::status::durability_name;
use crate::client::{Client, ClientError, NodeRole, Ticket};
use crate::metrics::LatencyHistogram;
use crate::store::{codec, Command, PutRequest, Request, SessionHeader};
use crate::wire::HEADER_LEN;

/// Warm-up before recording (connections, sessions, caches, the leader's batches).
const WARMUP: Duration = Duration::from_secs(1);
/// Length of each raw-TCP baseline phase.
const BASELINE_PHASE: Duration = Duration::from_secs(1);
/// Keys each client cycles through (bounds the store's size during long runs).
const KEYS_PER_CLIENT: u64 = 1024;
/// Client protocol bytes around a store request: version, op, deadline, consistency.
const ENVELOPE_BYTES: usize = 7;

#[derive(Debug, Args)]
pub struct ClusterBenchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Client threads, each with its own connection and session.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Puts each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Seconds of measurement (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Latency quantiles in nanoseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Quantiles {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub count: u64,
}

impl Quantiles {
    fn of(h: &LatencyHistogram) -> Self {
        let q = |x| h.quantile_ns(x).unwrap_or(0);
        Self {
            p50_ns: q(0.5),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            count: h.count(),
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub durability: String,
    pub leader: String,
    pub clients: usize,
    pub inflight: usize,
    pub value_bytes: usize,
    pub duration_s: f64,
    pub commits: u64,
    pub commits_per_s: f64,
    pub errors: u64,
    pub commit: Quantiles,
    pub raw_tcp_frame_bytes: usize,
    pub raw_tcp_rtt: Quantiles,
    /// A status request to the leader through the client library: the node's client path
    /// without consensus, to split the commit latency into transport, node and replication.
    pub status_rtt: Quantiles,
    pub ratio_p50: f64,
    pub ratio_p99: f64,
}

pub fn run(args: &ClusterBenchArgs) -> i32 {
    match bench(args) {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("the report serializes")
                );
            } else {
                print!("{}", text(&report));
            }
            0
        }
        Err(e) => fail("bench", &e),
    }
}

fn bench(args: &ClusterBenchArgs) -> Result<Report, ClientError> {
    let opts = args.client.options()?;
    let clients = args.clients.max(1);
    let inflight = args.inflight.clamp(1, opts.max_in_flight);
    // Find the leader once, so the report names it and its durability mode.
    let mut probe = Client::connect(opts.clone())?;
    probe.put(b"bench/probe", b"")?;
    let status = probe.status()?;
    if status.role != NodeRole::Leader {
        return Err(ClientError::UnexpectedReply {
            expected: "the leader's status",
            got: format!(
                "{:?} (the leader moved during set-up; run again)",
                status.role
            ),
        });
    }
    let leader = probe
        .connected_to()
        .map_or_else(String::new, |a| a.to_string());
    let mut status_rtt = LatencyHistogram::new();
    let status_end = Instant::now() + BASELINE_PHASE;
    while Instant::now() < status_end {
        let t = Instant::now();
        probe.status()?;
        status_rtt.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    drop(probe);

    let frame_bytes = HEADER_LEN + ENVELOPE_BYTES + put_request_len(args.value_size);
    let mut rtt = LatencyHistogram::new();
    raw_tcp_rtt(frame_bytes, BASELINE_PHASE, &mut rtt)?;

    let duration = Duration::from_secs(args.duration.max(1));
    let value = vec![b'x'; args.value_size];
    let threads: Vec<_> = (0..clients)
        .map(|id| {
            let (opts, value) = (opts.clone(), value.clone());
            std::thread::spawn(move || client_loop(id, opts, inflight, &value, duration))
        })
        .collect();
    let mut commit = LatencyHistogram::new();
    let mut errors = 0;
    let mut measured = Duration::ZERO;
    for t in threads {
        let result = t.join().map_err(|_| ClientError::UnexpectedReply {
            expected: "a finished client thread",
            got: "a panic".to_owned(),
        })?;
        let (h, e, elapsed) = result?;
        commit.merge(&h);
        errors += e;
        measured = measured.max(elapsed);
    }
    raw_tcp_rtt(frame_bytes, BASELINE_PHASE, &mut rtt)?;

    let c = Quantiles::of(&commit);
    let r = Quantiles::of(&rtt);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(Report {
        bench: "cluster_put",
        durability: durability_name(status.durability).to_owned(),
        leader,
        clients,
        inflight,
        value_bytes: args.value_size,
        duration_s: measured.as_secs_f64(),
        commits: c.count,
        commits_per_s: c.count as f64 / measured.as_secs_f64().max(1e-9),
        errors,
        commit: c,
        raw_tcp_frame_bytes: frame_bytes,
        raw_tcp_rtt: r,
        status_rtt: Quantiles::of(&status_rtt),
        ratio_p50: ratio(c.p50_ns, r.p50_ns),
        ratio_p99: ratio(c.p99_ns, r.p99_ns),
    })
}

/// The store-codec length of a put of `value_size` bytes under a 16-byte key, in a session.
fn put_request_len(value_size: usize) -> usize {
    let request = Request {
        session: SessionHeader {
            client_id: 1,
            seq: 1,
            acked_seq: 0,
        },
        command: Command::Put(PutRequest::new(vec![b'k'; 16], vec![b'x'; value_size])),
    };
    let mut bytes = Vec::new();
    codec::encode_request(&request, &mut bytes);
    bytes.len()
}

type ClientRun = Result<(LatencyHistogram, u64, Duration), ClientError>;

/// One client: `inflight` puts on the wire until `duration` after the warm-up.
fn client_loop(
    id: usize,
    opts: crate::client::ClientOptions,
    inflight: usize,
    value: &[u8],
    duration: Duration,
) -> ClientRun {
    let mut client = Client::connect(opts)?;
    let mut histogram = LatencyHistogram::new();
    let mut errors = 0u64;
    let mut sent_at: std::collections::HashMap<Ticket, Instant> =
        std::collections::HashMap::with_capacity(inflight);
    let started = Instant::now();
    let record_from = started + WARMUP;
    let end = record_from + duration;
    let mut n = 0u64;
    let mut submit = |client: &mut Client, sent_at: &mut std::collections::HashMap<_, _>| {
        let key = format!("bench/{id:04}/{:06}", n % KEYS_PER_CLIENT);
        n += 1;
        let ticket = client.submit(Command::Put(PutRequest::new(key.into_bytes(), value)))?;
        sent_at.insert(ticket, Instant::now());
        Ok::<(), ClientError>(())
    };
    for _ in 0..inflight {
        submit(&mut client, &mut sent_at)?;
    }
    while let Some((ticket, result)) = client.wait_any()? {
        let done = Instant::now();
        let sent = sent_at.remove(&ticket).expect("every ticket was recorded");
        match result {
            Ok(_) if sent >= record_from && done <= end => {
                histogram.record(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX));
            }
            Ok(_) => {}
            Err(_) => errors += 1,
        }
        if done < end {
            submit(&mut client, &mut sent_at)?;
        }
    }
    Ok((histogram, errors, Instant::now().min(end) - record_from))
}

/// Bounces `frame_bytes`-sized messages between two threads over loopback for `phase`, recording
/// every round trip.
fn raw_tcp_rtt(
    frame_bytes: usize,
    phase: Duration,
    into: &mut LatencyHistogram,
) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::Unreachable {
        endpoints: "127.0.0.1 (raw TCP baseline)".to_owned(),
        last: e.to_string(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr: SocketAddr = listener.local_addr().map_err(io)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; frame_bytes];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(());
            }
            s.write_all(&buf)?;
        }
    });
    let mut s = TcpStream::connect(addr).map_err(io)?;
    s.set_nodelay(true).map_err(io)?;
    let mut buf = vec![7u8; frame_bytes];
    let started = Instant::now();
    let record_from = started + phase / 5;
    while started.elapsed() < phase {
        let t = Instant::now();
        s.write_all(&buf).map_err(io)?;
        s.read_exact(&mut buf).map_err(io)?;
        if t >= record_from {
            into.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }
    drop(s);
    let _ = echo.join();
    Ok(())
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

pub fn text(r: &Report) -> String {
    format!(
        "aurora bench: puts against leader {} (durability {}), {} client(s) x {} in flight, \
         {} B values, {:.1} s measured after 1 s warm-up\n\
         commit latency   p50 {:>10}  p99 {:>10}  p99.9 {:>10}  ({} commits, {:.0} commits/s, {} errors)\n\
         raw TCP RTT      p50 {:>10}  p99 {:>10}  p99.9 {:>10}  (same run: loopback, blocking sockets, {} B frames)\n\
         status RTT       p50 {:>10}  p99 {:>10}  p99.9 {:>10}  (same run: client library + leader's client path, no consensus)\n\
         ratio commit/raw p50 {:.2}x  p99 {:.2}x  (goal, memory mode, 1 client, 64 B: p50 <= 3x, p99 <= 10x)\n",
        r.leader,
        r.durability,
        r.clients,
        r.inflight,
        r.value_bytes,
        r.duration_s,
        us(r.commit.p50_ns),
        us(r.commit.p99_ns),
        us(r.commit.p999_ns),
        r.commits,
        r.commits_per_s,
        r.errors,
        us(r.raw_tcp_rtt.p50_ns),
        us(r.raw_tcp_rtt.p99_ns),
        us(r.raw_tcp_rtt.p999_ns),
        r.raw_tcp_frame_bytes,
        us(r.status_rtt.p50_ns),
        us(r.status_rtt.p99_ns),
        us(r.status_rtt.p999_ns),
        r.ratio_p50,
        r.ratio_p99,
    )
}
