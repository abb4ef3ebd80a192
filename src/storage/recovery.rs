//! Recovery: read every segment once, verify every record, and tell a torn tail (the last write of a
//! crash, cut off) from corruption (damage to data that may have been acknowledged).
//!
//! The rule, from the order in which the WAL writes (one batch in flight at a time; a segment is
//! synced before the next one receives its first byte):
//!
//! - In the **last** segment, the first record that is cut off, fails its checksum or is zeros ends
//!   the log. Only the batch in flight at the crash can be damaged there, and it was never reported
//!   durable. [`WalRecovery::start`] cuts the file at that offset and preallocates it back to
//!   zeros, so stale bytes of the torn write can never be read again after a later, shorter record.
//! - **Anywhere else** — an earlier segment, a bad header, a record that verifies but breaks the log
//!   (an index gap), a missing segment, a header whose starting state differs from where the
//!   previous segment ended — the data was synced before and may have been acknowledged: recovery
//!   refuses with [`WalError::Corrupt`], naming the file and offset.
//!
//! Memory stays bounded: one segment's bytes at a time, plus a short list of "runs" (byte ranges of
//! live entries), whose length grows with segments and suffix replacements, not with entries. The
//! entries themselves are streamed by [`EntryReader`].

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{CorruptReason, WalError};
use super::record::{
    self, Decoded, HeaderFault, LogRecord, RecordFault, PREFIX_LEN, SEGMENT_HEADER_LEN,
};
use super::segment;
use super::state::{Entry, HardState, LogPosition, LogState};
use super::wal::{Wal, WalOptions};
use super::Durability;

/// Where recovery found a torn tail, and why it ends the log there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub path: PathBuf,
    /// Byte offset of the first record that did not verify (0: the header itself was torn).
    pub offset: u64,
    /// What was wrong with it.
    pub reason: RecordFault,
}

/// A segment that holds records.
#[derive(Debug, Clone)]
pub(crate) struct ScannedSegment {
    pub seq: u64,
    pub path: PathBuf,
    /// End of the last valid record.
    pub valid_len: u64,
    /// Size of the file (its preallocated capacity).
    pub file_len: u64,
    /// Highest entry index written in it, if any entry was.
    pub last_entry_index: Option<u64>,
}

/// A byte range of one segment whose entries in `first_index ..= last_index` are live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// Position in [`Scan::segments`].
    segment: usize,
    start: u64,
    end: u64,
    first_index: u64,
    last_index: u64,
    /// A later record replaced part of this run: it may not grow any more.
    closed: bool,
}

/// The live runs, kept in log order as records replace suffixes and snapshots compact prefixes.
#[derive(Debug, Default)]
struct Runs(Vec<Run>);

impl Runs {
    fn on_entries(&mut self, segment: usize, start: u64, end: u64, first: u64, last: u64) {
        while let Some(run) = self.0.last_mut() {
            if run.first_index >= first {
                self.0.pop();
                continue;
            }
            if run.last_index >= first {
                run.last_index = first - 1;
                run.closed = true;
            }
            break;
        }
        match self.0.last_mut() {
            Some(run) if !run.closed && run.segment == segment && run.last_index + 1 == first => {
                run.end = end;
                run.last_index = last;
            }
            _ => self.0.push(Run {
                segment,
                start,
                end,
                first_index: first,
                last_index: last,
                closed: false,
            }),
        }
    }

    fn on_snapshot_mark(&mut self, index: u64, discard_suffix: bool) {
        if discard_suffix {
            self.0.clear();
            return;
        }
        self.0.retain(|run| run.last_index > index);
        for run in &mut self.0 {
            run.first_index = run.first_index.max(index + 1);
        }
    }
}

/// What a scan of the WAL directory found, before any repair.
#[derive(Debug)]
pub(crate) struct Scan {
    pub dir: PathBuf,
    /// Segments that hold records, in sequence order.
    pub segments: Vec<ScannedSegment>,
    /// Trailing segments that were never written (or whose header write was torn).
    pub unused: Vec<PathBuf>,
    pub state: LogState,
    runs: Runs,
    pub torn: Option<TornTail>,
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<CorruptReason>) -> WalError {
    WalError::Corrupt {
        path: path.to_owned(),
        offset,
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, WalError> {
    std::fs::read(path).map_err(|e| WalError::io("read segment", path, e))
}

/// Whether the segment's first bytes are zeros (or missing): it never received a record.
fn never_written(path: &Path) -> Result<bool, WalError> {
    let mut file = std::fs::File::open(path).map_err(|e| WalError::io("open segment", path, e))?;
    let mut prefix = [0u8; PREFIX_LEN];
    let mut filled = 0;
    while filled < PREFIX_LEN {
        match file.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WalError::io("read segment", path, e)),
        }
    }
    Ok(prefix.iter().all(|&b| b == 0))
}

