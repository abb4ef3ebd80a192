//! Random damage to the tail of the last segment — cut at a random byte, zeros from a random byte,
//! one flipped bit — always recovers to a prefix of what was written (whole batches, or a batch
//! missing its trailing hard state), never to anything invented, and the WAL accepts appends after.

mod storage_common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aurora::storage::{Durability, Entry, HardState, Wal, WalOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use storage_common::{append, entry, flush_wait, hard_state, options, recover, segment_files};

const BATCHES: u64 = 60;

fn wal_options() -> WalOptions {
    options(Durability::Fsync, 16 * 1024, 4096)
}

fn term_of_batch(batch: u64) -> u64 {
    1 + batch / 20
}

fn hard_state_of_batch(batch: u64) -> HardState {
    if batch == 0 {
        return HardState::default();
    }
    hard_state(term_of_batch(batch), Some(1), batch)
}

/// A WAL written once per test: batch `b` appends `1 + b % 4` entries in term `1 + b / 20`, then
/// sets the hard state with commit `b`.
struct Template {
    dir: tempfile::TempDir,
    /// Every entry written, in index order.
    entries: Vec<Entry>,
    /// `batch_end[b]`: the last index after batch `b` (`batch_end[0] = 0`).
    batch_end: Vec<u64>,
}

impl Template {
    fn build() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(dir.path(), wal_options()).expect("open");
        let mut entries = Vec::new();
        let mut batch_end = vec![0];
        let mut next = 1;
        for batch in 1..=BATCHES {
            let term = term_of_batch(batch);
            let last = next + batch % 4;
            append(&mut wal, next, last, term).expect("append");
            entries.extend((next..=last).map(|i| entry(i, term)));
            wal.set_hard_state(hard_state_of_batch(batch))
                .expect("hard state");
            flush_wait(&mut wal);
            batch_end.push(last);
            next = last + 1;
        }
        drop(wal);
        assert!(
            segment_files(dir.path()).len() >= 3,
            "the template spans several segments"
        );
        Self {
            dir,
            entries,
            batch_end,
        }
    }

    /// A copy of the template's data directory whose last written segment `damage` changed.
    fn damaged_copy(&self, damage: impl FnOnce(&std::fs::File)) -> tempfile::TempDir {
        let copy = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(copy.path().join("wal")).expect("wal dir");
        for file in segment_files(self.dir.path()) {
            let name = file.file_name().expect("file name");
            std::fs::copy(&file, copy.path().join("wal").join(name)).expect("copy");
        }
        let (segment, _) = last_written_segment(copy.path());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&segment)
            .expect("open");
        damage(&file);
        copy
    }
}

/// The last segment that holds records (a fresh, all-zero segment may follow it) and the length
/// of its written part.
fn last_written_segment(dir: &Path) -> (PathBuf, u64) {
    for file in segment_files(dir).into_iter().rev() {
        let bytes = std::fs::read(&file).expect("read");
        if let Some(last_nonzero) = bytes.iter().rposition(|&b| b != 0) {
            return (file, last_nonzero as u64 + 1);
        }
    }
    panic!("no written segment");
}

/// Recovers the damaged copy, checks it against the template, appends, and recovers again.
fn check_recovers_a_prefix(template: &Template, dir: &Path) -> Result<(), TestCaseError> {
    let (recovery, entries) = recover(dir, wal_options());
    let count = entries.len();
    prop_assert_eq!(
        &entries[..],
        &template.entries[..count],
        "recovered entries are a prefix"
    );
    let batch = template
        .batch_end
        .iter()
        .position(|&end| end == count as u64);
    prop_assert!(
        batch.is_some(),
        "{} entries is not a whole number of batches",
        count
    );
    let batch = batch.expect("checked") as u64;
    prop_assert_eq!(recovery.last().index, count as u64);
    let hs = recovery.hard_state();
    let allowed = [
        hard_state_of_batch(batch),
        hard_state_of_batch(batch.saturating_sub(1)),
    ];
    prop_assert!(
        allowed.contains(&hs),
        "hard state {:?} after batch {}",
        hs,
        batch
    );

    // The WAL goes on from there.
    let term = term_of_batch(batch + 1);
    let mut wal = recovery.start().expect("start");
    append(&mut wal, count as u64 + 1, count as u64 + 3, term).expect("append");
    wal.set_hard_state(hard_state(term, Some(2), 1000))
        .expect("hard state");
    flush_wait(&mut wal);
    drop(wal);

    let (recovery, again) = recover(dir, wal_options());
    prop_assert!(recovery.torn_tail().is_none());
    prop_assert_eq!(recovery.hard_state(), hard_state(term, Some(2), 1000));
    let mut expected = template.entries[..count].to_vec();
    expected.extend((count as u64 + 1..=count as u64 + 3).map(|i| entry(i, term)));
    prop_assert_eq!(again, expected);
    Ok(())
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn cutting_the_last_segment_at_any_byte_recovers_a_prefix() {
    let template = Template::build();
    let (_, written) = last_written_segment(template.dir.path());
    runner()
        .run(&(0..=written), |cut| {
            let copy = template.damaged_copy(|file| file.set_len(cut).expect("truncate"));
            check_recovers_a_prefix(&template, copy.path())
        })
        .expect("property holds");
}

#[test]
fn zeroing_the_last_segment_from_any_byte_recovers_a_prefix() {
    let template = Template::build();
    let (_, written) = last_written_segment(template.dir.path());
    runner()
        .run(&(0..=written), |from| {
            let copy = template.damaged_copy(|file| {
                let zeros = vec![0u8; (written - from) as usize];
                file.write_all_at(&zeros, from).expect("zero");
            });
            check_recovers_a_prefix(&template, copy.path())
        })
        .expect("property holds");
}

#[test]
fn flipping_any_bit_in_the_last_segment_recovers_a_prefix() {
    let template = Template::build();
    let (_, written) = last_written_segment(template.dir.path());
    runner()
        .run(&(0..written, 0..8u8), |(at, bit)| {
            let copy = template.damaged_copy(|file| {
                let mut byte = [0u8];
                file.read_exact_at(&mut byte, at).expect("read");
                byte[0] ^= 1 << bit;
                file.write_all_at(&byte, at).expect("flip");
            });
            check_recovers_a_prefix(&template, copy.path())
        })
        .expect("property holds");
}
