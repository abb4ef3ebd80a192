//! The simulated world: hosts (a consensus node plus what a server wraps around it — disk, state
//! machine, client sessions), the network, the clients and the fault injector, driven by one event
//! queue in virtual time. One thread, one seed, no wall clock: the same seed replays the same run.
//!
//! A host drives its node the way the real poll loop does: read the clock and tick, feed the input,
//! then drain `Ready` — send messages, write to disk (acknowledged when the write completes), apply
//! committed entries, answer reads — and after every step the invariants are checked.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use super::clock::{max_rate_spread_ppb, NodeClock};
use super::disk::{Disk, StoredSnapshot, TailFate};
use super::events::{Event, EventQueue, Reply};
use super::invariants::Invariants;
use super::kv::{Command, Kv};
use super::network::{Network, NetworkFaults};
use super::ring::{
    Landing, Registration, RingHost, RingStats, Slot, RC_ERROR_NS, RC_RETRANSMIT_NS,
};
use super::rng::Rng;
use super::scenario::Scenario;
use super::workload::{ClientAction, Request, Workload};
use crate::config::MAX_VOTERS;
use crate::consensus::codec::{self, EntriesView};
use crate::consensus::ring_permission::{GrantChange, PermissionInput};
use crate::consensus::{
    EntryKind, InMessage, LogIndex, Membership, Message, Node, NodeConfig, NodeId, PersistId,
    ProposeError, ReadError, Restored, Role, VoterGroup, MAX_LEARNERS,
};
use crate::lincheck::{self, Limits, Outcome, Verdict};
use crate::wire::ConsensusKind;

/// Ready rounds drained per input; a node with more output than this continues on its next input.
const MAX_READY_ROUNDS: usize = 64;
/// Snapshots received and not yet installed, kept per host.
const MAX_RECEIVED_SNAPSHOTS: usize = 4;
/// Events that may wait in the queue at once.
const MAX_QUEUED_EVENTS: usize = 1 << 20;
/// Largest encoded consensus message (an append of a full batch, or a snapshot).
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Search budget of the final linearizability check, per key.
const LINCHECK_LIMITS: Limits = Limits {
    max_steps_per_key: 20_000_000,
    max_states_per_key: 1_000_000,
};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub seed: u64,
    /// `None` when every check passed; else what failed, first.
    pub failure: Option<String>,
    pub stats: RunStats,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub events: u64,
    pub virtual_ns: u64,
    pub messages: u64,
    pub dropped: u64,
    pub ops: u64,
    pub ops_ok: u64,
    pub ops_unknown: u64,
    pub committed: u64,
    pub terms: u64,
    pub crashes: u64,
    pub torn_bytes: u64,
    pub conf_changes: u64,
    pub transfers: u64,
    pub snapshots_installed: u64,
    /// The scenario sent appends as one-sided writes (`sim/ring.rs`).
    pub one_sided: bool,
    pub ring: RingStats,
}

struct Host {
    id: NodeId,
    node: Option<Node>,
    /// Bumped at every crash, so timers and disk completions of a dead incarnation are ignored.
    incarnation: u32,
    clock: NodeClock,
    disk: Disk,
    kv: Kv,
    /// The index `kv` reflects.
    kv_index: LogIndex,
    /// The bytes of the node's current log snapshot (what InstallSnapshot sends).
    snapshot: Option<StoredSnapshot>,
    received: VecDeque<StoredSnapshot>,
    /// Writes handed to the disk and not completed: (persist id, WAL end, sync).
    writes: VecDeque<(u64, usize, bool)>,
    disk_free_ns: u64,
    slow_disk: bool,
    /// Proposals this host made for clients: index → (client, op).
    proposals: BTreeMap<LogIndex, (usize, u64)>,
    /// Reads in progress: read id (the op) → (client, key).
    reads: BTreeMap<u64, (usize, u8)>,
    paused_until: Option<u64>,
    /// The one-sided channel's ends: this host's ring and the grants it holds.
    ring: RingHost,
}

/// Where the figure-8 fault schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure8 {
    Start,
    AwaitL2 {
        l1: NodeId,
        buddy: NodeId,
        term: u64,
    },
    AwaitL3 {
        l2: NodeId,
        term: u64,
    },
    CutL3 {
        l3: NodeId,
    },
}

/// Everything but the hosts, so a host and the world can be borrowed at once.
struct Ctx {
    sc: Scenario,
    now_ns: u64,
    events: EventQueue,
    network: Network,
    workload: Workload,
    invariants: Invariants,
    nemesis_rng: Rng,
    disk_rng: Rng,
    link_rng: Rng,
    trace: bool,
    buf: Vec<u8>,
    settled_at: Option<u64>,
    figure8: Figure8,
    ids: Vec<NodeId>,
    /// The highest committed index when the faults healed: every member must catch up to it.
    committed_at_settle: LogIndex,
    stats: RunStats,
    /// When the last one-sided write on each link `(from, to)` arrives: a reliable connection
    /// delivers in order.
    ring_links: BTreeMap<(NodeId, NodeId), u64>,
}

pub struct World {
    hosts: Vec<Host>,
    ctx: Ctx,
}

type Step = Result<(), String>;

impl World {
    pub fn new(sc: Scenario, trace: bool) -> Self {
        let mut rng = Rng::new(sc.seed);
        let all = sc.all_nodes();
        let spread = max_rate_spread_ppb(sc.max_clock_drift_ns, sc.election_timeout_min_ns);
        let mut clock_rng = rng.fork(1);
        let hosts: Vec<Host> = all
            .iter()
            .map(|&id| {
                // Rates in [1 - spread/2, 1 + spread/2]; half the nodes sit at an extreme.
                let rate = match clock_rng.below(4) {
                    0 => 1_000_000_000 - spread / 2,
                    1 => 1_000_000_000 + spread / 2,
                    _ => 1_000_000_000 - spread / 2 + clock_rng.range(0, spread),
                };
                let start = clock_rng.range(0, 1_000_000_000_000);
                Host {
                    id,
                    node: None,
                    incarnation: 0,
                    clock: NodeClock::new(0, start, rate),
                    disk: Disk::new(),
                    kv: Kv::default(),
                    kv_index: 0,
                    snapshot: None,
                    received: VecDeque::new(),
                    writes: VecDeque::new(),
                    disk_free_ns: 0,
                    slow_disk: false,
                    proposals: BTreeMap::new(),
                    reads: BTreeMap::new(),
                    paused_until: None,
                    ring: RingHost::default(),
                }
            })
            .collect();
        let network = Network::new(sc.network, rng.fork(2));
        let workload = Workload::new(sc.workload, all.clone(), rng.fork(3));
        let ctx = Ctx {
            now_ns: 0,
            events: EventQueue::new(MAX_QUEUED_EVENTS),
            network,
            workload,
            invariants: Invariants::new(),
            nemesis_rng: rng.fork(4),
            disk_rng: rng.fork(5),
            link_rng: rng.fork(6),
            trace,
            buf: vec![0; MAX_MESSAGE_BYTES],
            settled_at: None,
            figure8: Figure8::Start,
            ids: all.clone(),
            committed_at_settle: 0,
            stats: RunStats {
                one_sided: sc.one_sided,
                ..RunStats::default()
            },
            ring_links: BTreeMap::new(),
            sc,
        };
        Self { hosts, ctx }
    }

