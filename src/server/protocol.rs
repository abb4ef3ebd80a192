//! The client protocol: what travels in the payload of [`FrameKind::ClientRequest`] and
//! [`FrameKind::ClientResponse`] frames on a node's client port (docs/PROTOCOL.md).
//!
//! A client frame is an ordinary wire frame (the 56-byte header of [`crate::wire`]): the header's
//! `correlation_id` is chosen by the client and echoed on every response to that request (and on
//! every event of a watch, whose id *is* the correlation id of the request that created it);
//! `from`/`to`/`term` are 0 from a client. The payload is one message of this module:
//!
//! ```text
//!  request:   version u8 | op u8 | deadline_ms u32 | body
//!     op 0x01 STORE         consistency u8 | store request (crate::store::codec, kind 'Q')
//!     op 0x02 WATCH         key bytes | range_end bytes | start_revision u64 | prev_kv bool
//!     op 0x03 CANCEL_WATCH  watch_id u64
//!     op 0x04 STATUS        (empty)
//!  response:  version u8 | tag u8 | body
//!     tag 0x01 STORE          store response (crate::store::codec, kind 'R')
//!     tag 0x02 WATCH_CREATED  watch_id u64 | start_revision u64
//!     tag 0x03 WATCH_EVENTS   watch_id u64 | store events (crate::store::codec, kind 'W')
//!     tag 0x04 WATCH_CANCELED watch_id u64 | reason u8 [| compact_revision u64 if reason = 1]
//!     tag 0x05 STATUS         node_id u64 | role u8 | term u64 | leader u64 | commit u64 |
//!                             applied u64 | revision u64 | durability u8 | leader_client_addr bytes
//!     tag 0x06 ERROR          error tag u8 | fields (see ServerError)
//!  integers little-endian; bool = 0 or 1; bytes = len u32 + bytes (UTF-8 where text)
//! ```
//!
//! A STORE request carries the store's own request encoding unchanged, because that is what the
//! leader proposes into the log (no re-encoding on the hot path). Requests are answered in any
//! order; a lock or campaign answered `Queued`, or a barrier arrival answered `Waiting`, gets a
//! second STORE response with the same correlation id when it completes.
//!
//! Decoding is strict and canonical (one encoding per message; trailing bytes are an error) and
//! never panics; a [`RequestView`] borrows the receive buffer so the server decodes without copying.

use thiserror::Error;

use crate::config::{Durability, NodeId};
use crate::store::KeyRange;
use crate::wire::{encode_into, EncodeError, FrameKind, HeaderFields, HEADER_LEN};

/// The protocol version this build reads and writes (the first payload byte).
pub const PROTOCOL_VERSION: u8 = 1;

/// Fixed prefix of every request payload: version, op, deadline.
pub const REQUEST_PREFIX_BYTES: usize = 1 + 1 + 4;

mod op {
    pub const STORE: u8 = 0x01;
    pub const WATCH: u8 = 0x02;
    pub const CANCEL_WATCH: u8 = 0x03;
    pub const STATUS: u8 = 0x04;
}

mod tag {
    pub const STORE: u8 = 0x01;
    pub const WATCH_CREATED: u8 = 0x02;
    pub const WATCH_EVENTS: u8 = 0x03;
    pub const WATCH_CANCELED: u8 = 0x04;
    pub const STATUS: u8 = 0x05;
    pub const ERROR: u8 = 0x06;
}

mod error_tag {
    pub const NOT_LEADER: u8 = 0x01;
    pub const NO_LEADER: u8 = 0x02;
    pub const BUSY: u8 = 0x03;
    pub const DEADLINE_EXCEEDED: u8 = 0x04;
    pub const TOO_LARGE: u8 = 0x05;
    pub const BAD_REQUEST: u8 = 0x06;
    pub const COMPACTED: u8 = 0x07;
    pub const UNAVAILABLE: u8 = 0x08;
}

/// How fresh a read must be. Writes go through the log whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Consistency {
    /// Linearizable: served by the leader under its lease, else after a ReadIndex round.
    #[default]
    Linearizable,
    /// Linearizable, always through a ReadIndex round (no reliance on clocks).
    ReadIndex,
    /// Whatever the contacted replica has applied; may be stale, never torn.
    Stale,
}

