//! A tiny deterministic cluster for consensus tests: nodes exchange encoded frames through an
//! in-order queue, the "disk" acknowledges writes at once unless a node's persistence is paused, and
//! applied entries are recorded per node.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};

use aurora::consensus::codec;
use aurora::consensus::{
    Entry, EntryKind, LogIndex, Membership, Node, NodeConfig, NodeId, PersistId, ReadState,
    Restored, Role, Term, VoterGroup,
};

pub const MS: u64 = 1_000_000;

pub fn config(id: NodeId, membership: Membership) -> NodeConfig {
    let mut cfg = NodeConfig::new(id, membership);
    cfg.election_timeout_min_ns = 100 * MS;
    cfg.election_timeout_max_ns = 200 * MS;
    cfg.heartbeat_interval_ns = 20 * MS;
    cfg.max_clock_drift_ns = 5 * MS;
    cfg
}

pub fn majority(voters: &[NodeId], learners: &[NodeId]) -> Membership {
    Membership::new(
        VoterGroup::majority(voters).expect("valid voters"),
        learners,
    )
    .expect("valid membership")
}

pub struct Applied {
    pub index: LogIndex,
    pub term: Term,
    pub kind: EntryKind,
    pub payload: Vec<u8>,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub now_ns: u64,
    queue: VecDeque<(NodeId, NodeId, aurora::wire::ConsensusKind, Vec<u8>)>,
    /// Directed links that drop every message.
    pub cut: HashSet<(NodeId, NodeId)>,
    pub applied: Vec<Vec<Applied>>,
    pub reads: Vec<Vec<ReadState>>,
    /// Nodes whose writes are not acknowledged until released.
    pub paused_disk: HashSet<NodeId>,
    pending_persist: Vec<(NodeId, PersistId)>,
    /// Snapshot bytes per node (the tests' state machine is the applied list; bytes are a tag).
    buf: Vec<u8>,
}

impl Cluster {
    /// Nodes `1..=voters` vote; `voters+1..=voters+learners` learn.
    pub fn new(voters: u64, learners: u64) -> Self {
        let voter_ids: Vec<NodeId> = (1..=voters).collect();
        let learner_ids: Vec<NodeId> = (voters + 1..=voters + learners).collect();
        let membership = majority(&voter_ids, &learner_ids);
        Self::with(voters + learners, |id| config(id, membership))
    }

    pub fn with(count: u64, cfg: impl Fn(NodeId) -> NodeConfig) -> Self {
        let nodes: Vec<Node> = (1..=count)
            .map(|id| Node::new(cfg(id), Restored::default(), 0, id * 7919).expect("valid node"))
            .collect();
        let n = nodes.len();
        Self {
            nodes,
            now_ns: 0,
            queue: VecDeque::new(),
            cut: HashSet::new(),
            applied: (0..n).map(|_| Vec::new()).collect(),
            reads: (0..n).map(|_| Vec::new()).collect(),
            paused_disk: HashSet::new(),
            pending_persist: Vec::new(),
            buf: vec![0; 4 << 20],
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.role() == Role::Leader)
            .map(|n| n.id())
            .collect()
    }

    pub fn leader(&self) -> Option<NodeId> {
        let leaders = self.leaders();
        // Several nodes may believe they lead in different terms; the highest term wins.
        leaders.into_iter().max_by_key(|&id| self.node(id).term())
    }

