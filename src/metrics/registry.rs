//! The start-up list of every metric a shard records: names, help, labels, and the ids the hot path
//! records through.

use std::sync::Arc;

use thiserror::Error;

use super::prometheus::SATURATED_LABEL;

/// Bound on the series one schema may hold (per-peer and per-reason labels stay far below it).
pub const MAX_SERIES: usize = 4096;

/// Where [`ShardMetrics::record`](super::ShardMetrics::record) puts a latency: one labelled series
/// of a histogram family. Only meaningful with the [`Schema`] that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistogramId(pub(super) usize);

/// Where [`ShardMetrics::add`](super::ShardMetrics::add) counts: one labelled series of a counter
/// family. Only meaningful with the [`Schema`] that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterId(pub(super) usize);

/// A metric definition that cannot be rendered as valid, unambiguous Prometheus exposition.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetricsError {
    #[error("metric name {name:?} is not a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*); rename it")]
    InvalidName { name: String },
    #[error(
        "metric name {name:?} must end in {suffix:?} (histograms are rendered in seconds, counters \
         are monotonic totals); rename it"
    )]
    MissingSuffix { name: String, suffix: &'static str },
    #[error(
        "label {label:?} of metric {name:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, \
         not starting with __) or is reserved (\"quantile\", and \"metric\" on histograms); \
         rename it"
    )]
    InvalidLabel { name: String, label: String },
    #[error("metric {name:?} is already registered with different help text; use the same text")]
    HelpConflict { name: String },
    #[error(
        "metric {name:?} already has a series with labels {labels}; each label set may be \
         registered once"
    )]
    DuplicateSeries { name: String, labels: String },
    #[error("a schema holds at most {max} series; fewer labels or metrics are needed")]
    TooManySeries { max: usize },
    #[error("this shard's metrics come from a different schema than the collector's")]
    SchemaMismatch,
}

/// What a family is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FamilyKind {
    /// A [`LatencyHistogram`](super::LatencyHistogram), rendered as a Prometheus summary in seconds.
    Latency,
    /// A monotonic `u64` counter.
    Counter,
}

/// One metric name: its help, its kind and its series (indices into the schema's histogram or
/// counter series, by kind), in registration order.
#[derive(Debug, Clone)]
pub(super) struct Family {
    pub(super) name: String,
    pub(super) help: String,
    pub(super) kind: FamilyKind,
    pub(super) series: Vec<usize>,
}

/// The labels of one series, in registration order.
pub(super) type Labels = Vec<(String, String)>;

