//! Wing & Gong's linearizability search with Lowe's just-in-time linearization and porcupine's memo
//! table, for the operations on one key.
//!
//! The history becomes a doubly linked list of call and return events in real-time order. The
//! search walks it from the front: a call whose step the model allows is *linearized* — lifted out
//! of the list with its return, pushed on a stack — and the walk restarts; reaching a return means
//! that operation had to take effect before it completed but could not, so the search backtracks
//! to the last choice and tries the next candidate. A memo of (set of linearized operations, model
//! state) pairs cuts every subtree already explored: the future of the search depends on nothing
//! else.
//!
//! Operations whose outcome is unknown have no return event: they may take effect at any point after
//! their call, or never. "Never" is the same as "after everything else", where nothing observes
//! them, so the search succeeds as soon as every operation with a known outcome is linearized. They
//! live in a list of their own and are tried only after the known-outcome candidates.
//!
//! Three prunings keep concurrent histories near-linear; each is sound (proved where it is
//! implemented) and checked against a brute-force search in tests/lincheck_property.rs:
//! - an allowed read or failed cas is linearized at once, without trying alternatives
//!   ([`Search::free_observation`]);
//! - of interchangeable unknown-outcome ops only the earliest-invoked is tried (`twin_before`), and
//!   one that would change nothing is not tried at all ([`Search::worth_trying`]);
//! - a state reached with a superset of the unknown-outcome ops of a failed state fails too
//!   ([`Memo`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::register::{Step, Value, ABSENT};

/// How much work the search may do on one key before it gives up with an inconclusive verdict.
/// The search is exponential in the worst case; these bounds keep a pathological history from
/// hanging a test run (or the memo table from exhausting memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Candidate operations tried (each try is one step), counted per key. Deterministic, unlike
    /// wall-clock time, so a verdict is reproducible.
    pub max_steps_per_key: u64,
    /// Distinct (linearized set, register value) pairs remembered per key. Each costs about
    /// `ops_on_key / 8 + 40` bytes.
    pub max_states_per_key: usize,
}

impl Default for Limits {
    /// Enough for histories of tens of thousands of operations per key at the concurrency of a test
    /// cluster, within a few hundred MiB.
    fn default() -> Self {
        Self {
            max_steps_per_key: 50_000_000,
            max_states_per_key: 2_000_000,
        }
    }
}

/// One operation on the key, as the search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyOp {
    pub(crate) step: Step,
    pub(crate) invoke_ns: u64,
    /// `None`: the outcome is unknown and the operation may take effect at any time after invoke.
    pub(crate) complete_ns: Option<u64>,
}

/// How the search on one key ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    Linearizable,
    /// No order works. `prefix` is the longest sequence of operations (indices into the key's ops,
    /// in linearization order) the search managed to linearize.
    Violation {
        prefix: Vec<u32>,
    },
    /// A [`Limits`] bound ran out first.
    Exhausted {
        reason: String,
    },
}

/// What the search did, for `--stats` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Candidate operations tried.
    pub steps: u64,
    /// Distinct states (linearized set, register value) in the memo table at the end.
    pub states: usize,
    /// Backtracks taken.
    pub backtracks: u64,
    /// The longest prefix of operations linearized at any point.
    pub longest_prefix: usize,
}

const NONE: u32 = u32::MAX;
/// Head of the list of call and return events of operations with a known outcome.
const KNOWN: u32 = 0;
/// Head of the list of call events of operations with an unknown outcome (they have no return).
const PENDING: u32 = 1;

/// A call or return event in one of the two dancing-links lists; nodes 0 and 1 are their heads.
#[derive(Debug, Clone, Copy)]
struct Node {
    op: u32,
    is_call: bool,
    /// For a call of known outcome: the node of its return event; `NONE` otherwise.
    ret: u32,
    time_ns: u64,
    prev: u32,
    next: u32,
}

