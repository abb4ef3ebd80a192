//! The revisioned key-value space (etcd's MVCC): every write of a command lands at one new global
//! revision, each key keeps its revisions until compaction, and the history index lists every
//! change after the compact revision in revision order, which is what watches replay.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::command::{
    Event, EventKind, KeyRange, KeyValue, LeaseId, RangeReply, RangeRequest, NO_LEASE,
};
use super::error::StoreError;
use super::limits::cost;

/// One retained revision of a key: a put, or the tombstone of a deletion (`value: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyRevision {
    pub main: u64,
    /// Position of this change among the changes of its revision.
    pub sub: u32,
    pub value: Option<Vec<u8>>,
    pub create_revision: u64,
    pub version: u64,
    pub lease: LeaseId,
}

impl KeyRevision {
    fn cost(&self, key: &[u8]) -> u64 {
        cost::key_revision(key, self.value.as_deref().unwrap_or_default())
    }

    fn to_kv(&self, key: &[u8]) -> Option<KeyValue> {
        let value = self.value.as_ref()?;
        Some(KeyValue {
            key: key.to_vec(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.main,
            version: self.version,
            lease: self.lease,
        })
    }
}

/// Borrowed bounds of a key interval, as `BTreeMap::range` takes them.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Kv {
    /// Each key's retained revisions, oldest first, main revisions strictly increasing.
    keys: BTreeMap<Vec<u8>, Vec<KeyRevision>>,
    /// `(main, sub) -> key` for every retained revision after `compact_revision`: the watch history.
    history: BTreeMap<(u64, u32), Vec<u8>>,
    revision: u64,
    compact_revision: u64,
    /// Changes made so far at `revision + 1` by the command being applied.
    pending_subs: u32,
    /// The command being applied granted a fencing token, which needs a revision of its own.
    pending_token: bool,
    bytes: u64,
}

impl Kv {
    /// An empty space at revision 1, etcd's starting point.
    pub fn new() -> Self {
        Self {
            revision: 1,
            ..Self::default()
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn compact_revision(&self) -> u64 {
        self.compact_revision
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The revision the command being applied writes at.
    pub fn pending_revision(&self) -> u64 {
        self.revision + 1
    }

    /// The revision a "latest" read sees inside a command: its own earlier writes included.
    fn visible_revision(&self) -> u64 {
        if self.pending_subs > 0 {
            self.pending_revision()
        } else {
            self.revision
        }
    }

    /// Takes the pending revision as a fencing token: the command bumps the revision even if it
    /// writes no key, so tokens strictly increase.
    pub fn take_token(&mut self) -> u64 {
        self.pending_token = true;
        self.pending_revision()
    }

    /// Whether the command being applied has written a key or taken a token.
    pub fn is_pending(&self) -> bool {
        self.pending_subs > 0 || self.pending_token
    }

    /// Ends the command being applied: the revision moves on iff it wrote a key or granted a token.
    pub fn finish_command(&mut self) {
        if self.is_pending() {
            let next = self.revision + 1;
            assert!(next > self.revision, "revisions only grow");
            self.revision = next;
        }
        self.pending_subs = 0;
        self.pending_token = false;
    }

    fn visible_at(revisions: &[KeyRevision], at: u64) -> Option<&KeyRevision> {
        let after = revisions.partition_point(|r| r.main <= at);
        let latest = revisions.get(after.checked_sub(1)?)?;
        latest.value.is_some().then_some(latest)
    }

    /// The key's latest revision (including writes of the command being applied), if it exists.
    pub fn latest(&self, key: &[u8]) -> Option<&KeyRevision> {
        let revisions = self.keys.get(key)?;
        Self::visible_at(revisions, self.visible_revision())
    }

    /// The key's latest value (including writes of the command being applied), if it exists.
    pub fn current(&self, key: &[u8]) -> Option<KeyValue> {
        self.latest(key)?.to_kv(key)
    }

    /// Checks that `revision` (0 = latest) can be read, and resolves it.
    pub fn check_read_revision(&self, revision: u64) -> Result<u64, StoreError> {
        if revision == 0 {
            return Ok(self.visible_revision());
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        if revision < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact_revision,
            });
        }
        Ok(revision)
    }

    fn keys_in<'a>(
        &'a self,
        range: &'a KeyRange,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<KeyRevision>)> + 'a {
        let bounds: Option<KeyBounds<'_>> = if range.is_empty() {
            None
        } else if range.is_single() {
            Some((Bound::Included(&range.key), Bound::Included(&range.key)))
        } else {
            Some((
                Bound::Included(&range.key),
                range.end_bound().map_or(Bound::Unbounded, Bound::Excluded),
            ))
        };
        bounds
            .map(|bounds| self.keys.range::<[u8], _>(bounds))
            .into_iter()
            .flatten()
    }

