//! A simulated node's disk: a write-ahead log of checksummed records plus one snapshot file.
//!
//! The model is the fsync contract, nothing kinder: a write is durable only once a later sync
//! covered it. On a crash every byte after the last sync may be lost, cut mid-record (torn tail) or
//! garbled (corrupted tail); recovery parses records up to the first incomplete or checksum-failing
//! one and truncates there, as the real storage layer does. A write completes after a latency drawn
//! per disk (slow disks stall for milliseconds); completions are in order.
//!
//! In `memory` durability (replicated memory, DESIGN.md §7) a crash keeps only term and vote — the
//! log and snapshots are gone — which is what the host persists in that mode.

use super::rng::Rng;
use crate::consensus::{Entry, EntryKind, HardState, LogIndex, Membership, SnapshotMeta, Term};

const ENTRY: u8 = 1;
const TRUNCATE: u8 = 2;
const HARD_STATE: u8 = 3;
const INSTALL: u8 = 4;

/// Bytes of a record header: body length and crc32c of the body.
const RECORD_HEADER_LEN: usize = 8;

/// A snapshot: where it ends and the state machine's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// What recovery found on the disk.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<StoredSnapshot>,
    /// Contiguous entries after the snapshot.
    pub entries: Vec<Entry>,
    /// Bytes of torn or corrupted tail recovery cut off.
    pub truncated_bytes: usize,
}

/// How a crash treats the bytes after the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailFate {
    /// Every unsynced byte is lost.
    Lost,
    /// A prefix of the unsynced bytes survives, possibly ending mid-record.
    Torn,
    /// Like `Torn`, and one surviving unsynced byte is flipped.
    Corrupted,
}

#[derive(Debug, Default)]
pub struct Disk {
    wal: Vec<u8>,
    /// WAL bytes made durable by a sync.
    synced_len: usize,
    /// The snapshot file, replaced atomically (temp file, fsync, rename, fsync dir).
    snapshot: Option<StoredSnapshot>,
    pub writes: u64,
    pub syncs: u64,
}

impl Disk {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn wal_len(&self) -> usize {
        self.wal.len()
    }

