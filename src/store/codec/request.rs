//! Requests: encoding, decoding and the stateless validation every decoded request passes.

use super::primitive::{Reader, Sink};
use super::{begin, expect_header, KIND_REQUEST};
use crate::store::command::{
    Command, Compare, CompareOp, CompareTarget, DeleteRangeRequest, KeyRange, PutRequest,
    RangeRequest, ReadRequest, Request, RevokeReason, SessionHeader, TxnOp, TxnRequest, NO_LEASE,
    NO_SESSION,
};
use crate::store::error::{CodecError, InvalidRequest};
use crate::store::limits::StoreLimits;

mod tag {
    pub const RANGE: u8 = 0x01;
    pub const LEASE_KEEP_ALIVE: u8 = 0x02;
    pub const LEASE_TIME_TO_LIVE: u8 = 0x03;
    pub const LEASES: u8 = 0x04;
    pub const LEADER: u8 = 0x05;
    pub const COUNTER: u8 = 0x06;
    pub const PUT: u8 = 0x10;
    pub const DELETE_RANGE: u8 = 0x11;
    pub const TXN: u8 = 0x12;
    pub const COMPACT: u8 = 0x13;
    pub const LEASE_GRANT: u8 = 0x20;
    pub const LEASE_REVOKE: u8 = 0x21;
    pub const LOCK: u8 = 0x30;
    pub const UNLOCK: u8 = 0x31;
    pub const CAMPAIGN: u8 = 0x32;
    pub const PROCLAIM: u8 = 0x33;
    pub const RESIGN: u8 = 0x34;
    pub const ARRIVE: u8 = 0x40;
    pub const FETCH_ADD: u8 = 0x41;
    pub const REGISTER_SESSION: u8 = 0x50;
    pub const CLOSE_SESSION: u8 = 0x51;
}

pub(super) fn put_request(out: &mut impl Sink, request: &Request) {
    begin(out, KIND_REQUEST);
    out.u64(request.session.client_id);
    out.u64(request.session.seq);
    out.u64(request.session.acked_seq);
    match &request.command {
        Command::Read(read) => put_read(out, read),
        Command::Put(put) => {
            out.u8(tag::PUT);
            put_put(out, put);
        }
        Command::DeleteRange(delete) => {
            out.u8(tag::DELETE_RANGE);
            put_delete(out, delete);
        }
        Command::Txn(txn) => {
            out.u8(tag::TXN);
            put_txn(out, txn);
        }
        Command::Compact { revision } => {
            out.u8(tag::COMPACT);
            out.u64(*revision);
        }
        Command::LeaseGrant { id, ttl_ms } => {
            out.u8(tag::LEASE_GRANT);
            out.u64(*id);
            out.u64(*ttl_ms);
        }
        Command::LeaseRevoke { id, reason } => {
            out.u8(tag::LEASE_REVOKE);
            out.u64(*id);
            out.u8(match reason {
                RevokeReason::Revoked => 0,
                RevokeReason::Expired => 1,
            });
        }
        Command::Lock { name, lease } => {
            out.u8(tag::LOCK);
            out.bytes(name);
            out.u64(*lease);
        }
        Command::Unlock { name, token } => {
            out.u8(tag::UNLOCK);
            out.bytes(name);
            out.u64(*token);
        }
        Command::Campaign { name, lease, value } => {
            out.u8(tag::CAMPAIGN);
            out.bytes(name);
            out.u64(*lease);
            out.bytes(value);
        }
        Command::Proclaim { name, token, value } => {
            out.u8(tag::PROCLAIM);
            out.bytes(name);
            out.u64(*token);
            out.bytes(value);
        }
        Command::Resign { name, token } => {
            out.u8(tag::RESIGN);
            out.bytes(name);
            out.u64(*token);
        }
        Command::Arrive { name, n, lease } => {
            out.u8(tag::ARRIVE);
            out.bytes(name);
            out.u32(*n);
            out.u64(*lease);
        }
        Command::FetchAdd { name, delta } => {
            out.u8(tag::FETCH_ADD);
            out.bytes(name);
            out.i64(*delta);
        }
        Command::RegisterSession => out.u8(tag::REGISTER_SESSION),
        Command::CloseSession => out.u8(tag::CLOSE_SESSION),
    }
}

