//! `aurora dpdk-ping`: one side of a two-process ping-pong over a DPDK device, for the rigs and
//! hack/bench-dpdk.sh.
//!
//! The client (node 1) sends a Ping frame with correlation id `i` and a payload derived from `i`,
//! waits for the Pong, and checks both (in order, exactly once, intact), `warmup + round_trips`
//! times; it records every measured round trip in an HDR histogram and prints one JSON line. The
//! server (node 2) answers each Ping with a Pong carrying the same correlation id and payload,
//! and exits once the last Pong is acknowledged. With `--test-drop-one-in N` each side's transport
//! discards each segment it sends with probability 1/N, so the run proves retransmission end to end.
//! `--spin` polls without pause (production); without it the loop yields the CPU between empty
//! polls, what adaptive polling does once its spin budget is spent, so two or three processes
//! share a two-core box.

use super::datagram::{DatagramConfig, DatagramTransport};
use super::eal::{Eal, EalSpec};
use super::ethdev::{EthPort, PortSpec};
use super::node::{vdev_name, DpdkOptions, DpdkTransport};
use super::packet::Endpoint;
use crate::transport::{Event, Remote, Transport};
use crate::wire::{encode_payload, FrameKind, HeaderFields, HEADER_LEN};
use hdrhistogram::Histogram;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const CLUSTER: u64 = 0xD9D7_0001;
const SECRET: &[u8] = b"aurora dpdk ping-pong rig secret";
const CLIENT: u64 = 1;
const SERVER: u64 = 2;

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Client,
    Server,
}

/// Arguments of `aurora dpdk-ping`.
#[derive(Debug, Clone, clap::Args)]
pub struct PingArgs {
    #[arg(long, value_enum)]
    pub role: Role,
    /// The vdev of this process, e.g. `net_memif0,role=server,socket=/tmp/a.sock`.
    #[arg(long)]
    pub vdev: String,
    /// `--file-prefix` of this process's EAL (distinct per process).
    #[arg(long)]
    pub file_prefix: String,
    /// Extra EAL arguments (repeat), e.g. `--eal-arg=--no-huge --eal-arg=-m --eal-arg=256`.
    #[arg(long = "eal-arg", allow_hyphen_values = true)]
    pub eal_args: Vec<String>,
    /// Pin EAL's main lcore (and so this process) to this core.
    #[arg(long)]
    pub core: Option<usize>,
    #[arg(long, default_value_t = 100_000)]
    pub round_trips: u64,
    #[arg(long, default_value_t = 10_000)]
    pub warmup: u64,
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Test-only: this side's transport discards each segment it sends with probability 1/N.
    #[arg(long, default_value_t = 0)]
    pub test_drop_one_in: u64,
    /// Poll without yielding the CPU between empty polls.
    #[arg(long)]
    pub spin: bool,
    /// Give up when the peer is not up (or a round trip does not finish) within this long.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
}

fn endpoint(node: u64) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0xD9, 0, node as u8],
        ip: Ipv4Addr::new(10, 99, 0, node as u8),
        udp_port: 9000 + node as u16,
    }
}

/// Runs one side; returns the exit code (errors are printed).
pub fn run(args: &PingArgs) -> i32 {
    match side(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dpdk-ping ({:?}): {e}", args.role);
            1
        }
    }
}

fn open(args: &PingArgs) -> Result<DpdkTransport, String> {
    let spec = EalSpec {
        file_prefix: args.file_prefix.clone(),
        cores: args.core.into_iter().collect(),
        vdevs: vec![args.vdev.clone()],
        extra_args: args.eal_args.clone(),
    };
    let eal = Eal::init(&spec).map_err(|e| e.to_string())?;
    let opts = DpdkOptions::default();
    let port = EthPort::open(
        eal,
        &PortSpec {
            name: vdev_name(&args.vdev).to_string(),
            mbufs: opts.mbufs,
            rx_desc: 1024,
            tx_desc: 1024,
            link_timeout_ms: args.timeout_ms as u32,
        },
    )
    .map_err(|e| e.to_string())?;
    let (me, peer) = match args.role {
        Role::Client => (CLIENT, SERVER),
        Role::Server => (SERVER, CLIENT),
    };
    DatagramTransport::new(
        vec![port],
        DatagramConfig {
            node_id: me,
            cluster_id: CLUSTER,
            secret: SECRET.to_vec(),
            local: endpoint(me),
            peers: vec![(peer, endpoint(peer))],
            session: opts.session,
            slab_bytes: opts.slab_bytes,
            pool_slabs: 1024,
            rx_burst: opts.rx_burst,
            max_payload_len_bytes: 1 << 20,
            test_drop_one_in: args.test_drop_one_in,
        },
    )
    .map_err(|e| e.to_string())
}

