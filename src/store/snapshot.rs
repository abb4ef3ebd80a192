//! Snapshot and restore: the whole state at an applied index, serialized deterministically.
//!
//! ```text
//!  magic "AURSNAP\0" | format version u32 | applied index u64 | revision u64 | compact revision u64
//!  limits | keys | leases | locks | elections | barriers | counters | sessions
//!  crc32c u32 over every byte before it
//! ```
//!
//! Everything is written in key order (ordered maps), so two replicas at the same index write the
//! same bytes; derived state (watch history, byte counts, what each lease owns, session eviction
//! order) is not written but rebuilt on restore, and the rebuilt store must pass
//! [`Store::verify`]. Sizes read from a snapshot allocate only as the bytes actually arrive, so a
//! corrupt length cannot exhaust memory before the checksum catches it.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};

use super::barrier::{Barrier, Barriers, Member};
use super::codec::{self, Sink};
use super::command::LeaseId;
use super::counter::Counters;
use super::error::SnapshotError;
use super::kv::{KeyRevision, Kv};
use super::lease::{Lease, Leases};
use super::limits::StoreLimits;
use super::machine::Store;
use super::queue::{Queue, Queues, Waiter};
use super::session::{Cached, Session, Sessions};

const MAGIC: [u8; 8] = *b"AURSNAP\0";
/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
const BUFFER_BYTES: usize = 64 * 1024;

/// Buffers, hashes and writes; remembers the first I/O error.
struct SnapshotSink<'w, W: Write> {
    out: &'w mut W,
    buf: Vec<u8>,
    crc: u32,
    error: Option<io::Error>,
}

impl<W: Write> SnapshotSink<'_, W> {
    fn flush_buf(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(&self.buf) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
    }
}

impl<W: Write> Sink for SnapshotSink<'_, W> {
    fn put(&mut self, bytes: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BUFFER_BYTES {
            self.flush_buf();
        }
    }
}

fn put_limits(out: &mut impl Sink, l: &StoreLimits) {
    out.u32(l.max_key_bytes);
    out.u32(l.max_value_bytes);
    out.u32(l.max_txn_ops);
    out.u64(l.max_store_bytes);
    out.u32(l.max_leases);
    out.u64(l.max_lease_ttl_ms);
    out.u32(l.max_queue_waiters);
    out.u32(l.max_barrier_members);
    out.u32(l.max_sessions);
    out.u32(l.max_session_responses);
    out.u64(l.max_session_response_bytes);
}

fn put_waiter(out: &mut impl Sink, w: &Waiter) {
    out.u64(w.lease);
    out.u64(w.client_id);
    out.u64(w.seq);
    out.bytes(&w.value);
}

fn put_queues(out: &mut impl Sink, queues: &Queues) {
    out.u64(queues.iter().count() as u64);
    for (name, queue) in queues.iter() {
        out.bytes(name);
        out.u64(queue.token);
        put_waiter(out, &queue.holder);
        out.len(queue.waiters.len());
        for w in &queue.waiters {
            put_waiter(out, w);
        }
    }
}

impl Store {
    /// Writes the whole state to `out` (see the module documentation for the format). The caller
    /// makes it durable (temp file, fsync, rename) and records `applied_index` with it.
    pub fn snapshot(&self, out: &mut impl Write) -> io::Result<()> {
        let mut sink = SnapshotSink {
            out,
            buf: Vec::with_capacity(BUFFER_BYTES),
            crc: 0,
            error: None,
        };
        sink.put(&MAGIC);
        sink.u32(SNAPSHOT_FORMAT_VERSION);
        sink.u64(self.applied_index);
        sink.u64(self.kv.revision());
        sink.u64(self.kv.compact_revision());
        put_limits(&mut sink, &self.limits);

        sink.u64(self.kv.keys().len() as u64);
        for (key, revisions) in self.kv.keys() {
            sink.bytes(key);
            sink.len(revisions.len());
            for r in revisions {
                sink.u64(r.main);
                sink.u32(r.sub);
                match &r.value {
                    None => sink.u8(0),
                    Some(value) => {
                        sink.u8(1);
                        sink.bytes(value);
                    }
                }
                sink.u64(r.create_revision);
                sink.u64(r.version);
                sink.u64(r.lease);
            }
        }

        sink.u64(self.leases.len() as u64);
        for info in self.leases.infos() {
            sink.u64(info.id);
            sink.u64(info.ttl_ms);
        }

        put_queues(&mut sink, &self.locks);
        put_queues(&mut sink, &self.elections);

        sink.u64(self.barriers.iter().count() as u64);
        for (name, barrier) in self.barriers.iter() {
            sink.bytes(name);
            sink.u32(barrier.n);
            sink.u64(barrier.generation);
            sink.len(barrier.waiters.len());
            for m in &barrier.waiters {
                sink.u64(m.lease);
                sink.u64(m.client_id);
                sink.u64(m.seq);
            }
        }

        sink.u64(self.counters.iter().count() as u64);
        for (name, value) in self.counters.iter() {
            sink.bytes(name);
            sink.i64(*value);
        }

        sink.u64(self.sessions.len() as u64);
        let mut encoded = Vec::new();
        for (client_id, session) in self.sessions.iter() {
            sink.u64(client_id);
            sink.u64(session.last_active_index);
            sink.u64(session.acked_seq);
            sink.u64(session.evicted_seq);
            sink.len(session.responses.len());
            for (seq, cached) in &session.responses {
                sink.u64(*seq);
                sink.bool(cached.waiting);
                encoded.clear();
                codec::encode_response(&cached.response, &mut encoded);
                sink.bytes(&encoded);
            }
        }

        let crc = sink.crc;
        sink.buf.extend_from_slice(&crc.to_le_bytes());
        sink.flush_buf();
        if let Some(error) = sink.error.take() {
            return Err(error);
        }
        sink.out.flush()
    }

