//! Hand-made histories with a known answer: the anomalies the checker must catch, and concurrent
//! histories it must accept.

use aurora::lincheck::{check, History, Limits, Op, OpKind, Outcome, Verdict};

/// An operation with no values; the builders below fill in the fields that matter for each kind.
fn op(client: u64, kind: OpKind, key: &str, interval: (u64, Option<u64>), outcome: Outcome) -> Op {
    Op {
        client,
        kind,
        key: key.to_owned(),
        input: None,
        expect: None,
        output: None,
        invoke_ns: interval.0,
        complete_ns: interval.1,
        outcome,
    }
}

fn put(client: u64, key: &str, value: &str, invoke_ns: u64, complete_ns: u64) -> Op {
    Op {
        input: Some(value.to_owned()),
        ..op(
            client,
            OpKind::Put,
            key,
            (invoke_ns, Some(complete_ns)),
            Outcome::Ok,
        )
    }
}

fn put_unknown(client: u64, key: &str, value: &str, invoke_ns: u64) -> Op {
    Op {
        input: Some(value.to_owned()),
        ..op(
            client,
            OpKind::Put,
            key,
            (invoke_ns, None),
            Outcome::Unknown,
        )
    }
}

fn put_failed(client: u64, key: &str, value: &str, invoke_ns: u64, complete_ns: u64) -> Op {
    Op {
        input: Some(value.to_owned()),
        ..op(
            client,
            OpKind::Put,
            key,
            (invoke_ns, Some(complete_ns)),
            Outcome::Fail,
        )
    }
}

/// A successful get that returned `value` (`None` = absent).
fn get(client: u64, key: &str, value: Option<&str>, invoke_ns: u64, complete_ns: u64) -> Op {
    Op {
        output: value.map(str::to_owned),
        ..op(
            client,
            OpKind::Get,
            key,
            (invoke_ns, Some(complete_ns)),
            Outcome::Ok,
        )
    }
}

fn cas(
    client: u64,
    key: &str,
    expect: Option<&str>,
    new: &str,
    invoke_ns: u64,
    complete_ns: Option<u64>,
    outcome: Outcome,
) -> Op {
    Op {
        input: Some(new.to_owned()),
        expect: expect.map(str::to_owned),
        ..op(client, OpKind::Cas, key, (invoke_ns, complete_ns), outcome)
    }
}

fn history(ops: impl IntoIterator<Item = Op>) -> History {
    let mut history = History::new();
    for op in ops {
        history.push(op).expect("test histories are well-formed");
    }
    history
}

fn verdict(ops: impl IntoIterator<Item = Op>) -> Verdict {
    check(&history(ops), &Limits::default())
}

fn assert_violation_on(verdict: &Verdict, expected_key: &str, refused_index: usize) {
    match verdict {
        Verdict::Violation { key, refused, .. } => {
            assert_eq!(key, expected_key, "{verdict}");
            assert!(refused.contains(&refused_index), "{verdict}");
        }
        other => panic!("expected a violation on {expected_key:?}, got: {other}"),
    }
}

#[test]
fn stale_read_is_rejected() {
    let v = verdict([
        put(1, "k", "a", 0, 10),
        put(1, "k", "b", 20, 30),
        get(2, "k", Some("a"), 40, 50),
    ]);
    assert_violation_on(&v, "k", 2);
}

#[test]
fn stale_read_explanation_names_the_prefix_and_the_refused_read() {
    let v = verdict([
        put(1, "k", "a", 0, 10),
        put(1, "k", "b", 20, 30),
        get(2, "k", Some("a"), 40, 50),
    ]);
    let Verdict::Violation {
        prefix,
        refused,
        explanation,
        ..
    } = v
    else {
        panic!("expected a violation, got {v}");
    };
    assert_eq!(prefix, vec![0, 1]);
    assert_eq!(refused, vec![2]);
    assert_eq!(
        explanation,
        "key \"k\": line 3: client 2 get \"k\" -> \"a\" ok [40, 50] ns had to take effect by 50 ns, \
         but after the longest linearizable prefix found (2 of 3 operations on the key) none of the \
         operations invoked by then can be placed next.\n\
         Longest linearizable prefix, in linearization order:\n  \
         line 1: client 1 put \"k\" := \"a\" ok [0, 10] ns\n  \
         line 2: client 1 put \"k\" := \"b\" ok [20, 30] ns\n\
         Register after the prefix: \"b\".\n\
         Refused next:\n  \
         line 3: client 2 get \"k\" -> \"a\" ok [40, 50] ns — it read \"a\" but the register held \"b\""
    );
}

