//! Snapshot and determinism properties: a store restored from a snapshot behaves exactly like the
//! one that wrote it, and replicas applying the same log hold byte-identical state.

mod store_common;

use aurora::store::{ApplyOutput, Store, StoreLimits};
use proptest::prelude::*;
use store_common::{entry, step, tight_limits, Action, Client, Step};

fn snapshot_of(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.snapshot(&mut bytes).expect("writing to memory");
    bytes
}

/// Applies `steps` to `replicas` in lockstep, asserting identical outputs and reads; returns the
/// log as `(index, entry)` (an empty entry is a no-op; reads take no entry).
fn drive(
    replicas: &mut [Store],
    client: &mut Client,
    steps: &[Step],
    first_index: u64,
) -> Result<Vec<(u64, Vec<u8>)>, TestCaseError> {
    let mut log = Vec::new();
    for (index, step) in (first_index..).zip(steps) {
        match client.action(step) {
            Action::Read(read) => {
                let answers: Vec<_> = replicas.iter().map(|s| s.read(&read)).collect();
                prop_assert!(answers.windows(2).all(|w| w[0] == w[1]));
            }
            action => {
                let bytes = match &action {
                    Action::Apply(request) => entry(request),
                    _ => Vec::new(),
                };
                let mut outputs = Vec::new();
                for store in replicas.iter_mut() {
                    let mut out = ApplyOutput::default();
                    store.apply(index, &bytes, &mut out);
                    outputs.push(out);
                }
                prop_assert!(
                    outputs.windows(2).all(|w| w[0] == w[1]),
                    "replicas diverged at {}",
                    index
                );
                if let (Action::Apply(request), Some(addressed)) = (&action, &outputs[0].response) {
                    client.observe(&addressed.response, &outputs[0].notifications, request);
                }
                log.push((index, bytes));
            }
        }
    }
    Ok(log)
}

fn check(
    steps: &[Step],
    split: prop::sample::Index,
    limits: StoreLimits,
) -> Result<(), TestCaseError> {
    let split = split.index(steps.len());
    let (prefix, suffix) = steps.split_at(split);
    let mut client = Client::new(limits);
    let mut original = [Store::new(limits)];
    let prefix_log = drive(&mut original, &mut client, prefix, 1)?;
    let [original] = original;

    let bytes = snapshot_of(&original);
    let restored = Store::restore(&mut bytes.as_slice()).expect("a fresh snapshot restores");
    prop_assert_eq!(snapshot_of(&restored), bytes.clone(), "restore is exact");

    let mut pair = [original, restored];
    drive(&mut pair, &mut client, suffix, split as u64 + 1)?;
    prop_assert_eq!(snapshot_of(&pair[0]), snapshot_of(&pair[1]));

    let mut replay = Store::new(limits);
    let mut out = ApplyOutput::default();
    for (index, entry) in &prefix_log {
        replay.apply(*index, entry, &mut out);
    }
    prop_assert_eq!(
        snapshot_of(&replay),
        bytes,
        "a replica replaying the log writes the same snapshot"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn a_restored_store_answers_the_same_suffix_identically(steps in prop::collection::vec(step(), 1..100), split in any::<prop::sample::Index>()) {
        check(&steps, split, tight_limits(u64::MAX))?;
    }

    #[test]
    fn a_restored_store_answers_the_same_suffix_identically_under_a_tight_quota(steps in prop::collection::vec(step(), 1..100), split in any::<prop::sample::Index>()) {
        check(&steps, split, tight_limits(500))?;
    }
}