impl Consistency {
    fn to_byte(self) -> u8 {
        match self {
            Consistency::Linearizable => 0,
            Consistency::ReadIndex => 1,
            Consistency::Stale => 2,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        Ok(match byte {
            0 => Consistency::Linearizable,
            1 => Consistency::ReadIndex,
            2 => Consistency::Stale,
            got => {
                return Err(ProtocolError::UnknownTag {
                    what: "consistency",
                    got,
                })
            }
        })
    }
}

/// A client request, owned (client side; tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// How long the client will wait, in milliseconds; 0 = the server's `request_timeout_ms`.
    /// The server answers [`ServerError::DeadlineExceeded`] rather than a late result.
    pub deadline_ms: u32,
    pub op: RequestOp,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOp {
    /// A store request: `request` is its store-codec encoding
    /// ([`crate::store::codec::encode_request`]).
    Store {
        consistency: Consistency,
        request: Vec<u8>,
    },
    /// Stream the changes to keys in `range` from `start_revision` (0 = from the next change).
    Watch {
        range: KeyRange,
        start_revision: u64,
        prev_kv: bool,
    },
    /// Stop the watch created by the request with correlation id `watch_id`.
    CancelWatch { watch_id: u64 },
    /// The node's view of the cluster (answered by any node, leader or not).
    Status,
}

/// A request as the server reads it: borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView<'a> {
    pub deadline_ms: u32,
    pub op: RequestOpView<'a>,
}

/// [`RequestOp`], borrowing the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOpView<'a> {
    Store {
        consistency: Consistency,
        request: &'a [u8],
    },
    Watch {
        key: &'a [u8],
        range_end: &'a [u8],
        start_revision: u64,
        prev_kv: bool,
    },
    CancelWatch {
        watch_id: u64,
    },
    Status,
}

impl RequestView<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> ClientRequest {
        let op = match self.op {
            RequestOpView::Store {
                consistency,
                request,
            } => RequestOp::Store {
                consistency,
                request: request.to_vec(),
            },
            RequestOpView::Watch {
                key,
                range_end,
                start_revision,
                prev_kv,
            } => RequestOp::Watch {
                range: KeyRange {
                    key: key.to_vec(),
                    range_end: range_end.to_vec(),
                },
                start_revision,
                prev_kv,
            },
            RequestOpView::CancelWatch { watch_id } => RequestOp::CancelWatch { watch_id },
            RequestOpView::Status => RequestOp::Status,
        };
        ClientRequest {
            deadline_ms: self.deadline_ms,
            op,
        }
    }
}

/// Why a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The client cancelled it.
    Requested,
    /// It fell behind history that compaction dropped: re-read at or after `compact_revision` and
    /// watch again from the revision after it.
    Compacted { compact_revision: u64 },
    /// The node shed it because the client did not read its events fast enough; watch again from
    /// the revision after the last event received.
    SlowConsumer,
}

/// The node's role, as [`ClientResponse::Status`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    Learner,
}

impl NodeRole {
    fn to_byte(self) -> u8 {
        match self {
            NodeRole::Follower => 0,
            NodeRole::PreCandidate => 1,
            NodeRole::Candidate => 2,
            NodeRole::Leader => 3,
            NodeRole::Learner => 4,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        Ok(match byte {
            0 => NodeRole::Follower,
            1 => NodeRole::PreCandidate,
            2 => NodeRole::Candidate,
            3 => NodeRole::Leader,
            4 => NodeRole::Learner,
            got => return Err(ProtocolError::UnknownTag { what: "role", got }),
        })
    }

    /// Lower-case name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Follower => "follower",
            NodeRole::PreCandidate => "pre_candidate",
            NodeRole::Candidate => "candidate",
            NodeRole::Leader => "leader",
            NodeRole::Learner => "learner",
        }
    }
}

/// A node's answer to [`RequestOp::Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub role: NodeRole,
    pub term: u64,
    /// The leader this node knows of; 0 = none.
    pub leader: NodeId,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The store's revision at `applied_index`.
    pub revision: u64,
    pub durability: Durability,
    /// The leader's client address, empty if there is no known leader.
    pub leader_client_addr: String,
}

