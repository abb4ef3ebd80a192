//! A node: consensus + store + storage on one loop thread, peers over `tcp_uring`, clients on their
//! own port in the same wire format ([`protocol`], docs/PROTOCOL.md), admin HTTP on its own
//! thread ([`admin`]).
//!
//! ```text
//!  thread aurora-node-N   NodeLoop: tcp_uring peers + epoll clients + WAL io_uring, one wait
//!  thread aurora-admin-N  tiny_http: /metrics (HDR quantiles), /status (JSON), /health
//! ```
//!
//! Placement v1 of DESIGN.md §3 with one shard: the loop that runs consensus also terminates
//! clients, so a request reaches the log with no thread hop (on the 2-core machines this runs on,
//! every hop is a wake-up). Client shards forwarding through mailboxes are not built yet.
//!
//! One request — key, value and encoding — is one log entry of at most
//! [`ServerConfig::max_entry_bytes`] (from `limits.max_key_bytes` + `limits.max_value_bytes`); a
//! larger one gets `TooLarge` naming both numbers. Peer frames are cut to transport slabs
//! ([`ServerConfig::peer_slab_bytes`]): AppendEntries batches fit one slab, and a frame carrying a
//! larger entry travels in pieces ([`fragments`]). Every `storage.snapshot_every_entries` applied entries a node
//! snapshots its store and compacts its log and WAL ([`snapshotter`]).

pub mod admin;
pub mod clients;
mod fragments;
mod node;
mod peer_transport;
pub mod protocol;
#[cfg(feature = "rdma")]
mod ring_path;
mod snapshot_transfer;
mod snapshotter;
pub mod status;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::config::{Config, Durability, Role as MemberRole};
use crate::consensus::{
    Entry, HardState, Membership, Node, NodeConfig, Restored, SnapshotMeta, VoterGroup,
    MAX_INFLIGHT_APPENDS,
};
use crate::metrics::{CoreMetrics, Registry, ShardMetrics};
use crate::runtime::{Clock, MonotonicClock};
use crate::storage::{recover, StorageOptions};
use crate::store::{Store, StoreLimits};
use crate::transport::handshake::ClusterSecret;
use crate::transport::tcp_uring::{TcpUring, TcpUringConfig};
use crate::wire::HEADER_LEN;

use node::{entry_kind_from_byte, NodeLoop, Parts, Recovery};
use peer_transport::PeerTransport;

/// Counters the loop keeps (plain integers on its thread; published with the status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub errors_answered: u64,
    /// Answers for connections that had closed.
    pub answers_dropped: u64,
    pub bad_peer_messages: u64,
    /// Consensus frames larger than a slab, sent in pieces.
    pub peer_frames_in_pieces: u64,
    /// Vote requests ignored while recovering (memory mode).
    pub votes_withheld: u64,
    /// InstallSnapshot messages not sent (no snapshot bytes held for them) or chunks dropped
    /// (out of order, malformed).
    pub snapshots_refused: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Snapshots made durable by this node.
    pub snapshots_saved: u64,
    /// Snapshot saves that failed (retried one interval later).
    pub snapshot_failures: u64,
    /// Index of the newest durable snapshot.
    pub snapshot_index: u64,
    /// Encoded size of the newest snapshot taken.
    pub snapshot_len_bytes_last: u64,
    /// Time the loop spent encoding the newest snapshot (the part on the loop thread).
    pub snapshot_encode_ns_last: u64,
    /// Consensus messages not sent (no slab, not connected, queue full): Raft retries them.
    pub peer_sends_dropped: u64,
    pub leases_expired: u64,
    /// One-sided ring (`rdma.ring_slots > 0`; all zero without it).
    pub ring: RingCounters,
}

/// Counters of the ring path, for `/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Append frames this node (as leader) wrote into followers' rings.
    pub frames_written: u64,
    /// Append frames this node (as follower) took from its ring and stepped.
    pub frames_delivered: u64,
    /// Grants this node issued.
    pub grants_issued: u64,
    /// Grants this node (as leader) accepted.
    pub grants_accepted: u64,
    /// Append frames that fell back to SEND although the follower had granted this term.
    pub fallbacks: u64,
    /// Ring slots whose frame failed validation (cluster, sender, checksum, length): dropped.
    pub frames_rejected: u64,
}

