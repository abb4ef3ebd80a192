//! The store's binary encoding: client requests (which are also the log's entries), responses and
//! watch event batches.
//!
//! Because the server proposes a client's request bytes into the log exactly as they arrived,
//! this encoding is the log format: it is versioned, canonical (a valid message has exactly one
//! encoding; re-encoding a decoded message gives the same bytes) and fully validated on decode.
//! Garbage yields a [`CodecError`], never a panic, and nothing is allocated beyond the bytes
//! received.
//!
//! ```text
//!  every message:  version u8 (= VERSION) | kind u8 ('Q' request, 'R' response, 'W' events)
//!  request:        client_id u64 | seq u64 | acked_seq u64 | command tag u8 | fields
//!  response:       revision u64 | 0 u8 + reply tag u8 + fields  |  1 u8 + error tag u8 + fields
//!  events:         count u32 | count × (kind u8 | kv | prev_kv option)
//!  fields:         integers little-endian; bool = one byte 0 or 1; bytes = len u32 + bytes;
//!                  list = count u32 + items; option = 0 u8 | 1 u8 + item
//! ```
//!
//! Tags are listed in `request.rs` and `response.rs`; a new tag or field means a new [`VERSION`].

mod primitive;
mod request;
mod response;

pub(in crate::store) use primitive::{LenCounter, Reader, Sink};
pub use request::validate;

use primitive::SliceSink;
use thiserror::Error;

use super::command::{Event, Request, Response};
use super::error::CodecError;
use super::limits::StoreLimits;

/// The codec version this build writes and reads.
pub const VERSION: u8 = 1;

const KIND_REQUEST: u8 = b'Q';
const KIND_RESPONSE: u8 = b'R';
const KIND_EVENTS: u8 = b'W';

/// A caller's fixed buffer cannot hold the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("buffer of {have} bytes is too small for a {need}-byte message; use a larger buffer")]
pub struct BufferTooSmall {
    pub need: usize,
    pub have: usize,
}

fn begin(out: &mut impl Sink, kind: u8) {
    out.u8(VERSION);
    out.u8(kind);
}

fn expect_header(r: &mut Reader<'_>, kind: u8, expected: &'static str) -> Result<(), CodecError> {
    let version = r.u8("codec version")?;
    if version != VERSION {
        return Err(CodecError::UnsupportedVersion {
            got: version,
            supported: VERSION,
        });
    }
    let got = r.u8("message kind")?;
    if got != kind {
        return Err(CodecError::WrongMessageKind { expected, got });
    }
    Ok(())
}

fn into_slice(
    buf: &mut [u8],
    encode: impl FnOnce(&mut SliceSink<'_>),
) -> Result<usize, BufferTooSmall> {
    let have = buf.len();
    let mut sink = SliceSink { buf, written: 0 };
    encode(&mut sink);
    if sink.written <= have {
        Ok(sink.written)
    } else {
        Err(BufferTooSmall {
            need: sink.written,
            have,
        })
    }
}

/// Appends the encoding of `request` to `out` (a client builds its payload this way). Encoding does
/// not validate: call [`validate`] first to learn of a stateless error before sending.
pub fn encode_request(request: &Request, out: &mut Vec<u8>) {
    request::put_request(out, request);
}

/// Encodes `request` into the front of `buf` and returns its length.
pub fn encode_request_into(request: &Request, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    into_slice(buf, |sink| request::put_request(sink, request))
}

/// Decodes one request and checks every stateless rule under `limits` (sizes while reading, then
/// [`validate`]). The server calls this on every request before proposing it; the store calls it
/// again on apply with the same limits, so the two agree.
pub fn decode_request(bytes: &[u8], limits: &StoreLimits) -> Result<Request, CodecError> {
    request::get_request(bytes, limits)
}

/// Appends the encoding of `response` to `out`.
pub fn encode_response(response: &Response, out: &mut Vec<u8>) {
    response::put_response(out, response);
}

/// Encodes `response` into the front of `buf` (a transport's registered slab) and returns its
/// length; no allocation.
pub fn encode_response_into(response: &Response, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    into_slice(buf, |sink| response::put_response(sink, response))
}

/// The encoded length of `response`, without encoding it.
pub fn response_len(response: &Response) -> usize {
    let mut counter = LenCounter::default();
    response::put_response(&mut counter, response);
    counter.0
}

/// Decodes one response (client side).
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    response::get_response(bytes)
}

/// Appends one watch message carrying `events` (in revision order) to `out`.
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    response::put_events(out, events);
}

/// Encodes a watch message into the front of `buf` and returns its length; no allocation.
pub fn encode_events_into(events: &[Event], buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    into_slice(buf, |sink| response::put_events(sink, events))
}

/// Decodes one watch message (client side).
pub fn decode_events(bytes: &[u8]) -> Result<Vec<Event>, CodecError> {
    response::get_events(bytes)
}
