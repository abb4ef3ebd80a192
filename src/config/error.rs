//! Configuration errors: each names where the bad setting came from (file, environment variable or
//! flag), the key, the value, and what to do about it.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::quorum::QuorumError;
use super::NodeId;

/// Where a setting came from. Later layers override earlier ones: file, then `AURORA_*`
/// environment variables, then `--set` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    /// The environment variable's name.
    Env(String),
    /// The flag's argument, `key=value`.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(arg) => write!(f, "flag --set {arg}"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}: {key}: {problem}")]
pub struct ConfigError {
    pub origin: Origin,
    /// The key, as a dotted path with array indices (`members[1].peer_addr`); `(file)` for
    /// problems with the file as a whole.
    pub key: String,
    pub problem: Problem,
}

/// Every problem found, in the order found. Loading reports them all at once, so one edit can fix
/// them all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = &self.0;
        if errors.len() > 1 {
            writeln!(f, "{} configuration errors:", errors.len())?;
        }
        for (i, error) in errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("cannot read the configuration file: {0}")]
    Unreadable(String),
    #[error("not valid TOML: {0}")]
    Syntax(String),
    #[error("unknown key{}", suggestion(.closest, .valid_here))]
    UnknownKey {
        /// The valid key most like it, written the way the user wrote this one.
        closest: Option<String>,
        /// The keys valid at that place, when none is close.
        valid_here: Vec<String>,
    },
    #[error(
        "required key is missing; set it in the file, with environment variable {env} or with \
             --set {key}=..."
    )]
    MissingKey { key: String, env: String },
    #[error("{0}")]
    BadOverride(String),
    #[error("{0}")]
    BadValue(String),
    /// The quorum rule's own message ([`QuorumError`]), unchanged.
    #[error("{0}")]
    Quorum(#[from] QuorumError),
    #[error(
        "cluster_id must not be 0: every frame carries it to keep clusters apart, and 0 is what \
             an unset id looks like; pick a random 64-bit number shared by the cluster's nodes"
    )]
    ZeroClusterId,
    #[error("node id 0 is reserved (the protocol uses it for \"no node\"); number nodes from 1")]
    ZeroNodeId,
    #[error(
        "node id {id} is used by members[{first}] and members[{second}]; every member needs its \
             own id"
    )]
    DuplicateNodeId {
        id: NodeId,
        first: usize,
        second: usize,
    },
    #[error(
        "address {addr} is also {other_key}; every peer, client and admin address must be \
             distinct"
    )]
    DuplicateAddress { addr: String, other_key: String },
    #[error(
        "node_id {node_id} is not among the members (ids: {members:?}); add a [[members]] entry \
             for this node or fix node_id"
    )]
    NodeNotMember {
        node_id: NodeId,
        members: Vec<NodeId>,
    },
    #[error(
        "{value:?} is not an IP:port socket address ({reason}); write it like \"10.0.0.1:7001\" \
             (names are not resolved: fabrics are addressed by IP)"
    )]
    BadAddress { value: String, reason: String },
    #[error("port 0 in {value:?} means \"any port\"; peers and clients need a fixed port")]
    ZeroPort { value: String },
    #[error(
        "neither secret_file nor secret is set; set secret_file to a file holding the cluster \
             secret (at least {min_bytes} bytes), or secret for development"
    )]
    SecretMissing { min_bytes: usize },
    #[error("both secret_file and secret are set; keep one (secret_file in production)")]
    SecretTwice,
    #[error(
        "the cluster secret is {len_bytes} bytes; it must be at least {min_bytes} (e.g. \
             `head -c 32 /dev/urandom | base64`)"
    )]
    SecretTooShort { len_bytes: usize, min_bytes: usize },
    #[error("cannot read secret file {path}: {reason}")]
    SecretUnreadable { path: PathBuf, reason: String },
    #[error(
        "secret file {path} is readable by group or others (mode {mode:03o}); run `chmod 600 \
             {path}`"
    )]
    SecretExposed { path: PathBuf, mode: u32 },
    #[error("election_timeout_min_ms ({min_ms}) must be at least twice heartbeat_interval_ms \
             ({heartbeat_ms}), or a single late heartbeat starts an election; raise \
             election_timeout_min_ms to {} or more", 2 * .heartbeat_ms)]
    ElectionTimeoutTooShort { min_ms: u64, heartbeat_ms: u64 },
    #[error(
        "election_timeout_max_ms ({max_ms}) must exceed election_timeout_min_ms ({min_ms}); \
             the randomized range between them is what keeps candidates from splitting the vote"
    )]
    ElectionRangeEmpty { min_ms: u64, max_ms: u64 },
    #[error("max_clock_drift_ppm = {drift_ppm} leaves a leader lease of {lease_ms} ms \
             (election_timeout_min_ms × (1 − drift) / (1 + drift)), not longer than one \
             heartbeat_interval_ms ({heartbeat_ms}): the leader renews its lease once per heartbeat, \
             so it would never hold one and every read would need a quorum round trip; lower \
             max_clock_drift_ppm or raise election_timeout_min_ms")]
    LeaseTooShort {
        drift_ppm: u64,
        lease_ms: u64,
        heartbeat_ms: u64,
    },
    #[error("request_timeout_ms ({request_ms}) is shorter than election_timeout_max_ms ({election_ms}); \
             every leader change would time requests out — raise request_timeout_ms")]
    RequestTimeoutTooShort { request_ms: u64, election_ms: u64 },
    #[error(
        "transport \"{transport}\" is not in this build; rebuild with `cargo build --release \
             --features {feature}`, or choose transport = \"tcp_uring\""
    )]
    TransportNotBuilt {
        transport: super::TransportKind,
        feature: &'static str,
    },
    #[error("transport \"{transport}\" needs a [{section}] section")]
    TransportSectionMissing {
        transport: super::TransportKind,
        section: &'static str,
    },
    #[error(
        "durability = \"memory\" with a single voter loses every acknowledged write when that \
             node crashes; add voters, use durability = \"fsync\", or set allow_single_node_memory \
             = true if that is really what you want (benchmarks, throw-away tests)"
    )]
    SingleNodeMemory,
    #[error("{value} is out of range: must be between {min} and {max} ({why})")]
    OutOfRange {
        value: u64,
        min: u64,
        max: u64,
        why: &'static str,
    },
    #[error(
        "{value} is not a power of two ({why}); use e.g. {}",
        .value.checked_next_power_of_two().unwrap_or(1 << 20).min(1 << 20)
    )]
    NotPowerOfTwo { value: u64, why: &'static str },
    #[error(
        "max_frame_bytes ({frame_bytes}) cannot hold one entry of the largest key and value \
             ({needed_bytes} bytes with {overhead_bytes} bytes of headers); raise max_frame_bytes \
             or lower max_key_bytes / max_value_bytes"
    )]
    FrameTooSmall {
        frame_bytes: u64,
        needed_bytes: u64,
        overhead_bytes: u64,
    },
    #[error(
        "max_log_bytes_in_memory ({log_bytes}) is smaller than one frame (max_frame_bytes = \
             {frame_bytes}); the leader could not hold the entry it is replicating"
    )]
    LogSmallerThanFrame { log_bytes: u64, frame_bytes: u64 },
    #[error(
        "{shards} shards but only {cores} cores listed; list a core per shard, or empty \
             `cores` to let the topology choose"
    )]
    ShardsExceedCores { shards: usize, cores: usize },
    #[error("core {core} is listed twice; each shard needs its own core")]
    DuplicateCore { core: usize },
    #[error(
        "member {id} has no [[dpdk.peers]] entry; DPDK addresses every peer by MAC, IP and UDP \
             port"
    )]
    DpdkPeerMissing { id: NodeId },
    #[error("[[dpdk.peers]] entry for id {id}, which is not a member (ids: {members:?})")]
    DpdkPeerUnknown { id: NodeId, members: Vec<NodeId> },
    #[error("{value:?} is not a MAC address; write six hex bytes like \"02:00:00:00:00:01\"")]
    BadMac { value: String },
    #[error("{value:?} is not an IPv4 address (the DPDK transport frames Ethernet/IPv4/UDP)")]
    BadIpv4 { value: String },
}

fn suggestion(closest: &Option<String>, valid_here: &[String]) -> String {
    match closest {
        Some(key) => format!("; did you mean {key}?"),
        None if valid_here.is_empty() => String::new(),
        None => format!("; valid keys here: {}", valid_here.join(", ")),
    }
}