/// Both event lists, in real-time order. At equal timestamps calls come before returns, so two
/// operations that merely touch are concurrent: the clock cannot prove one ended before the other
/// began.
fn event_lists(ops: &[KeyOp]) -> Vec<Node> {
    let mut known: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    let mut pending: Vec<(u64, bool, u32)> = Vec::new();
    for (op, key_op) in (0u32..).zip(ops) {
        match key_op.complete_ns {
            Some(complete_ns) => {
                known.push((key_op.invoke_ns, false, op));
                known.push((complete_ns, true, op));
            }
            None => pending.push((key_op.invoke_ns, false, op)),
        }
    }
    known.sort_unstable();
    pending.sort_unstable();
    let head = Node {
        op: NONE,
        is_call: false,
        ret: NONE,
        time_ns: 0,
        prev: NONE,
        next: NONE,
    };
    let mut nodes = vec![head; 2];
    nodes.reserve(known.len() + pending.len());
    let mut return_node = vec![NONE; ops.len()];
    for (list, events) in [(KNOWN, known), (PENDING, pending)] {
        let mut last = list;
        for (time_ns, is_return, op) in events {
            let index = u32::try_from(nodes.len())
                .expect("MAX_OPS_PER_KEY keeps the event count below 2^32");
            nodes[last as usize].next = index;
            if is_return {
                return_node[op as usize] = index;
            }
            nodes.push(Node {
                op,
                is_call: !is_return,
                ret: NONE,
                time_ns,
                prev: last,
                next: NONE,
            });
            last = index;
        }
    }
    for node in &mut nodes[2..] {
        if node.is_call {
            node.ret = return_node[node.op as usize];
        }
    }
    nodes
}

/// Unlinks `node` from its list; its own links stay so [`relink`] can put it back.
fn unlink(nodes: &mut [Node], node: u32) {
    let Node { prev, next, .. } = nodes[node as usize];
    nodes[prev as usize].next = next;
    if next != NONE {
        nodes[next as usize].prev = prev;
    }
}

/// Reverses [`unlink`]; valid only in the reverse order of the unlinks.
fn relink(nodes: &mut [Node], node: u32) {
    let Node { prev, next, .. } = nodes[node as usize];
    nodes[prev as usize].next = node;
    if next != NONE {
        nodes[next as usize].prev = node;
    }
}

/// SplitMix64's finalizer: a bijective mixer, so distinct inputs never collide.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Passes an already well-mixed `u64` through unchanged.
#[derive(Default)]
struct PremixedHasher(u64);

impl Hasher for PremixedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// `a ⊆ b`, for bitsets of equal length.
fn is_subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x & !y == 0)
}

/// What the memo remembers for one (linearized known ops, register value) pair: the sets of
/// linearized unknown-outcome ops it was reached with, none a subset of another.
struct MemoEntry {
    known: Box<[u64]>,
    state: Value,
    unknown: Vec<Box<[u64]>>,
}

/// The memo table of states the search has stood on, all of which failed (a state that succeeds
/// ends the search; a state's descendants have larger sets, so none is its own ancestor).
///
/// Beyond porcupine's exact matching it prunes *dominated* states: reaching (K, v, U) when
/// (K, v, U′) with U′ ⊆ U already failed cannot succeed, because any continuation from the former
/// also works from the latter — the extra unknown-outcome ops of U can instead be placed last, where
/// nothing observes them. Without this, every subset of the pending timed-out writes would be a new
/// state, and a few dozen of them make the search explode.
struct Memo {
    buckets: HashMap<u64, Vec<MemoEntry>, BuildHasherDefault<PremixedHasher>>,
    /// Unknown-op sets remembered, over all entries.
    len: usize,
}

impl Memo {
    /// Records the state; `false` if it, or a state that dominates it, was already there.
    fn insert(&mut self, known: &[u64], known_hash: u64, state: Value, unknown: &[u64]) -> bool {
        let bucket = self
            .buckets
            .entry(known_hash ^ mix(u64::from(state) ^ 0x5EED))
            .or_default();
        let Some(entry) = bucket
            .iter_mut()
            .find(|e| e.state == state && *e.known == *known)
        else {
            bucket.push(MemoEntry {
                known: known.into(),
                state,
                unknown: vec![unknown.into()],
            });
            self.len += 1;
            return true;
        };
        if entry.unknown.iter().any(|seen| is_subset(seen, unknown)) {
            return false;
        }
        let before = entry.unknown.len();
        entry.unknown.retain(|seen| !is_subset(unknown, seen));
        self.len -= before - entry.unknown.len();
        entry.unknown.push(unknown.into());
        self.len += 1;
        true
    }
}

