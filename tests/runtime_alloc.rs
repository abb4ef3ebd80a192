//! The runtime's hot path allocates nothing in steady state: timing wheel, mailboxes, doorbell and
//! the poll loop itself, proven with a global allocator that counts this thread's allocations.

use std::sync::Arc;

use aurora::runtime::{
    mailbox, run_loop, AdaptivePoller, Clock, Doorbell, Expired, MailboxReceiver, MailboxSender,
    MonotonicClock, Progress, ShardTask, StopSignal, TimerId, TimerWheel,
};

mod counting_alloc;
use counting_alloc::allocations_in;

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: without this, a broken counter would make every test below pass.
    let allocations = allocations_in(|| {
        std::hint::black_box(Vec::<u64>::with_capacity(16));
    });
    assert_eq!(allocations, 1);
}

#[test]
fn timer_wheel_schedule_cancel_expire_allocate_nothing() {
    const CAPACITY: usize = 1_024;
    let mut wheel = TimerWheel::new(1_000, 64, CAPACITY, 0).expect("wheel");
    let mut out: Vec<Expired> = Vec::with_capacity(CAPACITY);
    let mut ids: Vec<TimerId> = Vec::with_capacity(CAPACITY);
    let allocations = allocations_in(|| {
        let mut now_ns = 0u64;
        for round in 0..2_000u64 {
            // Fill up to capacity with deadlines spread over several rotations.
            while wheel.len() < CAPACITY {
                let deadline_ns = now_ns + (round * 7_919 + wheel.len() as u64 * 104_729) % 300_000;
                ids.push(wheel.schedule(deadline_ns, round).expect("room"));
            }
            assert!(wheel.schedule(now_ns, 0).is_err(), "full wheel must refuse");
            // Cancel every third (some already fired: stale cancels are no-ops).
            for id in ids.iter().step_by(3) {
                wheel.cancel(*id);
            }
            ids.clear();
            now_ns += 50_000;
            out.clear();
            wheel.expire(now_ns, &mut out);
            std::hint::black_box(wheel.next_deadline_ns());
        }
    });
    assert_eq!(allocations, 0, "the timing wheel allocated in steady state");
}

#[test]
fn mailbox_send_drain_and_doorbell_allocate_nothing() {
    let bell = Arc::new(Doorbell::new().expect("eventfd"));
    let (mut tx, mut rx) = mailbox::<[u64; 4]>(256, Arc::clone(&bell)).expect("mailbox");
    let allocations = allocations_in(|| {
        for round in 0..5_000u64 {
            while tx.try_send([round; 4]).is_ok() {}
            let mut sum = 0;
            rx.drain(usize::MAX, |item| sum += item[0]);
            std::hint::black_box(sum);
            // The wake-up path: parked flag, a ring, a drain.
            {
                let _parked = bell.begin_park();
                tx.try_send([round; 4]).expect("room");
            }
            bell.drain();
            rx.try_recv().expect("the item sent while parked");
        }
    });
    assert_eq!(
        allocations, 0,
        "mailbox or doorbell allocated in steady state"
    );
}

/// A shard that talks to itself through a mailbox and a timer, then stops.
struct EchoTask {
    doorbell: Arc<Doorbell>,
    tx: MailboxSender<u64>,
    rx: MailboxReceiver<u64>,
    timers: TimerWheel,
    expired: Vec<Expired>,
    polls_left: u64,
}

impl ShardTask for EchoTask {
    fn poll(&mut self, now_ns: u64) -> Progress {
        if self.polls_left == 0 {
            return Progress::Stop;
        }
        self.polls_left -= 1;
        self.expired.clear();
        let fired = self.timers.expire(now_ns, &mut self.expired);
        for expired in &self.expired {
            // A fired timer sends a message; the message re-arms the timer below.
            self.tx.try_send(expired.token).expect("room");
        }
        let tx_timers = &mut self.timers;
        let received = self.rx.drain(16, |token| {
            tx_timers
                .schedule(now_ns + 20_000, token + 1)
                .expect("room");
        });
        if fired + received > 0 {
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
        !self.rx.is_empty()
    }
}

#[test]
fn the_poll_loop_with_timers_mailboxes_and_parking_allocates_nothing() {
    let doorbell = Arc::new(Doorbell::new().expect("eventfd"));
    let (tx, rx) = mailbox::<u64>(64, Arc::clone(&doorbell)).expect("mailbox");
    let mut clock = MonotonicClock;
    let mut timers = TimerWheel::new(1_000, 256, 64, clock.now_ns()).expect("wheel");
    timers.schedule(clock.now_ns(), 0).expect("room");
    let mut task = EchoTask {
        doorbell,
        tx,
        rx,
        timers,
        expired: Vec::with_capacity(64),
        polls_left: 20_000,
    };
    // Spin 5 µs, then park until the 20 µs timer: both spinning and parking are exercised.
    let mut poller = AdaptivePoller::new(5, 1_000).expect("poller");
    let stop = StopSignal::new(Vec::new());
    let mut stats = None;
    let allocations = allocations_in(|| {
        stats = Some(run_loop(&mut task, &mut poller, &mut clock, &stop).expect("loop"));
    });
    let stats = stats.expect("loop ran");
    assert!(stats.parks > 0 && stats.busy_iterations > 0, "{stats:?}");
    assert_eq!(
        allocations, 0,
        "the poll loop allocated in steady state: {stats:?}"
    );
}
