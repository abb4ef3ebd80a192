//! Simulated clients: each issues put, get and compare-and-set operations on a few keys, one at a
//! time, and records what it observed in the linearizability checker's history format
//! (docs/HISTORY_FORMAT.md) with the global virtual time as the real-time clock.
//!
//! A client that hears nothing before its timeout records the outcome as unknown (the operation may
//! have taken effect, or may yet); a refusal is a definite failure. Operations never retry under the
//! same id, so no deduplication is needed and every outcome is exactly what the client learned.

use super::events::Reply;
use super::kv::{Command, KEYS};
use super::rng::Rng;
use crate::consensus::{NodeId, ReadMode};
use crate::lincheck::{History, Op, OpKind, Outcome};

/// What one operation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Write(Command),
    Read { key: u8, mode: ReadMode },
}

/// An operation a client has sent and not yet resolved.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    op: u64,
    request: Request,
    invoke_ns: u64,
    deadline_ns: u64,
}

#[derive(Debug)]
struct Client {
    inflight: Option<InFlight>,
    /// Where to send next: the leader it last heard of.
    target: NodeId,
    /// A value it last saw per key, to aim compare-and-sets at something plausible.
    seen: [Option<u64>; KEYS],
}

/// Shape of the client load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadConfig {
    pub clients: usize,
    pub timeout_ns: u64,
    /// Pause between a client's operations: uniform in `0..=think_max_ns`.
    pub think_max_ns: u64,
    /// Share of reads, in percent; of the rest, share of compare-and-sets, in percent.
    pub read_pct: u64,
    pub cas_pct: u64,
    /// Share of reads served through the leader lease (the rest use ReadIndex), in percent.
    pub lease_read_pct: u64,
    /// Extra clients that only issue lease reads, each to a node picked at random: they find a
    /// deposed leader that still believes it leads (the case leases must be safe in).
    pub roaming_readers: usize,
    /// Client 0 retries the same node after a timeout of `sticky_timeout_ns` (instead of another
    /// node after `timeout_ns`): it keeps writes flowing to a leader that is cut off, as the
    /// figure-8 schedule needs. One client only, so unknown outcomes stay few enough to check.
    pub sticky: bool,
    pub sticky_timeout_ns: u64,
}

/// All clients and their shared history.
#[derive(Debug)]
pub struct Workload {
    pub cfg: WorkloadConfig,
    clients: Vec<Client>,
    /// Every operation ever issued, by id (requests arriving late still need their content).
    requests: Vec<Request>,
    history: History,
    rng: Rng,
    nodes: Vec<NodeId>,
    pub completed_ok: u64,
    pub refused: u64,
    pub timed_out: u64,
}

/// What a client wants the world to do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    /// Send operation `op` to `node`, and check back for its timeout at `deadline_ns`.
    Send {
        node: NodeId,
        op: u64,
        deadline_ns: u64,
    },
    /// Wake the client again at this time.
    WakeAt(u64),
    /// Nothing to do (a stale wake-up, or the workload is over).
    Idle,
}

impl Workload {
    pub fn new(cfg: WorkloadConfig, nodes: Vec<NodeId>, mut rng: Rng) -> Self {
        assert!(!nodes.is_empty());
        let clients = (0..cfg.clients + cfg.roaming_readers)
            .map(|_| Client {
                inflight: None,
                target: rng.pick(&nodes),
                seen: [None; KEYS],
            })
            .collect();
        Self {
            cfg,
            clients,
            requests: Vec::new(),
            history: History::new(),
            rng,
            nodes,
            completed_ok: 0,
            refused: 0,
            timed_out: 0,
        }
    }

    /// The nodes clients may pick from (membership changes add some).
    pub fn set_nodes(&mut self, nodes: Vec<NodeId>) {
        assert!(!nodes.is_empty());
        self.nodes = nodes;
    }