struct Clock(Instant);

impl Clock {
    fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Polls between two clock reads while waiting: a clock read costs about as much as an empty
/// poll on this VM, and timeouts (milliseconds) do not need a fresher clock.
const POLLS_PER_CLOCK_READ: u32 = 64;

fn idle(args: &PingArgs, appended: usize) {
    if appended == 0 && !args.spin {
        std::thread::yield_now();
    }
}

fn pattern(i: u64, payload: &mut [u8]) {
    for (k, b) in payload.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(k as u8);
    }
}

fn side(args: &PingArgs) -> Result<(), String> {
    if args.payload_bytes + HEADER_LEN > 1400 {
        return Err(format!(
            "payload of {} B does not fit one datagram; use at most {}",
            args.payload_bytes,
            1400 - HEADER_LEN
        ));
    }
    let mut t = open(args)?;
    let clock = Clock(Instant::now());
    let peer = match args.role {
        Role::Client => SERVER,
        Role::Server => CLIENT,
    };
    let mut events: Vec<Event> = Vec::with_capacity(256);
    let deadline = |start: u64| start + args.timeout_ms * 1_000_000;
    // Wait for the session.
    let start = clock.ns();
    let mut up = false;
    while !up {
        let n = t.poll(clock.ns(), &mut events).map_err(|e| e.to_string())?;
        // Keep what came after PeerUp (the first Ping can arrive in the same poll).
        match events
            .iter()
            .position(|e| matches!(e, Event::PeerUp { remote: Remote::Peer(p) } if *p == peer))
        {
            Some(i) => {
                events.drain(..=i);
                up = true;
            }
            None => events.clear(),
        }
        idle(args, n);
        if clock.ns() > deadline(start) {
            return Err(format!(
                "peer {peer} did not come up in {} ms",
                args.timeout_ms
            ));
        }
    }
    let result = match args.role {
        Role::Client => client(args, &mut t, &clock, &mut events),
        Role::Server => server(args, &mut t, &clock, &mut events),
    };
    result.map_err(|e| format!("{e}; transport counters: {}", counters(&t)))
}

/// Every non-zero counter, for error messages.
fn counters(t: &DpdkTransport) -> String {
    let s = t.datagram_stats();
    let mut out: Vec<String> = s
        .drops_by_reason()
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!("{label}={n}"))
        .collect();
    out.push(format!("rx_frames={}", s.rx_frames));
    out.push(format!("tx_segments={}", s.tx_segments));
    out.push(format!("tx_device_full={}", s.tx_device_full));
    out.push(format!("retransmitted={}", t.retransmitted_frames()));
    if let Some(d) = t.ports()[0].device_stats() {
        out.push(format!(
            "device ipackets={} opackets={} ierrors={} oerrors={} imissed={} rx_nombuf={}",
            d.ipackets, d.opackets, d.ierrors, d.oerrors, d.imissed, d.rx_nombuf
        ));
    }
    out.join(" ")
}