    /// Rebuilds a store from a snapshot written by [`Store::snapshot`], checking magic, version,
    /// checksum and every invariant. The store adopts the snapshot's limits (they are replicated
    /// state, see [`StoreLimits`]).
    pub fn restore(input: &mut impl Read) -> Result<Store, SnapshotError> {
        let mut r = SnapshotReader { input, crc: 0 };
        let mut magic = [0; 8];
        r.exact(&mut magic)?;
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic { got: magic });
        }
        let version = r.u32()?;
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                got: version,
                supported: SNAPSHOT_FORMAT_VERSION,
            });
        }
        let applied_index = r.u64()?;
        let revision = r.u64()?;
        let compact_revision = r.u64()?;
        let limits = StoreLimits {
            max_key_bytes: r.u32()?,
            max_value_bytes: r.u32()?,
            max_txn_ops: r.u32()?,
            max_store_bytes: r.u64()?,
            max_leases: r.u32()?,
            max_lease_ttl_ms: r.u64()?,
            max_queue_waiters: r.u32()?,
            max_barrier_members: r.u32()?,
            max_sessions: r.u32()?,
            max_session_responses: r.u32()?,
            max_session_response_bytes: r.u64()?,
        };
        limits
            .validate()
            .map_err(|e| malformed(format!("limits: {e}")))?;
        let key_max = limits.max_key_bytes as usize;
        let value_max = limits.max_value_bytes as usize;

        let mut keys = BTreeMap::new();
        for _ in 0..r.u64()? {
            let key = r.bytes(key_max)?;
            let mut revisions = Vec::new();
            for _ in 0..r.u32()? {
                let main = r.u64()?;
                let sub = r.u32()?;
                let value = match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes(value_max)?),
                    tag => return Err(malformed(format!("key revision tag {tag}"))),
                };
                revisions.push(KeyRevision {
                    main,
                    sub,
                    value,
                    create_revision: r.u64()?,
                    version: r.u64()?,
                    lease: r.u64()?,
                });
            }
            insert_new(&mut keys, key, revisions, "key")?;
        }

        let mut leases = Leases::default();
        for _ in 0..r.u64()? {
            let id = r.u64()?;
            let ttl_ms = r.u64()?;
            if id == 0 || leases.contains(id) {
                return Err(malformed(format!("lease id {id:#x} zero or repeated")));
            }
            leases.grant(id, ttl_ms);
        }

        let locks = r.queues(key_max, value_max)?;
        let elections = r.queues(key_max, value_max)?;

        let mut barriers = BTreeMap::new();
        for _ in 0..r.u64()? {
            let name = r.bytes(key_max)?;
            let n = r.u32()?;
            let generation = r.u64()?;
            let mut waiters = Vec::new();
            for _ in 0..r.u32()? {
                waiters.push(Member {
                    lease: r.u64()?,
                    client_id: r.u64()?,
                    seq: r.u64()?,
                });
            }
            let barrier = Barrier {
                n,
                generation,
                waiters,
            };
            insert_new(&mut barriers, name, barrier, "barrier")?;
        }

        let mut counters = BTreeMap::new();
        for _ in 0..r.u64()? {
            let name = r.bytes(key_max)?;
            let value = r.i64()?;
            insert_new(&mut counters, name, value, "counter")?;
        }

        let mut sessions = BTreeMap::new();
        for _ in 0..r.u64()? {
            let client_id = r.u64()?;
            let mut session = Session::new(r.u64()?);
            session.acked_seq = r.u64()?;
            session.evicted_seq = r.u64()?;
            for _ in 0..r.u32()? {
                let seq = r.u64()?;
                let waiting = r.bool()?;
                let encoded = r.bytes(usize::MAX)?;
                let cached = Cached::new(codec::decode_response(&encoded)?, waiting);
                session.cached_bytes += cached.len_bytes;
                insert_new(&mut session.responses, seq, cached, "cached response")?;
            }
            insert_new(&mut sessions, client_id, session, "session")?;
        }

        let computed = r.crc;
        let mut stored = [0; 4];
        r.exact(&mut stored)?;
        let stored = u32::from_le_bytes(stored);
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        let mut extra = [0; 1];
        if r.input.read(&mut extra)? != 0 {
            return Err(malformed("bytes after the checksum".to_string()));
        }

        let kv = Kv::restore(keys, revision, compact_revision);
        link_leases(&mut leases, &kv, &locks, &elections, &barriers)?;
        let store = Store::from_parts(
            limits,
            applied_index,
            kv,
            leases,
            Queues::restore(locks),
            Queues::restore(elections),
            Barriers::restore(barriers),
            Counters::restore(counters),
            Sessions::restore(sessions),
        );
        store.verify().map_err(SnapshotError::Malformed)?;
        Ok(store)
    }
}