/// Errors the server answers instead of a result. Store-level refusals ([`crate::store::StoreError`])
/// travel inside a STORE response instead: they are results of the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServerError {
    #[error(
        "node is not the leader; the leader is node {leader} at {leader_client_addr}: send the \
         request there"
    )]
    NotLeader {
        leader: NodeId,
        leader_client_addr: String,
    },
    #[error("no leader is known right now (election in progress or no quorum); retry shortly")]
    NoLeader,
    #[error("node is overloaded (a bounded queue is full); back off and retry")]
    Busy,
    #[error(
        "deadline exceeded: the request did not complete in time; a write may still commit, \
         retry within the same session so it applies once"
    )]
    DeadlineExceeded,
    #[error("request of {len_bytes} bytes exceeds the limit of {max_bytes} bytes; shorten the key or value")]
    TooLarge { len_bytes: u64, max_bytes: u64 },
    #[error("bad request: {reason}")]
    BadRequest { reason: String },
    #[error(
        "cannot watch from revision {requested}: history up to revision {compact_revision} is \
         compacted; read at revision {compact_revision} or later, then watch from the revision \
         after it"
    )]
    Compacted {
        requested: u64,
        compact_revision: u64,
    },
    #[error("node cannot serve this now: {reason}")]
    Unavailable { reason: String },
}

/// A server's answer, owned (client side; tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientResponse {
    /// A store response in store-codec encoding ([`crate::store::codec::decode_response`]).
    Store(Vec<u8>),
    WatchCreated {
        watch_id: u64,
        start_revision: u64,
    },
    /// Store-codec events ([`crate::store::codec::decode_events`]), in revision order.
    WatchEvents {
        watch_id: u64,
        events: Vec<u8>,
    },
    WatchCanceled {
        watch_id: u64,
        reason: CancelReason,
    },
    Status(NodeStatus),
    Error(ServerError),
}

/// Bytes that are not a valid client-protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("truncated message: {what} needs {need} bytes, {have} left")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error(
        "unsupported client protocol version {got} (this build speaks {supported}); use a client \
         of the same Aurora release"
    )]
    UnsupportedVersion { got: u8, supported: u8 },
    #[error("unknown {what} code {got:#04x}; the client runs a different release or the message is corrupt")]
    UnknownTag { what: &'static str, got: u8 },
    #[error("{what} byte must be 0 or 1, got {got:#04x}")]
    InvalidBool { what: &'static str, got: u8 },
    #[error("{count} trailing bytes after a complete message")]
    TrailingBytes { count: usize },
    #[error("{what} is not UTF-8")]
    NotUtf8 { what: &'static str },
}

/// A bounds-checked cursor that borrows what it reads.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(ProtocolError::Truncated {
                what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("took 4 bytes")))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("took 8 bytes")))
    }
    fn bool(&mut self, what: &'static str) -> Result<bool, ProtocolError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            got => Err(ProtocolError::InvalidBool { what, got }),
        }
    }
    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }
    fn text(&mut self, what: &'static str) -> Result<String, ProtocolError> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| ProtocolError::NotUtf8 { what })
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn finish(self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes {
                count: self.buf.len(),
            })
        }
    }
    fn version(&mut self) -> Result<(), ProtocolError> {
        let got = self.u8("protocol version")?;
        if got == PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(ProtocolError::UnsupportedVersion {
                got,
                supported: PROTOCOL_VERSION,
            })
        }
    }
}

/// Where encoded bytes go: a growable vector, or a fixed slice that counts what did not fit.
trait Out {
    fn put(&mut self, bytes: &[u8]);
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).expect("protocol fields are bounded by the 16 MiB frame"));
        self.put(v);
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct SliceOut<'a> {
    buf: &'a mut [u8],
    written: usize,
}

impl Out for SliceOut<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.written + bytes.len();
        if end <= self.buf.len() {
            self.buf[self.written..end].copy_from_slice(bytes);
        }
        self.written = end;
    }
}

/// A fixed buffer could not hold a message; `need` bytes were needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("buffer of {have} bytes cannot hold a {need}-byte message")]
pub struct NoRoom {
    pub need: usize,
    pub have: usize,
}

