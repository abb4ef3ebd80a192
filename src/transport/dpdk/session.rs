//! The reliability layer of a datagram fabric, sans-IO: one [`Session`] per peer, after eRPC.
//!
//! Why here and not in the NIC: DPDK (like any datagram fabric) loses, duplicates and reorders
//! nothing on a healthy memif pair, but a veth under load, a full RX ring or a restarted peer does,
//! and consensus needs what TCP gives the other transport: in-order, exactly-once delivery per
//! peer while the peer is up, and a clear "down" when it is not. This module is that contract and
//! nothing else: no clock (every call takes `now_ns`), no socket, no allocation after
//! [`Session::new`] (the window is a ring preallocated to `window_frames`). The datagram
//! transport feeds it segments and carries out what it asks through a [`Sink`].
//!
//! # Protocol
//!
//! Every UDP body starts with a [`SegmentHeader`] (20 bytes): `kind, version, flags, 0u8, epoch,
//! peer_epoch, seq, ack`, little-endian.
//!
//! - **Epochs** name one incarnation of a session end. A node picks a random non-zero epoch per
//!   peer at start and bumps it whenever it resets that session. `SYN`/`SYNACK` carry the sender's
//!   epoch and the receiver's epoch as the sender knows it (0 if unknown). A session is up once
//!   each side has seen the other's epoch echoed back: `SYN(a,0) → SYN(b,a) → SYNACK(a,b)`; a `SYN`
//!   is answered with `SYN` while the receiver is not up (so it learns it is known) and with
//!   `SYNACK` once it is; a `SYNACK` is never answered, so the exchange ends. A `SYN` carrying a new
//!   epoch means the peer restarted: the session goes down and starts over. `DATA` and `ACK`
//!   whose epochs do not match the current pair are stale and dropped, so nothing of an old
//!   incarnation is ever delivered into a new one.
//! - **Go-back-N**, as eRPC: `seq` numbers data segments from 0 per session; `ack` is cumulative
//!   (the next `seq` the sender of the ack expects) and rides on every segment. The receiver
//!   delivers only `seq == expected` and drops the rest (counted as duplicates or out-of-order),
//!   re-acking so the sender learns quickly. The sender keeps at most `window_frames` unacked
//!   frames (more is [`Refused::WindowFull`], backpressure); when the oldest stays unacked for the
//!   retransmission timeout it resends the whole window, doubling the timeout up to its cap; after
//!   `max_retransmits` timeouts in a row without progress the peer is declared down
//!   ([`DownCause::Unreachable`]) and the session restarts with a new epoch.
//! - **Segmentation**: a frame longer than one datagram's payload is sent as consecutive data
//!   segments, all but the last flagged `MORE`; in-order delivery makes reassembly an append.
//!   The window counts segments.
//! - **Acks** are piggybacked on data; an ack that found no data to ride on is sent alone on the
//!   transport's next poll ([`Session::flush_ack`]), which in a request/response exchange is
//!   after the response has carried it.

use std::collections::VecDeque;
use std::ops::Range;

/// Bytes of the segment header in front of every UDP body.
pub const SEGMENT_HEADER_LEN: usize = 20;
/// The protocol version byte; anything else is dropped.
pub const SEGMENT_VERSION: u8 = 1;
/// Bytes after the header of a `SYN`/`SYNACK`: the authenticator the transport adds and checks
/// (HMAC-SHA256 with the cluster secret); the session only checks the length.
pub const CONTROL_PAYLOAD_LEN: usize = 32;
/// The most frames a window may hold: far beyond what a consensus pipeline keeps in flight, and
/// small enough that sequence comparisons never wrap ambiguously.
pub const MAX_WINDOW_FRAMES: u16 = 4096;

/// What a segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// One Aurora frame, numbered.
    Data,
    /// A cumulative ack alone.
    Ack,
    /// Session open: "this is my epoch, this is yours as I know it"; always answered.
    Syn,
    /// The answer to a `Syn` from a side that is up; never answered.
    SynAck,
}

impl SegmentKind {
    const fn to_byte(self) -> u8 {
        match self {
            SegmentKind::Data => 1,
            SegmentKind::Ack => 2,
            SegmentKind::Syn => 3,
            SegmentKind::SynAck => 4,
        }
    }

    const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => SegmentKind::Data,
            2 => SegmentKind::Ack,
            3 => SegmentKind::Syn,
            4 => SegmentKind::SynAck,
            _ => return None,
        })
    }
}

/// The reliability header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub kind: SegmentKind,
    /// The sender's epoch (never 0).
    pub epoch: u32,
    /// The receiver's epoch as the sender knows it (0: unknown).
    pub peer_epoch: u32,
    /// Data sequence number (0 on other kinds).
    pub seq: u32,
    /// Cumulative ack: the next data `seq` the sender expects.
    pub ack: u32,
    /// `Data` only: more segments of the same frame follow.
    pub more: bool,
}

