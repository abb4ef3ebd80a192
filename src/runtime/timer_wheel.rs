//! A hashed timing wheel: O(1) schedule and cancel, expiry driven by the loop's one clock read.
//!
//! Time is cut into ticks of `tick_ns`; tick `t` hashes to slot `t mod slots`. A timer is linked
//! into the slot of its deadline's tick and keeps its exact deadline, so it never fires early and at
//! most one tick late (the caller's `now_ns` granularity aside). Deadlines further away than one
//! rotation (`tick_ns * slots`) simply stay in their slot while the cursor passes it, and fire on
//! the rotation where they are due — the classic "rounds" scheme, comparing the exact deadline
//! instead of counting rounds. Choose `tick_ns * slots` above the common timeouts (election, lease)
//! and far timers cost only a comparison per pass.
//!
//! Everything is preallocated: a slab of `capacity` entries threaded into per-slot doubly linked
//! lists by index, and a free list. `schedule` fails with [`TimerWheelError::Full`] rather than grow.
//! Ids carry a generation, so cancelling a timer that already fired or was cancelled (and whose
//! entry may now hold another timer) does nothing.

/// Sentinel for "no entry" in the index-linked lists.
const NIL: u32 = u32::MAX;

/// Upper bound on `slots` and `capacity`: bounds memory (an entry is 40 bytes) and keeps indices
/// below the list sentinel (`u32::MAX`).
pub const TIMER_WHEEL_LIMIT: usize = 1 << 24;

/// Invalid wheel parameters, or a full wheel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerWheelError {
    /// `tick_ns` is zero.
    #[error("timer wheel tick is 0 ns; use a positive tick such as 1000000 (1 ms)")]
    ZeroTick,
    /// `slots` is zero, not a power of two, or above the limit.
    #[error(
        "timer wheel slot count {slots} is invalid: it must be a power of two between 1 and \
         {limit} (e.g. 1024)",
        limit = TIMER_WHEEL_LIMIT
    )]
    Slots {
        /// The rejected slot count.
        slots: usize,
    },
    /// `capacity` is zero or above the limit.
    #[error(
        "timer wheel capacity {capacity} is invalid: it must be between 1 and {limit}",
        limit = TIMER_WHEEL_LIMIT
    )]
    Capacity {
        /// The rejected capacity.
        capacity: usize,
    },
    /// All `capacity` timers are armed.
    #[error(
        "timer wheel full: all {capacity} timers are armed; cancel timers that are no longer \
         needed or configure a larger capacity"
    )]
    Full {
        /// The wheel's capacity.
        capacity: usize,
    },
}

/// Names one scheduled timer; stale ids (timer fired or cancelled) are recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    /// Bumped each time the entry is freed. A stale id could only match again after 2^32 reuses of
    /// the same entry while the id was held, which no caller does.
    generation: u32,
}

/// A timer that fired, as handed to the caller by [`TimerWheel::expire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The caller's token given to [`TimerWheel::schedule`].
    pub token: u64,
    /// The deadline it was scheduled for (`now_ns - deadline_ns` is the lateness).
    pub deadline_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline_ns: u64,
    /// The tick whose slot holds the entry: the deadline's tick, or the cursor's if that was later.
    tick: u64,
    token: u64,
    generation: u32,
    live: bool,
    prev: u32,
    /// Next in the slot list while live; next free entry while free.
    next: u32,
}

/// What is known about the earliest armed deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Earliest {
    Empty,
    Known(u64),
    /// The earliest timer went away; recompute on demand.
    Stale,
}

/// A hashed timing wheel with fixed capacity. Not thread-safe by design: each shard owns its own.
#[derive(Debug)]
pub struct TimerWheel {
    tick_ns: u64,
    slot_mask: u64,
    heads: Box<[u32]>,
    entries: Box<[Entry]>,
    free_head: u32,
    len: usize,
    /// Every live entry's tick is `>= cursor_tick`; the cursor's slot may still hold entries due later
    /// within that tick, so `expire` revisits it.
    cursor_tick: u64,
    last_now_ns: u64,
    earliest: Earliest,
}

