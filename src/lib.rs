//! Aurora: a kernel-bypass, low-latency coordination daemon for HPC clusters.
//!
//! The folders are the architecture (see DESIGN.md §1); imports only go downward:
//!
//! ```text
//!  cli/  client/                        the `aurora` command; the Rust client library
//!  server/                              a node: consensus + store + storage on shards; admin HTTP
//!  sim/  lincheck/                      deterministic simulator; linearizability checker
//!  consensus/  store/  storage/         sans-IO Raft/Paxos hybrid; the state machine; WAL + snapshots
//!  wire/  transport/  runtime/          frames; fabrics behind one trait; pinned shards
//!  metrics/  config/                    HDR histograms, counters; validated configuration
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]

/// `true` when the named [`mutants::Mutant`] is switched on; the constant `false` without feature `mutants`.
#[macro_export]
macro_rules! mutant {
    ($name:ident) => {{
        #[cfg(feature = "mutants")]
        {
            $crate::mutants::active($crate::mutants::Mutant::$name)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }};
}

pub mod cli;
pub mod client;
pub mod config;
pub mod consensus;
pub mod lincheck;
pub mod metrics;
#[cfg(feature = "mutants")]
pub mod mutants;
pub mod runtime;
pub mod server;
pub mod sim;
pub mod storage;
pub mod store;
pub mod transport;
pub mod wire;
