//! WAL errors: each says what was wrong, with the values, and what the operator or caller does next.

use std::path::PathBuf;

use super::record::{HeaderFault, Malformed, RecordFault};
use super::state::LogRuleError;
use super::Durability;

/// Why a WAL segment is corrupt (as opposed to ending in a torn tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// A record that does not verify, before the tail of the last segment.
    #[error(transparent)]
    Record(#[from] RecordFault),
    /// The segment header is not usable.
    #[error("bad segment header: {0}")]
    Header(#[from] HeaderFault),
    /// A record whose checksum verifies but whose body does not parse.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// A record that does not fit the log before it (an index gap, a term going back, …).
    #[error("record breaks the log: {0}")]
    Rule(#[from] LogRuleError),
    /// Segment sequence numbers are not consecutive: a segment is missing.
    #[error("segment sequence {found} follows {previous}: segment {expected} is missing")]
    SequenceGap {
        /// Sequence of the segment before.
        previous: u64,
        /// The sequence that should follow.
        expected: u64,
        /// The sequence found.
        found: u64,
    },
    /// The header's sequence number disagrees with the file name.
    #[error("the header says segment {in_header} but the file name says {in_name}")]
    NameMismatch {
        /// Sequence in the file name.
        in_name: u64,
        /// Sequence in the header.
        in_header: u64,
    },
    /// The header's starting state differs from where the previous segment ended: records of the
    /// previous segment are missing.
    #[error(
        "the segment starts from {what} = {in_header} but the previous segment ended at {previous}"
    )]
    BaseMismatch {
        /// Which field disagrees.
        what: &'static str,
        /// Value in this segment's header.
        in_header: u64,
        /// Value at the end of the previous segment.
        previous: u64,
    },
    /// Non-zero bytes after the end of a segment that is not the last: a record's length was
    /// damaged and the rest of the segment was cut off.
    #[error("non-zero bytes at offset {first_nonzero_offset}, after the end of the records")]
    DataAfterEnd {
        /// First non-zero byte after the end.
        first_nonzero_offset: u64,
    },
    /// A log entry or snapshot mark in a WAL written in `memory` mode, which only writes hard
    /// states.
    #[error("a log record in a WAL written in memory mode (which writes only hard states)")]
    LogRecordInMemoryMode,
}

/// Invalid [`WalOptions`](super::WalOptions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalOptionsError {
    /// `buffer_bytes` out of range.
    #[error("wal buffer_bytes = {buffer_bytes} is invalid: it must be between {min} and {max} bytes; it bounds one flushed batch")]
    BufferBytes {
        /// The rejected value.
        buffer_bytes: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// `segment_bytes` out of range or smaller than one full batch.
    #[error("wal segment_bytes = {segment_bytes} is invalid: it must be between {min} and {max} bytes and at least buffer_bytes ({buffer_bytes}), so one full batch fits a fresh segment")]
    SegmentBytes {
        /// The rejected value.
        segment_bytes: u64,
        /// The configured buffer size.
        buffer_bytes: usize,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
}

/// Everything the WAL can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The options were rejected.
    #[error(transparent)]
    Options(#[from] WalOptionsError),
    /// A file operation failed during recovery, start-up or shutdown.
    #[error("WAL: {op} {path} failed: {source}")]
    Io {
        /// What was being done ("open", "read", "fallocate", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// Another process (or another `Wal` in this one) holds the WAL directory.
    #[error("WAL directory {dir} is in use by another process (or another open WAL); stop it first — two writers would destroy the log")]
    Locked {
        /// The WAL directory.
        dir: PathBuf,
    },
    /// Setting up or registering with the io_uring failed.
    #[error("WAL io_uring: {op} failed: {source}; check that io_uring is enabled (/proc/sys/kernel/io_uring_disabled = 0) and RLIMIT_MEMLOCK")]
    Ring {
        /// The call that failed.
        op: &'static str,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// A record before the tail of the last segment is damaged: acknowledged data may be lost.
    #[error(
        "WAL segment {path} is corrupt at byte offset {offset}: {reason}. Data that may have been \
         acknowledged is damaged, so this node refuses to start: restore it from a peer (stop it, \
         move its data directory aside, and rejoin it to the cluster as a fresh member)"
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad record in it.
        offset: u64,
        /// What is wrong.
        reason: CorruptReason,
    },
    /// The WAL on disk was written in another durability mode.
    #[error(
        "WAL segment {path} was written in durability mode {on_disk} but this node is configured \
         for {configured}; switching modes would lose or invent acknowledged state. Set durability \
         = \"{on_disk}\", or restore the node from a peer (move its data directory aside and rejoin)"
    )]
    ModeMismatch {
        /// The segment that records the mode.
        path: PathBuf,
        /// The mode on disk.
        on_disk: Durability,
        /// The configured mode.
        configured: Durability,
    },
    /// The write buffer is full: flush and poll until the batch in flight is durable, then retry.
    #[error("WAL write buffer full: {needed_bytes} bytes needed, {free_bytes} free; flush, poll until durable, then retry")]
    Backpressure {
        /// Bytes the rejected record needs.
        needed_bytes: usize,
        /// Bytes free in the buffer.
        free_bytes: usize,
    },
    /// One record can never fit a write buffer.
    #[error("WAL record of {record_bytes} bytes (entries from index {first_index}) exceeds the write buffer of {buffer_bytes} bytes; append fewer entries per call or raise wal buffer_bytes")]
    RecordTooLarge {
        /// First index of the rejected entries.
        first_index: u64,
        /// Size the record needs.
        record_bytes: usize,
        /// The buffer's capacity for records.
        buffer_bytes: usize,
    },
    /// The append does not fit the log (caller bug or stale request).
    #[error("WAL append rejected: {0}")]
    Rule(#[from] LogRuleError),
    /// A write or sync failed earlier; what reached the disk is unknown, so the WAL accepts
    /// nothing more. Restart the node: recovery finds what is durable.
    #[error("WAL stopped after {op} failed: {source}; what reached the disk is unknown, restart the node so recovery can establish it")]
    Failed {
        /// The operation that failed.
        op: &'static str,
        /// What the kernel said.
        source: std::io::Error,
    },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