const FLAG_MORE: u8 = 1;

impl SegmentHeader {
    /// Writes the header into the first [`SEGMENT_HEADER_LEN`] bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than the header (the caller sized it).
    pub fn write(&self, out: &mut [u8]) {
        let out = &mut out[..SEGMENT_HEADER_LEN];
        out[0] = self.kind.to_byte();
        out[1] = SEGMENT_VERSION;
        out[2] = if self.more { FLAG_MORE } else { 0 };
        out[3] = 0;
        out[4..8].copy_from_slice(&self.epoch.to_le_bytes());
        out[8..12].copy_from_slice(&self.peer_epoch.to_le_bytes());
        out[12..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..20].copy_from_slice(&self.ack.to_le_bytes());
    }

    /// Splits a UDP body into header and payload. `Data` carries a frame, `SYN`/`SYNACK` exactly
    /// [`CONTROL_PAYLOAD_LEN`] bytes, `ACK` nothing.
    pub fn read(body: &[u8]) -> Result<(Self, &[u8]), SegmentDrop> {
        if body.len() < SEGMENT_HEADER_LEN {
            return Err(SegmentDrop::Malformed);
        }
        let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("in bounds"));
        let kind = SegmentKind::from_byte(body[0]).ok_or(SegmentDrop::Malformed)?;
        if body[1] != SEGMENT_VERSION || body[2] & !FLAG_MORE != 0 || body[3] != 0 || word(4) == 0 {
            return Err(SegmentDrop::Malformed);
        }
        let payload = &body[SEGMENT_HEADER_LEN..];
        let more = body[2] & FLAG_MORE != 0;
        if more && kind != SegmentKind::Data {
            return Err(SegmentDrop::Malformed);
        }
        let payload_ok = match kind {
            SegmentKind::Data => true,
            SegmentKind::Ack => payload.is_empty(),
            SegmentKind::Syn | SegmentKind::SynAck => payload.len() == CONTROL_PAYLOAD_LEN,
        };
        if !payload_ok {
            return Err(SegmentDrop::Malformed);
        }
        let header = SegmentHeader {
            kind,
            epoch: word(4),
            peer_epoch: word(8),
            seq: word(12),
            ack: word(16),
            more,
        };
        Ok((header, payload))
    }
}

/// Why a segment was dropped by the session. Each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentDrop {
    /// Short, unknown kind or version, zero epoch, or a payload of the wrong length for its kind.
    Malformed,
    /// From another incarnation of the session (an epoch that is not the current pair's).
    Stale,
    /// An ack for frames never sent (a confused or forged peer).
    BadAck,
    /// Data already delivered (a retransmission whose ack was lost).
    Duplicate,
    /// Data beyond the next expected one (an earlier segment was lost): go-back-N drops it.
    OutOfOrder,
    /// The receiver had no buffer for it; the sender will retransmit.
    NoBuffer,
}

impl SegmentDrop {
    /// Every reason, in counter order.
    pub const ALL: [SegmentDrop; 6] = [
        SegmentDrop::Malformed,
        SegmentDrop::Stale,
        SegmentDrop::BadAck,
        SegmentDrop::Duplicate,
        SegmentDrop::OutOfOrder,
        SegmentDrop::NoBuffer,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            SegmentDrop::Malformed => "malformed_segment",
            SegmentDrop::Stale => "stale_epoch",
            SegmentDrop::BadAck => "bad_ack",
            SegmentDrop::Duplicate => "duplicate",
            SegmentDrop::OutOfOrder => "out_of_order",
            SegmentDrop::NoBuffer => "no_buffer",
        }
    }
}

/// Why a session went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownCause {
    /// The peer opened a new incarnation (it restarted or reset its side).
    PeerRestarted,
    /// `retransmits` timeouts in a row passed without the peer acknowledging anything.
    Unreachable { retransmits: u32 },
}

/// Why [`Session::send`] refused a frame (it is handed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The session is not up.
    NotUp,
    /// The frame's segments do not fit in the free part of the window.
    WindowFull { window_frames: u16 },
    /// The frame needs more segments than the whole window holds.
    TooLarge { segments: usize, window_frames: u16 },
}

/// Timing and bounds of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Unacknowledged segments at most (1..=[`MAX_WINDOW_FRAMES`]).
    pub window_frames: u16,
    /// First retransmission timeout.
    pub rto_initial_ns: u64,
    /// The timeout doubles per retransmission up to this.
    pub rto_max_ns: u64,
    /// Timeouts in a row without progress before the peer is declared down.
    pub max_retransmits: u32,
    /// How often a session that is not up sends `SYN`.
    pub syn_interval_ns: u64,
}