/// Smallest and largest pool slab for peer frames. A slab holds the largest peer frame; the
/// transport's pool needs about `2 × slab / 56` slabs of reassembly headroom, so the pool grows
/// with the square of the slab size: 32 KiB slabs make a ~40 MiB pool per node.
const PEER_SLAB_BYTES_MIN: usize = 16 * 1024;
const PEER_SLAB_BYTES_MAX: usize = 32 * 1024;
/// Entries per AppendEntries: bounded so the per-entry headers (13 B each) leave room in a slab.
const MAX_BATCH_ENTRIES: usize = 128;
const APPEND_HEADER_BYTES: usize = 6 * 8 + 4;
/// Average memory one log entry is assumed to take, for `limits.max_log_bytes_in_memory`.
const LOG_ENTRY_COST_BYTES: u64 = 256;
const ENTRY_HEADER_BYTES: usize = 8 + 1 + 4;
/// WAL segment and record headers around one entry, with room to spare.
const WAL_RECORD_SLACK_BYTES: usize = 1024;
/// A store request's own encoding around its key and value (op code, lengths, lease, session).
const REQUEST_ENCODING_BYTES: u64 = 1024;

/// The validated configuration plus what the server derives from it once.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub config: Config,
    /// Slab size of the peer transport: the largest peer frame.
    pub peer_slab_bytes: usize,
    /// The largest store request (one log entry) the node accepts.
    pub max_entry_bytes: usize,
    /// Entry bytes one AppendEntries carries when it carries several: the batch fits one slab.
    pub max_batch_bytes: usize,
    /// The largest peer frame (an AppendEntries of one largest entry); larger ones are refused.
    pub max_peer_frame_bytes: usize,
    /// Requests one connection may have outstanding.
    pub client_queue_depth: u64,
    /// Bound on pending writes and reads across connections.
    pub max_pending_requests: usize,
    pub heartbeat_interval_ns: u64,
    pub election_timeout_ns: u64,
}

impl ServerConfig {
    pub fn new(config: Config) -> Self {
        let frame = usize::try_from(config.limits.max_frame_bytes).unwrap_or(usize::MAX);
        let peer_slab_bytes = frame
            .checked_next_power_of_two()
            .unwrap_or(PEER_SLAB_BYTES_MAX)
            .clamp(PEER_SLAB_BYTES_MIN, PEER_SLAB_BYTES_MAX);
        let max_batch_bytes = peer_slab_bytes
            - HEADER_LEN
            - APPEND_HEADER_BYTES
            - ENTRY_HEADER_BYTES * MAX_BATCH_ENTRIES;
        let max_entry_bytes = usize::try_from(
            config
                .limits
                .max_key_bytes
                .saturating_add(config.limits.max_value_bytes)
                .saturating_add(REQUEST_ENCODING_BYTES),
        )
        .unwrap_or(usize::MAX)
        .max(max_batch_bytes);
        let max_peer_frame_bytes =
            HEADER_LEN + APPEND_HEADER_BYTES + ENTRY_HEADER_BYTES + max_entry_bytes;
        Self {
            peer_slab_bytes,
            max_entry_bytes,
            max_batch_bytes,
            max_peer_frame_bytes,
            client_queue_depth: config.limits.client_queue_depth.max(1),
            max_pending_requests: 65_536,
            heartbeat_interval_ns: config.timing.heartbeat_interval_ms * 1_000_000,
            election_timeout_ns: config.timing.election_timeout_min_ms * 1_000_000,
            config,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot recover storage in {dir}: {source}")]
    Storage {
        dir: String,
        #[source]
        source: crate::storage::StorageError,
    },
    #[error("{0}")]
    Setup(String),
    #[error("cannot bind the {what} port {addr}: {source}; {}", bind_hint(source))]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

fn bind_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "another process uses it: stop it or choose another port",
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address: set the member's address to one of its own"
        }
        _ => "check the address in the member's entry of the configuration",
    }
}

/// A running node; dropping it without [`RunningServer::shutdown`] leaves the threads running.
#[derive(Debug)]
pub struct RunningServer {
    pub node_id: u64,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    node_thread: Option<JoinHandle<Result<(), String>>>,
    admin_thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Asks the loop and the admin thread to stop (returns at once).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether the node loop has exited (stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.node_thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the node and waits for its threads. Returns the loop's error if it failed.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.request_stop();
        self.join()
    }

    /// Waits for the node to stop (after [`RunningServer::request_stop`] or a failure).
    pub fn join(&mut self) -> Result<(), String> {
        let result = match self.node_thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("node loop panicked".to_owned())),
            None => Ok(()),
        };
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.admin_thread.take() {
            let _ = t.join();
        }
        result
    }
}

fn store_limits(config: &Config) -> StoreLimits {
    let clamp32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    StoreLimits {
        max_key_bytes: clamp32(config.limits.max_key_bytes),
        max_value_bytes: clamp32(config.limits.max_value_bytes),
        max_txn_ops: clamp32(config.limits.max_txn_ops),
        ..StoreLimits::default()
    }
}