impl TimerWheel {
    /// A wheel of `slots` slots (a power of two) of `tick_ns` each, holding at most `capacity`
    /// timers, whose time starts at `now_ns`. All memory is allocated here.
    pub fn new(
        tick_ns: u64,
        slots: usize,
        capacity: usize,
        now_ns: u64,
    ) -> Result<Self, TimerWheelError> {
        if tick_ns == 0 {
            return Err(TimerWheelError::ZeroTick);
        }
        if !slots.is_power_of_two() || slots > TIMER_WHEEL_LIMIT {
            return Err(TimerWheelError::Slots { slots });
        }
        if capacity == 0 || capacity > TIMER_WHEEL_LIMIT {
            return Err(TimerWheelError::Capacity { capacity });
        }
        let entries = (0..capacity)
            .map(|i| Entry {
                deadline_ns: 0,
                tick: 0,
                token: 0,
                generation: 0,
                live: false,
                prev: NIL,
                next: if i + 1 < capacity { to_u32(i + 1) } else { NIL },
            })
            .collect();
        Ok(Self {
            tick_ns,
            slot_mask: to_u64(slots) - 1,
            heads: vec![NIL; slots].into_boxed_slice(),
            entries,
            free_head: 0,
            len: 0,
            cursor_tick: now_ns / tick_ns,
            last_now_ns: now_ns,
            earliest: Earliest::Empty,
        })
    }

    /// Arms a timer firing at `deadline_ns` (a deadline in the past fires on the next `expire`).
    pub fn schedule(&mut self, deadline_ns: u64, token: u64) -> Result<TimerId, TimerWheelError> {
        let index = self.free_head;
        if index == NIL {
            debug_assert_eq!(self.len, self.entries.len());
            return Err(TimerWheelError::Full {
                capacity: self.entries.len(),
            });
        }
        let tick = (deadline_ns / self.tick_ns).max(self.cursor_tick);
        let entry = &mut self.entries[to_usize(index)];
        assert!(!entry.live, "free list holds a live timer");
        self.free_head = entry.next;
        entry.deadline_ns = deadline_ns;
        entry.tick = tick;
        entry.token = token;
        entry.live = true;
        let generation = entry.generation;
        self.link(index);
        self.len += 1;
        self.earliest = match self.earliest {
            Earliest::Empty => Earliest::Known(deadline_ns),
            Earliest::Known(earliest_ns) => Earliest::Known(earliest_ns.min(deadline_ns)),
            Earliest::Stale => Earliest::Stale,
        };
        Ok(TimerId { index, generation })
    }

