//! The write-ahead log on the shard; see [`Wal`].

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

use io_uring::{opcode, squeue, types, IoUring};

use super::error::{WalError, WalOptionsError};
use super::record::{self, SegmentHeader, ENTRIES_HEAD_LEN, ENTRY_PREFIX_LEN, SEGMENT_HEADER_LEN};
use super::recovery::WalRecovery;
use super::segment::{self, Preallocation};
use super::snapshot::DurableSnapshot;
use super::state::{EntryRef, HardState, LogPosition, LogRuleError, LogState};
use super::Durability;
use crate::metrics::{HistogramId, ShardMetrics};
use crate::runtime::{Clock, MonotonicClock};

/// WAL settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// What is written and synced before a write is reported durable.
    pub durability: Durability,
    /// Size each segment is preallocated to.
    pub segment_bytes: u64,
    /// Size of each of the two write buffers: the most one flushed batch can hold (minus the
    /// segment header slot). A full buffer is backpressure.
    pub buffer_bytes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            segment_bytes: Self::SEGMENT_BYTES_DEFAULT,
            buffer_bytes: Self::BUFFER_BYTES_DEFAULT,
        }
    }
}

impl WalOptions {
    /// Default segment size: 64 MiB.
    pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
    /// Default write buffer: 4 MiB (two are allocated).
    pub const BUFFER_BYTES_DEFAULT: usize = 4 << 20;
    /// Smallest write buffer.
    pub const BUFFER_BYTES_MIN: usize = 1024;
    /// Largest write buffer.
    pub const BUFFER_BYTES_MAX: usize = 256 << 20;
    /// Smallest segment.
    pub const SEGMENT_BYTES_MIN: u64 = 4096;
    /// Largest segment.
    pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;

    /// Checks the bounds; every constructor of a [`Wal`] calls it.
    pub fn validate(&self) -> Result<(), WalOptionsError> {
        if !(Self::BUFFER_BYTES_MIN..=Self::BUFFER_BYTES_MAX).contains(&self.buffer_bytes) {
            return Err(WalOptionsError::BufferBytes {
                buffer_bytes: self.buffer_bytes,
                min: Self::BUFFER_BYTES_MIN,
                max: Self::BUFFER_BYTES_MAX,
            });
        }
        if !(Self::SEGMENT_BYTES_MIN..=Self::SEGMENT_BYTES_MAX).contains(&self.segment_bytes)
            || self.segment_bytes < self.buffer_bytes as u64
        {
            return Err(WalOptionsError::SegmentBytes {
                segment_bytes: self.segment_bytes,
                buffer_bytes: self.buffer_bytes,
                min: Self::SEGMENT_BYTES_MIN,
                max: Self::SEGMENT_BYTES_MAX,
            });
        }
        Ok(())
    }
}

/// Everything flushed up to `flush_seq` is durable. Reports arrive in `flush_seq` order and are
/// cumulative: one report may cover several flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    /// The newest flush covered (the value [`Wal::flush`] returned).
    pub flush_seq: u64,
    /// The end of the durable log. In `memory` mode: the end of the log as appended, which lives
    /// in replicated memory only.
    pub last: LogPosition,
    /// The durable hard state.
    pub hard_state: HardState,
    /// From submitting the batch to reaping its `fdatasync`, as seen by the poll loop (the
    /// `now_ns` values given to [`Wal::flush`]/[`Wal::poll`]); `None` when nothing had to be
    /// synced. For the fsync-time histogram.
    pub sync_latency_ns: Option<u64>,
}

impl Durable {
    /// Records the sync latency (if this report synced anything) into the shard's fsync
    /// histogram — [`CoreMetrics::fsync`](crate::metrics::CoreMetrics), `aurora_fsync_duration_seconds`.
    /// Hot path: no allocation.
    pub fn record_sync_latency(&self, metrics: &mut ShardMetrics, fsync: HistogramId) {
        if let Some(latency_ns) = self.sync_latency_ns {
            metrics.record(fsync, latency_ns);
        }
    }
}

/// Counters since the WAL started; for tests, `/metrics` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Calls of [`Wal::flush`].
    pub flushes_requested: u64,
    /// Batches written (one `write` each).
    pub batches_written: u64,
    /// `fdatasync`s issued for batches (one per synced batch, plus one when a roll finds the
    /// previous segment holding unsynced writes).
    pub fdatasyncs: u64,
    /// Bytes written in batches (segment headers included).
    pub bytes_written: u64,
    /// Segments started.
    pub segments_rolled: u64,
    /// Segments deleted after compaction.
    pub segments_deleted: u64,
}

/// Submission-queue size: enough for every op that can be in flight at once (a batch: 3, the next
/// segment's preparation: 3, a deletion round: `DELETE_ROUND_MAX + 1`).
const RING_ENTRIES: u32 = 16;
const DELETE_ROUND_MAX: usize = 8;
const _: () = assert!(3 + 3 + (DELETE_ROUND_MAX + 1) <= RING_ENTRIES as usize);

/// Which piece of work an io_uring completion belongs to (the high byte of `user_data`) and which
/// step of it (the low byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Batch = 1,
    Prepare = 2,
    Delete = 3,
}

const STEP_SYNC_PREVIOUS: u8 = 0;
const STEP_WRITE: u8 = 1;
const STEP_SYNC: u8 = 2;
const STEP_FALLOCATE: u8 = 0;
const STEP_FSYNC_FILE: u8 = 1;
const STEP_FSYNC_DIR: u8 = 2;

fn user_data(group: Group, step: u8) -> u64 {
    ((group as u64) << 8) | u64::from(step)
}

