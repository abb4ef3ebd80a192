//! The client proper: requests in flight, leader discovery and retries.
//!
//! Every request — a single blocking call or one of many pipelined ones — is a [`Pending`] entry
//! keyed by its correlation id until its final answer arrives or its deadline passes. The client
//! talks to one node at a time. Whenever it moves (a `NotLeader` hint, `NoLeader`, a broken or
//! silent connection) it connects to the next node and re-sends everything still pending, each
//! write with the session sequence number it got when first submitted, so a write the old leader
//! already committed is answered from the session cache instead of being applied again.
//!
//! Bounds: at most [`ClientOptions::max_in_flight`] requests pending; every wait ends at a request
//! deadline; backoff sleeps are capped; the endpoint list holds at most [`MAX_ENDPOINTS`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::connection::{ConnError, Connection, Received};
use super::error::ClientError;
use super::options::{ClientOptions, MAX_ENDPOINTS};
use super::session::Session;
use crate::server::protocol::{
    ClientRequest, ClientResponse, Consistency, NodeStatus, RequestOp, ServerError,
};
use crate::store::codec::{decode_response, encode_request};
use crate::store::{
    Acquire, BarrierStatus, Command, Reply, Request, Response, SessionHeader, StoreError,
    NO_SESSION,
};

/// First pause after `NoLeader`/`Busy`; doubled per consecutive failure up to the cap.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// A request's handle, for [`Client::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Debug)]
struct Pending {
    /// Encoded once; only `deadline_ms` changes between re-sends (a write carries the same
    /// session sequence number every time).
    request: ClientRequest,
    /// The session (client id, sequence number) of a write; `None` for reads and sessionless
    /// requests.
    seq: Option<(u64, u64)>,
    deadline: Instant,
    submitted: Instant,
    /// A queued lock or campaign or a waiting barrier arrival: its final answer comes later,
    /// and silence on the connection is expected meanwhile.
    waiting: bool,
}

/// A store request's answer: the store's revision after it and the reply.
pub type StoreResult = Result<(u64, Reply), ClientError>;

/// The final outcome of a request.
pub(crate) enum Outcome {
    Store(Response),
    Status(NodeStatus),
}

type OutcomeResult = Result<Outcome, ClientError>;

/// A blocking client of an Aurora cluster (see the module docs of [`crate::client`]).
pub struct Client {
    opts: ClientOptions,
    endpoints: Vec<SocketAddr>,
    /// Index into `endpoints` of the node to use next.
    current: usize,
    conn: Option<Connection>,
    cluster_id: u64,
    session: Option<Session>,
    pending: BTreeMap<u64, Pending>,
    done: HashMap<u64, Result<Outcome, ClientError>>,
    next_correlation: u64,
    /// The last thing that went wrong, for the message of a timeout.
    last_problem: String,
    /// When the connection last showed life while non-waiting requests were pending.
    last_progress: Instant,
    /// The client's own status request sent to check on a connection where only waiting
    /// requests are pending (nothing else would reveal a stopped or partitioned node); its answer
    /// is dropped.
    probe: Option<u64>,
    backoff: Duration,
}

impl Client {
    /// Connects to the first reachable endpoint. Fails at once if none answers, so a wrong
    /// endpoint list is reported before any request is made.
    pub fn connect(opts: ClientOptions) -> Result<Self, ClientError> {
        if opts.endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        assert!(
            opts.max_in_flight >= 1,
            "max_in_flight must allow one request"
        );
        let mut client = Self {
            endpoints: opts.endpoints.iter().take(MAX_ENDPOINTS).copied().collect(),
            cluster_id: opts.cluster_id,
            opts,
            current: 0,
            conn: None,
            session: None,
            pending: BTreeMap::new(),
            done: HashMap::new(),
            next_correlation: 1,
            last_problem: "none".to_owned(),
            last_progress: Instant::now(),
            probe: None,
            backoff: BACKOFF_MIN,
        };
        client.ensure_connection()?;
        Ok(client)
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The node the client is talking to now, if connected.
    pub fn connected_to(&self) -> Option<SocketAddr> {
        self.conn.as_ref().map(Connection::addr)
    }

    /// The cluster id learned from the nodes (0 until one answered).
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The session's client id, once a write registered one.
    pub fn client_id(&self) -> Option<u64> {
        self.session.as_ref().map(Session::client_id)
    }

    /// Requests submitted and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.done.len() - usize::from(self.probe.is_some())
    }