    /// Runs the scenario to its end and checks the history; the first failure ends the run.
    pub fn run(mut self) -> RunOutcome {
        let failure = self.run_inner().err();
        let mut stats = self.ctx.stats;
        stats.virtual_ns = self.ctx.now_ns;
        stats.messages = self.ctx.network.sent;
        stats.dropped = self.ctx.network.dropped;
        stats.ops = self.ctx.workload.ops_issued() as u64;
        stats.committed = self.ctx.invariants.max_committed();
        RunOutcome {
            seed: self.ctx.sc.seed,
            failure,
            stats,
        }
    }

    fn run_inner(&mut self) -> Step {
        let membership = self.initial_membership();
        let ids: Vec<NodeId> = self.hosts.iter().map(|h| h.id).collect();
        for id in ids {
            self.start_node(id, membership)?;
        }
        for client in 0..self.ctx.sc.workload.clients + self.ctx.sc.workload.roaming_readers {
            let at = self
                .ctx
                .link_rng
                .range(0, self.ctx.sc.election_timeout_max_ns);
            self.ctx.push(at, Event::Client { client })?;
        }
        let first = self.ctx.nemesis_delay();
        self.ctx.push(first, Event::Nemesis)?;
        let end_ns = self.ctx.sc.fault_phase_ns + self.ctx.sc.settle_ns;
        while let Some((at, event)) = self.ctx.events.pop() {
            if at > end_ns {
                break;
            }
            self.ctx.now_ns = at;
            self.ctx.stats.events += 1;
            if self.ctx.stats.events > self.ctx.sc.max_events {
                return Err(format!(
                    "event cap: more than {} events by {} ms of virtual time (a message flood?)",
                    self.ctx.sc.max_events,
                    at / 1_000_000
                ));
            }
            self.handle(event)?;
        }
        self.ctx.now_ns = self.ctx.now_ns.max(end_ns);
        self.finish()
    }

    fn initial_membership(&self) -> Membership {
        let sc = &self.ctx.sc;
        let group = VoterGroup::new(&sc.voters, sc.election_quorum, sc.replication_quorum)
            .expect("the scenario draws valid quorums");
        Membership::new(group, &sc.learners).expect("voters and learners are disjoint")
    }

    fn node_config(&self, id: NodeId, membership: Membership) -> NodeConfig {
        let sc = &self.ctx.sc;
        let mut cfg = NodeConfig::new(id, membership);
        cfg.election_timeout_min_ns = sc.election_timeout_min_ns;
        cfg.election_timeout_max_ns = sc.election_timeout_max_ns;
        cfg.heartbeat_interval_ns = sc.heartbeat_ns;
        cfg.max_clock_drift_ns = sc.max_clock_drift_ns;
        cfg.max_inflight_appends = sc.max_inflight_appends;
        cfg.max_batch_entries = sc.max_batch_entries;
        cfg.max_log_entries = sc.max_log_entries;
        cfg.pre_vote = sc.pre_vote;
        cfg
    }

    /// Boots (or reboots) `id` from what its disk recovers.
    fn start_node(&mut self, id: NodeId, membership: Membership) -> Step {
        let cfg = self.node_config(id, membership);
        let rng_seed = self.ctx.disk_rng.next_u64();
        let now = self.ctx.now_ns;
        let trace = self.ctx.trace;
        let host = self.host_mut(id);
        let recovered = host.disk.recover();
        let torn = recovered.truncated_bytes as u64;
        let restored = Restored {
            hard_state: recovered.hard_state,
            snapshot: recovered.snapshot.as_ref().map(|s| s.meta),
            entries: recovered.entries,
        };
        let entries = restored.entries.len();
        let local = host.clock.local_ns(now);
        let node = Node::new(cfg, restored, local, rng_seed)
            .map_err(|e| format!("node {id} cannot restart from its disk: {e}"))?;
        host.kv = recovered
            .snapshot
            .as_ref()
            .map_or_else(Kv::default, |s| Kv::restore(&s.data));
        host.kv_index = recovered.snapshot.as_ref().map_or(0, |s| s.meta.index);
        host.snapshot = recovered.snapshot;
        host.node = Some(node);
        let incarnation = host.incarnation;
        if trace && now > 0 {
            println!(
                "{} n{id} restart: term {} vote {:?}, snapshot at {}, {entries} entries, {torn} torn bytes cut",
                ms(now),
                recovered.hard_state.term,
                recovered.hard_state.vote,
                host.kv_index
            );
        }
        self.ctx.stats.torn_bytes += torn;
        let i = self.hosts.iter().position(|h| h.id == id).expect("host");
        update_permission(&mut self.hosts[i], &mut self.ctx)?;
        let tick_at = now + self.ctx.link_rng.range(0, self.ctx.sc.tick_ns);
        self.ctx.push(
            tick_at,
            Event::Tick {
                node: id,
                incarnation,
            },
        )?;
        self.observe(id)
    }

    fn host_mut(&mut self, id: NodeId) -> &mut Host {
        self.hosts
            .iter_mut()
            .find(|h| h.id == id)
            .expect("events name existing hosts")
    }

