//! The WAL record format: framing, checksums and the body of each record kind.
//!
//! ```text
//!  record  = len u32 | crc32c u32 | kind u8 | body          (little-endian)
//!  len     = 1 + body length (the kind byte and the body); 0 never appears in a record
//!  crc32c  = over len (4 bytes) | kind | body
//! ```
//!
//! Segments are preallocated with zeros, so nine zero bytes where a record would start mean "the
//! log ends here" — a record always has `len >= 1`. Anything else that does not verify (a record
//! running past the end of the file, a checksum mismatch, a zero length with non-zero bytes after
//! it) is a [`RecordFault`]: the torn tail of a crash when it is the last thing in the last
//! segment, corruption anywhere else.
//!
//! Bodies:
//!
//! ```text
//!  segment header  magic u64 | version u16 | durability u8 | seq u64 | base state (below)
//!  base state      last index u64 | last term u64 | compacted index u64 | compacted term u64 | hard state
//!  hard state      term u64 | has vote u8 | vote u64 | commit u64
//!  entries         first index u64 | count u32 | count × (term u64 | kind u8 | len u32 | data)
//!  snapshot mark   index u64 | term u64 | discard suffix u8
//! ```

use super::state::{HardState, LogPosition, LogState};

/// Bytes before a record's body: length, checksum, kind.
pub(crate) const PREFIX_LEN: usize = 9;
/// `"AURWAL"` followed by two zero bytes, little-endian: the first field of every segment.
pub(crate) const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"AURWAL\0\0");
/// Version of this format. A reader refuses any other.
pub(crate) const FORMAT_VERSION: u16 = 1;
const HARD_STATE_LEN: usize = 8 + 1 + 8 + 8;
const BASE_STATE_LEN: usize = 4 * 8 + HARD_STATE_LEN;
const SEGMENT_HEADER_BODY_LEN: usize = 8 + 2 + 1 + 8 + BASE_STATE_LEN;
/// Total length of the segment header record, the first record of every segment: the first log
/// record of a segment starts at this offset.
pub const SEGMENT_HEADER_LEN: usize = PREFIX_LEN + SEGMENT_HEADER_BODY_LEN;
/// Bytes of an entries record before its first entry (first index, count).
pub(crate) const ENTRIES_HEAD_LEN: usize = 8 + 4;
/// Bytes of each entry before its data (term, kind, length).
pub(crate) const ENTRY_PREFIX_LEN: usize = 8 + 1 + 4;
/// Total length of a hard-state record.
pub(crate) const HARD_STATE_RECORD_LEN: usize = PREFIX_LEN + HARD_STATE_LEN;
/// Total length of a snapshot-mark record.
pub(crate) const SNAPSHOT_MARK_RECORD_LEN: usize = PREFIX_LEN + 8 + 8 + 1;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordKind {
    /// First record of every segment: identity plus the log state the segment starts from.
    SegmentHeader = 1,
    /// A run of consecutive entries; a first index at or below the end replaces the suffix.
    Entries = 2,
    /// A new hard state.
    HardState = 3,
    /// The log is compacted up to a durable snapshot.
    SnapshotMark = 4,
}

impl RecordKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::SegmentHeader),
            2 => Some(Self::Entries),
            3 => Some(Self::HardState),
            4 => Some(Self::SnapshotMark),
            _ => None,
        }
    }
}

/// Why the bytes at an offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    /// The record (or its 9-byte prefix) runs past the end of the file.
    #[error("record needs {needed_bytes} bytes but only {available_bytes} remain in the file")]
    Truncated {
        /// Bytes the record claims (prefix included).
        needed_bytes: u64,
        /// Bytes left in the file from its start.
        available_bytes: u64,
    },
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The crc32c in the record.
        stored: u32,
        /// The crc32c of the bytes.
        computed: u32,
    },
    /// A zero length followed by non-zero bytes: neither a record nor preallocated space.
    #[error("zero record length followed by non-zero bytes")]
    ZeroLength,
}

