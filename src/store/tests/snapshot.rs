use super::*;

/// A store with a bit of everything in it.
fn busy_world() -> World {
    let mut w = World::new();
    let client = w.register();
    let (a, b) = (w.grant(1000), w.grant(2000));
    w.ok(put_leased("k1", "v1", a));
    w.put("k2", "v2");
    w.put("k2", "v3");
    w.ok(delete(KeyRange::single("k1")));
    w.ok(Command::Lock {
        name: b"L".to_vec(),
        lease: a,
    });
    w.run_as(
        header(client, 1, 0),
        Command::Lock {
            name: b"L".to_vec(),
            lease: b,
        },
    );
    w.ok(Command::Campaign {
        name: b"E".to_vec(),
        lease: b,
        value: b"x".to_vec(),
    });
    w.run_as(
        header(client, 2, 0),
        Command::Arrive {
            name: b"B".to_vec(),
            n: 3,
            lease: a,
        },
    );
    w.ok(Command::FetchAdd {
        name: b"c".to_vec(),
        delta: -3,
    });
    w.ok(Command::Compact { revision: 3 });
    w
}

fn snapshot_of(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.snapshot(&mut bytes).expect("in memory");
    bytes
}

#[test]
fn restore_rebuilds_an_identical_store() {
    let w = busy_world();
    let bytes = snapshot_of(&w.store);
    let restored = Store::restore(&mut bytes.as_slice()).expect("valid snapshot");
    assert_eq!(snapshot_of(&restored), bytes);
    assert_eq!(restored.applied_index(), w.store.applied_index());
    assert_eq!(restored.used_bytes(), w.store.used_bytes());
    let all = KeyRange::all();
    let history: Vec<Event> = restored.events_since(4, &all).expect("retained").collect();
    let original: Vec<Event> = w.store.events_since(4, &all).expect("retained").collect();
    assert_eq!(history, original);
}

#[test]
fn a_flipped_bit_fails_the_checksum() {
    let bytes = snapshot_of(&busy_world().store);
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x10;
    let error = Store::restore(&mut corrupt.as_slice()).expect_err("corrupt");
    assert!(
        matches!(
            error,
            SnapshotError::Checksum { .. } | SnapshotError::Malformed(_)
        ),
        "{error}"
    );
}

#[test]
fn a_truncated_snapshot_or_foreign_file_is_refused() {
    let bytes = snapshot_of(&busy_world().store);
    for len in [0, 7, 20, bytes.len() / 2, bytes.len() - 1] {
        let error = Store::restore(&mut &bytes[..len]).expect_err("truncated");
        assert!(
            matches!(error, SnapshotError::Malformed(_)),
            "{len}: {error}"
        );
    }
    let error = Store::restore(&mut &b"not a snapshot at all"[..]).expect_err("foreign");
    assert!(matches!(error, SnapshotError::BadMagic { .. }));
    let mut trailing = bytes;
    trailing.push(0);
    assert!(matches!(
        Store::restore(&mut trailing.as_slice()),
        Err(SnapshotError::Malformed(_))
    ));
}

#[test]
fn a_future_format_version_is_refused() {
    let mut bytes = snapshot_of(&busy_world().store);
    bytes[8] = 2;
    let error = Store::restore(&mut bytes.as_slice()).expect_err("future");
    assert!(matches!(
        error,
        SnapshotError::UnsupportedVersion {
            got: 2,
            supported: 1
        }
    ));
}