    fn host(&self, id: NodeId) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.id == id)
            .expect("events name existing hosts")
    }

    /// Whether `id` is running and not paused now; a paused host gets `event` back at its resume.
    fn available(&mut self, id: NodeId, event: &Event) -> Result<bool, String> {
        let now = self.ctx.now_ns;
        let host = self.host(id);
        if host.node.is_none() {
            return Ok(false);
        }
        if let Some(until) = host.paused_until.filter(|&t| now < t) {
            self.ctx.push(until, event.clone())?;
            return Ok(false);
        }
        Ok(true)
    }

    fn handle(&mut self, event: Event) -> Step {
        match event {
            Event::Deliver {
                from,
                to,
                code,
                ref bytes,
            } => {
                if !self.available(to, &event)? {
                    return Ok(());
                }
                let kind = ConsensusKind::new(code).expect("the sender used a codec code");
                let decoded = codec::decode(kind, bytes)
                    .map_err(|e| format!("n{to} cannot decode a frame from n{from}: {e}"))?;
                if self.ctx.trace {
                    println!(
                        "{} n{to} <- n{from} {}",
                        ms(self.ctx.now_ns),
                        describe(&decoded.message)
                    );
                }
                if let Message::InstallSnapshot(s) = decoded.message {
                    let host = self.host_mut(to);
                    if host.received.len() == MAX_RECEIVED_SNAPSHOTS {
                        host.received.pop_front();
                    }
                    host.received.push_back(StoredSnapshot {
                        meta: s.meta,
                        data: decoded.snapshot_data.to_vec(),
                    });
                }
                if let (Message::Append(a), true) = (&decoded.message, self.ctx.sc.one_sided) {
                    let (now, interval) = (self.ctx.now_ns, self.ctx.sc.heartbeat_ns);
                    if let Some(r) = self
                        .host_mut(to)
                        .ring
                        .offer_again(from, a.term, now, interval)
                    {
                        self.ctx.send_grant(to, r)?;
                    }
                }
                let message = decoded.message;
                self.input(to, |node| {
                    node.step(from, message)
                        .map_err(|e| format!("n{} refused a message from n{from}: {e}", node.id()))
                })
            }
            Event::RingWrite {
                from,
                to,
                term,
                rkey,
                code,
                bytes,
            } => self.ring_write_lands(from, to, term, rkey, Slot { from, code, bytes }),
            Event::RingWriteFailed {
                leader,
                follower,
                term,
                rkey,
            } => {
                if !self.available(leader, &event)? {
                    return Ok(());
                }
                self.host_mut(leader)
                    .ring
                    .write_failed(follower, term, rkey);
                if self.ctx.trace {
                    println!(
                        "{} n{leader} ring write to n{follower} (term {term}, rkey {rkey}) failed: messages until a new grant",
                        ms(self.ctx.now_ns)
                    );
                }
                Ok(())
            }
            Event::RingGrant {
                from,
                to,
                term,
                rkey,
            } => {
                if !self.available(to, &event)? {
                    return Ok(());
                }
                let usable = self.host_mut(to).ring.grant_arrived(from, term, rkey);
                if self.ctx.trace {
                    println!(
                        "{} n{to} <- n{from} ring grant term {term} rkey {rkey} (usable: {usable})",
                        ms(self.ctx.now_ns)
                    );
                }
                Ok(())
            }
            Event::Tick { node, incarnation } => {
                if self.host(node).incarnation != incarnation || !self.available(node, &event)? {
                    return Ok(());
                }
                self.input(node, |_| Ok(()))?;
                let next = self.ctx.now_ns + self.ctx.sc.tick_ns;
                self.ctx.push(next, event)
            }
            Event::DiskDone {
                node,
                incarnation,
                persist_id,
            } => {
                if self.host(node).incarnation != incarnation || !self.available(node, &event)? {
                    return Ok(());
                }
                let host = self.host_mut(node);
                while host.writes.front().is_some_and(|w| w.0 <= persist_id) {
                    let (_, end, sync) = host.writes.pop_front().expect("front exists");
                    host.disk.completed(end, sync);
                }
                self.input(node, |n| {
                    n.persisted(PersistId(persist_id));
                    Ok(())
                })
            }
            Event::Request { node, client, op } => {
                if !self.available(node, &event)? {
                    return Ok(());
                }
                self.request(node, client, op)
            }
            Event::Response { client, op, reply } => {
                let action = self
                    .ctx
                    .workload
                    .reply(client, op, reply.clone(), self.ctx.now_ns);
                if self.ctx.trace {
                    println!(
                        "{} client {client} op {op} completes: {reply:?}",
                        ms(self.ctx.now_ns)
                    );
                }
                self.client_action(client, action)
            }
            Event::Client { client } => {
                let issue = self.ctx.now_ns + self.ctx.sc.workload.timeout_ns
                    < self.ctx.sc.fault_phase_ns + self.ctx.sc.settle_ns;
                let action = self.ctx.workload.wake(client, self.ctx.now_ns, issue);
                self.client_action(client, action)
            }
            Event::Nemesis => self.nemesis(),
            Event::Restart { node } => {
                if self.host(node).node.is_some() {
                    return Ok(());
                }
                let membership = self.initial_membership();
                self.start_node(node, membership)
            }
            Event::Resume { node } => {
                let now = self.ctx.now_ns;
                let host = self.host_mut(node);
                if host.paused_until.is_some_and(|t| t <= now) {
                    host.paused_until = None;
                }
                // What the NIC landed while the node was paused goes in before anything else.
                if host.node.is_some() && host.paused_until.is_none() && host.ring.has_slots() {
                    return self.input(node, |_| Ok(()));
                }
                Ok(())
            }
        }
    }

    fn client_action(&mut self, client: usize, action: ClientAction) -> Step {
        match action {
            ClientAction::Idle => Ok(()),
            ClientAction::WakeAt(at) => self.ctx.push(at, Event::Client { client }),
            ClientAction::Send {
                node,
                op,
                deadline_ns,
            } => {
                if self.ctx.trace {
                    println!(
                        "{} client {client} op {op} -> n{node}: {:?}",
                        ms(self.ctx.now_ns),
                        self.ctx.workload.request(op)
                    );
                }
                if let Some(delay) = self.ctx.client_link_delay() {
                    let at = self.ctx.now_ns + delay;
                    self.ctx.push(at, Event::Request { node, client, op })?;
                }
                self.ctx.push(deadline_ns, Event::Client { client })
            }
        }
    }

    /// A client request reaches node `id`: proposed or read, registered for the answer before the
    /// node's output is drained (a single-replica commit could answer at once).
    fn request(&mut self, id: NodeId, client: usize, op: u64) -> Step {
        let request = self.ctx.workload.request(op);
        let accepted = self.feed(id, |node| {
            Ok(match request {
                Request::Write(cmd) => match node.propose(&cmd.encode()) {
                    Ok(p) => Ok(p.first),
                    Err(ProposeError::NotLeader { leader }) => Err(Some(leader)),
                    Err(_) => Err(node.leader()),
                },
                Request::Read { mode, .. } => match node.read(op, mode) {
                    Ok(()) => Ok(0),
                    Err(ReadError::NotLeader { leader }) => Err(Some(leader)),
                    Err(_) => Err(node.leader()),
                },
            })
        })?;
        match (accepted, request) {
            (Ok(index), Request::Write(_)) => {
                self.host_mut(id).proposals.insert(index, (client, op));
            }
            (Ok(_), Request::Read { key, .. }) => {
                self.host_mut(id).reads.insert(op, (client, key));
            }
            (Err(leader), _) => self.ctx.reply(client, op, Reply::Refused(leader))?,
        }
        self.drain_and_check(id)
    }

    /// Feeds one input to `id`'s node (after the clock tick every poll iteration starts with),
    /// drains its output and checks the invariants.
    fn input(&mut self, id: NodeId, f: impl FnOnce(&mut Node) -> Step) -> Step {
        self.feed(id, f)?;
        self.drain_and_check(id)
    }

    /// Ticks `id`'s node to the host's clock and feeds it one input.
    fn feed<T>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Node) -> Result<T, String>,
    ) -> Result<T, String> {
        let now = self.ctx.now_ns;
        let trace = self.ctx.trace;
        let host = self.host_mut(id);
        let local = host.clock.local_ns(now);
        let node = host.node.as_mut().expect("caller checked the node runs");
        node.tick(local);
        // The ring first: what landed is stepped before any other input, as the poll loop steps
        // completions before the rest.
        while let Some(slot) = host.ring.pop_slot() {
            let kind = ConsensusKind::new(slot.code).expect("the writer used a codec code");
            let decoded = codec::decode(kind, &slot.bytes)
                .map_err(|e| format!("n{id} cannot decode a ring slot from n{}: {e}", slot.from))?;
            if trace {
                println!(
                    "{} n{id} <= n{} (ring) {}",
                    ms(now),
                    slot.from,
                    describe(&decoded.message)
                );
            }
            node.step(slot.from, decoded.message)
                .map_err(|e| format!("n{id} refused a ring slot from n{}: {e}", slot.from))?;
        }
        f(node)
    }

    /// A one-sided write reaches `to`'s NIC: it lands if `to`'s registration is exactly the grant
    /// it was written under (paused or not), else it fails at the writer.
    fn ring_write_lands(
        &mut self,
        from: NodeId,
        to: NodeId,
        term: u64,
        rkey: u32,
        slot: Slot,
    ) -> Step {
        let now = self.ctx.now_ns;
        let host = self.host_mut(to);
        let landing = match host.node.as_ref() {
            None => None,
            Some(_) => Some(host.ring.land(term, rkey, slot)),
        };
        let paused = host.paused_until.is_some_and(|t| now < t);
        if self.ctx.trace {
            println!(
                "{} n{to} ring write from n{from} (term {term}, rkey {rkey}): {}",
                ms(now),
                landing.map_or("node down".to_owned(), |l| format!("{l:?}"))
            );
        }
        match landing {
            Some(Landing::Landed) => {
                self.ctx.stats.ring.landed += 1;
                let host = self.host(to);
                let receiver_term = host.node.as_ref().expect("landed on a running node").term();
                let grant = host.ring.registration().map(|r| r.grant);
                self.ctx
                    .invariants
                    .ring_landed(to, receiver_term, grant, from, term)?;
                if paused {
                    return Ok(());
                }
                self.input(to, |_| Ok(()))
            }
            refused_or_full => {
                self.ctx.stats.ring.failed += 1;
                if refused_or_full == Some(Landing::Refused) {
                    self.ctx.stats.ring.refused += 1;
                }
                let back = if refused_or_full.is_some() {
                    self.ctx.sc.network.delay_min_ns
                } else {
                    RC_ERROR_NS
                };
                self.ctx.push(
                    now + back,
                    Event::RingWriteFailed {
                        leader: from,
                        follower: to,
                        term,
                        rkey,
                    },
                )
            }
        }
    }

    fn drain_and_check(&mut self, id: NodeId) -> Step {
        let i = self.hosts.iter().position(|h| h.id == id).expect("host");
        drain(&mut self.hosts[i], &mut self.ctx)?;
        self.observe(id)
    }

    fn observe(&mut self, id: NodeId) -> Step {
        let Some(node) = self
            .hosts
            .iter()
            .find(|h| h.id == id)
            .and_then(|h| h.node.as_ref())
        else {
            return Ok(());
        };
        self.ctx.stats.terms = self.ctx.stats.terms.max(node.term());
        self.ctx.invariants.observe(node)
    }

    fn leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter_map(|h| h.node.as_ref())
            .filter(|n| n.role() == Role::Leader)
            .max_by_key(|n| n.term())
            .map(|n| n.id())
    }

    fn member_ids(&self) -> Vec<NodeId> {
        self.hosts.iter().map(|h| h.id).collect()
    }

    // ---- the fault injector --------------------------------------------------------------

    fn nemesis(&mut self) -> Step {
        let now = self.ctx.now_ns;
        if now >= self.ctx.sc.fault_phase_ns {
            return self.settle();
        }
        if self.ctx.sc.figure8 {
            return self.figure8();
        }
        let w = self.ctx.sc.faults;
        let total = w.total();
        let mut roll = self.ctx.nemesis_rng.below(u64::from(total.max(1))) as u32;
        let mut pick = |weight: u32| {
            let hit = roll < weight;
            roll = roll.saturating_sub(weight);
            hit
        };
        let mut note = String::new();
        if total == 0 || pick(w.heal) {
            self.ctx.network.heal();
            note.push_str("heal the network");
        } else if pick(w.partition) {
            let mut ids = self.member_ids();
            shuffle(&mut ids, &mut self.ctx.nemesis_rng);
            let k = self.ctx.nemesis_rng.range(1, ids.len() as u64 - 1) as usize;
            let (a, b) = ids.split_at(k);
            self.ctx.network.partition(a, b);
            let _ = write!(note, "partition {a:?} | {b:?}");
        } else if pick(w.isolate_leader) {
            if let Some(l) = self.leader() {
                let others: Vec<NodeId> =
                    self.member_ids().into_iter().filter(|&i| i != l).collect();
                self.ctx.network.partition(&[l], &others);
                let _ = write!(note, "isolate leader n{l}");
            }
        } else if pick(w.one_way) {
            let ids = self.member_ids();
            for _ in 0..self.ctx.nemesis_rng.range(1, 3) {
                let a = self.ctx.nemesis_rng.pick(&ids);
                let b = self.ctx.nemesis_rng.pick(&ids);
                if a != b {
                    self.ctx.network.cut_one_way(a, b);
                    let _ = write!(note, "cut n{a}->n{b} ");
                }
            }
        } else if pick(w.crash) {
            self.crash_one(&mut note)?;
        } else if pick(w.pause) {
            let ids = self.member_ids();
            let id = match self.leader() {
                Some(l) if self.ctx.nemesis_rng.below(2) == 0 => l,
                _ => self.ctx.nemesis_rng.pick(&ids),
            };
            let max = 2 * self.ctx.sc.election_timeout_max_ns;
            let until = now + self.ctx.nemesis_rng.range(20_000_000, max);
            let host = self.host_mut(id);
            if host.node.is_some() && host.paused_until.is_none() {
                host.paused_until = Some(until);
                self.ctx.push(until, Event::Resume { node: id })?;
                let _ = write!(note, "pause n{id} for {} ms", (until - now) / 1_000_000);
            }
        } else if pick(w.transfer) {
            if let Some(l) = self.leader() {
                let voters: Vec<NodeId> = {
                    let node = self.host(l).node.as_ref().expect("leader runs");
                    node.membership().incoming().voters().iter().collect()
                };
                let to = self.ctx.nemesis_rng.pick(&voters);
                if self.available(l, &Event::Nemesis)? {
                    let mut result = Ok(());
                    self.input(l, |n| {
                        result = n.transfer_leader(to);
                        Ok(())
                    })?;
                    self.ctx.stats.transfers += u64::from(result.is_ok());
                    let _ = write!(note, "transfer leadership n{l} -> n{to}: {result:?}");
                }
            }
        } else if pick(w.membership) {
            self.change_membership(&mut note)?;
        } else if pick(w.churn) {
            if let Some(l) = self.leader() {
                let mut side = vec![l];
                let others: Vec<NodeId> =
                    self.member_ids().into_iter().filter(|&i| i != l).collect();
                if self.ctx.nemesis_rng.below(2) == 0 {
                    side.push(self.ctx.nemesis_rng.pick(&others));
                }
                self.ctx.network.heal();
                let rest: Vec<NodeId> = others.into_iter().filter(|i| !side.contains(i)).collect();
                self.ctx.network.partition(&side, &rest);
                let _ = write!(note, "churn: cut {side:?} from {rest:?}");
            }
        } else if pick(w.slow_disk) {
            let ids = self.member_ids();
            let id = self.ctx.nemesis_rng.pick(&ids);
            let host = self.host_mut(id);
            host.slow_disk = !host.slow_disk;
            let _ = write!(note, "n{id} disk slow: {}", host.slow_disk);
        }
        if self.ctx.trace && !note.is_empty() {
            println!("{} nemesis: {note}", ms(now));
        }
        let next = now + self.ctx.nemesis_delay();
        self.ctx.push(next, Event::Nemesis)
    }

    /// The figure-8 schedule (Raft §5.4.2, figure 8), with random timing:
    /// 1. cut the leader L1 and one follower off: L1's new entries reach only that follower;
    /// 2. once the majority side elected L2, cut L2 off alone the instant it leads, so its entries
    ///    of the newer term stay on it, and reunite the others;
    /// 3. once someone else (typically L1 again, its log is the longest) leads, let it run for a
    ///    few milliseconds — it re-replicates L1's old-term entries to the others one batch at a
    ///    time — then cut it off and let L2 back in: L2's newer last term can win an election and
    ///    overwrite those entries, which is safe only if nobody committed them by counting.
    fn figure8(&mut self) -> Step {
        let now = self.ctx.now_ns;
        let poll_ns = 1_000_000;
        let ids = self.member_ids();
        let mut note = String::new();
        let next = match self.ctx.figure8 {
            Figure8::Start => match self.leader() {
                Some(l1) => {
                    let others: Vec<NodeId> = ids.iter().copied().filter(|&i| i != l1).collect();
                    let buddy = self.ctx.nemesis_rng.pick(&others);
                    let rest: Vec<NodeId> = others.into_iter().filter(|&i| i != buddy).collect();
                    self.ctx.network.heal();
                    self.ctx.network.partition(&[l1, buddy], &rest);
                    let _ = write!(note, "figure 8: cut [{l1}, {buddy}] from {rest:?}");
                    self.ctx.figure8 = Figure8::AwaitL2 {
                        l1,
                        buddy,
                        term: self.host(l1).node.as_ref().map_or(0, Node::term),
                    };
                    now + poll_ns
                }
                None => now + poll_ns,
            },
            // Step 2 happens in `Ctx::leader_elected`, before the new leader's first message.
            Figure8::AwaitL2 { .. } => now + poll_ns,
            Figure8::AwaitL3 { l2, term } => match self.leader() {
                Some(l3) if l3 != l2 && self.term_of(l3) > term => {
                    self.ctx.figure8 = Figure8::CutL3 { l3 };
                    now + self.ctx.nemesis_rng.range(0, 20_000_000)
                }
                _ => now + poll_ns,
            },
            Figure8::CutL3 { l3 } => {
                let others: Vec<NodeId> = ids.iter().copied().filter(|&i| i != l3).collect();
                self.ctx.network.heal();
                self.ctx.network.partition(&[l3], &others);
                let _ = write!(note, "figure 8: cut n{l3} off, the rest reunited");
                self.ctx.figure8 = Figure8::Start;
                now + 2 * self.ctx.sc.election_timeout_max_ns
            }
        };
        if self.ctx.trace && !note.is_empty() {
            println!("{} nemesis: {note}", ms(now));
        }
        self.ctx.push(next, Event::Nemesis)
    }

    fn term_of(&self, id: NodeId) -> u64 {
        self.host(id).node.as_ref().map_or(0, Node::term)
    }

    fn crash_one(&mut self, note: &mut String) -> Step {
        let ids = self.member_ids();
        let id = self.ctx.nemesis_rng.pick(&ids);
        if self.host(id).node.is_none() {
            return Ok(());
        }
        if self.ctx.sc.memory_mode && !self.memory_crash_allowed(id) {
            let _ = write!(
                note,
                "n{id} not crashed: memory mode needs every other node caught up"
            );
            return Ok(());
        }
        let fate =
            self.ctx
                .nemesis_rng
                .pick(&[TailFate::Lost, TailFate::Torn, TailFate::Corrupted]);
        let down = self
            .ctx
            .nemesis_rng
            .range(self.ctx.sc.down_ns.0, self.ctx.sc.down_ns.1);
        let memory = self.ctx.sc.memory_mode;
        let (rng, hosts) = (&mut self.ctx.disk_rng, &mut self.hosts);
        let host = hosts.iter_mut().find(|h| h.id == id).expect("host");
        host.node = None;
        host.incarnation += 1;
        host.disk.crash(fate, memory, rng);
        host.writes.clear();
        host.proposals.clear();
        host.reads.clear();
        host.received.clear();
        host.paused_until = None;
        host.disk_free_ns = 0;
        host.ring.crash();
        self.ctx.invariants.restarted(id);
        self.ctx.stats.crashes += 1;
        let _ = write!(
            note,
            "crash n{id} ({fate:?} tail), down {} ms",
            down / 1_000_000
        );
        let at = self.ctx.now_ns + down;
        self.ctx.push(at, Event::Restart { node: id })
    }

    /// Replicated memory survives while a quorum lives: a node may lose its memory only while every
    /// other member runs and holds everything committed so far in its log (the deployment rule of
    /// the `memory` mode: one node at a time, and only once the others have caught up). Holding
    /// means the committed entry itself — same index and term, so by log matching the whole prefix
    /// — not merely as many entries: a deposed leader's longer log of an older term does not count
    /// (seed 18978 crashed a node while the only other copy of the last committed entry was on the
    /// leader, and the two survivors elected the deposed one).
    fn memory_crash_allowed(&self, id: NodeId) -> bool {
        let committed = self.ctx.invariants.max_committed();
        let committed_term = self.ctx.invariants.committed_term(committed);
        let Some(membership) = self
            .leader()
            .and_then(|l| self.host(l).node.as_ref())
            .map(|n| *n.membership())
        else {
            return false;
        };
        self.hosts
            .iter()
            .filter(|h| h.id != id && membership.is_member(h.id))
            .all(|h| {
                h.node.as_ref().is_some_and(|n| {
                    n.log().snapshot().index >= committed
                        || n.stable_index() >= committed
                            && n.log().term(committed) == committed_term
                })
            })
    }

    fn change_membership(&mut self, note: &mut String) -> Step {
        let Some(l) = self.leader() else {
            return Ok(());
        };
        let current = *self
            .host(l)
            .node
            .as_ref()
            .expect("leader runs")
            .membership();
        if current.is_joint() {
            return Ok(());
        }
        let mut voters: Vec<NodeId> = current.incoming().voters().iter().collect();
        let mut learners: Vec<NodeId> = current.learners().iter().collect();
        let outsiders: Vec<NodeId> = self
            .member_ids()
            .into_iter()
            .filter(|&i| !current.is_member(i))
            .collect();
        let rng = &mut self.ctx.nemesis_rng;
        match rng.below(5) {
            0 if !outsiders.is_empty() && learners.len() < MAX_LEARNERS => {
                learners.push(rng.pick(&outsiders));
            }
            1 if !learners.is_empty() && voters.len() < MAX_VOTERS => {
                let x = rng.pick(&learners);
                learners.retain(|&i| i != x);
                voters.push(x);
            }
            2 if voters.len() > 3 => {
                let x = rng.pick(&voters);
                voters.retain(|&i| i != x);
                learners.push(x);
            }
            3 if voters.len() > 3 => {
                let x = rng.pick(&voters);
                voters.retain(|&i| i != x);
            }
            4 if !learners.is_empty() => {
                let x = rng.pick(&learners);
                learners.retain(|&i| i != x);
            }
            _ => return Ok(()),
        }
        let n = voters.len();
        let (q1, q2) = if rng.below(2) == 0 {
            (n / 2 + 1, n / 2 + 1)
        } else {
            let q1 = rng.range(n as u64 / 2 + 1, n as u64) as usize;
            (q1, rng.range((n - q1 + 1) as u64, n as u64) as usize)
        };
        let target = VoterGroup::new(&voters, q1, q2)
            .and_then(|g| Membership::new(g, &learners))
            .map_err(|e| format!("the simulator built an invalid membership: {e}"))?;
        if !self.available(l, &Event::Nemesis)? {
            return Ok(());
        }
        let mut result = Ok(());
        self.input(l, |node| {
            result = node.propose_conf_change(target).map(|_| ());
            Ok(())
        })?;
        self.ctx.stats.conf_changes += u64::from(result.is_ok());
        let _ = write!(
            note,
            "n{l} proposes voters {voters:?} (Q1 {q1}, Q2 {q2}) learners {learners:?}: {result:?}"
        );
        Ok(())
    }

    /// End of the fault phase: heal everything and bring every node back.
    fn settle(&mut self) -> Step {
        if self.ctx.settled_at.is_some() {
            return Ok(());
        }
        let now = self.ctx.now_ns;
        self.ctx.settled_at = Some(now);
        self.ctx.committed_at_settle = self.ctx.invariants.max_committed();
        self.ctx.network.heal();
        // Liveness is judged on a clean network: no loss, duplication or long delays either.
        let f = self.ctx.network.faults;
        self.ctx.network.faults = NetworkFaults::none(f.delay_min_ns, f.delay_jitter_ns);
        let down: Vec<NodeId> = self
            .hosts
            .iter_mut()
            .filter_map(|h| {
                h.paused_until = None;
                h.slow_disk = false;
                h.node.is_none().then_some(h.id)
            })
            .collect();
        if self.ctx.trace {
            println!(
                "{} nemesis: settle (heal, resume, restart {down:?})",
                ms(now)
            );
        }
        for id in down {
            self.ctx.push(now, Event::Restart { node: id })?;
        }
        Ok(())
    }

    /// After the run: liveness (the healed cluster served a client) and linearizability.
    fn finish(&mut self) -> Step {
        let settled = self.ctx.settled_at.unwrap_or(self.ctx.sc.fault_phase_ns);
        self.ctx.workload.abandon_inflight();
        let history = self.ctx.workload.history();
        let served = history
            .ops()
            .iter()
            .any(|op| op.invoke_ns >= settled && op.outcome == Outcome::Ok);
        self.ctx.stats.ops_ok = history
            .ops()
            .iter()
            .filter(|op| op.outcome == Outcome::Ok)
            .count() as u64;
        self.ctx.stats.ops_unknown = history
            .ops()
            .iter()
            .filter(|op| op.outcome == Outcome::Unknown)
            .count() as u64;
        match lincheck::check(history, &LINCHECK_LIMITS) {
            Verdict::Linearizable => {}
            v => return Err(format!("client history: {v}")),
        }
        if let Some(l) = self.leader() {
            let membership = *self
                .host(l)
                .node
                .as_ref()
                .expect("leader runs")
                .membership();
            let target = self.ctx.committed_at_settle;
            for h in &self.hosts {
                let Some(n) = h.node.as_ref().filter(|_| membership.is_member(h.id)) else {
                    continue;
                };
                if n.commit_index() < target {
                    return Err(format!(
                        "liveness: member n{} is stuck at commit {} (stable {}), below the {target} \
                         committed before the faults healed",
                        h.id,
                        n.commit_index(),
                        n.stable_index()
                    ));
                }
            }
        }
        if !served {
            return Err(format!(
                "liveness: no client operation succeeded in the {} ms after every fault healed",
                self.ctx.sc.settle_ns / 1_000_000
            ));
        }
        Ok(())
    }
}