    pub fn request(&self, op: u64) -> Request {
        self.requests[op as usize]
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn ops_issued(&self) -> usize {
        self.requests.len()
    }

    pub fn idle(&self, client: usize) -> bool {
        self.clients[client].inflight.is_none()
    }

    /// The client wakes at `now_ns`: times out its operation if due, or issues the next one while
    /// `issue` holds.
    pub fn wake(&mut self, client: usize, now_ns: u64, issue: bool) -> ClientAction {
        if let Some(f) = self.clients[client].inflight {
            if now_ns < f.deadline_ns {
                return ClientAction::Idle;
            }
            self.clients[client].inflight = None;
            self.timed_out += 1;
            self.record(client, f, None, Outcome::Unknown, None);
            // A silent node may be down: try another one next (unless sticky).
            if !(self.cfg.sticky && client == 0) {
                let other = self.rng.pick(&self.nodes);
                self.clients[client].target = other;
            }
            return ClientAction::WakeAt(now_ns + self.think());
        }
        if !issue {
            return ClientAction::Idle;
        }
        let op = self.requests.len() as u64;
        let key = self.rng.below(KEYS as u64) as u8;
        let roll = self.rng.below(100);
        let roaming = client >= self.cfg.clients;
        if roaming {
            self.clients[client].target = self.rng.pick(&self.nodes);
        }
        let request = if roaming {
            Request::Read {
                key,
                mode: ReadMode::Lease,
            }
        } else if roll < self.cfg.read_pct {
            let mode = if self.rng.below(100) < self.cfg.lease_read_pct {
                ReadMode::Lease
            } else {
                ReadMode::ReadIndex
            };
            Request::Read { key, mode }
        } else if self.rng.below(100) < self.cfg.cas_pct {
            let seen = self.clients[client].seen[usize::from(key)];
            let expect = match self.rng.below(4) {
                0 => None,
                1 if op > 0 => Some(self.rng.below(op)),
                _ => seen,
            };
            Request::Write(Command {
                op,
                key,
                cas: Some(expect),
            })
        } else {
            Request::Write(Command { op, key, cas: None })
        };
        self.requests.push(request);
        let deadline_ns = now_ns
            + if self.cfg.sticky && client == 0 {
                self.cfg.sticky_timeout_ns
            } else {
                self.cfg.timeout_ns
            };
        self.clients[client].inflight = Some(InFlight {
            op,
            request,
            invoke_ns: now_ns,
            deadline_ns,
        });
        ClientAction::Send {
            node: self.clients[client].target,
            op,
            deadline_ns,
        }
    }

    /// A node's reply reaches the client at `now_ns`; replies to operations it gave up on are
    /// ignored (already recorded as unknown).
    pub fn reply(&mut self, client: usize, op: u64, reply: Reply, now_ns: u64) -> ClientAction {
        let Some(f) = self.clients[client].inflight.filter(|f| f.op == op) else {
            return ClientAction::Idle;
        };
        self.clients[client].inflight = None;
        match reply {
            Reply::Written(wrote) => {
                self.completed_ok += u64::from(wrote);
                let outcome = if wrote { Outcome::Ok } else { Outcome::Fail };
                if let (true, Request::Write(c)) = (wrote, f.request) {
                    self.clients[client].seen[usize::from(c.key)] = Some(c.op);
                }
                self.record(client, f, Some(now_ns), outcome, None);
            }
            Reply::Read(value) => {
                self.completed_ok += 1;
                if let Request::Read { key, .. } = f.request {
                    self.clients[client].seen[usize::from(key)] = value;
                }
                self.record(client, f, Some(now_ns), Outcome::Ok, Some(value));
            }
            Reply::Refused(leader) => {
                self.refused += 1;
                // A refused put or get had no effect: `fail`. For a cas, `fail` would mean "the
                // comparison failed" (an observation); a refused cas observed nothing, so it is
                // left out of the history, exactly like an operation never issued.
                if !matches!(f.request, Request::Write(Command { cas: Some(_), .. })) {
                    self.record(client, f, Some(now_ns), Outcome::Fail, None);
                }
                self.clients[client].target = match leader {
                    Some(l) if self.nodes.contains(&l) => l,
                    _ => self.rng.pick(&self.nodes),
                };
            }
        }
        ClientAction::WakeAt(now_ns + self.think())
    }

    /// The run ends: operations still waiting never learned their outcome.
    pub fn abandon_inflight(&mut self) {
        for client in 0..self.clients.len() {
            if let Some(f) = self.clients[client].inflight.take() {
                self.timed_out += 1;
                self.record(client, f, None, Outcome::Unknown, None);
            }
        }
    }

    fn think(&mut self) -> u64 {
        self.rng.range(0, self.cfg.think_max_ns)
    }

    fn record(
        &mut self,
        client: usize,
        f: InFlight,
        complete_ns: Option<u64>,
        outcome: Outcome,
        read: Option<Option<u64>>,
    ) {
        let show = |v: Option<u64>| v.map(|v| format!("v{v}"));
        let op = match f.request {
            Request::Write(c) => Op {
                client: client as u64,
                kind: if c.cas.is_some() {
                    OpKind::Cas
                } else {
                    OpKind::Put
                },
                key: format!("k{}", c.key),
                input: Some(format!("v{}", c.op)),
                expect: c.cas.and_then(show),
                output: None,
                invoke_ns: f.invoke_ns,
                complete_ns,
                outcome,
            },
            Request::Read { key, .. } => Op {
                client: client as u64,
                kind: OpKind::Get,
                key: format!("k{key}"),
                input: None,
                expect: None,
                output: read.and_then(show),
                invoke_ns: f.invoke_ns,
                complete_ns,
                outcome,
            },
        };
        self.history
            .push(op)
            .expect("the simulator records only well-formed operations");
    }
}
