//! Shared by the store's property tests: a generator of random but meaningful command sequences
//! (small key and name spaces so that commands collide; retries, lease expiries and compactions
//! included), and the client-side bookkeeping that turns abstract steps into concrete requests.

#![allow(dead_code)]

pub mod model;

use aurora::store::{
    codec, Acquire, ClientId, Command, Compare, CompareOp, CompareTarget, DeleteRangeRequest,
    KeyRange, LeaseId, Notification, PutRequest, RangeRequest, ReadRequest, Reply, Request,
    Response, RevokeReason, SessionHeader, StoreLimits, TxnOp, TxnRequest, NO_LEASE,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const KEYS: [&str; 5] = ["a", "ab", "b", "ba", "c"];
const NAMES: [&str; 2] = ["x", "y"];

/// Limits small enough that every bound is hit in a short run.
pub fn tight_limits(max_store_bytes: u64) -> StoreLimits {
    StoreLimits {
        max_key_bytes: 8,
        max_value_bytes: 16,
        max_txn_ops: 4,
        max_store_bytes,
        max_leases: 4,
        max_lease_ttl_ms: 1000,
        max_queue_waiters: 1,
        max_barrier_members: 4,
        max_sessions: 3,
        max_session_responses: 3,
        max_session_response_bytes: u64::MAX,
    }
}

#[derive(Debug, Clone, Copy)]
pub enum RangeSpec {
    Single(usize),
    Prefix(usize),
    FromKey(usize),
    All,
    Between(usize, usize),
}

impl RangeSpec {
    fn build(self) -> KeyRange {
        match self {
            RangeSpec::Single(k) => KeyRange::single(KEYS[k]),
            RangeSpec::Prefix(k) => KeyRange::prefix(KEYS[k]),
            RangeSpec::FromKey(k) => KeyRange::from_key(KEYS[k]),
            RangeSpec::All => KeyRange::all(),
            RangeSpec::Between(a, b) => KeyRange {
                key: KEYS[a].into(),
                range_end: KEYS[b].into(),
            },
        }
    }
}

fn range_spec() -> impl Strategy<Value = RangeSpec> {
    prop_oneof![
        (0..KEYS.len()).prop_map(RangeSpec::Single),
        (0..KEYS.len()).prop_map(RangeSpec::Prefix),
        (0..KEYS.len()).prop_map(RangeSpec::FromKey),
        Just(RangeSpec::All),
        (0..KEYS.len(), 0..KEYS.len()).prop_map(|(a, b)| RangeSpec::Between(a, b)),
    ]
}

#[derive(Debug, Clone)]
pub enum OpSpec {
    Range {
        range: RangeSpec,
        back: u8,
        limit: u8,
        keys_only: bool,
        count_only: bool,
    },
    Put {
        key: usize,
        value: u8,
        lease: u8,
        prev_kv: bool,
        ignore: u8,
    },
    Delete {
        range: RangeSpec,
        prev_kv: bool,
    },
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        1 => (range_spec(), 0..4u8, 0..3u8, any::<bool>(), any::<bool>()).prop_map(
            |(range, back, limit, keys_only, count_only)| OpSpec::Range {
                range,
                back,
                limit,
                keys_only,
                count_only
            }
        ),
        2 => (0..KEYS.len(), any::<u8>(), 0..6u8, any::<bool>(), 0..10u8).prop_map(
            |(key, value, lease, prev_kv, ignore)| OpSpec::Put {
                key,
                value,
                lease,
                prev_kv,
                ignore
            }
        ),
        1 => (range_spec(), any::<bool>()).prop_map(|(range, prev_kv)| OpSpec::Delete { range, prev_kv }),
    ]
}

#[derive(Debug, Clone)]
pub struct CompareSpec {
    key: usize,
    op: u8,
    target: u8,
    value: u8,
}

