//! Helpers shared by the storage integration tests: deterministic entry payloads and short-hands
//! for appending, flushing and recovering.
#![allow(dead_code)] // Each test crate uses a different subset.

use std::path::Path;

use aurora::storage::{
    Durability, Durable, Entry, EntryRef, HardState, LogPosition, Wal, WalError, WalOptions,
    WalRecovery,
};

/// The payload of entry `index` written in `term`: its length and bytes depend on both, so an
/// entry recovered from the wrong place or the wrong write cannot match.
pub fn payload(index: u64, term: u64) -> Vec<u8> {
    let len = ((index * 31 + term * 7) % 200) as usize;
    let mut state = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ term.rotate_left(17);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The kind byte of entry `index` (any deterministic value works).
pub fn kind(index: u64) -> u8 {
    (index % 3) as u8
}

/// The entry `(index, term)` as the tests write it.
pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        kind: kind(index),
        data: payload(index, term),
    }
}

pub fn options(durability: Durability, segment_bytes: u64, buffer_bytes: usize) -> WalOptions {
    WalOptions {
        durability,
        segment_bytes,
        buffer_bytes,
    }
}

/// Appends entries `first ..= last`, all in `term`, with the deterministic payloads.
pub fn append(wal: &mut Wal, first: u64, last: u64, term: u64) -> Result<(), WalError> {
    let payloads: Vec<(u64, Vec<u8>)> = (first..=last).map(|i| (i, payload(i, term))).collect();
    wal.append_entries(
        first,
        payloads.iter().map(|(i, data)| EntryRef {
            term,
            kind: kind(*i),
            data,
        }),
    )
}

/// Appends `batches` batches of five entries in `term` after the end of the log, each flushed and
/// waited for: enough records to fill several small segments.
pub fn append_batches_of_five(wal: &mut Wal, batches: u64, term: u64) {
    for _ in 0..batches {
        let first = wal.last().index + 1;
        append(wal, first, first + 4, term).expect("append");
        flush_wait(wal);
    }
}

/// Flushes with sync and blocks until it is durable.
pub fn flush_wait(wal: &mut Wal) -> Durable {
    let seq = wal.flush(true, 0).expect("flush");
    wal.wait_durable(seq).expect("durable")
}

pub fn hard_state(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

pub fn at(index: u64, term: u64) -> LogPosition {
    LogPosition { index, term }
}

/// Recovers the WAL and reads every entry.
pub fn recover(dir: &Path, options: WalOptions) -> (WalRecovery, Vec<Entry>) {
    let recovery = WalRecovery::open(dir, options).expect("recovery");
    let entries = recovery
        .entries()
        .collect::<Result<Vec<_>, _>>()
        .expect("entries read back");
    (recovery, entries)
}

/// The segment files in the WAL directory, sorted.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
}
