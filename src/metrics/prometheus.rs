//! Prometheus text exposition (format 0.0.4) of merged metrics.
//!
//! Latency families become summaries in seconds (quantiles 0.5, 0.9, 0.99, 0.999, plus exact `_sum`
//! and `_count`); an empty one reports `NaN` quantiles, as Prometheus client libraries do. Values
//! clamped at the histogram's ceiling are counted per series in one extra counter family,
//! [`SATURATED_FAMILY`], labelled with the latency family's name.

use std::fmt::{self, Write};

use super::histogram::LatencyHistogram;
use super::registry::{FamilyKind, Schema};

/// Quantiles every latency summary reports.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// Counter family of values recorded above `LatencyHistogram::HIGHEST_NS`, by latency family.
pub const SATURATED_FAMILY: &str = "aurora_latency_saturated_total";

/// The label [`SATURATED_FAMILY`] names the latency family with; reserved in latency families.
pub const SATURATED_LABEL: &str = "metric";

pub(super) fn render(
    schema: &Schema,
    histograms: &[LatencyHistogram],
    counter: impl Fn(usize) -> u64,
    out: &mut String,
) {
    for family in &schema.families {
        header(out, &family.name, &family.help, family.kind);
        for &series in &family.series {
            match family.kind {
                FamilyKind::Latency => {
                    let labels = &schema.histogram_labels[series];
                    let h = &histograms[series];
                    for (q, q_label) in QUANTILES {
                        out.push_str(&family.name);
                        write_labels(out, labels, Some(("quantile", q_label)));
                        match h.quantile_ns(q) {
                            Some(ns) => sample_seconds(out, ns),
                            None => out.push_str(" NaN\n"),
                        }
                    }
                    out.push_str(&family.name);
                    out.push_str("_sum");
                    write_labels(out, labels, None);
                    sample_seconds(out, h.sum_ns());
                    out.push_str(&family.name);
                    out.push_str("_count");
                    write_labels(out, labels, None);
                    sample_integer(out, h.count());
                }
                FamilyKind::Counter => {
                    out.push_str(&family.name);
                    write_labels(out, &schema.counter_labels[series], None);
                    sample_integer(out, counter(series));
                }
            }
        }
    }
    render_saturated(schema, histograms, out);
}

fn render_saturated(schema: &Schema, histograms: &[LatencyHistogram], out: &mut String) {
    if schema.histogram_count() == 0 {
        return;
    }
    header(
        out,
        SATURATED_FAMILY,
        "Latencies above the histogram ceiling (60 s), recorded as the ceiling.",
        FamilyKind::Counter,
    );
    for family in schema
        .families
        .iter()
        .filter(|f| f.kind == FamilyKind::Latency)
    {
        for &series in &family.series {
            out.push_str(SATURATED_FAMILY);
            write_labels(
                out,
                &schema.histogram_labels[series],
                Some((SATURATED_LABEL, &family.name)),
            );
            sample_integer(out, histograms[series].saturated());
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: FamilyKind) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push_str(match kind {
        FamilyKind::Latency => " summary\n",
        FamilyKind::Counter => " counter\n",
    });
}

/// `{a="x",b="y"}` with `extra` last; nothing when there are no labels at all.
fn write_labels(out: &mut String, labels: &[(String, String)], extra: Option<(&str, &str)>) {
    let all = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra);
    let mut first = true;
    for (name, value) in all {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// ` <seconds>\n` written exactly from nanoseconds (no float rounding): `12345` → ` 0.000012345`.
fn sample_seconds(out: &mut String, ns: u64) {
    let whole = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        put(out, format_args!(" {whole}\n"));
    } else {
        let digits = format!("{frac:09}");
        put(
            out,
            format_args!(" {whole}.{}\n", digits.trim_end_matches('0')),
        );
    }
}

fn sample_integer(out: &mut String, n: u64) {
    put(out, format_args!(" {n}\n"));
}

fn put(out: &mut String, args: fmt::Arguments<'_>) {
    out.write_fmt(args)
        .expect("formatting into a String cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_written_exactly_from_nanoseconds() {
        let cases = [
            (0, " 0\n"),
            (1, " 0.000000001\n"),
            (12_345, " 0.000012345\n"),
            (1_500_000_000, " 1.5\n"),
            (60_000_000_000, " 60\n"),
        ];
        for (ns, want) in cases {
            let mut out = String::new();
            sample_seconds(&mut out, ns);
            assert_eq!(out, want, "{ns} ns");
        }
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = String::new();
        write_labels(
            &mut out,
            &[("path".into(), "a\"b\\c\nd".into())],
            Some(("quantile", "0.5")),
        );
        assert_eq!(out, r#"{path="a\"b\\c\nd",quantile="0.5"}"#);
        let mut out = String::new();
        header(&mut out, "x_total", "line\\one\ntwo", FamilyKind::Counter);
        assert_eq!(
            out,
            "# HELP x_total line\\\\one\\ntwo\n# TYPE x_total counter\n"
        );
    }

    #[test]
    fn no_labels_means_no_braces() {
        let mut out = String::new();
        write_labels(&mut out, &[], None);
        assert_eq!(out, "");
    }
}
