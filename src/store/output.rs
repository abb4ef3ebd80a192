//! What applying one log entry produced, for the server to deliver.

use super::command::{ClientId, Event, LeaderInfo, LeaseId, Response};
use super::error::CodecError;

/// Filled by [`super::Store::apply`]; reuse one across entries (it is cleared on each apply, so
/// its vectors keep their capacity).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyOutput {
    /// The entry's log index.
    pub index: u64,
    /// The answer to the request in this entry, for the client `(client_id, seq)` (sessionless
    /// requests have client 0 and the caller's `seq`). `None` for an empty entry (a leader's
    /// no-op) or one that did not decode.
    pub response: Option<Addressed>,
    /// Set when the entry's bytes are not a valid request (a server validates before proposing,
    /// so this means version skew or a bug). Every replica rejects it identically; nothing changed.
    pub rejected: Option<CodecError>,
    /// Requests waiting elsewhere that this entry completed, and lease / election changes.
    pub notifications: Vec<Notification>,
    /// The key changes of this entry, in order, all at one revision: exactly what
    /// [`super::Store::events_since`] will list for that revision.
    pub events: Vec<Event>,
}

impl ApplyOutput {
    pub(super) fn reset(&mut self, index: u64) {
        self.index = index;
        self.response = None;
        self.rejected = None;
        self.notifications.clear();
        self.events.clear();
    }
}

/// A response and the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub client_id: ClientId,
    pub seq: u64,
    pub response: Response,
}

/// Something the server must act on besides the entry's own response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A request that was answered "waiting" (a queued [`super::Command::Lock`] or
    /// [`super::Command::Campaign`], a waiting [`super::Command::Arrive`]) is now final: granted
    /// with its fencing token, released, or failed (lease revoked, barrier broken). Deliver
    /// `response` to `(client_id, seq)` exactly like an entry's response; the session cache already
    /// holds it for retries.
    Completed(Addressed),
    /// A lease was granted: the leader starts its deadline at `ttl_ms` from now.
    LeaseGranted { id: LeaseId, ttl_ms: u64 },
    /// A lease is gone: the leader drops its deadline.
    LeaseRevoked { id: LeaseId },
    /// Election `name` has a new leader, a new value, or (`None`) no leader: for observers.
    LeaderChanged {
        name: Vec<u8>,
        leader: Option<LeaderInfo>,
    },
}
