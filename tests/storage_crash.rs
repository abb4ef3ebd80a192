//! Crash tests: a child process runs a deterministic workload (appends, suffix overwrites, hard
//! states, snapshots and compaction, across segment rolls and deletions), records every write
//! reported durable in a side file, and aborts at one failpoint. The parent then recovers and
//! checks that
//!
//! - every acknowledged batch and snapshot is there, intact;
//! - nothing was invented: the recovered log is exactly the state after the last acknowledged
//!   batch plus a prefix of the operations of the one in flight;
//! - the WAL accepts new writes, which survive another recovery.
//!
//! Run with `cargo test --features failpoints --test storage_crash`.
#![cfg(feature = "failpoints")]

mod storage_common;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use aurora::storage::failpoint::{self, Failpoint};
use aurora::storage::{recover, Durability, Entry, HardState, LogPosition, StorageOptions};
use storage_common::{append, at, entry, flush_wait, options};

/// Names the failpoint, how many hits to skip, and the data directory, for the child.
const CHILD_ENV: &str = "AURORA_STORAGE_CRASH_CHILD";
const BATCHES: u64 = 200;
const ACKED_FILE: &str = "acknowledged";

fn storage_options() -> StorageOptions {
    StorageOptions {
        wal: options(Durability::Fsync, 16 * 1024, 4096),
        snapshots_kept: 2,
    }
}

/// One operation of the workload.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Entries `first ..= last` in `term` (an overwrite when `first` is at or below the end).
    Append {
        first: u64,
        last: u64,
        term: u64,
    },
    Hard(HardState),
    /// Save a snapshot at this position, then mark the WAL compacted up to it.
    Snapshot(LogPosition),
}

/// What the workload has written, as the WAL should recover it.
#[derive(Debug, Clone, Default)]
struct Model {
    /// `terms[i - 1]` is the term of entry `i`, compacted ones included.
    terms: Vec<u64>,
    compacted: LogPosition,
    hard_state: HardState,
    term: u64,
}

impl Model {
    fn last(&self) -> LogPosition {
        match self.terms.last() {
            Some(&term) => at(self.terms.len() as u64, term),
            None => LogPosition::default(),
        }
    }

    /// The operations of batch `batch`, given the state before it. Deterministic.
    fn batch_ops(&self, batch: u64) -> Vec<Op> {
        let last = self.last();
        let mut ops = Vec::new();
        if batch % 25 == 0 && last.index > self.compacted.index {
            ops.push(Op::Snapshot(last));
        }
        let term = self.term.max(1);
        let append = if batch % 9 == 0 && last.index >= self.compacted.index + 3 {
            Op::Append {
                first: last.index - 1,
                last: last.index + 1,
                term: term + 1,
            }
        } else {
            Op::Append {
                first: last.index + 1,
                last: last.index + 1 + batch % 3,
                term,
            }
        };
        ops.push(append);
        if batch % 2 == 0 {
            let Op::Append { term, .. } = append else {
                unreachable!("built above")
            };
            ops.push(Op::Hard(HardState {
                term,
                vote: Some(batch % 3 + 1),
                commit: last.index,
            }));
        }
        ops
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { first, last, term } => {
                self.terms.truncate((first - 1) as usize);
                self.terms.extend((first..=last).map(|_| term));
                self.term = term;
            }
            Op::Hard(hard_state) => self.hard_state = hard_state,
            Op::Snapshot(position) => self.compacted = position,
        }
    }

    fn after_batches(batches: u64) -> Self {
        let mut model = Self::default();
        for batch in 1..=batches {
            for op in model.batch_ops(batch) {
                model.apply(&op);
            }
        }
        model
    }

    fn entries(&self) -> Vec<Entry> {
        (self.compacted.index + 1..=self.terms.len() as u64)
            .map(|i| entry(i, self.terms[(i - 1) as usize]))
            .collect()
    }

    /// Every snapshot position the workload saves in its first `batches` batches.
    fn snapshot_positions(batches: u64) -> Vec<LogPosition> {
        let mut model = Self::default();
        let mut positions = Vec::new();
        for batch in 1..=batches {
            for op in model.batch_ops(batch) {
                if let Op::Snapshot(position) = op {
                    positions.push(position);
                }
                model.apply(&op);
            }
        }
        positions
    }
}

