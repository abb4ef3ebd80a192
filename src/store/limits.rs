//! The bounds of the store, and what each piece of state costs against the byte quota.
//!
//! Limits change what `apply` answers (a request over a limit fails), so they are part of the
//! replicated state: every voter must bootstrap the cluster with the same [`StoreLimits`], and a
//! snapshot carries them, so a node that restores one adopts the limits it was taken under.

use thiserror::Error;

/// A [`StoreLimits`] value the store cannot work with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("store limit {name} = {value} is invalid: it must be at least 1")]
pub struct LimitsError {
    pub name: &'static str,
    pub value: u64,
}

/// Every bound the store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreLimits {
    /// Longest key, lock, election, barrier or counter name.
    pub max_key_bytes: u32,
    /// Longest value (also election values).
    pub max_value_bytes: u32,
    /// Most compares, and most ops per branch, in one transaction (etcd's `--max-txn-ops`).
    pub max_txn_ops: u32,
    /// The byte quota over all replicated data (see [`cost`]); etcd's `--quota-backend-bytes`.
    pub max_store_bytes: u64,
    /// Most live leases.
    pub max_leases: u32,
    /// Longest lease TTL.
    pub max_lease_ttl_ms: u64,
    /// Most waiters queued behind the holder of one lock or election.
    pub max_queue_waiters: u32,
    /// Largest barrier `n`.
    pub max_barrier_members: u32,
    /// Most client sessions; registering one more evicts the least recently active.
    pub max_sessions: u32,
    /// Most cached responses per session; older completed ones are evicted first.
    pub max_session_responses: u32,
    /// Most encoded bytes of cached responses per session.
    pub max_session_response_bytes: u64,
}

impl StoreLimits {
    /// Checks the limits a store needs to be at least 1 (a key, a lease TTL, a barrier member, a
    /// session). Configuration loading calls this; [`super::Store::new`] insists on it.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let at_least_one = [
            ("max_key_bytes", u64::from(self.max_key_bytes)),
            ("max_lease_ttl_ms", self.max_lease_ttl_ms),
            ("max_barrier_members", u64::from(self.max_barrier_members)),
            ("max_sessions", u64::from(self.max_sessions)),
        ];
        match at_least_one.into_iter().find(|&(_, value)| value == 0) {
            Some((name, value)) => Err(LimitsError { name, value }),
            None => Ok(()),
        }
    }
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 4096,
            max_value_bytes: 1024 * 1024,
            max_txn_ops: 128,
            max_store_bytes: 2 * 1024 * 1024 * 1024,
            max_leases: 1 << 20,
            max_lease_ttl_ms: 7 * 24 * 3600 * 1000,
            max_queue_waiters: 4096,
            max_barrier_members: 1 << 20,
            max_sessions: 1 << 16,
            max_session_responses: 256,
            max_session_response_bytes: 64 * 1024,
        }
    }
}

/// What each piece of replicated state costs against [`StoreLimits::max_store_bytes`]: its bytes
/// plus a fixed overhead, so that even empty values and names use quota and nothing grows for free.
/// Sessions are not charged: they are bounded by count and bytes on their own.
pub mod cost {
    /// Fixed overhead charged per stored item.
    pub const OVERHEAD_BYTES: u64 = 32;

    /// One retained revision of a key (a put or a deletion's tombstone, whose value is empty).
    pub fn key_revision(key: &[u8], value: &[u8]) -> u64 {
        OVERHEAD_BYTES + key.len() as u64 + value.len() as u64
    }

    /// One live lease.
    pub const LEASE: u64 = OVERHEAD_BYTES;

    /// One holder or waiter of a lock or election (with its value for elections).
    pub fn queue_entry(name: &[u8], value: &[u8]) -> u64 {
        OVERHEAD_BYTES + name.len() as u64 + value.len() as u64
    }

    /// One member waiting at a barrier.
    pub fn barrier_member(name: &[u8]) -> u64 {
        OVERHEAD_BYTES + name.len() as u64
    }

    /// One counter with a non-zero value (a counter at 0 is not stored).
    pub fn counter(name: &[u8]) -> u64 {
        OVERHEAD_BYTES + name.len() as u64 + 8
    }
}