/// What [`decode`] found at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A record whose checksum verifies.
    Record {
        /// The kind byte (not yet known to be a valid kind).
        kind: u8,
        /// The body after the kind byte.
        body: &'a [u8],
        /// Offset just past the record.
        end: usize,
    },
    /// Zeros: the end of the written part of the segment.
    End,
    /// Bytes that are not a valid record.
    Fault(RecordFault),
}

/// Reads the record at `offset` of `file` (a whole segment's bytes).
pub(crate) fn decode(file: &[u8], offset: usize) -> Decoded<'_> {
    debug_assert!(offset <= file.len());
    let rest = &file[offset..];
    if rest.len() < PREFIX_LEN {
        if rest.iter().all(|&b| b == 0) {
            return Decoded::End;
        }
        return Decoded::Fault(RecordFault::Truncated {
            needed_bytes: PREFIX_LEN as u64,
            available_bytes: rest.len() as u64,
        });
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4-byte slice"));
    let stored = u32::from_le_bytes(rest[4..8].try_into().expect("4-byte slice"));
    if len == 0 {
        if rest[..PREFIX_LEN].iter().all(|&b| b == 0) {
            return Decoded::End;
        }
        return Decoded::Fault(RecordFault::ZeroLength);
    }
    let total = PREFIX_LEN - 1 + len as usize;
    if total > rest.len() {
        return Decoded::Fault(RecordFault::Truncated {
            needed_bytes: total as u64,
            available_bytes: rest.len() as u64,
        });
    }
    let computed = crc32c::crc32c_append(crc32c::crc32c(&rest[0..4]), &rest[8..total]);
    if computed != stored {
        return Decoded::Fault(RecordFault::Checksum { stored, computed });
    }
    Decoded::Record {
        kind: rest[8],
        body: &rest[PREFIX_LEN..total],
        end: offset + total,
    }
}

/// The write buffer has no room for the record being encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoRoom;

/// Encodes one record into a byte buffer in place: [`begin`](Self::begin), put the body, then
/// [`finish`](Self::finish) fills in length and checksum. Dropping it unfinished leaves garbage
/// past the caller's length, which the caller never submits.
pub(crate) struct RecordWriter<'a> {
    buf: &'a mut [u8],
    start: usize,
    pos: usize,
}

impl<'a> RecordWriter<'a> {
    /// Starts a record of `kind` at `start`.
    pub fn begin(buf: &'a mut [u8], start: usize, kind: RecordKind) -> Result<Self, NoRoom> {
        if buf.len().saturating_sub(start) < PREFIX_LEN {
            return Err(NoRoom);
        }
        buf[start + 8] = kind as u8;
        Ok(Self {
            buf,
            start,
            pos: start + PREFIX_LEN,
        })
    }

    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        let end = self.pos.checked_add(bytes.len()).ok_or(NoRoom)?;
        if end > self.buf.len() {
            return Err(NoRoom);
        }
        self.buf[self.pos..end].copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub fn put_u8(&mut self, value: u8) -> Result<(), NoRoom> {
        self.put_bytes(&[value])
    }

    pub fn put_u16(&mut self, value: u16) -> Result<(), NoRoom> {
        self.put_bytes(&value.to_le_bytes())
    }

    pub fn put_u32(&mut self, value: u32) -> Result<(), NoRoom> {
        self.put_bytes(&value.to_le_bytes())
    }

    pub fn put_u64(&mut self, value: u64) -> Result<(), NoRoom> {
        self.put_bytes(&value.to_le_bytes())
    }

