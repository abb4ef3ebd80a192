//! Counting rejected frames in the shard's metrics, one series per [`RejectReason`].

use super::error::{RejectReason, WireError};
use crate::metrics::{CounterId, MetricsError, Registry, ShardMetrics};

/// The `aurora_wire_rejected_total{reason=…}` counters, every reason registered at start-up so a
/// scrape shows zeros rather than missing series.
#[derive(Debug, Clone)]
pub struct RejectMetrics {
    ids: [CounterId; RejectReason::ALL.len()],
}

impl RejectMetrics {
    /// The counter family's name.
    pub const NAME: &'static str = "aurora_wire_rejected_total";

    pub fn register(registry: &mut Registry) -> Result<Self, MetricsError> {
        let ids: Vec<CounterId> = RejectReason::ALL
            .iter()
            .map(|reason| {
                registry.counter(
                    Self::NAME,
                    "Received frames the wire decoder rejected, by reason.",
                    &[("reason", reason.label())],
                )
            })
            .collect::<Result<_, _>>()?;
        let ids = ids
            .try_into()
            .expect("one counter was registered per reason");
        Ok(Self { ids })
    }

    /// Counts one rejection of `error`. Hot path: no allocation.
    pub fn record(&self, metrics: &mut ShardMetrics, error: &WireError) {
        metrics.inc(self.id(error.reason()));
    }

    /// The counter of one reason, e.g. to read it back with [`ShardMetrics::counter`].
    pub fn id(&self, reason: RejectReason) -> CounterId {
        self.ids[reason.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_counted_under_their_reason() {
        let mut registry = Registry::new();
        let rejects = RejectMetrics::register(&mut registry).expect("valid names");
        let (mut shard, _link) = ShardMetrics::new(&registry.finish());
        rejects.record(&mut shard, &WireError::BadMagic { got: 1 });
        rejects.record(&mut shard, &WireError::BadMagic { got: 2 });
        rejects.record(&mut shard, &WireError::Oversize { len: 9, max: 8 });
        assert_eq!(shard.counter(rejects.id(RejectReason::BadMagic)), 2);
        assert_eq!(shard.counter(rejects.id(RejectReason::Oversize)), 1);
        assert_eq!(shard.counter(rejects.id(RejectReason::BadChecksum)), 0);
    }
}