    /// Sends `command` without waiting; collect the answer with [`Client::wait`] or
    /// [`Client::wait_any`]. Writes are numbered in the session (registered on the first write).
    pub fn submit(&mut self, command: Command) -> Result<Ticket, ClientError> {
        if self.in_flight() >= self.opts.max_in_flight {
            return Err(ClientError::Invalid(crate::store::CodecError::TooMany {
                what: "requests in flight",
                count: self.in_flight() + 1,
                max: self.opts.max_in_flight,
            }));
        }
        let is_read = matches!(command, Command::Read(_));
        let needs_session = !is_read && !matches!(command, Command::RegisterSession);
        if needs_session && self.session.is_none() {
            self.register_session()?;
        }
        let (session, seq) = match (needs_session, self.session.as_mut()) {
            (true, Some(s)) => {
                let header = s.begin();
                assert!(
                    s.in_flight() <= self.opts.max_in_flight,
                    "every write in flight is a pending request"
                );
                (header, Some((header.client_id, header.seq)))
            }
            _ => (SessionHeader::none(0), None),
        };
        let mut bytes = Vec::new();
        encode_request(&Request { session, command }, &mut bytes);
        let op = RequestOp::Store {
            consistency: self.opts.consistency,
            request: bytes,
        };
        Ok(self.submit_op(op, seq))
    }

    /// Asks the connected node for its view of the cluster (any node answers, leader or not);
    /// [`Client::status`] waits for it.
    fn submit_status(&mut self) -> Ticket {
        self.submit_op(RequestOp::Status, None)
    }

    fn submit_op(&mut self, op: RequestOp, seq: Option<(u64, u64)>) -> Ticket {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut pending = Pending {
            request: ClientRequest { deadline_ms: 0, op },
            seq,
            deadline: Instant::now() + self.opts.request_timeout,
            submitted: Instant::now(),
            waiting: false,
        };
        if self.pending.values().all(|p| p.waiting) {
            // The silence clock starts with the first request that expects a prompt answer.
            self.last_progress = Instant::now();
        }
        let sent = match self.conn.as_mut() {
            Some(conn) => send(conn, self.cluster_id, correlation, &mut pending),
            None => Ok(()),
        };
        self.pending.insert(correlation, pending);
        if let Err(e) = sent {
            self.drop_connection(&e.to_string());
        }
        Ticket(correlation)
    }

    /// Waits for the answer to `ticket`; other answers that arrive meanwhile are kept for their
    /// own `wait`.
    pub(crate) fn wait_outcome(&mut self, ticket: Ticket) -> Result<Outcome, ClientError> {
        assert!(
            self.pending.contains_key(&ticket.0) || self.done.contains_key(&ticket.0),
            "ticket {ticket:?} is not in flight"
        );
        loop {
            if let Some(result) = self.done.remove(&ticket.0) {
                return result;
            }
            self.step()?;
        }
    }

    /// Waits for whichever request finishes first.
    pub(crate) fn wait_any_outcome(
        &mut self,
    ) -> Result<Option<(Ticket, OutcomeResult)>, ClientError> {
        loop {
            if let Some(&id) = self.done.keys().next() {
                let result = self.done.remove(&id).expect("key just seen");
                return Ok(Some((Ticket(id), result)));
            }
            if self.pending.len() == usize::from(self.probe.is_some()) {
                return Ok(None);
            }
            self.step()?;
        }
    }

