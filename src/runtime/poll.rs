//! The shard's poll loop (DESIGN.md §3) and adaptive polling: spin while work is near, park when not.
//!
//! One iteration: read the clock once → [`ShardTask::poll`] (which polls transports, steps consensus,
//! persists, sends, applies, answers clients and runs due timers, all with that one `now_ns`) →
//! ask the [`AdaptivePoller`] whether to poll again at once or park, and for how long.
//!
//! Production configurations pin shards and spin (`spin_us` = [`AdaptivePoller::SPIN_FOREVER`]):
//! the lowest latency, one core per shard. On a laptop or this 2-core VM, three local nodes each
//! spinning would starve each other, so a shard spins only `spin_us` after its last piece of work
//! and then parks until a doorbell rings or its next timer is due.

use super::{BoxError, Clock, DoorbellError, StopSignal};

/// What one call of [`ShardTask::poll`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Something was done (a message handled, a timer fired, a completion reaped): poll again
    /// immediately, work tends to come in bursts.
    Busy,
    /// Nothing to do. `next_deadline_ns` is the earliest timer deadline the task owns (e.g.
    /// [`TimerWheel::next_deadline_ns`](super::TimerWheel::next_deadline_ns)), so a park ends in
    /// time for it; `None` when no timer is armed.
    Idle {
        /// Earliest armed deadline, on the same clock as `now_ns`.
        next_deadline_ns: Option<u64>,
    },
    /// The task has finished (e.g. asked to shut down); the loop returns.
    Stop,
}

/// Why a shard could not park. The loop stops and reports it: a shard that cannot sleep would
/// either spin forever or miss its wake-ups.
#[derive(Debug, thiserror::Error)]
pub enum ParkError {
    /// The doorbell's eventfd wait failed.
    #[error(transparent)]
    Doorbell(#[from] DoorbellError),
    /// A transport's own kernel wait failed (e.g. `io_uring_enter` in `Transport::park`).
    #[error("parking the shard in its transport failed: {0}")]
    Transport(#[source] BoxError),
}

/// What the server runs on each shard; the loop in [`run_loop`] drives it.
///
/// # The park contract
///
/// [`park`](Self::park) is called only after [`poll`](Self::poll) returned [`Progress::Idle`] and the
/// poller chose to sleep. It must return after at most about `timeout_ns`, may return earlier for
/// any reason (spurious wake-ups are fine), and must return promptly once anything it would handle
/// arrives — in particular when [`doorbell`](Self::doorbell) rings, which is how mailboxes and
/// shutdown reach a parked shard. To never miss a ring, it must:
///
/// 1. call [`Doorbell::begin_park`](super::Doorbell::begin_park) and keep the guard while sleeping;
/// 2. then re-check [`has_pending`](Self::has_pending) (and its own completion queues), returning
///    at once if anything is there;
/// 3. only then sleep on a wait that includes the doorbell's fd, and
///    [`drain`](super::Doorbell::drain) the doorbell if it fired.
///
/// The default implementation does this with the doorbell alone (`ppoll` on its eventfd), for tasks
/// whose only inputs are mailboxes and timers. A task with a kernel-fd transport (io_uring) hands
/// `doorbell().fd()` to the transport once at start-up (`TcpUring::watch_wakeup_fd`, a multishot
/// poll in its ring) and overrides `park` so one kernel wait covers sockets, timers and mailboxes:
///
/// ```text
/// fn park(&mut self, timeout_ns: u64) -> Result<(), ParkError> {
///     let _parked = self.doorbell.begin_park();             // 1. raise the flag (+ fence)
///     if self.has_pending() || self.transport_has_completions() {
///         return Ok(());                                     // 2. something arrived meanwhile
///     }
///     self.transport.park(timeout_ns)                        // 3. io_uring wait with a timeout;
///         .map_err(|e| ParkError::Transport(e.into()))?;     //    the doorbell fd is in it
///     self.doorbell.drain();                                 //    consume the ring, if any
///     Ok(())
/// }
/// ```
pub trait ShardTask {
    /// One iteration of the shard's work at time `now_ns` (read once by the loop). Must not block.
    fn poll(&mut self, now_ns: u64) -> Progress;

    /// The doorbell that mailboxes into this shard (and shutdown) ring.
    fn doorbell(&self) -> &super::Doorbell;

    /// Whether input is waiting that [`poll`](Self::poll) would handle — typically "some inbound
    /// mailbox is non-empty" ([`MailboxReceiver::is_empty`](super::MailboxReceiver::is_empty)).
    /// Called between raising the parked flag and sleeping.
    fn has_pending(&self) -> bool;

    /// Sleeps at most `timeout_ns` or until woken; see the trait documentation for the contract.
    fn park(&mut self, timeout_ns: u64) -> Result<(), ParkError> {
        self.doorbell().park(timeout_ns, || self.has_pending())?;
        Ok(())
    }
}

/// The poller's verdict after an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Poll again now (after a `spin_loop` hint if the iteration was idle).
    Poll,
    /// Call [`ShardTask::park`] with this timeout.
    Park {
        /// How long the shard may sleep: never past the next timer deadline nor `max_park_us`.
        timeout_ns: u64,
    },
}

/// Invalid adaptive-polling parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollerError {
    /// `max_park_us` outside `1..=MAX_PARK_US_LIMIT`.
    #[error(
        "max_park_us = {max_park_us} is invalid: it must be between 1 and {limit} µs; \
         it bounds how long an idle shard sleeps between checks",
        limit = AdaptivePoller::MAX_PARK_US_LIMIT
    )]
    MaxPark {
        /// The rejected value.
        max_park_us: u64,
    },
}

