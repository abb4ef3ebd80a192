//! What the WAL persists, as values: hard state, log positions, entries, and the logical log state
//! that every record updates. The same [`LogState::apply_entries`] and
//! [`LogState::apply_snapshot_mark`] rules validate an append when the host makes it and a record
//! when recovery reads it back, so the two sides cannot drift apart.

use crate::config::NodeId;

/// The consensus hard state: what a voter must never forget (term and vote) plus the commit index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// Whom this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
    /// The highest log index known to be committed.
    pub commit: u64,
}

/// A log position: an index and the term of the entry there (`0, 0` before the first entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct LogPosition {
    /// Log index (the first entry has index 1).
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
}

/// One log entry handed to [`Wal::append_entries`](super::Wal::append_entries), borrowed from the
/// caller (no copy until it is encoded into the write buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The term in which a leader created the entry.
    pub term: u64,
    /// Opaque entry kind (the consensus layer's: normal, membership change, …).
    pub kind: u8,
    /// Opaque payload.
    pub data: &'a [u8],
}

/// One log entry read back by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Log index.
    pub index: u64,
    /// The term in which a leader created the entry.
    pub term: u64,
    /// Opaque entry kind.
    pub kind: u8,
    /// Opaque payload.
    pub data: Vec<u8>,
}

/// Why an append or a recovered record does not fit the log it is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogRuleError {
    /// Entries would leave a hole after the last index.
    #[error(
        "entries start at index {first_index} but the log ends at {last_index}: that leaves a gap"
    )]
    Gap {
        /// First index of the rejected entries.
        first_index: u64,
        /// Last index of the log.
        last_index: u64,
    },
    /// Entries at or below the compacted index (they are in a snapshot already).
    #[error(
        "entries start at index {first_index}, at or below the compacted index {compacted_index}"
    )]
    BelowCompaction {
        /// First index of the rejected entries.
        first_index: u64,
        /// Index the log is compacted up to.
        compacted_index: u64,
    },
    /// An entry's term is lower than the entry before it (Raft logs never decrease in term).
    #[error(
        "entry {index} has term {term}, lower than the term {previous_term} of the entry before it"
    )]
    TermRegression {
        /// Index of the offending entry.
        index: u64,
        /// Its term.
        term: u64,
        /// Term of the entry before it.
        previous_term: u64,
    },
    /// A hard state whose term is lower than the one already recorded.
    #[error("hard state term {term} is lower than the recorded term {previous_term}")]
    HardStateRegression {
        /// The rejected term.
        term: u64,
        /// The term already recorded.
        previous_term: u64,
    },
    /// A snapshot mark below the compaction point already recorded.
    #[error("snapshot at index {index} is below the compacted index {compacted_index}")]
    CompactionRegression {
        /// Index of the rejected snapshot.
        index: u64,
        /// Index the log is compacted up to.
        compacted_index: u64,
    },
}

/// The logical state of the log after a sequence of records: where it ends, where it was compacted,
/// and the latest hard state. A segment header records it as the segment's starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogState {
    /// The last entry of the log (equal to `compacted` when no entry follows the snapshot).
    pub last: LogPosition,
    /// The snapshot position the log is compacted up to (`0, 0` if never).
    pub compacted: LogPosition,
    /// The latest hard state.
    pub hard_state: HardState,
}

impl LogState {
    /// Checks `count` entries starting at `first_index` whose terms are `first_term ..= last_term`
    /// (already checked non-decreasing among themselves) and moves the end of the log past them.
    /// An append at or below the last index replaces the suffix from `first_index` on.
    pub fn apply_entries(
        &mut self,
        first_index: u64,
        first_term: u64,
        last: LogPosition,
    ) -> Result<(), LogRuleError> {
        debug_assert!(last.index >= first_index && last.term >= first_term);
        if first_index <= self.compacted.index {
            return Err(LogRuleError::BelowCompaction {
                first_index,
                compacted_index: self.compacted.index,
            });
        }
        if first_index > self.last.index + 1 {
            return Err(LogRuleError::Gap {
                first_index,
                last_index: self.last.index,
            });
        }
        // Only a plain append knows the term before it; after a suffix replacement the term of
        // entry `first_index - 1` is not kept in memory (the consensus layer checked it).
        if first_index == self.last.index + 1 && first_term < self.last.term {
            return Err(LogRuleError::TermRegression {
                index: first_index,
                term: first_term,
                previous_term: self.last.term,
            });
        }
        self.last = last;
        Ok(())
    }

