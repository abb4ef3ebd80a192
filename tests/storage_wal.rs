//! The WAL end to end on a real file system: round trip, group commit, roll and deletion,
//! suffix replacement, torn tails, corruption, modes, backpressure, wake-ups.

mod storage_common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use aurora::runtime::{Doorbell, ParkOutcome};
use aurora::storage::{
    CorruptReason, Durability, EntryRef, LogRuleError, RecordFault, SnapshotOptions, SnapshotStore,
    Wal, WalError, WalRecovery, SEGMENT_HEADER_LEN,
};
use storage_common::{
    append, append_batches_of_five, at, entry, flush_wait, hard_state, options, recover,
    segment_files,
};

const MIB: usize = 1 << 20;

#[test]
fn entries_and_hard_state_round_trip_through_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 4 * MIB as u64, MIB);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        for batch in 0..10u64 {
            append(&mut wal, batch * 10 + 1, batch * 10 + 10, 1 + batch / 4).expect("append");
            wal.set_hard_state(hard_state(1 + batch / 4, Some(2), batch * 10))
                .expect("hard state");
            let durable = flush_wait(&mut wal);
            assert_eq!(durable.last, at(batch * 10 + 10, 1 + batch / 4));
        }
    }
    let (recovery, entries) = recover(dir.path(), opts);
    assert_eq!(recovery.torn_tail(), None);
    assert_eq!(recovery.last(), at(100, 3));
    assert_eq!(recovery.hard_state(), hard_state(3, Some(2), 90));
    let expected: Vec<_> = (1..=100).map(|i| entry(i, 1 + (i - 1) / 40)).collect();
    assert_eq!(entries, expected);
}

#[test]
fn many_flushes_while_a_batch_is_in_flight_share_one_fdatasync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal =
        Wal::open(dir.path(), options(Durability::Fsync, 64 * MIB as u64, MIB)).expect("open");
    // The first flush goes to the disk at once; the 999 after it find that batch in flight and
    // are never polled, so they all ride in the second batch.
    let mut last_seq = 0;
    for index in 1..=1000u64 {
        append(&mut wal, index, index, 1).expect("append");
        last_seq = wal.flush(true, 0).expect("flush");
    }
    let durable = wal.wait_durable(last_seq).expect("durable");
    assert_eq!(durable.flush_seq, last_seq);
    assert_eq!(durable.last, at(1000, 1));
    let stats = wal.stats();
    assert_eq!(stats.flushes_requested, 1000);
    assert_eq!(stats.batches_written, 2);
    assert_eq!(stats.fdatasyncs, 2);

    // Flushing and waiting each time costs exactly one fdatasync per flush.
    for index in 1001..=1010u64 {
        append(&mut wal, index, index, 1).expect("append");
        flush_wait(&mut wal);
    }
    assert_eq!(wal.stats().fdatasyncs, 12);
    assert_eq!(wal.stats().batches_written, 12);
}

#[test]
fn durable_reports_are_cumulative_and_in_flush_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal =
        Wal::open(dir.path(), options(Durability::Fsync, 4 * MIB as u64, MIB)).expect("open");
    let mut reported = Vec::new();
    let mut requested = 0;
    for index in 1..=50u64 {
        append(&mut wal, index, index, 1).expect("append");
        requested = wal.flush(true, index).expect("flush");
        if let Some(durable) = wal.poll(index).expect("poll") {
            reported.push(durable);
        }
    }
    reported.push(wal.wait_durable(requested).expect("durable"));
    for pair in reported.windows(2) {
        assert!(pair[0].flush_seq < pair[1].flush_seq, "{pair:?}");
        assert!(pair[0].last.index <= pair[1].last.index);
    }
    let final_report = reported.last().expect("at least the final report");
    assert_eq!(final_report.flush_seq, requested);
    assert_eq!(final_report.last, at(50, 1));
}

#[test]
fn unsynced_flush_is_covered_by_the_next_synced_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 4 * MIB as u64, MIB);
    let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
    append(&mut wal, 1, 5, 1).expect("append");
    wal.flush(false, 0).expect("unsynced flush");
    wal.wait_idle().expect("idle");
    assert_eq!(
        wal.poll(0).expect("poll"),
        None,
        "an unsynced flush is never reported"
    );
    assert_eq!(wal.stats().fdatasyncs, 0);
    // Nothing new to write: the synced flush issues the fdatasync alone.
    let durable = flush_wait(&mut wal);
    assert_eq!(durable.last, at(5, 1));
    assert_eq!(wal.stats().fdatasyncs, 1);
    assert_eq!(wal.stats().batches_written, 1);
}