/// One abstract step; [`Client::request`] makes it concrete against what has happened so far.
#[derive(Debug, Clone)]
pub enum Step {
    Op {
        session: u8,
        op: OpSpec,
    },
    Txn {
        session: u8,
        compare: Vec<CompareSpec>,
        success: Vec<OpSpec>,
        failure: Vec<OpSpec>,
    },
    Compact {
        back: u8,
    },
    Grant {
        session: u8,
        ttl: u8,
        explicit: Option<u8>,
    },
    Revoke {
        lease: u8,
        expired: bool,
    },
    Lock {
        session: u8,
        name: usize,
        lease: u8,
    },
    Unlock {
        session: u8,
        name: usize,
        token: u8,
    },
    Campaign {
        session: u8,
        name: usize,
        lease: u8,
        value: u8,
    },
    Proclaim {
        session: u8,
        name: usize,
        token: u8,
        value: u8,
    },
    Resign {
        session: u8,
        name: usize,
        token: u8,
    },
    Arrive {
        session: u8,
        name: usize,
        n: u32,
        lease: u8,
    },
    FetchAdd {
        session: u8,
        name: usize,
        delta: i64,
    },
    Register,
    Close {
        session: u8,
    },
    Retry {
        session: u8,
        back: u8,
    },
    FillGap {
        session: u8,
        op: OpSpec,
    },
    Read {
        read: u8,
        range: RangeSpec,
        back: u8,
        name: usize,
        lease: u8,
    },
    NoOp,
}

pub fn step() -> impl Strategy<Value = Step> {
    let s = || 0..5u8;
    let compare =
        (0..KEYS.len(), 0..4u8, 0..5u8, 0..4u8).prop_map(|(key, op, target, value)| CompareSpec {
            key,
            op,
            target,
            value,
        });
    prop_oneof![
        14 => (s(), op_spec()).prop_map(|(session, op)| Step::Op { session, op }),
        3 => (s(), prop::collection::vec(compare, 0..3), prop::collection::vec(op_spec(), 0..4), prop::collection::vec(op_spec(), 0..3))
            .prop_map(|(session, compare, success, failure)| Step::Txn { session, compare, success, failure }),
        1 => (0..6u8).prop_map(|back| Step::Compact { back }),
        2 => (s(), 1..20u8, prop::option::weighted(0.2, 1..4u8)).prop_map(|(session, ttl, explicit)| Step::Grant { session, ttl, explicit }),
        2 => (0..6u8, any::<bool>()).prop_map(|(lease, expired)| Step::Revoke { lease, expired }),
        2 => (s(), 0..2usize, 0..6u8).prop_map(|(session, name, lease)| Step::Lock { session, name, lease }),
        2 => (s(), 0..2usize, 0..4u8).prop_map(|(session, name, token)| Step::Unlock { session, name, token }),
        1 => (s(), 0..2usize, 0..6u8, any::<u8>()).prop_map(|(session, name, lease, value)| Step::Campaign { session, name, lease, value }),
        1 => (s(), 0..2usize, 0..4u8, any::<u8>()).prop_map(|(session, name, token, value)| Step::Proclaim { session, name, token, value }),
        1 => (s(), 0..2usize, 0..4u8).prop_map(|(session, name, token)| Step::Resign { session, name, token }),
        2 => (s(), 0..2usize, 1..4u32, 0..6u8).prop_map(|(session, name, n, lease)| Step::Arrive { session, name, n, lease }),
        2 => (s(), 0..2usize, prop_oneof![-2..3i64, Just(i64::MAX), Just(i64::MIN)]).prop_map(|(session, name, delta)| Step::FetchAdd { session, name, delta }),
        1 => Just(Step::Register),
        1 => s().prop_map(|session| Step::Close { session }),
        4 => (s(), 0..8u8).prop_map(|(session, back)| Step::Retry { session, back }),
        1 => (s(), op_spec()).prop_map(|(session, op)| Step::FillGap { session, op }),
        3 => (0..6u8, range_spec(), 0..4u8, 0..2usize, 0..6u8).prop_map(|(read, range, back, name, lease)| Step::Read { read, range, back, name, lease }),
        1 => Just(Step::NoOp),
    ]
}

/// A registered client as it sees itself.
#[derive(Debug, Default, Clone)]
struct ClientState {
    next_seq: u64,
    acked: u64,
    sent: Vec<Request>,
    gaps: Vec<u64>,
}

/// What the step-to-request translation needs to know: ids and tokens seen so far, and each
/// client's sequence numbers. Updated from the store's outputs (which the model test has already
/// checked against the model).
#[derive(Debug, Default, Clone)]
pub struct Client {
    clients: BTreeMap<ClientId, ClientState>,
    /// Every lease id ever granted, and those still live.
    leases: Vec<LeaseId>,
    live_leases: Vec<LeaseId>,
    /// Registered clients not closed, most recent last.
    live_clients: Vec<ClientId>,
    tokens: BTreeMap<Vec<u8>, Vec<u64>>,
    /// The lock or election name of each lock / campaign request, to file its later grant.
    names: BTreeMap<(ClientId, u64), Vec<u8>>,
    revision: u64,
    sessionless_seq: u64,
    limits: StoreLimits,
}

