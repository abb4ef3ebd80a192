//! An allocation-free in-process cluster: nodes exchange encoded frames through a fixed pool of
//! buffers, the "disk" acknowledges every write at once, and the state machine only counts entries.
//! Shared by tests/consensus_alloc.rs and benches/consensus.rs (through `#[path]`).
#![allow(dead_code)]

use std::collections::VecDeque;

use aurora::consensus::codec;
use aurora::consensus::{
    EntryKind, Membership, Node, NodeConfig, NodeId, Restored, Role, VoterGroup,
};
use aurora::wire::ConsensusKind;

const SLAB_BYTES: usize = 64 * 1024;
const SLABS: usize = 512;
const MS: u64 = 1_000_000;

pub struct Loopback {
    pub nodes: Vec<Node>,
    slabs: Vec<Vec<u8>>,
    free: Vec<usize>,
    queue: VecDeque<(NodeId, NodeId, ConsensusKind, usize, usize)>,
    pub now_ns: u64,
    /// Normal entries applied, per node.
    pub applied_entries: Vec<u64>,
    payload: Vec<u8>,
}

impl Loopback {
    /// `voters` nodes with majority quorums; batches up to `max_batch_entries` per append.
    pub fn new(voters: u64, max_batch_entries: usize) -> Self {
        let ids: Vec<NodeId> = (1..=voters).collect();
        let membership =
            Membership::new(VoterGroup::majority(&ids).expect("voters"), &[]).expect("membership");
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut cfg = NodeConfig::new(id, membership);
                cfg.election_timeout_min_ns = 100 * MS;
                cfg.election_timeout_max_ns = 200 * MS;
                cfg.heartbeat_interval_ns = 20 * MS;
                cfg.max_batch_entries = max_batch_entries;
                Node::new(cfg, Restored::default(), 0, id).expect("node")
            })
            .collect();
        Self {
            nodes,
            slabs: (0..SLABS).map(|_| vec![0u8; SLAB_BYTES]).collect(),
            free: (0..SLABS).collect(),
            queue: VecDeque::with_capacity(SLABS),
            now_ns: 0,
            applied_entries: vec![0; voters as usize],
            payload: vec![0xAB; 16],
        }
    }

    /// Ticks until a leader has committed an entry of its term.
    pub fn elect(&mut self) -> NodeId {
        for _ in 0..10_000 {
            self.tick(MS);
            if let Some(leader) = self.nodes.iter().find(|n| n.role() == Role::Leader) {
                if leader.log().term(leader.commit_index()) == Some(leader.term()) {
                    return leader.id();
                }
            }
        }
        panic!("no leader elected");
    }

    pub fn tick(&mut self, delta_ns: u64) {
        self.now_ns += delta_ns;
        for n in &mut self.nodes {
            n.tick(self.now_ns);
        }
        self.pump();
    }

    /// Proposes `batch` entries of 16 bytes at `leader`.
    pub fn propose(&mut self, leader: NodeId, batch: usize) {
        let payload = &self.payload[..];
        self.nodes[(leader - 1) as usize]
            .propose_batch(std::iter::repeat_n(payload, batch))
            .expect("leader accepts");
    }

    /// Drains every node and delivers every message until the cluster is quiet.
    pub fn pump(&mut self) {
        for _ in 0..100_000 {
            for i in 0..self.nodes.len() {
                self.process(i);
            }
            if self.queue.is_empty() {
                return;
            }
            while let Some((from, to, kind, slab, len)) = self.queue.pop_front() {
                let decoded = codec::decode(kind, &self.slabs[slab][..len]).expect("valid frame");
                self.nodes[(to - 1) as usize]
                    .step(from, decoded.message)
                    .expect("step");
                self.free.push(slab);
            }
        }
        panic!("cluster never went quiet");
    }

    fn process(&mut self, i: usize) {
        let id = self.nodes[i].id();
        while self.nodes[i].has_ready() {
            let node = &mut self.nodes[i];
            let ready = node.ready();
            for env in ready.messages() {
                let slab = self.free.pop().expect("slab pool sized for the window");
                let (kind, len) =
                    codec::encode(&env.message, ready.log(), &[], &mut self.slabs[slab])
                        .expect("encode");
                self.queue.push_back((id, env.to, kind, slab, len));
            }
            let persist = ready.persist().map(|p| p.id);
            let mut last = None;
            for e in ready.committed() {
                if e.kind == EntryKind::Normal {
                    self.applied_entries[i] += 1;
                }
                last = Some(e.index);
            }
            node.advance();
            if let Some(index) = last {
                node.applied(index);
            }
            if let Some(p) = persist {
                node.persisted(p);
            }
        }
    }

    /// Every node drops applied entries from memory, as a host does after a snapshot.
    pub fn compact(&mut self) {
        for n in &mut self.nodes {
            let applied = n.applied_index();
            if applied > n.log().snapshot().index {
                n.compact(applied).expect("applied index is compactable");
            }
        }
    }
}