    /// Waits for a store request's answer: the store's revision and reply, or why it failed.
    pub fn wait(&mut self, ticket: Ticket) -> StoreResult {
        store_result(self.wait_outcome(ticket)?)
    }

    /// Waits for whichever store request finishes first; `None` if nothing is in flight.
    pub fn wait_any(&mut self) -> Result<Option<(Ticket, StoreResult)>, ClientError> {
        Ok(self
            .wait_any_outcome()?
            .map(|(t, r)| (t, r.and_then(store_result))))
    }

    /// Runs `command` and waits for its answer.
    pub fn call(&mut self, command: Command) -> StoreResult {
        let ticket = self.submit(command)?;
        self.wait(ticket)
    }

    /// Like [`Client::call`] for a request that may wait (lock, campaign, barrier): its final
    /// answer may take up to `wait` instead of the request timeout.
    pub fn call_waiting(
        &mut self,
        command: Command,
        wait: Duration,
    ) -> Result<(u64, Reply), ClientError> {
        let ticket = self.submit(command)?;
        let deadline = Instant::now() + wait.max(self.opts.request_timeout);
        self.pending
            .get_mut(&ticket.0)
            .expect("just submitted and not yet answered")
            .deadline = deadline;
        self.wait(ticket)
    }

    /// The connected node's status.
    pub fn status(&mut self) -> Result<NodeStatus, ClientError> {
        let ticket = self.submit_status();
        match self.wait_outcome(ticket)? {
            Outcome::Status(s) => Ok(s),
            Outcome::Store(r) => Err(ClientError::UnexpectedReply {
                expected: "a status",
                got: format!("{r:?}"),
            }),
        }
    }

    /// Closes the session (if a write opened one), so the store forgets its cached answers now
    /// rather than when it evicts the least recently used session. Requests still in flight keep
    /// it open; the next write opens a new one.
    pub fn close_session(&mut self) -> Result<(), ClientError> {
        if self.session.is_none() || self.in_flight() > 0 {
            return Ok(());
        }
        match self.call(Command::CloseSession)? {
            (_, Reply::SessionClosed) => {
                self.session = None;
                Ok(())
            }
            (_, other) => Err(ClientError::UnexpectedReply {
                expected: "a closed session",
                got: format!("{other:?}"),
            }),
        }
    }

    fn register_session(&mut self) -> Result<(), ClientError> {
        let mut bytes = Vec::new();
        let request = Request {
            session: SessionHeader::none(0),
            command: Command::RegisterSession,
        };
        encode_request(&request, &mut bytes);
        let op = RequestOp::Store {
            consistency: Consistency::Linearizable,
            request: bytes,
        };
        let ticket = self.submit_op(op, None);
        match store_result(self.wait_outcome(ticket)?)? {
            (_, Reply::SessionRegistered { client_id }) if client_id != NO_SESSION => {
                self.session = Some(Session::new(client_id));
                Ok(())
            }
            (_, other) => Err(ClientError::UnexpectedReply {
                expected: "a session id",
                got: format!("{other:?}"),
            }),
        }
    }