fn step_name(group: u64, step: u8) -> &'static str {
    match (group, step) {
        (1, STEP_SYNC_PREVIOUS) => "fdatasync of the previous segment",
        (1, STEP_WRITE) => "write of a batch",
        (1, _) => "fdatasync of a batch",
        (2, STEP_FALLOCATE) => "fallocate of the next segment",
        (2, STEP_FSYNC_FILE) => "fsync of the next segment",
        (2, _) => "fsync of the WAL directory after creating a segment",
        (3, u8::MAX) => "fsync of the WAL directory after deleting segments",
        _ => "unlink of a compacted segment",
    }
}

/// One of the two write buffers. The first [`SEGMENT_HEADER_LEN`] bytes are reserved for the
/// header of a fresh segment, so a roll still writes the batch with a single `write`.
#[derive(Debug)]
struct Batch {
    bytes: Box<[u8]>,
    /// End of the records (starts at `SEGMENT_HEADER_LEN`).
    len: usize,
    /// Start of the last record, for the torn-write failpoint.
    last_record_start: usize,
    /// Highest entry index encoded, for deciding later when the segment may be deleted.
    max_entry_index: Option<u64>,
}

impl Batch {
    fn new(len_bytes: usize) -> Self {
        Self {
            bytes: vec![0u8; len_bytes].into_boxed_slice(),
            len: SEGMENT_HEADER_LEN,
            last_record_start: SEGMENT_HEADER_LEN,
            max_entry_index: None,
        }
    }

    fn records_len(&self) -> usize {
        self.len - SEGMENT_HEADER_LEN
    }

    fn clear(&mut self) {
        self.len = SEGMENT_HEADER_LEN;
        self.last_record_start = SEGMENT_HEADER_LEN;
        self.max_entry_index = None;
    }

    fn note_record(&mut self, start: usize, end: usize) {
        debug_assert!(start == self.len && end > start && end <= self.bytes.len());
        self.last_record_start = start;
        self.len = end;
    }
}

/// The segment receiving batches.
#[derive(Debug)]
struct CurrentSegment {
    file: File,
    seq: u64,
    write_offset: u64,
    capacity_bytes: u64,
    /// Holds writes not yet covered by an `fdatasync`.
    unsynced: bool,
    /// Its header is on disk (a synced batch completed in it, or recovery read and synced it).
    header_synced: bool,
    last_entry_index: Option<u64>,
}

/// An older segment still on disk, waiting for compaction to pass it.
#[derive(Debug, Clone, Copy)]
struct ClosedSegment {
    seq: u64,
    last_entry_index: Option<u64>,
}

/// The next segment, prepared ahead so that a roll does not wait.
#[derive(Debug)]
enum Prepare {
    Idle,
    InFlight { file: File, seq: u64, ops_left: u8 },
    Ready { file: File, seq: u64 },
}

/// The batch on the disk.
#[derive(Debug)]
struct InFlight {
    flush_seq: u64,
    /// Which buffer is being written (`None` for a sync of earlier writes only).
    batch: Option<usize>,
    sync: bool,
    ops_left: u8,
    write_len: u32,
    submitted_ns: u64,
    /// The log state once this batch is on disk.
    state: LogState,
    /// The previous segment, kept open until its linked `fdatasync` completes.
    previous_segment: Option<File>,
}

#[derive(Debug, Clone, Copy)]
struct FlushRequest {
    seq: u64,
    sync: bool,
}

/// A deletion round: unlinks of the oldest segments, then a directory `fsync`.
#[derive(Debug)]
struct Deleting {
    /// Never read here: the unlink ops point into them, so they live until the round completes.
    _names: Vec<CString>,
    ops_left: usize,
}

/// The first failed operation; everything after it is refused.
#[derive(Debug, Clone, Copy)]
struct Failure {
    op: &'static str,
    errno: i32,
}

/// The write-ahead log on the shard: buffered appends, group commit through io_uring, segment
/// roll and deletion — all completion-based, so the shard's poll loop never blocks on the disk.
/// See [`super`] for the persistence contract.
///
/// ```text
///  append_entries / set_hard_state / mark_snapshot ──► active write buffer (preallocated, bounded)
///  flush(sync)   ──► request; if nothing is in flight: write [+ linked fdatasync] of the whole buffer
///  poll(now)     ──► reap completions ──► Durable { flush_seq, last, hard_state } ──► submit next
/// ```
///
/// **Group commit.** At most one batch is in flight. Records appended while it is on the disk
/// collect in the other buffer, and every flush requested meanwhile is answered by the *next*
/// batch: one `write` and one `fdatasync` (`IORING_OP_FSYNC` with `DATASYNC`, `IO_LINK`ed after the
/// write so it covers it) however many flushes were asked for. One batch at a time is also what
/// makes the recovery rule sound: when a batch is submitted, every earlier one has completed, so a
/// crash can only tear the last one.
///
/// **Segments.** The next segment is created and preallocated (`fallocate`, `fsync`, directory
/// `fsync`, all through the ring) while the current one fills, so a roll costs nothing extra: the
/// batch that does not fit goes whole into the fresh segment, behind a header recording the log
/// state it starts from. Before a fresh segment receives a byte, the previous one is synced (a
/// linked `fdatasync` if it holds unsynced writes): only the last segment can ever hold a torn
/// write. Segments wholly below the compacted index are unlinked (and the directory synced)
/// through the ring once the snapshot mark that covers them is durable.
///
/// Preallocation keeps `fdatasync` from updating the file size on every batch. On ext4 the first
/// write into each preallocated block still converts an unwritten extent, a journaled change:
/// `benches/wal.rs` measures a zero-filled file syncing about 40% faster for 20 KiB batches here,
/// and no difference for small ones (docs/BENCHMARKS.md). Zero-filling or recycling segments is the
/// next step if large batches matter.
///
/// Created by [`WalRecovery::start`]. Single-threaded: it lives on the shard that owns the
/// consensus group.
pub struct Wal {
    durability: Durability,
    segment_bytes: u64,
    dir: PathBuf,
    /// For directory syncs and unlinks through the ring.
    dir_file: File,
    /// Keeps other processes out of the WAL directory while this WAL lives.
    _lock: segment::DirLock,
    preallocation: Preallocation,
    ring: IoUring,
    ops_in_flight: usize,
    batches: [Batch; 2],
    active: usize,
    /// After every record accepted so far.
    appended: LogState,
    /// After every batch handed to the kernel.
    submitted: LogState,
    /// After every synced batch.
    durable: LogState,
    current: Option<CurrentSegment>,
    closed: VecDeque<ClosedSegment>,
    prepare: Prepare,
    next_seq: u64,
    in_flight: Option<InFlight>,
    requested: Option<FlushRequest>,
    next_flush_seq: u64,
    last_reported_seq: u64,
    ready: Option<Durable>,
    deleting: Option<Deleting>,
    failed: Option<Failure>,
    stats: WalStats,
}

