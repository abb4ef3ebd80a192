//! What a client call can fail with. Each message names the cause and what to do about it, because
//! the CLI prints them as they are.

use thiserror::Error;

use crate::server::protocol::{CancelReason, ServerError};
use crate::store::{CodecError, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    #[error(
        "no endpoints given; pass --endpoints HOST:PORT[,HOST:PORT...] or set AURORA_ENDPOINTS"
    )]
    NoEndpoints,
    #[error("endpoint {text:?} is not HOST:PORT ({reason}); write it like 127.0.0.1:7102")]
    BadEndpoint { text: String, reason: String },
    #[error(
        "no node reachable at {endpoints} (last error: {last}); start the cluster (`aurora up`) or \
         fix --endpoints / AURORA_ENDPOINTS"
    )]
    Unreachable { endpoints: String, last: String },
    #[error(
        "no answer within {waited_ms} ms (last problem: {last}); the cluster may have no leader or \
         be overloaded: check `aurora status`. A write may still apply; retrying it in the same \
         session applies it at most once"
    )]
    Timeout { waited_ms: u64, last: String },
    /// A refusal from the server that retrying cannot fix (too large, bad request, compacted).
    #[error("{0}")]
    Server(ServerError),
    /// The state machine's answer (a failed precondition, a missing lease, ...).
    #[error("{0}")]
    Store(StoreError),
    #[error("the request is invalid: {0}")]
    Invalid(CodecError),
    #[error(
        "node {addr} sent a malformed response ({reason}); run the same Aurora release on clients \
         and servers"
    )]
    Protocol { addr: String, reason: String },
    #[error(
        "endpoints belong to different clusters (cluster id {first:#x} and {other:#x} at {addr}); \
         list only the nodes of one cluster in --endpoints"
    )]
    ClusterMismatch {
        first: u64,
        other: u64,
        addr: String,
    },
    #[error("the watch ended: {}", cancel_text(.0))]
    WatchCanceled(CancelReason),
    #[error("server answered {got} where {expected} was expected; run the same Aurora release on clients and servers")]
    UnexpectedReply { expected: &'static str, got: String },
}

fn cancel_text(reason: &CancelReason) -> String {
    match reason {
        CancelReason::Requested => "cancelled on request".to_owned(),
        CancelReason::Compacted { compact_revision } => format!(
            "history up to revision {compact_revision} is compacted; read the current state and \
             watch again from a later revision"
        ),
        CancelReason::SlowConsumer => {
            "the node dropped it because events were not read fast enough; read faster or watch a \
             narrower range"
                .to_owned()
        }
    }
}

impl ClientError {
    /// Whether trying the same request later (or elsewhere) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Timeout { .. }
        )
    }
}