fn into_slice(buf: &mut [u8], encode: impl FnOnce(&mut SliceOut<'_>)) -> Result<usize, NoRoom> {
    let have = buf.len();
    let mut out = SliceOut { buf, written: 0 };
    encode(&mut out);
    if out.written <= have {
        Ok(out.written)
    } else {
        Err(NoRoom {
            need: out.written,
            have,
        })
    }
}

fn put_request(out: &mut impl Out, request: &ClientRequest) {
    out.u8(PROTOCOL_VERSION);
    match &request.op {
        RequestOp::Store {
            consistency,
            request: bytes,
        } => {
            out.u8(op::STORE);
            out.u32(request.deadline_ms);
            out.u8(consistency.to_byte());
            out.put(bytes);
        }
        RequestOp::Watch {
            range,
            start_revision,
            prev_kv,
        } => {
            out.u8(op::WATCH);
            out.u32(request.deadline_ms);
            out.bytes(&range.key);
            out.bytes(&range.range_end);
            out.u64(*start_revision);
            out.u8(u8::from(*prev_kv));
        }
        RequestOp::CancelWatch { watch_id } => {
            out.u8(op::CANCEL_WATCH);
            out.u32(request.deadline_ms);
            out.u64(*watch_id);
        }
        RequestOp::Status => {
            out.u8(op::STATUS);
            out.u32(request.deadline_ms);
        }
    }
}

/// Appends the payload encoding of `request` to `out`.
pub fn encode_request(request: &ClientRequest, out: &mut Vec<u8>) {
    put_request(out, request);
}

/// Decodes a request payload, borrowing `payload`. The store request inside a STORE op is not
/// decoded here (the server checks it with the store's limits).
pub fn decode_request(payload: &[u8]) -> Result<RequestView<'_>, ProtocolError> {
    let mut c = Cursor { buf: payload };
    c.version()?;
    let code = c.u8("op")?;
    let deadline_ms = c.u32("deadline_ms")?;
    let op = match code {
        op::STORE => {
            let consistency = Consistency::from_byte(c.u8("consistency")?)?;
            RequestOpView::Store {
                consistency,
                request: c.rest(),
            }
        }
        op::WATCH => RequestOpView::Watch {
            key: c.bytes("watch key")?,
            range_end: c.bytes("watch range_end")?,
            start_revision: c.u64("start_revision")?,
            prev_kv: c.bool("prev_kv")?,
        },
        op::CANCEL_WATCH => RequestOpView::CancelWatch {
            watch_id: c.u64("watch_id")?,
        },
        op::STATUS => RequestOpView::Status,
        got => return Err(ProtocolError::UnknownTag { what: "op", got }),
    };
    c.finish()?;
    Ok(RequestView { deadline_ms, op })
}

