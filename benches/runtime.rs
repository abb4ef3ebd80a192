//! Runtime benchmarks, each printed next to the baseline it is compared with, measured in the same
//! run (`cargo bench --bench runtime`, or `hack/bench-runtime.sh`):
//!
//! 1. idle CPU of three shard loops: spin-forever (baseline) vs adaptive polling;
//! 2. mailbox ping-pong round trip between two shards: std `sync_channel` (baseline) vs spin-forever,
//!    adaptive and always-park loops;
//! 3. mailbox throughput: std `sync_channel` and a bare `ArrayQueue` (baselines) vs the mailbox;
//! 4. timing wheel schedule/expire and schedule/cancel vs a `BTreeMap` timer queue (baseline).
//!
//! Threads are not pinned (the machine is shared); a full or empty queue makes the waiting side
//! yield (baseline) or park (mailbox consumer), since busy-waiting on an oversubscribed machine
//! measures the scheduler. Numbers are noisy on a loaded machine; ratios are what to read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora::runtime::{
    mailbox, run_loop, thread_cpu_time_ns, AdaptivePoller, BoxError, Clock, Decision, Doorbell,
    Expired, MailboxReceiver, MailboxSender, MonotonicClock, Progress, ShardContext, ShardSetup,
    ShardTask, TimerWheel,
};

