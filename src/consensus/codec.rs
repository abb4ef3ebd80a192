//! The byte encoding of consensus messages: the payload of a frame whose kind is
//! `FrameKind::Consensus(code)` (src/wire owns the header; this module owns the codes and bodies).
//!
//! Encoding writes into a caller-provided buffer (a pool slab) and copies entry payloads straight
//! from the log. Decoding validates the whole payload once — every length, flag, kind and term
//! relation — and returns a [`Decoded`] that borrows the receive buffer; entry payloads are not
//! copied until the follower appends them to its log. All integers are little-endian.
//!
//! ```text
//!  code 0  Append           term u64, prev_index u64, prev_term u64, commit u64, ctx_ns u64, seq u64,
//!                           count u32, then count × (term u64, kind u8, len u32, payload[len])
//!  code 1  AppendResponse   term u64, index u64, reject u8, hint_index u64, hint_term u64, ctx_ns u64,
//!                           seq u64
//!  code 2  Vote             term u64, last_index u64, last_term u64, flags u8 (1 pre_vote, 2 transfer)
//!  code 3  VoteResponse     term u64, flags u8 (1 pre_vote, 2 granted)
//!  code 4  InstallSnapshot  term u64, ctx_ns u64, seq u64, index u64, snap_term u64, membership, then the
//!                           snapshot bytes to the end of the payload
//!  code 5  TimeoutNow       term u64
//! ```

use thiserror::Error;

use super::log::Log;
use super::membership::{Membership, MembershipError};
use super::message::{
    Append, AppendResponse, InstallSnapshot, Message, OutMessage, TimeoutNow, VoteRequest,
    VoteResponse,
};
use super::types::{EntryKind, LogIndex, SnapshotMeta, Term};
use crate::wire::ConsensusKind;

const APPEND: u8 = 0;
const APPEND_RESPONSE: u8 = 1;
const VOTE: u8 = 2;
const VOTE_RESPONSE: u8 = 3;
const INSTALL_SNAPSHOT: u8 = 4;
const TIMEOUT_NOW: u8 = 5;

const APPEND_HEADER_LEN: usize = 6 * 8 + 4;
const ENTRY_HEADER_LEN: usize = 8 + 1 + 4;

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("buffer of {have} bytes is too small for this message ({need} bytes); use a larger slab or a smaller max_batch_bytes")]
    BufferTooSmall { need: usize, have: usize },
    #[error("entry {0} is not in the log (compacted or truncated since the message was emitted); encode messages before the next input to the node")]
    EntryMissing(LogIndex),
}

/// Why a received payload was rejected. The message is dropped; nothing in the node changes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unknown consensus message code {0}; the peer runs a newer or incompatible version")]
    UnknownCode(u8),
    #[error("consensus message code {code} truncated: needs {need} bytes, payload has {len}")]
    Truncated { code: u8, need: usize, len: usize },
    #[error("consensus message code {code} has {extra} trailing bytes after its body")]
    Trailing { code: u8, extra: usize },
    #[error("invalid {field} in consensus message: {value}")]
    Invalid { field: &'static str, value: u64 },
    #[error("invalid membership in snapshot: {0}")]
    Membership(#[from] MembershipError),
}

/// A decoded message and, for InstallSnapshot, the snapshot bytes (empty otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub message: Message<EntriesView<'a>>,
    pub snapshot_data: &'a [u8],
}

/// The validated entries of a received Append, still in the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntriesView<'a> {
    count: u32,
    bytes: &'a [u8],
}

/// One entry inside an [`EntriesView`]; its index is `prev_index + 1 + position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView<'a> {
    pub term: Term,
    pub kind: EntryKind,
    pub payload: &'a [u8],
}

impl<'a> EntriesView<'a> {
    /// No entries (a heartbeat).
    pub const EMPTY: EntriesView<'static> = EntriesView {
        count: 0,
        bytes: &[],
    };

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> EntriesIter<'a> {
        EntriesIter {
            left: self.count,
            bytes: self.bytes,
        }
    }
}

/// Iterates an [`EntriesView`]; infallible because decoding validated every entry.
pub struct EntriesIter<'a> {
    left: u32,
    bytes: &'a [u8],
}

impl<'a> Iterator for EntriesIter<'a> {
    type Item = EntryView<'a>;

    fn next(&mut self) -> Option<EntryView<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (entry, rest) = split_entry(self.bytes).expect("entries were validated at decode");
        self.bytes = rest;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for EntriesIter<'_> {}

fn kind_to_byte(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Normal => 0,
        EntryKind::Noop => 1,
        EntryKind::Config => 2,
    }
}

fn kind_from_byte(byte: u8) -> Option<EntryKind> {
    match byte {
        0 => Some(EntryKind::Normal),
        1 => Some(EntryKind::Noop),
        2 => Some(EntryKind::Config),
        _ => None,
    }
}