    /// One round of progress: make sure a connection exists, read one response (or time out),
    /// and expire requests whose deadline passed.
    fn step(&mut self) -> Result<(), ClientError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.ensure_connection() {
            // Nothing reachable: keep trying until the requests' deadlines pass.
            self.last_problem = e.to_string();
            self.pause();
            self.expire();
            return Ok(());
        }
        let now = Instant::now();
        let earliest = self.earliest_deadline().expect("pending is not empty");
        let all_waiting = self.pending.values().all(|p| p.waiting);
        if all_waiting
            && self.probe.is_none()
            && now >= self.last_progress + self.opts.attempt_timeout
        {
            // Only waiting requests, and a long silence: ask the node whether it is still there.
            self.probe = Some(self.submit_status().0);
            self.last_progress = now;
            return Ok(());
        }
        // After this much silence: drop the connection, or (only waiting requests) probe it.
        let silence_end = self.last_progress + self.opts.attempt_timeout;
        let until = silence_end.min(earliest).max(now);
        let conn = self.conn.as_mut().expect("ensured above");
        match conn.recv(self.cluster_id, until) {
            Ok(Some(received)) => {
                self.last_progress = Instant::now();
                self.handle(received)?;
            }
            Ok(None) => {
                if !all_waiting && Instant::now() >= silence_end {
                    let addr = conn.addr();
                    self.drop_connection(&format!(
                        "node {addr} did not answer within {} ms",
                        self.opts.attempt_timeout.as_millis()
                    ));
                    self.rotate();
                }
            }
            Err(ConnError::WrongCluster { expected, got }) => {
                let addr = conn.addr().to_string();
                return Err(ClientError::ClusterMismatch {
                    first: expected,
                    other: got,
                    addr,
                });
            }
            Err(ConnError::Malformed(reason)) => {
                let addr = conn.addr().to_string();
                self.drop_connection(&reason);
                return Err(ClientError::Protocol { addr, reason });
            }
            Err(ConnError::Io(e)) => {
                let addr = conn.addr();
                self.drop_connection(&format!("connection to {addr} failed: {e}"));
                self.rotate();
            }
        }
        self.expire();
        Ok(())
    }

    fn handle(&mut self, received: Received) -> Result<(), ClientError> {
        if self.cluster_id == 0 {
            self.cluster_id = received.cluster_id;
        }
        let id = received.correlation_id;
        if !self.pending.contains_key(&id) {
            // An answer to a request that already timed out, or to one from before a re-send.
            return Ok(());
        }
        match received.response {
            ClientResponse::Store(bytes) => {
                let response = decode_response(&bytes).map_err(|e| ClientError::Protocol {
                    addr: self.addr_text(),
                    reason: e.to_string(),
                })?;
                if is_interim(&response) {
                    self.pending.get_mut(&id).expect("checked above").waiting = true;
                    return Ok(());
                }
                self.backoff = BACKOFF_MIN;
                self.finish(id, Ok(Outcome::Store(response)));
            }
            ClientResponse::Status(status) => self.finish(id, Ok(Outcome::Status(status))),
            ClientResponse::Error(error) => self.handle_error(id, error),
            other => {
                let got = format!("{other:?}");
                self.finish(
                    id,
                    Err(ClientError::UnexpectedReply {
                        expected: "a store response",
                        got,
                    }),
                );
            }
        }
        Ok(())
    }

    fn handle_error(&mut self, id: u64, error: ServerError) {
        self.last_problem = error.to_string();
        match error {
            ServerError::NotLeader {
                leader_client_addr, ..
            } => {
                // Everything pending goes to the leader: move the whole connection.
                self.drop_connection(&self.last_problem.clone());
                match leader_client_addr.parse::<SocketAddr>() {
                    Ok(addr) => self.prefer(addr),
                    Err(_) => self.rotate(),
                }
            }
            ServerError::NoLeader | ServerError::Unavailable { .. } => {
                self.drop_connection(&self.last_problem.clone());
                self.rotate();
                self.pause();
            }
            ServerError::Busy | ServerError::DeadlineExceeded => {
                self.pause();
                self.resend(id);
            }
            ServerError::TooLarge { .. }
            | ServerError::BadRequest { .. }
            | ServerError::Compacted { .. } => {
                self.finish(id, Err(ClientError::Server(error)));
            }
        }
    }

    fn resend(&mut self, id: u64) {
        let (Some(conn), Some(pending)) = (self.conn.as_mut(), self.pending.get_mut(&id)) else {
            return;
        };
        if let Err(e) = send(conn, self.cluster_id, id, pending) {
            self.drop_connection(&e.to_string());
        }
    }

    fn finish(&mut self, id: u64, result: Result<Outcome, ClientError>) {
        let pending = self
            .pending
            .remove(&id)
            .expect("finishing a pending request");
        if let (Some((client_id, seq)), Some(session)) = (pending.seq, self.session.as_mut()) {
            // A write of a session the store already forgot belongs to no live session.
            if session.client_id() == client_id {
                session.finish(seq);
            }
        }
        if let Ok(Outcome::Store(Response {
            result: Err(StoreError::SessionExpired { .. }),
            ..
        })) = &result
        {
            // The store forgot this session: the next write registers a new one.
            self.session = None;
        }
        self.done.insert(id, result);
    }

    /// Fails every request whose deadline passed.
    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<(u64, Instant)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, p)| (*id, p.submitted))
            .collect();
        for (id, submitted) in expired {
            let waited_ms =
                u64::try_from(now.duration_since(submitted).as_millis()).unwrap_or(u64::MAX);
            let last = self.last_problem.clone();
            self.finish(id, Err(ClientError::Timeout { waited_ms, last }));
        }
    }

    /// Connects to the current endpoint, or the next ones in turn, and re-sends everything
    /// pending on the new connection.
    fn ensure_connection(&mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut last = String::new();
        for _ in 0..self.endpoints.len() {
            let addr = self.endpoints[self.current];
            match Connection::open(addr, self.opts.connect_timeout) {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.last_progress = Instant::now();
                    let ids: Vec<u64> = self.pending.keys().copied().collect();
                    for id in ids {
                        self.resend(id);
                        if self.conn.is_none() {
                            break;
                        }
                    }
                    if self.conn.is_some() {
                        return Ok(());
                    }
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
            self.rotate();
        }
        let endpoints: Vec<String> = self.endpoints.iter().map(ToString::to_string).collect();
        Err(ClientError::Unreachable {
            endpoints: endpoints.join(","),
            last,
        })
    }

    fn drop_connection(&mut self, why: &str) {
        self.last_problem = why.to_owned();
        self.conn = None;
    }

    fn rotate(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len();
    }

    /// Uses `addr` next, adding it to the endpoints if it is new (and there is room).
    fn prefer(&mut self, addr: SocketAddr) {
        match self.endpoints.iter().position(|a| *a == addr) {
            Some(i) => self.current = i,
            None if self.endpoints.len() < MAX_ENDPOINTS => {
                self.endpoints.push(addr);
                self.current = self.endpoints.len() - 1;
            }
            None => self.rotate(),
        }
    }

    fn earliest_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Sleeps the current backoff (never past the earliest deadline) and doubles it.
    fn pause(&mut self) {
        let now = Instant::now();
        let limit = self
            .earliest_deadline()
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
        std::thread::sleep(self.backoff.min(limit));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn addr_text(&self) -> String {
        self.connected_to()
            .map_or_else(|| "?".to_owned(), |a| a.to_string())
    }
}

fn send(
    conn: &mut Connection,
    cluster_id: u64,
    correlation: u64,
    pending: &mut Pending,
) -> Result<(), ConnError> {
    let remaining = pending
        .deadline
        .saturating_duration_since(Instant::now())
        .as_millis();
    // The server may take as long as the client waits; at least 1 ms (0 means "server default").
    pending.request.deadline_ms = u32::try_from(remaining).unwrap_or(u32::MAX).max(1);
    conn.send(cluster_id, correlation, &pending.request)
}

/// A first answer that promises a second one: queued lock or campaign, waiting barrier arrival.
fn is_interim(response: &Response) -> bool {
    matches!(
        response.result,
        Ok(Reply::Lock(Acquire::Queued { .. })
            | Reply::Campaign(Acquire::Queued { .. })
            | Reply::Barrier(BarrierStatus::Waiting { .. }))
    )
}

fn store_result(outcome: Outcome) -> StoreResult {
    match outcome {
        Outcome::Store(Response { revision, result }) => match result {
            Ok(reply) => Ok((revision, reply)),
            Err(e) => Err(ClientError::Store(e)),
        },
        Outcome::Status(s) => Err(ClientError::UnexpectedReply {
            expected: "a store response",
            got: format!("{s:?}"),
        }),
    }
}
