//! Model-based property test: random command sequences (retries, out-of-order and duplicate
//! session requests, lease expiries, compactions, every bound hit) are applied to the store and to
//! a plain reference model written separately; responses, notifications, watch events and the
//! visible state must agree after every command, and the store's invariants must hold.

mod store_common;

use aurora::store::{
    cost, ApplyOutput, EventKind, KeyRange, Notification, RangeRequest, ReadRequest, Store,
    StoreLimits,
};
use proptest::prelude::*;
use store_common::model::Model;
use store_common::{entry, step, tight_limits, Action, Client, Step};

fn sorted(notifications: &[Notification]) -> Vec<String> {
    let mut all: Vec<String> = notifications.iter().map(|n| format!("{n:?}")).collect();
    all.sort();
    all
}

/// Everything a client could observe, read from both sides.
fn compare_state(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(store.revision(), model.revision());
    prop_assert_eq!(store.compact_revision(), model.compact_revision());
    prop_assert_eq!(store.used_bytes(), model.used_bytes());
    let mut reads = vec![ReadRequest::Leases];
    for revision in [
        0,
        model.compact_revision(),
        model.revision().saturating_sub(1),
    ] {
        reads.push(ReadRequest::Range(RangeRequest {
            revision,
            ..RangeRequest::latest(KeyRange::all())
        }));
    }
    for info in store.leases() {
        reads.push(ReadRequest::LeaseTimeToLive {
            id: info.id,
            keys: true,
        });
    }
    for name in ["x", "y"] {
        reads.push(ReadRequest::Counter { name: name.into() });
        reads.push(ReadRequest::Leader {
            name: format!("e{name}").into_bytes(),
        });
    }
    for read in reads {
        prop_assert_eq!(store.read(&read), model.read(&read), "read {:?}", read);
    }
    let all = KeyRange::all();
    let from = model.compact_revision() + 1;
    let history: Vec<_> = store
        .events_since(from, &all)
        .expect("after the compact revision")
        .collect();
    prop_assert_eq!(history, model.events_since(from, &all));
    prop_assert_eq!(store.verify(), Ok(()));
    Ok(())
}

fn run(steps: &[Step], limits: StoreLimits) -> Result<(), TestCaseError> {
    let mut store = Store::new(limits);
    let mut model = Model::new(limits);
    let mut client = Client::new(limits);
    let mut out = ApplyOutput::default();
    let mut index = 0;
    for (i, step) in steps.iter().enumerate() {
        match client.action(step) {
            Action::NoOp => {
                index += 1;
                store.apply(index, &[], &mut out);
                prop_assert_eq!(&out.response, &None);
            }
            Action::Read(read) => {
                prop_assert_eq!(
                    store.read(&read),
                    model.read(&read),
                    "step {}: {:?}",
                    i,
                    read
                );
            }
            Action::Apply(request) => {
                index += 1;
                let used_before = store.used_bytes();
                store.apply(index, &entry(&request), &mut out);
                let tombstones: u64 = out
                    .events
                    .iter()
                    .filter(|e| e.kind == EventKind::Delete)
                    .map(|e| cost::key_revision(&e.kv.key, &[]))
                    .sum();
                prop_assert!(
                    store.used_bytes()
                        <= used_before
                            .max(limits.max_store_bytes)
                            .saturating_add(tombstones),
                    "only deletions, never refused, may grow the store past its quota"
                );
                let expected = model.apply(index, &request);
                prop_assert_eq!(&out.rejected, &None);
                prop_assert_eq!(
                    out.response.as_ref(),
                    Some(&expected.response),
                    "step {}: {:?}",
                    i,
                    request
                );
                prop_assert_eq!(
                    sorted(&out.notifications),
                    sorted(&expected.notifications),
                    "step {}: {:?}",
                    i,
                    request
                );
                prop_assert_eq!(&out.events, &expected.events, "step {}: {:?}", i, request);
                client.observe(&expected.response.response, &out.notifications, &request);
            }
        }
        compare_state(&store, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_the_reference_model(steps in prop::collection::vec(step(), 1..120)) {
        run(&steps, tight_limits(u64::MAX))?;
    }

    #[test]
    fn store_agrees_with_the_reference_model_under_a_tight_quota(steps in prop::collection::vec(step(), 1..120)) {
        run(&steps, tight_limits(500))?;
    }
}
