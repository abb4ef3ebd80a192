//! One blocking TCP connection to a node's client port, moving whole wire frames.
//!
//! Buffers are kept across calls: a request is encoded into the same send vector each time and
//! responses are read into one receive buffer that only grows to the largest frame seen (bounded
//! by the wire's payload ceiling), so a steady stream of requests allocates only what decoding the
//! answers needs.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::server::protocol::{decode_response, frame_request, ClientRequest, ClientResponse};
use crate::wire::{FrameHeader, FrameKind, FrameRules, HEADER_LEN, MAX_PAYLOAD_LEN_BYTES};

/// The first read buffer; it grows for larger frames.
const INITIAL_RECV_BYTES: usize = 64 * 1024;

/// Why a connection stopped being usable.
#[derive(Debug)]
pub(crate) enum ConnError {
    Io(io::Error),
    /// The node sent bytes that are not a valid client response.
    Malformed(String),
    /// The node belongs to another cluster than the one this client talks to.
    WrongCluster {
        expected: u64,
        got: u64,
    },
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Malformed(reason) => write!(f, "malformed response: {reason}"),
            ConnError::WrongCluster { expected, got } => {
                write!(f, "cluster id {got:#x}, expected {expected:#x}")
            }
        }
    }
}

/// A response frame: the correlation id it answers, and its decoded payload.
#[derive(Debug)]
pub(crate) struct Received {
    pub correlation_id: u64,
    pub cluster_id: u64,
    pub response: ClientResponse,
}

pub(crate) struct Connection {
    stream: TcpStream,
    addr: SocketAddr,
    send: Vec<u8>,
    recv: Vec<u8>,
    /// Bytes of `recv` holding data not yet consumed, from offset 0.
    filled: usize,
    /// The socket's read timeout as last set; changed only when a wait needs a shorter one or
    /// would be cut much shorter than it asks, to save a setsockopt(2) per response.
    read_timeout: Option<Duration>,
}

impl Connection {
    pub fn open(addr: SocketAddr, connect_timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, connect_timeout)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            addr,
            send: Vec::with_capacity(4096),
            recv: vec![0; INITIAL_RECV_BYTES],
            filled: 0,
            read_timeout: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes one request frame (blocking until the kernel took it all).
    pub fn send(
        &mut self,
        cluster_id: u64,
        correlation_id: u64,
        request: &ClientRequest,
    ) -> Result<(), ConnError> {
        self.send.clear();
        frame_request(cluster_id, correlation_id, request, &mut self.send)
            .map_err(|e| ConnError::Malformed(format!("cannot frame the request: {e}")))?;
        self.stream.write_all(&self.send).map_err(ConnError::Io)
    }

    /// Waits until `deadline` for the next response frame; `Ok(None)` when the deadline passed
    /// first. `cluster_id` 0 accepts the cluster id the frame names (the caller learns it).
    pub fn recv(
        &mut self,
        cluster_id: u64,
        deadline: Instant,
    ) -> Result<Option<Received>, ConnError> {
        loop {
            if let Some(frame_len) = self.complete_frame_len(cluster_id)? {
                let received = self.take_frame(cluster_id, frame_len)?;
                return Ok(Some(received));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // A zero timeout means "block forever" to std; the check above keeps it positive.
            let wait = (deadline - now).max(Duration::from_micros(1));
            let reset = match self.read_timeout {
                None => true,
                // A deadline may be overshot by at most a tenth of the wait; a much longer wait
                // would only cost extra wake-ups, so it is worth one syscall to lengthen it.
                Some(current) => wait < current * 9 / 10 || wait > current * 2,
            };
            if reset {
                self.stream
                    .set_read_timeout(Some(wait))
                    .map_err(ConnError::Io)?;
                self.read_timeout = Some(wait);
            }
            if self.filled == self.recv.len() {
                let grown = (self.recv.len() * 2).min(HEADER_LEN + MAX_PAYLOAD_LEN_BYTES as usize);
                self.recv.resize(grown, 0);
            }
            match self.stream.read(&mut self.recv[self.filled..]) {
                Ok(0) => {
                    return Err(ConnError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the node closed the connection",
                    )))
                }
                Ok(n) => self.filled += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ConnError::Io(e)),
            }
        }
    }

    fn rules(&self, cluster_id: u64, header: &FrameHeader) -> Result<FrameRules, ConnError> {
        let expected = if cluster_id == 0 {
            header.cluster_id
        } else {
            cluster_id
        };
        if header.cluster_id != expected {
            return Err(ConnError::WrongCluster {
                expected,
                got: header.cluster_id,
            });
        }
        FrameRules::new(expected, MAX_PAYLOAD_LEN_BYTES)
            .map_err(|e| ConnError::Malformed(e.to_string()))
    }

    /// The length of the frame at the front of the buffer once all of it has arrived; makes room
    /// for a frame larger than the buffer (the header check bounds it by the wire's ceiling).
    fn complete_frame_len(&mut self, cluster_id: u64) -> Result<Option<usize>, ConnError> {
        let Some(header) = FrameHeader::read_from(&self.recv[..self.filled]) else {
            return Ok(None);
        };
        let rules = self.rules(cluster_id, &header)?;
        let valid = rules
            .validate_header(&self.recv[..self.filled])
            .map_err(|e| ConnError::Malformed(e.to_string()))?;
        let frame_len = valid.frame_len_bytes();
        if frame_len > self.recv.len() {
            self.recv.resize(frame_len, 0);
        }
        Ok((self.filled >= frame_len).then_some(frame_len))
    }

    fn take_frame(&mut self, cluster_id: u64, frame_len: usize) -> Result<Received, ConnError> {
        let header = FrameHeader::read_from(&self.recv).expect("a complete frame has a header");
        let rules = self.rules(cluster_id, &header)?;
        let frame = rules
            .validate_frame(&self.recv[..frame_len])
            .map_err(|e| ConnError::Malformed(e.to_string()))?;
        if frame.header().kind() != FrameKind::ClientResponse {
            return Err(ConnError::Malformed(format!(
                "frame kind {:?} on a client connection",
                frame.header().kind()
            )));
        }
        let response =
            decode_response(frame.payload()).map_err(|e| ConnError::Malformed(e.to_string()))?;
        let received = Received {
            correlation_id: frame.header().correlation_id(),
            cluster_id: frame.header().cluster_id(),
            response,
        };
        self.recv.copy_within(frame_len..self.filled, 0);
        self.filled -= frame_len;
        Ok(received)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