/// Collects metric definitions at start-up. [`Registry::finish`] freezes them into a [`Schema`].
#[derive(Debug, Default)]
pub struct Registry {
    families: Vec<Family>,
    histogram_labels: Vec<Labels>,
    counter_labels: Vec<Labels>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares one latency series. `name` ends in `_seconds`: values are recorded in nanoseconds
    /// and rendered in seconds.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<HistogramId, MetricsError> {
        let index = self.add_series(FamilyKind::Latency, "_seconds", name, help, labels)?;
        Ok(HistogramId(index))
    }

    /// Declares one counter series. `name` ends in `_total`.
    pub fn counter(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<CounterId, MetricsError> {
        let index = self.add_series(FamilyKind::Counter, "_total", name, help, labels)?;
        Ok(CounterId(index))
    }

    /// Freezes the definitions; shards and the collector share the result read-only.
    pub fn finish(self) -> Arc<Schema> {
        Arc::new(Schema {
            families: self.families,
            histogram_labels: self.histogram_labels,
            counter_labels: self.counter_labels,
        })
    }

    fn add_series(
        &mut self,
        kind: FamilyKind,
        suffix: &'static str,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<usize, MetricsError> {
        if !is_metric_name(name) {
            return Err(MetricsError::InvalidName { name: name.into() });
        }
        if !name.ends_with(suffix) {
            return Err(MetricsError::MissingSuffix {
                name: name.into(),
                suffix,
            });
        }
        let reserved = |label: &str| kind == FamilyKind::Latency && label == SATURATED_LABEL;
        if let Some((label, _)) = labels
            .iter()
            .find(|(label, _)| !is_label_name(label) || reserved(label))
        {
            return Err(MetricsError::InvalidLabel {
                name: name.into(),
                label: (*label).into(),
            });
        }
        if self.histogram_labels.len() + self.counter_labels.len() >= MAX_SERIES {
            return Err(MetricsError::TooManySeries { max: MAX_SERIES });
        }
        let owned: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();

        let family = match self.families.iter().position(|f| f.name == name) {
            Some(existing) => {
                let f = &self.families[existing];
                // The unit suffixes (`_seconds`, `_total`) keep the kinds' names apart.
                debug_assert_eq!(f.kind, kind);
                if f.help != help {
                    return Err(MetricsError::HelpConflict { name: name.into() });
                }
                let all = match kind {
                    FamilyKind::Latency => &self.histogram_labels,
                    FamilyKind::Counter => &self.counter_labels,
                };
                if f.series.iter().any(|&s| all[s] == owned) {
                    return Err(MetricsError::DuplicateSeries {
                        name: name.into(),
                        labels: format!("{labels:?}"),
                    });
                }
                existing
            }
            None => {
                self.families.push(Family {
                    name: name.into(),
                    help: help.into(),
                    kind,
                    series: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let all = match kind {
            FamilyKind::Latency => &mut self.histogram_labels,
            FamilyKind::Counter => &mut self.counter_labels,
        };
        all.push(owned);
        let index = all.len() - 1;
        self.families[family].series.push(index);
        Ok(index)
    }
}

/// The frozen metric definitions: what every shard records and what the collector renders.
#[derive(Debug)]
pub struct Schema {
    pub(super) families: Vec<Family>,
    pub(super) histogram_labels: Vec<Labels>,
    pub(super) counter_labels: Vec<Labels>,
}

impl Schema {
    /// Number of histogram series a shard allocates.
    pub fn histogram_count(&self) -> usize {
        self.histogram_labels.len()
    }

    /// Number of counter series a shard allocates.
    pub fn counter_count(&self) -> usize {
        self.counter_labels.len()
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, minus names Prometheus reserves (`__…`) or summaries use (`quantile`).
fn is_label_name(label: &str) -> bool {
    let mut chars = label.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !label.starts_with("__")
        && label != "quantile"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_of_one_name_share_a_family_and_get_distinct_ids() {
        let mut r = Registry::new();
        let a = r
            .histogram("aurora_rtt_seconds", "RTT.", &[("peer", "1")])
            .expect("valid");
        let b = r
            .histogram("aurora_rtt_seconds", "RTT.", &[("peer", "2")])
            .expect("valid");
        let c = r.counter("aurora_x_total", "X.", &[]).expect("valid");
        assert_ne!(a, b);
        let schema = r.finish();
        assert_eq!(schema.families.len(), 2);
        assert_eq!(schema.histogram_count(), 2);
        assert_eq!(schema.counter_count(), 1);
        assert_eq!(c, CounterId(0));
    }

    #[test]
    fn names_without_their_unit_suffix_are_refused() {
        let mut r = Registry::new();
        assert!(matches!(
            r.histogram("aurora_commit_latency", "h", &[]),
            Err(MetricsError::MissingSuffix {
                suffix: "_seconds",
                ..
            })
        ));
        assert!(matches!(
            r.counter("aurora_frames", "h", &[]),
            Err(MetricsError::MissingSuffix {
                suffix: "_total",
                ..
            })
        ));
    }

    #[test]
    fn invalid_names_and_labels_are_refused() {
        let mut r = Registry::new();
        assert!(matches!(
            r.counter("9lives_total", "h", &[]),
            Err(MetricsError::InvalidName { .. })
        ));
        assert!(matches!(
            r.counter("aurora-x_total", "h", &[]),
            Err(MetricsError::InvalidName { .. })
        ));
        for label in ["quantile", "metric", "__name__", "peer-id", ""] {
            assert!(
                matches!(
                    r.histogram("aurora_x_seconds", "h", &[(label, "v")]),
                    Err(MetricsError::InvalidLabel { .. })
                ),
                "{label:?}"
            );
        }
    }

    #[test]
    fn conflicting_definitions_are_refused() {
        let mut r = Registry::new();
        r.counter("aurora_x_total", "X.", &[("reason", "a")])
            .expect("valid");
        assert!(matches!(
            r.counter("aurora_x_total", "X.", &[("reason", "a")]),
            Err(MetricsError::DuplicateSeries { .. })
        ));
        assert!(matches!(
            r.counter("aurora_x_total", "Other help.", &[("reason", "b")]),
            Err(MetricsError::HelpConflict { .. })
        ));
    }

    #[test]
    fn the_series_count_is_bounded() {
        let mut r = Registry::new();
        for i in 0..MAX_SERIES {
            r.counter("aurora_x_total", "X.", &[("i", &i.to_string())])
                .expect("below the bound");
        }
        assert_eq!(
            r.counter("aurora_x_total", "X.", &[("i", "last")]),
            Err(MetricsError::TooManySeries { max: MAX_SERIES })
        );
    }
}
