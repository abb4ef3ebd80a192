//! The checker's front: partitions a history by key, prepares each key's operations for the search,
//! and turns the search's result into a [`Verdict`] a person can act on.
//!
//! Partitioning is sound because linearizability is local (Herlihy & Wing 1990, theorem 1): a
//! history is linearizable iff its restriction to every object is, and every operation here touches
//! exactly one key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::history::History;
use super::register::{Step, Value, Values};
use super::search::{self, KeyOp, Limits, SearchStats};

/// The most operations one key may carry; past it the search's indices would not fit. A history
/// that large is far beyond what the search could finish anyway.
pub const MAX_OPS_PER_KEY: usize = 1 << 24;

/// How many operations of the longest prefix an explanation lists (the last ones, nearest the
/// failure); a prefix of thousands would bury the point.
const PREFIX_SHOWN: usize = 20;

/// The checker's answer for a whole history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, consistent with real time, satisfies the register model.
    Linearizable,
    /// No such order exists for `key` (the first such key in key order).
    Violation {
        key: String,
        /// The longest linearizable prefix found, in linearization order (indices into
        /// [`History::ops`]).
        prefix: Vec<usize>,
        /// The operations that could not be placed after that prefix, each refused by the model
        /// (indices into [`History::ops`]).
        refused: Vec<usize>,
        /// The above in words, naming the operations by their line.
        explanation: String,
    },
    /// The search on `key` ran out of its [`Limits`] before deciding; no key was found violating.
    Inconclusive { key: String, reason: String },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::Violation { explanation, .. } => {
                write!(f, "NOT linearizable: {explanation}")
            }
            Verdict::Inconclusive { key, reason } => {
                write!(f, "inconclusive: the search on key {key:?} {reason}")
            }
        }
    }
}

/// What the checker did on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStats {
    pub key: String,
    /// Operations on the key in the history.
    pub ops: usize,
    /// Of those, operations left out because they constrain nothing (see docs/HISTORY_FORMAT.md).
    pub dropped_ops: usize,
    pub search: SearchStats,
    pub linearizable: bool,
}

/// A verdict with the work behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    /// One entry per key, in key order.
    pub keys: Vec<KeyStats>,
}

/// Decides whether `history` is linearizable with respect to a register per key.
pub fn check(history: &History, limits: &Limits) -> Verdict {
    check_with_stats(history, limits).verdict
}

/// [`check`], also reporting per-key search statistics. Every key is checked, so the statistics
/// are complete even when a violation is found.
pub fn check_with_stats(history: &History, limits: &Limits) -> Report {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.ops().iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(index);
    }
    let mut violation = None;
    let mut inconclusive = None;
    let mut keys = Vec::with_capacity(by_key.len());
    for (key, indices) in by_key {
        let (verdict, stats) = check_key(history, key, &indices, limits);
        keys.push(stats);
        match verdict {
            Verdict::Linearizable => {}
            v @ Verdict::Violation { .. } => {
                violation.get_or_insert(v);
            }
            v @ Verdict::Inconclusive { .. } => {
                inconclusive.get_or_insert(v);
            }
        }
    }
    let verdict = violation.or(inconclusive).unwrap_or(Verdict::Linearizable);
    Report { verdict, keys }
}

/// The steps of the operations on one key that constrain the search, with their history indices.
fn constraining_steps<'h>(
    history: &'h History,
    indices: &[usize],
    values: &mut Values<'h>,
) -> Vec<(usize, Step)> {
    let ops = history.ops();
    let mut steps: Vec<(usize, Step)> = indices
        .iter()
        .filter_map(|&i| Step::of(&ops[i], values).map(|step| (i, step)))
        .collect();
    // A write of unknown outcome whose value nobody observed can be taken to have never happened:
    // wherever it took effect, moving it to the end (where nothing sees it) keeps every read,
    // successful cas and unknown-outcome cas satisfied. Failed cas are the exception — a write of an
    // unobserved value can be what made a comparison fail — so keys with one keep every write. This
    // keeps timed-out writes, common in chaos histories, from multiplying the search.
    if !steps
        .iter()
        .any(|(_, s)| matches!(s, Step::CompareFailed(_)))
    {
        let observed: HashSet<Value> = steps
            .iter()
            .filter_map(|(_, s)| match *s {
                Step::Read(v)
                | Step::Swap { expect: v, .. }
                | Step::MaybeSwap { expect: v, .. } => Some(v),
                Step::Write(_) | Step::CompareFailed(_) => None,
            })
            .collect();
        steps.retain(|&(i, s)| {
            let unknown = ops[i].complete_ns.is_none();
            match s {
                Step::Write(v) | Step::MaybeSwap { new: v, .. } if unknown => observed.contains(&v),
                _ => true,
            }
        });
    }
    steps
}