/// What the search does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// A state just reached: first look for a free observation (see [`Search::free_observation`]).
    Fresh,
    /// Walking the known-outcome list: calls are candidates until the first return.
    Known(u32),
    /// The known-outcome candidates are exhausted at a return at `deadline_ns`; now trying the
    /// unknown-outcome ops invoked by then. Tried second, so the memo first meets each state with
    /// as few unknown ops linearized as possible, and dominance pruning bites.
    Pending { node: u32, deadline_ns: u64 },
    /// Every candidate from this state failed: undo the last choice.
    Fail,
}

/// One linearized operation on the search stack.
#[derive(Debug, Clone, Copy)]
struct Frame {
    call: u32,
    /// The register before the operation.
    before: Value,
    /// Where the search resumes if this choice is undone; [`Cursor::Fail`] for a forced choice,
    /// whose failure is its parent state's.
    resume: Cursor,
}

/// A set of operation slots (known-outcome and unknown-outcome ops are numbered separately).
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    fn flip(&mut self, slot: u32) {
        self.0[slot as usize / 64] ^= 1 << (slot % 64);
    }

    fn has(&self, slot: u32) -> bool {
        self.0[slot as usize / 64] & (1 << (slot % 64)) != 0
    }
}

/// The search for one key.
struct Search<'a> {
    ops: &'a [KeyOp],
    limits: &'a Limits,
    nodes: Vec<Node>,
    /// Each op's number within its class (known or unknown outcome).
    slot: Vec<u32>,
    /// For an unknown-outcome op: the latest op invoked before it with the same step and unknown
    /// outcome, or `NONE`. Such twins are interchangeable, except that the earlier one may take
    /// effect wherever the later one may (neither has a deadline), so the search only ever
    /// linearizes the earliest unlinearized twin: any linearization can be rewritten into that form
    /// by swapping twins. This turns the 2^n subsets of n timed-out identical writes into n + 1.
    twin_before: Vec<u32>,
    known: Bits,
    unknown: Bits,
    /// XOR of `mix(op)` over the linearized known ops: the memo's hash, kept incrementally.
    known_hash: u64,
    state: Value,
    memo: Memo,
    stack: Vec<Frame>,
    /// The ops of `stack`, in order.
    path: Vec<u32>,
    known_total: usize,
    known_left: usize,
    /// The path that linearized the most known ops, and how long a prefix it shares with `path`.
    best: Vec<u32>,
    best_known: usize,
    agree: usize,
    stats: SearchStats,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [KeyOp], limits: &'a Limits) -> Self {
        let mut counts = [0u32; 2];
        let slot = ops
            .iter()
            .map(|op| {
                let class = usize::from(op.complete_ns.is_none());
                counts[class] += 1;
                counts[class] - 1
            })
            .collect();
        let nodes = event_lists(ops);
        let mut twin_before = vec![NONE; ops.len()];
        let mut latest: HashMap<Step, u32> = HashMap::new();
        let mut pending = nodes[PENDING as usize].next;
        while pending != NONE {
            let op = nodes[pending as usize].op;
            if let Some(twin) = latest.insert(ops[op as usize].step, op) {
                twin_before[op as usize] = twin;
            }
            pending = nodes[pending as usize].next;
        }
        Self {
            ops,
            limits,
            nodes,
            slot,
            twin_before,
            known: Bits::new(counts[0] as usize),
            unknown: Bits::new(counts[1] as usize),
            known_hash: 0,
            state: ABSENT,
            memo: Memo {
                buckets: HashMap::default(),
                len: 0,
            },
            stack: Vec::new(),
            path: Vec::new(),
            known_total: counts[0] as usize,
            known_left: counts[0] as usize,
            best: Vec::new(),
            best_known: 0,
            agree: 0,
            stats: SearchStats::default(),
        }
    }

    fn is_known(&self, op: u32) -> bool {
        self.ops[op as usize].complete_ns.is_some()
    }

    /// Marks `op` linearized or not, in its class's bitset (and the known ops' hash).
    fn toggle(&mut self, op: u32) {
        let slot = self.slot[op as usize];
        if self.is_known(op) {
            self.known.flip(slot);
            self.known_hash ^= mix(u64::from(op));
        } else {
            self.unknown.flip(slot);
        }
    }

    /// Linearizes the op at `call` next if the model allows it and the resulting state is new.
    fn try_linearize(&mut self, call: u32, resume: Cursor) -> bool {
        let op = self.nodes[call as usize].op;
        let Some(next_state) = self.ops[op as usize].step.apply(self.state) else {
            return false;
        };
        debug_assert!(
            !(if self.is_known(op) {
                &self.known
            } else {
                &self.unknown
            })
            .has(self.slot[op as usize]),
            "a linearized op is never a candidate"
        );
        self.toggle(op);
        if !self
            .memo
            .insert(&self.known.0, self.known_hash, next_state, &self.unknown.0)
        {
            self.toggle(op);
            return false;
        }
        self.stack.push(Frame {
            call,
            before: self.state,
            resume,
        });
        self.state = next_state;
        unlink(&mut self.nodes, call);
        let ret = self.nodes[call as usize].ret;
        if ret != NONE {
            unlink(&mut self.nodes, ret);
        }
        if self.is_known(op) {
            self.known_left -= 1;
        }
        if self.agree == self.path.len() && self.best.get(self.agree) == Some(&op) {
            self.agree += 1;
        }
        self.path.push(op);
        let known_placed = self.known_total - self.known_left;
        if known_placed > self.best_known {
            self.best.truncate(self.agree);
            self.best.extend_from_slice(&self.path[self.agree..]);
            self.agree = self.path.len();
            self.best_known = known_placed;
        }
        self.stats.longest_prefix = self.stats.longest_prefix.max(self.path.len());
        true
    }

    /// Whether linearizing the unknown-outcome op at `node` now could lead anywhere the search
    /// would not go anyway. Not if it would change nothing (a write of the current value, a cas
    /// whose comparison fails): it may as well never take effect. Not if an interchangeable,
    /// earlier-invoked twin is still unlinearized (see `twin_before`).
    fn worth_trying(&self, node: u32) -> bool {
        let op = self.nodes[node as usize].op as usize;
        if self.ops[op].step.apply(self.state) == Some(self.state) {
            return false;
        }
        let twin = self.twin_before[op];
        twin == NONE || self.unknown.has(self.slot[twin as usize])
    }

    /// Undoes the last choice; `None` when there is none left.
    fn backtrack(&mut self) -> Option<Cursor> {
        let frame = self.stack.pop()?;
        self.stats.backtracks += 1;
        let op = self.nodes[frame.call as usize].op;
        assert_eq!(self.path.pop(), Some(op), "path mirrors the stack");
        self.agree = self.agree.min(self.path.len());
        self.toggle(op);
        self.state = frame.before;
        let ret = self.nodes[frame.call as usize].ret;
        if ret != NONE {
            relink(&mut self.nodes, ret);
        }
        relink(&mut self.nodes, frame.call);
        if self.is_known(op) {
            self.known_left += 1;
        }
        let next = self.nodes[frame.call as usize].next;
        Some(match frame.resume {
            Cursor::Known(_) => Cursor::Known(next),
            Cursor::Pending { deadline_ns, .. } => Cursor::Pending {
                node: next,
                deadline_ns,
            },
            Cursor::Fresh | Cursor::Fail => Cursor::Fail,
        })
    }

    /// A candidate of known outcome that observes the register without changing it (a read, a
    /// failed cas) and that the model allows now. Such an op can always go first: in any
    /// linearization from here, moving it to the front keeps every step valid (it changes nothing)
    /// and respects real time (it is a candidate, so nothing unlinearized completed before it
    /// began). So it is linearized without trying alternatives, which removes the orders among
    /// concurrent reads that would otherwise multiply the states.
    fn free_observation(&self) -> Option<u32> {
        let mut node = self.nodes[KNOWN as usize].next;
        while node != NONE && self.nodes[node as usize].is_call {
            let step = self.ops[self.nodes[node as usize].op as usize].step;
            if step.is_observation() && step.apply(self.state).is_some() {
                return Some(node);
            }
            node = self.nodes[node as usize].next;
        }
        None
    }

    fn exhausted(&self, bound: &str, value: String) -> Finding {
        Finding::Exhausted {
            reason: format!(
                "gave up after {value} (Limits::{bound}); {} of {} operations with a known outcome \
                 linearized at best — raise the limit, or record a shorter or less concurrent history",
                self.best_known, self.known_total,
            ),
        }
    }

    fn run(&mut self) -> Finding {
        let mut cursor = Cursor::Fresh;
        while self.known_left > 0 {
            self.stats.steps += 1;
            if self.stats.steps > self.limits.max_steps_per_key {
                let steps = format!("{} search steps", self.limits.max_steps_per_key);
                return self.exhausted("max_steps_per_key", steps);
            }
            cursor = match cursor {
                Cursor::Fresh => match self.free_observation() {
                    Some(node) if self.try_linearize(node, Cursor::Fail) => Cursor::Fresh,
                    // Seen before: this state's whole future was explored through it already.
                    Some(_) => Cursor::Fail,
                    None => Cursor::Known(self.nodes[KNOWN as usize].next),
                },
                Cursor::Known(node) => {
                    // A known op is unlinearized, so its return lies ahead of the cursor.
                    assert!(node != NONE, "a known op's return must remain in the list");
                    let Node {
                        is_call,
                        next,
                        time_ns,
                        ..
                    } = self.nodes[node as usize];
                    if !is_call {
                        // The op returning here had to be linearized by now.
                        Cursor::Pending {
                            node: self.nodes[PENDING as usize].next,
                            deadline_ns: time_ns,
                        }
                    } else if self.try_linearize(node, cursor) {
                        Cursor::Fresh
                    } else {
                        Cursor::Known(next)
                    }
                }
                Cursor::Pending { node, deadline_ns }
                    if node != NONE && self.nodes[node as usize].time_ns <= deadline_ns =>
                {
                    if self.worth_trying(node) && self.try_linearize(node, cursor) {
                        Cursor::Fresh
                    } else {
                        Cursor::Pending {
                            node: self.nodes[node as usize].next,
                            deadline_ns,
                        }
                    }
                }
                Cursor::Pending { .. } | Cursor::Fail => match self.backtrack() {
                    Some(cursor) => cursor,
                    None => {
                        return Finding::Violation {
                            prefix: std::mem::take(&mut self.best),
                        }
                    }
                },
            };
            if self.memo.len > self.limits.max_states_per_key {
                let states = format!("{} remembered states", self.limits.max_states_per_key);
                return self.exhausted("max_states_per_key", states);
            }
        }
        Finding::Linearizable
    }
}