impl SessionConfig {
    /// Checks the bounds; the message names the field and the rule.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_frames == 0 || self.window_frames > MAX_WINDOW_FRAMES {
            return Err(format!(
                "window_frames = {} must be in 1..={MAX_WINDOW_FRAMES}",
                self.window_frames
            ));
        }
        if self.rto_initial_ns == 0 || self.rto_max_ns < self.rto_initial_ns {
            return Err(format!(
                "retransmission timeouts must satisfy 0 < rto_initial_ns ({}) <= rto_max_ns ({})",
                self.rto_initial_ns, self.rto_max_ns
            ));
        }
        if self.max_retransmits == 0 || self.syn_interval_ns == 0 {
            return Err("max_retransmits and syn_interval_ns must be positive".into());
        }
        Ok(())
    }
}

/// What a session asks its transport to do.
pub trait Sink<T> {
    /// Send this segment now (for `Data`, with bytes `range` of the frame after the header).
    fn transmit(&mut self, header: &SegmentHeader, payload: Option<(&T, Range<usize>)>);
    /// The next in-order segment's payload: copy it out now; `last` ends the frame. Return
    /// `false` if there is no room (no buffer); the segment then counts as not received and the
    /// peer retransmits it.
    fn deliver(&mut self, payload: &[u8], last: bool) -> bool;
    /// The peer acknowledged this frame; the fabric is done with it.
    fn released(&mut self, frame: T);
    /// The session came up.
    fn up(&mut self);
    /// The session went down; unacknowledged frames were dropped.
    fn down(&mut self, cause: DownCause);
}

/// One segment of a frame in the send window.
#[derive(Debug, Clone, Copy)]
struct Fragment {
    offset: u32,
    len: u32,
    last: bool,
}

impl Fragment {
    fn range(&self) -> Range<usize> {
        self.offset as usize..(self.offset + self.len) as usize
    }
}

/// One end of a reliable session with one peer. See the module docs.
#[derive(Debug)]
pub struct Session<T> {
    cfg: SessionConfig,
    local_epoch: u32,
    /// 0 until the peer's epoch is known.
    remote_epoch: u32,
    up: bool,
    /// Unacked segments, oldest first; the front has sequence number `base_seq`.
    unacked: VecDeque<Fragment>,
    /// Frames with at least one unacked segment, oldest first (a frame leaves with its last).
    frames: VecDeque<T>,
    base_seq: u32,
    /// Next data sequence number expected from the peer.
    expected_seq: u32,
    ack_pending: bool,
    rto_ns: u64,
    /// When the oldest unacked frame is retransmitted (meaningful while `unacked` is not empty).
    rto_deadline_ns: u64,
    /// Timeouts in a row without progress.
    retries: u32,
    next_syn_ns: u64,
    retransmitted_frames: u64,
}

impl<T> Session<T> {
    /// A session that starts connecting at once. `local_epoch` must be non-zero (pick it at
    /// random, so a restarted node is told apart from its previous incarnation).
    pub fn new(cfg: SessionConfig, local_epoch: u32) -> Self {
        assert!(
            cfg.validate().is_ok(),
            "session config validated by the caller"
        );
        assert_ne!(local_epoch, 0, "epoch 0 means unknown");
        Self {
            cfg,
            local_epoch,
            remote_epoch: 0,
            up: false,
            unacked: VecDeque::with_capacity(usize::from(cfg.window_frames)),
            frames: VecDeque::with_capacity(usize::from(cfg.window_frames)),
            base_seq: 0,
            expected_seq: 0,
            ack_pending: false,
            rto_ns: cfg.rto_initial_ns,
            rto_deadline_ns: 0,
            retries: 0,
            next_syn_ns: 0,
            retransmitted_frames: 0,
        }
    }

    /// Whether the session is up (frames may be sent and are delivered).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Frames sent but not yet (wholly) acknowledged.
    pub fn unacked_frames(&self) -> usize {
        self.frames.len()
    }

    /// Data segments sent again after a timeout, over the session's life.
    pub fn retransmitted_frames(&self) -> u64 {
        self.retransmitted_frames
    }

    /// This end's current epoch.
    pub fn local_epoch(&self) -> u32 {
        self.local_epoch
    }

    fn header(&self, kind: SegmentKind, seq: u32) -> SegmentHeader {
        SegmentHeader {
            kind,
            epoch: self.local_epoch,
            peer_epoch: self.remote_epoch,
            seq,
            ack: self.expected_seq,
            more: false,
        }
    }

