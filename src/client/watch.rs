//! Watch streams that survive node failures.
//!
//! A [`Watch`] owns its own connection (its events must not queue behind request answers). It
//! remembers the revision of the last event it handed out and how many events of that revision it
//! handed out; after a broken connection, a node that stopped answering, or a node that shed the
//! watch as a slow consumer, it re-creates the watch on the next node from that revision and skips
//! the events it already delivered. So the caller sees every change exactly once, in revision
//! order, across failovers — unless history it still needed was compacted meanwhile, which ends
//! the watch with [`ClientError::WatchCanceled`].
//!
//! A silent connection is probed with a status request every `attempt_timeout`; no answer within
//! another `attempt_timeout` means the node is gone (stopped, partitioned) and the watch moves.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::connection::{ConnError, Connection};
use super::error::ClientError;
use super::options::{ClientOptions, MAX_ENDPOINTS};
use crate::server::protocol::{
    CancelReason, ClientRequest, ClientResponse, RequestOp, ServerError,
};
use crate::store::codec::decode_events;
use crate::store::{Event, KeyRange};

/// Events buffered at the client at most; a larger batch is still taken whole (the node bounds
/// batches by its frame limit), but no further batch is read until the caller drained below it.
const MAX_BUFFERED_EVENTS: usize = 4096;
/// Pause before re-creating a watch on another node.
const RESUME_BACKOFF: Duration = Duration::from_millis(20);

pub struct Watch {
    opts: ClientOptions,
    endpoints: Vec<SocketAddr>,
    current: usize,
    cluster_id: u64,
    range: KeyRange,
    prev_kv: bool,
    conn: Option<Connection>,
    /// The correlation id of the watch request sent on the current connection, and the same id
    /// once the node confirmed it (a watch's id is its creating request's correlation id).
    create_sent: Option<u64>,
    watch_id: Option<u64>,
    next_correlation: u64,
    /// Revision of the last event delivered (0: none yet) and how many of its events were.
    last_revision: u64,
    delivered_at_last: usize,
    /// Where the stream starts if nothing was delivered yet (0: from the next change).
    start_revision: u64,
    buffered: VecDeque<Event>,
    last_heard: Instant,
    probe_sent: bool,
    last_problem: String,
}

impl Watch {
    /// Watches `range` from `start_revision` (0: changes after now); waits until a node
    /// confirmed the watch.
    pub fn open(
        opts: ClientOptions,
        range: KeyRange,
        start_revision: u64,
        prev_kv: bool,
    ) -> Result<Self, ClientError> {
        if opts.endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let mut watch = Self {
            endpoints: opts.endpoints.iter().take(MAX_ENDPOINTS).copied().collect(),
            cluster_id: opts.cluster_id,
            opts,
            current: 0,
            range,
            prev_kv,
            conn: None,
            create_sent: None,
            watch_id: None,
            next_correlation: 1,
            last_revision: 0,
            delivered_at_last: 0,
            start_revision,
            buffered: VecDeque::new(),
            last_heard: Instant::now(),
            probe_sent: false,
            last_problem: "none".to_owned(),
        };
        let deadline = Instant::now() + watch.opts.request_timeout;
        while watch.watch_id.is_none() {
            if Instant::now() >= deadline {
                return Err(watch.timeout());
            }
            watch.pump(deadline)?;
        }
        Ok(watch)
    }

    /// The revision of the last event returned (0 before the first).
    pub fn last_revision(&self) -> u64 {
        self.last_revision
    }

    /// The node currently serving the watch.
    pub fn connected_to(&self) -> Option<SocketAddr> {
        self.conn.as_ref().map(Connection::addr)
    }

