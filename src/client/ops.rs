//! Typed store operations on [`Client`]: one method per thing the store can do, each a thin
//! wrapper over [`Client::call`] that checks the reply has the expected kind.

use std::time::Duration;

use super::dispatch::Client;
use super::error::ClientError;
use crate::store::{
    Acquire, BarrierStatus, Command, DeleteRangeReply, DeleteRangeRequest, KeyRange, KeyValue,
    LeaderInfo, LeaseId, LeaseInfo, PutReply, PutRequest, RangeReply, RangeRequest, ReadRequest,
    Reply, RevokeReason, TxnReply, TxnRequest, NO_LEASE,
};

fn unexpected(expected: &'static str, got: Reply) -> ClientError {
    ClientError::UnexpectedReply {
        expected,
        got: format!("{got:?}"),
    }
}

/// A granted lock or won election: the fencing token (the revision of the grant) to hand to
/// whatever the lock protects.
fn granted(expected: &'static str, reply: Reply) -> Result<u64, ClientError> {
    match reply {
        Reply::Lock(Acquire::Granted { token }) | Reply::Campaign(Acquire::Granted { token }) => {
            Ok(token)
        }
        other => Err(unexpected(expected, other)),
    }
}

impl Client {
    /// The latest value of `key`, if it exists.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<KeyValue>, ClientError> {
        let (_, reply) = self.range(RangeRequest::latest(KeyRange::single(key)))?;
        Ok(reply.kvs.into_iter().next())
    }

    /// Reads a key range; returns the store revision and the reply.
    pub fn range(&mut self, request: RangeRequest) -> Result<(u64, RangeReply), ClientError> {
        match self.call(Command::Read(ReadRequest::Range(request)))? {
            (revision, Reply::Range(r)) => Ok((revision, r)),
            (_, other) => Err(unexpected("a range reply", other)),
        }
    }

    /// Writes `value` at `key`; returns the revision of the write.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<u64, ClientError> {
        Ok(self.put_request(PutRequest::new(key, value))?.0)
    }

    pub fn put_request(&mut self, request: PutRequest) -> Result<(u64, PutReply), ClientError> {
        match self.call(Command::Put(request))? {
            (revision, Reply::Put(r)) => Ok((revision, r)),
            (_, other) => Err(unexpected("a put reply", other)),
        }
    }

    pub fn delete(
        &mut self,
        request: DeleteRangeRequest,
    ) -> Result<(u64, DeleteRangeReply), ClientError> {
        match self.call(Command::DeleteRange(request))? {
            (revision, Reply::DeleteRange(r)) => Ok((revision, r)),
            (_, other) => Err(unexpected("a delete reply", other)),
        }
    }

    pub fn txn(&mut self, request: TxnRequest) -> Result<(u64, TxnReply), ClientError> {
        match self.call(Command::Txn(request))? {
            (revision, Reply::Txn(r)) => Ok((revision, r)),
            (_, other) => Err(unexpected("a txn reply", other)),
        }
    }

    /// Forgets history before `revision`.
    pub fn compact(&mut self, revision: u64) -> Result<(), ClientError> {
        match self.call(Command::Compact { revision })? {
            (_, Reply::Compacted) => Ok(()),
            (_, other) => Err(unexpected("a compaction", other)),
        }
    }

    /// Grants a lease of `ttl_ms`; returns its id.
    pub fn lease_grant(&mut self, ttl_ms: u64) -> Result<LeaseId, ClientError> {
        match self.call(Command::LeaseGrant {
            id: NO_LEASE,
            ttl_ms,
        })? {
            (_, Reply::LeaseGranted { id, .. }) => Ok(id),
            (_, other) => Err(unexpected("a lease grant", other)),
        }
    }

    /// Renews a lease on the leader; returns its TTL.
    pub fn lease_keep_alive(&mut self, id: LeaseId) -> Result<u64, ClientError> {
        match self.call(Command::Read(ReadRequest::LeaseKeepAlive { id }))? {
            (_, Reply::LeaseAlive { ttl_ms, .. }) => Ok(ttl_ms),
            (_, other) => Err(unexpected("a lease keep-alive", other)),
        }
    }

    /// Revokes a lease; returns how many keys vanished with it.
    pub fn lease_revoke(&mut self, id: LeaseId) -> Result<u64, ClientError> {
        match self.call(Command::LeaseRevoke {
            id,
            reason: RevokeReason::Revoked,
        })? {
            (_, Reply::LeaseRevoked { keys_deleted }) => Ok(keys_deleted),
            (_, other) => Err(unexpected("a lease revocation", other)),
        }
    }

    /// A lease's granted TTL and, with `keys`, the keys attached to it.
    pub fn lease_time_to_live(
        &mut self,
        id: LeaseId,
        keys: bool,
    ) -> Result<(u64, Vec<Vec<u8>>), ClientError> {
        match self.call(Command::Read(ReadRequest::LeaseTimeToLive { id, keys }))? {
            (_, Reply::LeaseTimeToLive { ttl_ms, keys, .. }) => Ok((ttl_ms, keys)),
            (_, other) => Err(unexpected("a lease TTL", other)),
        }
    }

    pub fn leases(&mut self) -> Result<Vec<LeaseInfo>, ClientError> {
        match self.call(Command::Read(ReadRequest::Leases))? {
            (_, Reply::Leases(l)) => Ok(l),
            (_, other) => Err(unexpected("a lease list", other)),
        }
    }

    /// Acquires lock `name` for `lease`, waiting up to `wait` behind other holders; returns the
    /// fencing token.
    pub fn lock(
        &mut self,
        name: &[u8],
        lease: LeaseId,
        wait: Duration,
    ) -> Result<u64, ClientError> {
        let command = Command::Lock {
            name: name.to_vec(),
            lease,
        };
        granted("a lock grant", self.call_waiting(command, wait)?.1)
    }

    pub fn unlock(&mut self, name: &[u8], token: u64) -> Result<(), ClientError> {
        match self.call(Command::Unlock {
            name: name.to_vec(),
            token,
        })? {
            (_, Reply::Unlocked) => Ok(()),
            (_, other) => Err(unexpected("an unlock", other)),
        }
    }

    /// Runs for leader of election `name`, waiting up to `wait`; returns the leadership token.
    pub fn campaign(
        &mut self,
        name: &[u8],
        lease: LeaseId,
        value: &[u8],
        wait: Duration,
    ) -> Result<u64, ClientError> {
        let command = Command::Campaign {
            name: name.to_vec(),
            lease,
            value: value.to_vec(),
        };
        granted("an election win", self.call_waiting(command, wait)?.1)
    }

    pub fn proclaim(&mut self, name: &[u8], token: u64, value: &[u8]) -> Result<(), ClientError> {
        match self.call(Command::Proclaim {
            name: name.to_vec(),
            token,
            value: value.to_vec(),
        })? {
            (_, Reply::Proclaimed) => Ok(()),
            (_, other) => Err(unexpected("a proclamation", other)),
        }
    }

    pub fn resign(&mut self, name: &[u8], token: u64) -> Result<(), ClientError> {
        match self.call(Command::Resign {
            name: name.to_vec(),
            token,
        })? {
            (_, Reply::Resigned) => Ok(()),
            (_, other) => Err(unexpected("a resignation", other)),
        }
    }

    /// The current leader of election `name`.
    pub fn leader(&mut self, name: &[u8]) -> Result<LeaderInfo, ClientError> {
        match self.call(Command::Read(ReadRequest::Leader {
            name: name.to_vec(),
        }))? {
            (_, Reply::Leader(l)) => Ok(l),
            (_, other) => Err(unexpected("an election leader", other)),
        }
    }

    /// Arrives at barrier `name` of `n` members and waits (up to `wait`) until all have arrived;
    /// returns the generation released.
    pub fn barrier(
        &mut self,
        name: &[u8],
        n: u32,
        lease: LeaseId,
        wait: Duration,
    ) -> Result<u64, ClientError> {
        let command = Command::Arrive {
            name: name.to_vec(),
            n,
            lease,
        };
        match self.call_waiting(command, wait)?.1 {
            Reply::Barrier(BarrierStatus::Released { generation }) => Ok(generation),
            other => Err(unexpected("a barrier release", other)),
        }
    }

    /// Adds `delta` to counter `name`; returns the value before.
    pub fn fetch_add(&mut self, name: &[u8], delta: i64) -> Result<i64, ClientError> {
        match self.call(Command::FetchAdd {
            name: name.to_vec(),
            delta,
        })? {
            (_, Reply::FetchAdd { previous }) => Ok(previous),
            (_, other) => Err(unexpected("a fetch-add", other)),
        }
    }

    pub fn counter(&mut self, name: &[u8]) -> Result<i64, ClientError> {
        match self.call(Command::Read(ReadRequest::Counter {
            name: name.to_vec(),
        }))? {
            (_, Reply::Counter { value }) => Ok(value),
            (_, other) => Err(unexpected("a counter value", other)),
        }
    }
}
