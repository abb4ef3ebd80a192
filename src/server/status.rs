//! What the node loop shows the admin thread: a status snapshot refreshed every few milliseconds
//! (cold path: one uncontended lock per refresh, never on a request's path) and, through the
//! metrics exchange, the latency histograms.

use std::sync::Mutex;

use super::clients::ClientStats;
use super::protocol::NodeStatus;
use super::Counters;
use crate::consensus::Stats as ConsensusStats;
use crate::storage::WalStats;

/// One peer as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub id: u64,
    /// The transport has an authenticated connection.
    pub connected: bool,
    /// Leader only: the highest index known replicated there.
    pub matched: Option<u64>,
    /// Leader only: entries the peer is behind the leader's log.
    pub lag: Option<u64>,
}

/// Everything `/status` and the counter part of `/metrics` report.
#[derive(Debug, Clone)]
pub struct StatusSnapshot {
    pub node: NodeStatus,
    /// The peer fabric (`tcp_uring`, `dpdk`, `rdma`).
    pub transport: &'static str,
    /// A memory-mode node that restarted without its log and does not vote yet.
    pub recovering: bool,
    pub peers: Vec<PeerStatus>,
    pub clients_open: usize,
    pub client_stats: ClientStats,
    pub counters: Counters,
    pub pending_writes: usize,
    pub pending_reads: usize,
    pub watches: usize,
    pub wal: WalStats,
    pub consensus: ConsensusStats,
}

/// Shared between the node loop (writer) and the admin thread (reader).
#[derive(Debug, Default)]
pub struct Shared {
    status: Mutex<Option<StatusSnapshot>>,
}

impl Shared {
    pub fn set_status(&self, snapshot: StatusSnapshot) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
    }

    /// The latest snapshot; `None` before the loop published one.
    pub fn status(&self) -> Option<StatusSnapshot> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
