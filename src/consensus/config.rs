//! The consensus core's own settings, validated once at start-up so the core can assume them.

use thiserror::Error;

use super::membership::Membership;
use super::types::NodeId;

/// Everything the core needs to know about itself and its limits. Times are nanoseconds of the host's
/// monotonic clock, passed in through [`Node::tick`](super::Node::tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Membership used when neither the restored snapshot nor the restored log carries one.
    pub membership: Membership,
    /// Election timeouts are drawn uniformly from `[min, max)` with the injected random source.
    pub election_timeout_min_ns: u64,
    pub election_timeout_max_ns: u64,
    pub heartbeat_interval_ns: u64,
    /// Bound on how much faster one node's clock may run than another's over an election timeout.
    /// A lease lasts `election_timeout_min_ns - max_clock_drift_ns` from the send time of the
    /// heartbeat a lease quorum acknowledged.
    pub max_clock_drift_ns: u64,
    /// AppendEntries in flight per follower in the replicate state (the pipeline window).
    pub max_inflight_appends: usize,
    /// Most entries one AppendEntries carries.
    pub max_batch_entries: usize,
    /// Most payload bytes one AppendEntries carries when it carries more than one entry; a single
    /// entry larger than this travels alone.
    pub max_batch_bytes: usize,
    /// Largest payload of one entry; a larger proposal is refused.
    pub max_entry_bytes: usize,
    /// Proposals accepted but not yet committed; beyond this `propose` answers `Busy`.
    pub max_uncommitted_entries: usize,
    /// Entries held in memory; the host compacts after snapshots. A full log refuses proposals and
    /// drops appends (the leader retries), it never grows past this.
    pub max_log_entries: usize,
    /// Payload bytes the in-memory log holds before it refuses proposals and drops appends like a
    /// full log (one entry may cross it).
    pub max_log_bytes: usize,
    /// Linearizable reads waiting for confirmation or apply.
    pub max_pending_reads: usize,
    /// Messages buffered for the host between two [`Node::ready`](super::Node::ready) calls; overflow is
    /// dropped (and counted), which Raft tolerates like any network loss.
    pub max_outbox_messages: usize,
    /// Committed entries handed to the host per `Ready`.
    pub max_apply_batch: usize,
    /// A leader steps down when it has not heard from a replication quorum within an election timeout.
    pub check_quorum: bool,
    /// Candidates first ask whether they could win (PreVote) before bumping the term.
    pub pre_vote: bool,
}

impl NodeConfig {
    /// Settings for `id` in `membership` with defaults suited to a LAN/HPC fabric: elections in
    /// 150–300 ms, heartbeats every 30 ms, 10 ms drift bound, a window of 8 appends per follower.
    pub fn new(id: NodeId, membership: Membership) -> Self {
        Self {
            id,
            membership,
            election_timeout_min_ns: 150_000_000,
            election_timeout_max_ns: 300_000_000,
            heartbeat_interval_ns: 30_000_000,
            max_clock_drift_ns: 10_000_000,
            max_inflight_appends: 8,
            max_batch_entries: 1024,
            max_batch_bytes: 1 << 20,
            max_entry_bytes: 1 << 20,
            max_uncommitted_entries: 65_536,
            max_log_entries: 1 << 20,
            max_log_bytes: 1 << 30,
            max_pending_reads: 4096,
            max_outbox_messages: 4096,
            max_apply_batch: 4096,
            check_quorum: true,
            pre_vote: true,
        }
    }

    /// Checks every relation the core relies on.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        use NodeConfigError as E;
        if self.election_timeout_min_ns == 0
            || self.election_timeout_max_ns <= self.election_timeout_min_ns
        {
            return Err(E::ElectionTimeout {
                min_ns: self.election_timeout_min_ns,
                max_ns: self.election_timeout_max_ns,
            });
        }
        if self.heartbeat_interval_ns == 0
            || self.heartbeat_interval_ns >= self.election_timeout_min_ns
        {
            return Err(E::Heartbeat {
                heartbeat_ns: self.heartbeat_interval_ns,
                min_ns: self.election_timeout_min_ns,
            });
        }
        if self.max_clock_drift_ns >= self.election_timeout_min_ns {
            return Err(E::Drift {
                drift_ns: self.max_clock_drift_ns,
                min_ns: self.election_timeout_min_ns,
            });
        }
        let limits = [
            ("max_inflight_appends", self.max_inflight_appends),
            ("max_batch_entries", self.max_batch_entries),
            ("max_batch_bytes", self.max_batch_bytes),
            ("max_entry_bytes", self.max_entry_bytes),
            ("max_uncommitted_entries", self.max_uncommitted_entries),
            ("max_log_entries", self.max_log_entries),
            ("max_log_bytes", self.max_log_bytes),
            ("max_pending_reads", self.max_pending_reads),
            ("max_outbox_messages", self.max_outbox_messages),
            ("max_apply_batch", self.max_apply_batch),
        ];
        for (name, value) in limits {
            if value == 0 {
                return Err(E::ZeroLimit(name));
            }
        }
        if self.max_inflight_appends > MAX_INFLIGHT_APPENDS {
            return Err(E::Window(self.max_inflight_appends));
        }
        Ok(())
    }
}

/// Largest pipeline window per follower (the in-flight ring is a fixed array).
pub const MAX_INFLIGHT_APPENDS: usize = 64;

/// Why a [`NodeConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeConfigError {
    #[error("election timeout range must be non-empty and positive (min {min_ns} ns, max {max_ns} ns); set max > min > 0")]
    ElectionTimeout { min_ns: u64, max_ns: u64 },
    #[error("heartbeat interval {heartbeat_ns} ns must be positive and below the minimum election timeout {min_ns} ns")]
    Heartbeat { heartbeat_ns: u64, min_ns: u64 },
    #[error("max clock drift {drift_ns} ns must be below the minimum election timeout {min_ns} ns, or leases never hold")]
    Drift { drift_ns: u64, min_ns: u64 },
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    #[error("max_inflight_appends {0} exceeds the supported window of {MAX_INFLIGHT_APPENDS}")]
    Window(usize),
    #[error("node {0} is not a member of its own initial membership; add it as voter or learner")]
    NotMember(NodeId),
}
