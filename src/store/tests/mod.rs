//! Unit tests per feature, each through the public entry points (encoded entries into `apply`).

mod barrier;
mod encoding;
mod kv;
mod lease;
mod lock;
mod session;
mod snapshot;
mod txn;
mod watch;

use super::*;

/// One store and the log feeding it.
pub(super) struct World {
    pub store: Store,
    pub index: u64,
    pub out: ApplyOutput,
    seq: u64,
}

impl World {
    pub fn new() -> Self {
        Self::with_limits(StoreLimits::default())
    }

    pub fn with_limits(limits: StoreLimits) -> Self {
        Self {
            store: Store::new(limits),
            index: 0,
            out: ApplyOutput::default(),
            seq: 0,
        }
    }

    /// Applies `command` as the next entry without a session.
    pub fn run(&mut self, command: Command) -> Response {
        self.seq += 1;
        self.run_as(SessionHeader::none(self.seq), command)
    }

    /// Applies `command` as the next entry under `session`, and checks every invariant after.
    pub fn run_as(&mut self, session: SessionHeader, command: Command) -> Response {
        let mut entry = Vec::new();
        codec::encode_request(&Request { session, command }, &mut entry);
        self.apply_bytes(&entry);
        let addressed = self
            .out
            .response
            .clone()
            .expect("a valid entry is answered");
        assert_eq!(
            (addressed.client_id, addressed.seq),
            (session.client_id, session.seq)
        );
        addressed.response
    }

    pub fn apply_bytes(&mut self, entry: &[u8]) {
        self.index += 1;
        self.store.apply(self.index, entry, &mut self.out);
        assert_eq!(self.store.verify(), Ok(()));
    }

    pub fn ok(&mut self, command: Command) -> Reply {
        let response = self.run(command.clone());
        response
            .result
            .unwrap_or_else(|e| panic!("{command:?} failed: {e}"))
    }

    pub fn err(&mut self, command: Command) -> StoreError {
        let response = self.run(command.clone());
        match response.result {
            Err(e) => e,
            Ok(reply) => panic!("{command:?} succeeded with {reply:?}"),
        }
    }

    pub fn register(&mut self) -> ClientId {
        match self.ok(Command::RegisterSession) {
            Reply::SessionRegistered { client_id } => client_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn put(&mut self, key: &str, value: &str) -> u64 {
        self.ok(put(key, value));
        self.store.revision()
    }

    pub fn grant(&mut self, ttl_ms: u64) -> LeaseId {
        match self.ok(Command::LeaseGrant {
            id: NO_LEASE,
            ttl_ms,
        }) {
            Reply::LeaseGranted { id, .. } => id,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn revoke(&mut self, id: LeaseId, reason: RevokeReason) -> Reply {
        self.ok(Command::LeaseRevoke { id, reason })
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.range(KeyRange::single(key), 0).kvs.pop()
    }

    pub fn range(&self, range: KeyRange, revision: u64) -> RangeReply {
        let request = RangeRequest {
            revision,
            ..RangeRequest::latest(range)
        };
        match self.store.read(&ReadRequest::Range(request)).result {
            Ok(Reply::Range(reply)) => reply,
            other => panic!("range failed: {other:?}"),
        }
    }

    /// The requests completed by the last entry.
    pub fn completed(&self) -> Vec<Addressed> {
        self.out
            .notifications
            .iter()
            .filter_map(|n| match n {
                Notification::Completed(addressed) => Some(addressed.clone()),
                _ => None,
            })
            .collect()
    }
}

pub(super) fn put(key: &str, value: &str) -> Command {
    Command::Put(PutRequest::new(key, value))
}

pub(super) fn put_leased(key: &str, value: &str, lease: LeaseId) -> Command {
    Command::Put(PutRequest {
        lease,
        ..PutRequest::new(key, value)
    })
}

pub(super) fn delete(range: KeyRange) -> Command {
    Command::DeleteRange(DeleteRangeRequest {
        range,
        prev_kv: true,
    })
}

pub(super) fn header(client_id: ClientId, seq: u64, acked_seq: u64) -> SessionHeader {
    SessionHeader {
        client_id,
        seq,
        acked_seq,
    }
}