    /// Appends records for a snapshot to install, a truncation, entries and a hard state (the order
    /// of a [`Persist`](crate::consensus::Persist)); returns the WAL end offset this write reaches.
    pub fn write<'e>(
        &mut self,
        install: Option<(&SnapshotMeta, &[u8])>,
        truncate_from: Option<LogIndex>,
        entries: impl Iterator<Item = &'e Entry>,
        hard_state: Option<HardState>,
    ) -> usize {
        self.writes += 1;
        let mut body = Vec::new();
        if let Some((meta, data)) = install {
            body.push(INSTALL);
            put_meta(&mut body, meta);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            self.record(&body);
        }
        if let Some(from) = truncate_from {
            body.clear();
            body.push(TRUNCATE);
            body.extend_from_slice(&from.to_le_bytes());
            self.record(&body);
        }
        for e in entries {
            body.clear();
            body.push(ENTRY);
            body.extend_from_slice(&e.term.to_le_bytes());
            body.extend_from_slice(&e.index.to_le_bytes());
            body.push(match e.kind {
                EntryKind::Normal => 0,
                EntryKind::Noop => 1,
                EntryKind::Config => 2,
            });
            body.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
            body.extend_from_slice(&e.payload);
            self.record(&body);
        }
        if let Some(hs) = hard_state {
            body.clear();
            body.push(HARD_STATE);
            body.extend_from_slice(&hs.term.to_le_bytes());
            body.extend_from_slice(&hs.vote.unwrap_or(0).to_le_bytes());
            body.extend_from_slice(&hs.commit.to_le_bytes());
            self.record(&body);
        }
        self.wal.len()
    }

    fn record(&mut self, body: &[u8]) {
        self.wal
            .extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.wal
            .extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        self.wal.extend_from_slice(body);
    }

    /// A write reaching `end` completed; with `sync` everything up to `end` is now durable.
    pub fn completed(&mut self, end: usize, sync: bool) {
        assert!(end <= self.wal.len(), "completion past the written end");
        if sync {
            self.syncs += 1;
            self.synced_len = self.synced_len.max(end);
        }
    }

    /// Replaces the snapshot file (durable at once: the host fsyncs it before using it).
    pub fn save_snapshot(&mut self, snapshot: StoredSnapshot) {
        if self
            .snapshot
            .as_ref()
            .is_none_or(|s| s.meta.index <= snapshot.meta.index)
        {
            self.snapshot = Some(snapshot);
        }
    }

    /// The machine lost power: unsynced bytes meet `fate`. In memory durability only term and vote
    /// survive.
    pub fn crash(&mut self, fate: TailFate, memory_mode: bool, rng: &mut Rng) {
        let unsynced = self.wal.len() - self.synced_len;
        match fate {
            TailFate::Lost => self.wal.truncate(self.synced_len),
            TailFate::Torn | TailFate::Corrupted => {
                let keep = self.synced_len + rng.below(unsynced as u64 + 1) as usize;
                self.wal.truncate(keep);
                if fate == TailFate::Corrupted && keep > self.synced_len {
                    let at = self.synced_len + rng.below((keep - self.synced_len) as u64) as usize;
                    self.wal[at] ^= 1 << rng.below(8);
                }
            }
        }
        if memory_mode {
            let recovered = self.recover();
            let hs = HardState {
                commit: 0,
                ..recovered.hard_state
            };
            self.wal.clear();
            self.snapshot = None;
            self.write(None, None, std::iter::empty(), Some(hs));
            self.synced_len = self.wal.len();
        }
    }

    /// Parses the WAL up to its first damaged record (truncating the damage away) and combines it
    /// with the snapshot file.
    pub fn recover(&mut self) -> Recovered {
        let mut hard_state = HardState::default();
        let mut base: Option<StoredSnapshot> = None;
        let mut log: Vec<Entry> = Vec::new();
        let mut at = 0;
        while let Some((body, next)) = next_record(&self.wal, at) {
            let tag = body[0];
            let mut r = Reader { b: &body[1..] };
            match tag {
                ENTRY => {
                    let term = r.u64();
                    let index = r.u64();
                    let kind = match r.u8() {
                        0 => EntryKind::Normal,
                        1 => EntryKind::Noop,
                        _ => EntryKind::Config,
                    };
                    let len = r.u32() as usize;
                    let payload = r.bytes(len).to_vec();
                    let expected = log.last().map_or_else(
                        || base.as_ref().map_or(1, |s| s.meta.index + 1),
                        |e| e.index + 1,
                    );
                    assert_eq!(
                        index, expected,
                        "WAL entries are written contiguously (the host follows the Persist order)"
                    );
                    log.push(Entry {
                        term,
                        index,
                        kind,
                        payload,
                    });
                }
                TRUNCATE => {
                    let from = r.u64();
                    log.retain(|e| e.index < from);
                }
                HARD_STATE => {
                    let term = r.u64();
                    let vote = r.u64();
                    let commit = r.u64();
                    hard_state = HardState {
                        term,
                        vote: (vote != 0).then_some(vote),
                        commit,
                    };
                }
                INSTALL => {
                    let meta = r.meta();
                    let len = r.u32() as usize;
                    let data = r.bytes(len).to_vec();
                    log.clear();
                    base = Some(StoredSnapshot { meta, data });
                }
                other => unreachable!("record tag {other} is never written"),
            }
            at = next;
        }
        let truncated_bytes = self.wal.len() - at;
        self.wal.truncate(at);
        assert!(
            at >= self.synced_len,
            "recovery lost synced bytes ({at} < {})",
            self.synced_len
        );
        // Recovery syncs the truncated WAL before the node starts.
        self.synced_len = at;
        // The newer of the installed snapshot and the snapshot file is the base; entries it covers
        // are dropped (they are in it).
        if let Some(file) = &self.snapshot {
            if base.as_ref().is_none_or(|b| b.meta.index < file.meta.index) {
                base = Some(file.clone());
            }
        }
        if let Some(b) = &base {
            log.retain(|e| e.index > b.meta.index);
            if log.first().is_some_and(|e| e.index != b.meta.index + 1) {
                log.clear();
            }
        }
        Recovered {
            hard_state,
            snapshot: base,
            entries: log,
            truncated_bytes,
        }
    }
}

