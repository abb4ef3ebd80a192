//! The thread-per-core runtime (DESIGN.md §3): pinned shard threads, the doorbell that wakes a parked
//! shard, bounded SPSC mailboxes between shards, the timing wheel, and the adaptive poll loop.

mod doorbell;

pub use doorbell::{Doorbell, DoorbellError, ParkGuard, ParkOutcome};