fn main() {
    println!(
        "aurora runtime benchmarks ({} CPUs online, unpinned)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    idle_cpu();
    ping_pong();
    mailbox_throughput();
    timer_wheel();
}

// ---------------------------------------------------------------------------------------------
// 1. Idle CPU

const IDLE_SHARDS: usize = 3;
const IDLE_WALL: Duration = Duration::from_secs(1);
const HEARTBEAT_NS: u64 = 10_000_000;

/// Does nothing but a 10 ms heartbeat timer, like an idle consensus shard.
struct IdleShard {
    doorbell: Arc<Doorbell>,
    timers: TimerWheel,
    expired: Vec<Expired>,
}

impl ShardTask for IdleShard {
    fn poll(&mut self, now_ns: u64) -> Progress {
        self.expired.clear();
        if self.timers.expire(now_ns, &mut self.expired) > 0 {
            self.timers
                .schedule(now_ns + HEARTBEAT_NS, 0)
                .expect("one timer fits");
            return Progress::Busy;
        }
        Progress::Idle {
            next_deadline_ns: self.timers.next_deadline_ns(),
        }
    }

    fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    fn has_pending(&self) -> bool {
        false
    }
}

fn idle_shard(ctx: ShardContext, spin_us: u64) -> Result<(u64, u64, u64), BoxError> {
    let mut clock = MonotonicClock;
    let start_ns = clock.now_ns();
    let start_cpu_ns = thread_cpu_time_ns();
    let mut timers = TimerWheel::new(1_000_000, 64, 4, start_ns)?;
    timers.schedule(start_ns + HEARTBEAT_NS, 0)?;
    let mut task = IdleShard {
        doorbell: Arc::clone(&ctx.doorbell),
        timers,
        expired: Vec::with_capacity(4),
    };
    let mut poller = AdaptivePoller::new(spin_us, 1_000)?;
    let stats = run_loop(&mut task, &mut poller, &mut clock, &ctx.stop)?;
    Ok((
        thread_cpu_time_ns() - start_cpu_ns,
        clock.now_ns() - start_ns,
        stats.parks,
    ))
}

fn idle_cpu() {
    println!("1. idle CPU: {IDLE_SHARDS} shard loops with a 10 ms heartbeat, {IDLE_WALL:?} each");
    for (label, spin_us) in [
        ("spin forever (baseline)", AdaptivePoller::SPIN_FOREVER),
        ("adaptive, spin 50 µs, park ≤ 1 ms", 50),
    ] {
        let setup = ShardSetup::new(IDLE_SHARDS, None).expect("setup");
        let group = setup
            .spawn(vec![spin_us; IDLE_SHARDS], idle_shard)
            .expect("spawn");
        std::thread::sleep(IDLE_WALL);
        group.request_stop();
        let results = group.join().expect("shards");
        let per_shard: Vec<String> = results
            .iter()
            .map(|&(cpu_ns, wall_ns, _)| format!("{:5.1}%", 100.0 * cpu_ns as f64 / wall_ns as f64))
            .collect();
        let parks: u64 = results.iter().map(|r| r.2).sum();
        println!(
            "   {label:<36} CPU per shard: {}   parks: {parks}",
            per_shard.join(" ")
        );
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// 2. Ping-pong

const ROUND_TRIPS: usize = 20_000;
const WARMUP_ROUND_TRIPS: usize = 1_000;

struct PingPongInit {
    rx: MailboxReceiver<u64>,
    tx: MailboxSender<u64>,
}

/// Shard 0 sends a timestamp, shard 1 echoes it, shard 0 records the round trip.
struct PingPong {
    index: usize,
    doorbell: Arc<Doorbell>,
    mail: PingPongInit,
    in_flight: bool,
    samples_ns: Vec<u64>,
}

impl ShardTask for PingPong {
    fn poll(&mut self, now_ns: u64) -> Progress {
        let mut worked = false;
        if self.index == 0 && !self.in_flight {
            if self.samples_ns.len() == WARMUP_ROUND_TRIPS + ROUND_TRIPS {
                return Progress::Stop;
            }
            self.mail
                .tx
                .try_send(now_ns)
                .expect("one message in flight");
            self.in_flight = true;
            worked = true;
        }
        while let Some(sent_ns) = self.mail.rx.try_recv() {
            worked = true;
            if self.index == 0 {
                self.samples_ns.push(now_ns - sent_ns);
                self.in_flight = false;
            } else {
                self.mail
                    .tx
                    .try_send(sent_ns)
                    .expect("one message in flight");
            }
        }
        if worked {
            Progress::Busy
        } else {
            Progress::Idle {
                next_deadline_ns: None,
            }
        }
    }

    fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    fn has_pending(&self) -> bool {
        !self.mail.rx.is_empty()
    }
}

fn ping_pong_shard(
    ctx: ShardContext,
    (mail, spin_us): (PingPongInit, u64),
) -> Result<Vec<u64>, BoxError> {
    let mut task = PingPong {
        index: ctx.index,
        doorbell: Arc::clone(&ctx.doorbell),
        mail,
        in_flight: false,
        samples_ns: Vec::with_capacity(WARMUP_ROUND_TRIPS + ROUND_TRIPS),
    };
    let mut poller = AdaptivePoller::new(spin_us, 1_000)?;
    run_loop(&mut task, &mut poller, &mut MonotonicClock, &ctx.stop)?;
    // Shard 0 is done: release shard 1 from its loop.
    ctx.stop.request();
    Ok(task.samples_ns)
}

fn percentiles(mut samples_ns: Vec<u64>) -> String {
    samples_ns.sort_unstable();
    let at = |q: f64| samples_ns[((samples_ns.len() - 1) as f64 * q) as usize] as f64 / 1_000.0;
    format!(
        "p50 {:7.2} µs   p99 {:7.2} µs   p99.9 {:8.2} µs",
        at(0.5),
        at(0.99),
        at(0.999)
    )
}

fn std_channel_ping_pong() -> Vec<u64> {
    let (to_echo, echo_rx) = std::sync::mpsc::sync_channel::<Instant>(1);
    let (to_origin, origin_rx) = std::sync::mpsc::sync_channel::<Instant>(1);
    let echo = std::thread::spawn(move || {
        while let Ok(sent) = echo_rx.recv() {
            if to_origin.send(sent).is_err() {
                break;
            }
        }
    });
    let mut samples_ns = Vec::with_capacity(WARMUP_ROUND_TRIPS + ROUND_TRIPS);
    for _ in 0..WARMUP_ROUND_TRIPS + ROUND_TRIPS {
        to_echo.send(Instant::now()).expect("echo thread alive");
        let sent = origin_rx.recv().expect("echo thread alive");
        samples_ns.push(u64::try_from(sent.elapsed().as_nanos()).expect("fits"));
    }
    drop(to_echo);
    echo.join().expect("echo thread");
    samples_ns
}

fn ping_pong() {
    println!("2. mailbox ping-pong between two threads, {ROUND_TRIPS} round trips");
    let baseline = std_channel_ping_pong();
    println!(
        "   {:<36} {}",
        "std sync_channel, blocking (baseline)",
        percentiles(baseline[WARMUP_ROUND_TRIPS..].to_vec())
    );
    for (label, spin_us) in [
        ("shards, spin forever", AdaptivePoller::SPIN_FOREVER),
        ("shards, adaptive (spin 50 µs)", 50),
        ("shards, adaptive (spin 5 µs)", 5),
        ("shards, always park (spin 0)", 0),
    ] {
        let setup = ShardSetup::new(2, None).expect("setup");
        let (a_tx, b_rx) = mailbox(16, Arc::clone(setup.doorbell(1))).expect("mailbox");
        let (b_tx, a_rx) = mailbox(16, Arc::clone(setup.doorbell(0))).expect("mailbox");
        let inits = vec![
            (PingPongInit { rx: a_rx, tx: a_tx }, spin_us),
            (PingPongInit { rx: b_rx, tx: b_tx }, spin_us),
        ];
        let group = setup.spawn(inits, ping_pong_shard).expect("spawn");
        let mut results = group.join().expect("shards");
        let samples = results.swap_remove(0);
        println!(
            "   {label:<36} {}",
            percentiles(samples[WARMUP_ROUND_TRIPS..].to_vec())
        );
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// 3. Throughput

const ITEMS: u64 = 5_000_000;
const CAPACITY: usize = 1_024;

fn report_throughput(label: &str, elapsed: Duration) {
    println!(
        "   {label:<36} {:6.1} M items/s",
        ITEMS as f64 / elapsed.as_secs_f64() / 1e6
    );
}

fn mailbox_throughput() {
    println!("3. one producer, one consumer, {ITEMS} u64 items, capacity {CAPACITY}");

    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAPACITY);
    let start = Instant::now();
    let producer = std::thread::spawn(move || (0..ITEMS).for_each(|i| tx.send(i).expect("rx")));
    let mut sum = 0u64;
    for _ in 0..ITEMS {
        sum = sum.wrapping_add(rx.recv().expect("tx"));
    }
    producer.join().expect("producer");
    report_throughput("std sync_channel (baseline)", start.elapsed());

    let queue = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAPACITY));
    let start = Instant::now();
    let producer = {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            for i in 0..ITEMS {
                let mut item = i;
                while let Err(back) = queue.push(item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        })
    };
    let mut received = 0;
    while received < ITEMS {
        match queue.pop() {
            Some(item) => {
                sum = sum.wrapping_add(item);
                received += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    producer.join().expect("producer");
    report_throughput("bare ArrayQueue (baseline)", start.elapsed());

    for (label, adaptive) in [
        ("mailbox, consumer yields", false),
        ("mailbox, consumer adaptive (50 µs)", true),
    ] {
        sum = sum.wrapping_add(mailbox_run(label, adaptive));
    }
    std::hint::black_box(sum);
    println!();
}

/// Moves ITEMS through a mailbox; the consumer waits on an empty mailbox by yielding (like the
/// ArrayQueue baseline, isolating the cost of `notify`) or like a shard: spin 50 µs, then park on
/// the doorbell. Returns a checksum.
fn mailbox_run(label: &str, adaptive: bool) -> u64 {
    let bell = Arc::new(Doorbell::new().expect("eventfd"));
    let (mut tx, mut rx) = mailbox::<u64>(CAPACITY, Arc::clone(&bell)).expect("mailbox");
    let mut poller = AdaptivePoller::new(50, 1_000).expect("poller");
    let mut clock = MonotonicClock;
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        for i in 0..ITEMS {
            let mut item = i;
            while let Err(full) = tx.try_send(item) {
                item = full.item;
                std::thread::yield_now();
            }
        }
    });
    let mut received = 0;
    let mut sum = 0u64;
    while received < ITEMS {
        let taken = rx.drain(64, |item| sum = sum.wrapping_add(item));
        received += taken as u64;
        if !adaptive {
            if taken == 0 {
                std::thread::yield_now();
            }
            continue;
        }
        match poller.decide(clock.now_ns(), taken > 0, None) {
            Decision::Poll => std::hint::spin_loop(),
            Decision::Park { timeout_ns } => {
                bell.park(timeout_ns, || !rx.is_empty()).expect("park");
            }
        }
    }
    producer.join().expect("producer");
    report_throughput(label, start.elapsed());
    sum
}

// ---------------------------------------------------------------------------------------------
// 4. Timing wheel

const TIMERS: usize = 100_000;

/// xorshift64*: deterministic deadlines without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn timer_wheel() {
    println!("4. {TIMERS} timers, deadlines uniform in 0..1 s, expired in 1 ms steps");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let deadlines_ns: Vec<u64> = (0..TIMERS)
        .map(|_| next_random(&mut seed) % 1_000_000_000)
        .collect();

    // Baseline: an ordered map keyed by (deadline, sequence).
    let start = Instant::now();
    let mut map = BTreeMap::new();
    for (seq, &deadline_ns) in deadlines_ns.iter().enumerate() {
        map.insert((deadline_ns, seq), seq as u64);
    }
    let mut fired = 0;
    for now_ns in (0..=1_000_000_000u64).step_by(1_000_000) {
        while let Some(entry) = map.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            std::hint::black_box(entry.remove());
            fired += 1;
        }
    }
    assert_eq!(fired, TIMERS);
    let baseline = start.elapsed();

    let mut wheel = TimerWheel::new(1_000_000, 1_024, TIMERS, 0).expect("wheel");
    let mut out = Vec::with_capacity(TIMERS);
    let start = Instant::now();
    for (seq, &deadline_ns) in deadlines_ns.iter().enumerate() {
        wheel.schedule(deadline_ns, seq as u64).expect("room");
    }
    let mut fired = 0;
    for now_ns in (0..=1_000_000_000u64).step_by(1_000_000) {
        out.clear();
        fired += wheel.expire(now_ns, &mut out);
    }
    assert_eq!(fired, TIMERS);
    let wheel_time = start.elapsed();
    let per_timer = |d: Duration| d.as_nanos() as f64 / TIMERS as f64;
    println!(
        "   schedule + expire: BTreeMap (baseline) {:6.1} ns/timer   wheel {:6.1} ns/timer",
        per_timer(baseline),
        per_timer(wheel_time)
    );

    // Schedule and cancel before expiry (the common fate of election and retransmit timers),
    // among 10 000 other armed timers.
    let background = &deadlines_ns[..10_000];
    let mut map: BTreeMap<(u64, usize), u64> = background
        .iter()
        .enumerate()
        .map(|(seq, &deadline_ns)| ((deadline_ns, seq), seq as u64))
        .collect();
    let start = Instant::now();
    for (seq, &deadline_ns) in deadlines_ns.iter().enumerate() {
        let key = (deadline_ns, TIMERS + seq);
        map.insert(key, seq as u64);
        std::hint::black_box(map.remove(&key));
    }
    let baseline = start.elapsed();
    let mut wheel = TimerWheel::new(1_000_000, 1_024, TIMERS, 0).expect("wheel");
    for (seq, &deadline_ns) in background.iter().enumerate() {
        wheel.schedule(deadline_ns, seq as u64).expect("room");
    }
    let start = Instant::now();
    for (seq, &deadline_ns) in deadlines_ns.iter().enumerate() {
        let id = wheel.schedule(deadline_ns, seq as u64).expect("room");
        std::hint::black_box(wheel.cancel(id));
    }
    let wheel_time = start.elapsed();
    println!(
        "   schedule + cancel: BTreeMap (baseline) {:6.1} ns/timer   wheel {:6.1} ns/timer",
        per_timer(baseline),
        per_timer(wheel_time)
    );
}