/// A response as the server writes it: borrows what it carries, so encoding straight into a
/// send buffer needs no intermediate allocation.
#[derive(Debug, Clone, Copy)]
pub enum ResponseRef<'a> {
    /// An already encoded store response.
    Store(&'a [u8]),
    /// A store response to encode in place.
    StoreResponse(&'a crate::store::Response),
    WatchCreated {
        watch_id: u64,
        start_revision: u64,
    },
    /// Already encoded store events.
    WatchEventsBytes {
        watch_id: u64,
        events: &'a [u8],
    },
    /// Store events to encode in place.
    WatchEvents {
        watch_id: u64,
        events: &'a [crate::store::Event],
    },
    WatchCanceled {
        watch_id: u64,
        reason: CancelReason,
    },
    Status(&'a NodeStatus),
    Error(&'a ServerError),
}

fn put_error(out: &mut impl Out, error: &ServerError) {
    match error {
        ServerError::NotLeader {
            leader,
            leader_client_addr,
        } => {
            out.u8(error_tag::NOT_LEADER);
            out.u64(*leader);
            out.bytes(leader_client_addr.as_bytes());
        }
        ServerError::NoLeader => out.u8(error_tag::NO_LEADER),
        ServerError::Busy => out.u8(error_tag::BUSY),
        ServerError::DeadlineExceeded => out.u8(error_tag::DEADLINE_EXCEEDED),
        ServerError::TooLarge {
            len_bytes,
            max_bytes,
        } => {
            out.u8(error_tag::TOO_LARGE);
            out.u64(*len_bytes);
            out.u64(*max_bytes);
        }
        ServerError::BadRequest { reason } => {
            out.u8(error_tag::BAD_REQUEST);
            out.bytes(reason.as_bytes());
        }
        ServerError::Compacted {
            requested,
            compact_revision,
        } => {
            out.u8(error_tag::COMPACTED);
            out.u64(*requested);
            out.u64(*compact_revision);
        }
        ServerError::Unavailable { reason } => {
            out.u8(error_tag::UNAVAILABLE);
            out.bytes(reason.as_bytes());
        }
    }
}

fn durability_byte(d: Durability) -> u8 {
    match d {
        Durability::Fsync => 0,
        Durability::Memory => 1,
    }
}

/// Encodes store values through the store codec into any [`Out`]: the store codec writes into a
/// `Vec` or a slice, so for a slice we let it write at the current offset.
fn put_store_part(out: &mut impl OutExt, encode: StorePart<'_>) {
    out.store_part(encode);
}

#[derive(Clone, Copy)]
enum StorePart<'a> {
    Response(&'a crate::store::Response),
    Events(&'a [crate::store::Event]),
}

/// Sinks that can host a store-codec encoding directly.
trait OutExt: Out {
    fn store_part(&mut self, part: StorePart<'_>);
}

impl OutExt for Vec<u8> {
    fn store_part(&mut self, part: StorePart<'_>) {
        match part {
            StorePart::Response(r) => crate::store::codec::encode_response(r, self),
            StorePart::Events(e) => crate::store::codec::encode_events(e, self),
        }
    }
}

impl OutExt for SliceOut<'_> {
    fn store_part(&mut self, part: StorePart<'_>) {
        let start = self.written.min(self.buf.len());
        let room = &mut self.buf[start..];
        let result = match part {
            StorePart::Response(r) => crate::store::codec::encode_response_into(r, room),
            StorePart::Events(e) => crate::store::codec::encode_events_into(e, room),
        };
        self.written += match result {
            Ok(len) => len,
            Err(too_small) => too_small.need,
        };
    }
}

fn put_response(out: &mut impl OutExt, response: ResponseRef<'_>) {
    out.u8(PROTOCOL_VERSION);
    match response {
        ResponseRef::Store(bytes) => {
            out.u8(tag::STORE);
            out.put(bytes);
        }
        ResponseRef::StoreResponse(r) => {
            out.u8(tag::STORE);
            put_store_part(out, StorePart::Response(r));
        }
        ResponseRef::WatchCreated {
            watch_id,
            start_revision,
        } => {
            out.u8(tag::WATCH_CREATED);
            out.u64(watch_id);
            out.u64(start_revision);
        }
        ResponseRef::WatchEventsBytes { watch_id, events } => {
            out.u8(tag::WATCH_EVENTS);
            out.u64(watch_id);
            out.put(events);
        }
        ResponseRef::WatchEvents { watch_id, events } => {
            out.u8(tag::WATCH_EVENTS);
            out.u64(watch_id);
            put_store_part(out, StorePart::Events(events));
        }
        ResponseRef::WatchCanceled { watch_id, reason } => {
            out.u8(tag::WATCH_CANCELED);
            out.u64(watch_id);
            match reason {
                CancelReason::Requested => out.u8(0),
                CancelReason::Compacted { compact_revision } => {
                    out.u8(1);
                    out.u64(compact_revision);
                }
                CancelReason::SlowConsumer => out.u8(2),
            }
        }
        ResponseRef::Status(s) => {
            out.u8(tag::STATUS);
            out.u64(s.node_id);
            out.u8(s.role.to_byte());
            out.u64(s.term);
            out.u64(s.leader);
            out.u64(s.commit_index);
            out.u64(s.applied_index);
            out.u64(s.revision);
            out.u8(durability_byte(s.durability));
            out.bytes(s.leader_client_addr.as_bytes());
        }
        ResponseRef::Error(e) => {
            out.u8(tag::ERROR);
            put_error(out, e);
        }
    }
}

impl ClientResponse {
    /// A borrowed view for encoding.
    pub fn as_ref(&self) -> ResponseRef<'_> {
        match self {
            ClientResponse::Store(bytes) => ResponseRef::Store(bytes),
            ClientResponse::WatchCreated {
                watch_id,
                start_revision,
            } => ResponseRef::WatchCreated {
                watch_id: *watch_id,
                start_revision: *start_revision,
            },
            ClientResponse::WatchEvents { watch_id, events } => ResponseRef::WatchEventsBytes {
                watch_id: *watch_id,
                events,
            },
            ClientResponse::WatchCanceled { watch_id, reason } => ResponseRef::WatchCanceled {
                watch_id: *watch_id,
                reason: *reason,
            },
            ClientResponse::Status(s) => ResponseRef::Status(s),
            ClientResponse::Error(e) => ResponseRef::Error(e),
        }
    }
}

/// Appends the payload encoding of `response` to `out`.
pub fn encode_response(response: &ClientResponse, out: &mut Vec<u8>) {
    put_response(out, response.as_ref());
}

/// Encodes `response`'s payload into the front of `buf` without allocating; returns its length.
pub fn encode_response_into(response: ResponseRef<'_>, buf: &mut [u8]) -> Result<usize, NoRoom> {
    into_slice(buf, |out| put_response(out, response))
}

/// The payload length of `response`, without writing it.
pub fn response_len(response: ResponseRef<'_>) -> usize {
    struct Count(usize);
    impl Out for Count {
        fn put(&mut self, bytes: &[u8]) {
            self.0 += bytes.len();
        }
    }
    impl OutExt for Count {
        fn store_part(&mut self, part: StorePart<'_>) {
            self.0 += match part {
                StorePart::Response(r) => crate::store::codec::response_len(r),
                StorePart::Events(e) => {
                    let mut v = Vec::new();
                    crate::store::codec::encode_events(e, &mut v);
                    v.len()
                }
            };
        }
    }
    let mut count = Count(0);
    put_response(&mut count, response);
    count.0
}

fn get_error(c: &mut Cursor<'_>) -> Result<ServerError, ProtocolError> {
    Ok(match c.u8("error code")? {
        error_tag::NOT_LEADER => ServerError::NotLeader {
            leader: c.u64("leader")?,
            leader_client_addr: c.text("leader_client_addr")?,
        },
        error_tag::NO_LEADER => ServerError::NoLeader,
        error_tag::BUSY => ServerError::Busy,
        error_tag::DEADLINE_EXCEEDED => ServerError::DeadlineExceeded,
        error_tag::TOO_LARGE => ServerError::TooLarge {
            len_bytes: c.u64("len_bytes")?,
            max_bytes: c.u64("max_bytes")?,
        },
        error_tag::BAD_REQUEST => ServerError::BadRequest {
            reason: c.text("reason")?,
        },
        error_tag::COMPACTED => ServerError::Compacted {
            requested: c.u64("requested")?,
            compact_revision: c.u64("compact_revision")?,
        },
        error_tag::UNAVAILABLE => ServerError::Unavailable {
            reason: c.text("reason")?,
        },
        got => {
            return Err(ProtocolError::UnknownTag {
                what: "error code",
                got,
            })
        }
    })
}

/// Decodes a response payload (client side). STORE and WATCH_EVENTS bodies stay in store-codec
/// encoding for [`crate::store::codec::decode_response`] / [`crate::store::codec::decode_events`].
pub fn decode_response(payload: &[u8]) -> Result<ClientResponse, ProtocolError> {
    let mut c = Cursor { buf: payload };
    c.version()?;
    let response = match c.u8("response tag")? {
        tag::STORE => ClientResponse::Store(c.rest().to_vec()),
        tag::WATCH_CREATED => ClientResponse::WatchCreated {
            watch_id: c.u64("watch_id")?,
            start_revision: c.u64("start_revision")?,
        },
        tag::WATCH_EVENTS => ClientResponse::WatchEvents {
            watch_id: c.u64("watch_id")?,
            events: c.rest().to_vec(),
        },
        tag::WATCH_CANCELED => {
            let watch_id = c.u64("watch_id")?;
            let reason = match c.u8("cancel reason")? {
                0 => CancelReason::Requested,
                1 => CancelReason::Compacted {
                    compact_revision: c.u64("compact_revision")?,
                },
                2 => CancelReason::SlowConsumer,
                got => {
                    return Err(ProtocolError::UnknownTag {
                        what: "cancel reason",
                        got,
                    })
                }
            };
            ClientResponse::WatchCanceled { watch_id, reason }
        }
        tag::STATUS => ClientResponse::Status(NodeStatus {
            node_id: c.u64("node_id")?,
            role: NodeRole::from_byte(c.u8("role")?)?,
            term: c.u64("term")?,
            leader: c.u64("leader")?,
            commit_index: c.u64("commit_index")?,
            applied_index: c.u64("applied_index")?,
            revision: c.u64("revision")?,
            durability: match c.u8("durability")? {
                0 => Durability::Fsync,
                1 => Durability::Memory,
                got => {
                    return Err(ProtocolError::UnknownTag {
                        what: "durability",
                        got,
                    })
                }
            },
            leader_client_addr: c.text("leader_client_addr")?,
        }),
        tag::ERROR => ClientResponse::Error(get_error(&mut c)?),
        got => {
            return Err(ProtocolError::UnknownTag {
                what: "response tag",
                got,
            })
        }
    };
    c.finish()?;
    Ok(response)
}

/// The header fields of a client frame: `from`, `to` and `term` are 0 on the client port.
pub fn client_fields(kind: FrameKind, cluster_id: u64, correlation_id: u64) -> HeaderFields {
    debug_assert!(matches!(
        kind,
        FrameKind::ClientRequest | FrameKind::ClientResponse
    ));
    HeaderFields {
        kind,
        cluster_id,
        from: 0,
        to: 0,
        term: 0,
        correlation_id,
    }
}

/// Appends one complete ClientRequest frame (header + payload) to `out` (client side).
pub fn frame_request(
    cluster_id: u64,
    correlation_id: u64,
    request: &ClientRequest,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let mut payload = Vec::new();
    encode_request(request, &mut payload);
    let start = out.len();
    out.resize(start + HEADER_LEN + payload.len(), 0);
    let fields = client_fields(FrameKind::ClientRequest, cluster_id, correlation_id);
    crate::wire::encode_payload(&mut out[start..], &fields, &payload)
}

/// Writes one complete ClientResponse frame into `buf` without allocating; returns its length.
pub fn frame_response_into(
    buf: &mut [u8],
    cluster_id: u64,
    correlation_id: u64,
    response: ResponseRef<'_>,
) -> Result<usize, FrameNoRoom> {
    let fields = client_fields(FrameKind::ClientResponse, cluster_id, correlation_id);
    let mut need = None;
    let len = encode_into(buf, &fields, |room| {
        match encode_response_into(response, room) {
            Ok(len) => len,
            Err(no_room) => {
                need = Some(no_room.need);
                0
            }
        }
    })
    .map_err(|_| FrameNoRoom {
        need: HEADER_LEN + response_len(response),
    })?;
    match need {
        Some(need) => Err(FrameNoRoom {
            need: HEADER_LEN + need,
        }),
        None => Ok(len),
    }
}

/// A send buffer is too small for a response frame of `need` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("response frame needs {need} bytes")]
pub struct FrameNoRoom {
    pub need: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_request_is_six_bytes() {
        let mut out = Vec::new();
        encode_request(
            &ClientRequest {
                deadline_ms: 7,
                op: RequestOp::Status,
            },
            &mut out,
        );
        assert_eq!(out.len(), REQUEST_PREFIX_BYTES);
        assert_eq!(decode_request(&out).unwrap().deadline_ms, 7);
    }

    #[test]
    fn frame_response_reports_room_needed() {
        let error = ServerError::BadRequest {
            reason: "x".repeat(100),
        };
        let mut small = [0u8; 80];
        let err = frame_response_into(&mut small, 1, 2, ResponseRef::Error(&error)).unwrap_err();
        let mut big = vec![0u8; err.need];
        assert_eq!(
            frame_response_into(&mut big, 1, 2, ResponseRef::Error(&error)).unwrap(),
            err.need
        );
    }
}
