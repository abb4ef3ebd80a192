//! From a deserialized file to a [`Config`] every layer can trust: each rule is checked here, once,
//! and every violation is reported with where it came from and how to fix it.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Origin, Problem};
use super::layers::{origin_of, Override};
use super::quorum::{QuorumError, QuorumSizes};
use super::schema::{
    Durability, Limits, RawConfig, RawDpdk, RawRdma, Role, Runtime, Storage, Timing, TransportKind,
};
use super::NodeId;

/// The shortest cluster secret accepted: 32 bytes, the HMAC-SHA256 key size.
pub const MIN_SECRET_BYTES: usize = 32;

/// The longest secret file read: a secret is a few dozen bytes, a bigger file is the wrong file.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Bytes of frame and entry headers budgeted on top of a key and value in `max_frame_bytes`.
pub const FRAME_OVERHEAD_BYTES: u64 = 4 * 1024;

/// A node's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Carried by every frame; frames of another cluster are rejected.
    pub cluster_id: u64,
    /// This node; always one of `members`.
    pub node_id: NodeId,
    /// Authenticates peers on connect.
    pub secret: Secret,
    /// Absolute: relative paths in the file are resolved against the file's directory.
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// Always compiled into this binary.
    pub transport: TransportKind,
    /// In file order; ids and addresses are distinct.
    pub members: Vec<Member>,
    /// Built from the voters (learners never count).
    pub quorum: QuorumSizes,
    pub timing: Timing,
    pub runtime: Runtime,
    pub limits: Limits,
    pub storage: Storage,
    /// `Some` exactly when `transport` is `Rdma`.
    pub rdma: Option<Rdma>,
    /// `Some` exactly when `transport` is `Dpdk`.
    pub dpdk: Option<Dpdk>,
}

impl Config {
    /// This node's own member entry.
    pub fn this_member(&self) -> &Member {
        self.member(self.node_id)
            .expect("validation guarantees node_id is a member")
    }

    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn voters(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.role == Role::Voter)
    }
}

/// One node of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub role: Role,
    /// Where peers connect for consensus traffic.
    pub peer_addr: SocketAddr,
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// The admin HTTP endpoint (`/metrics`, `/status`, `/health`).
    pub admin_addr: SocketAddr,
}

/// The cluster secret. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// RDMA device selection, as perftest's `-d`, `-x` and `-i`, and the queue depths of every QP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdma {
    /// `None`: the device whose IPv4-mapped GID carries this member's `peer_addr` (rdma_cm binds
    /// and dials from that address, so the member list is also the RDMA address list).
    pub device: Option<String>,
    /// `None`: the first IPv4-mapped RoCE v2 GID of the device.
    pub gid_index: Option<u8>,
    /// The HCA port; the transport uses port 1 (rdma_cm picks the port of the bound address).
    pub port: u8,
    /// Sends (frames and ring writes) in flight per queue pair.
    pub send_depth: u16,
    /// Receives posted per queue pair; each holds one peer-frame slab of registered memory.
    pub recv_depth: u16,
    /// Slots of the one-sided log ring (one peer slab each); 0: replication over SEND only.
    pub ring_slots: u32,
}

/// DPDK settings and the peer address table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpdk {
    /// Passed to `rte_eal_init` as they are.
    pub eal_args: Vec<String>,
    /// Virtual devices to create (`net_memif0,role=server`, `net_af_xdp0,iface=eth0`).
    pub vdevs: Vec<String>,
    /// One per member, in member order.
    pub peers: Vec<DpdkPeer>,
}

/// How to reach one member over DPDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpdkPeer {
    pub id: NodeId,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub udp_port: u16,
}