    /// Sends `frame` (`len_bytes` long) as the next data segments of at most
    /// `max_segment_bytes` each, or hands it back.
    pub fn send(
        &mut self,
        now_ns: u64,
        frame: T,
        len_bytes: usize,
        max_segment_bytes: usize,
        sink: &mut impl Sink<T>,
    ) -> Result<(), (T, Refused)> {
        assert!(max_segment_bytes > 0, "a segment carries at least one byte");
        if !self.up {
            return Err((frame, Refused::NotUp));
        }
        let window_frames = self.cfg.window_frames;
        let segments = len_bytes.div_ceil(max_segment_bytes).max(1);
        if segments > usize::from(window_frames) {
            return Err((
                frame,
                Refused::TooLarge {
                    segments,
                    window_frames,
                },
            ));
        }
        if self.unacked.len() + segments > usize::from(window_frames) {
            return Err((frame, Refused::WindowFull { window_frames }));
        }
        if self.unacked.is_empty() {
            self.rto_deadline_ns = now_ns.saturating_add(self.rto_ns);
        }
        debug_assert!(
            self.frames.len() < self.frames.capacity(),
            "window never grows"
        );
        self.frames.push_back(frame);
        self.ack_pending = false;
        for k in 0..segments {
            let offset = k * max_segment_bytes;
            let fragment = Fragment {
                offset: offset as u32,
                len: max_segment_bytes.min(len_bytes - offset) as u32,
                last: k + 1 == segments,
            };
            let seq = self.base_seq.wrapping_add(self.unacked.len() as u32);
            debug_assert!(
                self.unacked.len() < self.unacked.capacity(),
                "window never grows"
            );
            self.unacked.push_back(fragment);
            let header = SegmentHeader {
                more: !fragment.last,
                ..self.header(SegmentKind::Data, seq)
            };
            let frame = self.frames.back().expect("pushed above");
            sink.transmit(&header, Some((frame, fragment.range())));
        }
        Ok(())
    }

    /// Sends a lone ack if data arrived since the last segment this end sent.
    pub fn flush_ack(&mut self, sink: &mut impl Sink<T>) {
        if self.ack_pending && self.up {
            self.ack_pending = false;
            sink.transmit(&self.header(SegmentKind::Ack, 0), None);
        }
    }

    /// Timers: `SYN` while connecting, go-back-N retransmission while up.
    pub fn tick(&mut self, now_ns: u64, sink: &mut impl Sink<T>) {
        if !self.up {
            if now_ns >= self.next_syn_ns {
                self.next_syn_ns = now_ns.saturating_add(self.cfg.syn_interval_ns);
                sink.transmit(&self.header(SegmentKind::Syn, 0), None);
            }
            return;
        }
        if self.unacked.is_empty() || now_ns < self.rto_deadline_ns {
            return;
        }
        self.retries += 1;
        if self.retries > self.cfg.max_retransmits {
            let retransmits = self.retries - 1;
            // A new epoch: the peer, if it comes back, sees a restart and resets its end too.
            self.local_epoch = next_epoch(self.local_epoch);
            self.reset();
            sink.down(DownCause::Unreachable { retransmits });
            return;
        }
        self.rto_ns = self.rto_ns.saturating_mul(2).min(self.cfg.rto_max_ns);
        self.rto_deadline_ns = now_ns.saturating_add(self.rto_ns);
        self.ack_pending = false;
        let mut frame = 0;
        for (i, fragment) in self.unacked.iter().enumerate() {
            let header = SegmentHeader {
                kind: SegmentKind::Data,
                epoch: self.local_epoch,
                peer_epoch: self.remote_epoch,
                seq: self.base_seq.wrapping_add(i as u32),
                ack: self.expected_seq,
                more: !fragment.last,
            };
            sink.transmit(&header, Some((&self.frames[frame], fragment.range())));
            if fragment.last {
                frame += 1;
            }
        }
        self.retransmitted_frames += self.unacked.len() as u64;
    }

    /// Forgets everything of the current incarnation pair (frames in the window are dropped).
    fn reset(&mut self) {
        self.remote_epoch = 0;
        self.up = false;
        self.unacked.clear();
        self.frames.clear();
        self.base_seq = 0;
        self.expected_seq = 0;
        self.ack_pending = false;
        self.rto_ns = self.cfg.rto_initial_ns;
        self.retries = 0;
        self.next_syn_ns = 0;
    }