#[test]
fn segments_roll_and_compacted_ones_are_deleted_after_the_snapshot_mark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 8192, 4096);
    let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
    append_batches_of_five(&mut wal, 40, 2);
    wal.wait_idle().expect("idle");
    let rolled = wal.stats().segments_rolled;
    assert!(
        rolled >= 4,
        "40 batches of ~500 bytes fill several 8 KiB segments: {rolled}"
    );
    let before = segment_files(dir.path());

    let (mut snapshots, _) =
        SnapshotStore::open(dir.path(), SnapshotOptions::default()).expect("snapshot store");
    snapshots
        .begin_save(at(150, 2), b"members".to_vec(), &b"state"[..])
        .expect("save");
    let snapshot = snapshots.wait().expect("a save").expect("durable");
    wal.mark_snapshot(&snapshot, false).expect("mark");
    flush_wait(&mut wal);
    wal.wait_idle().expect("idle");
    let deleted = wal.stats().segments_deleted;
    assert!(
        deleted >= 2,
        "segments wholly below index 150 go: {deleted}"
    );
    let after = segment_files(dir.path());
    assert_eq!(after.len() as u64, before.len() as u64 - deleted);
    assert_eq!(after[0], before[deleted as usize], "the oldest ones went");
    drop(wal);

    let (recovery, entries) = recover(dir.path(), opts);
    assert_eq!(recovery.compacted(), at(150, 2));
    assert_eq!(recovery.last(), at(200, 2));
    let expected: Vec<_> = (151..=200).map(|i| entry(i, 2)).collect();
    assert_eq!(entries, expected);
}

#[test]
fn follower_overwriting_a_suffix_recovers_the_new_suffix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 4 * MIB as u64, MIB);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append(&mut wal, 1, 10, 1).expect("append");
        flush_wait(&mut wal);
        append(&mut wal, 6, 8, 2).expect("overwrite from 6");
        assert_eq!(wal.last(), at(8, 2));
        flush_wait(&mut wal);
        append(&mut wal, 9, 9, 3).expect("append after the overwrite");
        flush_wait(&mut wal);
    }
    let (recovery, entries) = recover(dir.path(), opts);
    assert_eq!(recovery.last(), at(9, 3));
    let mut expected: Vec<_> = (1..=5).map(|i| entry(i, 1)).collect();
    expected.extend((6..=8).map(|i| entry(i, 2)));
    expected.push(entry(9, 3));
    assert_eq!(entries, expected);
}

#[test]
fn torn_tail_is_cut_and_the_wal_accepts_appends_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 4 * MIB as u64, MIB);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append(&mut wal, 1, 3, 1).expect("append");
        flush_wait(&mut wal);
        append(&mut wal, 4, 4, 1).expect("append");
        flush_wait(&mut wal);
    }
    // The second batch is one entries record right after the first: cut it in the middle.
    let segment = segment_files(dir.path())[0].clone();
    let bytes = std::fs::read(&segment).expect("read");
    let last_record_end = bytes.iter().rposition(|&b| b != 0).expect("records") + 1;
    let (recovery, entries) = recover(dir.path(), opts.clone());
    assert_eq!(entries.len(), 4);
    drop(recovery);
    let second_record_start = {
        let first_len = u32::from_le_bytes(
            bytes[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 4]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        SEGMENT_HEADER_LEN + 8 + first_len
    };
    let mut file = OpenOptions::new().write(true).open(&segment).expect("open");
    let cut = (second_record_start + last_record_end) / 2;
    file.seek(SeekFrom::Start(cut as u64)).expect("seek");
    file.write_all(&vec![0u8; last_record_end - cut])
        .expect("zero the tail");
    drop(file);

    let (recovery, entries) = recover(dir.path(), opts.clone());
    let torn = recovery.torn_tail().expect("a torn tail").clone();
    assert_eq!(torn.path, segment);
    assert_eq!(torn.offset, second_record_start as u64);
    assert!(
        matches!(torn.reason, RecordFault::Checksum { .. }),
        "{torn:?}"
    );
    assert_eq!(entries, (1..=3).map(|i| entry(i, 1)).collect::<Vec<_>>());
    let mut wal = recovery.start().expect("start");
    assert_eq!(wal.last(), at(3, 1));
    append(&mut wal, 4, 6, 2).expect("append after the cut");
    flush_wait(&mut wal);
    drop(wal);

    let (recovery, entries) = recover(dir.path(), opts);
    assert_eq!(recovery.torn_tail(), None);
    let mut expected: Vec<_> = (1..=3).map(|i| entry(i, 1)).collect();
    expected.extend((4..=6).map(|i| entry(i, 2)));
    assert_eq!(entries, expected);
}

