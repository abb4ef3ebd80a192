//! Properties of the checker on generated histories:
//! - a history produced by a real sequential map, with each operation's interval stretched around its
//!   effect, is linearizable by construction: the checker must accept it, and must reject it once one
//!   read is made to return a value nobody wrote;
//! - on small arbitrary histories (mostly not linearizable) its verdict equals that of a brute-force
//!   search over every order, written straight from the model in docs/HISTORY_FORMAT.md — which
//!   checks every pruning the real search does.

use std::collections::HashMap;

use aurora::lincheck::{check, check_with_stats, History, Limits, Op, OpKind, Outcome, Verdict};
use proptest::prelude::*;

/// One step of the sequential schedule, before it is run against the map.
#[derive(Debug, Clone)]
struct Planned {
    kind: OpKind,
    key: u8,
    value: u8,
    /// For cas: the expected value, `None` = absent.
    expect: Option<u8>,
    client: u64,
    /// How long before its effect the client invoked it, and after it the client learned the result.
    lead_ns: u64,
    lag_ns: u64,
    /// What the client learns: 0 = the true outcome, 1 = unknown (timed out), 2 = a put rejected
    /// before proposal (no effect, outcome fail).
    fate: u8,
}

fn planned() -> impl Strategy<Value = Planned> {
    (
        prop_oneof![Just(OpKind::Put), Just(OpKind::Get), Just(OpKind::Cas)],
        0u8..3,
        0u8..4,
        prop::option::of(0u8..4),
        0u64..6,
        0u64..250,
        0u64..250,
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(
            |(kind, key, value, expect, client, lead_ns, lag_ns, fate)| Planned {
                kind,
                key,
                value,
                expect,
                client,
                lead_ns,
                lag_ns,
                fate,
            },
        )
}

/// Runs `plan` against a real map, one effect every 100 ns, and records what each client saw.
/// Effects happen in plan order and each lies inside its operation's interval, so the plan order is
/// a valid linearization.
fn run(plan: &[Planned]) -> History {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut history = History::new();
    for (i, p) in (1u64..).zip(plan) {
        let effect_ns = i * 100;
        let key = format!("k{}", p.key);
        let value = format!("v{}", p.value);
        let current = map.get(&key).cloned();
        let rejected = p.fate == 2 && p.kind == OpKind::Put;
        let (input, expect, output, outcome) = match p.kind {
            OpKind::Put => {
                if !rejected {
                    map.insert(key.clone(), value.clone());
                }
                (Some(value), None, None, Outcome::Ok)
            }
            OpKind::Get => (None, None, current, Outcome::Ok),
            OpKind::Cas => {
                let expect = p.expect.map(|e| format!("v{e}"));
                let swapped = current == expect;
                if swapped {
                    map.insert(key.clone(), value.clone());
                }
                let outcome = if swapped { Outcome::Ok } else { Outcome::Fail };
                (Some(value), expect, None, outcome)
            }
        };
        let op = Op {
            client: p.client,
            kind: p.kind,
            key,
            input,
            expect,
            output,
            invoke_ns: effect_ns - p.lead_ns.min(effect_ns),
            complete_ns: Some(effect_ns + p.lag_ns),
            outcome,
        };
        let op = match p.fate {
            1 => Op {
                output: None,
                complete_ns: None,
                outcome: Outcome::Unknown,
                ..op
            },
            2 if rejected => Op {
                outcome: Outcome::Fail,
                ..op
            },
            _ => op,
        };
        history.push(op).expect("generated ops are well-formed");
    }
    history
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn histories_of_a_real_map_are_accepted(plan in prop::collection::vec(planned(), 1..150)) {
        let history = run(&plan);
        let verdict = check(&history, &Limits::default());
        prop_assert_eq!(&verdict, &Verdict::Linearizable, "{}", verdict);
    }

    #[test]
    fn a_read_of_a_never_written_value_is_rejected(
        plan in prop::collection::vec(planned(), 1..150),
        pick in any::<prop::sample::Index>(),
    ) {
        let history = run(&plan);
        let reads: Vec<usize> = history
            .ops()
            .iter()
            .enumerate()
            .filter(|(_, op)| op.kind == OpKind::Get && op.outcome == Outcome::Ok)
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!reads.is_empty());
        let victim = reads[pick.index(reads.len())];
        let mut mutated = History::new();
        for (i, op) in history.ops().iter().enumerate() {
            let op = if i == victim {
                Op { output: Some("never-written".to_owned()), ..op.clone() }
            } else {
                op.clone()
            };
            mutated.push(op).expect("mutating an output keeps the op well-formed");
        }
        let verdict = check(&mutated, &Limits::default());
        match verdict {
            Verdict::Violation { key, refused, .. } => {
                prop_assert_eq!(&key, &history.ops()[victim].key);
                prop_assert!(refused.contains(&victim), "refused {:?}, victim {}", refused, victim);
            }
            other => prop_assert!(false, "expected a violation, got {}", other),
        }
    }
}

