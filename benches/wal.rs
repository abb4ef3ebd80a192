//! WAL benchmark: appends per second and fdatasync latency for batches of 1, 16 and 256 entries,
//! printed beside a plain `pwrite` + `fdatasync` loop writing the same bytes, measured in the same
//! run on the same disk (into a fallocated file and into a zero-filled one).
//!
//! `cargo bench --bench wal` (set `AURORA_BENCH_DIR` to measure another disk; the default is the
//! system temporary directory). Each configuration runs for `AURORA_BENCH_SECONDS` (default 2)
//! or 2000 batches, whichever ends first.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use aurora::runtime::{Clock, MonotonicClock};
use aurora::storage::{Durability, EntryRef, HardState, Wal, WalOptions};
use hdrhistogram::Histogram;

const ENTRY_BYTES: usize = 64;
const BATCHES_MAX: u64 = 2000;
const SEGMENT_BYTES: u64 = 64 << 20;
const BUFFER_BYTES: usize = 4 << 20;
/// Bytes one entry adds to a batch: entry prefix (term, kind, length) plus data.
const ENTRY_RECORD_BYTES: usize = 13 + ENTRY_BYTES;

fn run_for() -> Duration {
    let seconds = std::env::var("AURORA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(seconds)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn us(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// What one configuration measured.
struct Measured {
    batches: u64,
    entries_per_s: f64,
    latency: Histogram<u64>,
}

/// Appends `batch` entries, sets the hard state, flushes with sync and waits, until time is up.
fn measure_wal(dir: &Path, durability: Durability, batch: usize) -> Measured {
    let mut wal = Wal::open(
        dir,
        WalOptions {
            durability,
            segment_bytes: SEGMENT_BYTES,
            buffer_bytes: BUFFER_BYTES,
        },
    )
    .expect("open the WAL");
    let payload = [0xA5u8; ENTRY_BYTES];
    let mut clock = MonotonicClock;
    let mut latency = histogram();
    let mut next_index = 1u64;
    let deadline = Instant::now() + run_for();
    let started = Instant::now();
    let mut batches = 0;
    while batches < BATCHES_MAX && Instant::now() < deadline {
        let first = next_index;
        wal.append_entries(
            first,
            (0..batch).map(|_| EntryRef {
                term: 1,
                kind: 0,
                data: &payload,
            }),
        )
        .expect("append");
        next_index += batch as u64;
        wal.set_hard_state(HardState {
            term: 1,
            vote: Some(1),
            commit: first,
        })
        .expect("hard state");
        let submitted_ns = clock.now_ns();
        let seq = wal.flush(true, submitted_ns).expect("flush");
        let durable = wal.wait_durable(seq).expect("durable");
        let waited_ns = clock.now_ns() - submitted_ns;
        latency
            .record(durable.sync_latency_ns.unwrap_or(waited_ns).max(1))
            .expect("in range");
        batches += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    wal.wait_idle().expect("idle");
    Measured {
        batches,
        entries_per_s: (batches * batch as u64) as f64 / elapsed,
        latency,
    }
}

/// Group commit under a flush per entry that never waits: how many entries ride one fdatasync.
fn measure_group_commit(dir: &Path) -> (f64, u64, u64) {
    let mut wal = Wal::open(
        dir,
        WalOptions {
            durability: Durability::Fsync,
            segment_bytes: SEGMENT_BYTES,
            buffer_bytes: BUFFER_BYTES,
        },
    )
    .expect("open the WAL");
    let payload = [0x5Au8; ENTRY_BYTES];
    let mut clock = MonotonicClock;
    let deadline = Instant::now() + run_for();
    let started = Instant::now();
    let mut next_index = 1u64;
    let mut last_seq = 0;
    let mut durable_index = 0;
    while Instant::now() < deadline {
        // Keep at most one full buffer ahead of the disk (backpressure would say the same).
        if wal.buffer_free_bytes() > 2 * ENTRY_RECORD_BYTES + 64 {
            wal.append_entries(
                next_index,
                [EntryRef {
                    term: 1,
                    kind: 0,
                    data: &payload,
                }],
            )
            .expect("append");
            next_index += 1;
            last_seq = wal.flush(true, clock.now_ns()).expect("flush");
        }
        if let Some(durable) = wal.poll(clock.now_ns()).expect("poll") {
            durable_index = durable.last.index;
        }
    }
    if last_seq > 0 {
        durable_index = wal.wait_durable(last_seq).expect("durable").last.index;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = wal.stats();
    (
        durable_index as f64 / elapsed,
        durable_index,
        stats.fdatasyncs,
    )
}

/// How the baseline file is prepared.
#[derive(Clone, Copy)]
enum Prepared {
    Fallocated,
    ZeroFilled,
}

/// The floor: `pwrite` of `len_bytes` then `fdatasync`, sequentially into a preallocated file.
fn measure_baseline(dir: &Path, len_bytes: usize, prepared: Prepared) -> Histogram<u64> {
    let path = dir.join("baseline.dat");
    let _ = std::fs::remove_file(&path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create baseline file");
    match prepared {
        Prepared::Fallocated => {
            // SAFETY: fallocate on a descriptor we own; no memory arguments.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, SEGMENT_BYTES as i64) };
            assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
        }
        Prepared::ZeroFilled => {
            let zeros = vec![0u8; 1 << 20];
            for chunk in 0..(SEGMENT_BYTES >> 20) {
                file.write_all_at(&zeros, chunk << 20).expect("zero fill");
            }
        }
    }
    file.sync_all().expect("sync");
    let bytes = vec![0xC3u8; len_bytes];
    let mut latency = histogram();
    let mut clock = MonotonicClock;
    let mut offset = 0u64;
    let deadline = Instant::now() + run_for();
    let mut ops = 0;
    while ops < BATCHES_MAX
        && Instant::now() < deadline
        && offset + len_bytes as u64 <= SEGMENT_BYTES
    {
        let start_ns = clock.now_ns();
        file.write_all_at(&bytes, offset).expect("pwrite");
        file.sync_data().expect("fdatasync");
        latency
            .record((clock.now_ns() - start_ns).max(1))
            .expect("in range");
        offset += len_bytes as u64;
        ops += 1;
    }
    drop(file);
    std::fs::remove_file(&path).expect("remove baseline file");
    latency
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let base = std::env::var_os("AURORA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::tempdir_in(&base).expect("scratch directory");
    println!(
        "WAL benchmark: segments {} MiB, buffers {} MiB, entries of {ENTRY_BYTES} B, in {} \
         (each row: up to {BATCHES_MAX} batches or {:.1} s)",
        SEGMENT_BYTES >> 20,
        BUFFER_BYTES >> 20,
        base.display(),
        run_for().as_secs_f64()
    );
    println!(
        "{:<10} {:>6} {:>8} {:>12} {:>11} {:>11} | {:>22} | {:>22}",
        "durability",
        "batch",
        "batches",
        "entries/s",
        "sync p50us",
        "sync p99us",
        "baseline fallocated p50/p99",
        "baseline zero-filled p50/p99"
    );
    for (run, batch) in [1usize, 16, 256].into_iter().enumerate() {
        let dir = scratch.path().join(format!("fsync-{run}"));
        let wal = measure_wal(&dir, Durability::Fsync, batch);
        // The same bytes per sync as the WAL's batch: entries record, hard state, rounded up.
        let batch_bytes = 9 + 12 + batch * ENTRY_RECORD_BYTES + 34;
        let fallocated = measure_baseline(scratch.path(), batch_bytes, Prepared::Fallocated);
        let zero_filled = measure_baseline(scratch.path(), batch_bytes, Prepared::ZeroFilled);
        println!(
            "{:<10} {:>6} {:>8} {:>12.0} {:>11.1} {:>11.1} | {:>10.1} / {:>9.1} | {:>10.1} / {:>9.1}",
            Durability::Fsync,
            batch,
            wal.batches,
            wal.entries_per_s,
            us(&wal.latency, 0.5),
            us(&wal.latency, 0.99),
            us(&fallocated, 0.5),
            us(&fallocated, 0.99),
            us(&zero_filled, 0.5),
            us(&zero_filled, 0.99),
        );
    }
    for (run, batch) in [1usize, 16, 256].into_iter().enumerate() {
        let dir = scratch.path().join(format!("memory-{run}"));
        let wal = measure_wal(&dir, Durability::Memory, batch);
        println!(
            "{:<10} {:>6} {:>8} {:>12.0} {:>11} {:>11} | (no disk I/O for entries)",
            Durability::Memory,
            batch,
            wal.batches,
            wal.entries_per_s,
            "-",
            "-",
        );
    }
    let (entries_per_s, entries, fdatasyncs) =
        measure_group_commit(&scratch.path().join("group-commit"));
    println!(
        "group commit (fsync): one flush per entry, never waiting: {entries_per_s:.0} entries/s, \
         {entries} entries durable with {fdatasyncs} fdatasyncs ({:.1} entries per fdatasync)",
        entries as f64 / fdatasyncs.max(1) as f64
    );
}