    /// Cuts every link between `id` and the others, both ways.
    pub fn isolate(&mut self, id: NodeId) {
        for other in 1..=self.nodes.len() as u64 {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Drains one node's Ready: queues messages, persists (unless paused), applies, records reads.
    pub fn process(&mut self, id: NodeId) {
        let i = (id - 1) as usize;
        for _ in 0..8 {
            if !self.nodes[i].has_ready() {
                break;
            }
            let node = &mut self.nodes[i];
            let ready = node.ready();
            for env in ready.messages() {
                let (kind, len) =
                    codec::encode(&env.message, ready.log(), b"snapshot", &mut self.buf)
                        .expect("encode");
                if !self.cut.contains(&(id, env.to)) {
                    self.queue
                        .push_back((id, env.to, kind, self.buf[..len].to_vec()));
                }
            }
            let persist = ready.persist().copied();
            let mut last_applied = None;
            for e in ready.committed() {
                self.applied[i].push(Applied {
                    index: e.index,
                    term: e.term,
                    kind: e.kind,
                    payload: e.payload.clone(),
                });
                last_applied = Some(e.index);
            }
            self.reads[i].extend_from_slice(ready.reads());
            node.advance();
            if let Some(index) = last_applied {
                node.applied(index);
            }
            if let Some(p) = persist {
                if self.paused_disk.contains(&id) {
                    self.pending_persist.push((id, p.id));
                } else {
                    node.persisted(p.id);
                }
            }
        }
    }

    /// Acknowledges every write `id` issued while its disk was paused.
    pub fn release_disk(&mut self, id: NodeId) {
        self.paused_disk.remove(&id);
        let mut writes = Vec::new();
        self.pending_persist.retain(|&(n, p)| {
            if n == id {
                writes.push(p);
            }
            n != id
        });
        if let Some(&last) = writes.iter().max() {
            self.node_mut(id).persisted(last);
        }
    }

    pub fn process_all(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.process(id);
        }
    }

    /// Delivers queued messages (and whatever they cause) until the network is quiet.
    pub fn deliver(&mut self) {
        self.deliver_until(|_| false);
    }

    /// Delivers one message at a time until the network is quiet or `stop` holds; returns whether
    /// `stop` held.
    pub fn deliver_until(&mut self, mut stop: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..100_000 {
            self.process_all();
            if stop(self) {
                return true;
            }
            let Some((from, to, kind, bytes)) = self.queue.pop_front() else {
                return false;
            };
            if self.cut.contains(&(from, to)) {
                continue;
            }
            let decoded = codec::decode(kind, &bytes).expect("decode");
            let _ = self.node_mut(to).step(from, decoded.message);
            self.process(to);
        }
        panic!("network never went quiet");
    }

    /// Advances every clock by `delta_ns`, then delivers.
    pub fn tick(&mut self, delta_ns: u64) {
        self.tick_until(delta_ns, |_| false);
    }

    /// Advances every clock by `delta_ns`, then delivers until quiet or `stop` holds.
    pub fn tick_until(&mut self, delta_ns: u64, stop: impl FnMut(&Cluster) -> bool) -> bool {
        self.now_ns += delta_ns;
        let now = self.now_ns;
        for n in &mut self.nodes {
            n.tick(now);
        }
        self.deliver_until(stop)
    }

    /// Ticks in 1 ms steps until `cond` holds (at most `max_ms` steps).
    pub fn run_until(&mut self, max_ms: u64, mut cond: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..max_ms {
            if cond(self) {
                return true;
            }
            self.tick(MS);
        }
        cond(self)
    }

    pub fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.tick(MS);
        }
    }

    /// Runs until a leader exists and has committed an entry of its term; returns it.
    pub fn elect(&mut self) -> NodeId {
        let ok = self.run_until(5_000, |c| {
            c.leader().is_some_and(|l| {
                let n = c.node(l);
                n.log().term(n.commit_index()) == Some(n.term())
            })
        });
        assert!(ok, "no leader within 5 s");
        self.leader().expect("leader exists")
    }

    pub fn applied_normal(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied[(id - 1) as usize]
            .iter()
            .filter(|a| a.kind == EntryKind::Normal)
            .map(|a| a.payload.clone())
            .collect()
    }
}

/// An entry for `Restored` logs.
pub fn entry(index: LogIndex, term: Term, payload: &[u8]) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        payload: payload.to_vec(),
    }
}