    /// One segment from this peer (already matched to it by address).
    pub fn on_segment(
        &mut self,
        now_ns: u64,
        header: &SegmentHeader,
        payload: &[u8],
        sink: &mut impl Sink<T>,
    ) -> Result<(), SegmentDrop> {
        debug_assert_ne!(header.epoch, 0, "SegmentHeader::read rejects epoch 0");
        let control = matches!(header.kind, SegmentKind::Syn | SegmentKind::SynAck);
        if header.epoch != self.remote_epoch {
            if !control {
                return Err(SegmentDrop::Stale);
            }
            if self.remote_epoch != 0 {
                let was_up = self.up;
                self.reset();
                if was_up {
                    sink.down(DownCause::PeerRestarted);
                }
            }
            self.remote_epoch = header.epoch;
        }
        if control {
            if header.peer_epoch == self.local_epoch && !self.up {
                self.up = true;
                sink.up();
            }
            if header.kind == SegmentKind::Syn {
                let kind = if self.up {
                    SegmentKind::SynAck
                } else {
                    SegmentKind::Syn
                };
                sink.transmit(&self.header(kind, 0), None);
            }
            return Ok(());
        }
        if header.peer_epoch != self.local_epoch {
            return Err(SegmentDrop::Stale);
        }
        let acked = header.ack.wrapping_sub(self.base_seq) as usize;
        if acked > self.unacked.len() {
            return Err(SegmentDrop::BadAck);
        }
        if !self.up {
            // Both epochs match, so the peer has seen ours and we have seen its: the SYNACK that
            // would have told us was lost, this segment tells the same.
            self.up = true;
            sink.up();
        }
        if acked > 0 {
            for _ in 0..acked {
                let fragment = self.unacked.pop_front().expect("acked <= unacked.len()");
                if fragment.last {
                    let frame = self
                        .frames
                        .pop_front()
                        .expect("every fragment has its frame");
                    sink.released(frame);
                }
            }
            self.base_seq = header.ack;
            self.retries = 0;
            self.rto_ns = self.cfg.rto_initial_ns;
            self.rto_deadline_ns = now_ns.saturating_add(self.rto_ns);
        }
        if header.kind != SegmentKind::Data {
            return Ok(());
        }
        let ahead = header.seq.wrapping_sub(self.expected_seq);
        if ahead == 0 {
            if !sink.deliver(payload, !header.more) {
                return Err(SegmentDrop::NoBuffer);
            }
            self.expected_seq = self.expected_seq.wrapping_add(1);
            self.ack_pending = true;
            Ok(())
        } else {
            self.ack_pending = true;
            if ahead > u32::MAX / 2 {
                Err(SegmentDrop::Duplicate)
            } else {
                Err(SegmentDrop::OutOfOrder)
            }
        }
    }
}