/// Reads and verifies every segment in `dir`, written in mode `configured`.
pub(crate) fn scan(dir: &Path, configured: Durability) -> Result<Scan, WalError> {
    let mut files = segment::list(dir)?;
    let mut unused = Vec::new();
    while let Some((_, path)) = files.last() {
        if !never_written(path)? {
            break;
        }
        let (_, path) = files.pop().expect("just looked at it");
        unused.push(path);
    }
    unused.reverse();

    let mut scan = Scan {
        dir: dir.to_owned(),
        segments: Vec::with_capacity(files.len()),
        unused,
        state: LogState::default(),
        runs: Runs::default(),
        torn: None,
    };
    let count = files.len();
    for (position, (seq, path)) in files.into_iter().enumerate() {
        let is_last = position + 1 == count;
        let bytes = read_file(&path)?;
        let header = match record::decode(&bytes, 0) {
            Decoded::Record { kind, body, .. } => {
                record::read_segment_header(kind, body).map_err(|e| corrupt(&path, 0, e))?
            }
            Decoded::End => return Err(corrupt(&path, 0, HeaderFault::Missing)),
            Decoded::Fault(fault) if is_last => {
                tracing::warn!(
                    file = %path.display(), offset = 0, reason = %fault,
                    "the last WAL segment's header write was torn by a crash; the segment is unused"
                );
                scan.torn = Some(TornTail {
                    path: path.clone(),
                    offset: 0,
                    reason: fault,
                });
                scan.unused.insert(0, path);
                break;
            }
            Decoded::Fault(fault) => return Err(corrupt(&path, 0, fault)),
        };
        scan.check_header(&path, seq, &header, configured)?;
        let mut segment = ScannedSegment {
            seq,
            path,
            valid_len: 0,
            file_len: bytes.len() as u64,
            last_entry_index: None,
        };
        scan.read_records(&mut segment, &bytes, is_last, configured)?;
        scan.segments.push(segment);
    }
    Ok(scan)
}

impl Scan {
    /// Checks a header against the file name, the configured mode and the previous segment.
    fn check_header(
        &mut self,
        path: &Path,
        seq: u64,
        header: &record::SegmentHeader,
        configured: Durability,
    ) -> Result<(), WalError> {
        let on_disk = super::durability::from_byte(header.durability)
            .expect("read_segment_header accepts only known durability bytes");
        if on_disk != configured {
            return Err(WalError::ModeMismatch {
                path: path.to_owned(),
                on_disk,
                configured,
            });
        }
        if header.seq != seq {
            return Err(corrupt(
                path,
                0,
                CorruptReason::NameMismatch {
                    in_name: seq,
                    in_header: header.seq,
                },
            ));
        }
        let Some(previous) = self.segments.last() else {
            self.state = header.base;
            return Ok(());
        };
        if seq != previous.seq + 1 {
            return Err(corrupt(
                path,
                0,
                CorruptReason::SequenceGap {
                    previous: previous.seq,
                    expected: previous.seq + 1,
                    found: seq,
                },
            ));
        }
        let ours = &header.base;
        let theirs = &self.state;
        let (our_hs, their_hs) = (&ours.hard_state, &theirs.hard_state);
        let fields = [
            ("last index", ours.last.index, theirs.last.index),
            ("last term", ours.last.term, theirs.last.term),
            (
                "compacted index",
                ours.compacted.index,
                theirs.compacted.index,
            ),
            ("compacted term", ours.compacted.term, theirs.compacted.term),
            ("hard state term", our_hs.term, their_hs.term),
            (
                "hard state has a vote",
                u64::from(our_hs.vote.is_some()),
                u64::from(their_hs.vote.is_some()),
            ),
            (
                "hard state vote",
                our_hs.vote.unwrap_or(0),
                their_hs.vote.unwrap_or(0),
            ),
            ("hard state commit", our_hs.commit, their_hs.commit),
        ];
        for (what, in_header, previous) in fields {
            if in_header != previous {
                return Err(corrupt(
                    path,
                    0,
                    CorruptReason::BaseMismatch {
                        what,
                        in_header,
                        previous,
                    },
                ));
            }
        }
        Ok(())
    }