    /// Records a new hard state; its term may not go back.
    pub fn apply_hard_state(&mut self, hard_state: HardState) -> Result<(), LogRuleError> {
        if hard_state.term < self.hard_state.term {
            return Err(LogRuleError::HardStateRegression {
                term: hard_state.term,
                previous_term: self.hard_state.term,
            });
        }
        self.hard_state = hard_state;
        Ok(())
    }

    /// Records that a durable snapshot covers the log up to `snapshot`. With `discard_suffix` (or a
    /// snapshot past the end of the log) the log becomes empty after it; otherwise the entries
    /// after it stay.
    pub fn apply_snapshot_mark(
        &mut self,
        snapshot: LogPosition,
        discard_suffix: bool,
    ) -> Result<(), LogRuleError> {
        if snapshot.index < self.compacted.index {
            return Err(LogRuleError::CompactionRegression {
                index: snapshot.index,
                compacted_index: self.compacted.index,
            });
        }
        if discard_suffix || snapshot.index >= self.last.index {
            self.last = snapshot;
        }
        self.compacted = snapshot;
        debug_assert!(self.last.index >= self.compacted.index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64, term: u64) -> LogPosition {
        LogPosition { index, term }
    }

    #[test]
    fn append_below_the_end_replaces_the_suffix() {
        let mut state = LogState::default();
        state.apply_entries(1, 1, at(10, 1)).expect("first append");
        state.apply_entries(5, 2, at(6, 2)).expect("overwrite");
        assert_eq!(state.last, at(6, 2));
    }

    #[test]
    fn gaps_compacted_indexes_and_term_regressions_are_refused() {
        let mut state = LogState::default();
        state.apply_entries(1, 3, at(4, 3)).expect("append");
        assert_eq!(
            state.apply_entries(6, 3, at(6, 3)),
            Err(LogRuleError::Gap {
                first_index: 6,
                last_index: 4
            })
        );
        assert_eq!(
            state.apply_entries(5, 2, at(5, 2)),
            Err(LogRuleError::TermRegression {
                index: 5,
                term: 2,
                previous_term: 3
            })
        );
        state.apply_snapshot_mark(at(3, 3), false).expect("mark");
        assert_eq!(state.last, at(4, 3), "suffix after the snapshot stays");
        assert_eq!(
            state.apply_entries(3, 3, at(3, 3)),
            Err(LogRuleError::BelowCompaction {
                first_index: 3,
                compacted_index: 3
            })
        );
        assert_eq!(
            state.apply_snapshot_mark(at(2, 3), false),
            Err(LogRuleError::CompactionRegression {
                index: 2,
                compacted_index: 3
            })
        );
    }

    #[test]
    fn snapshot_mark_with_discard_empties_the_log_after_it() {
        let mut state = LogState::default();
        state.apply_entries(1, 1, at(9, 1)).expect("append");
        state.apply_snapshot_mark(at(5, 2), true).expect("mark");
        assert_eq!(state.last, at(5, 2));
        assert_eq!(state.compacted, at(5, 2));
        state
            .apply_snapshot_mark(at(20, 4), false)
            .expect("mark past the end");
        assert_eq!(
            state.last,
            at(20, 4),
            "a snapshot past the end moves the end"
        );
    }

    #[test]
    fn hard_state_term_never_goes_back() {
        let mut state = LogState::default();
        let newer = HardState {
            term: 5,
            vote: Some(2),
            commit: 0,
        };
        state.apply_hard_state(newer).expect("forward");
        let older = HardState { term: 4, ..newer };
        assert_eq!(
            state.apply_hard_state(older),
            Err(LogRuleError::HardStateRegression {
                term: 4,
                previous_term: 5
            })
        );
        assert_eq!(state.hard_state, newer);
    }
}
