//! The client port: non-blocking sockets in an epoll set, owned by the node's loop.
//!
//! Why epoll on the node thread and not a client thread: a request then reaches consensus with no
//! thread hop and no mailbox, and the answer leaves with one `write(2)` from the thread that
//! applied it. The epoll fd itself is folded into the peer transport's io_uring wait
//! (`TcpUring::watch_wakeup_fd`), so a parked node wakes for a client byte like for a peer frame.
//!
//! Bounds: at most `max_clients` connections (a newcomer beyond that is closed at once, counted);
//! each connection reads at most one frame of `max_frame_bytes` ahead and holds at most
//! `out_limit_bytes` of unsent answers — a client that stops reading is disconnected when it
//! would exceed that (counted as a slow-client drop), so memory never grows without bound. Input
//! and output buffers are allocated once per connection; steady state allocates nothing.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::wire::{FrameRules, WireError, HEADER_LEN};

/// A connection's identity: its slot and the generation of the connection in it, so an answer
/// for a closed connection is never written to a newer one in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    slot: u32,
    generation: u32,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub accepted: u64,
    /// Refused because `max_clients` connections were open.
    pub refused_full: u64,
    /// Closed because the client broke the wire format (bad magic, checksum, oversize, …).
    pub bad_frames: u64,
    /// Closed because the client did not read its answers.
    pub slow_client_drops: u64,
    pub closed: u64,
}

/// One received request frame, copied into the table's staging area.
#[derive(Debug, Clone, Copy)]
pub struct Incoming {
    pub conn: ConnRef,
    pub correlation_id: u64,
    start: usize,
    len: usize,
}

/// Requests received in one poll: their headers and payloads.
#[derive(Debug, Default)]
pub struct Batch {
    pub incoming: Vec<Incoming>,
    staging: Vec<u8>,
}

impl Batch {
    /// The payload of one staged request.
    pub fn payload(&self, incoming: &Incoming) -> &[u8] {
        &self.staging[incoming.start..incoming.start + incoming.len]
    }
}

struct Conn {
    stream: TcpStream,
    generation: u32,
    input: Vec<u8>,
    input_len: usize,
    output: Vec<u8>,
    output_sent: usize,
    wants_write: bool,
    /// Requests admitted and not yet finally answered.
    inflight: u64,
}

/// Token of the listener in the epoll set (connection tokens are slot indexes).
const LISTENER_TOKEN: u64 = u64::MAX;
/// Token of the wake-up eventfd (the WAL's completion notifier).
const WAKE_TOKEN: u64 = u64::MAX - 1;
/// Accepts per poll (bounded so one burst of connections cannot starve the loop).
const ACCEPTS_PER_POLL: usize = 64;
/// epoll events reaped per poll.
const EVENTS_PER_POLL: usize = 256;
/// Request bytes and requests staged per poll; past either, sockets are read again at the next
/// poll (epoll is level-triggered). This bounds the staging area and, as important, the work one
/// loop iteration does before the node ticks again: a burst of thousands of requests must not
/// delay heartbeats past an election timeout.
const STAGING_BUDGET_BYTES: usize = 256 << 10;
const REQUESTS_PER_POLL: usize = 256;

/// The client connection table.
pub struct ClientTable {
    epoll: OwnedFd,
    listener: TcpListener,
    local_addr: SocketAddr,
    rules: FrameRules,
    conns: Vec<Option<Conn>>,
    free: Vec<u32>,
    next_generation: u32,
    max_frame_bytes: usize,
    out_limit_bytes: usize,
    events: Vec<libc::epoll_event>,
    /// An eventfd other completions ring (the WAL's), drained when it fires.
    wake: Option<OwnedFd>,
    staging: Vec<u8>,
    incoming: Vec<Incoming>,
    stats: ClientStats,
}

fn cvt(rc: libc::c_int, what: &'static str) -> std::io::Result<libc::c_int> {
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        Err(std::io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(rc)
    }
}