fn put_read(out: &mut impl Sink, read: &ReadRequest) {
    match read {
        ReadRequest::Range(range) => {
            out.u8(tag::RANGE);
            put_range(out, range);
        }
        ReadRequest::LeaseKeepAlive { id } => {
            out.u8(tag::LEASE_KEEP_ALIVE);
            out.u64(*id);
        }
        ReadRequest::LeaseTimeToLive { id, keys } => {
            out.u8(tag::LEASE_TIME_TO_LIVE);
            out.u64(*id);
            out.bool(*keys);
        }
        ReadRequest::Leases => out.u8(tag::LEASES),
        ReadRequest::Leader { name } => {
            out.u8(tag::LEADER);
            out.bytes(name);
        }
        ReadRequest::Counter { name } => {
            out.u8(tag::COUNTER);
            out.bytes(name);
        }
    }
}

fn put_key_range(out: &mut impl Sink, range: &KeyRange) {
    out.bytes(&range.key);
    out.bytes(&range.range_end);
}

fn put_range(out: &mut impl Sink, range: &RangeRequest) {
    put_key_range(out, &range.range);
    out.u64(range.revision);
    out.u64(range.limit);
    out.bool(range.keys_only);
    out.bool(range.count_only);
}

fn put_put(out: &mut impl Sink, put: &PutRequest) {
    out.bytes(&put.key);
    out.bytes(&put.value);
    out.u64(put.lease);
    out.bool(put.prev_kv);
    out.bool(put.ignore_value);
    out.bool(put.ignore_lease);
}

fn put_delete(out: &mut impl Sink, delete: &DeleteRangeRequest) {
    put_key_range(out, &delete.range);
    out.bool(delete.prev_kv);
}

fn put_txn(out: &mut impl Sink, txn: &TxnRequest) {
    out.len(txn.compare.len());
    for compare in &txn.compare {
        out.bytes(&compare.key);
        out.u8(match compare.op {
            CompareOp::Equal => 0,
            CompareOp::NotEqual => 1,
            CompareOp::Less => 2,
            CompareOp::Greater => 3,
        });
        match &compare.target {
            CompareTarget::Value(value) => {
                out.u8(0);
                out.bytes(value);
            }
            CompareTarget::Version(v) => {
                out.u8(1);
                out.u64(*v);
            }
            CompareTarget::CreateRevision(v) => {
                out.u8(2);
                out.u64(*v);
            }
            CompareTarget::ModRevision(v) => {
                out.u8(3);
                out.u64(*v);
            }
            CompareTarget::Lease(v) => {
                out.u8(4);
                out.u64(*v);
            }
        }
    }
    for branch in [&txn.success, &txn.failure] {
        out.len(branch.len());
        for op in branch {
            match op {
                TxnOp::Range(range) => {
                    out.u8(tag::RANGE);
                    put_range(out, range);
                }
                TxnOp::Put(put) => {
                    out.u8(tag::PUT);
                    put_put(out, put);
                }
                TxnOp::DeleteRange(delete) => {
                    out.u8(tag::DELETE_RANGE);
                    put_delete(out, delete);
                }
            }
        }
    }
}

/// Decodes and validates one request; see [`super::decode_request`].
pub(super) fn get_request(bytes: &[u8], limits: &StoreLimits) -> Result<Request, CodecError> {
    let mut r = Reader::new(bytes);
    expect_header(&mut r, KIND_REQUEST, "request")?;
    let session = SessionHeader {
        client_id: r.u64("client_id")?,
        seq: r.u64("seq")?,
        acked_seq: r.u64("acked_seq")?,
    };
    let d = Decoder { limits };
    let command = d.command(&mut r)?;
    r.finish()?;
    let request = Request { session, command };
    validate(&request, limits)?;
    Ok(request)
}