/// What to do for a step.
pub enum Action {
    Apply(Request),
    Read(ReadRequest),
    NoOp,
}

impl Client {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            revision: 1,
            limits,
            ..Self::default()
        }
    }

    /// Mostly a live lease; pick 5 is any lease ever granted (or an unknown id), pick 0 no lease
    /// where that is allowed.
    fn lease(&self, pick: u8, allow_none: bool) -> LeaseId {
        if allow_none && (pick == 0 || self.live_leases.is_empty()) {
            return NO_LEASE;
        }
        let from = if pick >= 5 || self.live_leases.is_empty() {
            &self.leases
        } else {
            &self.live_leases
        };
        if from.is_empty() {
            return 999;
        }
        from[pick as usize % from.len()]
    }

    fn token(&self, name: &str, pick: u8) -> u64 {
        match self.tokens.get(name.as_bytes()) {
            Some(tokens) if !tokens.is_empty() => {
                tokens[tokens.len() - 1 - (pick as usize % tokens.len())]
            }
            _ => 1 + pick as u64,
        }
    }

    fn revision_back(&self, back: u8) -> u64 {
        if back == 0 {
            0
        } else {
            self.revision.saturating_sub(back as u64 - 1).max(1)
        }
    }

    fn op(&self, op: &OpSpec) -> TxnOp {
        match op {
            OpSpec::Range {
                range,
                back,
                limit,
                keys_only,
                count_only,
            } => TxnOp::Range(RangeRequest {
                range: range.build(),
                revision: self.revision_back(*back),
                limit: *limit as u64,
                keys_only: *keys_only,
                count_only: *count_only,
            }),
            OpSpec::Put {
                key,
                value,
                lease,
                prev_kv,
                ignore,
            } => {
                let ignore_value = *ignore == 1 || *ignore == 3;
                let ignore_lease = *ignore == 2 || *ignore == 3;
                let value = if ignore_value {
                    Vec::new()
                } else if *value > 250 {
                    vec![b'L'; 16]
                } else {
                    format!("v{}", value % 10).into_bytes()
                };
                TxnOp::Put(PutRequest {
                    key: KEYS[*key].into(),
                    value,
                    lease: if ignore_lease {
                        NO_LEASE
                    } else {
                        self.lease(*lease, true)
                    },
                    prev_kv: *prev_kv,
                    ignore_value,
                    ignore_lease,
                })
            }
            OpSpec::Delete { range, prev_kv } => TxnOp::DeleteRange(DeleteRangeRequest {
                range: range.build(),
                prev_kv: *prev_kv,
            }),
        }
    }

    fn command_of(&self, op: &OpSpec) -> Command {
        match self.op(op) {
            TxnOp::Range(r) => Command::Read(ReadRequest::Range(r)),
            TxnOp::Put(p) => Command::Put(p),
            TxnOp::DeleteRange(d) => Command::DeleteRange(d),
        }
    }

    /// A client for `pick`: one of the three most recent live ones, or (pick 4) any ever seen.
    fn pick_client(&self, pick: u8) -> Option<ClientId> {
        let recent = &self.live_clients[self.live_clients.len().saturating_sub(3)..];
        if pick < 4 && !recent.is_empty() {
            return Some(recent[pick as usize % recent.len()]);
        }
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[pick as usize % ids.len()])
    }

    /// The session for `pick`: 0 or no clients means sessionless.
    fn header(&mut self, pick: u8) -> SessionHeader {
        let Some(id) = self.pick_client(pick).filter(|_| pick != 0) else {
            self.sessionless_seq += 1;
            return SessionHeader::none(self.sessionless_seq);
        };
        let state = self.clients.get_mut(&id).expect("listed");
        let skip = pick % 3 == 0;
        if skip {
            state.next_seq += 1;
            state.gaps.push(state.next_seq);
        }
        state.next_seq += 1;
        if pick == 2 {
            state.acked = state.next_seq - 1;
        }
        SessionHeader {
            client_id: id,
            seq: state.next_seq,
            acked_seq: state.acked.min(state.next_seq - 1),
        }
    }

    pub fn action(&mut self, step: &Step) -> Action {
        let (session, command) = match step {
            Step::NoOp => return Action::NoOp,
            Step::Read {
                read,
                range,
                back,
                name,
                lease,
            } => {
                let request = match read {
                    0 | 1 => ReadRequest::Range(RangeRequest {
                        range: range.build(),
                        revision: self.revision_back(*back),
                        limit: 0,
                        keys_only: false,
                        count_only: false,
                    }),
                    2 => ReadRequest::LeaseKeepAlive {
                        id: self.lease(*lease, false),
                    },
                    3 => ReadRequest::LeaseTimeToLive {
                        id: self.lease(*lease, false),
                        keys: *lease % 2 == 0,
                    },
                    4 => ReadRequest::Leader {
                        name: NAMES[*name].into(),
                    },
                    _ => ReadRequest::Counter {
                        name: NAMES[*name].into(),
                    },
                };
                return Action::Read(request);
            }
            Step::Retry { session, back } => {
                let Some(id) = self.pick_client(*session) else {
                    return Action::NoOp;
                };
                let state = &self.clients[&id];
                if state.sent.is_empty() {
                    return Action::NoOp;
                }
                let at = state.sent.len() - 1 - (*back as usize % state.sent.len());
                return Action::Apply(state.sent[at].clone());
            }
            Step::FillGap { session, op } => {
                let Some(id) = self.pick_client(*session) else {
                    return Action::NoOp;
                };
                let command = self.command_of(op);
                let state = self.clients.get_mut(&id).expect("listed");
                let Some(seq) = state.gaps.pop() else {
                    return Action::NoOp;
                };
                let header = SessionHeader {
                    client_id: id,
                    seq,
                    acked_seq: state.acked.min(seq - 1),
                };
                (header, command)
            }
            Step::Op { session, op } => {
                let command = self.command_of(op);
                (self.header(*session), command)
            }
            Step::Txn {
                session,
                compare,
                success,
                failure,
            } => {
                let compare = compare
                    .iter()
                    .map(|c| Compare {
                        key: KEYS[c.key].into(),
                        op: [
                            CompareOp::Equal,
                            CompareOp::NotEqual,
                            CompareOp::Less,
                            CompareOp::Greater,
                        ][c.op as usize],
                        target: match c.target {
                            0 => CompareTarget::Value(format!("v{}", c.value).into_bytes()),
                            1 => CompareTarget::Version(c.value as u64),
                            2 => CompareTarget::CreateRevision(self.revision_back(c.value)),
                            3 => CompareTarget::ModRevision(self.revision_back(c.value)),
                            _ => CompareTarget::Lease(self.lease(c.value, true)),
                        },
                    })
                    .collect();
                let txn = TxnRequest {
                    compare,
                    success: success.iter().map(|o| self.op(o)).collect(),
                    failure: failure.iter().map(|o| self.op(o)).collect(),
                };
                (self.header(*session), Command::Txn(txn))
            }
            Step::Compact { back } => {
                let revision = self.revision.saturating_sub(*back as u64).max(1);
                (self.header(0), Command::Compact { revision })
            }
            Step::Grant {
                session,
                ttl,
                explicit,
            } => {
                let id = explicit.map_or(0, |e| e as u64);
                (
                    self.header(*session),
                    Command::LeaseGrant {
                        id,
                        ttl_ms: *ttl as u64 * 10,
                    },
                )
            }
            Step::Revoke { lease, expired } => {
                let reason = if *expired {
                    RevokeReason::Expired
                } else {
                    RevokeReason::Revoked
                };
                let id = self.lease(*lease, false);
                (self.header(0), Command::LeaseRevoke { id, reason })
            }
            Step::Lock {
                session,
                name,
                lease,
            } => {
                let lease = self.lease(*lease, false);
                (
                    self.header(*session),
                    Command::Lock {
                        name: NAMES[*name].into(),
                        lease,
                    },
                )
            }
            Step::Unlock {
                session,
                name,
                token,
            } => {
                let token = self.token(NAMES[*name], *token);
                (
                    self.header(*session),
                    Command::Unlock {
                        name: NAMES[*name].into(),
                        token,
                    },
                )
            }
            Step::Campaign {
                session,
                name,
                lease,
                value,
            } => {
                let lease = self.lease(*lease, false);
                let value = format!("c{}", value % 4).into_bytes();
                (
                    self.header(*session),
                    Command::Campaign {
                        name: format!("e{}", NAMES[*name]).into_bytes(),
                        lease,
                        value,
                    },
                )
            }
            Step::Proclaim {
                session,
                name,
                token,
                value,
            } => {
                let name = format!("e{}", NAMES[*name]);
                let token = self.token(&name, *token);
                let value = if *value > 200 {
                    vec![b'P'; 12]
                } else {
                    format!("p{}", value % 4).into_bytes()
                };
                (
                    self.header(*session),
                    Command::Proclaim {
                        name: name.into_bytes(),
                        token,
                        value,
                    },
                )
            }
            Step::Resign {
                session,
                name,
                token,
            } => {
                let name = format!("e{}", NAMES[*name]);
                let token = self.token(&name, *token);
                (
                    self.header(*session),
                    Command::Resign {
                        name: name.into_bytes(),
                        token,
                    },
                )
            }
            Step::Arrive {
                session,
                name,
                n,
                lease,
            } => {
                let lease = self.lease(*lease, false);
                (
                    self.header(*session),
                    Command::Arrive {
                        name: format!("b{}", NAMES[*name]).into_bytes(),
                        n: *n,
                        lease,
                    },
                )
            }
            Step::FetchAdd {
                session,
                name,
                delta,
            } => (
                self.header(*session),
                Command::FetchAdd {
                    name: NAMES[*name].into(),
                    delta: *delta,
                },
            ),
            Step::Register => (self.header(0), Command::RegisterSession),
            Step::Close { session } => {
                if self.pick_client(*session).is_none() {
                    return Action::NoOp;
                }
                (self.header((*session).max(1)), Command::CloseSession)
            }
        };
        let request = Request { session, command };
        if codec::validate(&request, &self.limits).is_err() {
            return Action::NoOp;
        }
        if let Command::Lock { name, .. } | Command::Campaign { name, .. } = &request.command {
            self.names
                .insert((session.client_id, session.seq), name.clone());
        }
        if let Some(state) = self.clients.get_mut(&session.client_id) {
            state.sent.push(request.clone());
        }
        Action::Apply(request)
    }

    /// Learns ids, tokens and the revision from what an apply reported.
    pub fn observe(
        &mut self,
        response: &Response,
        notifications: &[Notification],
        request: &Request,
    ) {
        self.revision = self.revision.max(response.revision);
        let name = match &request.command {
            Command::Lock { name, .. } | Command::Campaign { name, .. } => Some(name.clone()),
            _ => None,
        };
        match &response.result {
            Ok(Reply::SessionRegistered { client_id }) => {
                self.clients.entry(*client_id).or_default();
                self.live_clients.push(*client_id);
            }
            Ok(Reply::SessionClosed) => self
                .live_clients
                .retain(|&c| c != request.session.client_id),
            Ok(
                Reply::Lock(Acquire::Granted { token })
                | Reply::Campaign(Acquire::Granted { token }),
            ) => {
                if let Some(name) = name {
                    self.tokens.entry(name).or_default().push(*token);
                }
            }
            _ => {}
        }
        for n in notifications {
            match n {
                Notification::LeaseGranted { id, .. } => {
                    self.leases.push(*id);
                    self.live_leases.push(*id);
                }
                Notification::LeaseRevoked { id } => self.live_leases.retain(|l| l != id),
                _ => {}
            }
            if let Notification::LeaderChanged {
                name,
                leader: Some(leader),
            } = n
            {
                self.tokens
                    .entry(name.clone())
                    .or_default()
                    .push(leader.token);
            }
            if let Notification::Completed(done) = n {
                if let Ok(Reply::Lock(Acquire::Granted { token })) = done.response.result {
                    if let Some(name) = self.names.get(&(done.client_id, done.seq)) {
                        self.tokens.entry(name.clone()).or_default().push(token);
                    }
                }
            }
        }
    }
}

/// Encodes a request as the log holds it ([`Client::action`] only yields valid requests, as a
/// server only proposes those).
pub fn entry(request: &Request) -> Vec<u8> {
    let mut bytes = Vec::new();
    codec::encode_request(request, &mut bytes);
    bytes
}