impl ClientTable {
    /// Binds the client port. `max_frame_bytes` includes the header.
    pub fn bind(
        addr: SocketAddr,
        cluster_id: u64,
        max_clients: usize,
        max_frame_bytes: usize,
        out_limit_bytes: usize,
    ) -> std::io::Result<Self> {
        assert!(max_frame_bytes > HEADER_LEN && max_clients > 0);
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        // SAFETY: plain syscall; the result is checked.
        let fd = cvt(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let payload_max = u32::try_from(max_frame_bytes - HEADER_LEN)
            .unwrap_or(u32::MAX)
            .min(crate::wire::MAX_PAYLOAD_LEN_BYTES);
        let rules = FrameRules::new(cluster_id, payload_max)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e.to_string()))?
            .accepting_unknown_cluster();
        let table = Self {
            epoll,
            listener,
            local_addr,
            rules,
            conns: (0..max_clients).map(|_| None).collect(),
            free: (0..max_clients as u32).rev().collect(),
            next_generation: 1,
            max_frame_bytes,
            out_limit_bytes,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_POLL],
            wake: None,
            staging: Vec::with_capacity(1 << 16),
            incoming: Vec::with_capacity(EVENTS_PER_POLL),
            stats: ClientStats::default(),
        };
        table.ctl(
            libc::EPOLL_CTL_ADD,
            table.listener.as_raw_fd(),
            libc::EPOLLIN as u32,
            LISTENER_TOKEN,
        )?;
        Ok(table)
    }

    /// Creates an eventfd in this epoll set and returns it, for a completion source (the WAL) to
    /// ring: the loop's one wait then also ends when that source completes.
    pub fn wake_eventfd(&mut self) -> std::io::Result<std::os::fd::BorrowedFd<'_>> {
        if self.wake.is_none() {
            // SAFETY: plain syscall; the result is checked.
            let fd = cvt(
                unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) },
                "eventfd",
            )?;
            // SAFETY: `fd` was just created and is owned by nobody else.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, WAKE_TOKEN)?;
            self.wake = Some(owned);
        }
        use std::os::fd::AsFd as _;
        Ok(self.wake.as_ref().expect("just set").as_fd())
    }

    fn drain_wake(&self) {
        if let Some(fd) = &self.wake {
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a live local buffer; a non-blocking eventfd.
            let _ = unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        }
    }

    /// The epoll fd: readable when any client socket or the listener is.
    pub fn wake_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> std::io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` is a valid epoll_event for the duration of the call.
        cvt(
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) },
            "epoll_ctl",
        )?;
        Ok(())
    }

    /// Reaps ready sockets without blocking: accepts newcomers, reads what arrived, writes what
    /// was waiting. Complete request frames are staged; read them with [`ClientTable::incoming`]
    /// and [`ClientTable::frame`]. Returns whether anything happened.
    pub fn poll(&mut self) -> bool {
        self.staging.clear();
        self.incoming.clear();
        // SAFETY: `events` has EVENTS_PER_POLL initialized entries the kernel may overwrite.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                EVENTS_PER_POLL as libc::c_int,
                0,
            )
        };
        if n <= 0 {
            return false;
        }
        for i in 0..n as usize {
            let event = self.events[i];
            let token = event.u64;
            if token == LISTENER_TOKEN {
                self.accept();
                continue;
            }
            if token == WAKE_TOKEN {
                self.drain_wake();
                continue;
            }
            let slot = token as usize;
            if event.events & (libc::EPOLLOUT as u32) != 0 {
                self.flush(slot);
            }
            if event.events & ((libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32) != 0 {
                self.read(slot);
            }
        }
        true
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_POLL {
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on the client port failed");
                    return;
                }
            };
            let Some(slot) = self.free.pop() else {
                self.stats.refused_full += 1;
                tracing::warn!(%peer, max = self.conns.len(), "client refused: max_clients connections open; raise limits.max_clients");
                continue;
            };
            if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                self.free.push(slot);
                continue;
            }
            if let Err(e) = self.ctl(
                libc::EPOLL_CTL_ADD,
                stream.as_raw_fd(),
                libc::EPOLLIN as u32,
                u64::from(slot),
            ) {
                tracing::warn!(error = %e, "cannot watch a client socket");
                self.free.push(slot);
                continue;
            }
            let generation = self.next_generation;
            self.next_generation = self.next_generation.wrapping_add(1).max(1);
            self.conns[slot as usize] = Some(Conn {
                stream,
                generation,
                input: vec![0; self.max_frame_bytes.min(64 * 1024)],
                input_len: 0,
                output: Vec::with_capacity(self.out_limit_bytes.min(64 * 1024)),
                output_sent: 0,
                wants_write: false,
                inflight: 0,
            });
            self.stats.accepted += 1;
        }
    }

    /// Closes the connection in `slot`.
    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns[slot].take() {
            let _ = self.ctl(libc::EPOLL_CTL_DEL, conn.stream.as_raw_fd(), 0, 0);
            self.free.push(slot as u32);
            self.stats.closed += 1;
        }
    }

    fn read(&mut self, slot: usize) {
        let max_frame = self.max_frame_bytes;
        // Bounded: each pass either reads bytes into a buffer that has room, or stops.
        for _ in 0..64 {
            if self.staging.len() >= STAGING_BUDGET_BYTES
                || self.incoming.len() >= REQUESTS_PER_POLL
            {
                break;
            }
            let Some(conn) = self.conns[slot].as_mut() else {
                return;
            };
            if conn.input_len == conn.input.len() {
                if conn.input.len() >= max_frame {
                    // A whole frame always fits; the buffer is full of frames not yet parsed.
                    break;
                }
                let grown = (conn.input.len() * 2).min(max_frame);
                conn.input.resize(grown, 0);
            }
            match conn.stream.read(&mut conn.input[conn.input_len..]) {
                Ok(0) => {
                    self.close(slot);
                    return;
                }
                Ok(n) => {
                    conn.input_len += n;
                    if !self.parse(slot) {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(slot);
                    return;
                }
            }
        }
    }

    /// Moves complete frames from the connection's input to the staging area. Returns `false` if
    /// the connection was closed for a bad frame.
    fn parse(&mut self, slot: usize) -> bool {
        let rules = self.rules;
        let Some(conn) = self.conns[slot].as_mut() else {
            return false;
        };
        let mut at = 0;
        let mut error: Option<WireError> = None;
        while conn.input_len - at >= HEADER_LEN {
            let bytes = &conn.input[at..conn.input_len];
            let header = match rules.validate_header(bytes) {
                Ok(h) => h,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            if bytes.len() < header.frame_len_bytes() {
                break;
            }
            let frame = match rules.validate_frame(bytes) {
                Ok(f) => f,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            if frame.header().kind() != crate::wire::FrameKind::ClientRequest {
                error = Some(WireError::UnknownKind {
                    got: frame.header().kind().to_byte(),
                });
                break;
            }
            let start = self.staging.len();
            self.staging.extend_from_slice(frame.payload());
            self.incoming.push(Incoming {
                conn: ConnRef {
                    slot: slot as u32,
                    generation: conn.generation,
                },
                correlation_id: frame.header().correlation_id(),
                start,
                len: frame.payload().len(),
            });
            at += frame.len_bytes();
        }
        conn.input.copy_within(at..conn.input_len, 0);
        conn.input_len -= at;
        if let Some(e) = error {
            self.stats.bad_frames += 1;
            tracing::warn!(error = %e, "client connection closed: bad frame");
            self.close(slot);
            return false;
        }
        true
    }

    /// Moves the requests staged by the last [`ClientTable::poll`] out, so the caller can answer
    /// through the table while it reads them; hand the batch back with
    /// [`ClientTable::restore_batch`] to keep its buffers (no allocation in steady state).
    pub fn take_batch(&mut self) -> Batch {
        Batch {
            incoming: std::mem::take(&mut self.incoming),
            staging: std::mem::take(&mut self.staging),
        }
    }

    pub fn restore_batch(&mut self, mut batch: Batch) {
        batch.incoming.clear();
        batch.staging.clear();
        self.incoming = batch.incoming;
        self.staging = batch.staging;
    }

    /// Whether `conn` is still open.
    pub fn is_open(&self, conn: ConnRef) -> bool {
        self.conns
            .get(conn.slot as usize)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.generation == conn.generation)
    }

    /// Counts a new request against `conn`'s queue depth; `false` if it is full (answer Busy).
    pub fn admit(&mut self, conn: ConnRef, depth: u64) -> bool {
        match self.conn_mut(conn) {
            Some(c) if c.inflight < depth => {
                c.inflight += 1;
                true
            }
            _ => false,
        }
    }

    /// Releases the queue slot of an admitted request that got its final answer.
    pub fn complete(&mut self, conn: ConnRef) {
        if let Some(c) = self.conn_mut(conn) {
            debug_assert!(c.inflight > 0, "complete() without admit()");
            c.inflight = c.inflight.saturating_sub(1);
        }
    }

    fn conn_mut(&mut self, conn: ConnRef) -> Option<&mut Conn> {
        self.conns
            .get_mut(conn.slot as usize)
            .and_then(Option::as_mut)
            .filter(|c| c.generation == conn.generation)
    }

    /// Appends one answer frame to `conn`'s output: `encode` writes it into the room it is given
    /// and returns its length, or `Err(need)` if the room was too small. Sends at once if the
    /// socket takes it. A connection whose unsent output would pass the bound is closed (a client
    /// that does not read). Returns `false` if the answer was not queued (connection gone).
    pub fn send(
        &mut self,
        conn: ConnRef,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, usize>,
    ) -> bool {
        let slot = conn.slot as usize;
        let limit = self.out_limit_bytes;
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        if c.generation != conn.generation {
            return false;
        }
        if c.output_sent == c.output.len() {
            c.output.clear();
            c.output_sent = 0;
        }
        let start = c.output.len();
        let mut room = 512;
        let mut written = None;
        // Bounded: the second pass gets exactly the room the first one asked for.
        for _ in 0..2 {
            if start + room > limit {
                break;
            }
            c.output.resize(start + room, 0);
            match encode(&mut c.output[start..]) {
                Ok(len) => {
                    written = Some(len);
                    break;
                }
                Err(need) => {
                    assert!(
                        need > room,
                        "encoder asked for {need} bytes with {room} given"
                    );
                    room = need;
                }
            }
        }
        let Some(len) = written else {
            let unsent_bytes = start - c.output_sent;
            self.stats.slow_client_drops += 1;
            tracing::warn!(
                unsent_bytes,
                limit,
                "client connection closed: it does not read its answers"
            );
            self.close(slot);
            return false;
        };
        c.output.truncate(start + len);
        self.flush(slot);
        true
    }

    fn flush(&mut self, slot: usize) {
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        // Bounded: every pass writes bytes or stops.
        while c.output_sent < c.output.len() {
            match c.stream.write(&c.output[c.output_sent..]) {
                Ok(0) => break,
                Ok(n) => c.output_sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.close(slot);
                    return;
                }
            }
        }
        let pending = c.output_sent < c.output.len();
        if pending != c.wants_write {
            c.wants_write = pending;
            let events = if pending {
                (libc::EPOLLIN | libc::EPOLLOUT) as u32
            } else {
                libc::EPOLLIN as u32
            };
            let fd = c.stream.as_raw_fd();
            if self
                .ctl(libc::EPOLL_CTL_MOD, fd, events, slot as u64)
                .is_err()
            {
                self.close(slot);
            }
        } else if !pending {
            c.output.clear();
            c.output_sent = 0;
        }
    }
}