/// The body of the record at `at` and the offset after it, if it is whole and its checksum holds.
fn next_record(wal: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = wal.get(at..at + RECORD_HEADER_LEN)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let start = at + RECORD_HEADER_LEN;
    let body = wal.get(start..start.checked_add(len)?)?;
    (len > 0 && crc32c::crc32c(body) == crc).then_some((body, start + len))
}

fn put_meta(out: &mut Vec<u8>, meta: &SnapshotMeta) {
    out.extend_from_slice(&meta.index.to_le_bytes());
    out.extend_from_slice(&meta.term.to_le_bytes());
    meta.membership.encode(out);
}

/// Reads a record body the simulator wrote itself (checksummed), so shortness is a bug.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.bytes(1)[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes(4).try_into().expect("4 bytes"))
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes(8).try_into().expect("8 bytes"))
    }
    fn meta(&mut self) -> SnapshotMeta {
        let index = self.u64();
        let term: Term = self.u64();
        let (membership, used) =
            Membership::decode(self.b).expect("the simulator wrote a valid membership");
        self.bytes(used);
        SnapshotMeta {
            index,
            term,
            membership,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::VoterGroup;

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            payload: vec![index as u8; 5],
        }
    }

    fn hs(term: Term) -> HardState {
        HardState {
            term,
            vote: Some(1),
            commit: 0,
        }
    }

    #[test]
    fn synced_writes_survive_every_crash_and_torn_tails_are_cut() {
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let mut disk = Disk::new();
            let e1 = [entry(1, 1), entry(2, 1)];
            let end = disk.write(None, None, e1.iter(), Some(hs(1)));
            disk.completed(end, true);
            let e2 = [entry(3, 2), entry(4, 2)];
            disk.write(None, None, e2.iter(), Some(hs(2)));
            let fate = [TailFate::Lost, TailFate::Torn, TailFate::Corrupted][seed as usize % 3];
            disk.crash(fate, false, &mut rng);
            let r = disk.recover();
            assert!(r.entries.len() >= 2, "synced entries survive");
            assert_eq!(&r.entries[..2], &e1);
            for (i, e) in r.entries.iter().enumerate() {
                assert_eq!(e.index, i as u64 + 1, "survivors are a contiguous prefix");
            }
            assert!(r.hard_state.term >= 1);
            if fate == TailFate::Lost {
                assert_eq!(r.entries.len(), 2);
            }
        }
    }

    #[test]
    fn truncation_install_and_memory_mode() {
        let m = Membership::new(VoterGroup::majority(&[1, 2, 3]).unwrap(), &[]).unwrap();
        let mut disk = Disk::new();
        let es = [entry(1, 1), entry(2, 1), entry(3, 1)];
        disk.write(None, None, es.iter(), Some(hs(1)));
        disk.write(None, Some(2), [entry(2, 2)].iter(), Some(hs(2)));
        let r = disk.recover();
        assert_eq!(r.entries, vec![entry(1, 1), entry(2, 2)]);
        let meta = SnapshotMeta {
            index: 10,
            term: 2,
            membership: m,
        };
        let end = disk.write(Some((&meta, b"state")), None, [entry(11, 3)].iter(), None);
        disk.completed(end, true);
        let r = disk.recover();
        assert_eq!(r.snapshot.as_ref().unwrap().meta, meta);
        assert_eq!(r.snapshot.as_ref().unwrap().data, b"state");
        assert_eq!(r.entries, vec![entry(11, 3)]);
        disk.crash(TailFate::Lost, true, &mut Rng::new(1));
        let r = disk.recover();
        assert!(r.snapshot.is_none() && r.entries.is_empty());
        assert_eq!(r.hard_state.term, 2);
        assert_eq!(r.hard_state.vote, Some(1));
    }
}
