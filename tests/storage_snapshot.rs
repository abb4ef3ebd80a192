//! Snapshot files: streamed round trip, keep-K, crash leftovers, damage, the WAL cross-check,
//! memory mode, one writer at a time, wake-ups.

mod storage_common;

use std::io::Read;
use std::sync::mpsc;
use std::sync::Arc;

use aurora::runtime::Doorbell;
use aurora::storage::{
    recover, Durability, LoadedSnapshot, SnapshotError, SnapshotOptions, SnapshotStore,
    StorageError, StorageOptions, Wal, SNAPSHOT_HEADER_LEN,
};
use storage_common::{append, at, flush_wait, options};

/// A deterministic byte stream of `len` bytes, produced in small reads (never one buffer).
struct Stream {
    produced: u64,
    len: u64,
    seed: u64,
}

impl Stream {
    fn new(len: u64, seed: u64) -> Self {
        Self {
            produced: 0,
            len,
            seed,
        }
    }

    fn byte_at(&self, at: u64) -> u8 {
        (at.wrapping_mul(2_654_435_761) ^ self.seed).to_le_bytes()[1]
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(4099).min((self.len - self.produced) as usize);
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            *byte = self.byte_at(self.produced + i as u64);
        }
        self.produced += n as u64;
        Ok(n)
    }
}

fn store(dir: &std::path::Path, keep: usize) -> (SnapshotStore, Option<LoadedSnapshot>) {
    SnapshotStore::open(
        dir,
        SnapshotOptions {
            durability: Durability::Fsync,
            keep,
        },
    )
    .expect("open snapshot store")
}

fn save(store: &mut SnapshotStore, index: u64, term: u64, data: Stream) {
    store
        .begin_save(
            at(index, term),
            format!("members@{index}").into_bytes(),
            data,
        )
        .expect("begin");
    let durable = store.wait().expect("a save").expect("durable");
    assert_eq!(durable.position(), at(index, term));
}

fn read_data(loaded: &LoadedSnapshot) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    loaded
        .open_data()
        .expect("open data")
        .read_to_end(&mut data)?;
    Ok(data)
}

fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
        .expect("snapshot dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn snapshot_round_trips_membership_and_streamed_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let len = (1 << 20) + 17; // several writer chunks, not a multiple of any buffer
    {
        let (mut store, loaded) = store(dir.path(), 2);
        assert!(loaded.is_none());
        save(&mut store, 42, 7, Stream::new(len, 1));
    }
    let (_, loaded) = store(dir.path(), 2);
    let loaded = loaded.expect("the snapshot is found");
    assert_eq!(loaded.position, at(42, 7));
    assert_eq!(loaded.membership, b"members@42");
    assert_eq!(loaded.data_len_bytes, len);
    assert_eq!(loaded.durable().position(), at(42, 7));
    let mut expected = Vec::new();
    Stream::new(len, 1)
        .read_to_end(&mut expected)
        .expect("generate");
    assert_eq!(read_data(&loaded).expect("data"), expected);
}

#[test]
fn only_the_newest_k_snapshots_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = store(dir.path(), 2);
    for index in [10, 20, 30, 40] {
        save(&mut store, index, 1, Stream::new(100, index));
    }
    let names = snapshot_files(dir.path());
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].contains("00000000000000000030"), "{names:?}");
    assert!(names[1].contains("00000000000000000040"), "{names:?}");
}

#[test]
fn half_written_temp_file_is_ignored_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut store, _) = store(dir.path(), 2);
        save(&mut store, 10, 1, Stream::new(500, 3));
    }
    let temp = dir
        .path()
        .join("snapshots/snap-00000000000000000020-00000000000000000001.snap.tmp");
    std::fs::write(&temp, vec![0xAB; 300]).expect("leftover");
    let (_, loaded) = store(dir.path(), 2);
    assert_eq!(loaded.expect("the older snapshot").position, at(10, 1));
    assert!(!temp.exists(), "the leftover temp file is removed");
}

#[test]
fn damaged_newest_snapshot_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut store, _) = store(dir.path(), 3);
        save(&mut store, 10, 1, Stream::new(5000, 1));
        save(&mut store, 20, 1, Stream::new(5000, 2));
    }
    let newest = dir
        .path()
        .join("snapshots/snap-00000000000000000020-00000000000000000001.snap");
    let mut bytes = std::fs::read(&newest).expect("read");
    bytes[SNAPSHOT_HEADER_LEN + 3000] ^= 0x80;
    std::fs::write(&newest, bytes).expect("write back");
    let (_, loaded) = store(dir.path(), 3);
    assert_eq!(loaded.expect("the older snapshot").position, at(10, 1));
}

