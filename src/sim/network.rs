//! The simulated network between consensus nodes: per-message drop, duplication, delay (which
//! reorders) and rare long delays (stale messages), plus directed link cuts that make symmetric and
//! one-way partitions.
//!
//! Frames are the real encoded bytes ([`codec::encode`](crate::consensus::codec::encode)), in the
//! manner of the `mem` transport: delivery is in-process, deterministic and decoded on arrival.

use std::collections::BTreeSet;

use super::rng::Rng;
use crate::consensus::NodeId;

/// Per-message fault rates and delays of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkFaults {
    pub drop_ppm: u32,
    pub duplicate_ppm: u32,
    /// Every message takes `delay_min_ns` plus a uniform jitter up to `delay_jitter_ns`; a jitter
    /// larger than the gap between two sends reorders them.
    pub delay_min_ns: u64,
    pub delay_jitter_ns: u64,
    /// Probability of a long delay (up to `long_delay_max_ns`): a message that arrives terms later.
    pub long_delay_ppm: u32,
    pub long_delay_max_ns: u64,
}

impl NetworkFaults {
    /// A clean LAN: no loss, no duplication, small delays.
    pub fn none(delay_min_ns: u64, delay_jitter_ns: u64) -> Self {
        Self {
            drop_ppm: 0,
            duplicate_ppm: 0,
            delay_min_ns,
            delay_jitter_ns,
            long_delay_ppm: 0,
            long_delay_max_ns: 0,
        }
    }
}

/// The links and their faults.
#[derive(Debug)]
pub struct Network {
    pub faults: NetworkFaults,
    /// Directed links `(from, to)` that lose every message.
    cut: BTreeSet<(NodeId, NodeId)>,
    rng: Rng,
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

/// Where copies of one message go: up to two arrival delays (two when duplicated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deliveries {
    pub delays_ns: [Option<u64>; 2],
}

impl Network {
    pub fn new(faults: NetworkFaults, rng: Rng) -> Self {
        Self {
            faults,
            cut: BTreeSet::new(),
            rng,
            sent: 0,
            dropped: 0,
            duplicated: 0,
        }
    }

    /// Decides the fate of one message from `from` to `to`.
    pub fn send(&mut self, from: NodeId, to: NodeId) -> Deliveries {
        self.sent += 1;
        let mut out = Deliveries {
            delays_ns: [None, None],
        };
        if self.cut.contains(&(from, to)) || self.rng.chance_ppm(self.faults.drop_ppm) {
            self.dropped += 1;
            return out;
        }
        out.delays_ns[0] = Some(self.delay());
        if self.rng.chance_ppm(self.faults.duplicate_ppm) {
            self.duplicated += 1;
            out.delays_ns[1] = Some(self.delay());
        }
        out
    }

    /// The fate of one RDMA write on the reliable connection `from → to`: `None` when the link is
    /// cut (the write completes in error once the NIC's retries run out), else its arrival delay. A
    /// lost packet is retransmitted by the NIC, costing `retransmit_ns`; RC never duplicates.
    pub fn rc_write(&mut self, from: NodeId, to: NodeId, retransmit_ns: u64) -> Option<u64> {
        if self.cut.contains(&(from, to)) {
            return None;
        }
        let lost = self.rng.chance_ppm(self.faults.drop_ppm);
        Some(self.delay() + if lost { retransmit_ns } else { 0 })
    }

    fn delay(&mut self) -> u64 {
        let f = self.faults;
        if f.long_delay_max_ns > 0 && self.rng.chance_ppm(f.long_delay_ppm) {
            return f.delay_min_ns + self.rng.range(0, f.long_delay_max_ns);
        }
        f.delay_min_ns + self.rng.range(0, f.delay_jitter_ns)
    }

    /// Whether the link `from → to` is cut.
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Cuts `from → to` (one way).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Splits `side` from `others` both ways.
    pub fn partition(&mut self, side: &[NodeId], others: &[NodeId]) {
        for &a in side {
            for &b in others {
                if a != b {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn cut_links(&self) -> usize {
        self.cut.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_links_drop_and_clean_links_deliver_once() {
        let mut net = Network::new(NetworkFaults::none(100, 50), Rng::new(1));
        net.cut_one_way(1, 2);
        assert_eq!(net.send(1, 2).delays_ns, [None, None]);
        let d = net.send(2, 1).delays_ns;
        assert!(d[0].is_some_and(|ns| (100..=150).contains(&ns)) && d[1].is_none());
        net.partition(&[3], &[1, 2]);
        assert!(net.is_cut(3, 1) && net.is_cut(2, 3));
        net.heal();
        assert_eq!(net.cut_links(), 0);
    }

    #[test]
    fn rc_writes_fail_only_on_a_cut_link_and_pay_for_losses_with_delay() {
        let mut faults = NetworkFaults::none(100, 0);
        faults.drop_ppm = 1_000_000;
        let mut net = Network::new(faults, Rng::new(1));
        assert_eq!(net.rc_write(1, 2, 5_000), Some(5_100));
        net.cut_one_way(1, 2);
        assert_eq!(net.rc_write(1, 2, 5_000), None);
        assert_eq!(net.rc_write(2, 1, 5_000), Some(5_100));
    }
}