fn membership(config: &Config) -> Result<Membership, String> {
    let voters: Vec<u64> = config.voters().map(|m| m.id).collect();
    let learners: Vec<u64> = config
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Learner)
        .map(|m| m.id)
        .collect();
    let group = VoterGroup::new(
        &voters,
        config.quorum.election(),
        config.quorum.replication(),
    )
    .map_err(|e| format!("invalid voter set: {e}"))?;
    Membership::new(group, &learners).map_err(|e| format!("invalid membership: {e}"))
}

fn node_config(cfg: &ServerConfig, membership: Membership) -> NodeConfig {
    let c = &cfg.config;
    let mut n = NodeConfig::new(c.node_id, membership);
    let ms = 1_000_000;
    n.election_timeout_min_ns = c.timing.election_timeout_min_ms * ms;
    n.election_timeout_max_ns = c.timing.election_timeout_max_ms * ms;
    n.heartbeat_interval_ns = c.timing.heartbeat_interval_ms * ms;
    // Drift over one election timeout, from the parts-per-million bound (at least 1 ms).
    n.max_clock_drift_ns = (n.election_timeout_min_ns / 1_000_000 * c.timing.max_clock_drift_ppm)
        .max(ms)
        .min(n.election_timeout_min_ns / 2);
    n.max_inflight_appends = usize::try_from(c.limits.pipeline_window)
        .unwrap_or(MAX_INFLIGHT_APPENDS)
        .clamp(1, MAX_INFLIGHT_APPENDS);
    n.max_batch_entries = usize::try_from(c.limits.max_batch_entries)
        .unwrap_or(MAX_BATCH_ENTRIES)
        .clamp(1, MAX_BATCH_ENTRIES);
    n.max_batch_bytes = cfg.max_batch_bytes;
    n.max_entry_bytes = cfg.max_entry_bytes;
    // The log stays in memory back to the newest snapshot (one every `snapshot_every_entries`),
    // bounded by the configured bytes at the assumed average entry cost (payload plus the log's
    // per-entry bookkeeping).
    n.max_log_entries = usize::try_from(c.limits.max_log_bytes_in_memory / LOG_ENTRY_COST_BYTES)
        .unwrap_or(usize::MAX)
        .clamp(1_024, 1 << 24);
    // And by its payload bytes themselves: with large values the bytes bind long before the
    // entries (a snapshot is taken when half of them are used, see `Snapshotter::due`).
    n.max_log_bytes = usize::try_from(c.limits.max_log_bytes_in_memory).unwrap_or(usize::MAX);
    // The log holds the entries since the last compaction: up to one interval plus the entries
    // applied while the snapshot is written.
    let every = c.storage.snapshot_every_entries;
    if every.saturating_mul(2) > n.max_log_entries as u64 {
        tracing::warn!(
            snapshot_every_entries = every,
            max_log_entries = n.max_log_entries,
            "storage.snapshot_every_entries is more than half the entries \
             limits.max_log_bytes_in_memory holds: writes may fail with \"log full\" before a \
             snapshot compacts the log; lower it or raise the limit"
        );
    }
    n
}

fn peer_transport(cfg: &ServerConfig) -> Result<PeerTransport, String> {
    let c = &cfg.config;
    #[cfg(feature = "dpdk")]
    if c.transport == crate::config::TransportKind::Dpdk {
        use crate::transport::dpdk::node::{open, DpdkOptions};
        // Every peer frame fits a slab; a window holds several of the largest.
        let opts = DpdkOptions {
            slab_bytes: cfg.peer_slab_bytes,
            pool_slabs: 1024,
            ..DpdkOptions::default()
        };
        let t = open(c, &opts).map_err(|e| format!("peer transport (dpdk): {e}"))?;
        return Ok(PeerTransport::Dpdk(t));
    }
    #[cfg(feature = "rdma")]
    if c.transport == crate::config::TransportKind::Rdma {
        return peer_transport::open_rdma(cfg);
    }
    if c.transport != crate::config::TransportKind::TcpUring {
        return Err(format!(
            "transport = \"{}\" is not in this build (cargo feature {:?})",
            c.transport,
            c.transport.cargo_feature()
        ));
    }
    let secret =
        ClusterSecret::new(c.secret.as_bytes()).map_err(|e| format!("cluster secret: {e}"))?;
    let mut t = TcpUringConfig::new(c.node_id, c.cluster_id, secret);
    t.listen_addr = Some(c.this_member().peer_addr);
    for m in &c.members {
        if m.id > c.node_id {
            t.dial.push((m.id, m.peer_addr));
        } else if m.id < c.node_id {
            t.accept_from.push(m.id);
        }
    }
    t.slab_bytes = cfg.peer_slab_bytes;
    t.recv_buffers = 64;
    t.pool_slabs = 64 + 2 * (cfg.peer_slab_bytes / HEADER_LEN + 1) + 256;
    t.max_connections = u16::try_from(c.members.len() * 2 + 4).unwrap_or(u16::MAX);
    t.send_queue_frames = 256;
    t.backoff_min_ms = c.timing.reconnect_backoff_ms.max(1);
    t.backoff_max_ms = t.backoff_min_ms.max(1_000);
    TcpUring::new(t)
        .map(PeerTransport::Tcp)
        .map_err(|e| format!("peer transport on {}: {e}", c.this_member().peer_addr))
}

