//! The `/metrics` text is valid Prometheus exposition (format 0.0.4): this file parses the rendered
//! output line by line with its own strict parser and checks the values that come back.

use std::collections::{HashMap, HashSet};

use aurora::metrics::{Collector, CoreMetrics, Registry, ShardMetrics, SATURATED_FAMILY};
use aurora::wire::{RejectMetrics, RejectReason, WireError};

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `{a="x",b="y"}` (the braces included) at the start of `s`; returns labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape in label value: {other:?}")),
                },
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name:?} repeated"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by commas".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// A strict reader of the text format: HELP/TYPE at most once per family and before its samples,
/// each family's lines contiguous, sample names belonging to the family announced by TYPE (summaries
/// also own `_sum` and `_count`, and their plain samples carry `quantile`), no repeated series.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("output must end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series_seen = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
            if current.as_deref() != Some(family) {
                if finished.contains(family) {
                    return Err(format!("family {family} is not contiguous"));
                }
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                *current = Some(family.to_owned());
            }
            Ok(())
        };
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, doc) = help
                .split_once(' ')
                .ok_or_else(|| at("HELP without text".into()))?;
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let mut chars = doc.chars();
            while let Some(c) = chars.next() {
                if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                    return Err(at("bad escape in HELP".into()));
                }
            }
            if !helped.insert(name.to_owned()) || types.contains_key(name) {
                return Err(at("HELP repeated or after TYPE".into()));
            }
            enter(name, &mut current).map_err(at)?;
        } else if let Some(ty) = line.strip_prefix("# TYPE ") {
            let (name, kind) = ty
                .split_once(' ')
                .ok_or_else(|| at("TYPE without kind".into()))?;
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind:?}")));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(at("TYPE repeated".into()));
            }
            enter(name, &mut current).map_err(at)?;
        } else if line.starts_with('#') || line.is_empty() {
            return Err(at("unexpected comment or blank line".into()));
        } else {
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| at("sample without value".into()))?;
            let name = &line[..name_end];
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..]).map_err(at)?
            } else {
                (Vec::new(), &line[name_end..])
            };
            let fields: Vec<&str> = rest
                .strip_prefix(' ')
                .ok_or_else(|| at("value must follow one space".into()))?
                .split(' ')
                .collect();
            if fields.is_empty() || fields.len() > 2 {
                return Err(at("expected value and optional timestamp".into()));
            }
            let value = parse_value(fields[0]).map_err(at)?;
            let family = current
                .clone()
                .ok_or_else(|| at("sample before any TYPE".into()))?;
            let kind = types
                .get(&family)
                .ok_or_else(|| at("sample before its TYPE".into()))?;
            let has_quantile = labels.iter().any(|(k, _)| k == "quantile");
            let belongs = match kind.as_str() {
                "summary" if name == family => has_quantile,
                "summary" => {
                    !has_quantile
                        && (name == format!("{family}_sum") || name == format!("{family}_count"))
                }
                _ => name == family && !has_quantile,
            };
            if !belongs {
                return Err(at(format!(
                    "sample does not belong to {kind} family {family}"
                )));
            }
            let mut key = labels.clone();
            key.sort();
            if !series_seen.insert((name.to_owned(), key)) {
                return Err(at("series repeated".into()));
            }
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
    }
    Ok(samples)
}

#[test]
fn the_parser_rejects_malformed_exposition() {
    let bad = [
        "x_total 1",                                             // no trailing newline
        "x_total 1\n",                                           // no TYPE
        "# TYPE x_total counter\nx_total{a=\"1\"} one\n",        // bad value
        "# TYPE x_total counter\nx_total{a=1} 1\n",              // unquoted label value
        "# TYPE x_total counter\nx_total{a=\"\\x\"} 1\n",        // bad escape
        "# TYPE x_total counter\nx_total 1\nx_total 2\n",        // repeated series
        "# TYPE x_total counter\ny_total 1\n",                   // sample of another family
        "# TYPE x summary\nx 1\n",                               // summary sample without quantile
        "# TYPE x_total counter\n# TYPE y_total counter\n# TYPE x_total counter\n", // repeated TYPE
        "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 1\n# HELP a_total late\n",
        "# TYPE 1x counter\n",                                   // bad name
        "# TYPE x_total counter\nx_total  1\n",                  // two spaces
    ];
    for text in bad {
        assert!(parse_exposition(text).is_err(), "accepted {text:?}");
    }
    let good = "# HELP x_total Help \\\\ and \\n.\n# TYPE x_total counter\n\
                x_total{a=\"q\\\"\"} 1\nx_total 2 1700000000\n\
                # TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 0\ns_count 0\n";
    assert_eq!(parse_exposition(good).expect("valid").len(), 5);
}