impl Wal {
    /// Recovers the WAL under `data_dir` and starts it, discarding the recovered entries: for
    /// callers that only need the hard state and log position (tests, tools). A node replays the
    /// entries through [`WalRecovery::open`] instead.
    pub fn open(data_dir: &std::path::Path, options: WalOptions) -> Result<Self, WalError> {
        WalRecovery::open(data_dir, options)?.start()
    }

    /// Repairs what recovery found and builds the running WAL (see [`WalRecovery::start`]).
    pub(crate) fn start(recovery: WalRecovery) -> Result<Self, WalError> {
        let WalRecovery {
            options,
            scan,
            lock,
        } = recovery;
        let dir = scan.dir.clone();

        if let Some(torn) = &scan.torn {
            if let Some(last) = scan.segments.last().filter(|s| s.path == torn.path) {
                let file = segment::open(&last.path)?;
                segment::zero_from(&file, &last.path, torn.offset, last.file_len)?;
                tracing::warn!(
                    file = %last.path.display(), offset = torn.offset, reason = %torn.reason,
                    "cut the torn tail of the WAL"
                );
            }
        }
        for path in &scan.unused {
            std::fs::remove_file(path)
                .map_err(|e| WalError::io("remove unused segment", path, e))?;
        }

        let compacted = scan.state.compacted.index;
        let mut closed = VecDeque::new();
        let mut current = None;
        let count = scan.segments.len();
        for (position, scanned) in scan.segments.iter().enumerate() {
            if position + 1 == count {
                let file = segment::open(&scanned.path)?;
                // What recovery read may have been in the page cache only (a process crash after an
                // unsynced write): sync it before anything is reported durable on its strength.
                file.sync_data()
                    .map_err(|e| WalError::io("fdatasync", &scanned.path, e))?;
                current = Some(CurrentSegment {
                    file,
                    seq: scanned.seq,
                    write_offset: scanned.valid_len,
                    capacity_bytes: scanned.file_len,
                    unsynced: false,
                    header_synced: true,
                    last_entry_index: scanned.last_entry_index,
                });
            } else if closed.is_empty() && scanned.last_entry_index.is_none_or(|i| i <= compacted) {
                // A crash came between the durable snapshot mark and the deletion.
                std::fs::remove_file(&scanned.path)
                    .map_err(|e| WalError::io("remove compacted segment", &scanned.path, e))?;
            } else {
                closed.push_back(ClosedSegment {
                    seq: scanned.seq,
                    last_entry_index: scanned.last_entry_index,
                });
            }
        }

        let next_seq = current.as_ref().map_or(1, |c| c.seq + 1);
        let (file, path) = segment::create(&dir, next_seq)?;
        let preallocation = segment::preallocate(&file, &path, options.segment_bytes)?;
        file.sync_all()
            .map_err(|e| WalError::io("fsync segment", &path, e))?;
        // Makes the new segment's name and every removal above durable.
        segment::fsync_dir(&dir)?;

        let ring = IoUring::builder()
            .setup_cqsize(RING_ENTRIES * 2)
            .build(RING_ENTRIES)
            .map_err(|source| WalError::Ring {
                op: "io_uring_setup",
                source,
            })?;
        let dir_file = segment::open_dir(&dir)?;
        Ok(Self {
            durability: options.durability,
            segment_bytes: options.segment_bytes,
            dir,
            dir_file,
            _lock: lock,
            preallocation,
            ring,
            ops_in_flight: 0,
            batches: [
                Batch::new(options.buffer_bytes),
                Batch::new(options.buffer_bytes),
            ],
            active: 0,
            appended: scan.state,
            submitted: scan.state,
            durable: scan.state,
            current,
            closed,
            prepare: Prepare::Ready {
                file,
                seq: next_seq,
            },
            next_seq: next_seq + 1,
            in_flight: None,
            requested: None,
            next_flush_seq: 1,
            last_reported_seq: 0,
            ready: None,
            deleting: None,
            failed: None,
            stats: WalStats::default(),
        })
    }

    /// The durability mode (for `/status` and bench reports).
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The end of the log as appended (durable or not).
    pub fn last(&self) -> LogPosition {
        self.appended.last
    }

    /// The hard state as last set (durable or not).
    pub fn hard_state(&self) -> HardState {
        self.appended.hard_state
    }

    /// The compaction point as last marked (durable or not).
    pub fn compacted(&self) -> LogPosition {
        self.appended.compacted
    }

    /// Counters since start.
    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// The largest record one `append_entries` can form: the write buffer less a segment header.
    pub fn max_record_bytes(&self) -> usize {
        self.batches[self.active].bytes.len() - record::SEGMENT_HEADER_LEN
    }