    /// The next event, waiting up to `timeout`; `Ok(None)` if none came in time.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.buffered.pop_front() {
                let revision = event.revision();
                debug_assert!(
                    revision >= self.last_revision,
                    "events come in revision order"
                );
                if revision == self.last_revision {
                    self.delivered_at_last += 1;
                } else {
                    self.last_revision = revision;
                    self.delivered_at_last = 1;
                }
                return Ok(Some(event));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.pump(deadline)?;
        }
    }

    fn timeout(&self) -> ClientError {
        ClientError::Timeout {
            waited_ms: self.opts.request_timeout.as_millis() as u64,
            last: self.last_problem.clone(),
        }
    }

    /// Connects and creates the watch if needed, then reads one frame or waits until `until`.
    fn pump(&mut self, until: Instant) -> Result<(), ClientError> {
        if self.conn.is_none() {
            if let Err(e) = self.connect_and_create() {
                self.last_problem = e;
                std::thread::sleep(
                    RESUME_BACKOFF.min(until.saturating_duration_since(Instant::now())),
                );
                return Ok(());
            }
        }
        if self.buffered.len() >= MAX_BUFFERED_EVENTS {
            return Ok(());
        }
        let silence = self.opts.attempt_timeout;
        let probe_at = self.last_heard + silence;
        let give_up_at = self.last_heard + 2 * silence;
        let now = Instant::now();
        if now >= probe_at && !self.probe_sent {
            self.probe_sent = true;
            self.send(RequestOp::Status);
        }
        let wake = until.min(if self.probe_sent {
            give_up_at
        } else {
            probe_at
        });
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match conn.recv(self.cluster_id, wake.max(now)) {
            Ok(Some(received)) => {
                self.last_heard = Instant::now();
                self.probe_sent = false;
                if self.cluster_id == 0 {
                    self.cluster_id = received.cluster_id;
                }
                self.handle(received.correlation_id, received.response)
            }
            Ok(None) => {
                if self.probe_sent && Instant::now() >= give_up_at {
                    let addr = conn.addr();
                    self.lose_node(format!(
                        "node {addr} did not answer a probe within {} ms",
                        silence.as_millis()
                    ));
                }
                Ok(())
            }
            Err(ConnError::WrongCluster { expected, got }) => Err(ClientError::ClusterMismatch {
                first: expected,
                other: got,
                addr: conn.addr().to_string(),
            }),
            Err(e) => {
                let addr = conn.addr();
                self.lose_node(format!("connection to {addr} failed: {e}"));
                Ok(())
            }
        }
    }

    fn handle(&mut self, correlation_id: u64, response: ClientResponse) -> Result<(), ClientError> {
        let ours = |id: u64| self.create_sent == Some(id);
        match response {
            ClientResponse::WatchCreated {
                watch_id,
                start_revision,
            } if ours(watch_id) && correlation_id == watch_id => {
                self.watch_id = Some(watch_id);
                if self.last_revision == 0 && self.start_revision == 0 {
                    // Pin the start, so a resume elsewhere neither loses nor repeats changes.
                    self.start_revision = start_revision;
                }
                Ok(())
            }
            ClientResponse::WatchEvents { watch_id, events } if ours(watch_id) => {
                let events = decode_events(&events).map_err(|e| ClientError::Protocol {
                    addr: self.addr_text(),
                    reason: e.to_string(),
                })?;
                let mut skip_at_last = self.delivered_at_last;
                for event in events {
                    let revision = event.revision();
                    if revision < self.last_revision {
                        continue;
                    }
                    if revision == self.last_revision && skip_at_last > 0 {
                        skip_at_last -= 1;
                        continue;
                    }
                    self.buffered.push_back(event);
                }
                Ok(())
            }
            ClientResponse::WatchCanceled { watch_id, reason } if ours(watch_id) => match reason {
                CancelReason::SlowConsumer => {
                    self.lose_node("the node shed the watch as a slow consumer".to_owned());
                    Ok(())
                }
                other => Err(ClientError::WatchCanceled(other)),
            },
            ClientResponse::Error(error) => self.handle_error(error),
            // Probe answers, and late frames of a watch this client already moved away from.
            _ => Ok(()),
        }
    }

    fn handle_error(&mut self, error: ServerError) -> Result<(), ClientError> {
        match error {
            ServerError::NotLeader {
                leader_client_addr, ..
            } => {
                self.lose_node(format!(
                    "the node is not the leader; moving the watch to {leader_client_addr}"
                ));
                if let Ok(addr) = leader_client_addr.parse::<SocketAddr>() {
                    match self.endpoints.iter().position(|a| *a == addr) {
                        Some(i) => self.current = i,
                        None if self.endpoints.len() < MAX_ENDPOINTS => {
                            self.endpoints.push(addr);
                            self.current = self.endpoints.len() - 1;
                        }
                        None => {}
                    }
                }
                Ok(())
            }
            ServerError::NoLeader
            | ServerError::Unavailable { .. }
            | ServerError::Busy
            | ServerError::DeadlineExceeded => {
                self.lose_node(error.to_string());
                Ok(())
            }
            ServerError::Compacted {
                compact_revision, ..
            } => Err(ClientError::WatchCanceled(CancelReason::Compacted {
                compact_revision,
            })),
            ServerError::TooLarge { .. } | ServerError::BadRequest { .. } => {
                Err(ClientError::Server(error))
            }
        }
    }

    /// Drops the connection and moves to the next node; the next pump resumes there.
    fn lose_node(&mut self, why: String) {
        self.last_problem = why;
        self.conn = None;
        self.create_sent = None;
        self.watch_id = None;
        self.current = (self.current + 1) % self.endpoints.len();
    }

    /// The revision to (re-)create the watch from: the last delivered one (its delivered events
    /// are skipped), or the start.
    fn resume_revision(&self) -> u64 {
        if self.last_revision > 0 {
            self.last_revision
        } else {
            self.start_revision
        }
    }

    fn connect_and_create(&mut self) -> Result<(), String> {
        let addr = self.endpoints[self.current];
        match Connection::open(addr, self.opts.connect_timeout) {
            Ok(conn) => {
                self.conn = Some(conn);
                self.last_heard = Instant::now();
                self.probe_sent = false;
                let op = RequestOp::Watch {
                    range: self.range.clone(),
                    start_revision: self.resume_revision(),
                    prev_kv: self.prev_kv,
                };
                self.create_sent = Some(self.send(op));
                Ok(())
            }
            Err(e) => {
                self.current = (self.current + 1) % self.endpoints.len();
                Err(format!("{addr}: {e}"))
            }
        }
    }

    /// Sends `op` on the current connection; returns its correlation id.
    fn send(&mut self, op: RequestOp) -> u64 {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let request = ClientRequest { deadline_ms: 0, op };
        if let Some(conn) = self.conn.as_mut() {
            if let Err(e) = conn.send(self.cluster_id, correlation, &request) {
                let addr = conn.addr();
                self.lose_node(format!("connection to {addr} failed: {e}"));
            }
        }
        correlation
    }

    fn addr_text(&self) -> String {
        self.connected_to()
            .map_or_else(|| "?".to_owned(), |a| a.to_string())
    }
}