/// Searches for a linearization of `ops` (all on one key) from the absent register.
pub(crate) fn linearize(ops: &[KeyOp], limits: &Limits) -> (Finding, SearchStats) {
    assert!(
        ops.len() <= super::MAX_OPS_PER_KEY,
        "the caller bounds a key's op count"
    );
    let mut search = Search::new(ops, limits);
    let outcome = search.run();
    search.stats.states = search.memo.len;
    (outcome, search.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(step: Step, invoke_ns: u64, complete_ns: Option<u64>) -> KeyOp {
        KeyOp {
            step,
            invoke_ns,
            complete_ns,
        }
    }

    fn verdict(ops: &[KeyOp]) -> Finding {
        linearize(ops, &Limits::default()).0
    }

    const A: Value = 1;
    const B: Value = 2;

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(verdict(&[]), Finding::Linearizable);
    }

    #[test]
    fn read_concurrent_with_write_may_see_either_value() {
        let write = op(Step::Write(A), 10, Some(20));
        for seen in [ABSENT, A] {
            assert_eq!(
                verdict(&[write, op(Step::Read(seen), 15, Some(25))]),
                Finding::Linearizable
            );
        }
    }

    #[test]
    fn read_after_write_completed_must_see_it() {
        let ops = [
            op(Step::Write(A), 10, Some(20)),
            op(Step::Read(ABSENT), 21, Some(30)),
        ];
        assert_eq!(verdict(&ops), Finding::Violation { prefix: vec![0] });
    }

    #[test]
    fn touching_intervals_count_as_concurrent() {
        let ops = [
            op(Step::Write(A), 10, Some(20)),
            op(Step::Read(ABSENT), 20, Some(30)),
        ];
        assert_eq!(verdict(&ops), Finding::Linearizable);
    }

    #[test]
    fn unknown_write_may_take_effect_late_or_never() {
        let unknown = op(Step::Write(B), 5, None);
        let base = [op(Step::Write(A), 10, Some(20))];
        for late_read in [A, B] {
            let mut ops = base.to_vec();
            ops.push(unknown);
            ops.push(op(Step::Read(late_read), 100, Some(110)));
            assert_eq!(verdict(&ops), Finding::Linearizable, "read {late_read}");
        }
    }

    #[test]
    fn step_budget_makes_the_search_inconclusive() {
        let ops = [
            op(Step::Write(A), 0, Some(100)),
            op(Step::Write(B), 0, Some(100)),
            op(Step::Read(A), 200, Some(300)),
        ];
        let limits = Limits {
            max_steps_per_key: 2,
            ..Limits::default()
        };
        let (outcome, stats) = linearize(&ops, &limits);
        assert!(matches!(outcome, Finding::Exhausted { .. }), "{outcome:?}");
        assert_eq!(stats.steps, 3);
    }

    #[test]
    fn concurrent_reads_are_linearized_without_branching() {
        let mut ops = vec![op(Step::Write(A), 0, Some(10))];
        ops.extend((0..20).map(|_| op(Step::Read(A), 20, Some(30))));
        ops.push(op(Step::Write(B), 20, Some(30)));
        ops.push(op(Step::Read(B), 40, Some(50)));
        let (outcome, stats) = linearize(&ops, &Limits::default());
        assert_eq!(outcome, Finding::Linearizable);
        assert_eq!(stats.backtracks, 0);
        assert_eq!(stats.states, ops.len());
    }

    #[test]
    fn identical_timed_out_writes_are_interchangeable() {
        // Thirty timed-out writes of A, all invoked at the start; each read of A needs one of them
        // to land after the preceding write of B. A final read of a value never written makes the
        // search exhaust every choice: which write lands where must not multiply them.
        const NEVER_WRITTEN: Value = 3;
        let mut ops: Vec<KeyOp> = (0..30).map(|_| op(Step::Write(A), 0, None)).collect();
        for round in 0..10 {
            let t = 100 * (round + 1);
            ops.push(op(Step::Write(B), t, Some(t + 10)));
            ops.push(op(Step::Read(A), t + 20, Some(t + 30)));
        }
        ops.push(op(Step::Read(NEVER_WRITTEN), 5_000, Some(5_010)));
        let (outcome, stats) = linearize(&ops, &Limits::default());
        assert!(matches!(outcome, Finding::Violation { .. }), "{outcome:?}");
        assert!(stats.states <= 100, "{stats:?}");
    }

    #[test]
    fn memo_prunes_equivalent_orders() {
        // Eight concurrent writes of the same value then a read: without the memo the search would
        // try 8! orders before it finds the read; with it, each subset is visited once.
        let mut ops: Vec<KeyOp> = (0..8).map(|_| op(Step::Write(A), 0, Some(10))).collect();
        ops.push(op(Step::Read(B), 20, Some(30)));
        let (outcome, stats) = linearize(&ops, &Limits::default());
        assert!(matches!(outcome, Finding::Violation { .. }));
        assert!(stats.states <= 1 << 8, "states {}", stats.states);
    }
}