/// Splits one entry off the front of `bytes`, validating its header; `None` if malformed.
fn split_entry(bytes: &[u8]) -> Option<(EntryView<'_>, &[u8])> {
    if bytes.len() < ENTRY_HEADER_LEN {
        return None;
    }
    let term = u64::from_le_bytes(bytes[0..8].try_into().ok()?);
    let kind = kind_from_byte(bytes[8])?;
    let len = u32::from_le_bytes(bytes[9..13].try_into().ok()?) as usize;
    let rest = &bytes[ENTRY_HEADER_LEN..];
    if rest.len() < len {
        return None;
    }
    let (payload, rest) = rest.split_at(len);
    Some((
        EntryView {
            term,
            kind,
            payload,
        },
        rest,
    ))
}

/// The consensus code a message is sent under.
pub fn kind_of<E>(message: &Message<E>) -> ConsensusKind {
    let code = match message {
        Message::Append(_) => APPEND,
        Message::AppendResponse(_) => APPEND_RESPONSE,
        Message::Vote(_) => VOTE,
        Message::VoteResponse(_) => VOTE_RESPONSE,
        Message::InstallSnapshot(_) => INSTALL_SNAPSHOT,
        Message::TimeoutNow(_) => TIMEOUT_NOW,
    };
    ConsensusKind::new(code).expect("codes 0..6 are below ConsensusKind::COUNT")
}

/// Bytes `message` needs once encoded (`snapshot_len_bytes` for InstallSnapshot's data).
pub fn encoded_len(
    message: &OutMessage,
    log: &Log,
    snapshot_len_bytes: usize,
) -> Result<usize, EncodeError> {
    Ok(match message {
        Message::Append(m) => {
            let mut len = APPEND_HEADER_LEN;
            for index in m.entries.first..=m.entries.last {
                let entry = log.entry(index).ok_or(EncodeError::EntryMissing(index))?;
                len += ENTRY_HEADER_LEN + entry.payload.len();
            }
            len
        }
        Message::AppendResponse(_) => 8 + 8 + 1 + 8 + 8 + 8 + 8,
        Message::Vote(_) => 8 * 3 + 1,
        Message::VoteResponse(_) => 8 + 1,
        Message::InstallSnapshot(m) => 8 * 5 + m.meta.membership.encoded_len() + snapshot_len_bytes,
        Message::TimeoutNow(_) => 8,
    })
}

struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
}

/// Encodes `message` into `buf`, taking Append entries from `log` and InstallSnapshot's bytes from
/// `snapshot_data` (ignored for other messages). Returns the code for the frame header and the
/// payload length. No allocation.
pub fn encode(
    message: &OutMessage,
    log: &Log,
    snapshot_data: &[u8],
    buf: &mut [u8],
) -> Result<(ConsensusKind, usize), EncodeError> {
    let need = encoded_len(message, log, snapshot_data.len())?;
    if buf.len() < need {
        return Err(EncodeError::BufferTooSmall {
            need,
            have: buf.len(),
        });
    }
    let mut w = Writer { buf, at: 0 };
    match message {
        Message::Append(m) => {
            w.u64(m.term);
            w.u64(m.prev_index);
            w.u64(m.prev_term);
            w.u64(m.commit);
            w.u64(m.ctx_ns);
            w.u64(m.seq);
            let count =
                u32::try_from(m.entries.len()).expect("a batch is bounded by max_batch_entries");
            w.u32(count);
            for index in m.entries.first..=m.entries.last {
                let entry = log.entry(index).ok_or(EncodeError::EntryMissing(index))?;
                w.u64(entry.term);
                w.u8(kind_to_byte(entry.kind));
                w.u32(
                    u32::try_from(entry.payload.len())
                        .expect("entry payloads are bounded by max_entry_bytes"),
                );
                w.put(&entry.payload);
            }
        }
        Message::AppendResponse(m) => {
            w.u64(m.term);
            w.u64(m.index);
            w.u8(u8::from(m.reject));
            w.u64(m.hint_index);
            w.u64(m.hint_term);
            w.u64(m.ctx_ns);
            w.u64(m.seq);
        }
        Message::Vote(m) => {
            w.u64(m.term);
            w.u64(m.last_index);
            w.u64(m.last_term);
            w.u8(u8::from(m.pre_vote) | (u8::from(m.transfer) << 1));
        }
        Message::VoteResponse(m) => {
            w.u64(m.term);
            w.u8(u8::from(m.pre_vote) | (u8::from(m.granted) << 1));
        }
        Message::InstallSnapshot(m) => {
            w.u64(m.term);
            w.u64(m.ctx_ns);
            w.u64(m.seq);
            w.u64(m.meta.index);
            w.u64(m.meta.term);
            let at = w.at;
            let written = m
                .meta
                .membership
                .encode_into(&mut w.buf[at..])
                .expect("encoded_len reserved room for the membership");
            w.at += written;
            w.put(snapshot_data);
        }
        Message::TimeoutNow(m) => w.u64(m.term),
    }
    debug_assert_eq!(w.at, need);
    Ok((kind_of(message), need))
}

