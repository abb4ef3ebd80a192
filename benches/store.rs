//! Cost of the store's apply and read paths, each printed beside a baseline measured in the same
//! run:
//!
//! - applying a put entry (decode, session check, MVCC write, watch event, cached response) vs.
//!   inserting the same owned key and value into a plain `BTreeMap` (the floor for storing it);
//! - the same put without a session (no dedup cache) against the same baseline;
//! - decoding a put request alone vs. copying its bytes;
//! - a latest-revision point read through `Store::read` vs. `BTreeMap::get` plus a value clone;
//! - a sequencer `fetch_add(1)` and a lock + unlock pair, vs. the put entry above;
//! - writing a snapshot vs. crc32c over the same number of bytes.
//!
//! Steady state: 1024 keys overwritten in turn, compacted every 4096 entries down to the last 1024
//! revisions (the auto-compaction policy), so history does not grow without bound.
//! `cargo bench --bench store`. Each figure is the median of 5 runs (apply cases after one untimed
//! warm-up run).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use aurora::store::{
    codec, ApplyOutput, Command, KeyRange, PutRequest, RangeRequest, ReadRequest, Request,
    SessionHeader, Store, StoreLimits,
};

const RUNS: usize = 5;
const ENTRIES: u64 = 100_000;
const KEYS: u64 = 1024;
const VALUE_BYTES: usize = 64;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn report(what: &str, ns: f64, baseline_what: &str, baseline_ns: f64) {
    println!(
        "{what:<44} {ns:>9.1} ns/op   baseline ({baseline_what}) {baseline_ns:>8.1} ns/op   ratio {:.2}",
        ns / baseline_ns
    );
}

fn key(i: u64) -> Vec<u8> {
    format!("job/{:06}/rank", i % KEYS).into_bytes()
}

fn encode(session: SessionHeader, command: Command) -> Vec<u8> {
    let mut bytes = Vec::new();
    codec::encode_request(&Request { session, command }, &mut bytes);
    bytes
}

/// `ENTRIES` encoded entries made by `command(i)`, in one session or none.
fn entries(with_session: bool, command: impl Fn(u64) -> Command) -> (Store, Vec<Vec<u8>>) {
    let mut store = Store::new(StoreLimits::default());
    let mut out = ApplyOutput::default();
    store.apply(
        1,
        &encode(SessionHeader::none(0), Command::RegisterSession),
        &mut out,
    );
    let entries = (0..ENTRIES)
        .map(|i| {
            let session = if with_session {
                SessionHeader {
                    client_id: 1,
                    seq: i + 1,
                    acked_seq: i,
                }
            } else {
                SessionHeader::none(i + 1)
            };
            encode(session, command(i))
        })
        .collect();
    (store, entries)
}

fn put(i: u64) -> Command {
    Command::Put(PutRequest::new(key(i), vec![b'v'; VALUE_BYTES]))
}

/// Median ns per entry of applying `make()`'s entries, compacting as the policy would. One more
/// run than measured goes first, untimed, so no case pays for warming the allocator.
fn apply_ns(make: impl Fn() -> (Store, Vec<Vec<u8>>)) -> f64 {
    let mut samples: Vec<f64> = (0..=RUNS)
        .map(|_| {
            let (mut store, entries) = make();
            let mut out = ApplyOutput::default();
            let compact = encode(SessionHeader::none(0), Command::Compact { revision: 1 });
            let start = Instant::now();
            let mut index = store.applied_index();
            for entry in &entries {
                index += 1;
                store.apply(index, entry, &mut out);
                black_box(&out);
                if index % 4096 == 0 {
                    if let Some(revision) = store.compaction_target(1024) {
                        index += 1;
                        let mut bytes = compact.clone();
                        let at = bytes.len() - 8;
                        bytes[at..].copy_from_slice(&revision.to_le_bytes());
                        store.apply(index, &bytes, &mut out);
                        assert!(out
                            .response
                            .as_ref()
                            .is_some_and(|r| r.response.result.is_ok()));
                    }
                }
            }
            start.elapsed().as_nanos() as f64 / entries.len() as f64
        })
        .collect();
    samples.remove(0);
    median(samples)
}

fn btreemap_insert_ns() -> f64 {
    median(
        (0..RUNS)
            .map(|_| {
                let mut map: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
                let start = Instant::now();
                for i in 0..ENTRIES {
                    map.insert(key(i), vec![b'v'; VALUE_BYTES]);
                }
                black_box(&map);
                start.elapsed().as_nanos() as f64 / ENTRIES as f64
            })
            .collect(),
    )
}