/// Adaptive polling as a small deterministic state machine: spin for `spin_us` after the last
/// iteration that did work, then park — for at most `max_park_us`, and never past the next timer.
///
/// Once parked, an iteration that finds nothing to do parks again at once (no new spin window): an
/// idle shard costs one wake-up per `max_park_us` or timer, not a spin each time. Any work reopens
/// the spin window, so a conversation in progress stays hot.
#[derive(Debug, Clone)]
pub struct AdaptivePoller {
    spin_ns: u64,
    max_park_ns: u64,
    /// When the current idle stretch began; `None` while working.
    idle_since_ns: Option<u64>,
}

impl AdaptivePoller {
    /// `spin_us` value that never parks: the production setting for pinned shards.
    pub const SPIN_FOREVER: u64 = u64::MAX;
    /// Upper bound on `max_park_us` (10 s): a longer sleep only hides bugs in wake-ups.
    pub const MAX_PARK_US_LIMIT: u64 = 10_000_000;

    /// A poller that spins `spin_us` (saturating; [`SPIN_FOREVER`](Self::SPIN_FOREVER) never parks)
    /// and parks at most `max_park_us` at a time.
    pub fn new(spin_us: u64, max_park_us: u64) -> Result<Self, PollerError> {
        if max_park_us == 0 || max_park_us > Self::MAX_PARK_US_LIMIT {
            return Err(PollerError::MaxPark { max_park_us });
        }
        Ok(Self {
            spin_ns: spin_us.saturating_mul(1_000),
            max_park_ns: max_park_us * 1_000,
            idle_since_ns: None,
        })
    }

    /// Decides what follows an iteration at `now_ns` that did (`worked`) or did not do work, given
    /// the task's earliest timer deadline.
    pub fn decide(&mut self, now_ns: u64, worked: bool, next_deadline_ns: Option<u64>) -> Decision {
        if worked {
            self.idle_since_ns = None;
            return Decision::Poll;
        }
        let idle_since_ns = *self.idle_since_ns.get_or_insert(now_ns);
        debug_assert!(now_ns >= idle_since_ns, "the clock went backwards");
        if now_ns.saturating_sub(idle_since_ns) < self.spin_ns {
            return Decision::Poll;
        }
        let timeout_ns = match next_deadline_ns {
            // A timer is due: poll now so it runs, do not sleep through it.
            Some(deadline_ns) if deadline_ns <= now_ns => return Decision::Poll,
            Some(deadline_ns) => self.max_park_ns.min(deadline_ns - now_ns),
            None => self.max_park_ns,
        };
        debug_assert!(timeout_ns > 0 && timeout_ns <= self.max_park_ns);
        Decision::Park { timeout_ns }
    }
}

/// Counters of one [`run_loop`], returned when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Iterations run (clock reads).
    pub iterations: u64,
    /// Iterations whose poll reported [`Progress::Busy`].
    pub busy_iterations: u64,
    /// Calls of [`ShardTask::park`].
    pub parks: u64,
}

