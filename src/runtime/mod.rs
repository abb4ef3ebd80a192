//! The thread-per-core runtime (DESIGN.md §3): pinned shard threads, the doorbell that wakes a parked
//! shard, bounded SPSC mailboxes between shards, the timing wheel, and the adaptive poll loop.
//!
//! How the pieces fit, for one shard:
//!
//! ```text
//!  ShardSetup::new ──► one Doorbell per shard ──► mailbox(cap, doorbell_of_receiver)
//!        │
//!  ShardSetup::spawn ──► thread aurora-shard-N, pinned ──► body builds its ShardTask on its core
//!                                                          └► run_loop(task, AdaptivePoller, clock)
//!  run_loop: now_ns = clock.now_ns() ─► task.poll(now_ns) ─► poller.decide ─► spin | task.park
//! ```

mod clock;
mod doorbell;
mod mailbox;
mod poll;
mod shard;
mod timer_wheel;
mod topology;

pub use clock::{thread_cpu_time_ns, Clock, MonotonicClock};
pub use doorbell::{Doorbell, DoorbellError, ParkGuard, ParkOutcome};
pub use mailbox::{
    mailbox, Full, MailboxError, MailboxReceiver, MailboxSender, MAILBOX_CAPACITY_MAX,
};
pub use poll::{
    run_loop, AdaptivePoller, Decision, LoopStats, ParkError, PollerError, Progress, ShardTask,
};
pub use shard::{
    BoxError, ShardContext, ShardError, ShardFailures, ShardGroup, ShardSetup, SpawnError,
    StopSignal,
};
pub use timer_wheel::{Expired, TimerId, TimerWheel, TimerWheelError, TIMER_WHEEL_LIMIT};
pub use topology::{
    format_cpulist, parse_cpulist, CpulistError, Device, NumaNode, PlacementError, Topology,
    TopologyError, CPU_LIMIT,
};