    /// Disarms `id`; returns its token, or `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<u64> {
        let entry = self.entries.get(to_usize(id.index))?;
        if !entry.live || entry.generation != id.generation {
            return None;
        }
        let (token, deadline_ns) = (entry.token, entry.deadline_ns);
        self.unlink(id.index);
        self.release(id.index);
        if self.earliest == Earliest::Known(deadline_ns) {
            self.earliest = Earliest::Stale;
        }
        if self.len == 0 {
            self.earliest = Earliest::Empty;
        }
        Some(token)
    }

    /// Fires every timer whose deadline is `<= now_ns`, appending them to `out` (in tick order; not
    /// sorted within a tick). Returns how many fired. Allocation-free when `out` has room — reserve
    /// [`capacity`](Self::capacity) once and reuse it.
    ///
    /// `now_ns` must not go backwards between calls (it comes from a monotonic clock).
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Expired>) -> usize {
        debug_assert!(now_ns >= self.last_now_ns, "the clock went backwards");
        self.last_now_ns = self.last_now_ns.max(now_ns);
        let now_tick = now_ns / self.tick_ns;
        if now_tick < self.cursor_tick {
            return 0;
        }
        // Visit each tick from the cursor to now, but each slot at most once.
        let ticks = (now_tick - self.cursor_tick)
            .saturating_add(1)
            .min(self.slot_mask + 1);
        let mut fired = 0;
        for tick in self.cursor_tick..self.cursor_tick + ticks {
            let mut index = self.heads[to_usize(tick & self.slot_mask)];
            while index != NIL {
                let entry = self.entries[to_usize(index)];
                debug_assert!(entry.live && entry.tick >= self.cursor_tick);
                if entry.deadline_ns <= now_ns {
                    self.unlink(index);
                    self.release(index);
                    out.push(Expired {
                        token: entry.token,
                        deadline_ns: entry.deadline_ns,
                    });
                    fired += 1;
                }
                index = entry.next;
            }
        }
        self.cursor_tick = now_tick;
        if fired > 0 {
            self.earliest = match self.earliest {
                _ if self.len == 0 => Earliest::Empty,
                Earliest::Known(earliest_ns) if earliest_ns > now_ns => self.earliest,
                _ => Earliest::Stale,
            };
        }
        fired
    }

    /// The earliest armed deadline, for deciding how long the shard may park; `None` if no timer is
    /// armed. Usually O(1); after the earliest timer fired or was cancelled, one scan of at most
    /// `slots` slots plus the armed timers.
    pub fn next_deadline_ns(&mut self) -> Option<u64> {
        if self.earliest == Earliest::Stale {
            self.earliest = self.find_earliest();
        }
        match self.earliest {
            Earliest::Empty => None,
            Earliest::Known(deadline_ns) => Some(deadline_ns),
            Earliest::Stale => unreachable!("just recomputed"),
        }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most timers that can be armed at once.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Entries of earlier ticks hold earlier deadlines (a tick's deadlines lie below the next tick's
    /// start), so the first tick from the cursor holding an entry *for that tick* holds the earliest.
    fn find_earliest(&self) -> Earliest {
        if self.len == 0 {
            return Earliest::Empty;
        }
        for tick in self.cursor_tick..=self.cursor_tick + self.slot_mask {
            let mut earliest_ns: Option<u64> = None;
            let mut index = self.heads[to_usize(tick & self.slot_mask)];
            while index != NIL {
                let entry = &self.entries[to_usize(index)];
                if entry.tick == tick {
                    earliest_ns =
                        Some(earliest_ns.map_or(entry.deadline_ns, |e| e.min(entry.deadline_ns)));
                }
                index = entry.next;
            }
            if let Some(deadline_ns) = earliest_ns {
                return Earliest::Known(deadline_ns);
            }
        }
        // Every armed timer is more than a rotation away.
        let earliest_ns = self
            .entries
            .iter()
            .filter(|entry| entry.live)
            .map(|entry| entry.deadline_ns)
            .min()
            .expect("len > 0 means some entry is live");
        Earliest::Known(earliest_ns)
    }

    fn link(&mut self, index: u32) {
        let slot = to_usize(self.entries[to_usize(index)].tick & self.slot_mask);
        let head = self.heads[slot];
        if head != NIL {
            self.entries[to_usize(head)].prev = index;
        }
        let entry = &mut self.entries[to_usize(index)];
        entry.prev = NIL;
        entry.next = head;
        self.heads[slot] = index;
    }

    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, tick, ..
        } = self.entries[to_usize(index)];
        if prev == NIL {
            let slot = to_usize(tick & self.slot_mask);
            debug_assert_eq!(self.heads[slot], index);
            self.heads[slot] = next;
        } else {
            self.entries[to_usize(prev)].next = next;
        }
        if next != NIL {
            self.entries[to_usize(next)].prev = prev;
        }
    }

    /// Returns an unlinked entry to the free list and invalidates ids naming it.
    fn release(&mut self, index: u32) {
        let entry = &mut self.entries[to_usize(index)];
        assert!(entry.live, "releasing a timer that is not armed");
        entry.live = false;
        entry.generation = entry.generation.wrapping_add(1);
        entry.prev = NIL;
        entry.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
    }
}

fn to_usize(index: impl Into<u64>) -> usize {
    usize::try_from(index.into()).expect("indices are below TIMER_WHEEL_LIMIT, which fits usize")
}

