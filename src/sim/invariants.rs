//! The safety properties checked after every step of a run (Raft, Ongaro 2014, figure 3.2):
//!
//! - **election safety**: at most one leader per term, ever;
//! - **log matching**: two entries with the same index and term carry the same command and are
//!   preceded by the same term (so, by induction, the same prefix) — checked across all logs that
//!   ever existed;
//! - **leader completeness**: a leader of term `T` holds every entry committed in a term before `T`;
//! - **state-machine safety**: no two nodes commit or apply different entries at one index;
//! - **monotonic commit**: a node's commit index never goes back while it runs;
//! - **ring permission** (DESIGN.md §2.5): a one-sided write lands only under the receiver's grant
//!   of the writer's term, and never from a term below the receiver's current term (a deposed
//!   leader's writes cannot land) — checked at every landing.
//!
//! The checker keeps compact global records (one per entry) and checks each node incrementally, so
//! the cost per step is proportional to what changed, not to the log length.

use std::collections::{BTreeMap, HashMap};

use crate::consensus::ring_permission::Grant;
use crate::consensus::{Entry, EntryKind, LogIndex, Node, NodeId, Role, Term};

/// What the checker remembers about one committed index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Committed {
    term: Term,
    digest: u64,
    /// The term of the first node seen committing it: an upper bound of the term it committed in.
    commit_term: Term,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeView {
    /// Entries `..=verified` of the node's log were checked for log matching; `verified_term` is
    /// the term at `verified` then (if it changed, the log was truncated or replaced).
    verified: LogIndex,
    verified_term: Term,
    commit: LogIndex,
    commit_checked: LogIndex,
    leader_term: Option<Term>,
}

#[derive(Debug, Default)]
pub struct Invariants {
    leaders: BTreeMap<Term, NodeId>,
    /// `(index, term)` → (digest, term of `index - 1`): log matching across every log.
    entries: HashMap<(LogIndex, Term), (u64, Term)>,
    committed: Vec<Option<Committed>>,
    views: BTreeMap<NodeId, NodeView>,
    pub checks: u64,
}

