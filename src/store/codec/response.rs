//! Responses and watch events: encoding and decoding. Their sizes are bounded by the bytes
//! received (a length beyond the end is a [`CodecError::Truncated`]), not by store limits, so a
//! client decodes them without knowing the server's configuration.

use super::primitive::{Reader, Sink};
use super::{begin, expect_header, KIND_EVENTS, KIND_RESPONSE};
use crate::store::command::{
    Acquire, BarrierStatus, DeleteRangeReply, Event, EventKind, KeyValue, LeaderInfo, LeaseInfo,
    OpReply, PutReply, RangeReply, Reply, Response, TxnReply,
};
use crate::store::error::{BreakReason, CodecError, StoreError};

const ANY: usize = usize::MAX;

mod tag {
    pub const RANGE: u8 = 0x01;
    pub const PUT: u8 = 0x02;
    pub const DELETE_RANGE: u8 = 0x03;
    pub const TXN: u8 = 0x04;
    pub const COMPACTED: u8 = 0x05;
    pub const LEASE_GRANTED: u8 = 0x10;
    pub const LEASE_REVOKED: u8 = 0x11;
    pub const LEASE_ALIVE: u8 = 0x12;
    pub const LEASE_TIME_TO_LIVE: u8 = 0x13;
    pub const LEASES: u8 = 0x14;
    pub const LOCK: u8 = 0x20;
    pub const UNLOCKED: u8 = 0x21;
    pub const CAMPAIGN: u8 = 0x22;
    pub const PROCLAIMED: u8 = 0x23;
    pub const RESIGNED: u8 = 0x24;
    pub const LEADER: u8 = 0x25;
    pub const BARRIER: u8 = 0x30;
    pub const FETCH_ADD: u8 = 0x31;
    pub const COUNTER: u8 = 0x32;
    pub const SESSION_REGISTERED: u8 = 0x40;
    pub const SESSION_CLOSED: u8 = 0x41;
}

mod err {
    pub const COMPACTED: u8 = 0x01;
    pub const FUTURE_REVISION: u8 = 0x02;
    pub const KEY_NOT_FOUND: u8 = 0x03;
    pub const LEASE_NOT_FOUND: u8 = 0x04;
    pub const LEASE_EXISTS: u8 = 0x05;
    pub const LEASE_REVOKED: u8 = 0x06;
    pub const TOO_MANY_LEASES: u8 = 0x07;
    pub const NO_SPACE: u8 = 0x08;
    pub const QUEUE_FULL: u8 = 0x09;
    pub const ALREADY_WAITING: u8 = 0x0a;
    pub const NOT_HOLDER: u8 = 0x0b;
    pub const NO_LEADER: u8 = 0x0c;
    pub const BARRIER_SIZE_MISMATCH: u8 = 0x0d;
    pub const BARRIER_BROKEN: u8 = 0x0e;
    pub const COUNTER_OVERFLOW: u8 = 0x0f;
    pub const SESSION_EXPIRED: u8 = 0x10;
}

pub(super) fn put_response(out: &mut impl Sink, response: &Response) {
    begin(out, KIND_RESPONSE);
    out.u64(response.revision);
    match &response.result {
        Ok(reply) => {
            out.u8(0);
            put_reply(out, reply);
        }
        Err(error) => {
            out.u8(1);
            put_error(out, error);
        }
    }
}

