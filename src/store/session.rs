//! Client sessions: exactly-once application of retried requests (Raft thesis §6.3).
//!
//! A client registers once ([`super::Command::RegisterSession`]; its id is the log index of that
//! entry, so ids never repeat) and numbers its requests. For each session the store keeps the
//! responses of applied writes, so that a retry (the same `seq` proposed again, for instance after a
//! leader change) is answered from the cache instead of being applied twice. The cache is bounded:
//!
//! - `acked_seq` in every request drops the responses the client says it has;
//! - per session at most `max_session_responses` responses and `max_session_response_bytes`
//!   bytes are kept; beyond that the lowest completed sequence numbers are evicted (a request still
//!   waiting, such as a queued lock, is never evicted: its completion must still find it);
//! - at most `max_sessions` sessions exist; registering another evicts the one least recently
//!   active (by log index, so every replica picks the same).
//!
//! A request the store can no longer answer exactly — its session is gone, or its `seq` is at or
//! below what was acknowledged or evicted and no response is cached — gets
//! [`super::StoreError::SessionExpired`]: **its outcome is unknown to the client** (it may or may
//! not have been applied), so the client must re-register and inspect the state before deciding
//! what to do. Reads are not cached (a retried read simply reads again), and a waiting request's
//! cached response is replaced by its completion, so a retry returns "still waiting" or the final
//! outcome.

use std::collections::{BTreeMap, BTreeSet};

use super::codec;
use super::command::{ClientId, Response, SessionHeader};
use super::limits::StoreLimits;

/// A cached response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cached {
    pub response: Response,
    /// Its encoded length, charged to the session's byte bound.
    pub len_bytes: u64,
    /// The request is still waiting (queued lock or campaign, barrier arrival).
    pub waiting: bool,
}