/// Reads fields with the size limits applied as they are read, so nothing oversize is allocated.
struct Decoder<'l> {
    limits: &'l StoreLimits,
}

impl Decoder<'_> {
    fn key(&self, r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, CodecError> {
        r.bytes(what, self.limits.max_key_bytes as usize)
    }

    fn value(&self, r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, CodecError> {
        r.bytes(what, self.limits.max_value_bytes as usize)
    }

    fn command(&self, r: &mut Reader<'_>) -> Result<Command, CodecError> {
        let tag = r.u8("command tag")?;
        Ok(match tag {
            tag::RANGE => Command::Read(ReadRequest::Range(self.range(r)?)),
            tag::LEASE_KEEP_ALIVE => Command::Read(ReadRequest::LeaseKeepAlive {
                id: r.u64("lease id")?,
            }),
            tag::LEASE_TIME_TO_LIVE => Command::Read(ReadRequest::LeaseTimeToLive {
                id: r.u64("lease id")?,
                keys: r.bool("keys flag")?,
            }),
            tag::LEASES => Command::Read(ReadRequest::Leases),
            tag::LEADER => Command::Read(ReadRequest::Leader {
                name: self.key(r, "election name")?,
            }),
            tag::COUNTER => Command::Read(ReadRequest::Counter {
                name: self.key(r, "counter name")?,
            }),
            tag::PUT => Command::Put(self.put(r)?),
            tag::DELETE_RANGE => Command::DeleteRange(self.delete(r)?),
            tag::TXN => Command::Txn(self.txn(r)?),
            tag::COMPACT => Command::Compact {
                revision: r.u64("compact revision")?,
            },
            tag::LEASE_GRANT => Command::LeaseGrant {
                id: r.u64("lease id")?,
                ttl_ms: r.u64("ttl_ms")?,
            },
            tag::LEASE_REVOKE => Command::LeaseRevoke {
                id: r.u64("lease id")?,
                reason: match r.u8("revoke reason")? {
                    0 => RevokeReason::Revoked,
                    1 => RevokeReason::Expired,
                    tag => {
                        return Err(CodecError::UnknownTag {
                            what: "revoke reason",
                            tag,
                        })
                    }
                },
            },
            tag::LOCK => Command::Lock {
                name: self.key(r, "lock name")?,
                lease: r.u64("lease id")?,
            },
            tag::UNLOCK => Command::Unlock {
                name: self.key(r, "lock name")?,
                token: r.u64("token")?,
            },
            tag::CAMPAIGN => Command::Campaign {
                name: self.key(r, "election name")?,
                lease: r.u64("lease id")?,
                value: self.value(r, "election value")?,
            },
            tag::PROCLAIM => Command::Proclaim {
                name: self.key(r, "election name")?,
                token: r.u64("token")?,
                value: self.value(r, "election value")?,
            },
            tag::RESIGN => Command::Resign {
                name: self.key(r, "election name")?,
                token: r.u64("token")?,
            },
            tag::ARRIVE => Command::Arrive {
                name: self.key(r, "barrier name")?,
                n: r.u32("barrier n")?,
                lease: r.u64("lease id")?,
            },
            tag::FETCH_ADD => Command::FetchAdd {
                name: self.key(r, "counter name")?,
                delta: r.i64("delta")?,
            },
            tag::REGISTER_SESSION => Command::RegisterSession,
            tag::CLOSE_SESSION => Command::CloseSession,
            tag => {
                return Err(CodecError::UnknownTag {
                    what: "command",
                    tag,
                })
            }
        })
    }

    fn key_range(&self, r: &mut Reader<'_>) -> Result<KeyRange, CodecError> {
        Ok(KeyRange {
            key: self.key(r, "range key")?,
            range_end: self.key(r, "range end")?,
        })
    }

    fn range(&self, r: &mut Reader<'_>) -> Result<RangeRequest, CodecError> {
        Ok(RangeRequest {
            range: self.key_range(r)?,
            revision: r.u64("range revision")?,
            limit: r.u64("range limit")?,
            keys_only: r.bool("keys_only")?,
            count_only: r.bool("count_only")?,
        })
    }

    fn put(&self, r: &mut Reader<'_>) -> Result<PutRequest, CodecError> {
        Ok(PutRequest {
            key: self.key(r, "put key")?,
            value: self.value(r, "put value")?,
            lease: r.u64("lease id")?,
            prev_kv: r.bool("prev_kv")?,
            ignore_value: r.bool("ignore_value")?,
            ignore_lease: r.bool("ignore_lease")?,
        })
    }

    fn delete(&self, r: &mut Reader<'_>) -> Result<DeleteRangeRequest, CodecError> {
        Ok(DeleteRangeRequest {
            range: self.key_range(r)?,
            prev_kv: r.bool("prev_kv")?,
        })
    }

    fn txn(&self, r: &mut Reader<'_>) -> Result<TxnRequest, CodecError> {
        let max_ops = self.limits.max_txn_ops as usize;
        let compares = r.count("txn compares", max_ops)?;
        let mut compare = Vec::new();
        for _ in 0..compares {
            let key = self.key(r, "compare key")?;
            let op = match r.u8("compare op")? {
                0 => CompareOp::Equal,
                1 => CompareOp::NotEqual,
                2 => CompareOp::Less,
                3 => CompareOp::Greater,
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "compare op",
                        tag,
                    })
                }
            };
            let target = match r.u8("compare target")? {
                0 => CompareTarget::Value(self.value(r, "compare value")?),
                1 => CompareTarget::Version(r.u64("compare version")?),
                2 => CompareTarget::CreateRevision(r.u64("compare create revision")?),
                3 => CompareTarget::ModRevision(r.u64("compare mod revision")?),
                4 => CompareTarget::Lease(r.u64("compare lease")?),
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "compare target",
                        tag,
                    })
                }
            };
            compare.push(Compare { key, op, target });
        }
        let success = self.branch(r, "txn success ops")?;
        let failure = self.branch(r, "txn failure ops")?;
        Ok(TxnRequest {
            compare,
            success,
            failure,
        })
    }

    fn branch(&self, r: &mut Reader<'_>, what: &'static str) -> Result<Vec<TxnOp>, CodecError> {
        let count = r.count(what, self.limits.max_txn_ops as usize)?;
        let mut ops = Vec::new();
        for _ in 0..count {
            ops.push(match r.u8("txn op tag")? {
                tag::RANGE => TxnOp::Range(self.range(r)?),
                tag::PUT => TxnOp::Put(self.put(r)?),
                tag::DELETE_RANGE => TxnOp::DeleteRange(self.delete(r)?),
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "txn op",
                        tag,
                    })
                }
            });
        }
        Ok(ops)
    }
}

