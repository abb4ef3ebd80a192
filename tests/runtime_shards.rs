//! Shard threads, the poll loop and mailboxes together: pinning, failure reporting, shutdown, and
//! three local nodes on a 2-core machine that exchange messages without starving each other.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora::runtime::{
    mailbox, run_loop, thread_cpu_time_ns, AdaptivePoller, BoxError, Doorbell, Expired,
    MailboxReceiver, MailboxSender, MonotonicClock, ParkError, ParkOutcome, Progress, ShardContext,
    ShardError, ShardSetup, ShardTask, SpawnError, TimerWheel,
};

/// A guard against hangs, not a performance bound: waits that should take milliseconds.
const HANG_GUARD: Duration = Duration::from_secs(60);
/// Long enough that a shard still asleep at the end of a test was not woken by its doorbell.
const LONG_PARK_US: u64 = AdaptivePoller::MAX_PARK_US_LIMIT;

fn allowed_cores() -> Vec<usize> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .expect("this process's CPU affinity is readable")
        .into_iter()
        .map(|core| core.id)
        .collect();
    cores.sort_unstable();
    cores
}

fn affinity_of_current_thread() -> BTreeSet<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set; the pointer is to a live local.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(
        rc,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    (0..1024)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[test]
fn pinned_shards_run_on_their_core_in_threads_named_after_them() {
    let cores: Vec<usize> = allowed_cores().into_iter().take(2).collect();
    let setup = ShardSetup::new(cores.len(), Some(&cores)).expect("setup");
    let group = setup
        .spawn(vec![(); cores.len()], |ctx: ShardContext, ()| {
            let name = std::thread::current().name().map(str::to_owned);
            // SAFETY: sched_getcpu has no arguments.
            let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).expect("sched_getcpu");
            Ok::<_, BoxError>((ctx.index, ctx.core, name, cpu, affinity_of_current_thread()))
        })
        .expect("spawn");
    let results = group.join().expect("no shard fails");
    for (i, (index, core, name, cpu, affinity)) in results.into_iter().enumerate() {
        assert_eq!(index, i);
        assert_eq!(core, Some(cores[i]));
        assert_eq!(name.as_deref(), Some(format!("aurora-shard-{i}").as_str()));
        assert_eq!(
            affinity,
            BTreeSet::from([cores[i]]),
            "shard {i} may run elsewhere"
        );
        assert_eq!(cpu, cores[i], "shard {i}'s body ran off its core");
    }
}

