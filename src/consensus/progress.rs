//! What a leader knows about each follower's log, and its flow control (etcd's Progress).

use super::config::MAX_INFLIGHT_APPENDS;
use super::types::{LogIndex, NodeId};

/// How the leader currently replicates to one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Finding the match point: one append at a time, then wait for its answer or a heartbeat.
    Probe,
    /// Match point known: stream appends, up to the window in flight.
    Replicate,
    /// The follower needs the snapshot at this index before any entry.
    Snapshot(LogIndex),
}

/// The pipeline window: last indexes of appends sent and not yet acknowledged, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Inflights {
    last: [LogIndex; MAX_INFLIGHT_APPENDS],
    start: usize,
    len: usize,
    cap: usize,
}

impl Inflights {
    fn new(cap: usize) -> Self {
        assert!((1..=MAX_INFLIGHT_APPENDS).contains(&cap));
        Self {
            last: [0; MAX_INFLIGHT_APPENDS],
            start: 0,
            len: 0,
            cap,
        }
    }

    pub fn is_full(&self) -> bool {
        self.len == self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn add(&mut self, last: LogIndex) {
        assert!(!self.is_full(), "inflight window overflow");
        let slot = (self.start + self.len) % self.cap;
        self.last[slot] = last;
        self.len += 1;
    }

    /// Frees every append whose last index is `<= index`.
    fn free_to(&mut self, index: LogIndex) {
        while self.len > 0 && self.last[self.start] <= index {
            self.start = (self.start + 1) % self.cap;
            self.len -= 1;
        }
    }

    fn free_first(&mut self) {
        if self.len > 0 {
            self.start = (self.start + 1) % self.cap;
            self.len -= 1;
        }
    }

    fn reset(&mut self) {
        self.start = 0;
        self.len = 0;
    }
}

/// The leader's view of one follower (or learner).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub id: NodeId,
    /// Highest index known to match the leader's log.
    pub matched: LogIndex,
    /// Next index to send.
    pub next: LogIndex,
    pub state: ReplicaState,
    /// Probe: an append is out, wait for its answer or the next heartbeat.
    pub probe_sent: bool,
    pub inflights: Inflights,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// Largest `ctx_ns` the follower echoed in this term: the leader's send time of an append the
    /// follower accepted as coming from the current leader (lease and ReadIndex evidence).
    /// Stored plus one, so `0` means "no evidence yet".
    pub acked_ctx_ns: u64,
    /// Largest append `seq` the follower echoed in this term (ReadIndex confirmation).
    pub acked_seq: u64,
    /// When the snapshot state was entered, to retry a lost snapshot.
    pub snapshot_sent_ns: u64,
    /// The append `seq` whose acknowledgement last advanced `matched`: a rejection of a later
    /// append at or below `matched` means the follower lost entries (a `memory` durability
    /// restart), not a reordered old answer.
    pub matched_seq: u64,
}

impl Progress {
    pub fn new(id: NodeId, last_index: LogIndex, window: usize) -> Self {
        Self {
            id,
            matched: 0,
            next: last_index + 1,
            state: ReplicaState::Probe,
            probe_sent: false,
            inflights: Inflights::new(window),
            recent_active: false,
            acked_ctx_ns: 0,
            acked_seq: 0,
            snapshot_sent_ns: 0,
            matched_seq: 0,
        }
    }

    pub fn become_probe(&mut self) {
        self.next = self.matched + 1;
        self.state = ReplicaState::Probe;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub fn become_replicate(&mut self) {
        self.state = ReplicaState::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub fn become_snapshot(&mut self, index: LogIndex, now_ns: u64) {
        self.state = ReplicaState::Snapshot(index);
        self.snapshot_sent_ns = now_ns;
        self.inflights.reset();
    }

    /// Whether another append may go out now.
    pub fn can_send(&self) -> bool {
        match self.state {
            ReplicaState::Probe => !self.probe_sent,
            ReplicaState::Replicate => !self.inflights.is_full(),
            ReplicaState::Snapshot(_) => false,
        }
    }

    /// Records an append of entries up to `last` (possibly empty) sent.
    pub fn sent(&mut self, last: LogIndex, carried_entries: bool) {
        match self.state {
            ReplicaState::Probe => self.probe_sent = true,
            ReplicaState::Replicate => {
                if carried_entries {
                    debug_assert!(last >= self.next);
                    self.next = last + 1;
                    self.inflights.add(last);
                }
            }
            ReplicaState::Snapshot(_) => unreachable!("no append is sent in the snapshot state"),
        }
    }

    /// A successful acknowledgement up to `index`, in answer to append `seq`; returns whether
    /// `matched` advanced.
    pub fn ack(&mut self, index: LogIndex, seq: u64) -> bool {
        let advanced = index > self.matched;
        if advanced {
            self.matched = index;
            self.matched_seq = seq;
            self.next = self.next.max(index + 1);
            self.probe_sent = false;
        }
        self.inflights.free_to(index);
        advanced
    }

    /// A rejection, sent in answer to append `seq`, of the append whose `prev_index` was `rejected`,
    /// with the follower's hint resolved against the leader's log to `probe_from`. Returns false
    /// for a stale rejection (ignored).
    pub fn reject(&mut self, rejected: LogIndex, probe_from: LogIndex, seq: u64) -> bool {
        if rejected <= self.matched && seq > self.matched_seq && probe_from < self.matched {
            // The follower no longer holds what it acknowledged (it restarted without its log):
            // forget the match and probe from its hint. Commits already made stand; only future
            // counting uses `matched`, and a lower value is the conservative side.
            self.matched = 0;
            self.matched_seq = seq;
            self.become_probe();
            self.next = probe_from + 1;
            return true;
        }
        match self.state {
            ReplicaState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe();
                true
            }
            ReplicaState::Probe => {
                if self.next.saturating_sub(1) != rejected {
                    return false;
                }
                self.next = rejected.min(probe_from + 1).max(self.matched + 1).max(1);
                self.probe_sent = false;
                true
            }
            ReplicaState::Snapshot(_) => false,
        }
    }

    /// A heartbeat answer: lets one more append out if the window was full (a lost append is then
    /// found by the follower's rejection), and unpauses a probe.
    pub fn heartbeat_answered(&mut self) {
        if self.inflights.is_full() {
            self.inflights.free_first();
        }
        self.probe_sent = false;
    }
}