/// The stateless rules of a request (sizes are checked while decoding). Clients may call it
/// before sending; the server's decoder always does, so the log holds only valid requests.
pub fn validate(request: &Request, limits: &StoreLimits) -> Result<(), InvalidRequest> {
    let SessionHeader {
        client_id,
        seq,
        acked_seq,
    } = request.session;
    let header_ok = if client_id == NO_SESSION {
        acked_seq == 0
    } else {
        seq >= 1 && acked_seq < seq
    };
    if !header_ok {
        return Err(InvalidRequest::SessionHeader {
            client_id,
            seq,
            acked_seq,
        });
    }
    let nonzero = |v: u64, what| {
        if v == 0 {
            Err(InvalidRequest::Zero(what))
        } else {
            Ok(())
        }
    };
    let name = |n: &[u8]| {
        if n.is_empty() {
            Err(InvalidRequest::EmptyKey)
        } else {
            Ok(())
        }
    };
    match &request.command {
        Command::Read(read) => match read {
            ReadRequest::Range(range) => validate_range(range),
            ReadRequest::LeaseKeepAlive { id } | ReadRequest::LeaseTimeToLive { id, .. } => {
                nonzero(*id, "lease id")
            }
            ReadRequest::Leases => Ok(()),
            ReadRequest::Leader { name: n } | ReadRequest::Counter { name: n } => name(n),
        },
        Command::Put(put) => validate_put(put),
        Command::DeleteRange(delete) => validate_key_range(&delete.range),
        Command::Txn(txn) => validate_txn(txn),
        Command::Compact { revision } => nonzero(*revision, "compact revision"),
        Command::LeaseGrant { ttl_ms, .. } => {
            if (1..=limits.max_lease_ttl_ms).contains(ttl_ms) {
                Ok(())
            } else {
                Err(InvalidRequest::TtlOutOfRange {
                    ttl_ms: *ttl_ms,
                    max_ttl_ms: limits.max_lease_ttl_ms,
                })
            }
        }
        Command::LeaseRevoke { id, .. } => nonzero(*id, "lease id"),
        Command::Lock { name: n, lease } | Command::Campaign { name: n, lease, .. } => {
            name(n)?;
            nonzero(*lease, "lease id")
        }
        Command::Unlock { name: n, token }
        | Command::Resign { name: n, token }
        | Command::Proclaim { name: n, token, .. } => {
            name(n)?;
            nonzero(*token, "token")
        }
        Command::Arrive {
            name: n,
            n: size,
            lease,
        } => {
            name(n)?;
            nonzero(*lease, "lease id")?;
            if (1..=limits.max_barrier_members).contains(size) {
                Ok(())
            } else {
                Err(InvalidRequest::BarrierSizeOutOfRange {
                    n: *size,
                    max: limits.max_barrier_members,
                })
            }
        }
        Command::FetchAdd { name: n, .. } => name(n),
        Command::RegisterSession => {
            if client_id == NO_SESSION {
                Ok(())
            } else {
                Err(InvalidRequest::NeedsNoSession("RegisterSession"))
            }
        }
        Command::CloseSession => {
            if client_id == NO_SESSION {
                Err(InvalidRequest::NeedsSession("CloseSession"))
            } else {
                Ok(())
            }
        }
    }
}