impl Ctx {
    fn push(&mut self, at_ns: u64, event: Event) -> Step {
        self.events.push(at_ns, event).map_err(|full| {
            format!(
                "event queue full ({} events pending): a message flood",
                full.cap
            )
        })
    }

    /// Step 2 of the figure-8 schedule: the new leader of the majority side is cut off before its
    /// first message leaves, so the entry of its term stays on it alone.
    fn leader_elected(&mut self, id: NodeId, term: u64) {
        let Figure8::AwaitL2 {
            l1,
            buddy,
            term: old,
        } = self.figure8
        else {
            return;
        };
        if id == l1 || id == buddy || term <= old || self.settled_at.is_some() {
            return;
        }
        let others: Vec<NodeId> = self.ids.iter().copied().filter(|&i| i != id).collect();
        self.network.heal();
        self.network.partition(&[id], &others);
        if self.trace {
            println!(
                "{} nemesis: figure 8: cut new leader n{id} off alone",
                ms(self.now_ns)
            );
        }
        self.figure8 = Figure8::AwaitL3 { l2: id, term };
    }

    fn nemesis_delay(&mut self) -> u64 {
        let (lo, hi) = self.sc.nemesis_every_ns;
        self.nemesis_rng.range(lo, hi)
    }

    fn client_link_delay(&mut self) -> Option<u64> {
        if self.link_rng.chance_ppm(self.sc.client_drop_ppm) {
            return None;
        }
        Some(self.link_rng.range(0, self.sc.client_delay_max_ns))
    }