/// Collects problems, each attributed to the layer that set the key.
pub(crate) struct Checker<'a> {
    pub(crate) file: Origin,
    pub(crate) base_dir: &'a Path,
    pub(crate) overrides: &'a [Override],
    pub(crate) errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn report(&mut self, key: impl Into<String>, problem: Problem) {
        let key = key.into();
        self.errors.push(ConfigError {
            origin: origin_of(&key, self.overrides, &self.file),
            key,
            problem,
        });
    }

    /// Reports `value` unless it is within `min..=max`.
    fn range(&mut self, key: &str, value: u64, min: u64, max: u64, why: &'static str) {
        if !(min..=max).contains(&value) {
            self.report(
                key,
                Problem::OutOfRange {
                    value,
                    min,
                    max,
                    why,
                },
            );
        }
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Checks every rule; `None` if any failed (the problems are in `self.errors`).
    pub(crate) fn config(&mut self, raw: RawConfig) -> Option<Config> {
        if raw.cluster_id == 0 {
            self.report("cluster_id", Problem::ZeroClusterId);
        }
        let members = self.members(&raw);
        let quorum = self.quorum(&raw);
        let secret = self.secret(&raw);
        if raw.data_dir.as_os_str().is_empty() {
            self.report(
                "data_dir",
                Problem::BadValue(
                    "data_dir is empty; name the directory for the WAL, snapshots and node \
                     metadata"
                        .to_owned(),
                ),
            );
        }
        if raw.durability == Durability::Memory
            && quorum.is_some_and(|q| q.voters() == 1)
            && !raw.allow_single_node_memory
        {
            self.report("durability", Problem::SingleNodeMemory);
        }
        self.timing(&raw.timing);
        self.runtime(&raw.runtime);
        self.limits(&raw.limits);
        self.storage(&raw.storage, &raw.limits);
        let (rdma, dpdk) = self.transport(&raw, members.as_deref());
        if !self.errors.is_empty() {
            return None;
        }
        Some(Config {
            cluster_id: raw.cluster_id,
            node_id: raw.node_id,
            secret: secret?,
            data_dir: self.resolve(&raw.data_dir),
            durability: raw.durability,
            transport: raw.transport,
            members: members?,
            quorum: quorum?,
            timing: raw.timing,
            runtime: raw.runtime,
            limits: raw.limits,
            storage: raw.storage,
            rdma,
            dpdk,
        })
    }

    fn members(&mut self, raw: &RawConfig) -> Option<Vec<Member>> {
        let before = self.errors.len();
        let mut first_with_id: HashMap<NodeId, usize> = HashMap::new();
        let mut addr_keys: HashMap<SocketAddr, String> = HashMap::new();
        let mut members = Vec::with_capacity(raw.members.len());
        for (i, m) in raw.members.iter().enumerate() {
            if m.id == 0 {
                self.report(format!("members[{i}].id"), Problem::ZeroNodeId);
            } else if let Some(&first) = first_with_id.get(&m.id) {
                self.report(
                    format!("members[{i}].id"),
                    Problem::DuplicateNodeId {
                        id: m.id,
                        first,
                        second: i,
                    },
                );
            } else {
                first_with_id.insert(m.id, i);
            }
            let mut addrs = [None; 3];
            for (slot, (field, text)) in addrs.iter_mut().zip([
                ("peer_addr", &m.peer_addr),
                ("client_addr", &m.client_addr),
                ("admin_addr", &m.admin_addr),
            ]) {
                let key = format!("members[{i}].{field}");
                let Some(addr) = self.socket_addr(&key, text) else {
                    continue;
                };
                if let Some(other_key) = addr_keys.get(&addr) {
                    let problem = Problem::DuplicateAddress {
                        addr: addr.to_string(),
                        other_key: other_key.clone(),
                    };
                    self.report(key, problem);
                } else {
                    addr_keys.insert(addr, key);
                }
                *slot = Some(addr);
            }
            if let [Some(peer_addr), Some(client_addr), Some(admin_addr)] = addrs {
                members.push(Member {
                    id: m.id,
                    role: m.role,
                    peer_addr,
                    client_addr,
                    admin_addr,
                });
            }
        }
        if raw.node_id == 0 {
            self.report("node_id", Problem::ZeroNodeId);
        } else if !raw.members.iter().any(|m| m.id == raw.node_id) {
            let problem = Problem::NodeNotMember {
                node_id: raw.node_id,
                members: raw.members.iter().map(|m| m.id).collect(),
            };
            self.report("node_id", problem);
        }
        (self.errors.len() == before).then_some(members)
    }

    fn socket_addr(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(addr) if addr.port() == 0 => {
                let value = text.to_owned();
                self.report(key, Problem::ZeroPort { value });
                None
            }
            Ok(addr) => Some(addr),
            Err(e) => {
                let problem = Problem::BadAddress {
                    value: text.to_owned(),
                    reason: e.to_string(),
                };
                self.report(key, problem);
                None
            }
        }
    }

    /// Voters only: a learner never votes and never counts towards a quorum.
    fn quorum(&mut self, raw: &RawConfig) -> Option<QuorumSizes> {
        let voters = raw.members.iter().filter(|m| m.role == Role::Voter).count();
        let majority = voters / 2 + 1;
        let election = raw.quorum.election_quorum.unwrap_or(majority);
        let replication = raw.quorum.replication_quorum.unwrap_or(majority);
        match QuorumSizes::new(voters, election, replication) {
            Ok(quorum) => Some(quorum),
            Err(e) => {
                let key = match e {
                    QuorumError::Voters(_) => "members",
                    QuorumError::ElectionRange { .. } | QuorumError::SplitElection { .. } => {
                        "quorum.election_quorum"
                    }
                    QuorumError::ReplicationRange { .. } => "quorum.replication_quorum",
                    QuorumError::NoIntersection { .. } => "quorum",
                };
                self.report(key, Problem::Quorum(e));
                None
            }
        }
    }

    fn secret(&mut self, raw: &RawConfig) -> Option<Secret> {
        let (key, bytes) = match (&raw.secret, &raw.secret_file) {
            (Some(_), Some(_)) => {
                self.report("secret", Problem::SecretTwice);
                return None;
            }
            (None, None) => {
                let problem = Problem::SecretMissing {
                    min_bytes: MIN_SECRET_BYTES,
                };
                self.report("secret_file", problem);
                return None;
            }
            (Some(inline), None) => ("secret", inline.as_bytes().to_vec()),
            (None, Some(path)) => {
                let path = self.resolve(path);
                ("secret_file", self.read_secret(&path)?)
            }
        };
        if bytes.len() < MIN_SECRET_BYTES {
            let problem = Problem::SecretTooShort {
                len_bytes: bytes.len(),
                min_bytes: MIN_SECRET_BYTES,
            };
            self.report(key, problem);
            return None;
        }
        Some(Secret(bytes))
    }

    /// The file's bytes without a trailing line break (editors add one).
    fn read_secret(&mut self, path: &Path) -> Option<Vec<u8>> {
        let unreadable = |reason: String| Problem::SecretUnreadable {
            path: path.to_owned(),
            reason,
        };
        let metadata = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.report("secret_file", unreadable(e.to_string()));
                return None;
            }
        };
        if metadata.len() > MAX_SECRET_FILE_BYTES {
            let reason = format!(
                "{} bytes is too large for a secret (at most {MAX_SECRET_FILE_BYTES}); is it the \
                 right file?",
                metadata.len()
            );
            self.report("secret_file", unreadable(reason));
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let problem = Problem::SecretExposed {
                    path: path.to_owned(),
                    mode,
                };
                self.report("secret_file", problem);
                return None;
            }
        }
        match std::fs::read(path) {
            Ok(mut bytes) => {
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                Some(bytes)
            }
            Err(e) => {
                self.report("secret_file", unreadable(e.to_string()));
                None
            }
        }
    }

    fn timing(&mut self, t: &Timing) {
        self.range(
            "timing.heartbeat_interval_ms",
            t.heartbeat_interval_ms,
            1,
            10_000,
            "a leader must heartbeat often enough for followers to notice it failed",
        );
        self.range(
            "timing.election_timeout_max_ms",
            t.election_timeout_max_ms,
            1,
            60_000,
            "a leaderless minute is an outage, not a timeout",
        );
        self.range(
            "timing.max_clock_drift_ppm",
            t.max_clock_drift_ppm,
            0,
            1_000_000,
            "a fraction of elapsed time, in millionths",
        );
        self.range(
            "timing.request_timeout_ms",
            t.request_timeout_ms,
            1,
            600_000,
            "clients must hear back within minutes",
        );
        self.range(
            "timing.reconnect_backoff_ms",
            t.reconnect_backoff_ms,
            1,
            60_000,
            "0 would spin on a dead peer; more than a minute delays recovery",
        );
        if t.election_timeout_min_ms < 2 * t.heartbeat_interval_ms {
            let problem = Problem::ElectionTimeoutTooShort {
                min_ms: t.election_timeout_min_ms,
                heartbeat_ms: t.heartbeat_interval_ms,
            };
            self.report("timing.election_timeout_min_ms", problem);
        }
        if t.election_timeout_max_ms <= t.election_timeout_min_ms {
            let problem = Problem::ElectionRangeEmpty {
                min_ms: t.election_timeout_min_ms,
                max_ms: t.election_timeout_max_ms,
            };
            self.report("timing.election_timeout_max_ms", problem);
        }
        if t.lease_ms() <= t.heartbeat_interval_ms {
            let problem = Problem::LeaseTooShort {
                drift_ppm: t.max_clock_drift_ppm,
                lease_ms: t.lease_ms(),
                heartbeat_ms: t.heartbeat_interval_ms,
            };
            self.report("timing.max_clock_drift_ppm", problem);
        }
        if t.request_timeout_ms < t.election_timeout_max_ms {
            let problem = Problem::RequestTimeoutTooShort {
                request_ms: t.request_timeout_ms,
                election_ms: t.election_timeout_max_ms,
            };
            self.report("timing.request_timeout_ms", problem);
        }
    }

    fn runtime(&mut self, r: &Runtime) {
        /// CPU numbers the affinity syscalls can name (`CPU_SETSIZE`); also bounds the shards.
        const CPU_LIMIT: u64 = 1024;
        let shards = u64::try_from(r.shards).unwrap_or(u64::MAX);
        self.range(
            "runtime.shards",
            shards,
            1,
            CPU_LIMIT,
            "one shard per core, and the affinity syscalls name at most 1024 CPUs",
        );
        self.range(
            "runtime.spin_us",
            r.spin_us,
            0,
            10_000_000,
            "a shard idle for 10 s should park; a loaded one never reaches the bound",
        );
        self.range(
            "runtime.max_park_us",
            r.max_park_us,
            1,
            10_000_000,
            "a parked shard must wake on its own; sleeping longer than 10 s only hides lost wake-ups",
        );
        let depth = u64::try_from(r.mailbox_depth).unwrap_or(u64::MAX);
        self.range(
            "runtime.mailbox_depth",
            depth,
            1,
            1 << 20,
            "mailbox slots are allocated up front",
        );
        if !depth.is_power_of_two() {
            let problem = Problem::NotPowerOfTwo {
                value: depth,
                why: "mailboxes are rings indexed by masking",
            };
            self.report("runtime.mailbox_depth", problem);
        }
        let mut seen = Vec::with_capacity(r.cores.len());
        for &core in &r.cores {
            let core_number = u64::try_from(core).unwrap_or(u64::MAX);
            self.range(
                "runtime.cores",
                core_number,
                0,
                CPU_LIMIT - 1,
                "CPU numbers the affinity syscalls can name",
            );
            if seen.contains(&core) {
                self.report("runtime.cores", Problem::DuplicateCore { core });
            }
            seen.push(core);
        }
        if !r.cores.is_empty() && r.shards > r.cores.len() {
            let problem = Problem::ShardsExceedCores {
                shards: r.shards,
                cores: r.cores.len(),
            };
            self.report("runtime.shards", problem);
        }
    }

    fn limits(&mut self, l: &Limits) {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        const GIB: u64 = 1024 * MIB;
        let checks: [(&str, u64, u64, u64, &'static str); 10] = [
            ("limits.max_key_bytes", l.max_key_bytes, 1, 64 * KIB, "keys are names, not payloads"),
            ("limits.max_value_bytes", l.max_value_bytes, 1, 16 * MIB, "a coordination store is not a blob store; every value crosses the fabric to every voter"),
            ("limits.max_frame_bytes", l.max_frame_bytes, 4 * KIB, 16 * MIB, "a frame fits one registered buffer slab and the wire's 16 MiB payload bound"),
            ("limits.pipeline_window", l.pipeline_window, 1, 1_024, "AppendEntries in flight per follower"),
            ("limits.max_batch_entries", l.max_batch_entries, 1, 65_536, "entries in one proposal batch"),
            ("limits.max_log_bytes_in_memory", l.max_log_bytes_in_memory, 1, 1024 * GIB, "in-memory log, bounded by RAM"),
            ("limits.client_queue_depth", l.client_queue_depth, 1, 65_536, "queued requests per connection"),
            ("limits.max_clients", l.max_clients, 1, 1_000_000, "client connections"),
            ("limits.max_txn_ops", l.max_txn_ops, 1, 65_536, "operations in one transaction"),
            ("limits.max_watches", l.max_watches, 1, 10_000_000, "watches served at once"),
        ];
        for (key, value, min, max, why) in checks {
            self.range(key, value, min, max, why);
        }
        let needed = l
            .max_key_bytes
            .saturating_add(l.max_value_bytes)
            .saturating_add(FRAME_OVERHEAD_BYTES);
        if l.max_frame_bytes < needed {
            let problem = Problem::FrameTooSmall {
                frame_bytes: l.max_frame_bytes,
                needed_bytes: needed,
                overhead_bytes: FRAME_OVERHEAD_BYTES,
            };
            self.report("limits.max_frame_bytes", problem);
        }
        if l.max_log_bytes_in_memory < l.max_frame_bytes {
            let problem = Problem::LogSmallerThanFrame {
                log_bytes: l.max_log_bytes_in_memory,
                frame_bytes: l.max_frame_bytes,
            };
            self.report("limits.max_log_bytes_in_memory", problem);
        }
    }

    fn storage(&mut self, s: &Storage, l: &Limits) {
        self.range(
            "storage.wal_segment_bytes",
            s.wal_segment_bytes,
            l.max_frame_bytes.max(1024 * 1024),
            16 * 1024 * 1024 * 1024,
            "a segment holds at least one frame and at least 1 MiB; at most 16 GiB",
        );
        self.range(
            "storage.snapshot_every_entries",
            s.snapshot_every_entries,
            1,
            1_000_000_000,
            "entries between snapshots",
        );
        self.range(
            "storage.snapshots_kept",
            s.snapshots_kept,
            1,
            100,
            "at least the newest snapshot is kept",
        );
    }

    /// The transport must be built in; its section is validated only when it is chosen.
    fn transport(
        &mut self,
        raw: &RawConfig,
        members: Option<&[Member]>,
    ) -> (Option<Rdma>, Option<Dpdk>) {
        let transport = raw.transport;
        if let Some(feature) = transport.cargo_feature() {
            if !transport.is_built() {
                self.report(
                    "transport",
                    Problem::TransportNotBuilt { transport, feature },
                );
            }
        }
        let missing = |section| Problem::TransportSectionMissing { transport, section };
        match transport {
            TransportKind::TcpUring => (None, None),
            // Every [rdma] key has a default: without the section the device is found by address.
            TransportKind::Rdma => (
                self.rdma(raw.rdma.as_ref().unwrap_or(&RawRdma::default())),
                None,
            ),
            TransportKind::Dpdk => match &raw.dpdk {
                Some(dpdk) => (None, members.and_then(|m| self.dpdk(dpdk, m))),
                None => {
                    self.report("dpdk", missing("dpdk"));
                    (None, None)
                }
            },
        }
    }

    fn rdma(&mut self, raw: &RawRdma) -> Option<Rdma> {
        let before = self.errors.len();
        if raw.device.as_ref().is_some_and(|d| d.trim().is_empty()) {
            self.report(
                "rdma.device",
                Problem::BadValue(
                    "device is empty; name the RDMA device as `ibv_devices` lists it, e.g. \
                     \"mlx5_0\" or \"rxe0\", or leave the key out to use the device whose GID \
                     carries this member's peer_addr"
                        .to_owned(),
                ),
            );
        }
        if let Some(gid_index) = raw.gid_index {
            self.range(
                "rdma.gid_index",
                gid_index,
                0,
                255,
                "an index into the port's GID table (`show_gids`)",
            );
        }
        self.range(
            "rdma.port",
            raw.port,
            1,
            1,
            "the RDMA transport uses HCA port 1 (rdma_cm picks the port that carries the GID's \
             address); move the address to port 1's netdev",
        );
        self.range(
            "rdma.send_depth",
            raw.send_depth,
            1,
            4096,
            "sends in flight per queue pair",
        );
        self.range(
            "rdma.recv_depth",
            raw.recv_depth,
            4,
            4096,
            "receives posted per queue pair, one registered peer-frame slab each",
        );
        if raw.ring_slots != 0 {
            self.range(
                "rdma.ring_slots",
                raw.ring_slots,
                64,
                4096,
                "0 turns the one-sided ring off; otherwise at least 64 slots (more than the \
                 Appends a leader keeps in flight per follower), one 32 KiB slab each",
            );
        }
        (self.errors.len() == before).then(|| Rdma {
            ring_slots: u32::try_from(raw.ring_slots).expect("range-checked above"),
            device: raw.device.clone(),
            gid_index: raw
                .gid_index
                .map(|g| u8::try_from(g).expect("range-checked above")),
            port: u8::try_from(raw.port).expect("range-checked above"),
            send_depth: u16::try_from(raw.send_depth).expect("range-checked above"),
            recv_depth: u16::try_from(raw.recv_depth).expect("range-checked above"),
        })
    }

    fn dpdk(&mut self, raw: &RawDpdk, members: &[Member]) -> Option<Dpdk> {
        let before = self.errors.len();
        let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();
        let mut by_id: HashMap<NodeId, DpdkPeer> = HashMap::new();
        let mut macs: HashMap<[u8; 6], String> = HashMap::new();
        let mut endpoints: HashMap<(Ipv4Addr, u16), String> = HashMap::new();
        for (i, p) in raw.peers.iter().enumerate() {
            let key = |field: &str| format!("dpdk.peers[{i}].{field}");
            if !ids.contains(&p.id) {
                let problem = Problem::DpdkPeerUnknown {
                    id: p.id,
                    members: ids.clone(),
                };
                self.report(key("id"), problem);
            }
            let mac = parse_mac(&p.mac);
            if mac.is_none() {
                let value = p.mac.clone();
                self.report(key("mac"), Problem::BadMac { value });
            }
            let ip = p.ip.parse::<Ipv4Addr>().ok();
            if ip.is_none() {
                let value = p.ip.clone();
                self.report(key("ip"), Problem::BadIpv4 { value });
            }
            self.range(
                &key("udp_port"),
                p.udp_port,
                1,
                65_535,
                "a UDP port; 0 is not a destination",
            );
            let (Some(mac), Some(ip), Ok(udp_port)) = (mac, ip, u16::try_from(p.udp_port)) else {
                continue;
            };
            if let Some(other_key) = macs.insert(mac, key("mac")) {
                let problem = Problem::DuplicateAddress {
                    addr: p.mac.clone(),
                    other_key,
                };
                self.report(key("mac"), problem);
            }
            if let Some(other_key) = endpoints.insert((ip, udp_port), key("ip")) {
                let problem = Problem::DuplicateAddress {
                    addr: format!("{ip}:{udp_port}"),
                    other_key,
                };
                self.report(key("udp_port"), problem);
            }
            let peer = DpdkPeer {
                id: p.id,
                mac,
                ip,
                udp_port,
            };
            if by_id.insert(p.id, peer).is_some() {
                let first = raw.peers.iter().position(|q| q.id == p.id).unwrap_or(i);
                let problem = Problem::DuplicateNodeId {
                    id: p.id,
                    first,
                    second: i,
                };
                self.report(key("id"), problem);
            }
        }
        for &id in &ids {
            if !raw.peers.iter().any(|p| p.id == id) {
                self.report("dpdk.peers", Problem::DpdkPeerMissing { id });
            }
        }
        if self.errors.len() != before {
            return None;
        }
        Some(Dpdk {
            eal_args: raw.eal_args.clone(),
            vdevs: raw.vdevs.clone(),
            peers: ids
                .iter()
                .map(|id| {
                    *by_id
                        .get(id)
                        .expect("no error, so every member has a peer entry")
                })
                .collect(),
        })
    }
}

/// `02:00:00:00:00:01` (or with `-`) to bytes.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_parse_with_colons_or_dashes_only_when_complete() {
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02-00-00-00-00-0A"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("2:0:0:0:0:0"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:00"), None);
    }

    #[test]
    fn lease_shrinks_with_drift() {
        let timing = Timing {
            election_timeout_min_ms: 1_000,
            max_clock_drift_ppm: 0,
            ..Timing::default()
        };
        assert_eq!(timing.lease_ms(), 1_000);
        let drifting = Timing {
            max_clock_drift_ppm: 100_000,
            ..timing
        };
        // 1000 × 0.9 / 1.1 = 818.18…
        assert_eq!(drifting.lease_ms(), 818);
    }

    #[test]
    fn secret_debug_hides_the_bytes() {
        let secret = Secret(b"super-secret-value-of-32-bytes!!".to_vec());
        assert_eq!(format!("{secret:?}"), "Secret(<32 bytes redacted>)");
    }
}