/// Starts a node from its validated configuration: recovers storage, binds the peer, client and
/// admin ports, and runs the loop on its own thread. Returns once every port is bound.
pub fn start(config: Config) -> Result<RunningServer, StartError> {
    if config.runtime.shards > 1 {
        tracing::warn!(
            shards = config.runtime.shards,
            "runtime.shards > 1: this release runs consensus, store and clients on one thread; \
             the extra shards are not started"
        );
    }
    let cfg = Arc::new(ServerConfig::new(config));
    let node_id = cfg.config.node_id;
    let admin_addr = cfg.config.this_member().admin_addr;
    let admin_server = tiny_http::Server::http(admin_addr).map_err(|e| StartError::Bind {
        what: "admin",
        addr: admin_addr,
        source: match e.downcast::<std::io::Error>() {
            Ok(io) => *io,
            Err(other) => std::io::Error::other(other.to_string()),
        },
    })?;
    let admin_addr = admin_server.server_addr().to_ip().unwrap_or(admin_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(status::Shared::default());
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let thread_cfg = Arc::clone(&cfg);
    let thread_stop = Arc::clone(&stop);
    let thread_shared = Arc::clone(&shared);
    let node_thread = std::thread::Builder::new()
        .name(format!("aurora-node-{node_id}"))
        .spawn(move || {
            let setup = build_loop(thread_cfg, thread_shared, thread_stop);
            match setup {
                Ok((node_loop, client_addr, metrics_link)) => {
                    let _ = ready_tx.send(Ok((client_addr, metrics_link)));
                    node_loop.run().inspect_err(|e| {
                        tracing::error!(node = node_id, error = %e, "node loop failed");
                    })
                }
                Err(e) => {
                    let message = e.to_string();
                    let _ = ready_tx.send(Err(e));
                    Err(message)
                }
            }
        })
        .map_err(|e| StartError::Setup(format!("cannot spawn the node thread: {e}")))?;
    let (client_addr, metrics_link) = match ready_rx.recv() {
        Ok(Ok(ready)) => ready,
        Ok(Err(e)) => {
            let _ = node_thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = node_thread.join();
            return Err(StartError::Setup(
                "the node thread died during start-up".into(),
            ));
        }
    };
    let admin_stop = Arc::clone(&stop);
    let admin_thread = std::thread::Builder::new()
        .name(format!("aurora-admin-{node_id}"))
        .spawn(move || admin::serve(admin_server, shared, metrics_link, admin_stop))
        .map_err(|e| StartError::Setup(format!("cannot spawn the admin thread: {e}")))?;
    tracing::info!(node = node_id, %client_addr, %admin_addr, "node started");
    Ok(RunningServer {
        node_id,
        client_addr,
        admin_addr,
        stop,
        node_thread: Some(node_thread),
        admin_thread: Some(admin_thread),
    })
}

type Built = (NodeLoop, SocketAddr, admin::MetricsLink);

/// Builds everything the loop owns, on the loop's thread (the io_uring rings are single-issuer
/// and the pools are first touched here).
fn build_loop(
    cfg: Arc<ServerConfig>,
    shared: Arc<status::Shared>,
    stop: Arc<AtomicBool>,
) -> Result<Built, StartError> {
    let c = &cfg.config;
    let mut options = StorageOptions::from_config(c.durability, &c.storage);
    // One record always holds the largest entry (config validation keeps the segment larger).
    let one_entry_bytes = cfg.max_entry_bytes + WAL_RECORD_SLACK_BYTES;
    if options.wal.buffer_bytes < one_entry_bytes {
        options.wal.buffer_bytes =
            one_entry_bytes.min(usize::try_from(c.storage.wal_segment_bytes).unwrap_or(usize::MAX));
    }
    let recovered = recover(&c.data_dir, &options).map_err(|source| StartError::Storage {
        dir: c.data_dir.display().to_string(),
        source,
    })?;
    let limits = store_limits(c);
    let membership = membership(c).map_err(StartError::Setup)?;
    let (store, snapshot, held) = match &recovered.snapshot {
        Some(loaded) => {
            let mut bytes = Vec::new();
            loaded
                .open_data()
                .and_then(|mut data| {
                    data.read_to_end(&mut bytes).map_err(|e| {
                        crate::storage::SnapshotError::Source {
                            index: loaded.position.index,
                            term: loaded.position.term,
                            source: e,
                        }
                    })
                })
                .map_err(|e| StartError::Setup(format!("snapshot: {e}")))?;
            let store = Store::restore(&mut bytes.as_slice())
                .map_err(|e| StartError::Setup(format!("snapshot restore: {e}")))?;
            let (m, _) = Membership::decode(&loaded.membership)
                .map_err(|e| StartError::Setup(format!("snapshot membership: {e}")))?;
            let meta = SnapshotMeta {
                index: loaded.position.index,
                term: loaded.position.term,
                membership: m,
            };
            let held = snapshotter::HeldSnapshot {
                meta,
                data: bytes.into(),
            };
            (store, Some(meta), Some(held))
        }
        None => (Store::new(limits), None, None),
    };
    let snapshots =
        snapshotter::Snapshotter::new(recovered.snapshots, c.storage.snapshot_every_entries, held);
    let wal_recovery = recovered.wal;
    let hs = wal_recovery.hard_state();
    let mut entries = Vec::new();
    for e in wal_recovery.entries() {
        let e = e.map_err(|e| StartError::Setup(format!("WAL replay: {e}")))?;
        let kind = entry_kind_from_byte(e.kind).ok_or_else(|| {
            StartError::Setup(format!("WAL entry {} has unknown kind {}", e.index, e.kind))
        })?;
        entries.push(Entry {
            term: e.term,
            index: e.index,
            kind,
            payload: e.data,
        });
    }
    // Storage keeps term and vote in memory mode but not the log: a node that was part of the
    // cluster before (term > 0) comes back empty and must catch up before it votes.
    let recovering = c.durability == Durability::Memory && hs.term > 0;
    let restored = Restored {
        hard_state: HardState {
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit,
        },
        snapshot,
        entries,
    };
    let wal = wal_recovery
        .start()
        .map_err(|e| StartError::Setup(format!("WAL start: {e}")))?;
    let now_ns = MonotonicClock.now_ns();
    let seed = u64::from_le_bytes(
        crate::transport::handshake::fresh_nonce()
            .map_err(|e| StartError::Setup(format!("random seed: {e}")))?[..8]
            .try_into()
            .expect("nonce has at least 8 bytes"),
    );
    let node = Node::new(node_config(&cfg, membership), restored, now_ns, seed)
        .map_err(|e| StartError::Setup(format!("consensus: {e}")))?;
    let transport = peer_transport(&cfg).map_err(StartError::Setup)?;
    let client_addr = c.this_member().client_addr;
    let max_frame = usize::try_from(c.limits.max_frame_bytes).unwrap_or(usize::MAX);
    let clients = clients::ClientTable::bind(
        client_addr,
        c.cluster_id,
        usize::try_from(c.limits.max_clients)
            .unwrap_or(usize::MAX)
            .max(1),
        max_frame,
        2 * max_frame,
    )
    .map_err(|source| StartError::Bind {
        what: "client",
        addr: client_addr,
        source,
    })?;
    let bound_client_addr = clients.local_addr();
    let peers: Vec<u64> = c
        .members
        .iter()
        .map(|m| m.id)
        .filter(|&id| id != c.node_id)
        .collect();
    let mut registry = Registry::new();
    let core_metrics = CoreMetrics::register(&mut registry, &peers)
        .map_err(|e| StartError::Setup(format!("metrics: {e}")))?;
    let schema = registry.finish();
    let (metrics, link) = ShardMetrics::new(&schema);
    let node_loop = NodeLoop::new(Parts {
        cfg: Arc::clone(&cfg),
        node,
        store,
        wal,
        snapshots,
        transport,
        clients,
        shared,
        stop,
        metrics,
        core_metrics,
        recovery: if recovering {
            Recovery::WaitingForLeader
        } else {
            Recovery::Done
        },
    });
    Ok((
        node_loop,
        bound_client_addr,
        admin::MetricsLink { schema, link },
    ))
}