/// The state-machine bytes of the snapshot at `position`: 300 KiB, more than one writer chunk.
struct SnapshotBytes {
    position: LogPosition,
    produced: u64,
}

const SNAPSHOT_DATA_BYTES: u64 = 300 * 1024;

impl SnapshotBytes {
    fn new(position: LogPosition) -> Self {
        Self {
            position,
            produced: 0,
        }
    }

    fn byte_at(position: LogPosition, at: u64) -> u8 {
        (at.wrapping_mul(0x9e37_79b9) ^ position.index ^ (position.term << 8)).to_le_bytes()[2]
    }

    fn membership(position: LogPosition) -> Vec<u8> {
        format!("voters 1,2,3 at {}", position.index).into_bytes()
    }
}

impl Read for SnapshotBytes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min((SNAPSHOT_DATA_BYTES - self.produced) as usize);
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            *byte = Self::byte_at(self.position, self.produced + i as u64);
        }
        self.produced += n as u64;
        Ok(n)
    }
}

/// The child: runs the workload with `point` armed; exits 0 only if the point never fired.
fn run_child(point: Failpoint, skip: u64, dir: &Path) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid, live struct; the abort below must not write a core file.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    failpoint::arm(point, skip);

    let recovered = recover(dir, &storage_options()).expect("fresh storage");
    let mut snapshots = recovered.snapshots;
    let mut wal = recovered.wal.start().expect("start");
    let mut acked = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(ACKED_FILE))
        .expect("side file");
    let mut model = Model::default();
    for batch in 1..=BATCHES {
        for op in model.batch_ops(batch) {
            match op {
                Op::Append { first, last, term } => {
                    append(&mut wal, first, last, term).expect("append")
                }
                Op::Hard(hard_state) => wal.set_hard_state(hard_state).expect("hard state"),
                Op::Snapshot(position) => {
                    snapshots
                        .begin_save(
                            position,
                            SnapshotBytes::membership(position),
                            SnapshotBytes::new(position),
                        )
                        .expect("begin snapshot");
                    let durable = snapshots.wait().expect("a save").expect("durable");
                    writeln!(acked, "snapshot {} {}", position.index, position.term)
                        .expect("record snapshot");
                    wal.mark_snapshot(&durable, false).expect("mark");
                }
            }
            model.apply(&op);
        }
        flush_wait(&mut wal);
        writeln!(acked, "batch {batch}").expect("record batch");
    }
    std::process::exit(0);
}

/// What the side file says was acknowledged: the last batch and the last snapshot.
fn read_acknowledged(dir: &Path) -> (u64, Option<LogPosition>) {
    let text = std::fs::read_to_string(dir.join(ACKED_FILE)).unwrap_or_default();
    let mut batch = 0;
    let mut snapshot = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["batch", b] => batch = b.parse().expect("batch number"),
            ["snapshot", index, term] => {
                snapshot = Some(at(
                    index.parse().expect("index"),
                    term.parse().expect("term"),
                ))
            }
            _ => panic!("unexpected side-file line {line:?}"),
        }
    }
    (batch, snapshot)
}