#[test]
fn lost_write_is_rejected() {
    // The put was acknowledged, yet a read that started afterwards finds the key never written.
    let v = verdict([put(1, "k", "a", 0, 10), get(2, "k", None, 20, 30)]);
    assert_violation_on(&v, "k", 1);
}

#[test]
fn read_of_a_never_written_value_is_rejected() {
    let v = verdict([put(1, "k", "a", 0, 10), get(2, "k", Some("ghost"), 0, 30)]);
    assert_violation_on(&v, "k", 1);
}

#[test]
fn read_of_a_value_whose_put_failed_is_rejected() {
    // A failed put was rejected before it was proposed: it cannot be what a read sees.
    let v = verdict([
        put_failed(1, "k", "a", 0, 10),
        get(2, "k", Some("a"), 20, 30),
    ]);
    assert_violation_on(&v, "k", 1);
}

#[test]
fn cas_that_succeeded_twice_is_rejected() {
    // Both swaps claim to have found "0": only one of them can have.
    let v = verdict([
        put(1, "k", "0", 0, 10),
        cas(2, "k", Some("0"), "1", 20, Some(30), Outcome::Ok),
        cas(3, "k", Some("0"), "2", 20, Some(30), Outcome::Ok),
    ]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v}");
}

#[test]
fn cas_that_failed_while_its_expectation_held_is_rejected() {
    let v = verdict([
        put(1, "k", "0", 0, 10),
        cas(2, "k", Some("0"), "1", 20, Some(30), Outcome::Fail),
    ]);
    assert_violation_on(&v, "k", 1);
}

#[test]
fn read_going_backwards_is_rejected() {
    // The write of "2" is still in flight; once client 2 saw it, client 3 cannot see "1" again.
    let v = verdict([
        put(1, "k", "1", 0, 10),
        put(1, "k", "2", 20, 100),
        get(2, "k", Some("2"), 30, 40),
        get(3, "k", Some("1"), 50, 60),
    ]);
    assert_violation_on(&v, "k", 3);
}

#[test]
fn read_going_backwards_is_found_on_its_key_among_independent_keys() {
    // Key "y" is busy but fine; the anomaly on "x" must be found despite per-key partitioning,
    // because real-time order is kept within each key.
    let v = verdict([
        put(1, "y", "a", 0, 100),
        put(1, "x", "1", 0, 10),
        get(2, "y", Some("a"), 5, 15),
        put(1, "x", "2", 20, 100),
        get(2, "x", Some("2"), 30, 40),
        get(3, "y", None, 1, 2),
        get(3, "x", Some("1"), 50, 60),
    ]);
    assert_violation_on(&v, "x", 6);
}

#[test]
fn overlapping_puts_may_be_read_in_either_order() {
    for last in ["a", "b"] {
        let v = verdict([
            put(1, "k", "a", 0, 50),
            put(2, "k", "b", 10, 60),
            get(3, "k", Some(last), 70, 80),
        ]);
        assert_eq!(v, Verdict::Linearizable, "final read {last}");
    }
}

#[test]
fn reads_during_overlapping_puts_may_see_both_values_in_one_order() {
    let v = verdict([
        put(1, "k", "a", 0, 50),
        put(2, "k", "b", 10, 60),
        get(3, "k", Some("b"), 20, 30),
        get(4, "k", Some("a"), 40, 45),
        get(3, "k", Some("a"), 70, 80),
    ]);
    assert_eq!(v, Verdict::Linearizable);
}

#[test]
fn unknown_write_that_took_effect_is_accepted() {
    let v = verdict([
        put(1, "k", "a", 0, 10),
        put_unknown(2, "k", "b", 20),
        get(3, "k", Some("b"), 100, 110),
    ]);
    assert_eq!(v, Verdict::Linearizable);
}

#[test]
fn unknown_write_that_never_took_effect_is_accepted() {
    let v = verdict([
        put(1, "k", "a", 0, 10),
        put_unknown(2, "k", "b", 20),
        get(3, "k", Some("a"), 100, 110),
        get(3, "k", Some("a"), 1_000, 1_010),
    ]);
    assert_eq!(v, Verdict::Linearizable);
}

