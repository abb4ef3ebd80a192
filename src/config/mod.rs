//! Validated configuration: node and cluster settings from TOML, `AURORA_*` environment variables
//! and CLI flags, and the quorum rule every layer shares.

mod quorum;

pub use quorum::{QuorumError, QuorumSizes, MAX_VOTERS};

/// A voter's or learner's identity within one cluster; stable for the node's lifetime.
pub type NodeId = u64;