    fn reply(&mut self, client: usize, op: u64, reply: Reply) -> Step {
        match self.client_link_delay() {
            Some(delay) => {
                let at = self.now_ns + delay;
                self.push(at, Event::Response { client, op, reply })
            }
            None => Ok(()),
        }
    }

    /// Sends `registration` to the node it grants, over the message network.
    fn send_grant(&mut self, from: NodeId, registration: Registration) -> Step {
        let to = registration.grant.leader;
        self.over_network(from, to, || Event::RingGrant {
            from,
            to,
            term: registration.grant.term,
            rkey: registration.rkey,
        })
    }

    /// Posts a one-sided write of an Append of `term` into `to`'s ring with `rkey`.
    fn ring_write(
        &mut self,
        from: NodeId,
        to: NodeId,
        term: u64,
        rkey: u32,
        code: u8,
        bytes: &[u8],
    ) -> Step {
        self.stats.ring.writes += 1;
        let failed = Event::RingWriteFailed {
            leader: from,
            follower: to,
            term,
            rkey,
        };
        let Some(delay) = self.network.rc_write(from, to, RC_RETRANSMIT_NS) else {
            self.stats.ring.failed += 1;
            return self.push(self.now_ns + RC_ERROR_NS, failed);
        };
        let link = self.ring_links.entry((from, to)).or_insert(0);
        let at = (self.now_ns + delay).max(*link);
        *link = at;
        if self.network.is_cut(to, from) {
            // The write lands, but the NIC's acknowledgements never come back: it completes in
            // error at the writer all the same.
            self.push(self.now_ns + RC_ERROR_NS, failed)?;
        }
        self.push(
            at,
            Event::RingWrite {
                from,
                to,
                term,
                rkey,
                code,
                bytes: bytes.to_vec(),
            },
        )
    }

