//! `cargo bench --bench server`: commit latency of a 3-node cluster on loopback (in one process,
//! one node thread each), memory and fsync durability, one client, 64-byte values — beside a raw
//! TCP round trip (blocking echo of a frame of the same size) measured in the same run, in
//! alternating blocks so background load hits both alike.
//!
//! Environment: AURORA_BENCH_PUTS (memory-mode puts, default 20000; fsync runs a tenth),
//! AURORA_BENCH_BLOCKS (default 10), AURORA_BENCH_SPIN_US (node spin before parking, default 0).

#[path = "../tests/server_support/mod.rs"]
mod server_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use server_support::{Client, Cluster};

const VALUE_BYTES: usize = 64;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(100, 10_000_000_000, 3).expect("static bounds")
}

/// A blocking echo server: reads a fixed-size message, writes it back.
fn echo_server(len: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut buf = vec![0u8; len];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    });
    addr
}

/// Raw TCP round trips of `len` bytes, `n` times, into `h`.
fn raw_block(stream: &mut TcpStream, len: usize, n: u64, h: &mut Histogram<u64>) {
    let mut buf = vec![0u8; len];
    for _ in 0..n {
        let start = Instant::now();
        stream.write_all(&buf).expect("echo write");
        stream.read_exact(&mut buf).expect("echo read");
        h.record(start.elapsed().as_nanos() as u64)
            .expect("in range");
    }
}

/// Sequential puts; a put refused by the server (leadership moved under a loaded machine) is not
/// recorded: the client reconnects to the new leader and the change is counted.
fn put_block(
    cluster: &Cluster,
    client: &mut Client,
    n: u64,
    h: &mut Histogram<u64>,
    next_key: &mut u64,
    leader_changes: &mut u64,
) {
    let value = [0x5Au8; VALUE_BYTES];
    for _ in 0..n {
        let key = format!("bench/{:08}", *next_key % 1000);
        *next_key += 1;
        let start = Instant::now();
        match client.put(&key, &value).expect("put io") {
            Ok(resp) => {
                h.record(start.elapsed().as_nanos() as u64)
                    .expect("in range");
                assert!(resp.result.is_ok(), "{resp:?}");
            }
            Err(_) => {
                *leader_changes += 1;
                let leader = cluster.wait_leader(Duration::from_secs(10));
                *client = Client::connect(cluster.client_addr(leader)).expect("reconnect");
            }
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

struct Row {
    mode: &'static str,
    leader_changes: u64,
    commit: Histogram<u64>,
    raw: Histogram<u64>,
}

fn run_mode(mode: &'static str, puts: u64, blocks: u64) -> Row {
    let cluster = Cluster::start(3, mode);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut client = Client::connect(cluster.client_addr(leader)).expect("connect");
    // The same frame size as a 64-byte put request: header + envelope + store encoding.
    let frame_len = 56 + 6 + 1 + 26 + 1 + 4 + 13 + 4 + VALUE_BYTES + 8 + 4;
    let mut raw_stream = TcpStream::connect(echo_server(frame_len)).expect("echo");
    raw_stream.set_nodelay(true).expect("nodelay");
    let mut key = 0;
    let mut leader_changes = 0;
    let mut warm = histogram();
    put_block(
        &cluster,
        &mut client,
        puts / 10,
        &mut warm,
        &mut key,
        &mut leader_changes,
    );
    raw_block(&mut raw_stream, frame_len, puts / 10, &mut warm);
    let mut commit = histogram();
    let mut raw = histogram();
    for _ in 0..blocks {
        raw_block(&mut raw_stream, frame_len, puts / blocks, &mut raw);
        put_block(
            &cluster,
            &mut client,
            puts / blocks,
            &mut commit,
            &mut key,
            &mut leader_changes,
        );
    }
    Row {
        mode,
        leader_changes,
        commit,
        raw,
    }
}

fn main() {
    let puts = env("AURORA_BENCH_PUTS", 20_000);
    let blocks = env("AURORA_BENCH_BLOCKS", 10).max(1);
    println!(
        "aurora server bench: 3 nodes on loopback in one process, 1 client, {VALUE_BYTES} B values, \
         sequential puts (commit = request sent -> response received, after apply on the leader)"
    );
    println!(
        "baseline: raw TCP round trip of a same-size frame to a blocking echo thread, same run, \
         alternating blocks; cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rows = [
        run_mode("memory", puts, blocks),
        run_mode("fsync", (puts / 10).max(blocks), blocks),
    ];
    println!(
        "{:<8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8}",
        "mode",
        "puts",
        "p50 us",
        "p99 us",
        "p999 us",
        "raw p50",
        "raw p99",
        "p50/raw",
        "p99/raw",
        "elected"
    );
    for r in &rows {
        let (p50, p99, p999) = (
            r.commit.value_at_quantile(0.5),
            r.commit.value_at_quantile(0.99),
            r.commit.value_at_quantile(0.999),
        );
        let (r50, r99) = (r.raw.value_at_quantile(0.5), r.raw.value_at_quantile(0.99));
        println!(
            "{:<8} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.2} {:>9.2} {:>8}",
            r.mode,
            r.commit.len(),
            us(p50),
            us(p99),
            us(p999),
            us(r50),
            us(r99),
            p50 as f64 / r50 as f64,
            p99 as f64 / r99 as f64,
            r.leader_changes
        );
    }
}