#[test]
fn corrupted_record_before_the_last_segment_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 8192, 4096);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append_batches_of_five(&mut wal, 30, 1);
    }
    let first = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).expect("read");
    bytes[SEGMENT_HEADER_LEN + 20] ^= 0x04;
    std::fs::write(&first, &bytes).expect("write back");

    let error = WalRecovery::open(dir.path(), opts).expect_err("corruption must refuse");
    let WalError::Corrupt {
        path,
        offset,
        reason,
    } = &error
    else {
        panic!("expected Corrupt, got {error}");
    };
    assert_eq!(path, &first);
    assert_eq!(*offset, SEGMENT_HEADER_LEN as u64);
    assert!(
        matches!(reason, CorruptReason::Record(RecordFault::Checksum { .. })),
        "{reason:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&first.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("offset {SEGMENT_HEADER_LEN}")),
        "{message}"
    );
    assert!(message.contains("restore it from a peer"), "{message}");
}

#[test]
fn missing_middle_segment_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 8192, 4096);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append_batches_of_five(&mut wal, 40, 1);
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 4);
    std::fs::remove_file(&files[1]).expect("remove a middle segment");
    let error = WalRecovery::open(dir.path(), opts).expect_err("a gap must refuse");
    assert!(
        matches!(
            error,
            WalError::Corrupt {
                reason: CorruptReason::SequenceGap { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn starting_in_the_other_durability_mode_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 8192, 4096)).expect("open");
        append(&mut wal, 1, 1, 1).expect("append");
        flush_wait(&mut wal);
    }
    let error = WalRecovery::open(dir.path(), options(Durability::Memory, 8192, 4096))
        .expect_err("mode switch must refuse");
    assert!(
        matches!(
            error,
            WalError::ModeMismatch {
                on_disk: Durability::Fsync,
                configured: Durability::Memory,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("durability = \"fsync\""),
        "{error}"
    );
}

#[test]
fn memory_mode_syncs_term_and_vote_but_writes_no_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Memory, 8192, 4096);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append(&mut wal, 1, 100, 1).expect("append");
        let durable = flush_wait(&mut wal);
        assert_eq!(
            durable.last,
            at(100, 1),
            "entries are durable in replicated memory"
        );
        assert_eq!(durable.sync_latency_ns, None, "no disk work for entries");
        assert_eq!(wal.stats().bytes_written, 0);

        wal.set_hard_state(hard_state(3, Some(2), 50))
            .expect("vote");
        let durable = flush_wait(&mut wal);
        assert!(durable.sync_latency_ns.is_some(), "the vote was synced");
        assert_eq!(durable.hard_state, hard_state(3, Some(2), 50));
        let written = wal.stats().bytes_written;
        assert!(
            written > 0 && written < 200,
            "one header and one hard state: {written}"
        );

        // Only the commit index moved: nothing to write in memory mode.
        wal.set_hard_state(hard_state(3, Some(2), 99))
            .expect("commit");
        flush_wait(&mut wal);
        assert_eq!(wal.stats().bytes_written, written);
    }
    let (recovery, entries) = recover(dir.path(), opts);
    assert_eq!(recovery.hard_state(), hard_state(3, Some(2), 50));
    assert_eq!(
        recovery.last(),
        at(0, 0),
        "a memory-mode node restarts with no log"
    );
    assert!(entries.is_empty());
}

#[test]
fn full_buffer_is_backpressure_and_an_oversized_record_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 65536, 1024)).expect("open");
    let huge = vec![7u8; 2000];
    let error = wal
        .append_entries(
            1,
            [EntryRef {
                term: 1,
                kind: 0,
                data: &huge,
            }],
        )
        .expect_err("cannot ever fit");
    assert!(
        matches!(error, WalError::RecordTooLarge { first_index: 1, .. }),
        "{error}"
    );

    let data = [1u8; 100];
    let mut index = 1;
    let error = loop {
        match wal.append_entries(
            index,
            [EntryRef {
                term: 1,
                kind: 0,
                data: &data,
            }],
        ) {
            Ok(()) => index += 1,
            Err(error) => break error,
        }
        assert!(index < 100, "a 1 KiB buffer must fill up");
    };
    assert!(matches!(error, WalError::Backpressure { .. }), "{error}");
    assert_eq!(
        wal.last(),
        at(index - 1, 1),
        "a refused append leaves the log as it was"
    );
    flush_wait(&mut wal);
    wal.append_entries(
        index,
        [EntryRef {
            term: 1,
            kind: 0,
            data: &data,
        }],
    )
    .expect("room again after the batch is durable");
}

