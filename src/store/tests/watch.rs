use super::*;

#[test]
fn history_lists_changes_in_revision_order_with_previous_values() {
    let mut w = World::new();
    let first = w.put("a", "1");
    w.put("b", "1");
    w.put("a", "2");
    w.ok(delete(KeyRange::single("a")));
    let range = KeyRange::single("a");
    let events: Vec<Event> = w
        .store
        .events_since(first, &range)
        .expect("retained")
        .collect();
    let summary: Vec<(EventKind, u64, Option<Vec<u8>>)> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.revision(),
                e.prev_kv.as_ref().map(|p| p.value.clone()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::Put, first, None),
            (EventKind::Put, first + 2, Some(b"1".to_vec())),
            (EventKind::Delete, first + 3, Some(b"2".to_vec())),
        ]
    );
}

#[test]
fn history_equals_what_apply_reported() {
    let mut w = World::new();
    let lease = w.grant(100);
    let mut reported = Vec::new();
    let commands = [
        put("a", "1"),
        put_leased("b", "1", lease),
        put("a", "2"),
        delete(KeyRange::prefix("a")),
        Command::LeaseRevoke {
            id: lease,
            reason: RevokeReason::Expired,
        },
    ];
    for command in commands {
        w.ok(command);
        reported.extend(w.out.events.iter().cloned());
    }
    let all = KeyRange::all();
    let history: Vec<Event> = w.store.events_since(1, &all).expect("retained").collect();
    assert_eq!(history, reported);
}

#[test]
fn watching_from_a_compacted_revision_is_a_clear_error() {
    let mut w = World::new();
    w.put("a", "1");
    let compacted = w.put("a", "2");
    w.put("a", "3");
    w.ok(Command::Compact {
        revision: compacted,
    });
    let all = KeyRange::all();
    let error = w.store.events_since(compacted, &all).err();
    assert_eq!(
        error,
        Some(Compacted {
            requested: compacted,
            compact_revision: compacted
        })
    );
    let after: Vec<Event> = w
        .store
        .events_since(compacted + 1, &all)
        .expect("retained")
        .collect();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].prev_kv.as_ref().expect("prev kept").value, b"2");
}