    /// etcd's Range: the keys of `request.range` visible at its revision, ascending by key.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeReply, StoreError> {
        let at = self.check_read_revision(request.revision)?;
        let mut reply = RangeReply::default();
        let limit = if request.limit == 0 {
            u64::MAX
        } else {
            request.limit
        };
        for (key, revisions) in self.keys_in(&request.range) {
            let Some(visible) = Self::visible_at(revisions, at) else {
                continue;
            };
            reply.count += 1;
            if request.count_only {
                continue;
            }
            if reply.kvs.len() as u64 >= limit {
                reply.more = true;
                continue;
            }
            let mut kv = visible.to_kv(key).expect("visible_at returns puts only");
            if request.keys_only {
                kv.value.clear();
            }
            reply.kvs.push(kv);
        }
        Ok(reply)
    }

    /// The keys of `range` that exist now (including this command's writes).
    pub fn live_keys(&self, range: &KeyRange) -> Vec<Vec<u8>> {
        let at = self.visible_revision();
        self.keys_in(range)
            .filter(|(_, revisions)| Self::visible_at(revisions, at).is_some())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Writes `key` at the pending revision — a put of `Some(value)` or a deletion (`None`) — with
    /// one lookup of the key, and reports the change as an event. The event owns the previous
    /// value, so a caller that was asked for it clones it from there. Returns the lease of the
    /// previous value, or `None` if the key did not exist (a deletion then writes nothing).
    fn write(
        &mut self,
        key: &[u8],
        value: Option<Vec<u8>>,
        lease: LeaseId,
        events: &mut Vec<Event>,
    ) -> Option<LeaseId> {
        let main = self.pending_revision();
        let sub = self.pending_subs;
        let revisions = match self.keys.get_mut(key) {
            Some(revisions) => revisions,
            None if value.is_none() => return None,
            None => self.keys.entry(key.to_vec()).or_default(),
        };
        // Writes append, so the last revision is the latest one visible inside this command.
        let prev = revisions.last().filter(|last| last.value.is_some());
        if value.is_none() && prev.is_none() {
            return None;
        }
        if let Some(last) = revisions.last() {
            assert!(
                last.main < main,
                "a key changes at most once per revision (txn rules and one write per key)"
            );
        }
        let (create_revision, version, lease) = match (&value, prev) {
            (None, _) => (0, 0, NO_LEASE),
            (Some(_), Some(prev)) => (prev.create_revision, prev.version + 1, lease),
            (Some(_), None) => (main, 1, lease),
        };
        let revision = KeyRevision {
            main,
            sub,
            value,
            create_revision,
            version,
            lease,
        };
        let prev_kv = prev.and_then(|p| p.to_kv(key));
        let prev_lease = prev_kv.as_ref().map(|p| p.lease);
        let (kind, kv) = match revision.to_kv(key) {
            Some(kv) => (EventKind::Put, kv),
            None => (
                EventKind::Delete,
                KeyValue {
                    key: key.to_vec(),
                    mod_revision: main,
                    ..KeyValue::default()
                },
            ),
        };
        events.push(Event { kind, kv, prev_kv });
        self.bytes += revision.cost(key);
        revisions.push(revision);
        self.history.insert((main, sub), key.to_vec());
        self.pending_subs = sub.checked_add(1).expect(
            "changes per command are bounded by max_txn_ops and key counts far below u32::MAX",
        );
        prev_lease
    }

    /// Writes `key` at the pending revision; returns the lease of the value it replaced, if any.
    pub fn put(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        lease: LeaseId,
        events: &mut Vec<Event>,
    ) -> Option<LeaseId> {
        self.write(key, Some(value), lease, events)
    }

    /// Deletes `key` if it exists; returns the lease it had, or `None` (and writes nothing) if it
    /// did not exist.
    pub fn delete(&mut self, key: &[u8], events: &mut Vec<Event>) -> Option<LeaseId> {
        self.write(key, None, NO_LEASE, events)
    }

    /// Forgets everything before `revision`: per key, all but the latest revision at or before it
    /// (and that one too if it is a tombstone), and the history up to it. Only keys changed since
    /// the previous compaction can hold anything to forget, and the history lists exactly those,
    /// so the cost is proportional to what is freed.
    pub fn compact(&mut self, revision: u64) {
        assert!(
            self.compact_revision < revision && revision <= self.revision,
            "compaction target {revision} checked against ({}, {}]",
            self.compact_revision,
            self.revision
        );
        let kept = self.history.split_off(&(revision + 1, 0));
        let compacted = std::mem::replace(&mut self.history, kept);
        for key in compacted.into_values() {
            let Some(revisions) = self.keys.get_mut(&key) else {
                continue;
            };
            let after = revisions.partition_point(|r| r.main <= revision);
            let keep_from = match after.checked_sub(1) {
                Some(latest) if revisions[latest].value.is_some() => latest,
                _ => after,
            };
            for dropped in revisions.drain(..keep_from) {
                self.bytes = self
                    .bytes
                    .checked_sub(dropped.cost(&key))
                    .expect("bytes count every retained revision");
            }
            if revisions.is_empty() {
                self.keys.remove(&key);
            }
        }
        self.compact_revision = revision;
    }

    /// The changes after `from - 1` to keys in `range`, in revision order. The caller checked
    /// `from > compact_revision`.
    pub fn events_since<'a>(
        &'a self,
        from: u64,
        range: &'a KeyRange,
    ) -> impl Iterator<Item = Event> + 'a {
        debug_assert!(from > self.compact_revision);
        self.history
            .range((from, 0)..)
            .filter(move |(_, key)| range.contains(key))
            .map(move |(&(main, _), key)| {
                let revisions = &self.keys[key];
                let at = revisions
                    .binary_search_by_key(&main, |r| r.main)
                    .expect("every history entry has its key revision");
                let revision = &revisions[at];
                let prev_kv = at
                    .checked_sub(1)
                    .and_then(|before| revisions[before].to_kv(key));
                match revision.to_kv(key) {
                    Some(kv) => Event {
                        kind: EventKind::Put,
                        kv,
                        prev_kv,
                    },
                    None => Event {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key: key.clone(),
                            mod_revision: main,
                            ..KeyValue::default()
                        },
                        prev_kv,
                    },
                }
            })
    }

    /// Every key with its retained revisions, for snapshots and checks.
    pub fn keys(&self) -> &BTreeMap<Vec<u8>, Vec<KeyRevision>> {
        &self.keys
    }

    /// Rebuilds a space from a snapshot's parts; the history and byte count are derived.
    pub fn restore(
        keys: BTreeMap<Vec<u8>, Vec<KeyRevision>>,
        revision: u64,
        compact_revision: u64,
    ) -> Self {
        let mut kv = Self {
            keys,
            revision,
            compact_revision,
            ..Self::default()
        };
        for (key, revisions) in &kv.keys {
            for r in revisions {
                kv.bytes += r.cost(key);
                if r.main > compact_revision {
                    kv.history.insert((r.main, r.sub), key.clone());
                }
            }
        }
        kv
    }

    /// Checks every structural rule of the space; returns what is broken.
    pub fn verify(&self) -> Result<(), String> {
        if self.compact_revision > self.revision {
            return Err(format!(
                "compact revision {} above revision {}",
                self.compact_revision, self.revision
            ));
        }
        let mut bytes = 0;
        let mut history = 0;
        for (key, revisions) in &self.keys {
            let shown = key.escape_ascii();
            if revisions.is_empty() {
                return Err(format!("key {shown} has no revisions"));
            }
            for (i, r) in revisions.iter().enumerate() {
                bytes += r.cost(key);
                if r.main > self.revision {
                    return Err(format!(
                        "key {shown} has revision {} > {}",
                        r.main, self.revision
                    ));
                }
                if r.main > self.compact_revision {
                    history += 1;
                    if self.history.get(&(r.main, r.sub)) != Some(key) {
                        return Err(format!("history misses {shown}@{}", r.main));
                    }
                } else if i + 1 < revisions.len() && revisions[i + 1].main <= self.compact_revision
                {
                    return Err(format!(
                        "key {shown} keeps two revisions at or before the compact revision"
                    ));
                }
                if r.value.is_none() && r.main <= self.compact_revision {
                    return Err(format!("key {shown} keeps a compacted tombstone"));
                }
                let Some(prev) = i.checked_sub(1).map(|p| &revisions[p]) else {
                    continue;
                };
                if prev.main >= r.main {
                    return Err(format!("key {shown} revisions out of order"));
                }
                let expected = match (&prev.value, &r.value) {
                    (_, None) => (0, 0),
                    (Some(_), Some(_)) => (prev.create_revision, prev.version + 1),
                    (None, Some(_)) => (r.main, 1),
                };
                if (r.create_revision, r.version) != expected {
                    return Err(format!(
                        "key {shown}@{}: (create, version) = ({}, {}), expected {expected:?}",
                        r.main, r.create_revision, r.version
                    ));
                }
            }
        }
        if history != self.history.len() {
            return Err(format!(
                "history has {} entries, keys hold {history}",
                self.history.len()
            ));
        }
        if bytes != self.bytes {
            return Err(format!(
                "kv bytes {} but revisions cost {bytes}",
                self.bytes
            ));
        }
        Ok(())
    }
}