#[test]
fn appends_that_break_the_log_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 65536, 4096)).expect("open");
    append(&mut wal, 1, 5, 2).expect("append");
    let free = wal.buffer_free_bytes();
    let gap = append(&mut wal, 7, 7, 2).expect_err("gap");
    assert!(
        matches!(gap, WalError::Rule(LogRuleError::Gap { .. })),
        "{gap}"
    );
    let regression = append(&mut wal, 6, 6, 1).expect_err("term regression");
    assert!(
        matches!(
            regression,
            WalError::Rule(LogRuleError::TermRegression { .. })
        ),
        "{regression}"
    );
    let zero = append(&mut wal, 0, 0, 2).expect_err("index zero");
    assert!(
        matches!(zero, WalError::Rule(LogRuleError::BelowCompaction { .. })),
        "{zero}"
    );
    let vote_back = wal.set_hard_state(hard_state(0, None, 0));
    assert!(
        vote_back.is_ok(),
        "an unchanged default hard state is a no-op"
    );
    wal.set_hard_state(hard_state(4, Some(1), 0))
        .expect("term 4");
    let older = wal
        .set_hard_state(hard_state(3, Some(1), 0))
        .expect_err("term back");
    assert!(matches!(
        older,
        WalError::Rule(LogRuleError::HardStateRegression { .. })
    ));
    assert_eq!(wal.last(), at(5, 2));
    assert!(
        wal.buffer_free_bytes() < free,
        "only the valid hard state was buffered"
    );
}

#[test]
fn a_completed_sync_rings_the_registered_doorbell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 65536, 4096)).expect("open");
    let doorbell = Doorbell::new().expect("doorbell");
    wal.register_eventfd(doorbell.fd()).expect("register");
    append(&mut wal, 1, 1, 1).expect("append");
    let seq = wal.flush(true, 0).expect("flush");
    // An hour-long park: only the completion's eventfd signal can end it in time.
    let outcome = doorbell
        .park(3_600_000_000_000, || wal.has_pending_completions())
        .expect("park");
    assert!(
        matches!(outcome, ParkOutcome::Rung | ParkOutcome::Pending),
        "{outcome:?}"
    );
    // Completions arrive one by one (write, then sync); keep parking until the report is there.
    let durable = loop {
        if let Some(durable) = wal.poll(1).expect("poll") {
            break durable;
        }
        doorbell
            .park(3_600_000_000_000, || wal.has_pending_completions())
            .expect("park");
    };
    assert_eq!(durable.flush_seq, seq);
    assert!(durable.sync_latency_ns.is_some());
}

#[test]
fn records_after_a_torn_one_never_come_back_after_a_same_length_rewrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 4 * MIB as u64, MIB);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append(&mut wal, 1, 3, 1).expect("append");
        flush_wait(&mut wal);
        // One batch of three records: entry 4, a hard state, entry 5.
        append(&mut wal, 4, 4, 1).expect("append");
        wal.set_hard_state(hard_state(1, Some(3), 4))
            .expect("hard state");
        append(&mut wal, 5, 5, 1).expect("append");
        flush_wait(&mut wal);
    }
    // Damage the batch's first record only: the two after it still verify.
    let segment = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&segment).expect("read");
    let record_len =
        |at: usize| 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
    let second_batch = SEGMENT_HEADER_LEN + record_len(SEGMENT_HEADER_LEN);
    bytes[second_batch + 12] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write back");

    let recovery = WalRecovery::open(dir.path(), opts.clone()).expect("recover");
    assert_eq!(
        recovery.torn_tail().map(|t| t.offset),
        Some(second_batch as u64)
    );
    let mut wal = recovery.start().expect("start");
    // Entry 4 again: the same bytes as the damaged record, minus the damage, so the stale hard
    // state and entry 5 would line up right behind it if they were still there.
    append(&mut wal, 4, 4, 1).expect("append");
    flush_wait(&mut wal);
    drop(wal);

    let (recovery, entries) = recover(dir.path(), opts);
    assert_eq!(entries, (1..=4).map(|i| entry(i, 1)).collect::<Vec<_>>());
    assert_eq!(recovery.last(), at(4, 1));
    assert_eq!(recovery.hard_state(), hard_state(0, None, 0));
}