fn to_u32(index: usize) -> u32 {
    u32::try_from(index).expect("indices are below TIMER_WHEEL_LIMIT, which fits u32")
}

fn to_u64(value: usize) -> u64 {
    u64::try_from(value).expect("usize fits u64 on every supported target")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const MS: u64 = 1_000_000;

    fn wheel(tick_ns: u64, slots: usize, capacity: usize) -> TimerWheel {
        TimerWheel::new(tick_ns, slots, capacity, 0).expect("valid wheel")
    }

    fn tokens(out: &[Expired]) -> Vec<u64> {
        let mut tokens: Vec<u64> = out.iter().map(|e| e.token).collect();
        tokens.sort_unstable();
        tokens
    }

    #[test]
    fn invalid_parameters_are_rejected_with_the_value() {
        assert_eq!(
            TimerWheel::new(0, 8, 8, 0).unwrap_err(),
            TimerWheelError::ZeroTick
        );
        for slots in [0, 6, TIMER_WHEEL_LIMIT * 2] {
            let error = TimerWheel::new(MS, slots, 8, 0).unwrap_err();
            assert_eq!(error, TimerWheelError::Slots { slots });
            assert!(error.to_string().contains(&slots.to_string()));
        }
        for capacity in [0, TIMER_WHEEL_LIMIT + 1] {
            let error = TimerWheel::new(MS, 8, capacity, 0).unwrap_err();
            assert_eq!(error, TimerWheelError::Capacity { capacity });
        }
    }

    #[test]
    fn a_timer_fires_at_its_deadline_not_before() {
        let mut w = wheel(MS, 8, 4);
        w.schedule(5 * MS + 300, 7).expect("room");
        let mut out = Vec::new();
        assert_eq!(
            w.expire(5 * MS + 299, &mut out),
            0,
            "fired early, within its own tick"
        );
        assert_eq!(w.expire(5 * MS + 300, &mut out), 1);
        assert_eq!(
            out,
            [Expired {
                token: 7,
                deadline_ns: 5 * MS + 300
            }]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn a_deadline_many_rotations_away_waits_for_its_rotation() {
        // One rotation is 8 ms; the timer is 3.5 rotations out.
        let mut w = wheel(MS, 8, 4);
        w.schedule(28 * MS, 1).expect("room");
        let mut out = Vec::new();
        for now_ms in 1..28 {
            assert_eq!(w.expire(now_ms * MS, &mut out), 0, "fired at {now_ms} ms");
        }
        assert_eq!(w.expire(28 * MS, &mut out), 1);
    }

    #[test]
    fn a_deadline_in_the_past_fires_on_the_next_expire() {
        let mut w = wheel(MS, 8, 4);
        let mut out = Vec::new();
        w.expire(100 * MS, &mut out);
        w.schedule(3 * MS, 9).expect("room");
        assert_eq!(w.expire(100 * MS, &mut out), 1);
        assert_eq!(tokens(&out), [9]);
    }

    #[test]
    fn a_full_wheel_refuses_and_recovers_after_a_cancel() {
        let mut w = wheel(MS, 8, 2);
        let a = w.schedule(MS, 1).expect("room");
        w.schedule(2 * MS, 2).expect("room");
        assert_eq!(
            w.schedule(3 * MS, 3),
            Err(TimerWheelError::Full { capacity: 2 })
        );
        assert_eq!(w.cancel(a), Some(1));
        w.schedule(3 * MS, 3).expect("room after cancel");
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn a_stale_cancel_cannot_disarm_the_timer_that_reused_its_entry() {
        let mut w = wheel(MS, 8, 1);
        let old = w.schedule(MS, 1).expect("room");
        let mut out = Vec::new();
        assert_eq!(w.expire(MS, &mut out), 1);
        let new = w
            .schedule(2 * MS, 2)
            .expect("the single entry is free again");
        assert_eq!(
            w.cancel(old),
            None,
            "cancel of a fired timer must be a no-op"
        );
        assert_eq!(w.cancel(old), None);
        assert_eq!(w.len(), 1, "the new timer must still be armed");
        assert_eq!(w.cancel(new), Some(2));
        assert_eq!(w.cancel(new), None, "double cancel is a no-op");
    }

    #[test]
    fn next_deadline_tracks_schedule_cancel_and_expire() {
        let mut w = wheel(MS, 8, 8);
        assert_eq!(w.next_deadline_ns(), None);
        let far = w.schedule(100 * MS, 1).expect("room");
        assert_eq!(w.next_deadline_ns(), Some(100 * MS));
        let near = w.schedule(3 * MS + 5, 2).expect("room");
        w.schedule(3 * MS + 9, 3).expect("room");
        assert_eq!(w.next_deadline_ns(), Some(3 * MS + 5));
        w.cancel(near);
        assert_eq!(w.next_deadline_ns(), Some(3 * MS + 9));
        let mut out = Vec::new();
        w.expire(4 * MS, &mut out);
        assert_eq!(
            w.next_deadline_ns(),
            Some(100 * MS),
            "only a far timer is left"
        );
        w.cancel(far);
        assert_eq!(w.next_deadline_ns(), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Arm a timer `offset_ns` after now (or before it, when `past`).
        Schedule { offset_ns: u64, past: bool },
        /// Cancel the `pick`-th id ever issued (often stale).
        Cancel { pick: usize },
        /// Advance time by `step_ns` and expire.
        Advance { step_ns: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        // A tiny wheel (8 slots of 1000 ns, 16 entries) so rotations, collisions and a full wheel
        // all happen within a few dozen operations.
        prop_oneof![
            4 => (0u64..40_000, prop::bool::weighted(0.1))
                .prop_map(|(offset_ns, past)| Op::Schedule { offset_ns, past }),
            2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
            3 => prop_oneof![0u64..1_500, 0u64..20_000].prop_map(|step_ns| Op::Advance { step_ns }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn wheel_matches_a_sorted_map_model(start_ns in 0u64..1_000_000, ops in prop::collection::vec(op(), 1..200)) {
            const CAPACITY: usize = 16;
            let mut w = TimerWheel::new(1_000, 8, CAPACITY, start_ns).expect("valid wheel");
            // Model: token -> deadline of every armed timer.
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            let mut issued: Vec<(TimerId, u64)> = Vec::new();
            let mut now_ns = start_ns;
            let mut next_token = 0u64;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Schedule { offset_ns, past } => {
                        let deadline_ns = if past { now_ns.saturating_sub(offset_ns) } else { now_ns + offset_ns };
                        let token = next_token;
                        next_token += 1;
                        match w.schedule(deadline_ns, token) {
                            Ok(id) => {
                                prop_assert!(model.len() < CAPACITY, "accepted beyond capacity");
                                model.insert(token, deadline_ns);
                                issued.push((id, token));
                            }
                            Err(error) => {
                                prop_assert_eq!(error, TimerWheelError::Full { capacity: CAPACITY });
                                prop_assert_eq!(model.len(), CAPACITY, "refused while not full");
                            }
                        }
                    }
                    Op::Cancel { pick } => {
                        if issued.is_empty() { continue; }
                        let (id, token) = issued[pick % issued.len()];
                        let expected = model.remove(&token).map(|_| token);
                        prop_assert_eq!(w.cancel(id), expected);
                    }
                    Op::Advance { step_ns } => {
                        now_ns += step_ns;
                        out.clear();
                        let fired = w.expire(now_ns, &mut out);
                        prop_assert_eq!(fired, out.len());
                        let due: Vec<u64> = model.iter().filter(|(_, &d)| d <= now_ns).map(|(&t, _)| t).collect();
                        for token in &due { model.remove(token); }
                        prop_assert_eq!(tokens(&out), due);
                        for expired in &out {
                            prop_assert!(expired.deadline_ns <= now_ns, "fired early");
                        }
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                prop_assert_eq!(w.next_deadline_ns(), model.values().copied().min());
            }
        }
    }
}