    fn send(&mut self, from: NodeId, to: NodeId, code: u8, bytes: &[u8]) -> Step {
        self.over_network(from, to, || Event::Deliver {
            from,
            to,
            code,
            bytes: bytes.to_vec(),
        })
    }

    /// Schedules what `event` makes at each arrival the network decides for one message
    /// `from → to` (none when lost, two when duplicated).
    fn over_network(&mut self, from: NodeId, to: NodeId, event: impl Fn() -> Event) -> Step {
        let d = self.network.send(from, to);
        for delay in d.delays_ns.into_iter().flatten() {
            let at = self.now_ns + delay;
            self.push(at, event())?;
        }
        Ok(())
    }
}

/// Drains `host`'s node: send, persist, apply, answer reads — the host side of the `Ready` contract.
fn drain(host: &mut Host, ctx: &mut Ctx) -> Step {
    let id = host.id;
    for _ in 0..MAX_READY_ROUNDS {
        // The rule sees the state the step left before any message of it leaves.
        update_permission(host, ctx)?;
        let Host {
            node,
            disk,
            kv,
            kv_index,
            snapshot,
            received,
            writes,
            disk_free_ns,
            slow_disk,
            proposals,
            reads,
            incarnation,
            ring,
            ..
        } = host;
        let node = node.as_mut().expect("drained nodes run");
        if !node.has_ready() {
            break;
        }
        let term = node.term();
        let leader = node.leader();
        let ready = node.ready();
        if let Some(s) = ready.soft_state() {
            if ctx.trace {
                println!(
                    "{} n{id} is {:?} in term {} (leader {:?})",
                    ms(ctx.now_ns),
                    s.role,
                    s.term,
                    s.leader
                );
            }
            if s.role == Role::Leader && ctx.sc.figure8 {
                ctx.leader_elected(id, s.term);
            }
        }
        for env in ready.messages() {
            let data: &[u8] = match &env.message {
                Message::InstallSnapshot(s) => match snapshot.as_ref() {
                    Some(stored) => {
                        assert_eq!(
                            stored.meta, s.meta,
                            "the host keeps the bytes of its log's snapshot"
                        );
                        &stored.data
                    }
                    None => {
                        assert_eq!(s.meta.index, 0, "a snapshot past 0 has bytes");
                        &[]
                    }
                },
                _ => &[],
            };
            let (kind, len) = codec::encode(&env.message, ready.log(), data, &mut ctx.buf)
                .map_err(|e| format!("n{id} cannot encode a message: {e}"))?;
            let bytes = ctx.buf[..len].to_vec();
            let ring_key = match &env.message {
                Message::Append(a) if ctx.sc.one_sided => {
                    ring.write_key(env.to, a.term).map(|rkey| (a.term, rkey))
                }
                _ => None,
            };
            match ring_key {
                Some((term, rkey)) => {
                    ctx.ring_write(id, env.to, term, rkey, kind.code(), &bytes)?
                }
                None => ctx.send(id, env.to, kind.code(), &bytes)?,
            }
        }
        if let Some(p) = ready.persist().copied() {
            let install = match p.snapshot {
                Some(meta) => {
                    let stored = received
                        .iter()
                        .rev()
                        .find(|s| s.meta == meta)
                        .cloned()
                        .ok_or_else(|| {
                            format!("n{id} must install snapshot {meta:?} it never received")
                        })?;
                    *kv = Kv::restore(&stored.data);
                    *kv_index = meta.index;
                    proposals.retain(|&i, _| i > meta.index);
                    *snapshot = Some(stored.clone());
                    ctx.stats.snapshots_installed += 1;
                    Some(stored)
                }
                None => None,
            };
            if let Some(from) = p.truncate_from {
                ctx.invariants.truncated(id, from);
            }
            let end = disk.write(
                install.as_ref().map(|s| (&s.meta, &s.data[..])),
                p.truncate_from,
                ready.persist_entries(),
                p.hard_state,
            );
            let (lo, hi) = if *slow_disk {
                ctx.sc.slow_disk_latency_ns
            } else {
                ctx.sc.disk_latency_ns
            };
            let done = (*disk_free_ns).max(ctx.now_ns) + ctx.disk_rng.range(lo, hi);
            *disk_free_ns = done;
            writes.push_back((p.id.0, end, p.must_sync));
            ctx.push(
                done,
                Event::DiskDone {
                    node: id,
                    incarnation: *incarnation,
                    persist_id: p.id.0,
                },
            )?;
        }
        let mut last = None;
        for e in ready.committed() {
            ctx.invariants.applied(id, e, term)?;
            let result = match e.kind {
                EntryKind::Normal => {
                    let cmd = Command::decode(&e.payload)
                        .ok_or_else(|| format!("n{id} applies a payload no client proposed"))?;
                    Some((cmd.op, kv.apply(&cmd)))
                }
                EntryKind::Noop | EntryKind::Config => None,
            };
            *kv_index = e.index;
            if let Some((client, op)) = proposals.remove(&e.index) {
                let reply = match result {
                    Some((applied, wrote)) if applied == op => Reply::Written(wrote),
                    _ => Reply::Refused(leader),
                };
                ctx.reply(client, op, reply)?;
            }
            last = Some(e.index);
        }
        for r in ready.reads() {
            let Some((client, key)) = reads.remove(&r.id) else {
                continue;
            };
            let reply = match r.outcome {
                Ok(index) => {
                    assert!(
                        *kv_index >= index,
                        "a read released at {index} before the state machine reached it ({kv_index})"
                    );
                    Reply::Read(kv.get(key))
                }
                Err(_) => Reply::Refused(leader),
            };
            ctx.reply(client, r.id, reply)?;
        }
        node.advance();
        if let Some(index) = last {
            node.applied(index);
            if index - node.log().snapshot().index >= ctx.sc.compact_every {
                let meta = node
                    .compact(index)
                    .map_err(|e| format!("n{id} cannot compact at applied {index}: {e}"))?;
                let stored = StoredSnapshot {
                    meta,
                    data: kv.snapshot(),
                };
                disk.save_snapshot(stored.clone());
                *snapshot = Some(stored);
            }
        }
    }
    update_permission(host, ctx)
}

