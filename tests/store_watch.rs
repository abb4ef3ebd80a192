//! The watch seam: a watcher that starts from a past revision (history from the store, then every
//! later event from apply outputs) sees exactly the events at or after that revision in its range,
//! with nothing lost and nothing twice, whenever it starts; a start below the compact revision is
//! refused with a clear error.

mod store_common;

use aurora::store::{ApplyOutput, Compacted, Event, KeyRange, Store};
use proptest::prelude::*;
use store_common::{entry, step, tight_limits, Action, Client, Step};

/// A watcher as the server keeps it: a range, and the events it has sent.
struct Watcher {
    start: u64,
    range: KeyRange,
    sent: Vec<Event>,
}

fn ranges() -> Vec<KeyRange> {
    vec![
        KeyRange::all(),
        KeyRange::prefix("a"),
        KeyRange::single("b"),
        KeyRange::from_key("b"),
    ]
}

fn check(steps: &[Step], starts: &[(usize, u8, usize)]) -> Result<(), TestCaseError> {
    let limits = tight_limits(u64::MAX);
    let mut store = Store::new(limits);
    let mut client = Client::new(limits);
    let mut out = ApplyOutput::default();
    let mut every_event: Vec<Event> = Vec::new();
    let mut watchers: Vec<Watcher> = Vec::new();
    for (index, step) in (1..).zip(steps) {
        for &(at, back, range) in starts {
            if at % steps.len() != index as usize - 1 {
                continue;
            }
            let start = (store.revision() + 1).saturating_sub(back as u64).max(1);
            let range = ranges()[range % ranges().len()].clone();
            let history = store.events_since(start, &range).map(Iterator::collect);
            match history {
                Ok(sent) => watchers.push(Watcher { start, range, sent }),
                Err(error) => {
                    prop_assert!(start <= store.compact_revision());
                    prop_assert_eq!(
                        error,
                        Compacted {
                            requested: start,
                            compact_revision: store.compact_revision()
                        }
                    );
                }
            }
        }
        let bytes = match client.action(step) {
            Action::Apply(request) => {
                let bytes = entry(&request);
                store.apply(index, &bytes, &mut out);
                let addressed = out.response.clone().expect("valid request");
                client.observe(&addressed.response, &out.notifications, &request);
                bytes
            }
            _ => {
                store.apply(index, &[], &mut out);
                Vec::new()
            }
        };
        prop_assert!(
            out.events.iter().all(|e| e.revision() == store.revision()),
            "{:?}",
            bytes
        );
        for watcher in &mut watchers {
            let new = out
                .events
                .iter()
                .filter(|e| watcher.range.contains(&e.kv.key));
            watcher.sent.extend(new.cloned());
        }
        every_event.extend(out.events.iter().cloned());
    }
    for watcher in &watchers {
        let expected: Vec<&Event> = every_event
            .iter()
            .filter(|e| e.revision() >= watcher.start && watcher.range.contains(&e.kv.key))
            .collect();
        let sent: Vec<&Event> = watcher.sent.iter().collect();
        prop_assert_eq!(
            sent,
            expected,
            "watcher from {} on {:?}",
            watcher.start,
            watcher.range
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn a_watcher_started_at_any_point_misses_and_repeats_nothing(
        steps in prop::collection::vec(step(), 1..100),
        starts in prop::collection::vec((any::<usize>(), 0..8u8, any::<usize>()), 1..6),
    ) {
        check(&steps, &starts)?;
    }
}

#[test]
fn a_watcher_resuming_after_its_last_seen_revision_continues_exactly() {
    let limits = tight_limits(u64::MAX);
    let mut store = Store::new(limits);
    let mut out = ApplyOutput::default();
    let mut client = Client::new(limits);
    let puts: Vec<Step> = (0..6)
        .map(|i| Step::Op {
            session: 0,
            op: store_common::OpSpec::Put {
                key: i % 3,
                value: i as u8,
                lease: 0,
                prev_kv: false,
                ignore: 0,
            },
        })
        .collect();
    for (index, step) in (1..).zip(&puts) {
        let Action::Apply(request) = client.action(step) else {
            panic!("a put is applied");
        };
        store.apply(index, &entry(&request), &mut out);
    }
    let all = KeyRange::all();
    let seen: Vec<Event> = store
        .events_since(1, &all)
        .expect("nothing compacted")
        .take(3)
        .collect();
    let last_seen = seen.last().expect("three events").revision();
    let rest: Vec<Event> = store
        .events_since(last_seen + 1, &all)
        .expect("retained")
        .collect();
    let everything: Vec<Event> = store.events_since(1, &all).expect("retained").collect();
    assert_eq!([seen, rest].concat(), everything);
}