    /// Overwrites a u32 already put at `body_offset` within the body.
    pub fn patch_u32(&mut self, body_offset: usize, value: u32) {
        let at = self.start + PREFIX_LEN + body_offset;
        assert!(at + 4 <= self.pos, "patching bytes that were never put");
        self.buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Writes length and checksum; returns the offset just past the record.
    pub fn finish(self) -> usize {
        let len = u32::try_from(self.pos - self.start - (PREFIX_LEN - 1))
            .expect("write buffers are at most 1 GiB, so a record length fits in u32");
        let record = &mut self.buf[self.start..self.pos];
        record[0..4].copy_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&record[0..4]), &record[8..]);
        record[4..8].copy_from_slice(&crc.to_le_bytes());
        self.pos
    }
}

/// A body whose checksum verified but whose contents do not parse: corruption that a checksum
/// collision or a bug let through, never a torn write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} record is malformed: {what}")]
pub struct Malformed {
    /// The record kind, by name.
    pub kind: &'static str,
    /// What is wrong with it.
    pub what: &'static str,
}

/// Reads little-endian fields off a record body.
struct BodyReader<'a> {
    body: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> BodyReader<'a> {
    fn new(body: &'a [u8], kind: &'static str) -> Self {
        Self { body, pos: 0, kind }
    }

    fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.body.len());
        let end = end.ok_or(Malformed {
            kind: self.kind,
            what,
        })?;
        let bytes = &self.body[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(
            self.bytes(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(
            self.bytes(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(
            self.bytes(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    fn finish(self) -> Result<(), Malformed> {
        if self.pos == self.body.len() {
            Ok(())
        } else {
            Err(Malformed {
                kind: self.kind,
                what: "bytes left over after the last field",
            })
        }
    }
}

fn put_hard_state(w: &mut RecordWriter<'_>, hs: &HardState) -> Result<(), NoRoom> {
    w.put_u64(hs.term)?;
    w.put_u8(u8::from(hs.vote.is_some()))?;
    w.put_u64(hs.vote.unwrap_or(0))?;
    w.put_u64(hs.commit)
}

fn read_hard_state(r: &mut BodyReader<'_>) -> Result<HardState, Malformed> {
    let term = r.u64("hard state term")?;
    let has_vote = r.u8("hard state vote flag")?;
    let vote = r.u64("hard state vote")?;
    let commit = r.u64("hard state commit")?;
    let vote = match has_vote {
        0 if vote == 0 => None,
        1 => Some(vote),
        _ => {
            return Err(Malformed {
                kind: r.kind,
                what: "vote flag is neither 0 nor 1 (or no vote but a non-zero voter)",
            })
        }
    };
    Ok(HardState { term, vote, commit })
}

/// Appends a hard-state record at `start`; returns its end.
pub(crate) fn write_hard_state(
    buf: &mut [u8],
    start: usize,
    hs: &HardState,
) -> Result<usize, NoRoom> {
    let mut w = RecordWriter::begin(buf, start, RecordKind::HardState)?;
    put_hard_state(&mut w, hs)?;
    Ok(w.finish())
}

/// Appends a snapshot-mark record at `start`; returns its end.
pub(crate) fn write_snapshot_mark(
    buf: &mut [u8],
    start: usize,
    snapshot: LogPosition,
    discard_suffix: bool,
) -> Result<usize, NoRoom> {
    let mut w = RecordWriter::begin(buf, start, RecordKind::SnapshotMark)?;
    w.put_u64(snapshot.index)?;
    w.put_u64(snapshot.term)?;
    w.put_u8(u8::from(discard_suffix))?;
    Ok(w.finish())
}

/// The first record of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The durability mode the segment was written in.
    pub durability: u8,
    /// The segment's sequence number (also in its file name).
    pub seq: u64,
    /// The log state before the segment's first record.
    pub base: LogState,
}

/// Encodes a segment header into exactly [`SEGMENT_HEADER_LEN`] bytes.
pub(crate) fn write_segment_header(buf: &mut [u8], header: &SegmentHeader) {
    assert_eq!(
        buf.len(),
        SEGMENT_HEADER_LEN,
        "header slot has a fixed size"
    );
    let end = (|| {
        let mut w = RecordWriter::begin(buf, 0, RecordKind::SegmentHeader)?;
        w.put_u64(SEGMENT_MAGIC)?;
        w.put_u16(FORMAT_VERSION)?;
        w.put_u8(header.durability)?;
        w.put_u64(header.seq)?;
        w.put_u64(header.base.last.index)?;
        w.put_u64(header.base.last.term)?;
        w.put_u64(header.base.compacted.index)?;
        w.put_u64(header.base.compacted.term)?;
        put_hard_state(&mut w, &header.base.hard_state)?;
        Ok::<usize, NoRoom>(w.finish())
    })()
    .expect("the header slot is sized for the header");
    debug_assert_eq!(end, SEGMENT_HEADER_LEN);
}

/// What makes a segment header unusable (beyond a bad checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderFault {
    /// Zeros where the header should be, in a segment followed by segments that hold records.
    #[error("the segment starts with zeros (no header) although later segments hold records")]
    Missing,
    /// The first record of the segment is some other kind.
    #[error("the first record is not a segment header (kind byte {kind})")]
    NotAHeader {
        /// The kind byte found.
        kind: u8,
    },
    /// Wrong magic: not an Aurora WAL segment.
    #[error("bad magic {found:#018x}: this is not an Aurora WAL segment")]
    Magic {
        /// The value found.
        found: u64,
    },
    /// A format version this build does not read.
    #[error("format version {found} is not supported (this build reads version {FORMAT_VERSION}); run the Aurora version that wrote it")]
    Version {
        /// The version found.
        found: u16,
    },
    /// A durability byte no version writes.
    #[error("unknown durability byte {found}")]
    Durability {
        /// The byte found.
        found: u8,
    },
    /// The body does not parse.
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

/// Parses a segment header record (kind and body already checksummed).
pub(crate) fn read_segment_header(kind: u8, body: &[u8]) -> Result<SegmentHeader, HeaderFault> {
    if kind != RecordKind::SegmentHeader as u8 {
        return Err(HeaderFault::NotAHeader { kind });
    }
    let mut r = BodyReader::new(body, "segment header");
    let magic = r.u64("magic")?;
    if magic != SEGMENT_MAGIC {
        return Err(HeaderFault::Magic { found: magic });
    }
    let version = r.u16("version")?;
    if version != FORMAT_VERSION {
        return Err(HeaderFault::Version { found: version });
    }
    let durability = r.u8("durability")?;
    if super::durability::from_byte(durability).is_none() {
        return Err(HeaderFault::Durability { found: durability });
    }
    let seq = r.u64("sequence number")?;
    let last = LogPosition {
        index: r.u64("last index")?,
        term: r.u64("last term")?,
    };
    let compacted = LogPosition {
        index: r.u64("compacted index")?,
        term: r.u64("compacted term")?,
    };
    let hard_state = read_hard_state(&mut r)?;
    r.finish()?;
    if last.index < compacted.index {
        return Err(HeaderFault::Malformed(Malformed {
            kind: "segment header",
            what: "last index below the compacted index",
        }));
    }
    Ok(SegmentHeader {
        durability,
        seq,
        base: LogState {
            last,
            compacted,
            hard_state,
        },
    })
}

/// A record after the segment header, parsed and checked for internal consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogRecord<'a> {
    /// Entries `first_index ..= last.index`; `first_term` is the term of the first.
    Entries {
        first_index: u64,
        first_term: u64,
        last: LogPosition,
        body: EntriesBody<'a>,
    },
    HardState(HardState),
    SnapshotMark {
        snapshot: LogPosition,
        discard_suffix: bool,
    },
}

/// Parses a record that follows a segment header.
pub(crate) fn read_log_record(kind: u8, body: &[u8]) -> Result<LogRecord<'_>, Malformed> {
    match RecordKind::from_byte(kind) {
        Some(RecordKind::Entries) => {
            let parsed = EntriesBody::parse(body)?;
            Ok(LogRecord::Entries {
                first_index: parsed.first_index,
                first_term: parsed.first_term,
                last: parsed.last,
                body: parsed,
            })
        }
        Some(RecordKind::HardState) => {
            let mut r = BodyReader::new(body, "hard state");
            let hs = read_hard_state(&mut r)?;
            r.finish()?;
            Ok(LogRecord::HardState(hs))
        }
        Some(RecordKind::SnapshotMark) => {
            let mut r = BodyReader::new(body, "snapshot mark");
            let snapshot = LogPosition {
                index: r.u64("index")?,
                term: r.u64("term")?,
            };
            let discard_suffix = match r.u8("discard flag")? {
                0 => false,
                1 => true,
                _ => {
                    return Err(Malformed {
                        kind: "snapshot mark",
                        what: "discard flag is neither 0 nor 1",
                    })
                }
            };
            r.finish()?;
            Ok(LogRecord::SnapshotMark {
                snapshot,
                discard_suffix,
            })
        }
        Some(RecordKind::SegmentHeader) => Err(Malformed {
            kind: "segment header",
            what: "a segment header in the middle of a segment",
        }),
        None => Err(Malformed {
            kind: "unknown",
            what: "unknown record kind",
        }),
    }
}

/// The body of an entries record, validated: consecutive indexes, non-decreasing terms, lengths
/// that add up exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntriesBody<'a> {
    first_index: u64,
    first_term: u64,
    last: LogPosition,
    count: u32,
    entries: &'a [u8],
}

impl<'a> EntriesBody<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut r = BodyReader::new(body, "entries");
        let first_index = r.u64("first index")?;
        let count = r.u32("count")?;
        let entries = &body[ENTRIES_HEAD_LEN.min(body.len())..];
        if count == 0 {
            return Err(Malformed {
                kind: "entries",
                what: "zero entries",
            });
        }
        let last_index = first_index
            .checked_add(u64::from(count) - 1)
            .filter(|_| first_index > 0)
            .ok_or(Malformed {
                kind: "entries",
                what: "index zero or index overflow",
            })?;
        let mut first_term = 0;
        let mut previous_term = 0;
        for i in 0..count {
            let term = r.u64("entry term")?;
            let _kind = r.u8("entry kind")?;
            let len = r.u32("entry length")?;
            r.bytes(len as usize, "entry data")?;
            if i == 0 {
                first_term = term;
            } else if term < previous_term {
                return Err(Malformed {
                    kind: "entries",
                    what: "entry terms decrease within the record",
                });
            }
            previous_term = term;
        }
        r.finish()?;
        Ok(Self {
            first_index,
            first_term,
            last: LogPosition {
                index: last_index,
                term: previous_term,
            },
            count,
            entries,
        })
    }

    /// The entries, in index order. The body was validated by `parse`, so this cannot fail.
    pub fn iter(&self) -> impl Iterator<Item = (u64, super::EntryRef<'a>)> + 'a {
        let mut pos = 0usize;
        let entries = self.entries;
        let first_index = self.first_index;
        (0..self.count).map(move |i| {
            let term = u64::from_le_bytes(entries[pos..pos + 8].try_into().expect("validated"));
            let kind = entries[pos + 8];
            let len = u32::from_le_bytes(entries[pos + 9..pos + 13].try_into().expect("validated"))
                as usize;
            let data = &entries[pos + ENTRY_PREFIX_LEN..pos + ENTRY_PREFIX_LEN + len];
            pos += ENTRY_PREFIX_LEN + len;
            (
                first_index + u64::from(i),
                super::EntryRef { term, kind, data },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_record(first_index: u64, entries: &[(u64, &[u8])]) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut w = RecordWriter::begin(&mut buf, 0, RecordKind::Entries).expect("room");
        w.put_u64(first_index).expect("room");
        w.put_u32(entries.len() as u32).expect("room");
        for (term, data) in entries {
            w.put_u64(*term).expect("room");
            w.put_u8(7).expect("room");
            w.put_u32(data.len() as u32).expect("room");
            w.put_bytes(data).expect("room");
        }
        let end = w.finish();
        buf.truncate(end);
        buf
    }

    #[test]
    fn entries_record_round_trips() {
        let bytes = entries_record(5, &[(2, b"ab"), (3, b""), (3, b"xyz")]);
        let Decoded::Record { kind, body, end } = decode(&bytes, 0) else {
            panic!("valid record expected");
        };
        assert_eq!(end, bytes.len());
        let LogRecord::Entries {
            first_index,
            first_term,
            last,
            body,
        } = read_log_record(kind, body).expect("parses")
        else {
            panic!("entries expected");
        };
        assert_eq!((first_index, first_term), (5, 2));
        assert_eq!(last, LogPosition { index: 7, term: 3 });
        let read: Vec<(u64, u64, Vec<u8>)> = body
            .iter()
            .map(|(i, e)| (i, e.term, e.data.to_vec()))
            .collect();
        assert_eq!(
            read,
            vec![
                (5, 2, b"ab".to_vec()),
                (6, 3, vec![]),
                (7, 3, b"xyz".to_vec())
            ]
        );
    }

    #[test]
    fn zeros_end_the_log_and_damage_is_a_fault() {
        assert_eq!(decode(&[0u8; 32], 0), Decoded::End);
        assert_eq!(decode(&[0u8; 5], 0), Decoded::End);
        let bytes = entries_record(1, &[(1, b"hello")]);
        for cut in 1..bytes.len() {
            assert!(
                matches!(
                    decode(&bytes[..cut], 0),
                    Decoded::Fault(RecordFault::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().expect("non-empty") ^= 0x10;
        assert!(matches!(
            decode(&flipped, 0),
            Decoded::Fault(RecordFault::Checksum { .. })
        ));
        let mut zero_len = bytes;
        zero_len[0..4].fill(0);
        assert_eq!(
            decode(&zero_len, 0),
            Decoded::Fault(RecordFault::ZeroLength)
        );
    }

    #[test]
    fn segment_header_round_trips_and_rejects_foreign_bytes() {
        let header = SegmentHeader {
            durability: super::super::durability::to_byte(super::super::Durability::Memory),
            seq: 42,
            base: LogState {
                last: LogPosition { index: 9, term: 3 },
                compacted: LogPosition { index: 4, term: 2 },
                hard_state: HardState {
                    term: 3,
                    vote: Some(1),
                    commit: 8,
                },
            },
        };
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        write_segment_header(&mut buf, &header);
        let Decoded::Record { kind, body, .. } = decode(&buf, 0) else {
            panic!("valid header expected");
        };
        assert_eq!(read_segment_header(kind, body), Ok(header));

        let entries = entries_record(1, &[(1, b"x")]);
        let Decoded::Record { kind, body, .. } = decode(&entries, 0) else {
            panic!("valid record expected");
        };
        assert_eq!(
            read_segment_header(kind, body),
            Err(HeaderFault::NotAHeader { kind: 2 })
        );
    }

    #[test]
    fn writer_reports_no_room_instead_of_overrunning() {
        let mut buf = [0u8; PREFIX_LEN + 4];
        let mut w = RecordWriter::begin(&mut buf, 0, RecordKind::HardState).expect("prefix fits");
        assert_eq!(w.put_u32(1), Ok(()));
        assert_eq!(w.put_u8(1), Err(NoRoom));
        assert_eq!(
            write_hard_state(&mut buf, 0, &HardState::default()),
            Err(NoRoom)
        );
    }

    #[test]
    fn record_lengths_match_the_constants() {
        let mut buf = [0u8; 64];
        assert_eq!(
            write_hard_state(&mut buf, 0, &HardState::default()),
            Ok(HARD_STATE_RECORD_LEN)
        );
        assert_eq!(
            write_snapshot_mark(&mut buf, 0, LogPosition::default(), true),
            Ok(SNAPSHOT_MARK_RECORD_LEN)
        );
    }
}