/// Runs the ring permission rule on `host`'s node and acts on its decision: the registration
/// follows it, and a new grant is sent to its holder in one-sided seeds.
fn update_permission(host: &mut Host, ctx: &mut Ctx) -> Step {
    let Some(node) = host.node.as_ref() else {
        return Ok(());
    };
    let (change, announce) = host.ring.update(PermissionInput::of(node), ctx.now_ns);
    match change {
        GrantChange::Unchanged => return Ok(()),
        GrantChange::Grant { replaced, .. } => {
            ctx.stats.ring.grants += 1;
            ctx.stats.ring.revocations += u64::from(replaced.is_some());
        }
        GrantChange::Revoke { .. } => ctx.stats.ring.revocations += 1,
    }
    if ctx.trace {
        println!("{} n{} ring: {change:?}", ms(ctx.now_ns), host.id);
    }
    match announce {
        Some(registration) if ctx.sc.one_sided => ctx.send_grant(host.id, registration),
        _ => Ok(()),
    }
}

fn shuffle(ids: &mut [NodeId], rng: &mut Rng) {
    for i in (1..ids.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ids.swap(i, j);
    }
}

/// Virtual time as milliseconds with microseconds, for traces.
fn ms(ns: u64) -> String {
    format!("{:>6}.{:03} ms", ns / 1_000_000, (ns / 1_000) % 1_000)
}

