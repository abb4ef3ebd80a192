//! The latency metrics every Aurora node records, declared in one place so names stay consistent.

use super::registry::{HistogramId, MetricsError, Registry};
use crate::config::NodeId;

/// Ids of the standard latency histograms (DESIGN.md §8), with per-peer series for every peer.
#[derive(Debug, Clone)]
pub struct CoreMetrics {
    /// `aurora_commit_latency_seconds`
    pub commit_latency: HistogramId,
    /// `aurora_fsync_duration_seconds`
    pub fsync: HistogramId,
    /// `aurora_apply_duration_seconds`
    pub apply: HistogramId,
    /// `aurora_replication_rtt_seconds{peer=…}`, one per peer.
    replication_rtt: Vec<(NodeId, HistogramId)>,
    /// `aurora_transport_rtt_seconds{peer=…}`, one per peer.
    transport_rtt: Vec<(NodeId, HistogramId)>,
}

impl CoreMetrics {
    /// Declares the standard histograms, with one replication and one transport RTT series per peer
    /// (every other voter and learner; at most a handful, so lookups scan a short list).
    pub fn register(registry: &mut Registry, peers: &[NodeId]) -> Result<Self, MetricsError> {
        let commit_latency = registry.histogram(
            "aurora_commit_latency_seconds",
            "Time from a proposal reaching the leader until it is committed.",
            &[],
        )?;
        let fsync = registry.histogram(
            "aurora_fsync_duration_seconds",
            "Time of one WAL fdatasync (one group commit).",
            &[],
        )?;
        let apply = registry.histogram(
            "aurora_apply_duration_seconds",
            "Time to apply one batch of committed entries to the store.",
            &[],
        )?;
        let mut replication_rtt = Vec::with_capacity(peers.len());
        let mut transport_rtt = Vec::with_capacity(peers.len());
        for &peer in peers {
            let label = peer.to_string();
            replication_rtt.push((
                peer,
                registry.histogram(
                    "aurora_replication_rtt_seconds",
                    "Time from sending entries to a peer until it acknowledges them, per peer.",
                    &[("peer", &label)],
                )?,
            ));
            transport_rtt.push((
                peer,
                registry.histogram(
                    "aurora_transport_rtt_seconds",
                    "Ping to pong round trip on the transport, per peer.",
                    &[("peer", &label)],
                )?,
            ));
        }
        Ok(Self {
            commit_latency,
            fsync,
            apply,
            replication_rtt,
            transport_rtt,
        })
    }

    /// The replication RTT series of `peer`, or `None` if it was not a peer at start-up.
    pub fn replication_rtt(&self, peer: NodeId) -> Option<HistogramId> {
        find(&self.replication_rtt, peer)
    }

    /// The transport RTT series of `peer`, or `None` if it was not a peer at start-up.
    pub fn transport_rtt(&self, peer: NodeId) -> Option<HistogramId> {
        find(&self.transport_rtt, peer)
    }
}

fn find(series: &[(NodeId, HistogramId)], peer: NodeId) -> Option<HistogramId> {
    series.iter().find(|(p, _)| *p == peer).map(|(_, id)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_gets_its_own_series() {
        let mut registry = Registry::new();
        let core = CoreMetrics::register(&mut registry, &[2, 3]).expect("valid names");
        let two = core.replication_rtt(2).expect("peer 2");
        let three = core.replication_rtt(3).expect("peer 3");
        assert_ne!(two, three);
        assert_ne!(core.transport_rtt(2), Some(two));
        assert_eq!(core.replication_rtt(4), None);
        assert_eq!(registry.finish().histogram_count(), 3 + 2 * 2);
    }

    #[test]
    fn a_peer_listed_twice_is_refused() {
        let mut registry = Registry::new();
        assert!(matches!(
            CoreMetrics::register(&mut registry, &[2, 2]),
            Err(MetricsError::DuplicateSeries { .. })
        ));
    }
}