fn main() {
    let put_session_ns = apply_ns(|| entries(true, put));
    let put_plain_ns = apply_ns(|| entries(false, put));
    let insert_ns = btreemap_insert_ns();
    report(
        "apply put, in a session",
        put_session_ns,
        "BTreeMap insert",
        insert_ns,
    );
    report(
        "apply put, sessionless",
        put_plain_ns,
        "BTreeMap insert",
        insert_ns,
    );

    let limits = StoreLimits::default();
    let one_put = encode(SessionHeader::none(1), put(1));
    let decode_ns = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..ENTRIES {
                    black_box(codec::decode_request(black_box(&one_put), &limits).expect("valid"));
                }
                start.elapsed().as_nanos() as f64 / ENTRIES as f64
            })
            .collect(),
    );
    let copy_ns = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..ENTRIES {
                    black_box(black_box(&one_put).to_vec());
                }
                start.elapsed().as_nanos() as f64 / ENTRIES as f64
            })
            .collect(),
    );
    report(
        &format!("decode put request ({} B)", one_put.len()),
        decode_ns,
        "copy the bytes",
        copy_ns,
    );

    let (mut store, all) = entries(false, put);
    let mut out = ApplyOutput::default();
    for (index, entry) in (2..).zip(all.iter().take(KEYS as usize)) {
        store.apply(index, entry, &mut out);
    }
    let mut map: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for i in 0..KEYS {
        map.insert(key(i), vec![b'v'; VALUE_BYTES]);
    }
    let reads: Vec<ReadRequest> = (0..KEYS)
        .map(|i| ReadRequest::Range(RangeRequest::latest(KeyRange::single(key(i)))))
        .collect();
    let read_ns = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                for i in 0..ENTRIES {
                    black_box(store.read(&reads[(i % KEYS) as usize]));
                }
                start.elapsed().as_nanos() as f64 / ENTRIES as f64
            })
            .collect(),
    );
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let get_ns = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                for i in 0..ENTRIES {
                    black_box(map.get(&keys[(i % KEYS) as usize]).cloned());
                }
                start.elapsed().as_nanos() as f64 / ENTRIES as f64
            })
            .collect(),
    );
    report(
        "read one key (latest)",
        read_ns,
        "BTreeMap get + clone",
        get_ns,
    );

    let fetch_add_ns = apply_ns(|| {
        entries(true, |_| Command::FetchAdd {
            name: b"sequencer".to_vec(),
            delta: 1,
        })
    });
    report(
        "apply fetch_add(1), in a session",
        fetch_add_ns,
        "apply put, in a session",
        put_session_ns,
    );

    let lock_ns = apply_ns(|| {
        let (mut store, _) = entries(false, put);
        let mut out = ApplyOutput::default();
        let grant = encode(
            SessionHeader::none(0),
            Command::LeaseGrant {
                id: 7,
                ttl_ms: 10_000,
            },
        );
        store.apply(2, &grant, &mut out);
        let first_token = store.revision() + 1;
        let entries = (0..ENTRIES)
            .map(|i| {
                let command = if i % 2 == 0 {
                    Command::Lock {
                        name: b"L".to_vec(),
                        lease: 7,
                    }
                } else {
                    Command::Unlock {
                        name: b"L".to_vec(),
                        token: first_token + i / 2,
                    }
                };
                encode(SessionHeader::none(i + 1), command)
            })
            .collect();
        (store, entries)
    });
    report(
        "apply lock or unlock (alternating)",
        lock_ns,
        "apply put, in a session",
        put_session_ns,
    );

    let mut bytes = Vec::new();
    let snapshot_ns = median(
        (0..RUNS)
            .map(|_| {
                bytes.clear();
                let start = Instant::now();
                store.snapshot(&mut bytes).expect("in memory");
                start.elapsed().as_nanos() as f64 / bytes.len() as f64
            })
            .collect(),
    );
    let crc_ns = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                black_box(crc32c::crc32c(black_box(&bytes)));
                start.elapsed().as_nanos() as f64 / bytes.len() as f64
            })
            .collect(),
    );
    report(
        &format!("snapshot ({} B), per byte", bytes.len()),
        snapshot_ns,
        "crc32c per byte",
        crc_ns,
    );
}