    /// Bytes free in the write buffer for records.
    pub fn buffer_free_bytes(&self) -> usize {
        let batch = &self.batches[self.active];
        batch.bytes.len() - batch.len
    }

    /// Has the ring signal `eventfd` on every completion — the shard's
    /// [`Doorbell`](crate::runtime::Doorbell) fd — so a parked shard wakes when a write is durable.
    pub fn register_eventfd(&self, eventfd: BorrowedFd<'_>) -> Result<(), WalError> {
        self.ring
            .submitter()
            .register_eventfd(eventfd.as_raw_fd())
            .map_err(|source| WalError::Ring {
                op: "IORING_REGISTER_EVENTFD",
                source,
            })
    }

    /// Whether completions are waiting to be reaped by [`poll`](Self::poll), or a durable report
    /// is ready: the shard's `has_pending` check before it parks.
    pub fn has_pending_completions(&self) -> bool {
        // SAFETY: every other CompletionQueue is created from `&mut self.ring` and dropped before
        // the method that made it returns, so none exists while `&self` is borrowed.
        let completions = unsafe { self.ring.completion_shared() };
        self.ready.is_some() || !completions.is_empty()
    }

    fn check_running(&self) -> Result<(), WalError> {
        match self.failed {
            None => Ok(()),
            Some(Failure { op, errno }) => Err(WalError::Failed {
                op,
                source: std::io::Error::from_raw_os_error(errno),
            }),
        }
    }

    /// Appends entries `first_index, first_index + 1, …` to the write buffer. A `first_index` at or
    /// below the last index replaces the log from there on (a follower overwriting a conflicting
    /// suffix). All or nothing: on error the buffer and the log are unchanged.
    ///
    /// Errors: [`WalError::Backpressure`] when the buffer is full (flush, poll until durable,
    /// retry), [`WalError::RecordTooLarge`] when the entries could never fit one buffer,
    /// [`WalError::Rule`] for a gap, an index at or below the compaction point, or a term that
    /// goes back.
    pub fn append_entries<'a, I>(&mut self, first_index: u64, entries: I) -> Result<(), WalError>
    where
        I: IntoIterator<Item = EntryRef<'a>>,
    {
        self.check_running()?;
        let memory = self.durability == Durability::Memory;
        let batch = &mut self.batches[self.active];
        let start = batch.len;
        let capacity = batch.bytes.len();
        // Memory mode encodes nothing but checks the entries all the same.
        let mut writer = if memory {
            None
        } else {
            record::RecordWriter::begin(&mut batch.bytes, start, record::RecordKind::Entries).ok()
        };
        let mut room = memory || writer.is_some();
        if let Some(w) = writer.as_mut() {
            room = w.put_u64(first_index).is_ok() && w.put_u32(0).is_ok();
        }
        let mut needed_bytes = record::PREFIX_LEN + ENTRIES_HEAD_LEN;
        let mut count: u64 = 0;
        let mut first_term = 0;
        let mut last_term = 0;
        for entry in entries {
            if count > 0 && entry.term < last_term {
                return Err(LogRuleError::TermRegression {
                    index: first_index.saturating_add(count),
                    term: entry.term,
                    previous_term: last_term,
                }
                .into());
            }
            if count == 0 {
                first_term = entry.term;
            }
            last_term = entry.term;
            count += 1;
            needed_bytes = needed_bytes.saturating_add(ENTRY_PREFIX_LEN + entry.data.len());
            if let (true, Some(w)) = (room, writer.as_mut()) {
                room = u32::try_from(entry.data.len()).is_ok_and(|len| {
                    w.put_u64(entry.term).is_ok()
                        && w.put_u8(entry.kind).is_ok()
                        && w.put_u32(len).is_ok()
                        && w.put_bytes(entry.data).is_ok()
                });
            }
        }
        if count == 0 {
            return Ok(());
        }
        if !room {
            let free_bytes = capacity - start;
            return Err(if start == SEGMENT_HEADER_LEN {
                WalError::RecordTooLarge {
                    first_index,
                    record_bytes: needed_bytes,
                    buffer_bytes: capacity - SEGMENT_HEADER_LEN,
                }
            } else {
                WalError::Backpressure {
                    needed_bytes,
                    free_bytes,
                }
            });
        }
        let last = LogPosition {
            index: first_index
                .checked_add(count - 1)
                .ok_or(LogRuleError::Gap {
                    first_index,
                    last_index: self.appended.last.index,
                })?,
            term: last_term,
        };
        let mut next_state = self.appended;
        next_state.apply_entries(first_index, first_term, last)?;
        if let Some(mut w) = writer {
            w.patch_u32(
                8,
                u32::try_from(count)
                    .expect("a buffer of at most 256 MiB holds fewer than 2^32 entries"),
            );
            let end = w.finish();
            debug_assert_eq!(end - start, needed_bytes);
            let batch = &mut self.batches[self.active];
            batch.note_record(start, end);
            batch.max_entry_index = Some(
                batch
                    .max_entry_index
                    .map_or(last.index, |i| i.max(last.index)),
            );
        }
        self.appended = next_state;
        Ok(())
    }