    /// Reads the records after the header of one segment, applying them to the state.
    fn read_records(
        &mut self,
        segment: &mut ScannedSegment,
        bytes: &[u8],
        is_last: bool,
        configured: Durability,
    ) -> Result<(), WalError> {
        let position = self.segments.len();
        let path = segment.path.clone();
        let mut offset = SEGMENT_HEADER_LEN;
        // Bounded: every record advances `offset` by at least PREFIX_LEN bytes.
        loop {
            match record::decode(bytes, offset) {
                Decoded::End => {
                    if !is_last {
                        if let Some(nonzero) = bytes[offset..].iter().position(|&b| b != 0) {
                            return Err(corrupt(
                                &path,
                                offset as u64,
                                CorruptReason::DataAfterEnd {
                                    first_nonzero_offset: (offset + nonzero) as u64,
                                },
                            ));
                        }
                    }
                    break;
                }
                Decoded::Fault(fault) if is_last => {
                    tracing::warn!(
                        file = %path.display(), offset, reason = %fault,
                        "the WAL ends in a torn write from a crash; truncating it there"
                    );
                    self.torn = Some(TornTail {
                        path: path.clone(),
                        offset: offset as u64,
                        reason: fault,
                    });
                    break;
                }
                Decoded::Fault(fault) => return Err(corrupt(&path, offset as u64, fault)),
                Decoded::Record { kind, body, end } => {
                    let at = offset as u64;
                    let log_record =
                        record::read_log_record(kind, body).map_err(|e| corrupt(&path, at, e))?;
                    if configured == Durability::Memory
                        && !matches!(log_record, LogRecord::HardState(_))
                    {
                        return Err(corrupt(&path, at, CorruptReason::LogRecordInMemoryMode));
                    }
                    self.apply(log_record, segment, position, at, end as u64)
                        .map_err(|e| corrupt(&path, at, e))?;
                    offset = end;
                }
            }
        }
        segment.valid_len = offset as u64;
        Ok(())
    }

    fn apply(
        &mut self,
        log_record: LogRecord<'_>,
        segment: &mut ScannedSegment,
        position: usize,
        start: u64,
        end: u64,
    ) -> Result<(), super::state::LogRuleError> {
        match log_record {
            LogRecord::Entries {
                first_index,
                first_term,
                last,
                ..
            } => {
                self.state.apply_entries(first_index, first_term, last)?;
                self.runs
                    .on_entries(position, start, end, first_index, last.index);
                segment.last_entry_index = Some(
                    segment
                        .last_entry_index
                        .map_or(last.index, |i| i.max(last.index)),
                );
            }
            LogRecord::HardState(hs) => self.state.apply_hard_state(hs)?,
            LogRecord::SnapshotMark {
                snapshot,
                discard_suffix,
            } => {
                self.state.apply_snapshot_mark(snapshot, discard_suffix)?;
                self.runs.on_snapshot_mark(snapshot.index, discard_suffix);
            }
        }
        Ok(())
    }
}

/// What recovery found in the WAL: the state to restart from and the entries to replay. Read the
/// entries with [`entries`](Self::entries), then [`start`](Self::start) the WAL (which repairs a
/// torn tail and prepares the next segment) to accept new writes.
#[derive(Debug)]
pub struct WalRecovery {
    pub(crate) options: WalOptions,
    pub(crate) scan: Scan,
    /// Held until the recovery (and then the WAL) is dropped.
    pub(crate) lock: segment::DirLock,
}

impl WalRecovery {
    /// Reads and verifies the WAL under `data_dir` (creating an empty one if there is none), and
    /// locks it against other processes. Read-only: repairs wait for [`start`](Self::start).
    pub fn open(data_dir: &Path, options: WalOptions) -> Result<Self, WalError> {
        options.validate()?;
        let dir = data_dir.join(segment::WAL_DIR);
        super::dir::ensure(&dir).map_err(|e| WalError::io("create directory", &dir, e))?;
        let lock = segment::DirLock::acquire(&dir)?;
        let scan = scan(&dir, options.durability)?;
        Ok(Self {
            options,
            scan,
            lock,
        })
    }

    /// The durability mode (the WAL on disk was checked to be written in it).
    pub fn durability(&self) -> Durability {
        self.options.durability
    }

    /// The latest hard state (all zeros and no vote for a new node).
    pub fn hard_state(&self) -> HardState {
        self.scan.state.hard_state
    }

    /// The last entry of the log; in `memory` mode always `0, 0` (entries are not written).
    pub fn last(&self) -> LogPosition {
        self.scan.state.last
    }

    /// The snapshot position the log is compacted up to: the entries start after it. The node must
    /// hold a snapshot at least this new (see [`super::check_snapshot_covers_log`]).
    pub fn compacted(&self) -> LogPosition {
        self.scan.state.compacted
    }