fn client(
    args: &PingArgs,
    t: &mut DpdkTransport,
    clock: &Clock,
    events: &mut Vec<Event>,
) -> Result<(), String> {
    let mut hist = Histogram::<u64>::new_with_bounds(10, 10_000_000_000, 3).expect("static bounds");
    let total = args.warmup + args.round_trips;
    let mut expected = vec![0u8; args.payload_bytes];
    let run_start = Instant::now();
    for i in 0..total {
        let mut buf = t.buffers().take().map_err(|e| e.to_string())?;
        let fields = HeaderFields {
            kind: FrameKind::Ping,
            cluster_id: CLUSTER,
            from: CLIENT,
            to: SERVER,
            term: 0,
            correlation_id: i,
        };
        pattern(i, &mut expected);
        let len = encode_payload(buf.slab_mut(), &fields, &expected).map_err(|e| e.to_string())?;
        buf.set_len(len);
        let sent_at = Instant::now();
        t.send(Remote::Peer(SERVER), buf)
            .map_err(|e| e.to_string())?;
        let start = clock.ns();
        let mut now = start;
        let mut polls = 0u32;
        let mut done = false;
        while !done {
            let n = t.poll(now, events).map_err(|e| e.to_string())?;
            polls += 1;
            if polls % POLLS_PER_CLOCK_READ == 0 {
                now = clock.ns();
            }
            for e in events.drain(..) {
                match e {
                    Event::Received { buf, .. } => {
                        let bytes = buf.as_slice();
                        let corr = u64::from_le_bytes(bytes[48..56].try_into().expect("header"));
                        if corr != i || bytes[HEADER_LEN..] != expected[..] {
                            return Err(format!(
                                "round trip {i}: got correlation {corr} with {} payload bytes \
                                 ({}) — out of order, duplicated or corrupt",
                                bytes.len() - HEADER_LEN,
                                if bytes[HEADER_LEN..] == expected[..] {
                                    "intact"
                                } else {
                                    "different"
                                }
                            ));
                        }
                        done = true;
                    }
                    Event::PeerDown { reason, .. } => {
                        return Err(format!("round trip {i}: server went down: {reason}"))
                    }
                    _ => {}
                }
            }
            idle(args, n);
            if !done && now > start + args.timeout_ms * 1_000_000 {
                return Err(format!(
                    "round trip {i} did not finish in {} ms",
                    args.timeout_ms
                ));
            }
        }
        if i >= args.warmup {
            hist.saturating_record(sent_at.elapsed().as_nanos() as u64);
        }
    }
    let elapsed = run_start.elapsed();
    // Linger so the server's last Pong is acknowledged even if our ack was lost.
    let linger = Instant::now();
    while linger.elapsed() < Duration::from_millis(300) {
        let n = t.poll(clock.ns(), events).map_err(|e| e.to_string())?;
        events.clear();
        idle(args, n);
    }
    let s = t.datagram_stats();
    println!(
        "{}",
        serde_json::json!({
            "impl": "aurora",
            "payload_bytes": args.payload_bytes,
            "frame_bytes": super::packet::frame_len(super::session::SEGMENT_HEADER_LEN + HEADER_LEN + args.payload_bytes),
            "round_trips": args.round_trips,
            "p50_ns": hist.value_at_quantile(0.5),
            "p99_ns": hist.value_at_quantile(0.99),
            "p999_ns": hist.value_at_quantile(0.999),
            "max_ns": hist.max(),
            "elapsed_s": elapsed.as_secs_f64(),
            "retransmitted_frames": t.retransmitted_frames(),
            "test_dropped": s.tx_test_dropped,
            "drops": s.drops_by_reason().filter(|(_, n)| *n > 0).collect::<std::collections::BTreeMap<_, _>>(),
            "spin": args.spin,
        })
    );
    Ok(())
}

fn server(
    args: &PingArgs,
    t: &mut DpdkTransport,
    clock: &Clock,
    events: &mut Vec<Event>,
) -> Result<(), String> {
    let total = args.warmup + args.round_trips;
    let mut answered = 0u64;
    let mut completed = 0u64;
    let mut payload = [0u8; 2048];
    let mut now = clock.ns();
    let mut last_progress = now;
    let mut polls = 0u32;
    while completed < total {
        let n = t.poll(now, events).map_err(|e| e.to_string())?;
        polls += 1;
        if polls % POLLS_PER_CLOCK_READ == 0 {
            now = clock.ns();
        }
        for e in events.drain(..) {
            match e {
                Event::Received { mut buf, .. } => {
                    let bytes = buf.as_slice();
                    let corr = u64::from_le_bytes(bytes[48..56].try_into().expect("header"));
                    if corr != answered {
                        return Err(format!("expected ping {answered}, got {corr}"));
                    }
                    let len = bytes.len() - HEADER_LEN;
                    payload[..len].copy_from_slice(&bytes[HEADER_LEN..]);
                    let fields = HeaderFields {
                        kind: FrameKind::Pong,
                        cluster_id: CLUSTER,
                        from: SERVER,
                        to: CLIENT,
                        term: 0,
                        correlation_id: corr,
                    };
                    let len = encode_payload(buf.slab_mut(), &fields, &payload[..len])
                        .map_err(|e| e.to_string())?;
                    buf.set_len(len);
                    t.send(Remote::Peer(CLIENT), buf)
                        .map_err(|e| e.to_string())?;
                    answered += 1;
                }
                Event::SendComplete { .. } => completed += 1,
                Event::PeerDown { reason, .. } => {
                    return Err(format!(
                        "after {answered} pings the client went down: {reason}"
                    ))
                }
                _ => {}
            }
            last_progress = now;
        }
        idle(args, n);
        if now > last_progress + args.timeout_ms * 1_000_000 {
            return Err(format!(
                "no progress for {} ms after {answered} pings ({completed} pongs acknowledged)",
                args.timeout_ms
            ));
        }
    }
    let s = t.datagram_stats();
    eprintln!(
        "dpdk-ping server: {answered} pongs acknowledged, {} retransmitted, {} dropped by the test knob",
        t.retransmitted_frames(),
        s.tx_test_dropped
    );
    Ok(())
}
