//! Validated configuration: node and cluster settings from a TOML file, overridden by `AURORA_*`
//! environment variables and then by `--set key=value` flags, and the quorum rule every layer
//! shares.
//!
//! ```no_run
//! let config = aurora::config::load(
//!     std::path::Path::new("config/single-node.toml"),
//!     aurora::config::process_env(),
//!     ["timing.heartbeat_interval_ms=10".to_owned()],
//! )
//! .unwrap_or_else(|errors| panic!("{errors}"));
//! assert_eq!(config.timing.heartbeat_interval_ms, 10);
//! ```
//!
//! - **Schema**: [`schema`] documents every key and its default; `config/*.toml` are commented
//!   examples (`single-node`, `cluster-3` — one file shared by all nodes, each started with
//!   `AURORA_NODE_ID=n` —, `hpc-memory` for RDMA, `dpdk-memif`). [`keys()`] lists every key.
//! - **Layers**: file, then environment, then flags; both override layers name a key by its path:
//!   `AURORA_TIMING__HEARTBEAT_INTERVAL_MS=5` (`__` between segments, array elements by index:
//!   `AURORA_MEMBERS__1__PEER_ADDR`) and `--set timing.heartbeat_interval_ms=5` (or
//!   `members[1].peer_addr=…`). Values are TOML; text keys take the raw text unless quoted.
//!   Overrides are applied to the TOML tree before the typed, unknown-key-denying deserialization,
//!   so every layer is checked the same way. [`RESERVED_ENV`] variables are not keys.
//! - **Errors**: every problem found is reported at once ([`ConfigErrors`]), each naming the
//!   layer that set the key ([`Origin`]), the key, the value and the fix; unknown keys come with
//!   the closest valid key, written for the layer they came from.
//! - **Paths**: relative `data_dir` and `secret_file` are resolved against the file's directory.

mod error;
mod keys;
mod layers;
mod load;
mod quorum;
pub mod schema;
mod validate;

pub use error::{ConfigError, ConfigErrors, Origin, Problem};
pub use layers::{ENV_PREFIX, RESERVED_ENV};
pub use load::{load, parse, process_env, MAX_FILE_BYTES};
pub use quorum::{QuorumError, QuorumSizes, MAX_VOTERS};
pub use schema::{Durability, Limits, Role, Runtime, Storage, Timing, TransportKind};
pub use validate::{
    Config, Dpdk, DpdkPeer, Member, Rdma, Secret, FRAME_OVERHEAD_BYTES, MIN_SECRET_BYTES,
};

/// A voter's or learner's identity within one cluster; stable for the node's lifetime.
pub type NodeId = u64;

/// Every key a configuration file may set (array elements written `[]`), for documentation and
/// for tests that keep the examples complete.
pub fn keys() -> Vec<String> {
    keys::Keys::of_config()
        .leaves()
        .map(str::to_owned)
        .collect()
}