/// The epoch after `epoch`, skipping 0 (which means unknown).
pub fn next_epoch(epoch: u32) -> u32 {
    match epoch.wrapping_add(1) {
        0 => 1,
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: SessionConfig = SessionConfig {
        window_frames: 4,
        rto_initial_ns: 1_000,
        rto_max_ns: 8_000,
        max_retransmits: 3,
        syn_interval_ns: 500,
    };

    /// Records what a session asked for. Frames are `u32` tags; their bytes are `frame_bytes(tag)`.
    #[derive(Default)]
    struct Log {
        wire: VecDeque<(SegmentHeader, Vec<u8>)>,
        delivered: Vec<u32>,
        released: Vec<u32>,
        ups: u32,
        downs: Vec<DownCause>,
        refuse_delivery: bool,
        partial: Vec<u8>,
    }

    /// Frame `tag`'s bytes: its tag, then `tag % 23` bytes of a pattern (so sizes vary).
    fn frame_bytes(tag: u32) -> Vec<u8> {
        let mut bytes = tag.to_le_bytes().to_vec();
        bytes.extend((0..tag % 23).map(|i| (i as u8).wrapping_mul(7) ^ tag as u8));
        bytes
    }

    /// Segment payload limit of the segmenting tests: frames of 5+ bytes take several segments.
    const MSS: usize = 4;

    /// Sends frame `tag` unsegmented.
    fn send(e: &mut End, now: u64, tag: u32) -> Result<(), (u32, Refused)> {
        e.s.send(now, tag, frame_bytes(tag).len(), 1 << 20, &mut e.log)
    }

    impl Sink<u32> for Log {
        fn transmit(&mut self, header: &SegmentHeader, payload: Option<(&u32, Range<usize>)>) {
            let bytes = payload
                .map(|(p, range)| frame_bytes(*p)[range].to_vec())
                .unwrap_or_default();
            self.wire.push_back((*header, bytes));
        }
        fn deliver(&mut self, payload: &[u8], last: bool) -> bool {
            if self.refuse_delivery {
                return false;
            }
            self.partial.extend_from_slice(payload);
            if last {
                let bytes = std::mem::take(&mut self.partial);
                let tag = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                assert_eq!(bytes, frame_bytes(tag), "reassembled frame {tag} intact");
                self.delivered.push(tag);
            }
            true
        }
        fn released(&mut self, frame: u32) {
            self.released.push(frame);
        }
        fn up(&mut self) {
            self.ups += 1;
        }
        fn down(&mut self, cause: DownCause) {
            self.downs.push(cause);
        }
    }

    struct End {
        s: Session<u32>,
        log: Log,
    }

    impl End {
        fn new(epoch: u32) -> Self {
            Self::with(CFG, epoch)
        }

        fn with(cfg: SessionConfig, epoch: u32) -> Self {
            Self {
                s: Session::new(cfg, epoch),
                log: Log::default(),
            }
        }
    }

    /// Moves every segment `from` sent to `to`, through the wire encoding; `lose` decides per
    /// segment (by its index in this batch) whether it is lost.
    fn carry(
        now: u64,
        from: &mut End,
        to: &mut End,
        lose: impl Fn(usize) -> bool,
    ) -> Vec<SegmentDrop> {
        let mut drops = Vec::new();
        let batch: Vec<_> = from.log.wire.drain(..).collect();
        for (i, (header, payload)) in batch.into_iter().enumerate() {
            if lose(i) {
                continue;
            }
            let control = matches!(header.kind, SegmentKind::Syn | SegmentKind::SynAck);
            let payload = if control {
                vec![0xA5; CONTROL_PAYLOAD_LEN]
            } else {
                payload
            };
            let mut body = vec![0u8; SEGMENT_HEADER_LEN + payload.len()];
            header.write(&mut body);
            body[SEGMENT_HEADER_LEN..].copy_from_slice(&payload);
            let (h, p) = SegmentHeader::read(&body).unwrap();
            assert_eq!(h, header);
            if let Err(d) = to.s.on_segment(now, &h, p, &mut to.log) {
                drops.push(d);
            }
        }
        drops
    }

    fn connect(a: &mut End, b: &mut End) {
        a.s.tick(0, &mut a.log);
        for _ in 0..4 {
            carry(0, a, b, |_| false);
            carry(0, b, a, |_| false);
        }
        assert!(a.s.is_up() && b.s.is_up());
        assert!(
            a.log.wire.is_empty() && b.log.wire.is_empty(),
            "the exchange ends"
        );
        assert_eq!((a.log.ups, b.log.ups), (1, 1));
    }

    #[test]
    fn three_segments_open_a_session_and_the_exchange_ends() {
        let (mut a, mut b) = (End::new(11), End::new(22));
        a.s.tick(0, &mut a.log);
        assert_eq!(a.log.wire.len(), 1);
        carry(0, &mut a, &mut b, |_| false); // SYN(11,0)
        assert!(!b.s.is_up());
        carry(0, &mut b, &mut a, |_| false); // SYN(22,11)
        assert!(a.s.is_up());
        carry(0, &mut a, &mut b, |_| false); // SYNACK(11,22)
        assert!(b.s.is_up());
        assert!(a.log.wire.is_empty() && b.log.wire.is_empty());
    }

    #[test]
    fn frames_arrive_in_order_exactly_once_and_acks_release_them() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        for f in 0..4 {
            send(&mut a, 0, f).unwrap();
        }
        assert_eq!(
            send(&mut a, 0, 99),
            Err((99, Refused::WindowFull { window_frames: 4 }))
        );
        carry(0, &mut a, &mut b, |_| false);
        assert_eq!(b.log.delivered, [0, 1, 2, 3]);
        b.s.flush_ack(&mut b.log);
        assert_eq!(b.log.wire.len(), 1, "one cumulative ack");
        carry(0, &mut b, &mut a, |_| false);
        assert_eq!(a.log.released, [0, 1, 2, 3]);
        assert_eq!(a.s.unacked_frames(), 0);
    }

    #[test]
    fn a_reply_carries_the_ack_so_no_lone_ack_follows() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        send(&mut a, 0, 7).unwrap();
        carry(0, &mut a, &mut b, |_| false);
        send(&mut b, 0, 8).unwrap();
        b.s.flush_ack(&mut b.log);
        assert_eq!(b.log.wire.len(), 1);
        carry(0, &mut b, &mut a, |_| false);
        assert_eq!(a.log.released, [7]);
        assert_eq!(a.log.delivered, [8]);
    }

    #[test]
    fn a_lost_segment_is_retransmitted_with_the_window_and_duplicates_are_suppressed() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        for f in 10..13 {
            send(&mut a, 0, f).unwrap();
        }
        let drops = carry(0, &mut a, &mut b, |i| i == 1);
        assert_eq!(drops, [SegmentDrop::OutOfOrder]);
        assert_eq!(b.log.delivered, [10]);
        b.s.flush_ack(&mut b.log);
        carry(0, &mut b, &mut a, |_| false);
        assert_eq!(a.log.released, [10]);
        a.s.tick(999, &mut a.log);
        assert!(a.log.wire.is_empty(), "not before the timeout");
        a.s.tick(1_000, &mut a.log);
        assert_eq!(a.log.wire.len(), 2, "go-back-N resends 11 and 12");
        // Deliver the retransmission twice: the second copy is a duplicate.
        let copy: Vec<_> = a.log.wire.iter().cloned().collect();
        carry(1_000, &mut a, &mut b, |_| false);
        a.log.wire.extend(copy);
        let drops = carry(1_000, &mut a, &mut b, |_| false);
        assert_eq!(drops, [SegmentDrop::Duplicate, SegmentDrop::Duplicate]);
        assert_eq!(b.log.delivered, [10, 11, 12]);
        assert_eq!(a.s.retransmitted_frames(), 2);
    }

    #[test]
    fn without_acks_the_peer_is_declared_unreachable_after_the_bound() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        send(&mut a, 0, 5).unwrap();
        let mut now = 0;
        let mut timeouts = 0;
        while a.log.downs.is_empty() {
            now += 100;
            let before = a.log.wire.len();
            a.s.tick(now, &mut a.log);
            if a.log.wire.len() > before {
                timeouts += 1;
            }
            assert!(now < 1_000_000, "bounded");
        }
        assert_eq!(timeouts, 3);
        assert_eq!(a.log.downs, [DownCause::Unreachable { retransmits: 3 }]);
        assert!(!a.s.is_up());
        assert_eq!(a.s.unacked_frames(), 0);
        assert_ne!(a.s.local_epoch(), 1, "a reset takes a new epoch");
        // The peer learns of the reset from the next SYN and reconnects.
        a.log.wire.clear();
        a.s.tick(now, &mut a.log);
        for _ in 0..4 {
            carry(now, &mut a, &mut b, |_| false);
            carry(now, &mut b, &mut a, |_| false);
        }
        assert_eq!(b.log.downs, [DownCause::PeerRestarted]);
        assert!(a.s.is_up() && b.s.is_up());
    }

    #[test]
    fn a_restarted_peer_never_receives_the_old_incarnations_data() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        send(&mut a, 0, 1).unwrap();
        let old: Vec<_> = a.log.wire.drain(..).collect();
        // b restarts with a new epoch and reconnects.
        b = End::new(3);
        b.s.tick(0, &mut b.log);
        for _ in 0..4 {
            carry(0, &mut b, &mut a, |_| false);
            carry(0, &mut a, &mut b, |_| false);
        }
        assert_eq!(a.log.downs, [DownCause::PeerRestarted]);
        assert!(a.s.is_up() && b.s.is_up());
        a.log.wire.extend(old);
        assert_eq!(carry(0, &mut a, &mut b, |_| false), [SegmentDrop::Stale]);
        assert!(b.log.delivered.is_empty());
    }

    #[test]
    fn a_receiver_without_buffers_does_not_ack_and_gets_the_frame_again() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        send(&mut a, 0, 4).unwrap();
        b.log.refuse_delivery = true;
        assert_eq!(carry(0, &mut a, &mut b, |_| false), [SegmentDrop::NoBuffer]);
        b.s.flush_ack(&mut b.log);
        assert!(b.log.wire.is_empty(), "nothing to ack");
        b.log.refuse_delivery = false;
        a.s.tick(1_000, &mut a.log);
        carry(1_000, &mut a, &mut b, |_| false);
        assert_eq!(b.log.delivered, [4]);
    }

    #[test]
    fn lossy_links_still_deliver_everything_in_order() {
        // Seeded xorshift loss in both directions (a periodic pattern can lock step with the
        // window and lose every ack, which no real link does).
        let patient = SessionConfig {
            max_retransmits: 30,
            window_frames: 16,
            ..CFG
        };
        for (seed, loss_percent) in [(1u64, 10u64), (2, 30), (3, 50)] {
            let (mut a, mut b) = (End::with(patient, 1), End::new(2));
            connect(&mut a, &mut b);
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut lose = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % 100 < loss_percent
            };
            let mut now = 0;
            let mut next = 0u32;
            while b.log.delivered.len() < 200 {
                now += 300;
                // Segmented: up to 7 segments per frame, each of which may be lost.
                while next < 200
                    && a.s
                        .send(now, next, frame_bytes(next).len(), MSS, &mut a.log)
                        .is_ok()
                {
                    next += 1;
                }
                a.s.tick(now, &mut a.log);
                let batch: Vec<_> = a.log.wire.drain(..).collect();
                for (h, p) in batch {
                    if !lose() {
                        let _ = b.s.on_segment(now, &h, &p, &mut b.log);
                    }
                }
                b.s.flush_ack(&mut b.log);
                let batch: Vec<_> = b.log.wire.drain(..).collect();
                for (h, p) in batch {
                    if !lose() {
                        let _ = a.s.on_segment(now, &h, &p, &mut a.log);
                    }
                }
                assert!(now < 100_000_000, "loss {loss_percent}%: no progress");
                assert!(
                    a.log.downs.is_empty(),
                    "loss {loss_percent}%: declared down"
                );
            }
            assert_eq!(b.log.delivered, (0..200).collect::<Vec<_>>());
            assert!(
                a.s.retransmitted_frames() > 0,
                "loss {loss_percent}% lost nothing?"
            );
        }
    }

    #[test]
    fn long_frames_are_segmented_reassembled_and_released_once() {
        let eight = SessionConfig {
            window_frames: 8,
            ..CFG
        };
        let (mut a, mut b) = (End::with(eight, 1), End::new(2));
        connect(&mut a, &mut b);
        // Frame 22 is 4 + 22 = 26 bytes: 7 segments of at most 4 bytes; the last is short.
        a.s.send(0, 22, 26, MSS, &mut a.log).unwrap();
        assert_eq!(a.log.wire.len(), 7);
        let flags: Vec<bool> = a.log.wire.iter().map(|(h, _)| h.more).collect();
        assert_eq!(flags, [true, true, true, true, true, true, false]);
        assert_eq!(
            a.s.send(0, 1, 5, MSS, &mut a.log),
            Err((1, Refused::WindowFull { window_frames: 8 })),
            "2 more segments do not fit in the 1 left"
        );
        assert_eq!(
            a.s.send(0, 45, 33, MSS, &mut a.log),
            Err((
                45,
                Refused::TooLarge {
                    segments: 9,
                    window_frames: 8
                }
            ))
        );
        carry(0, &mut a, &mut b, |_| false);
        assert_eq!(b.log.delivered, [22]);
        b.s.flush_ack(&mut b.log);
        carry(0, &mut b, &mut a, |_| false);
        assert_eq!(a.log.released, [22]);
        assert_eq!(a.s.unacked_frames(), 0);
    }

    #[test]
    fn a_frame_is_released_only_when_its_last_segment_is_acked() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        a.s.send(0, 9, 13, MSS, &mut a.log).unwrap(); // 4 segments
                                                      // Only the first two arrive: b has a partial frame, a keeps the frame.
        assert_eq!(carry(0, &mut a, &mut b, |i| i >= 2), []);
        b.s.flush_ack(&mut b.log);
        carry(0, &mut b, &mut a, |_| false);
        assert!(a.log.released.is_empty() && b.log.delivered.is_empty());
        assert_eq!(a.s.unacked_frames(), 1);
        a.s.tick(1_000, &mut a.log);
        assert_eq!(a.log.wire.len(), 2, "only the unacked segments are resent");
        carry(1_000, &mut a, &mut b, |_| false);
        assert_eq!(b.log.delivered, [9]);
        b.s.flush_ack(&mut b.log);
        carry(1_000, &mut b, &mut a, |_| false);
        assert_eq!(a.log.released, [9]);
    }

    #[test]
    fn malformed_segments_are_rejected_by_the_reader() {
        let mut body = [0u8; SEGMENT_HEADER_LEN + 2];
        let h = SegmentHeader {
            kind: SegmentKind::Ack,
            epoch: 5,
            peer_epoch: 6,
            seq: 0,
            ack: 1,
            more: false,
        };
        h.write(&mut body);
        assert_eq!(
            SegmentHeader::read(&body),
            Err(SegmentDrop::Malformed),
            "ack with payload"
        );
        assert!(SegmentHeader::read(&body[..SEGMENT_HEADER_LEN]).is_ok());
        assert_eq!(
            SegmentHeader::read(&body[..19]),
            Err(SegmentDrop::Malformed)
        );
        let mut bad = body;
        bad[0] = 9;
        assert_eq!(SegmentHeader::read(&bad[..20]), Err(SegmentDrop::Malformed));
        let mut bad = body;
        bad[1] = 2;
        assert_eq!(SegmentHeader::read(&bad[..20]), Err(SegmentDrop::Malformed));
        let mut bad = body;
        bad[2] = 1; // MORE on an ack
        assert_eq!(SegmentHeader::read(&bad[..20]), Err(SegmentDrop::Malformed));
        let mut bad = body;
        bad[2] = 2; // an undefined flag
        assert_eq!(SegmentHeader::read(&bad[..20]), Err(SegmentDrop::Malformed));
        let mut bad = body;
        bad[4..8].fill(0);
        assert_eq!(SegmentHeader::read(&bad[..20]), Err(SegmentDrop::Malformed));
    }

    #[test]
    fn an_ack_beyond_what_was_sent_is_dropped() {
        let (mut a, mut b) = (End::new(1), End::new(2));
        connect(&mut a, &mut b);
        send(&mut a, 0, 1).unwrap();
        let forged = SegmentHeader {
            kind: SegmentKind::Ack,
            epoch: 2,
            peer_epoch: 1,
            seq: 0,
            ack: 5,
            more: false,
        };
        assert_eq!(
            a.s.on_segment(0, &forged, &[], &mut a.log),
            Err(SegmentDrop::BadAck)
        );
        assert_eq!(a.s.unacked_frames(), 1);
        let _ = &mut b;
    }
}