#[test]
fn rendered_metrics_are_valid_exposition_with_merged_values() {
    let mut registry = Registry::new();
    let core = CoreMetrics::register(&mut registry, &[2, 3]).expect("valid names");
    let rejects = RejectMetrics::register(&mut registry).expect("valid names");
    let odd = registry
        .counter(
            "aurora_test_events_total",
            "Events with an awkward label.\nSecond line \\ backslash.",
            &[("path", "a\"b\\c\nd")],
        )
        .expect("valid");
    let schema = registry.finish();

    let mut collector = Collector::new(&schema);
    let mut shards = Vec::new();
    for _ in 0..2 {
        let (shard, link) = ShardMetrics::new(&schema);
        collector.attach(link).expect("same schema");
        shards.push(shard);
    }
    // Shard 0 commits 1..=1000 µs, shard 1 the same again: the merge has 2000 values.
    for shard in &mut shards {
        for us in 1..=1000u64 {
            shard.record(core.commit_latency, us * 1_000);
        }
        rejects.record(
            shard,
            &WireError::BadChecksum {
                expected: 1,
                computed: 2,
            },
        );
        shard.inc(odd);
    }
    let peer2 = core.replication_rtt(2).expect("peer 2 registered");
    shards[1].record(peer2, 70_000_000_000); // 70 s: above the ceiling
    for shard in &mut shards {
        assert!(shard.publish());
    }
    collector.collect();

    let mut text = String::new();
    collector.render_prometheus(&mut text);
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));

    let find = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{text}"))
            .value
    };
    let commit = "aurora_commit_latency_seconds";
    assert_eq!(find(&format!("{commit}_count"), &[]), 2000.0);
    assert!((find(&format!("{commit}_sum"), &[]) - 2.0 * 0.5005).abs() < 1e-9);
    let p50 = find(commit, &[("quantile", "0.5")]);
    let p999 = find(commit, &[("quantile", "0.999")]);
    assert!((p50 - 0.000_500).abs() <= 0.000_500 * 0.001, "p50 {p50}");
    assert!((p999 - 0.000_999).abs() <= 0.000_999 * 0.001, "p999 {p999}");
    assert_eq!(
        find("aurora_wire_rejected_total", &[("reason", "bad_checksum")]),
        2.0
    );
    assert_eq!(
        find("aurora_wire_rejected_total", &[("reason", "bad_magic")]),
        0.0
    );
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name == RejectMetrics::NAME)
            .count(),
        RejectReason::ALL.len()
    );
    assert_eq!(
        find("aurora_test_events_total", &[("path", "a\"b\\c\nd")]),
        2.0
    );
    let rtt = "aurora_replication_rtt_seconds";
    assert_eq!(find(&format!("{rtt}_count"), &[("peer", "2")]), 1.0);
    assert_eq!(find(&format!("{rtt}_sum"), &[("peer", "2")]), 60.0);
    assert_eq!(find(rtt, &[("peer", "2"), ("quantile", "0.5")]), 60.0);
    assert!(find(rtt, &[("peer", "3"), ("quantile", "0.99")]).is_nan());
    assert_eq!(
        find(SATURATED_FAMILY, &[("metric", rtt), ("peer", "2")]),
        1.0
    );
    assert_eq!(find(SATURATED_FAMILY, &[("metric", commit)]), 0.0);
}