#[test]
fn a_core_that_cannot_be_pinned_fails_spawn_before_any_body_runs() {
    let bodies_run = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&bodies_run);
    let first = allowed_cores()[0];
    let setup = ShardSetup::new(2, Some(&[first, 1000])).expect("setup");
    let error = setup
        .spawn(vec![(); 2], move |_, ()| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, BoxError>(())
        })
        .expect_err("core 1000 does not exist here");
    assert!(
        matches!(
            error,
            SpawnError::Pin {
                shard: 1,
                core: 1000
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("core 1000"), "{error}");
    assert_eq!(
        bodies_run.load(Ordering::SeqCst),
        0,
        "a body ran despite the failed start-up"
    );
}

#[test]
fn bad_shard_setups_are_rejected_with_the_numbers() {
    assert!(matches!(
        ShardSetup::new(0, None),
        Err(SpawnError::NoShards)
    ));
    assert!(matches!(
        ShardSetup::new(2, Some(&[0])),
        Err(SpawnError::CoreCount { count: 2, cores: 1 })
    ));
    assert!(matches!(
        ShardSetup::new(2, Some(&[1, 1])),
        Err(SpawnError::DuplicateCore { core: 1 })
    ));
    assert!(matches!(
        ShardSetup::new(1, Some(&[5000])),
        Err(SpawnError::CoreOutOfRange { core: 5000, .. })
    ));
    let setup = ShardSetup::new(2, None).expect("setup");
    let error = setup
        .spawn(vec![()], |_, ()| Ok::<_, BoxError>(()))
        .expect_err("one init for two shards");
    assert!(
        matches!(error, SpawnError::InitCount { count: 2, inits: 1 }),
        "{error}"
    );
}

/// A shard with nothing to do: idles in the loop and remembers how its last park ended.
struct IdleTask {
    doorbell: Arc<Doorbell>,
    last_park: Option<ParkOutcome>,
}

impl ShardTask for IdleTask {
    fn poll(&mut self, _now_ns: u64) -> Progress {
        Progress::Idle {
            next_deadline_ns: None,
        }
    }

    fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    fn has_pending(&self) -> bool {
        false
    }

    fn park(&mut self, timeout_ns: u64) -> Result<(), ParkError> {
        self.last_park = Some(self.doorbell.park(timeout_ns, || false)?);
        Ok(())
    }
}

/// Runs an [`IdleTask`] until the group stops; returns how its last park ended.
fn idle_until_stopped(ctx: &ShardContext) -> Result<Option<ParkOutcome>, BoxError> {
    let mut task = IdleTask {
        doorbell: Arc::clone(&ctx.doorbell),
        last_park: None,
    };
    let mut poller = AdaptivePoller::new(0, LONG_PARK_US)?;
    run_loop(&mut task, &mut poller, &mut MonotonicClock, &ctx.stop)?;
    Ok(task.last_park)
}

#[test]
fn a_stop_request_wakes_parked_shards_through_their_doorbells() {
    let setup = ShardSetup::new(2, None).expect("setup");
    let group = setup
        .spawn(vec![(); 2], |ctx, ()| idle_until_stopped(&ctx))
        .expect("spawn");
    let give_up = Instant::now() + HANG_GUARD;
    while !(group.doorbell(0).is_parked() && group.doorbell(1).is_parked()) {
        assert!(Instant::now() < give_up, "shards never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    group.request_stop();
    let outcomes = group.join().expect("no shard fails");
    // With a 10 s park, only the doorbell can have ended the sleep that preceded the stop.
    assert_eq!(outcomes, [Some(ParkOutcome::Rung), Some(ParkOutcome::Rung)]);
}

#[test]
fn a_failing_shard_is_reported_and_its_siblings_are_stopped() {
    let setup = ShardSetup::new(3, None).expect("setup");
    let group = setup
        .spawn(vec![(); 3], |ctx, ()| {
            if ctx.index == 1 {
                return Err(BoxError::from("WAL device full on shard 1"));
            }
            idle_until_stopped(&ctx)
        })
        .expect("spawn");
    let failures = group.join().expect_err("shard 1 failed").failures;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        matches!(&failures[0], ShardError::Failed { shard: 1, source } if source.to_string().contains("WAL device full")),
        "{failures:?}"
    );
}

#[test]
fn a_panicking_shard_is_reported_not_swallowed() {
    let setup = ShardSetup::new(2, None).expect("setup");
    let group = setup
        .spawn(vec![(); 2], |ctx, ()| {
            if ctx.index == 0 {
                panic!("invariant broken on shard 0");
            }
            idle_until_stopped(&ctx)
        })
        .expect("spawn");
    let error = group.join().expect_err("shard 0 panicked");
    assert_eq!(error.failures.len(), 1, "{error}");
    assert!(
        matches!(&error.failures[0], ShardError::Panicked { shard: 0, message } if message == "invariant broken on shard 0"),
        "{error}"
    );
    assert!(error.to_string().contains("shard 0 panicked"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Three local nodes on this 2-core machine.

const NODES: usize = 3;
const LAPS: u32 = 1_000;
const SPIN_US: u64 = 50;
const MAX_PARK_US: u64 = 5_000;
const HEARTBEAT_NS: u64 = 20_000_000;
const IDLE_WINDOW: Duration = Duration::from_millis(300);

enum Control {
    OpenIdleWindow,
    CloseIdleWindow,
}

enum ToMain {
    LapsDone { laps: u32 },
    Idle(IdleReport),
}

#[derive(Debug)]
struct IdleReport {
    node: usize,
    cpu_ns: u64,
    wall_ns: u64,
    parks: u64,
    heartbeats: u64,
}

/// One node's mailbox ends: a ring 0 → 1 → 2 → 0 carrying a lap counter, plus control from and
/// reports to the test's main thread.
struct NodeInit {
    from_prev: MailboxReceiver<u32>,
    to_next: MailboxSender<u32>,
    from_main: MailboxReceiver<Control>,
    to_main: MailboxSender<ToMain>,
}

struct Node {
    index: usize,
    doorbell: Arc<Doorbell>,
    mail: NodeInit,
    timers: TimerWheel,
    expired: Vec<Expired>,
    started: bool,
    parks: u64,
    heartbeats: u64,
    /// (cpu_ns, now_ns, parks, heartbeats) when the idle window opened.
    window_start: Option<(u64, u64, u64, u64)>,
}

impl ShardTask for Node {
    fn poll(&mut self, now_ns: u64) -> Progress {
        let mut worked = false;
        self.expired.clear();
        for _ in 0..self.timers.expire(now_ns, &mut self.expired) {
            self.heartbeats += 1;
            self.timers
                .schedule(now_ns + HEARTBEAT_NS, 0)
                .expect("one heartbeat timer fits");
            worked = true;
        }
        while let Some(control) = self.mail.from_main.try_recv() {
            worked = true;
            match control {
                Control::OpenIdleWindow => {
                    self.window_start =
                        Some((thread_cpu_time_ns(), now_ns, self.parks, self.heartbeats));
                }
                Control::CloseIdleWindow => {
                    let (cpu_ns, wall_ns, parks, heartbeats) =
                        self.window_start.take().expect("window opened first");
                    let report = IdleReport {
                        node: self.index,
                        cpu_ns: thread_cpu_time_ns() - cpu_ns,
                        wall_ns: now_ns - wall_ns,
                        parks: self.parks - parks,
                        heartbeats: self.heartbeats - heartbeats,
                    };
                    self.mail
                        .to_main
                        .try_send(ToMain::Idle(report))
                        .expect("report mailbox has room");
                }
            }
        }
        if self.index == 0 && !self.started {
            self.started = true;
            self.mail.to_next.try_send(1).expect("the first token fits");
            worked = true;
        }
        let index = self.index;
        let to_next = &mut self.mail.to_next;
        let to_main = &mut self.mail.to_main;
        let handled = self.mail.from_prev.drain(32, |lap| {
            if index != 0 {
                to_next
                    .try_send(lap)
                    .expect("one token in flight never fills a mailbox");
            } else if lap < LAPS {
                to_next
                    .try_send(lap + 1)
                    .expect("one token in flight never fills a mailbox");
            } else {
                to_main
                    .try_send(ToMain::LapsDone { laps: lap })
                    .expect("report mailbox has room");
            }
        });
        worked |= handled > 0;
        if worked {
            Progress::Busy
        } else {
            Progress::Idle {
                next_deadline_ns: self.timers.next_deadline_ns(),
            }
        }
    }

    fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    fn has_pending(&self) -> bool {
        !self.mail.from_prev.is_empty() || !self.mail.from_main.is_empty()
    }

    fn park(&mut self, timeout_ns: u64) -> Result<(), ParkError> {
        self.parks += 1;
        self.doorbell.park(timeout_ns, || self.has_pending())?;
        Ok(())
    }
}

fn run_node(ctx: ShardContext, mail: NodeInit) -> Result<u64, BoxError> {
    let mut clock = MonotonicClock;
    let now_ns = aurora::runtime::Clock::now_ns(&mut clock);
    // Built on the shard's own thread: the wheel's slab is first touched here.
    let mut timers = TimerWheel::new(1_000_000, 256, 16, now_ns)?;
    timers.schedule(now_ns + HEARTBEAT_NS, 0)?;
    let mut node = Node {
        index: ctx.index,
        doorbell: Arc::clone(&ctx.doorbell),
        mail,
        timers,
        expired: Vec::with_capacity(16),
        started: false,
        parks: 0,
        heartbeats: 0,
        window_start: None,
    };
    let mut poller = AdaptivePoller::new(SPIN_US, MAX_PARK_US)?;
    let stats = run_loop(&mut node, &mut poller, &mut clock, &ctx.stop)?;
    Ok(stats.parks)
}

/// Waits (parked on `bell`) for the next message from one node; panics after [`HANG_GUARD`].
fn receive(rx: &mut MailboxReceiver<ToMain>, bell: &Doorbell) -> ToMain {
    let give_up = Instant::now() + HANG_GUARD;
    loop {
        if let Some(message) = rx.try_recv() {
            return message;
        }
        assert!(
            Instant::now() < give_up,
            "no message from a node within {HANG_GUARD:?}"
        );
        bell.park(100_000_000, || !rx.is_empty()).expect("park");
    }
}

#[test]
fn three_local_nodes_on_two_cores_exchange_messages_and_park_when_idle() {
    let setup = ShardSetup::new(NODES, None).expect("setup");
    let main_bell = Arc::new(Doorbell::new().expect("eventfd"));
    let mut ring: Vec<_> = (0..NODES)
        .map(|i| mailbox::<u32>(64, Arc::clone(setup.doorbell((i + 1) % NODES))).expect("mailbox"))
        .map(|(tx, rx)| (Some(tx), Some(rx)))
        .collect();
    let mut to_nodes = Vec::new();
    let mut from_nodes = Vec::new();
    let mut inits = Vec::new();
    for i in 0..NODES {
        let (control_tx, control_rx) =
            mailbox::<Control>(4, Arc::clone(setup.doorbell(i))).expect("mailbox");
        let (report_tx, report_rx) = mailbox::<ToMain>(4, Arc::clone(&main_bell)).expect("mailbox");
        to_nodes.push(control_tx);
        from_nodes.push(report_rx);
        inits.push(NodeInit {
            // Node i receives on the ring mailbox of its predecessor and sends on its own.
            from_prev: ring[(i + NODES - 1) % NODES].1.take().expect("taken once"),
            to_next: ring[i].0.take().expect("taken once"),
            from_main: control_rx,
            to_main: report_tx,
        });
    }
    let group = setup.spawn(inits, run_node).expect("spawn");

    // 1. The token goes round the three nodes LAPS times.
    match receive(&mut from_nodes[0], &main_bell) {
        ToMain::LapsDone { laps } => assert_eq!(laps, LAPS),
        ToMain::Idle(report) => panic!("unexpected idle report {report:?}"),
    }

    // 2. Then nothing happens for a while but heartbeats; every node measures itself.
    for tx in &mut to_nodes {
        assert!(tx.try_send(Control::OpenIdleWindow).is_ok());
    }
    std::thread::sleep(IDLE_WINDOW);
    for tx in &mut to_nodes {
        assert!(tx.try_send(Control::CloseIdleWindow).is_ok());
    }
    for (i, rx) in from_nodes.iter_mut().enumerate() {
        let report = match receive(rx, &main_bell) {
            ToMain::Idle(report) => report,
            ToMain::LapsDone { .. } => panic!("laps reported twice"),
        };
        assert_eq!(report.node, i);
        assert!(
            report.wall_ns >= 250_000_000,
            "window too short: {report:?}"
        );
        // A spinning loop burns all the CPU the scheduler gives it (2/3 of the wall time each for
        // three loops on an otherwise idle 2-core machine); an adaptive one sleeps through all but
        // its heartbeats (about 0.5% measured here). The bound is deliberately loose.
        assert!(
            report.cpu_ns * 10 < report.wall_ns,
            "node {i} used more than 10% CPU while idle: {report:?}"
        );
        assert!(
            report.parks >= 3,
            "node {i} did not park while idle: {report:?}"
        );
        assert!(
            report.heartbeats >= 2,
            "node {i}'s timers did not wake it from parking: {report:?}"
        );
    }

    group.request_stop();
    let parks = group.join().expect("no node fails");
    assert!(parks.iter().all(|&p| p > 0), "{parks:?}");
}