fn check_key(
    history: &History,
    key: &str,
    indices: &[usize],
    limits: &Limits,
) -> (Verdict, KeyStats) {
    let mut stats = KeyStats {
        key: key.to_owned(),
        ops: indices.len(),
        dropped_ops: 0,
        search: SearchStats::default(),
        linearizable: false,
    };
    if indices.len() > MAX_OPS_PER_KEY {
        let reason = format!(
            "was not started: the key has {} operations, more than the {MAX_OPS_PER_KEY} the checker \
             supports per key — record a shorter history or spread it over more keys",
            indices.len()
        );
        let verdict = Verdict::Inconclusive {
            key: key.to_owned(),
            reason,
        };
        return (verdict, stats);
    }
    let mut values = Values::default();
    let steps = constraining_steps(history, indices, &mut values);
    stats.dropped_ops = indices.len() - steps.len();
    let key_ops: Vec<KeyOp> = steps
        .iter()
        .map(|&(i, step)| KeyOp {
            step,
            invoke_ns: history.ops()[i].invoke_ns,
            complete_ns: history.ops()[i].complete_ns,
        })
        .collect();
    let (outcome, search_stats) = search::linearize(&key_ops, limits);
    stats.search = search_stats;
    let verdict = match outcome {
        search::Finding::Linearizable => {
            stats.linearizable = true;
            Verdict::Linearizable
        }
        search::Finding::Exhausted { reason } => Verdict::Inconclusive {
            key: key.to_owned(),
            reason,
        },
        search::Finding::Violation { prefix } => {
            explain(history, key, &steps, &key_ops, &values, &prefix, &stats)
        }
    };
    (verdict, stats)
}

/// Builds the violation verdict from the longest prefix the search linearized.
///
/// "Longest" counts operations of known outcome: after that prefix every known-outcome operation
/// that could come next was refused by the model, because one that was allowed would have led the
/// search to a prefix with more of them (or to a memoized state that, having the same known ops,
/// could only have been reached through such a prefix). So the refusals below are why the history
/// fails.
fn explain(
    history: &History,
    key: &str,
    steps: &[(usize, Step)],
    key_ops: &[KeyOp],
    values: &Values<'_>,
    prefix: &[u32],
    stats: &KeyStats,
) -> Verdict {
    let ops = history.ops();
    let describe = |i: usize| format!("line {}: {}", history.line_of(i), ops[i]);
    let mut state = super::register::ABSENT;
    let mut placed = vec![false; key_ops.len()];
    for &op in prefix {
        let op = op as usize;
        state = key_ops[op]
            .step
            .apply(state)
            .expect("the search records only steps the model allowed");
        placed[op] = true;
    }
    // The unplaced operation that completed first: by then something had to take effect.
    let deadline = (0..key_ops.len())
        .filter(|&op| !placed[op])
        .filter_map(|op| key_ops[op].complete_ns.map(|c| (c, op)))
        .min()
        .expect("a violation leaves an operation of known outcome unplaced");
    // Every op invoked by the deadline was a candidate. Those of known outcome were all refused by
    // the model: one that was allowed would have led to a prefix with more known ops. Those of
    // unknown outcome may have been allowed, but nothing that followed worked out.
    let (refused, pending): (Vec<usize>, Vec<usize>) = (0..key_ops.len())
        .filter(|&op| !placed[op] && key_ops[op].invoke_ns <= deadline.0)
        .partition(|&op| key_ops[op].complete_ns.is_some());

    let mut text = format!(
        "key {key:?}: {} had to take effect by {} ns, but after the longest linearizable prefix found \
         ({} of {} operations on the key) none of the operations invoked by then can be placed next.\n",
        describe(steps[deadline.1].0),
        deadline.0,
        prefix.len(),
        key_ops.len(),
    );
    text.push_str("Longest linearizable prefix, in linearization order:\n");
    if prefix.len() > PREFIX_SHOWN {
        text.push_str(&format!(
            "  ... {} earlier operations ...\n",
            prefix.len() - PREFIX_SHOWN
        ));
    }
    if prefix.is_empty() {
        text.push_str("  (empty: not even the first operation can take effect)\n");
    }
    for &op in &prefix[prefix.len().saturating_sub(PREFIX_SHOWN)..] {
        text.push_str(&format!("  {}\n", describe(steps[op as usize].0)));
    }
    text.push_str(&format!(
        "Register after the prefix: {}.\nRefused next:\n",
        values.show(state)
    ));
    for &op in &refused {
        let step = key_ops[op].step;
        let why = match step.apply(state) {
            None => step.refusal(state, values),
            Some(_) => "it could take effect, but no order of the rest works after it".to_owned(),
        };
        text.push_str(&format!("  {} — {why}\n", describe(steps[op].0)));
    }
    if !pending.is_empty() {
        let lines: Vec<String> = pending
            .iter()
            .take(PREFIX_SHOWN)
            .map(|&op| history.line_of(steps[op].0).to_string())
            .collect();
        text.push_str(&format!(
            "Also tried next, without success: {} operations of unknown outcome (lines {}{}).\n",
            pending.len(),
            lines.join(", "),
            if pending.len() > PREFIX_SHOWN {
                ", ..."
            } else {
                ""
            },
        ));
    }
    if stats.dropped_ops > 0 {
        text.push_str(&format!(
            "({} operations on the key constrain nothing and were left out: failed puts and gets, \
             gets of unknown outcome, writes of unknown outcome whose value nobody observed.)\n",
            stats.dropped_ops
        ));
    }
    text.truncate(text.trim_end().len());
    Verdict::Violation {
        key: key.to_owned(),
        prefix: prefix.iter().map(|&op| steps[op as usize].0).collect(),
        refused: refused.iter().map(|&op| steps[op].0).collect(),
        explanation: text,
    }
}
