//! The configuration file's schema: what a node's TOML file may say, with the defaults for what it
//! leaves out. Every struct denies unknown fields, so a misspelt key is an error, never a silent
//! default. `config/*.toml` are commented examples; docs of each field are the reference.
//!
//! Section types that need no conversion ([`Timing`], [`Runtime`], [`Limits`], [`Storage`]) are used
//! as they are by the validated [`Config`](super::Config); the `Raw*` types hold text that validation
//! parses (addresses, MAC addresses) or settles (quorum defaults, the secret).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::NodeId;

/// Where committed entries must be before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// On disk: the WAL is fdatasync'ed before an entry counts towards a quorum.
    #[default]
    Fsync,
    /// In memory only: an entry survives while a replication quorum of voters lives (the HPC mode
    /// of Mu and DARE). A whole-cluster power loss loses acknowledged writes.
    Memory,
}

/// Which fabric the node talks to its peers over (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// TCP through io_uring; needs no system libraries.
    #[default]
    TcpUring,
    /// RDMA verbs (RC queue pairs); builds with cargo feature `rdma`; needs `[rdma]`.
    Rdma,
    /// DPDK poll-mode drivers with Aurora's own UDP framing; builds with feature `dpdk`; needs
    /// `[dpdk]`.
    Dpdk,
}

impl TransportKind {
    /// The cargo feature that compiles this transport in, if it needs one.
    pub fn cargo_feature(self) -> Option<&'static str> {
        match self {
            TransportKind::TcpUring => None,
            TransportKind::Rdma => Some("rdma"),
            TransportKind::Dpdk => Some("dpdk"),
        }
    }

    /// Whether this binary was built with the transport.
    pub fn is_built(self) -> bool {
        match self {
            TransportKind::TcpUring => true,
            TransportKind::Rdma => cfg!(feature = "rdma"),
            TransportKind::Dpdk => cfg!(feature = "dpdk"),
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::TcpUring => "tcp_uring",
            TransportKind::Rdma => "rdma",
            TransportKind::Dpdk => "dpdk",
        })
    }
}

/// A member's part in consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Votes in elections and counts towards quorums.
    #[default]
    Voter,
    /// Receives the log but never votes nor counts towards any quorum.
    Learner,
}

/// Protocol timing. Every interval is measured on the local monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// How often a leader sends heartbeats (and renews its lease).
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time in [min, max) starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// The most two nodes' clocks may drift apart, in parts per million of elapsed time. Leader
    /// leases are shortened by it (see [`Timing::lease_ms`]).
    pub max_clock_drift_ppm: u64,
    /// How long a client request may wait for its commit before the node answers with a timeout.
    pub request_timeout_ms: u64,
    /// Delay before reconnecting to a peer whose connection broke.
    pub reconnect_backoff_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 20,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            max_clock_drift_ppm: 500,
            request_timeout_ms: 2_000,
            reconnect_backoff_ms: 50,
        }
    }
}

impl Timing {
    /// How long a leader may serve reads locally after a quorum acknowledged a heartbeat it sent,
    /// in its own clock's milliseconds.
    ///
    /// A follower that acknowledged at time t grants no vote before t + election_timeout_min on its
    /// clock. With clocks drifting by at most ρ, that is at least `min / (1 + ρ)` real time, which
    /// the leader's clock may measure as little as `(1 − ρ)` of: so the lease is
    /// `election_timeout_min × (1 − ρ) / (1 + ρ)`, rounded down.
    pub fn lease_ms(&self) -> u64 {
        const PPM: u128 = 1_000_000;
        let drift = u128::from(self.max_clock_drift_ppm).min(PPM);
        let lease = u128::from(self.election_timeout_min_ms) * (PPM - drift) / (PPM + drift);
        u64::try_from(lease).expect("the lease is at most election_timeout_min_ms, a u64")
    }
}

/// How the node uses its cores (DESIGN.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Runtime {
    /// Shard threads; shard 0 runs consensus and the store, the others terminate clients.
    pub shards: usize,
    /// CPU ids to run shards on, one per shard in order; empty = chosen from the topology (the
    /// NIC's NUMA node first).
    pub cores: Vec<usize>,
    /// Pin each shard thread to its core.
    pub pin: bool,
    /// How long an idle shard spins polling before it parks; 0 = park at once (laptops, CI).
    pub spin_us: u64,
    /// The longest a parked shard sleeps before it polls again, even with no timer due.
    pub max_park_us: u64,
    /// Capacity of each shard-to-shard mailbox, in messages; a power of two.
    pub mailbox_depth: usize,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            shards: 1,
            cores: Vec::new(),
            pin: false,
            spin_us: 0,
            max_park_us: 10_000,
            mailbox_depth: 1_024,
        }
    }
}