#[test]
fn unknown_write_may_take_effect_long_after_its_invocation() {
    let v = verdict([
        put_unknown(2, "k", "b", 0),
        get(3, "k", None, 100, 110),
        get(3, "k", Some("b"), 1_000, 1_010),
    ]);
    assert_eq!(v, Verdict::Linearizable);
}

#[test]
fn unknown_write_takes_effect_at_most_once() {
    let v = verdict([
        put(1, "k", "a", 0, 10),
        put_unknown(2, "k", "b", 20),
        get(3, "k", Some("b"), 100, 110),
        put(1, "k", "c", 200, 210),
        get(3, "k", Some("b"), 300, 310),
    ]);
    assert_violation_on(&v, "k", 4);
}

#[test]
fn unknown_write_cannot_take_effect_before_its_invocation() {
    let v = verdict([get(3, "k", Some("b"), 0, 10), put_unknown(2, "k", "b", 20)]);
    assert_violation_on(&v, "k", 0);
}

#[test]
fn failed_cas_can_be_explained_by_an_unknown_write_nobody_read() {
    // "z" is never read, but only its write explains why the comparison with "a" failed.
    let v = verdict([
        put(1, "k", "a", 0, 10),
        put_unknown(2, "k", "z", 20),
        cas(3, "k", Some("a"), "b", 30, Some(40), Outcome::Fail),
    ]);
    assert_eq!(v, Verdict::Linearizable);
}

#[test]
fn unknown_cas_may_or_may_not_have_swapped() {
    for seen in ["a", "b"] {
        let v = verdict([
            put(1, "k", "a", 0, 10),
            cas(2, "k", Some("a"), "b", 20, None, Outcome::Unknown),
            get(3, "k", Some(seen), 100, 110),
        ]);
        assert_eq!(v, Verdict::Linearizable, "read {seen}");
    }
}

#[test]
fn unknown_cas_cannot_swap_from_the_wrong_value() {
    let v = verdict([
        put(1, "k", "x", 0, 10),
        cas(2, "k", Some("a"), "b", 20, None, Outcome::Unknown),
        get(3, "k", Some("b"), 100, 110),
    ]);
    assert_violation_on(&v, "k", 2);
}

#[test]
fn cas_from_absent_swaps_only_an_absent_key() {
    let ok = verdict([
        cas(1, "k", None, "a", 0, Some(10), Outcome::Ok),
        cas(2, "k", None, "b", 20, Some(30), Outcome::Fail),
        get(3, "k", Some("a"), 40, 50),
    ]);
    assert_eq!(ok, Verdict::Linearizable);
    let twice = verdict([
        cas(1, "k", None, "a", 0, Some(10), Outcome::Ok),
        cas(2, "k", None, "b", 20, Some(30), Outcome::Ok),
    ]);
    assert!(matches!(twice, Verdict::Violation { .. }), "{twice}");
}

#[test]
fn failed_and_unknown_gets_constrain_nothing() {
    let v = verdict([
        put(1, "k", "a", 0, 10),
        op(2, OpKind::Get, "k", (20, Some(30)), Outcome::Fail),
        op(3, OpKind::Get, "k", (20, None), Outcome::Unknown),
        get(4, "k", Some("a"), 40, 50),
    ]);
    assert_eq!(v, Verdict::Linearizable);
}

#[test]
fn exhausted_search_is_inconclusive_not_linearizable() {
    let ops = (0..6).map(|i| put(i, "k", &i.to_string(), 0, 100));
    let limits = Limits {
        max_steps_per_key: 3,
        ..Limits::default()
    };
    let v = check(
        &history(ops.chain([get(9, "k", Some("0"), 200, 300)])),
        &limits,
    );
    match v {
        Verdict::Inconclusive { key, reason } => {
            assert_eq!(key, "k");
            assert!(reason.contains("max_steps_per_key"), "{reason}");
        }
        other => panic!("expected inconclusive, got {other}"),
    }
}

#[test]
fn violation_wins_over_inconclusive_on_another_key() {
    let mut ops: Vec<Op> = (0..6)
        .map(|i| put(i, "a", &i.to_string(), 0, 100))
        .collect();
    ops.push(get(9, "a", Some("0"), 200, 300));
    ops.push(put(1, "b", "x", 0, 10));
    ops.push(get(2, "b", None, 20, 30));
    let limits = Limits {
        max_steps_per_key: 10,
        ..Limits::default()
    };
    assert_violation_on(&check(&history(ops), &limits), "b", 8);
}