/// Runs `task` until it returns [`Progress::Stop`] or `stop` is requested; the shard's main loop.
///
/// Deliberately unbounded in iterations (a shard lives as long as the node); every iteration is
/// bounded by what the task does in one `poll`. Fails only if the task cannot park.
pub fn run_loop<T, C>(
    task: &mut T,
    poller: &mut AdaptivePoller,
    clock: &mut C,
    stop: &StopSignal,
) -> Result<LoopStats, ParkError>
where
    T: ShardTask + ?Sized,
    C: Clock + ?Sized,
{
    let mut stats = LoopStats::default();
    while !stop.is_requested() {
        let now_ns = clock.now_ns();
        stats.iterations += 1;
        let (worked, next_deadline_ns) = match task.poll(now_ns) {
            Progress::Stop => break,
            Progress::Busy => {
                stats.busy_iterations += 1;
                (true, None)
            }
            Progress::Idle { next_deadline_ns } => (false, next_deadline_ns),
        };
        match poller.decide(now_ns, worked, next_deadline_ns) {
            Decision::Poll if worked => {}
            Decision::Poll => std::hint::spin_loop(),
            Decision::Park { timeout_ns } => {
                stats.parks += 1;
                task.park(timeout_ns)?;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Doorbell;

    const US: u64 = 1_000;

    fn poller(spin_us: u64, max_park_us: u64) -> AdaptivePoller {
        AdaptivePoller::new(spin_us, max_park_us).expect("valid poller")
    }

    #[test]
    fn max_park_must_be_positive_and_bounded() {
        for max_park_us in [0, AdaptivePoller::MAX_PARK_US_LIMIT + 1] {
            let error = AdaptivePoller::new(50, max_park_us).expect_err("invalid");
            assert_eq!(error, PollerError::MaxPark { max_park_us });
            assert!(error.to_string().contains(&max_park_us.to_string()));
        }
    }

    #[test]
    fn busy_iterations_never_park() {
        let mut p = poller(0, 1_000);
        for now_ns in (0..1_000_000).step_by(1_000) {
            assert_eq!(p.decide(now_ns, true, None), Decision::Poll);
        }
    }

    #[test]
    fn idle_shard_spins_for_spin_us_then_parks() {
        let mut p = poller(50, 1_000);
        assert_eq!(p.decide(1_000 * US, true, None), Decision::Poll);
        // The idle stretch starts at the first idle iteration (t = 1001 µs).
        assert_eq!(p.decide(1_001 * US, false, None), Decision::Poll);
        assert_eq!(p.decide(1_050 * US, false, None), Decision::Poll);
        assert_eq!(p.decide(1_051 * US - 1, false, None), Decision::Poll);
        assert_eq!(
            p.decide(1_051 * US, false, None),
            Decision::Park {
                timeout_ns: 1_000 * US
            }
        );
    }

    #[test]
    fn park_never_outlasts_the_next_timer_or_max_park() {
        let mut p = poller(0, 1_000);
        assert_eq!(
            p.decide(10 * US, false, Some(35 * US)),
            Decision::Park {
                timeout_ns: 25 * US
            }
        );
        assert_eq!(
            p.decide(10 * US, false, Some(1_000_000 * US)),
            Decision::Park {
                timeout_ns: 1_000 * US
            }
        );
    }

    #[test]
    fn a_due_timer_keeps_the_shard_polling() {
        let mut p = poller(0, 1_000);
        assert_eq!(p.decide(10 * US, false, Some(10 * US)), Decision::Poll);
        assert_eq!(p.decide(10 * US, false, Some(3 * US)), Decision::Poll);
    }

    #[test]
    fn an_idle_wake_up_parks_again_without_a_new_spin_window() {
        let mut p = poller(50, 1_000);
        p.decide(0, false, None);
        assert!(matches!(
            p.decide(50 * US, false, None),
            Decision::Park { .. }
        ));
        // Woke after the park timeout with nothing to do: straight back to sleep.
        assert!(matches!(
            p.decide(1_051 * US, false, None),
            Decision::Park { .. }
        ));
    }

    #[test]
    fn work_after_a_park_reopens_the_spin_window() {
        let mut p = poller(50, 1_000);
        p.decide(0, false, None);
        assert!(matches!(
            p.decide(50 * US, false, None),
            Decision::Park { .. }
        ));
        assert_eq!(p.decide(300 * US, true, None), Decision::Poll);
        assert_eq!(p.decide(301 * US, false, None), Decision::Poll);
        assert_eq!(p.decide(350 * US, false, None), Decision::Poll);
        assert!(matches!(
            p.decide(351 * US, false, None),
            Decision::Park { .. }
        ));
    }

    #[test]
    fn spin_forever_never_parks() {
        let mut p = poller(AdaptivePoller::SPIN_FOREVER, 1_000);
        p.decide(0, false, None);
        assert_eq!(p.decide(u64::MAX / 2, false, None), Decision::Poll);
        assert_eq!(p.decide(u64::MAX, false, Some(u64::MAX)), Decision::Poll);
    }

    #[test]
    fn zero_spin_parks_on_the_first_idle_iteration() {
        let mut p = poller(0, 7);
        assert_eq!(
            p.decide(5, false, None),
            Decision::Park { timeout_ns: 7 * US }
        );
    }

    /// A clock that advances a fixed step per read and counts reads.
    struct SteppingClock {
        now_ns: u64,
        step_ns: u64,
        reads: u64,
    }

    impl Clock for SteppingClock {
        fn now_ns(&mut self) -> u64 {
            self.reads += 1;
            self.now_ns += self.step_ns;
            self.now_ns
        }
    }

    /// Busy for `busy_polls` polls, then idle with a fixed deadline; stops after `total_polls`.
    struct ScriptedTask {
        doorbell: Doorbell,
        busy_polls: u64,
        total_polls: u64,
        deadline_ns: Option<u64>,
        seen_now_ns: Vec<u64>,
        park_timeouts_ns: Vec<u64>,
    }

    impl ShardTask for ScriptedTask {
        fn poll(&mut self, now_ns: u64) -> Progress {
            self.seen_now_ns.push(now_ns);
            let polls = self.seen_now_ns.len() as u64;
            if polls >= self.total_polls {
                Progress::Stop
            } else if polls <= self.busy_polls {
                Progress::Busy
            } else {
                Progress::Idle {
                    next_deadline_ns: self.deadline_ns,
                }
            }
        }

        fn doorbell(&self) -> &Doorbell {
            &self.doorbell
        }

        fn has_pending(&self) -> bool {
            false
        }

        fn park(&mut self, timeout_ns: u64) -> Result<(), ParkError> {
            self.park_timeouts_ns.push(timeout_ns);
            Ok(())
        }
    }

    fn scripted(busy_polls: u64, total_polls: u64, deadline_ns: Option<u64>) -> ScriptedTask {
        ScriptedTask {
            doorbell: Doorbell::new().expect("eventfd"),
            busy_polls,
            total_polls,
            deadline_ns,
            seen_now_ns: Vec::new(),
            park_timeouts_ns: Vec::new(),
        }
    }

    #[test]
    fn the_loop_reads_the_clock_once_per_iteration_and_hands_that_value_to_poll() {
        let mut task = scripted(3, 10, None);
        let mut clock = SteppingClock {
            now_ns: 0,
            step_ns: 7,
            reads: 0,
        };
        let stats = run_loop(
            &mut task,
            &mut poller(0, 1_000),
            &mut clock,
            &StopSignal::new(Vec::new()),
        )
        .expect("loop");
        assert_eq!(clock.reads, 10);
        assert_eq!(stats.iterations, 10);
        assert_eq!(stats.busy_iterations, 3);
        let expected: Vec<u64> = (1..=10).map(|i| i * 7).collect();
        assert_eq!(task.seen_now_ns, expected);
    }

    #[test]
    fn the_loop_spins_then_parks_until_the_next_deadline() {
        // 1 µs per iteration, busy for 5, then idle with a timer at 100 µs; spin 20 µs.
        let mut task = scripted(5, 40, Some(100 * US));
        let mut clock = SteppingClock {
            now_ns: 0,
            step_ns: US,
            reads: 0,
        };
        let stats = run_loop(
            &mut task,
            &mut poller(20, 1_000),
            &mut clock,
            &StopSignal::new(Vec::new()),
        )
        .expect("loop");
        // Idle from t = 6 µs; the spin window closes at 26 µs: parks at 26..=39 µs.
        assert_eq!(stats.parks, 14);
        assert_eq!(task.park_timeouts_ns.first(), Some(&(74 * US)));
        assert_eq!(task.park_timeouts_ns.last(), Some(&(61 * US)));
    }

    #[test]
    fn a_requested_stop_ends_the_loop_before_the_next_poll() {
        let mut task = scripted(0, u64::MAX, None);
        let stop = StopSignal::new(Vec::new());
        stop.request();
        let stats = run_loop(
            &mut task,
            &mut poller(0, 1_000),
            &mut SteppingClock {
                now_ns: 0,
                step_ns: 1,
                reads: 0,
            },
            &stop,
        )
        .expect("loop");
        assert_eq!(stats.iterations, 0);
        assert!(task.seen_now_ns.is_empty());
    }
}