/// Bounds on everything a client or peer can make the node hold (TigerBeetle style: sized at
/// start-up, never grown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_key_bytes: u64,
    pub max_value_bytes: u64,
    /// The largest wire frame, header included; must hold one entry of the largest key and value.
    pub max_frame_bytes: u64,
    /// AppendEntries in flight per follower.
    pub pipeline_window: u64,
    /// Entries the leader proposes as one batch.
    pub max_batch_entries: u64,
    /// Log kept in memory before older entries must be read back from the WAL or a snapshot.
    pub max_log_bytes_in_memory: u64,
    /// Requests queued per client connection.
    pub client_queue_depth: u64,
    /// Client connections the node serves at once.
    pub max_clients: u64,
    /// Operations in one transaction.
    pub max_txn_ops: u64,
    /// Watches the node serves at once.
    pub max_watches: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: 4 * 1024,
            max_value_bytes: 1024 * 1024,
            max_frame_bytes: 4 * 1024 * 1024,
            pipeline_window: 32,
            max_batch_entries: 1_024,
            max_log_bytes_in_memory: 256 * 1024 * 1024,
            client_queue_depth: 1_024,
            max_clients: 16_384,
            max_txn_ops: 128,
            max_watches: 65_536,
        }
    }
}

/// The write-ahead log and snapshots (DESIGN.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Size at which a WAL segment file is closed and a new one started.
    pub wal_segment_bytes: u64,
    /// Entries applied between snapshots.
    pub snapshot_every_entries: u64,
    /// Snapshots kept on disk (the newest and older ones for recovery).
    pub snapshots_kept: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            wal_segment_bytes: 64 * 1024 * 1024,
            snapshot_every_entries: 100_000,
            snapshots_kept: 2,
        }
    }
}

/// A node's configuration file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub cluster_id: u64,
    pub node_id: NodeId,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub durability: Durability,
    #[serde(default)]
    pub allow_single_node_memory: bool,
    #[serde(default)]
    pub transport: TransportKind,
    pub members: Vec<RawMember>,
    #[serde(default)]
    pub quorum: RawQuorum,
    #[serde(default)]
    pub timing: Timing,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub rdma: Option<RawRdma>,
    #[serde(default)]
    pub dpdk: Option<RawDpdk>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMember {
    pub id: NodeId,
    #[serde(default)]
    pub role: Role,
    pub peer_addr: String,
    pub client_addr: String,
    pub admin_addr: String,
}

/// Quorum sizes; each defaults to a majority of the voters.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuorum {
    #[serde(default)]
    pub election_quorum: Option<usize>,
    #[serde(default)]
    pub replication_quorum: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRdma {
    /// Absent: the device whose IPv4-mapped GID carries this member's `peer_addr`.
    #[serde(default)]
    pub device: Option<String>,
    /// Absent: the first IPv4-mapped RoCE v2 GID of the device.
    #[serde(default)]
    pub gid_index: Option<u64>,
    #[serde(default = "default_ib_port")]
    pub port: u64,
    #[serde(default = "default_rdma_send_depth")]
    pub send_depth: u64,
    #[serde(default = "default_rdma_recv_depth")]
    pub recv_depth: u64,
    /// Slots of this node's one-sided log ring; 0 replicates over SEND only.
    #[serde(default)]
    pub ring_slots: u64,
}

impl Default for RawRdma {
    fn default() -> Self {
        Self {
            device: None,
            gid_index: None,
            port: default_ib_port(),
            send_depth: default_rdma_send_depth(),
            recv_depth: default_rdma_recv_depth(),
            ring_slots: 0,
        }
    }
}

fn default_rdma_send_depth() -> u64 {
    64
}

fn default_rdma_recv_depth() -> u64 {
    32
}

fn default_ib_port() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpdk {
    #[serde(default)]
    pub eal_args: Vec<String>,
    #[serde(default)]
    pub vdevs: Vec<String>,
    pub peers: Vec<RawDpdkPeer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpdkPeer {
    pub id: NodeId,
    pub mac: String,
    pub ip: String,
    pub udp_port: u64,
}