fn malformed(what: String) -> SnapshotError {
    SnapshotError::Malformed(what)
}

fn insert_new<K: Ord + std::fmt::Debug, V>(
    map: &mut BTreeMap<K, V>,
    key: K,
    value: V,
    what: &str,
) -> Result<(), SnapshotError> {
    if map.contains_key(&key) {
        return Err(malformed(format!("{what} {key:?} appears twice")));
    }
    map.insert(key, value);
    Ok(())
}

/// Rebuilds what each lease owns from the state that names the lease.
fn link_leases(
    leases: &mut Leases,
    kv: &Kv,
    locks: &BTreeMap<Vec<u8>, Queue>,
    elections: &BTreeMap<Vec<u8>, Queue>,
    barriers: &BTreeMap<Vec<u8>, Barrier>,
) -> Result<(), SnapshotError> {
    fn lease<'l>(
        leases: &'l mut Leases,
        id: LeaseId,
        what: &str,
        name: &[u8],
    ) -> Result<&'l mut Lease, SnapshotError> {
        leases.get_mut(id).ok_or_else(|| {
            malformed(format!(
                "{what} {} names missing lease {id:#x}",
                name.escape_ascii()
            ))
        })
    }
    for (key, revisions) in kv.keys() {
        if let Some(latest) = revisions
            .last()
            .filter(|r| r.value.is_some() && r.lease != 0)
        {
            lease(leases, latest.lease, "key", key)?
                .keys
                .insert(key.clone());
        }
    }
    for (name, queue) in locks {
        for w in std::iter::once(&queue.holder).chain(&queue.waiters) {
            lease(leases, w.lease, "lock", name)?
                .locks
                .insert(name.clone());
        }
    }
    for (name, queue) in elections {
        for w in std::iter::once(&queue.holder).chain(&queue.waiters) {
            lease(leases, w.lease, "election", name)?
                .elections
                .insert(name.clone());
        }
    }
    for (name, barrier) in barriers {
        for m in &barrier.waiters {
            lease(leases, m.lease, "barrier", name)?
                .barriers
                .insert(name.clone());
        }
    }
    Ok(())
}

/// Reads and hashes; byte strings grow only as their bytes arrive.
struct SnapshotReader<'r, R: Read> {
    input: &'r mut R,
    crc: u32,
}

impl<R: Read> SnapshotReader<'_, R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => malformed("truncated".to_string()),
            _ => SnapshotError::Io(e),
        })?;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut buf = [0; N];
        self.exact(&mut buf)?;
        Ok(buf)
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    fn bool(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(malformed(format!("boolean byte {other}"))),
        }
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, SnapshotError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(malformed(format!(
                "byte string of {len} bytes over the limit of {max}"
            )));
        }
        let mut bytes = Vec::new();
        let got = (&mut *self.input)
            .take(len as u64)
            .read_to_end(&mut bytes)?;
        if got != len {
            return Err(malformed("truncated".to_string()));
        }
        self.crc = crc32c::crc32c_append(self.crc, &bytes);
        Ok(bytes)
    }

    fn waiter(&mut self, value_max: usize) -> Result<Waiter, SnapshotError> {
        Ok(Waiter {
            lease: self.u64()?,
            client_id: self.u64()?,
            seq: self.u64()?,
            value: self.bytes(value_max)?,
        })
    }

    fn queues(
        &mut self,
        key_max: usize,
        value_max: usize,
    ) -> Result<BTreeMap<Vec<u8>, Queue>, SnapshotError> {
        let mut map = BTreeMap::new();
        for _ in 0..self.u64()? {
            let name = self.bytes(key_max)?;
            let token = self.u64()?;
            let holder = self.waiter(value_max)?;
            let mut waiters = VecDeque::new();
            for _ in 0..self.u32()? {
                waiters.push_back(self.waiter(value_max)?);
            }
            let queue = Queue {
                holder,
                token,
                waiters,
            };
            insert_new(&mut map, name, queue, "queue")?;
        }
        Ok(map)
    }
}