/// A digest of an entry's content: kind and payload (FNV-1a).
pub fn digest(kind: EntryKind, payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let tag = match kind {
        EntryKind::Normal => 0u8,
        EntryKind::Noop => 1,
        EntryKind::Config => 2,
    };
    for &b in std::iter::once(&tag).chain(payload) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Invariants {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest index any node has committed.
    pub fn max_committed(&self) -> LogIndex {
        self.committed.len() as LogIndex
    }

    /// The term of the entry committed at `index`, if one is known.
    pub fn committed_term(&self, index: LogIndex) -> Option<Term> {
        self.committed_at(index).map(|c| c.term)
    }

    /// The node restarted: its commit index may start lower (it is restored, not remembered), and
    /// its log is checked afresh.
    pub fn restarted(&mut self, id: NodeId) {
        self.views.remove(&id);
    }

    /// The node dropped its log from `from` on: re-check from there.
    pub fn truncated(&mut self, id: NodeId, from: LogIndex) {
        if let Some(v) = self.views.get_mut(&id) {
            if v.verified >= from {
                v.verified = 0;
                v.verified_term = Term::MAX;
            }
        }
    }

    /// Checks `node` after a step that touched it.
    pub fn observe(&mut self, node: &Node) -> Result<(), String> {
        self.checks += 1;
        let id = node.id();
        let mut view = self.views.get(&id).copied().unwrap_or_default();
        let term = node.term();
        let log = node.log();

        // Election safety.
        if node.role() == Role::Leader {
            match self.leaders.get(&term) {
                Some(&other) if other != id => {
                    return Err(format!(
                        "election safety: nodes {other} and {id} both led term {term}"
                    ))
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(term, id);
                }
            }
        }

        // Monotonic commit.
        let commit = node.commit_index();
        if commit < view.commit {
            return Err(format!(
                "monotonic commit: node {id} commit went back from {} to {commit}",
                view.commit
            ));
        }
        view.commit = commit;

        // Log matching, incrementally from the last verified entry.
        let snapshot = log.snapshot();
        if log.term(view.verified) != Some(view.verified_term) {
            let back = view.verified.min(commit).max(snapshot.index);
            view.verified = back;
            view.verified_term = log.term(back).expect("between snapshot and commit");
        }
        if view.verified < snapshot.index {
            view.verified = snapshot.index;
            view.verified_term = snapshot.term;
        }
        for e in log.entries(view.verified + 1, log.last_index()) {
            let prev_term = log.term(e.index - 1).expect("entry after the snapshot");
            let d = digest(e.kind, &e.payload);
            match self.entries.get(&(e.index, e.term)) {
                Some(&(od, opt)) if (od, opt) != (d, prev_term) => {
                    return Err(format!(
                        "log matching: node {id} holds entry {}@term {} differing from another log's \
                         (digest {d:x} vs {od:x}, previous term {prev_term} vs {opt})",
                        e.index, e.term
                    ));
                }
                Some(_) => {}
                None => {
                    self.entries.insert((e.index, e.term), (d, prev_term));
                }
            }
            view.verified = e.index;
            view.verified_term = e.term;
        }

        // State-machine safety at commit: every committed entry agrees with every other node's.
        if let Some(c) = self.committed_at(snapshot.index) {
            if c.term != snapshot.term {
                return Err(format!(
                    "state-machine safety: node {id} has a snapshot at {} of term {}, but term {} \
                     was committed there",
                    snapshot.index, snapshot.term, c.term
                ));
            }
        }
        let from = view.commit_checked.max(snapshot.index) + 1;
        for e in log.entries(from, commit) {
            self.commit_entry(id, e, term)?;
        }
        view.commit_checked = commit;

        // Leader completeness, when a node becomes leader of a term.
        if node.role() == Role::Leader && view.leader_term != Some(term) {
            view.leader_term = Some(term);
            for (i, c) in self.committed.iter().enumerate() {
                let index = i as LogIndex + 1;
                let Some(c) = c else { continue };
                if c.commit_term >= term || index < snapshot.index {
                    continue;
                }
                if log.term(index) != Some(c.term) {
                    return Err(format!(
                        "leader completeness: node {id} leads term {term} without entry {index} \
                         (term {}) committed in term {} (its log has {:?})",
                        c.term,
                        c.commit_term,
                        log.term(index)
                    ));
                }
            }
        }
        self.views.insert(id, view);
        Ok(())
    }

    /// A one-sided write by `leader` under its grant for `leader_term` landed in the ring of
    /// `receiver`, which is in `receiver_term` and holds `grant`.
    pub fn ring_landed(
        &mut self,
        receiver: NodeId,
        receiver_term: Term,
        grant: Option<Grant>,
        leader: NodeId,
        leader_term: Term,
    ) -> Result<(), String> {
        self.checks += 1;
        let wrote_under = Grant {
            leader,
            term: leader_term,
        };
        if grant != Some(wrote_under) {
            return Err(format!(
                "ring permission: n{leader}'s write of term {leader_term} landed in n{receiver}'s \
                 ring, which grants {grant:?}"
            ));
        }
        if leader_term < receiver_term {
            return Err(format!(
                "ring permission: deposed leader n{leader}'s write of term {leader_term} landed in \
                 n{receiver}'s ring while n{receiver} is in term {receiver_term}"
            ));
        }
        Ok(())
    }

    /// The host of `id`, in `term`, applies `entry`: it must be the entry committed at its index.
    pub fn applied(&mut self, id: NodeId, entry: &Entry, term: Term) -> Result<(), String> {
        self.commit_entry(id, entry, term)
    }

    fn committed_at(&self, index: LogIndex) -> Option<Committed> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.committed.get(i).copied().flatten()
    }

    fn commit_entry(&mut self, id: NodeId, e: &Entry, term: Term) -> Result<(), String> {
        let d = digest(e.kind, &e.payload);
        if let Some(c) = self.committed_at(e.index) {
            if (c.term, c.digest) != (e.term, d) {
                return Err(format!(
                    "state-machine safety: node {id} committed entry {} of term {} (digest {d:x}) \
                     where term {} (digest {:x}) was committed before",
                    e.index, e.term, c.term, c.digest
                ));
            }
            return Ok(());
        }
        let i = (e.index - 1) as usize;
        if self.committed.len() <= i {
            self.committed.resize(i + 1, None);
        }
        self.committed[i] = Some(Committed {
            term: e.term,
            digest: d,
            commit_term: term,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_write_lands_only_under_the_receivers_grant_of_its_current_term() {
        let mut inv = Invariants::new();
        let grant = |leader, term| Some(Grant { leader, term });
        assert_eq!(inv.ring_landed(2, 5, grant(1, 5), 1, 5), Ok(()));
        let deposed = inv.ring_landed(2, 6, grant(1, 5), 1, 5).unwrap_err();
        assert!(deposed.contains("deposed leader n1"), "{deposed}");
        let other = inv.ring_landed(2, 5, grant(3, 5), 1, 5).unwrap_err();
        assert!(other.contains("which grants"), "{other}");
        assert!(inv.ring_landed(2, 5, None, 1, 5).is_err());
    }
}
