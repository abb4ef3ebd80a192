//! The Rust client of an Aurora cluster: blocking, pipelined when asked, and failover-proof.
//!
//! ```no_run
//! use aurora::client::{parse_endpoints, Client, ClientOptions};
//! let endpoints = parse_endpoints("127.0.0.1:7102,127.0.0.1:7112,127.0.0.1:7122")?;
//! let mut client = Client::connect(ClientOptions::new(endpoints))?;
//! client.put(b"job/42/state", b"running")?;
//! let kv = client.get(b"job/42/state")?.expect("just written");
//! assert_eq!(kv.value, b"running");
//! # Ok::<(), aurora::client::ClientError>(())
//! ```
//!
//! - **Leader discovery**: the client starts at the first reachable endpoint and follows
//!   `NotLeader` hints (adding the leader's address to its list if it was not there); on
//!   `NoLeader`, a broken connection or a node that stays silent for `attempt_timeout` it moves to
//!   the next endpoint after a short capped backoff.
//! - **Exactly-once writes**: the first write registers a session; every write carries
//!   `(client_id, seq)` fixed at submission, so re-sending it after a failover cannot apply it
//!   twice (see `session.rs`).
//! - **Timeouts**: each request ends at `request_timeout` whatever happens, with
//!   [`ClientError::Timeout`] naming the last problem seen; the server is told the same deadline.
//! - **Pipelining**: [`Client::submit`] / [`Client::wait_any`] keep up to `max_in_flight`
//!   requests on the wire (what `aurora bench` uses); the blocking methods are submit + wait.
//! - **Watches**: [`Watch`] streams changes on its own connection and resumes after failover
//!   without losing or repeating events.
//! - Every store operation has a typed method ([`ops`]): get/put/delete/range/txn/compact, leases,
//!   locks, elections, barriers, counters, and [`Client::status`].

mod connection;
mod dispatch;
mod error;
pub mod ops;
mod options;
mod session;
mod watch;

pub use crate::server::protocol::{Consistency, NodeRole, NodeStatus};
pub use dispatch::{Client, StoreResult, Ticket};
pub use error::ClientError;
pub use options::{parse_endpoints, ClientOptions, MAX_ENDPOINTS};
pub use watch::Watch;

#[cfg(test)]
mod tests;