    /// Records a new hard state. In `memory` mode only a change of term or vote is written (the
    /// commit index is worthless without the log); in `fsync` mode every change is.
    pub fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), WalError> {
        self.check_running()?;
        let previous = self.appended.hard_state;
        if hard_state == previous {
            return Ok(());
        }
        let mut next_state = self.appended;
        next_state.apply_hard_state(hard_state)?;
        let must_write = match self.durability {
            Durability::Fsync => true,
            Durability::Memory => {
                (hard_state.term, hard_state.vote) != (previous.term, previous.vote)
            }
        };
        if must_write {
            let batch = &mut self.batches[self.active];
            let start = batch.len;
            let end = record::write_hard_state(&mut batch.bytes, start, &hard_state).map_err(
                |record::NoRoom| WalError::Backpressure {
                    needed_bytes: record::HARD_STATE_RECORD_LEN,
                    free_bytes: batch.bytes.len() - start,
                },
            )?;
            batch.note_record(start, end);
        }
        self.appended = next_state;
        Ok(())
    }

    /// Records that `snapshot` (durable, which only the snapshot store can vouch for) covers the
    /// log up to its index. Once this mark is durable, segments holding only entries up to there
    /// are deleted. With `discard_suffix` the entries after the snapshot go too (a follower
    /// installing a leader's snapshot that its log does not match).
    pub fn mark_snapshot(
        &mut self,
        snapshot: &DurableSnapshot,
        discard_suffix: bool,
    ) -> Result<(), WalError> {
        self.check_running()?;
        let position = snapshot.position();
        let mut next_state = self.appended;
        next_state.apply_snapshot_mark(position, discard_suffix)?;
        if self.durability == Durability::Fsync {
            let batch = &mut self.batches[self.active];
            let start = batch.len;
            let end =
                record::write_snapshot_mark(&mut batch.bytes, start, position, discard_suffix)
                    .map_err(|record::NoRoom| WalError::Backpressure {
                        needed_bytes: record::SNAPSHOT_MARK_RECORD_LEN,
                        free_bytes: batch.bytes.len() - start,
                    })?;
            batch.note_record(start, end);
        }
        self.appended = next_state;
        Ok(())
    }

    /// Asks for everything appended so far to be written — and, with `sync`, made durable — and
    /// returns this flush's sequence number. Submits at once if no batch is in flight; otherwise
    /// the next [`poll`](Self::poll) that reaps the batch in flight submits it (group commit).
    ///
    /// A flush with `sync` is answered by a [`Durable`] report from [`poll`](Self::poll). One
    /// without `sync` is never reported by itself: the next synced flush's report covers it.
    pub fn flush(&mut self, sync: bool, now_ns: u64) -> Result<u64, WalError> {
        self.check_running()?;
        let seq = self.next_flush_seq;
        self.next_flush_seq += 1;
        self.stats.flushes_requested += 1;
        let sync = sync || self.requested.is_some_and(|r| r.sync);
        self.requested = Some(FlushRequest { seq, sync });
        self.pump(now_ns)?;
        Ok(seq)
    }

    /// Reaps completions, submits the next batch if one is waiting, and returns what became
    /// durable since the last call (if anything). Never blocks. Call it every loop iteration.
    pub fn poll(&mut self, now_ns: u64) -> Result<Option<Durable>, WalError> {
        self.reap(now_ns);
        self.check_running()?;
        // Between batches (under load the next one is submitted right below): a deletion round
        // never races a roll's sync of the segment it leaves.
        self.schedule_deletions();
        self.pump(now_ns)?;
        self.check_running()?;
        Ok(self.ready.take())
    }

    /// Blocks until flush `flush_seq` (a synced one) is durable. For start-up, shutdown, tests and
    /// benchmarks — never on the shard's loop, which uses [`poll`](Self::poll).
    pub fn wait_durable(&mut self, flush_seq: u64) -> Result<Durable, WalError> {
        assert!(
            flush_seq < self.next_flush_seq,
            "waiting for flush {flush_seq}, which was never requested"
        );
        let mut clock = MonotonicClock;
        // Bounded by the disk: each pass reaps at least one completion or finds the report.
        loop {
            if let Some(durable) = self.poll(clock.now_ns())? {
                if durable.flush_seq >= flush_seq {
                    return Ok(durable);
                }
            }
            if self.last_reported_seq >= flush_seq {
                return Ok(Durable {
                    flush_seq: self.last_reported_seq,
                    last: self.durable.last,
                    hard_state: self.durable.hard_state,
                    sync_latency_ns: None,
                });
            }
            assert!(
                self.ops_in_flight > 0,
                "flush {flush_seq} is not durable and nothing is in flight: was it a flush without sync?"
            );
            self.block_for_a_completion()?;
        }
    }

    /// Blocks until nothing is in flight: every requested flush written, the next segment
    /// prepared, deletions done. For shutdown and tests — never on the shard's loop. Durable
    /// reports that arrive meanwhile are kept for the next [`poll`](Self::poll).
    pub fn wait_idle(&mut self) -> Result<(), WalError> {
        let mut clock = MonotonicClock;
        let mut kept = None;
        // Bounded by the disk and by the finite work queued: each pass reaps at least one op.
        loop {
            if let Some(durable) = self.poll(clock.now_ns())? {
                kept = Some(durable);
            }
            if self.ops_in_flight == 0 {
                debug_assert!(self.in_flight.is_none() && self.deleting.is_none());
                if self.ready.is_none() {
                    self.ready = kept;
                }
                return Ok(());
            }
            self.block_for_a_completion()?;
        }
    }

    /// Sleeps in the kernel until at least one completion is posted (an interrupted wait returns
    /// early, which callers treat like any other pass of their loop).
    fn block_for_a_completion(&self) -> Result<(), WalError> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            Err(source) => Err(WalError::Ring {
                op: "io_uring_enter",
                source,
            }),
        }
    }

    fn fail(&mut self, op: &'static str, errno: i32) {
        if self.failed.is_none() {
            tracing::error!(op, error = %std::io::Error::from_raw_os_error(errno), "WAL I/O failed; the WAL stops");
            self.failed = Some(Failure { op, errno });
        }
    }

    fn report(&mut self, durable: Durable) {
        assert!(
            durable.flush_seq >= self.last_reported_seq,
            "durable reports go forward: {} after {}",
            durable.flush_seq,
            self.last_reported_seq
        );
        self.last_reported_seq = durable.flush_seq;
        self.ready = Some(durable);
    }

    /// Queues `ops` as one linked chain (each starts after the previous succeeded) and submits.
    fn submit_chain(&mut self, ops: &[squeue::Entry]) {
        assert!(
            self.ops_in_flight + ops.len() <= RING_ENTRIES as usize,
            "the ring is sized for every op that can be in flight"
        );
        {
            let mut queue = self.ring.submission();
            for (i, op) in ops.iter().enumerate() {
                let op = if i + 1 < ops.len() {
                    op.clone().flags(squeue::Flags::IO_LINK)
                } else {
                    op.clone()
                };
                // SAFETY: every buffer, path and descriptor an op refers to is owned by `self`
                // (buffers, `deleting`, segment files, `dir_file`) and kept until its completion
                // is reaped; `Drop` waits for all of them.
                unsafe { queue.push(&op) }
                    .expect("the assert above leaves room in the submission queue");
            }
        }
        self.ops_in_flight += ops.len();
        if let Err(e) = self.ring.submit() {
            self.fail(
                "io_uring_enter (submit)",
                e.raw_os_error().unwrap_or(libc::EIO),
            );
        }
    }

    fn reap(&mut self, now_ns: u64) {
        // Bounded by the completion queue's size; what does not fit waits for the next poll.
        let mut done = [(0u64, 0i32); (RING_ENTRIES * 2) as usize];
        let mut count = 0;
        for cqe in self.ring.completion().take(done.len()) {
            done[count] = (cqe.user_data(), cqe.result());
            count += 1;
        }
        debug_assert!(count <= self.ops_in_flight);
        self.ops_in_flight -= count;
        for &(user_data, result) in &done[..count] {
            self.complete(user_data, result, now_ns);
        }
    }

    fn complete(&mut self, user_data: u64, result: i32, now_ns: u64) {
        let group = user_data >> 8;
        let step = (user_data & 0xff) as u8;
        if result < 0 {
            // A failed op cancels the rest of its chain (ECANCELED): the first error is the cause.
            self.fail(step_name(group, step), -result);
        }
        match group {
            g if g == Group::Batch as u64 => {
                let batch = self
                    .in_flight
                    .as_mut()
                    .expect("a batch completion arrives only while a batch is in flight");
                if step == STEP_WRITE && result >= 0 && result as u32 != batch.write_len {
                    // A short write breaks the link, so the sync did not cover the batch.
                    self.fail("write of a batch (short write)", libc::EIO);
                }
                let batch = self.in_flight.as_mut().expect("checked above");
                batch.ops_left -= 1;
                if batch.ops_left == 0 {
                    self.finish_batch(now_ns);
                }
            }
            g if g == Group::Prepare as u64 => {
                let Prepare::InFlight { ops_left, .. } = &mut self.prepare else {
                    unreachable!("a preparation completion arrives only while one is in flight");
                };
                *ops_left -= 1;
                if *ops_left == 0 {
                    let Prepare::InFlight { file, seq, .. } =
                        std::mem::replace(&mut self.prepare, Prepare::Idle)
                    else {
                        unreachable!("matched above");
                    };
                    self.prepare = Prepare::Ready { file, seq };
                }
            }
            _ => {
                let deleting = self
                    .deleting
                    .as_mut()
                    .expect("a deletion completion arrives only while a round is in flight");
                deleting.ops_left -= 1;
                if deleting.ops_left == 0 {
                    self.deleting = None;
                }
            }
        }
    }

    fn finish_batch(&mut self, now_ns: u64) {
        let done = self
            .in_flight
            .take()
            .expect("called when the last op completed");
        if let Some(index) = done.batch {
            self.batches[index].clear();
        }
        drop(done.previous_segment);
        if self.failed.is_some() {
            return;
        }
        self.stats.batches_written += u64::from(done.batch.is_some());
        let current = self
            .current
            .as_mut()
            .expect("batches are written to the current segment");
        current.unsynced = !done.sync;
        current.header_synced |= done.sync;
        if done.sync {
            failpoint!(WalAfterSyncBeforeDurable);
            self.durable = done.state;
            self.report(Durable {
                flush_seq: done.flush_seq,
                last: done.state.last,
                hard_state: done.state.hard_state,
                sync_latency_ns: Some(now_ns.saturating_sub(done.submitted_ns)),
            });
        }
    }

    /// Submits the requested flush if nothing is in flight (and the next segment is ready when the
    /// batch needs it).
    fn pump(&mut self, now_ns: u64) -> Result<(), WalError> {
        if self.in_flight.is_some() || self.failed.is_some() {
            return Ok(());
        }
        let Some(request) = self.requested else {
            return Ok(());
        };
        let records_len = self.batches[self.active].records_len() as u64;
        if records_len == 0 {
            let unsynced = self.current.as_ref().is_some_and(|c| c.unsynced);
            if request.sync && unsynced {
                self.submit_sync_only(request, now_ns);
            } else {
                self.requested = None;
                self.submitted = self.appended;
                if request.sync {
                    self.durable = self.appended;
                    self.report(Durable {
                        flush_seq: request.seq,
                        last: self.appended.last,
                        hard_state: self.appended.hard_state,
                        sync_latency_ns: None,
                    });
                }
            }
            return Ok(());
        }
        let fits = self
            .current
            .as_ref()
            .is_some_and(|c| c.write_offset + records_len <= c.capacity_bytes);
        let previous = if fits {
            None
        } else {
            match self.prepare {
                Prepare::Ready { .. } => self.roll(),
                Prepare::InFlight { .. } => return Ok(()),
                Prepare::Idle => return self.start_prepare(),
            }
        };
        self.submit_batch(request, previous, now_ns);
        if matches!(self.prepare, Prepare::Idle) && self.failed.is_none() {
            self.start_prepare()?;
        }
        Ok(())
    }

    /// Makes the prepared segment current, its header in the buffer's reserved slot, and returns
    /// the segment it replaces.
    fn roll(&mut self) -> Option<CurrentSegment> {
        let Prepare::Ready { file, seq } = std::mem::replace(&mut self.prepare, Prepare::Idle)
        else {
            unreachable!("roll is called only with a ready segment");
        };
        let base = match self.durability {
            Durability::Fsync => self.submitted,
            // Memory mode persists no log: a restart must not believe it has one.
            Durability::Memory => LogState {
                hard_state: self.submitted.hard_state,
                ..LogState::default()
            },
        };
        let header = SegmentHeader {
            durability: super::durability::to_byte(self.durability),
            seq,
            base,
        };
        record::write_segment_header(
            &mut self.batches[self.active].bytes[..SEGMENT_HEADER_LEN],
            &header,
        );
        let previous = self.current.replace(CurrentSegment {
            file,
            seq,
            write_offset: 0,
            capacity_bytes: self.segment_bytes,
            unsynced: false,
            header_synced: false,
            last_entry_index: None,
        });
        if let Some(previous) = &previous {
            assert_eq!(previous.seq + 1, seq, "segments are consecutive");
            self.closed.push_back(ClosedSegment {
                seq: previous.seq,
                last_entry_index: previous.last_entry_index,
            });
        }
        self.stats.segments_rolled += 1;
        failpoint!(WalSegmentRoll);
        previous
    }

    /// Writes the active buffer to the current segment (after syncing `previous`, the segment
    /// just rolled away from, if it holds unsynced writes), with a linked `fdatasync` if `sync`.
    fn submit_batch(
        &mut self,
        request: FlushRequest,
        previous: Option<CurrentSegment>,
        now_ns: u64,
    ) {
        let index = self.active;
        let current = self
            .current
            .as_mut()
            .expect("pump made sure there is a segment with room");
        // A fresh segment gets the header from the reserved slot in the same write.
        let from = if current.write_offset == 0 {
            0
        } else {
            SEGMENT_HEADER_LEN
        };
        let batch = &self.batches[index];
        let bytes = &batch.bytes[from..batch.len];
        let write_len = u32::try_from(bytes.len()).expect("buffers are at most 256 MiB");
        let offset = current.write_offset;
        assert!(offset + u64::from(write_len) <= current.capacity_bytes);
        failpoint!(WalBeforeWrite);
        #[cfg(feature = "failpoints")]
        crash_mid_write(&current.file, bytes, offset, batch.last_record_start - from);

        let fd = types::Fd(current.file.as_raw_fd());
        let nop = opcode::Nop::new().build();
        let mut ops = [nop.clone(), nop.clone(), nop];
        let mut count = 0;
        if let Some(previous) = previous.as_ref().filter(|p| p.unsynced) {
            ops[count] = opcode::Fsync::new(types::Fd(previous.file.as_raw_fd()))
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(user_data(Group::Batch, STEP_SYNC_PREVIOUS));
            count += 1;
            self.stats.fdatasyncs += 1;
        }
        ops[count] = opcode::Write::new(fd, bytes.as_ptr(), write_len)
            .offset(offset)
            .build()
            .user_data(user_data(Group::Batch, STEP_WRITE));
        count += 1;
        if request.sync {
            ops[count] = opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(user_data(Group::Batch, STEP_SYNC));
            count += 1;
            self.stats.fdatasyncs += 1;
        }

        current.write_offset += u64::from(write_len);
        if let Some(max) = batch.max_entry_index {
            current.last_entry_index = Some(current.last_entry_index.map_or(max, |i| i.max(max)));
        }
        self.stats.bytes_written += u64::from(write_len);
        self.in_flight = Some(InFlight {
            flush_seq: request.seq,
            batch: Some(index),
            sync: request.sync,
            ops_left: count as u8,
            write_len,
            submitted_ns: now_ns,
            state: self.appended,
            previous_segment: previous.map(|p| p.file),
        });
        self.submitted = self.appended;
        self.requested = None;
        self.active ^= 1;
        assert_eq!(
            self.batches[self.active].len, SEGMENT_HEADER_LEN,
            "the other buffer was released when its batch completed"
        );
        self.submit_chain(&ops[..count]);
    }

    /// An `fdatasync` alone, for a synced flush with nothing new to write after unsynced ones.
    fn submit_sync_only(&mut self, request: FlushRequest, now_ns: u64) {
        let current = self
            .current
            .as_ref()
            .expect("unsynced writes are in the current segment");
        let op = opcode::Fsync::new(types::Fd(current.file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(user_data(Group::Batch, STEP_SYNC));
        self.in_flight = Some(InFlight {
            flush_seq: request.seq,
            batch: None,
            sync: true,
            ops_left: 1,
            write_len: 0,
            submitted_ns: now_ns,
            state: self.appended,
            previous_segment: None,
        });
        self.submitted = self.appended;
        self.requested = None;
        self.stats.fdatasyncs += 1;
        self.submit_chain(&[op]);
    }

    /// Creates the next segment and preallocates and syncs it (and its name) through the ring.
    fn start_prepare(&mut self) -> Result<(), WalError> {
        assert!(matches!(self.prepare, Prepare::Idle));
        let seq = self.next_seq;
        let (file, path) = match segment::create(&self.dir, seq) {
            Ok(created) => created,
            Err(error) => {
                if let WalError::Io { source, .. } = &error {
                    self.fail(
                        "create of the next segment",
                        source.raw_os_error().unwrap_or(libc::EIO),
                    );
                }
                return Err(error);
            }
        };
        self.next_seq += 1;
        failpoint!(WalSegmentCreated);
        let fd = types::Fd(file.as_raw_fd());
        let nop = opcode::Nop::new().build();
        let mut ops = [nop.clone(), nop.clone(), nop];
        let mut count = 0;
        match self.preallocation {
            Preallocation::Fallocate => {
                ops[count] = opcode::Fallocate::new(fd, self.segment_bytes)
                    .build()
                    .user_data(user_data(Group::Prepare, STEP_FALLOCATE));
                count += 1;
            }
            // Metadata only (no data blocks): cheap enough to do inline on this rare path.
            Preallocation::Sparse => {
                if let Err(e) = file.set_len(self.segment_bytes) {
                    self.fail(
                        "ftruncate of the next segment",
                        e.raw_os_error().unwrap_or(libc::EIO),
                    );
                    return Err(WalError::io("ftruncate", path, e));
                }
            }
        }
        ops[count] = opcode::Fsync::new(fd)
            .build()
            .user_data(user_data(Group::Prepare, STEP_FSYNC_FILE));
        count += 1;
        ops[count] = opcode::Fsync::new(types::Fd(self.dir_file.as_raw_fd()))
            .build()
            .user_data(user_data(Group::Prepare, STEP_FSYNC_DIR));
        count += 1;
        self.prepare = Prepare::InFlight {
            file,
            seq,
            ops_left: count as u8,
        };
        self.submit_chain(&ops[..count]);
        Ok(())
    }

    /// Unlinks the oldest closed segments whose entries are all at or below the durable compaction
    /// point, then syncs the directory — a round of at most `DELETE_ROUND_MAX`, oldest first, so a
    /// crash leaves a contiguous run of segments.
    fn schedule_deletions(&mut self) {
        if self.deleting.is_some() || self.in_flight.is_some() || self.failed.is_some() {
            return;
        }
        // The current segment's header restates the state the deleted segments held; it must be
        // on disk first.
        if !self.current.as_ref().is_some_and(|c| c.header_synced) {
            return;
        }
        let compacted = self.durable.compacted.index;
        let deletable = |s: &ClosedSegment| s.last_entry_index.is_none_or(|i| i <= compacted);
        if !self.closed.front().is_some_and(deletable) {
            return;
        }
        let mut names = Vec::with_capacity(DELETE_ROUND_MAX);
        while names.len() < DELETE_ROUND_MAX {
            let Some(oldest) = self.closed.front().copied().filter(deletable) else {
                break;
            };
            self.closed.pop_front();
            names.push(
                CString::new(segment::file_name(oldest.seq))
                    .expect("segment names have no NUL byte"),
            );
        }
        #[cfg(feature = "failpoints")]
        {
            use super::failpoint::{crash, fires, Failpoint};
            if fires(Failpoint::WalSegmentDelete) {
                // SAFETY: unlinkat with a directory descriptor we own and a NUL-terminated name.
                let rc = unsafe { libc::unlinkat(self.dir_file.as_raw_fd(), names[0].as_ptr(), 0) };
                assert_eq!(
                    rc,
                    0,
                    "failpoint unlink: {}",
                    std::io::Error::last_os_error()
                );
                crash(Failpoint::WalSegmentDelete);
            }
        }
        let dir_fd = types::Fd(self.dir_file.as_raw_fd());
        let nop = opcode::Nop::new().build();
        let mut ops: [squeue::Entry; DELETE_ROUND_MAX + 1] = std::array::from_fn(|_| nop.clone());
        for (step, name) in names.iter().enumerate() {
            ops[step] = opcode::UnlinkAt::new(dir_fd, name.as_ptr())
                .build()
                .user_data(user_data(Group::Delete, step as u8));
        }
        let count = names.len() + 1;
        ops[names.len()] = opcode::Fsync::new(dir_fd)
            .build()
            .user_data(user_data(Group::Delete, u8::MAX));
        self.stats.segments_deleted += names.len() as u64;
        self.deleting = Some(Deleting {
            _names: names,
            ops_left: count,
        });
        self.submit_chain(&ops[..count]);
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("durability", &self.durability)
            .field("dir", &self.dir)
            .field("appended", &self.appended)
            .field("durable", &self.durable)
            .field("current_seq", &self.current.as_ref().map(|c| c.seq))
            .field("closed", &self.closed.len())
            .field("ops_in_flight", &self.ops_in_flight)
            .field("failed", &self.failed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Drop for Wal {
    /// Waits for every operation in flight: the kernel may still be reading the write buffers and
    /// path names, which must outlive it.
    fn drop(&mut self) {
        // Bounded by the disk: each pass reaps at least one completion.
        while self.ops_in_flight > 0 {
            if let Err(e) = self.block_for_a_completion() {
                tracing::error!(error = %e, "cannot wait for WAL writes in flight; leaking their buffers");
                for batch in &mut self.batches {
                    std::mem::forget(std::mem::take(&mut batch.bytes));
                }
                std::mem::forget(self.deleting.take());
                return;
            }
            let reaped = self.ring.completion().count();
            self.ops_in_flight -= reaped.min(self.ops_in_flight);
        }
    }
}

/// Failpoints inside a write: leave part or all of the batch in the file, then crash.
#[cfg(feature = "failpoints")]
fn crash_mid_write(file: &File, bytes: &[u8], offset: u64, last_record_start: usize) {
    use super::failpoint::{crash, fires, write_synchronously, Failpoint};
    if fires(Failpoint::WalTornWrite) {
        let cut = last_record_start + (bytes.len() - last_record_start) / 2;
        write_synchronously(file, &bytes[..cut], offset);
        crash(Failpoint::WalTornWrite);
    }
    if fires(Failpoint::WalAfterWriteBeforeSync) {
        write_synchronously(file, bytes, offset);
        crash(Failpoint::WalAfterWriteBeforeSync);
    }
}