    /// The torn tail that ended the log, if the last write before the crash was cut off.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.scan.torn.as_ref()
    }

    /// The live entries after the compacted index, in index order, read segment by segment.
    pub fn entries(&self) -> EntryReader<'_> {
        EntryReader {
            scan: &self.scan,
            run: 0,
            offset: self.scan.runs.0.first().map_or(0, |r| r.start),
            loaded: None,
            bytes: Vec::new(),
            queue: VecDeque::new(),
            next_index: self.scan.state.compacted.index + 1,
            done: false,
        }
    }

    /// Repairs what recovery found (cuts the torn tail, removes unused and fully compacted
    /// segments), prepares the next segment and returns the WAL, ready to append after
    /// [`last`](Self::last).
    pub fn start(self) -> Result<Wal, WalError> {
        Wal::start(self)
    }
}

/// Streams the live entries found by recovery, verifying them again as it reads (the files could
/// have changed since the scan). Holds one segment's bytes and one record's entries at a time.
#[derive(Debug)]
pub struct EntryReader<'a> {
    scan: &'a Scan,
    run: usize,
    offset: u64,
    loaded: Option<usize>,
    bytes: Vec<u8>,
    queue: VecDeque<Entry>,
    next_index: u64,
    done: bool,
}

impl EntryReader<'_> {
    fn next_entry(&mut self) -> Result<Option<Entry>, WalError> {
        // Bounded: each pass either yields, consumes one record, or moves to the next run.
        loop {
            if let Some(entry) = self.queue.pop_front() {
                return Ok(Some(entry));
            }
            let Some(run) = self.scan.runs.0.get(self.run).copied() else {
                let expected_last = self.scan.state.last.index;
                if self.next_index != expected_last + 1 {
                    let path = self
                        .scan
                        .segments
                        .last()
                        .map_or_else(|| self.scan.dir.clone(), |s| s.path.clone());
                    return Err(corrupt(
                        &path,
                        0,
                        super::state::LogRuleError::Gap {
                            first_index: expected_last + 1,
                            last_index: self.next_index - 1,
                        },
                    ));
                }
                return Ok(None);
            };
            if self.offset >= run.end {
                self.run += 1;
                if let Some(next) = self.scan.runs.0.get(self.run) {
                    self.offset = next.start;
                }
                continue;
            }
            let segment = &self.scan.segments[run.segment];
            if self.loaded != Some(run.segment) {
                self.bytes = read_file(&segment.path)?;
                self.loaded = Some(run.segment);
            }
            let at = self.offset;
            let offset = usize::try_from(at).expect("segment offsets fit in memory");
            let Decoded::Record { kind, body, end } = record::decode(&self.bytes, offset) else {
                return Err(corrupt(
                    &segment.path,
                    at,
                    RecordFault::Truncated {
                        needed_bytes: PREFIX_LEN as u64,
                        available_bytes: (self.bytes.len() - offset.min(self.bytes.len())) as u64,
                    },
                ));
            };
            self.offset = end as u64;
            let log_record =
                record::read_log_record(kind, body).map_err(|e| corrupt(&segment.path, at, e))?;
            let LogRecord::Entries { body, .. } = log_record else {
                continue;
            };
            for (index, entry) in body.iter() {
                if index < run.first_index || index > run.last_index {
                    continue;
                }
                if index != self.next_index {
                    return Err(corrupt(
                        &segment.path,
                        at,
                        super::state::LogRuleError::Gap {
                            first_index: index,
                            last_index: self.next_index - 1,
                        },
                    ));
                }
                self.next_index += 1;
                self.queue.push_back(Entry {
                    index,
                    term: entry.term,
                    kind: entry.kind,
                    data: entry.data.to_vec(),
                });
            }
        }
    }
}

impl Iterator for EntryReader<'_> {
    type Item = Result<Entry, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_entry().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_suffix_replacement_and_compaction() {
        let mut runs = Runs::default();
        runs.on_entries(0, 100, 200, 1, 5);
        runs.on_entries(0, 200, 300, 6, 8);
        assert_eq!(runs.0.len(), 1, "a contiguous append extends the run");
        runs.on_entries(0, 300, 350, 4, 4);
        assert_eq!(
            runs.0
                .iter()
                .map(|r| (r.first_index, r.last_index))
                .collect::<Vec<_>>(),
            vec![(1, 3), (4, 4)]
        );
        runs.on_entries(0, 350, 400, 5, 6);
        assert_eq!(
            runs.0.len(),
            2,
            "appending after the replacement extends the new run"
        );
        runs.on_entries(1, 0, 50, 7, 7);
        assert_eq!(runs.0.len(), 3, "a new segment starts a new run");
        runs.on_snapshot_mark(3, false);
        assert_eq!(
            runs.0
                .iter()
                .map(|r| (r.first_index, r.last_index))
                .collect::<Vec<_>>(),
            vec![(4, 6), (7, 7)]
        );
        runs.on_snapshot_mark(4, true);
        assert!(runs.0.is_empty());
    }
}