/// Recovers after the crash and checks everything the module documentation promises.
fn verify_after_crash(point: Failpoint, skip: u64, dir: &Path) {
    let (acked_batch, acked_snapshot) = read_acknowledged(dir);
    let context = format!(
        "{} (skip {skip}), {acked_batch} batches acknowledged",
        point.name()
    );
    let before = Model::after_batches(acked_batch);
    // The crash came during the batch after the last acknowledged one (or its snapshot).
    let mut candidates = vec![before.clone()];
    if acked_batch < BATCHES {
        let mut partial = before.clone();
        for op in before.batch_ops(acked_batch + 1) {
            partial.apply(&op);
            candidates.push(partial.clone());
        }
    }

    let recovered = recover(dir, &storage_options())
        .unwrap_or_else(|e| panic!("{context}: recovery must succeed after a crash: {e}"));
    if point == Failpoint::WalTornWrite {
        assert!(
            recovered.wal.torn_tail().is_some(),
            "{context}: the torn write must be found and cut"
        );
    }
    let entries: Vec<Entry> = recovered
        .wal
        .entries()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{context}: entries: {e}"));
    let matched = candidates.iter().find(|c| {
        c.compacted == recovered.wal.compacted()
            && c.last() == recovered.wal.last()
            && c.hard_state == recovered.wal.hard_state()
            && c.entries() == entries
    });
    let Some(matched) = matched.cloned() else {
        panic!(
            "{context}: recovered state (compacted {:?}, last {:?}, hard state {:?}, {} entries) \
             is neither the acknowledged state nor a prefix of the batch in flight",
            recovered.wal.compacted(),
            recovered.wal.last(),
            recovered.wal.hard_state(),
            entries.len()
        );
    };

    let saved = Model::snapshot_positions(BATCHES);
    if let Some(acked) = acked_snapshot {
        let loaded = recovered
            .snapshot
            .as_ref()
            .unwrap_or_else(|| panic!("{context}: acknowledged snapshot {acked:?} is gone"));
        assert!(
            loaded.position >= acked,
            "{context}: {loaded:?} older than {acked:?}"
        );
    }
    if let Some(loaded) = &recovered.snapshot {
        assert!(
            saved.contains(&loaded.position),
            "{context}: invented {loaded:?}"
        );
        assert_eq!(
            loaded.membership,
            SnapshotBytes::membership(loaded.position)
        );
        let mut data = Vec::new();
        loaded
            .open_data()
            .expect("open data")
            .read_to_end(&mut data)
            .expect("data verifies");
        let mut expected = Vec::new();
        SnapshotBytes::new(loaded.position)
            .read_to_end(&mut expected)
            .expect("generate");
        assert!(data == expected, "{context}: snapshot data differs");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("snapshots"))
        .expect("snapshot dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{context}: temporary snapshot files left: {leftovers:?}"
    );

    // The WAL accepts writes after the crash, and they survive another recovery.
    let mut wal = recovered.wal.start().expect("start after the crash");
    let last = matched.last();
    let term = matched.term.max(1);
    append(&mut wal, last.index + 1, last.index + 3, term).expect("append after the crash");
    let hard_state = HardState {
        term,
        vote: Some(9),
        commit: last.index,
    };
    wal.set_hard_state(hard_state).expect("hard state");
    flush_wait(&mut wal);
    drop(wal);
    let mut expected = matched.entries();
    expected.extend((last.index + 1..=last.index + 3).map(|i| entry(i, term)));
    let again = recover(dir, &storage_options()).expect("recovery after new writes");
    let entries: Vec<Entry> = again
        .wal
        .entries()
        .collect::<Result<_, _>>()
        .expect("entries");
    assert_eq!(again.wal.hard_state(), hard_state, "{context}");
    assert!(entries == expected, "{context}: new writes did not survive");
}

/// Runs the workload in a child process that crashes at `point` on its `skip + 1`-th hit, for each
/// `skip`, and verifies recovery. `test_name` is the calling test, which the child re-runs.
fn crash_test(test_name: &str, point: Failpoint, skips: &[u64]) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().expect("point");
        let skip = parts.next().expect("skip").parse().expect("skip count");
        let dir = parts.next().expect("dir");
        let point = Failpoint::from_name(name).expect("known failpoint");
        run_child(point, skip, Path::new(dir));
    }
    // One child at a time: a child forked by another test thread inherits every open descriptor
    // until it execs, and with them the WAL directory lock this test's parent is about to take.
    static ONE_CHILD_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_CHILD_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for &skip in skips {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{}:{skip}:{}", point.name(), dir.path().display()),
            )
            .output()
            .expect("spawn the child");
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGABRT),
            "the child must crash at {} (skip {skip}), but it ended with {}; stderr:\n{}",
            point.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        verify_after_crash(point, skip, dir.path());
        if skip > 0 {
            assert!(
                read_acknowledged(dir.path()).0 > 0,
                "the child acknowledged writes before it crashed"
            );
        }
    }
}