/// A long, busy single-key history stays well inside the default search budget: the memo table
/// keeps the search near-linear when concurrency is bounded.
#[test]
fn thousand_op_history_on_one_key_stays_within_budget() {
    let plan: Vec<Planned> = (0u64..1_000)
        .map(|i| Planned {
            kind: [OpKind::Put, OpKind::Get, OpKind::Cas][(i * 7 % 3) as usize],
            key: 0,
            value: (i * 5 % 4) as u8,
            expect: Some((i * 3 % 4) as u8),
            client: i % 8,
            lead_ns: i * 37 % 400,
            lag_ns: i * 53 % 400,
            fate: u8::from(i % 17 == 0),
        })
        .collect();
    let history = run(&plan);
    let report = check_with_stats(&history, &Limits::default());
    assert_eq!(report.verdict, Verdict::Linearizable, "{}", report.verdict);
    let stats = &report.keys[0].search;
    assert!(
        stats.states < 100_000,
        "memo should keep the search small: {stats:?}"
    );
}

/// An arbitrary well-formed operation on one key, over a two-value alphabet so that reads and
/// comparisons often match.
fn arbitrary_op() -> impl Strategy<Value = Op> {
    let value = || prop_oneof![Just("a".to_owned()), Just("b".to_owned())];
    let maybe_value = || prop::option::of(value());
    (
        prop_oneof![Just(OpKind::Put), Just(OpKind::Get), Just(OpKind::Cas)],
        value(),
        maybe_value(),
        maybe_value(),
        0u64..40,
        0u64..20,
        prop_oneof![
            Just(Outcome::Ok),
            Just(Outcome::Fail),
            Just(Outcome::Unknown)
        ],
        0u64..4,
    )
        .prop_map(
            |(kind, input, expect, output, invoke_ns, len_ns, outcome, client)| Op {
                client,
                kind,
                key: "k".to_owned(),
                input: (kind != OpKind::Get).then_some(input),
                expect: if kind == OpKind::Cas { expect } else { None },
                output: if kind == OpKind::Get && outcome == Outcome::Ok {
                    output
                } else {
                    None
                },
                invoke_ns,
                complete_ns: (outcome != Outcome::Unknown).then_some(invoke_ns + len_ns),
                outcome,
            },
        )
}

/// Whether the op must appear in a linearization (`Some(true)`), may (`Some(false)`), or says
/// nothing at all (`None`), per docs/HISTORY_FORMAT.md.
fn obligation(op: &Op) -> Option<bool> {
    match (op.kind, op.outcome) {
        (OpKind::Get, Outcome::Fail | Outcome::Unknown) | (OpKind::Put, Outcome::Fail) => None,
        (_, Outcome::Unknown) => Some(false),
        _ => Some(true),
    }
}

/// The register after `op` from `state`, or `None` if `op` cannot take effect there.
fn model(op: &Op, state: &Option<String>) -> Option<Option<String>> {
    match (op.kind, op.outcome) {
        (OpKind::Put, _) => Some(op.input.clone()),
        (OpKind::Get, _) => (op.output == *state).then(|| state.clone()),
        (OpKind::Cas, Outcome::Ok) => (op.expect == *state).then(|| op.input.clone()),
        (OpKind::Cas, Outcome::Fail) => (op.expect != *state).then(|| state.clone()),
        (OpKind::Cas, Outcome::Unknown) => Some(if op.expect == *state {
            op.input.clone()
        } else {
            state.clone()
        }),
    }
}

/// Tries every order of every subset that contains all required ops: exponential, fine for 9 ops.
fn brute_force(ops: &[Op], placed: &mut Vec<bool>, state: &Option<String>) -> bool {
    let required_left = ops
        .iter()
        .zip(placed.iter())
        .any(|(op, &done)| !done && obligation(op) == Some(true));
    if !required_left {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] || obligation(&ops[i]).is_none() {
            continue;
        }
        // Real time: an unplaced op that completed before this one began must come first.
        let blocked = ops.iter().zip(placed.iter()).any(|(other, &done)| {
            !done
                && obligation(other) == Some(true)
                && other.complete_ns.is_some_and(|c| c < ops[i].invoke_ns)
        });
        if blocked {
            continue;
        }
        if let Some(next) = model(&ops[i], state) {
            placed[i] = true;
            let found = brute_force(ops, placed, &next);
            placed[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn verdict_matches_brute_force_on_small_histories(
        ops in prop::collection::vec(arbitrary_op(), 1..=9),
    ) {
        let mut history = History::new();
        for op in &ops {
            history.push(op.clone()).expect("generated ops are well-formed");
        }
        let expected = brute_force(&ops, &mut vec![false; ops.len()], &None);
        let verdict = check(&history, &Limits::default());
        prop_assert!(
            !matches!(verdict, Verdict::Inconclusive { .. }),
            "tiny history exhausted the budget: {}", verdict
        );
        prop_assert_eq!(verdict.is_linearizable(), expected, "{}", verdict);
    }
}