impl Cached {
    pub fn new(response: Response, waiting: bool) -> Self {
        let len_bytes = codec::response_len(&response) as u64;
        Self {
            response,
            len_bytes,
            waiting,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Session {
    pub last_active_index: u64,
    /// Every request with a sequence number up to this one is acknowledged by the client.
    pub acked_seq: u64,
    /// The highest sequence number whose response was evicted by the bounds.
    pub evicted_seq: u64,
    pub responses: BTreeMap<u64, Cached>,
    pub cached_bytes: u64,
}

impl Session {
    pub fn new(last_active_index: u64) -> Self {
        Self {
            last_active_index,
            acked_seq: 0,
            evicted_seq: 0,
            responses: BTreeMap::new(),
            cached_bytes: 0,
        }
    }

    /// Evicts the oldest completed responses until the bounds hold (or only waiting ones remain).
    fn enforce_bounds(&mut self, limits: &StoreLimits) {
        let over = |s: &Self| {
            s.responses.len() > limits.max_session_responses as usize
                || s.cached_bytes > limits.max_session_response_bytes
        };
        while over(self) {
            let Some(seq) = self
                .responses
                .iter()
                .find(|(_, cached)| !cached.waiting)
                .map(|(&seq, _)| seq)
            else {
                break;
            };
            let evicted = self.responses.remove(&seq).expect("found above");
            self.cached_bytes -= evicted.len_bytes;
            self.evicted_seq = self.evicted_seq.max(seq);
        }
    }
}

/// How the store should treat an incoming request of a session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// Not applied before: apply it.
    Fresh,
    /// Applied before: answer with this, apply nothing.
    Replay(Response),
    /// The outcome is unknown: answer [`super::StoreError::SessionExpired`].
    Expired,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sessions {
    map: BTreeMap<ClientId, Session>,
    /// `(last_active_index, client_id)` of every session: the eviction order.
    by_activity: BTreeSet<(u64, ClientId)>,
}

impl Sessions {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (ClientId, &Session)> {
        self.map.iter().map(|(&id, s)| (id, s))
    }

    /// Opens session `index`, evicting the least recently active ones to stay within the bound.
    pub fn register(&mut self, index: u64, max_sessions: u32) -> ClientId {
        assert!(
            !self.map.contains_key(&index),
            "client ids are log indices, applied once"
        );
        while self.map.len() >= max_sessions as usize {
            let Some((_, oldest)) = self.by_activity.pop_first() else {
                break;
            };
            self.map.remove(&oldest);
        }
        self.map.insert(index, Session::new(index));
        self.by_activity.insert((index, index));
        index
    }

    pub fn close(&mut self, client_id: ClientId) {
        if let Some(session) = self.map.remove(&client_id) {
            self.by_activity
                .remove(&(session.last_active_index, client_id));
        }
    }

    /// Classifies a request of a session at log `index`, after recording its activity and its
    /// acknowledgement. Reads are always fresh: they are not cached.
    pub fn admit(&mut self, header: &SessionHeader, index: u64, is_read: bool) -> Admission {
        let Some(session) = self.map.get_mut(&header.client_id) else {
            return Admission::Expired;
        };
        self.by_activity
            .remove(&(session.last_active_index, header.client_id));
        session.last_active_index = index;
        self.by_activity.insert((index, header.client_id));
        if header.acked_seq > session.acked_seq {
            session.acked_seq = header.acked_seq;
            while let Some(entry) = session.responses.first_entry() {
                if *entry.key() > header.acked_seq {
                    break;
                }
                session.cached_bytes -= entry.remove().len_bytes;
            }
        }
        if is_read {
            return Admission::Fresh;
        }
        if let Some(cached) = session.responses.get(&header.seq) {
            return Admission::Replay(cached.response.clone());
        }
        if header.seq <= session.acked_seq.max(session.evicted_seq) {
            return Admission::Expired;
        }
        Admission::Fresh
    }

    /// Caches the response of a fresh write.
    pub fn record(&mut self, client_id: ClientId, seq: u64, cached: Cached, limits: &StoreLimits) {
        let session = self
            .map
            .get_mut(&client_id)
            .expect("admit found the session in this same apply");
        session.cached_bytes += cached.len_bytes;
        let previous = session.responses.insert(seq, cached);
        assert!(previous.is_none(), "a fresh request has no cached response");
        session.enforce_bounds(limits);
    }

    /// Replaces a waiting request's cached response with its completion, if the session still
    /// holds it (it may have been evicted or acknowledged).
    pub fn complete(
        &mut self,
        client_id: ClientId,
        seq: u64,
        response: &Response,
        limits: &StoreLimits,
    ) {
        let Some(session) = self.map.get_mut(&client_id) else {
            return;
        };
        let Some(cached) = session.responses.get_mut(&seq) else {
            return;
        };
        assert!(cached.waiting, "only waiting requests complete later");
        session.cached_bytes -= cached.len_bytes;
        *cached = Cached::new(response.clone(), false);
        session.cached_bytes += cached.len_bytes;
        session.enforce_bounds(limits);
    }

    pub fn restore(map: BTreeMap<ClientId, Session>) -> Self {
        let by_activity = map
            .iter()
            .map(|(&id, s)| (s.last_active_index, id))
            .collect();
        Self { map, by_activity }
    }

    pub fn verify(&self, limits: &StoreLimits, index: u64) -> Result<(), String> {
        if self.map.len() > limits.max_sessions as usize {
            return Err(format!("{} sessions over the bound", self.map.len()));
        }
        if self.by_activity.len() != self.map.len() {
            return Err("activity index out of step".to_string());
        }
        for (&id, s) in &self.map {
            if !self.by_activity.contains(&(s.last_active_index, id)) || s.last_active_index > index
            {
                return Err(format!(
                    "session {id} activity {} wrong",
                    s.last_active_index
                ));
            }
            let bytes: u64 = s.responses.values().map(|c| c.len_bytes).sum();
            if bytes != s.cached_bytes {
                return Err(format!(
                    "session {id} caches {bytes} bytes, counts {}",
                    s.cached_bytes
                ));
            }
            if s.responses
                .keys()
                .next()
                .is_some_and(|&seq| seq <= s.acked_seq)
            {
                return Err(format!("session {id} keeps an acknowledged response"));
            }
            let completed = s.responses.values().filter(|c| !c.waiting).count();
            if completed > limits.max_session_responses as usize {
                return Err(format!("session {id} keeps {completed} responses"));
            }
        }
        Ok(())
    }
}