/// A single key must be named; a range may start at the empty key.
fn validate_key_range(range: &KeyRange) -> Result<(), InvalidRequest> {
    if range.is_single() && range.key.is_empty() {
        Err(InvalidRequest::EmptyKey)
    } else {
        Ok(())
    }
}

fn validate_range(range: &RangeRequest) -> Result<(), InvalidRequest> {
    validate_key_range(&range.range)
}

fn validate_put(put: &PutRequest) -> Result<(), InvalidRequest> {
    if put.key.is_empty() {
        return Err(InvalidRequest::EmptyKey);
    }
    if (put.ignore_value && !put.value.is_empty()) || (put.ignore_lease && put.lease != NO_LEASE) {
        return Err(InvalidRequest::IgnoreWithValue);
    }
    Ok(())
}

/// etcd's rules: compares name a key; within a branch no key is put twice, and no put lands
/// inside a range the same branch deletes.
fn validate_txn(txn: &TxnRequest) -> Result<(), InvalidRequest> {
    if txn.compare.iter().any(|c| c.key.is_empty()) {
        return Err(InvalidRequest::EmptyKey);
    }
    for branch in [&txn.success, &txn.failure] {
        let mut puts: Vec<&[u8]> = Vec::new();
        for op in branch {
            match op {
                TxnOp::Range(range) => validate_range(range)?,
                TxnOp::Put(put) => {
                    validate_put(put)?;
                    puts.push(&put.key);
                }
                TxnOp::DeleteRange(delete) => validate_key_range(&delete.range)?,
            }
        }
        puts.sort_unstable();
        if let Some(pair) = puts.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(InvalidRequest::DuplicateKeyInTxn {
                key: pair[0].to_vec(),
            });
        }
        for op in branch {
            if let TxnOp::DeleteRange(delete) = op {
                if let Some(key) = puts.iter().find(|key| delete.range.contains(key)) {
                    return Err(InvalidRequest::DuplicateKeyInTxn { key: key.to_vec() });
                }
            }
        }
    }
    Ok(())
}