struct Reader<'a> {
    code: u8,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.at.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            _ => Err(DecodeError::Truncated {
                code: self.code,
                need: self.at.saturating_add(n),
                len: self.bytes.len(),
            }),
        }
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn flags(&mut self, allowed: u8) -> Result<u8, DecodeError> {
        let f = self.u8()?;
        if f & !allowed != 0 {
            return Err(DecodeError::Invalid {
                field: "flags",
                value: u64::from(f),
            });
        }
        Ok(f)
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.bytes[self.at..];
        self.at = self.bytes.len();
        s
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                code: self.code,
                extra: self.bytes.len() - self.at,
            })
        }
    }
}

fn invalid(field: &'static str, value: u64) -> DecodeError {
    DecodeError::Invalid { field, value }
}

/// Decodes and validates a consensus payload received under `kind`.
///
/// Beyond the layout it checks the relations every honest sender keeps: a term is at least 1, entry
/// terms never decrease, never exceed the message term and are at least `prev_term`, indexes do not
/// overflow, a rejection's hint does not lie past the rejected index.
pub fn decode(kind: ConsensusKind, payload: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let code = kind.code();
    let mut r = Reader {
        code,
        bytes: payload,
        at: 0,
    };
    let term = r.u64()?;
    if term == 0 {
        return Err(invalid("term", 0));
    }
    let mut snapshot_data: &[u8] = &[];
    let message = match code {
        APPEND => {
            let prev_index = r.u64()?;
            let prev_term = r.u64()?;
            let commit = r.u64()?;
            let ctx_ns = r.u64()?;
            let seq = r.u64()?;
            let count = r.u32()?;
            if prev_term > term {
                return Err(invalid("prev_term above message term", prev_term));
            }
            if prev_index.checked_add(u64::from(count)).is_none() {
                return Err(invalid("prev_index + count overflows", prev_index));
            }
            let start = r.at;
            let mut last_term = prev_term;
            for _ in 0..count {
                let (entry, _) = split_entry(&payload[r.at..]).ok_or(DecodeError::Truncated {
                    code,
                    need: r.at + ENTRY_HEADER_LEN,
                    len: payload.len(),
                })?;
                if entry.term < last_term || entry.term > term {
                    return Err(invalid("entry term", entry.term));
                }
                if entry.kind == EntryKind::Config {
                    Membership::decode(entry.payload)?;
                }
                last_term = entry.term;
                r.at += ENTRY_HEADER_LEN + entry.payload.len();
            }
            Message::Append(Append {
                term,
                prev_index,
                prev_term,
                commit,
                ctx_ns,
                seq,
                entries: EntriesView {
                    count,
                    bytes: &payload[start..r.at],
                },
            })
        }
        APPEND_RESPONSE => {
            let index = r.u64()?;
            let reject = match r.u8()? {
                0 => false,
                1 => true,
                other => return Err(invalid("reject flag", u64::from(other))),
            };
            let hint_index = r.u64()?;
            let hint_term = r.u64()?;
            let ctx_ns = r.u64()?;
            let seq = r.u64()?;
            if reject && hint_index > index {
                return Err(invalid("hint_index past the rejected index", hint_index));
            }
            Message::AppendResponse(AppendResponse {
                term,
                index,
                reject,
                hint_index,
                hint_term,
                ctx_ns,
                seq,
            })
        }
        VOTE => {
            let last_index = r.u64()?;
            let last_term = r.u64()?;
            let flags = r.flags(0b11)?;
            if last_term > term {
                return Err(invalid("last_term above vote term", last_term));
            }
            Message::Vote(VoteRequest {
                term,
                last_index,
                last_term,
                pre_vote: flags & 1 != 0,
                transfer: flags & 2 != 0,
            })
        }
        VOTE_RESPONSE => {
            let flags = r.flags(0b11)?;
            Message::VoteResponse(VoteResponse {
                term,
                pre_vote: flags & 1 != 0,
                granted: flags & 2 != 0,
            })
        }
        INSTALL_SNAPSHOT => {
            let ctx_ns = r.u64()?;
            let seq = r.u64()?;
            let index = r.u64()?;
            let snap_term = r.u64()?;
            if snap_term > term || (index == 0) != (snap_term == 0) {
                return Err(invalid("snapshot term", snap_term));
            }
            let (membership, used) = Membership::decode(&payload[r.at..])?;
            r.at += used;
            snapshot_data = r.rest();
            Message::InstallSnapshot(InstallSnapshot {
                term,
                meta: SnapshotMeta {
                    index,
                    term: snap_term,
                    membership,
                },
                ctx_ns,
                seq,
            })
        }
        TIMEOUT_NOW => Message::TimeoutNow(TimeoutNow { term }),
        other => return Err(DecodeError::UnknownCode(other)),
    };
    r.finish()?;
    Ok(Decoded {
        message,
        snapshot_data,
    })
}