#[test]
fn data_changed_after_loading_fails_the_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut store, _) = store(dir.path(), 2);
        save(&mut store, 10, 1, Stream::new(5000, 1));
    }
    let (_, loaded) = store(dir.path(), 2);
    let loaded = loaded.expect("loaded");
    let mut bytes = std::fs::read(loaded.path()).expect("read");
    *bytes.last_mut().expect("non-empty") ^= 1;
    std::fs::write(loaded.path(), bytes).expect("write back");
    let error = read_data(&loaded).expect_err("the checksum is verified at the end");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn recovery_refuses_a_wal_compacted_past_every_valid_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage_options = StorageOptions {
        wal: options(Durability::Fsync, 65536, 16384),
        snapshots_kept: 2,
    };
    {
        let recovered = recover(dir.path(), &storage_options).expect("fresh");
        let mut snapshots = recovered.snapshots;
        let mut wal = recovered.wal.start().expect("start");
        append(&mut wal, 1, 50, 1).expect("append");
        flush_wait(&mut wal);
        snapshots
            .begin_save(at(40, 1), b"m".to_vec(), Stream::new(10, 1))
            .expect("save");
        let snapshot = snapshots.wait().expect("a save").expect("durable");
        wal.mark_snapshot(&snapshot, false).expect("mark");
        flush_wait(&mut wal);
    }
    let recovered = recover(dir.path(), &storage_options).expect("snapshot present");
    assert_eq!(recovered.wal.compacted(), at(40, 1));
    assert_eq!(
        recovered.snapshot.as_ref().map(|s| s.position),
        Some(at(40, 1))
    );
    drop(recovered);

    for name in snapshot_files(dir.path()) {
        std::fs::remove_file(dir.path().join("snapshots").join(name)).expect("remove");
    }
    let error = recover(dir.path(), &storage_options).expect_err("the log has a hole");
    assert!(
        matches!(
            error,
            StorageError::SnapshotMissing {
                compacted_index: 40,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("restore it from a peer"),
        "{error}"
    );
}

#[test]
fn memory_mode_completes_saves_without_writing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, loaded) = SnapshotStore::open(
        dir.path(),
        SnapshotOptions {
            durability: Durability::Memory,
            keep: 2,
        },
    )
    .expect("open");
    assert!(loaded.is_none());
    store
        .begin_save(at(5, 1), Vec::new(), Stream::new(10, 1))
        .expect("save");
    assert!(store.has_completed());
    let busy = store
        .begin_save(at(6, 1), Vec::new(), Stream::new(10, 1))
        .expect_err("one save at a time, also in memory mode");
    assert!(
        matches!(busy, SnapshotError::Busy { index: 5, .. }),
        "{busy}"
    );
    let durable = store.poll().expect("completed").expect("ok");
    assert_eq!(durable.position(), at(5, 1));
    assert!(!dir.path().join("snapshots").exists());

    // And the WAL accepts the mark without writing it.
    let mut wal = Wal::open(dir.path(), options(Durability::Memory, 8192, 4096)).expect("wal");
    append(&mut wal, 1, 9, 1).expect("append");
    wal.mark_snapshot(&durable, false).expect("mark");
    flush_wait(&mut wal);
    assert_eq!(wal.compacted(), at(5, 1));
    assert_eq!(wal.stats().bytes_written, 0);
}

/// A source that blocks until the test lets it finish.
struct Gate(mpsc::Receiver<()>);

impl Read for Gate {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv().map_err(std::io::Error::other)?;
        Ok(0)
    }
}

#[test]
fn one_save_at_a_time_and_completion_rings_the_doorbell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = store(dir.path(), 2);
    let doorbell = Arc::new(Doorbell::new().expect("doorbell"));
    store.set_doorbell(Arc::clone(&doorbell));
    let (open_gate, gate) = mpsc::channel();
    store
        .begin_save(at(10, 1), Vec::new(), Gate(gate))
        .expect("first save");
    assert_eq!(store.saving(), Some(at(10, 1)));
    let busy = store
        .begin_save(at(11, 1), Vec::new(), Stream::new(1, 1))
        .expect_err("busy");
    assert!(
        matches!(busy, SnapshotError::Busy { index: 10, .. }),
        "{busy}"
    );
    assert!(store.poll().is_none(), "still being written");

    open_gate.send(()).expect("release the writer");
    // An hour-long park: only the writer's notify (or its finished flag) ends it in time.
    doorbell
        .park(3_600_000_000_000, || store.has_completed())
        .expect("park");
    assert!(store.has_completed());
    let durable = store.poll().expect("completed").expect("durable");
    assert_eq!(durable.position(), at(10, 1));
    assert_eq!(store.saving(), None);
}

/// A source that fails halfway.
struct Failing(u32);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("state machine went away"));
        }
        self.0 -= 1;
        buf[0] = 1;
        Ok(1)
    }
}

#[test]
fn failing_source_reports_the_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = store(dir.path(), 2);
    store
        .begin_save(at(10, 1), Vec::new(), Failing(3))
        .expect("begin");
    let error = store
        .wait()
        .expect("a save")
        .expect_err("the source failed");
    assert!(
        matches!(error, SnapshotError::Source { index: 10, .. }),
        "{error}"
    );
    assert!(snapshot_files(dir.path()).is_empty());
}

#[test]
fn keep_out_of_range_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    for keep in [0, SnapshotOptions::KEEP_MAX + 1] {
        let error = SnapshotStore::open(
            dir.path(),
            SnapshotOptions {
                durability: Durability::Fsync,
                keep,
            },
        )
        .expect_err("invalid keep");
        assert!(matches!(error, SnapshotError::Keep { .. }), "{error}");
    }
}

#[test]
fn default_configuration_gives_options_storage_accepts() {
    let config = aurora::config::Storage::default();
    let options = StorageOptions::from_config(Durability::Memory, &config);
    options.wal.validate().expect("valid WAL options");
    assert_eq!(options.wal.durability, Durability::Memory);
    assert_eq!(options.wal.segment_bytes, config.wal_segment_bytes);
    assert_eq!(options.snapshots_kept as u64, config.snapshots_kept);
    let dir = tempfile::tempdir().expect("tempdir");
    recover(dir.path(), &options).expect("storage opens with them");
}