#[test]
fn crash_before_a_batch_write_keeps_acknowledged_writes() {
    crash_test(
        "crash_before_a_batch_write_keeps_acknowledged_writes",
        Failpoint::WalBeforeWrite,
        &[0, 57, 143],
    );
}

#[test]
fn crash_with_a_torn_batch_write_keeps_acknowledged_writes() {
    crash_test(
        "crash_with_a_torn_batch_write_keeps_acknowledged_writes",
        Failpoint::WalTornWrite,
        &[0, 61, 150],
    );
}

#[test]
fn crash_after_write_before_sync_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_write_before_sync_keeps_acknowledged_writes",
        Failpoint::WalAfterWriteBeforeSync,
        &[33, 124],
    );
}

#[test]
fn crash_after_sync_before_reporting_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_sync_before_reporting_keeps_acknowledged_writes",
        Failpoint::WalAfterSyncBeforeDurable,
        &[40, 99],
    );
}

#[test]
fn crash_after_creating_the_next_segment_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_creating_the_next_segment_keeps_acknowledged_writes",
        Failpoint::WalSegmentCreated,
        &[0, 2],
    );
}

#[test]
fn crash_at_a_segment_roll_keeps_acknowledged_writes() {
    crash_test(
        "crash_at_a_segment_roll_keeps_acknowledged_writes",
        Failpoint::WalSegmentRoll,
        &[1, 3],
    );
}

#[test]
fn crash_between_segment_unlink_and_directory_sync_keeps_acknowledged_writes() {
    crash_test(
        "crash_between_segment_unlink_and_directory_sync_keeps_acknowledged_writes",
        Failpoint::WalSegmentDelete,
        &[0, 1],
    );
}

#[test]
fn crash_after_snapshot_temp_written_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_snapshot_temp_written_keeps_acknowledged_writes",
        Failpoint::SnapshotTempWritten,
        &[0, 2],
    );
}

#[test]
fn crash_after_snapshot_temp_synced_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_snapshot_temp_synced_keeps_acknowledged_writes",
        Failpoint::SnapshotTempSynced,
        &[1, 3],
    );
}

#[test]
fn crash_after_snapshot_rename_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_snapshot_rename_keeps_acknowledged_writes",
        Failpoint::SnapshotRenamed,
        &[0, 2],
    );
}

#[test]
fn crash_after_snapshot_directory_sync_keeps_acknowledged_writes() {
    crash_test(
        "crash_after_snapshot_directory_sync_keeps_acknowledged_writes",
        Failpoint::SnapshotDirSynced,
        &[1, 3],
    );
}

#[test]
fn every_failpoint_has_a_crash_test() {
    // The tests above cover these, one each; a new failpoint must get its own.
    let covered = [
        Failpoint::WalBeforeWrite,
        Failpoint::WalTornWrite,
        Failpoint::WalAfterWriteBeforeSync,
        Failpoint::WalAfterSyncBeforeDurable,
        Failpoint::WalSegmentCreated,
        Failpoint::WalSegmentRoll,
        Failpoint::WalSegmentDelete,
        Failpoint::SnapshotTempWritten,
        Failpoint::SnapshotTempSynced,
        Failpoint::SnapshotRenamed,
        Failpoint::SnapshotDirSynced,
    ];
    for point in Failpoint::ALL {
        assert!(
            covered.contains(&point),
            "{} has no crash test",
            point.name()
        );
        assert_eq!(Failpoint::from_name(point.name()), Some(point));
    }
}