#[test]
fn records_missing_from_the_end_of_an_earlier_segment_refuse_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 8192, 4096);
    {
        let mut wal = Wal::open(dir.path(), opts.clone()).expect("open");
        append_batches_of_five(&mut wal, 30, 1);
    }
    let files = segment_files(dir.path());
    let mut bytes = std::fs::read(&files[0]).expect("read");
    // Walk the records to the last one and zero it, as if it had never been written.
    let mut start = SEGMENT_HEADER_LEN;
    let mut last_start = start;
    while bytes[start..start + 4] != [0; 4] {
        last_start = start;
        start += 8 + u32::from_le_bytes(bytes[start..start + 4].try_into().expect("4")) as usize;
    }
    bytes[last_start..start].fill(0);
    std::fs::write(&files[0], &bytes).expect("write back");

    let error = WalRecovery::open(dir.path(), opts).expect_err("a lost record must refuse");
    let WalError::Corrupt {
        path,
        offset,
        reason,
    } = &error
    else {
        panic!("expected Corrupt, got {error}");
    };
    assert_eq!(path, &files[1], "the next segment's header notices");
    assert_eq!(*offset, 0);
    assert!(
        matches!(
            reason,
            CorruptReason::BaseMismatch {
                what: "last index",
                ..
            }
        ),
        "{reason:?}"
    );
}

#[test]
fn sync_latency_lands_in_the_fsync_histogram() {
    use aurora::metrics::{CoreMetrics, Registry, ShardMetrics};
    let mut registry = Registry::new();
    let core = CoreMetrics::register(&mut registry, &[]).expect("metrics");
    let (mut metrics, _link) = ShardMetrics::new(&registry.finish());

    let dir = tempfile::tempdir().expect("tempdir");
    let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 65536, 4096)).expect("open");
    append(&mut wal, 1, 1, 1).expect("append");
    flush_wait(&mut wal).record_sync_latency(&mut metrics, core.fsync);
    // Nothing new to sync: no latency to record.
    flush_wait(&mut wal).record_sync_latency(&mut metrics, core.fsync);
    let histogram = metrics.interval_histogram(core.fsync);
    assert_eq!(histogram.count(), 1);
    assert!(histogram.max_ns().is_some_and(|ns| ns > 0));
}

#[test]
fn a_second_wal_on_the_same_directory_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(Durability::Fsync, 65536, 4096);
    let wal = Wal::open(dir.path(), opts.clone()).expect("first");
    let error = WalRecovery::open(dir.path(), opts.clone()).expect_err("second writer");
    assert!(matches!(error, WalError::Locked { .. }), "{error}");
    drop(wal);
    WalRecovery::open(dir.path(), opts).expect("free again");
}

#[test]
fn the_wal_and_the_snapshot_store_can_move_to_their_shard_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Wal>();
    assert_send::<WalRecovery>();
    assert_send::<SnapshotStore>();
}

#[test]
fn compacted_segments_are_deleted_while_batches_keep_coming() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 8192, 4096)).expect("open");
        append_batches_of_five(&mut wal, 40, 2);
    }
    // Large segments from now on: no roll (and no wait for a prepared segment) leaves a gap
    // between batches in the loop below.
    let mut wal = Wal::open(dir.path(), options(Durability::Fsync, 1 << 20, 4096)).expect("open");
    let (mut snapshots, _) =
        SnapshotStore::open(dir.path(), SnapshotOptions::default()).expect("snapshot store");
    snapshots
        .begin_save(at(150, 2), Vec::new(), &b"state"[..])
        .expect("save");
    let snapshot = snapshots.wait().expect("a save").expect("durable");
    wal.mark_snapshot(&snapshot, false).expect("mark");

    // A flush is always pending: every poll that reaps a batch submits the next one at once.
    let data = [3u8; 16];
    let batches_before = wal.stats().batches_written;
    let mut polls: u64 = 0;
    while wal.stats().batches_written < batches_before + 20 {
        let next = wal.last().index + 1;
        let entry = [EntryRef {
            term: 2,
            kind: 0,
            data: &data,
        }];
        match wal.append_entries(next, entry) {
            Ok(()) | Err(WalError::Backpressure { .. }) => {}
            Err(error) => panic!("append: {error}"),
        }
        wal.flush(true, polls).expect("flush");
        wal.poll(polls).expect("poll");
        polls += 1;
        assert!(polls < 100_000_000, "20 batches must complete");
    }
    assert!(
        wal.stats().segments_deleted >= 2,
        "deleted {} segments under load",
        wal.stats().segments_deleted
    );
}
