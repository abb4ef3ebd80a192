//! WAL benchmark: appends per second and fdatasync latency for batches of 1, 16 and 256 entries,
//! beside a plain `pwrite` + `fdatasync` loop writing the same bytes per sync.
//!
//! Disk latency on a shared virtual disk drifts by an order of magnitude within seconds, so the
//! three arms of a row run interleaved, one operation each in turn, on the same file system: the
//! WAL (append, hard state, flush with sync, wait), the baseline into a fallocated file, and the
//! baseline into a zero-filled file. What differs between them is the code, not the moment.
//!
//! `cargo bench --bench wal` (set `AURORA_BENCH_DIR` to measure another disk; the default is the
//! system temporary directory). Each row runs for `AURORA_BENCH_SECONDS` (default 3) or 2000
//! rounds, whichever ends first.

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
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn us(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// One arm's measurements in a row.
struct Arm {
    latency: Histogram<u64>,
    busy_ns: u64,
}

impl Arm {
    fn new() -> Self {
        Self {
            latency: histogram(),
            busy_ns: 0,
        }
    }

    fn record(&mut self, latency_ns: u64, busy_ns: u64) {
        self.latency.record(latency_ns.max(1)).expect("in range");
        self.busy_ns += busy_ns;
    }
}

fn open_wal(dir: &Path, durability: Durability) -> Wal {
    Wal::open(
        dir,
        WalOptions {
            durability,
            segment_bytes: SEGMENT_BYTES,
            buffer_bytes: BUFFER_BYTES,
        },
    )
    .expect("open the WAL")
}

/// One WAL batch: `batch` entries and a hard state, flushed with sync, waited for. Returns the
/// sync latency the WAL reports and the wall time of the whole round.
fn wal_round(
    wal: &mut Wal,
    clock: &mut MonotonicClock,
    batch: usize,
    payload: &[u8],
) -> (u64, u64) {
    let first = wal.last().index + 1;
    let started_ns = clock.now_ns();
    wal.append_entries(
        first,
        (0..batch).map(|_| EntryRef {
            term: 1,
            kind: 0,
            data: payload,
        }),
    )
    .expect("append");
    wal.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
        commit: first,
    })
    .expect("hard state");
    let seq = wal.flush(true, clock.now_ns()).expect("flush");
    let durable = wal.wait_durable(seq).expect("durable");
    let round_ns = clock.now_ns() - started_ns;
    (durable.sync_latency_ns.unwrap_or(round_ns), round_ns)
}

/// A file prepared like a WAL segment, for the plain `pwrite` + `fdatasync` baseline.
struct BaselineFile {
    file: std::fs::File,
    offset: u64,
}

impl BaselineFile {
    fn create(path: &Path, prepared: Prepared) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
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
        Self { file, offset: 0 }
    }

    /// One `pwrite` of `bytes` at the end of what was written, then `fdatasync`; its wall time.
    fn round(&mut self, clock: &mut MonotonicClock, bytes: &[u8]) -> u64 {
        if self.offset + bytes.len() as u64 > SEGMENT_BYTES {
            self.offset = 0;
        }
        let started_ns = clock.now_ns();
        self.file.write_all_at(bytes, self.offset).expect("pwrite");
        self.file.sync_data().expect("fdatasync");
        self.offset += bytes.len() as u64;
        clock.now_ns() - started_ns
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

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let base = std::env::var_os("AURORA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::tempdir_in(&base).expect("scratch directory");
    println!(
        "WAL benchmark: segments {} MiB, buffers {} MiB, entries of {ENTRY_BYTES} B, in {}; \
         each row interleaves its arms for up to {BATCHES_MAX} rounds or {:.1} s",
        SEGMENT_BYTES >> 20,
        BUFFER_BYTES >> 20,
        base.display(),
        run_for().as_secs_f64()
    );
    println!(
        "{:<10} {:>5} {:>7} {:>11} {:>10} {:>10} | {:>26} | {:>26}",
        "durability",
        "batch",
        "rounds",
        "entries/s",
        "sync p50us",
        "sync p99us",
        "pwrite+fdatasync fallocated",
        "pwrite+fdatasync zero-fill"
    );
    let mut clock = MonotonicClock;
    let payload = [0xA5u8; ENTRY_BYTES];
    for (row, batch) in [1usize, 16, 256].into_iter().enumerate() {
        let mut wal = open_wal(
            &scratch.path().join(format!("fsync-{row}")),
            Durability::Fsync,
        );
        let mut fallocated = BaselineFile::create(
            &scratch.path().join(format!("fallocated-{row}")),
            Prepared::Fallocated,
        );
        let mut zero_filled = BaselineFile::create(
            &scratch.path().join(format!("zero-filled-{row}")),
            Prepared::ZeroFilled,
        );
        // The same bytes per sync as the WAL's batch: entries record and hard-state record.
        let bytes = vec![0xC3u8; 9 + 12 + batch * ENTRY_RECORD_BYTES + 34];
        let (mut wal_arm, mut fallocated_arm, mut zero_arm) = (Arm::new(), Arm::new(), Arm::new());
        let deadline = Instant::now() + run_for();
        let mut rounds = 0;
        while rounds < BATCHES_MAX && Instant::now() < deadline {
            let (sync_ns, round_ns) = wal_round(&mut wal, &mut clock, batch, &payload);
            wal_arm.record(sync_ns, round_ns);
            let ns = fallocated.round(&mut clock, &bytes);
            fallocated_arm.record(ns, ns);
            let ns = zero_filled.round(&mut clock, &bytes);
            zero_arm.record(ns, ns);
            rounds += 1;
        }
        wal.wait_idle().expect("idle");
        println!(
            "{:<10} {:>5} {:>7} {:>11.0} {:>10.1} {:>10.1} | {:>12.1} / {:>11.1} | {:>12.1} / {:>11.1}",
            wal.durability(),
            batch,
            rounds,
            (rounds * batch as u64) as f64 * 1e9 / wal_arm.busy_ns as f64,
            us(&wal_arm.latency, 0.5),
            us(&wal_arm.latency, 0.99),
            us(&fallocated_arm.latency, 0.5),
            us(&fallocated_arm.latency, 0.99),
            us(&zero_arm.latency, 0.5),
            us(&zero_arm.latency, 0.99),
        );
    }
    for (row, batch) in [1usize, 16, 256].into_iter().enumerate() {
        let mut wal = open_wal(
            &scratch.path().join(format!("memory-{row}")),
            Durability::Memory,
        );
        let mut arm = Arm::new();
        for _ in 0..BATCHES_MAX {
            let (_, round_ns) = wal_round(&mut wal, &mut clock, batch, &payload);
            arm.record(round_ns, round_ns);
        }
        println!(
            "{:<10} {:>5} {:>7} {:>11.0} {:>10} {:>10} | entries are not written; the hard state's term and vote are",
            wal.durability(),
            batch,
            BATCHES_MAX,
            (BATCHES_MAX * batch as u64) as f64 * 1e9 / arm.busy_ns as f64,
            "-",
            "-",
        );
    }
    let (entries_per_s, entries, fdatasyncs) =
        measure_group_commit(&scratch.path().join("group-commit"));
    println!(
        "group commit (fsync): a flush after every entry, never waiting: {entries_per_s:.0} \
         entries/s, {entries} entries durable with {fdatasyncs} fdatasyncs ({:.0} entries per \
         fdatasync)",
        entries as f64 / fdatasyncs.max(1) as f64
    );
}