/// A one-line description of a received message.
fn describe(m: &InMessage<'_>) -> String {
    match m {
        Message::Append(a) => format!(
            "Append term {} prev {}@{} commit {} seq {} entries {}",
            a.term,
            a.prev_index,
            a.prev_term,
            a.commit,
            a.seq,
            entries(&a.entries)
        ),
        Message::AppendResponse(r) => format!(
            "AppendResponse term {} index {} reject {} hint {}@{} seq {}",
            r.term, r.index, r.reject, r.hint_index, r.hint_term, r.seq
        ),
        Message::Vote(v) => format!(
            "{} term {} last {}@{}{}",
            if v.pre_vote { "PreVote" } else { "Vote" },
            v.term,
            v.last_index,
            v.last_term,
            if v.transfer { " (transfer)" } else { "" }
        ),
        Message::VoteResponse(r) => format!(
            "{}Response term {} granted {}",
            if r.pre_vote { "PreVote" } else { "Vote" },
            r.term,
            r.granted
        ),
        Message::InstallSnapshot(s) => format!(
            "InstallSnapshot term {} at {}@{}",
            s.term, s.meta.index, s.meta.term
        ),
        Message::TimeoutNow(t) => format!("TimeoutNow term {}", t.term),
    }
}

fn entries(view: &EntriesView<'_>) -> String {
    let mut out = String::from("[");
    for (i, e) in view.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match e.kind {
            EntryKind::Normal => {
                let _ = write!(out, "t{}:", e.term);
                match Command::decode(e.payload) {
                    Some(c) => {
                        let _ = write!(out, "op{}", c.op);
                    }
                    None => out.push('?'),
                }
            }
            EntryKind::Noop => {
                let _ = write!(out, "t{}:noop", e.term);
            }
            EntryKind::Config => {
                let _ = write!(out, "t{}:config", e.term);
            }
        }
    }
    out.push(']');
    out
}