pub(super) fn put_events(out: &mut impl Sink, events: &[Event]) {
    begin(out, KIND_EVENTS);
    out.len(events.len());
    for event in events {
        out.u8(match event.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        put_kv(out, &event.kv);
        put_opt_kv(out, event.prev_kv.as_ref());
    }
}

fn put_kv(out: &mut impl Sink, kv: &KeyValue) {
    out.bytes(&kv.key);
    out.bytes(&kv.value);
    out.u64(kv.create_revision);
    out.u64(kv.mod_revision);
    out.u64(kv.version);
    out.u64(kv.lease);
}

fn put_opt_kv(out: &mut impl Sink, kv: Option<&KeyValue>) {
    match kv {
        None => out.u8(0),
        Some(kv) => {
            out.u8(1);
            put_kv(out, kv);
        }
    }
}

fn put_kvs(out: &mut impl Sink, kvs: &[KeyValue]) {
    out.len(kvs.len());
    for kv in kvs {
        put_kv(out, kv);
    }
}

fn put_range(out: &mut impl Sink, range: &RangeReply) {
    put_kvs(out, &range.kvs);
    out.bool(range.more);
    out.u64(range.count);
}

fn put_delete(out: &mut impl Sink, delete: &DeleteRangeReply) {
    out.u64(delete.deleted);
    put_kvs(out, &delete.prev_kvs);
}

fn put_acquire(out: &mut impl Sink, acquire: Acquire) {
    match acquire {
        Acquire::Granted { token } => {
            out.u8(0);
            out.u64(token);
        }
        Acquire::Queued { ahead } => {
            out.u8(1);
            out.u32(ahead);
        }
    }
}

fn put_reply(out: &mut impl Sink, reply: &Reply) {
    match reply {
        Reply::Range(range) => {
            out.u8(tag::RANGE);
            put_range(out, range);
        }
        Reply::Put(put) => {
            out.u8(tag::PUT);
            put_opt_kv(out, put.prev_kv.as_ref());
        }
        Reply::DeleteRange(delete) => {
            out.u8(tag::DELETE_RANGE);
            put_delete(out, delete);
        }
        Reply::Txn(txn) => {
            out.u8(tag::TXN);
            out.bool(txn.succeeded);
            out.len(txn.replies.len());
            for op in &txn.replies {
                match op {
                    OpReply::Range(range) => {
                        out.u8(tag::RANGE);
                        put_range(out, range);
                    }
                    OpReply::Put(put) => {
                        out.u8(tag::PUT);
                        put_opt_kv(out, put.prev_kv.as_ref());
                    }
                    OpReply::DeleteRange(delete) => {
                        out.u8(tag::DELETE_RANGE);
                        put_delete(out, delete);
                    }
                }
            }
        }
        Reply::Compacted => out.u8(tag::COMPACTED),
        Reply::LeaseGranted { id, ttl_ms } => {
            out.u8(tag::LEASE_GRANTED);
            out.u64(*id);
            out.u64(*ttl_ms);
        }
        Reply::LeaseRevoked { keys_deleted } => {
            out.u8(tag::LEASE_REVOKED);
            out.u64(*keys_deleted);
        }
        Reply::LeaseAlive { id, ttl_ms } => {
            out.u8(tag::LEASE_ALIVE);
            out.u64(*id);
            out.u64(*ttl_ms);
        }
        Reply::LeaseTimeToLive { id, ttl_ms, keys } => {
            out.u8(tag::LEASE_TIME_TO_LIVE);
            out.u64(*id);
            out.u64(*ttl_ms);
            out.len(keys.len());
            for key in keys {
                out.bytes(key);
            }
        }
        Reply::Leases(leases) => {
            out.u8(tag::LEASES);
            out.len(leases.len());
            for lease in leases {
                out.u64(lease.id);
                out.u64(lease.ttl_ms);
            }
        }
        Reply::Lock(acquire) => {
            out.u8(tag::LOCK);
            put_acquire(out, *acquire);
        }
        Reply::Unlocked => out.u8(tag::UNLOCKED),
        Reply::Campaign(acquire) => {
            out.u8(tag::CAMPAIGN);
            put_acquire(out, *acquire);
        }
        Reply::Proclaimed => out.u8(tag::PROCLAIMED),
        Reply::Resigned => out.u8(tag::RESIGNED),
        Reply::Leader(leader) => {
            out.u8(tag::LEADER);
            out.u64(leader.lease);
            out.u64(leader.token);
            out.bytes(&leader.value);
        }
        Reply::Barrier(status) => {
            out.u8(tag::BARRIER);
            match *status {
                BarrierStatus::Waiting {
                    generation,
                    arrived,
                    n,
                } => {
                    out.u8(0);
                    out.u64(generation);
                    out.u32(arrived);
                    out.u32(n);
                }
                BarrierStatus::Released { generation } => {
                    out.u8(1);
                    out.u64(generation);
                }
            }
        }
        Reply::FetchAdd { previous } => {
            out.u8(tag::FETCH_ADD);
            out.i64(*previous);
        }
        Reply::Counter { value } => {
            out.u8(tag::COUNTER);
            out.i64(*value);
        }
        Reply::SessionRegistered { client_id } => {
            out.u8(tag::SESSION_REGISTERED);
            out.u64(*client_id);
        }
        Reply::SessionClosed => out.u8(tag::SESSION_CLOSED),
    }
}

fn put_error(out: &mut impl Sink, error: &StoreError) {
    match error {
        StoreError::Compacted {
            requested,
            compact_revision,
        } => {
            out.u8(err::COMPACTED);
            out.u64(*requested);
            out.u64(*compact_revision);
        }
        StoreError::FutureRevision { requested, current } => {
            out.u8(err::FUTURE_REVISION);
            out.u64(*requested);
            out.u64(*current);
        }
        StoreError::KeyNotFound { key } => {
            out.u8(err::KEY_NOT_FOUND);
            out.bytes(key);
        }
        StoreError::LeaseNotFound { id } => {
            out.u8(err::LEASE_NOT_FOUND);
            out.u64(*id);
        }
        StoreError::LeaseExists { id } => {
            out.u8(err::LEASE_EXISTS);
            out.u64(*id);
        }
        StoreError::LeaseRevoked { id } => {
            out.u8(err::LEASE_REVOKED);
            out.u64(*id);
        }
        StoreError::TooManyLeases { max } => {
            out.u8(err::TOO_MANY_LEASES);
            out.u32(*max);
        }
        StoreError::NoSpace {
            needed_bytes,
            used_bytes,
            quota_bytes,
        } => {
            out.u8(err::NO_SPACE);
            out.u64(*needed_bytes);
            out.u64(*used_bytes);
            out.u64(*quota_bytes);
        }
        StoreError::QueueFull { name, capacity } => {
            out.u8(err::QUEUE_FULL);
            out.bytes(name);
            out.u32(*capacity);
        }
        StoreError::AlreadyWaiting { name, lease } => {
            out.u8(err::ALREADY_WAITING);
            out.bytes(name);
            out.u64(*lease);
        }
        StoreError::NotHolder {
            name,
            token,
            holder_token,
        } => {
            out.u8(err::NOT_HOLDER);
            out.bytes(name);
            out.u64(*token);
            out.u64(*holder_token);
        }
        StoreError::NoLeader { name } => {
            out.u8(err::NO_LEADER);
            out.bytes(name);
        }
        StoreError::BarrierSizeMismatch {
            name,
            expected,
            got,
        } => {
            out.u8(err::BARRIER_SIZE_MISMATCH);
            out.bytes(name);
            out.u32(*expected);
            out.u32(*got);
        }
        StoreError::BarrierBroken {
            name,
            generation,
            reason,
        } => {
            out.u8(err::BARRIER_BROKEN);
            out.bytes(name);
            out.u64(*generation);
            match reason {
                BreakReason::LeaseExpired { lease } => {
                    out.u8(0);
                    out.u64(*lease);
                }
                BreakReason::LeaseRevoked { lease } => {
                    out.u8(1);
                    out.u64(*lease);
                }
            }
        }
        StoreError::CounterOverflow { name, value, delta } => {
            out.u8(err::COUNTER_OVERFLOW);
            out.bytes(name);
            out.i64(*value);
            out.i64(*delta);
        }
        StoreError::SessionExpired { client_id, seq } => {
            out.u8(err::SESSION_EXPIRED);
            out.u64(*client_id);
            out.u64(*seq);
        }
    }
}

pub(super) fn get_response(bytes: &[u8]) -> Result<Response, CodecError> {
    let mut r = Reader::new(bytes);
    expect_header(&mut r, KIND_RESPONSE, "response")?;
    let revision = r.u64("response revision")?;
    let result = match r.u8("result tag")? {
        0 => Ok(get_reply(&mut r)?),
        1 => Err(get_error(&mut r)?),
        tag => {
            return Err(CodecError::UnknownTag {
                what: "result",
                tag,
            })
        }
    };
    r.finish()?;
    Ok(Response { revision, result })
}

pub(super) fn get_events(bytes: &[u8]) -> Result<Vec<Event>, CodecError> {
    let mut r = Reader::new(bytes);
    expect_header(&mut r, KIND_EVENTS, "events")?;
    let count = r.count("events", ANY)?;
    let mut events = Vec::new();
    for _ in 0..count {
        let kind = match r.u8("event kind")? {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            tag => {
                return Err(CodecError::UnknownTag {
                    what: "event kind",
                    tag,
                })
            }
        };
        events.push(Event {
            kind,
            kv: get_kv(&mut r)?,
            prev_kv: get_opt_kv(&mut r)?,
        });
    }
    r.finish()?;
    Ok(events)
}

fn get_kv(r: &mut Reader<'_>) -> Result<KeyValue, CodecError> {
    Ok(KeyValue {
        key: r.bytes("kv key", ANY)?,
        value: r.bytes("kv value", ANY)?,
        create_revision: r.u64("kv create revision")?,
        mod_revision: r.u64("kv mod revision")?,
        version: r.u64("kv version")?,
        lease: r.u64("kv lease")?,
    })
}

fn get_opt_kv(r: &mut Reader<'_>) -> Result<Option<KeyValue>, CodecError> {
    Ok(if r.bool("prev kv present")? {
        Some(get_kv(r)?)
    } else {
        None
    })
}

fn get_kvs(r: &mut Reader<'_>) -> Result<Vec<KeyValue>, CodecError> {
    let count = r.count("kvs", ANY)?;
    let mut kvs = Vec::new();
    for _ in 0..count {
        kvs.push(get_kv(r)?);
    }
    Ok(kvs)
}

fn get_range(r: &mut Reader<'_>) -> Result<RangeReply, CodecError> {
    Ok(RangeReply {
        kvs: get_kvs(r)?,
        more: r.bool("range more")?,
        count: r.u64("range count")?,
    })
}

fn get_delete(r: &mut Reader<'_>) -> Result<DeleteRangeReply, CodecError> {
    Ok(DeleteRangeReply {
        deleted: r.u64("deleted count")?,
        prev_kvs: get_kvs(r)?,
    })
}

fn get_acquire(r: &mut Reader<'_>) -> Result<Acquire, CodecError> {
    match r.u8("acquire tag")? {
        0 => Ok(Acquire::Granted {
            token: r.u64("token")?,
        }),
        1 => Ok(Acquire::Queued {
            ahead: r.u32("queued ahead")?,
        }),
        tag => Err(CodecError::UnknownTag {
            what: "acquire",
            tag,
        }),
    }
}

fn get_reply(r: &mut Reader<'_>) -> Result<Reply, CodecError> {
    Ok(match r.u8("reply tag")? {
        tag::RANGE => Reply::Range(get_range(r)?),
        tag::PUT => Reply::Put(PutReply {
            prev_kv: get_opt_kv(r)?,
        }),
        tag::DELETE_RANGE => Reply::DeleteRange(get_delete(r)?),
        tag::TXN => {
            let succeeded = r.bool("txn succeeded")?;
            let count = r.count("txn replies", ANY)?;
            let mut replies = Vec::new();
            for _ in 0..count {
                replies.push(match r.u8("txn reply tag")? {
                    tag::RANGE => OpReply::Range(get_range(r)?),
                    tag::PUT => OpReply::Put(PutReply {
                        prev_kv: get_opt_kv(r)?,
                    }),
                    tag::DELETE_RANGE => OpReply::DeleteRange(get_delete(r)?),
                    tag => {
                        return Err(CodecError::UnknownTag {
                            what: "txn reply",
                            tag,
                        })
                    }
                });
            }
            Reply::Txn(TxnReply { succeeded, replies })
        }
        tag::COMPACTED => Reply::Compacted,
        tag::LEASE_GRANTED => Reply::LeaseGranted {
            id: r.u64("lease id")?,
            ttl_ms: r.u64("ttl_ms")?,
        },
        tag::LEASE_REVOKED => Reply::LeaseRevoked {
            keys_deleted: r.u64("keys deleted")?,
        },
        tag::LEASE_ALIVE => Reply::LeaseAlive {
            id: r.u64("lease id")?,
            ttl_ms: r.u64("ttl_ms")?,
        },
        tag::LEASE_TIME_TO_LIVE => {
            let id = r.u64("lease id")?;
            let ttl_ms = r.u64("ttl_ms")?;
            let count = r.count("lease keys", ANY)?;
            let mut keys = Vec::new();
            for _ in 0..count {
                keys.push(r.bytes("lease key", ANY)?);
            }
            Reply::LeaseTimeToLive { id, ttl_ms, keys }
        }
        tag::LEASES => {
            let count = r.count("leases", ANY)?;
            let mut leases = Vec::new();
            for _ in 0..count {
                leases.push(LeaseInfo {
                    id: r.u64("lease id")?,
                    ttl_ms: r.u64("ttl_ms")?,
                });
            }
            Reply::Leases(leases)
        }
        tag::LOCK => Reply::Lock(get_acquire(r)?),
        tag::UNLOCKED => Reply::Unlocked,
        tag::CAMPAIGN => Reply::Campaign(get_acquire(r)?),
        tag::PROCLAIMED => Reply::Proclaimed,
        tag::RESIGNED => Reply::Resigned,
        tag::LEADER => Reply::Leader(LeaderInfo {
            lease: r.u64("leader lease")?,
            token: r.u64("leader token")?,
            value: r.bytes("leader value", ANY)?,
        }),
        tag::BARRIER => Reply::Barrier(match r.u8("barrier status tag")? {
            0 => BarrierStatus::Waiting {
                generation: r.u64("barrier generation")?,
                arrived: r.u32("barrier arrived")?,
                n: r.u32("barrier n")?,
            },
            1 => BarrierStatus::Released {
                generation: r.u64("barrier generation")?,
            },
            tag => {
                return Err(CodecError::UnknownTag {
                    what: "barrier status",
                    tag,
                })
            }
        }),
        tag::FETCH_ADD => Reply::FetchAdd {
            previous: r.i64("previous value")?,
        },
        tag::COUNTER => Reply::Counter {
            value: r.i64("counter value")?,
        },
        tag::SESSION_REGISTERED => Reply::SessionRegistered {
            client_id: r.u64("client id")?,
        },
        tag::SESSION_CLOSED => Reply::SessionClosed,
        tag => return Err(CodecError::UnknownTag { what: "reply", tag }),
    })
}

fn get_error(r: &mut Reader<'_>) -> Result<StoreError, CodecError> {
    Ok(match r.u8("error tag")? {
        err::COMPACTED => StoreError::Compacted {
            requested: r.u64("requested revision")?,
            compact_revision: r.u64("compact revision")?,
        },
        err::FUTURE_REVISION => StoreError::FutureRevision {
            requested: r.u64("requested revision")?,
            current: r.u64("current revision")?,
        },
        err::KEY_NOT_FOUND => StoreError::KeyNotFound {
            key: r.bytes("key", ANY)?,
        },
        err::LEASE_NOT_FOUND => StoreError::LeaseNotFound {
            id: r.u64("lease id")?,
        },
        err::LEASE_EXISTS => StoreError::LeaseExists {
            id: r.u64("lease id")?,
        },
        err::LEASE_REVOKED => StoreError::LeaseRevoked {
            id: r.u64("lease id")?,
        },
        err::TOO_MANY_LEASES => StoreError::TooManyLeases {
            max: r.u32("max leases")?,
        },
        err::NO_SPACE => StoreError::NoSpace {
            needed_bytes: r.u64("needed bytes")?,
            used_bytes: r.u64("used bytes")?,
            quota_bytes: r.u64("quota bytes")?,
        },
        err::QUEUE_FULL => StoreError::QueueFull {
            name: r.bytes("name", ANY)?,
            capacity: r.u32("capacity")?,
        },
        err::ALREADY_WAITING => StoreError::AlreadyWaiting {
            name: r.bytes("name", ANY)?,
            lease: r.u64("lease id")?,
        },
        err::NOT_HOLDER => StoreError::NotHolder {
            name: r.bytes("name", ANY)?,
            token: r.u64("token")?,
            holder_token: r.u64("holder token")?,
        },
        err::NO_LEADER => StoreError::NoLeader {
            name: r.bytes("name", ANY)?,
        },
        err::BARRIER_SIZE_MISMATCH => StoreError::BarrierSizeMismatch {
            name: r.bytes("name", ANY)?,
            expected: r.u32("expected n")?,
            got: r.u32("got n")?,
        },
        err::BARRIER_BROKEN => StoreError::BarrierBroken {
            name: r.bytes("name", ANY)?,
            generation: r.u64("generation")?,
            reason: match r.u8("break reason")? {
                0 => BreakReason::LeaseExpired {
                    lease: r.u64("lease id")?,
                },
                1 => BreakReason::LeaseRevoked {
                    lease: r.u64("lease id")?,
                },
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "break reason",
                        tag,
                    })
                }
            },
        },
        err::COUNTER_OVERFLOW => StoreError::CounterOverflow {
            name: r.bytes("name", ANY)?,
            value: r.i64("counter value")?,
            delta: r.i64("delta")?,
        },
        err::SESSION_EXPIRED => StoreError::SessionExpired {
            client_id: r.u64("client id")?,
            seq: r.u64("seq")?,
        },
        tag => return Err(CodecError::UnknownTag { what: "error", tag }),
    })
}
