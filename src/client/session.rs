//! The client half of exactly-once writes (DESIGN.md §6): a registered client id and the sequence
//! numbers of its writes.
//!
//! A write gets its sequence number once, when it is submitted, and keeps it through every retry,
//! re-send after a leader change and reconnect, so the store applies it at most once. `acked_seq`
//! tells the store which responses it may forget: every sequence number below the lowest one still
//! in flight (a queued lock or a waiting barrier arrival stays in flight until its completion
//! arrives, so its response is never forgotten early).

use std::collections::BTreeSet;

use crate::store::{ClientId, SessionHeader, NO_SESSION};

#[derive(Debug)]
pub(crate) struct Session {
    client_id: ClientId,
    next_seq: u64,
    in_flight: BTreeSet<u64>,
}

impl Session {
    pub fn new(client_id: ClientId) -> Self {
        assert_ne!(client_id, NO_SESSION, "a registered session has an id");
        Self {
            client_id,
            next_seq: 1,
            in_flight: BTreeSet::new(),
        }
    }

    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// The header of a new write; the write is in flight until [`Session::finish`].
    pub fn begin(&mut self) -> SessionHeader {
        let seq = self.next_seq;
        self.next_seq += 1;
        let inserted = self.in_flight.insert(seq);
        assert!(inserted, "sequence numbers are handed out once");
        SessionHeader {
            client_id: self.client_id,
            seq,
            acked_seq: self.acked_seq(),
        }
    }

    /// Everything below the lowest write in flight has its final response at the client.
    fn acked_seq(&self) -> u64 {
        let lowest = self.in_flight.first().copied().unwrap_or(self.next_seq);
        debug_assert!(lowest >= 1);
        lowest - 1
    }

    /// The write numbered `seq` has its final answer (or the client gave up on it for good).
    pub fn finish(&mut self, seq: u64) {
        let removed = self.in_flight.remove(&seq);
        assert!(removed, "seq {seq} finished twice or never began");
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_seq_stays_below_every_write_in_flight() {
        let mut s = Session::new(9);
        let a = s.begin();
        assert_eq!((a.client_id, a.seq, a.acked_seq), (9, 1, 0));
        let b = s.begin();
        assert_eq!((b.seq, b.acked_seq), (2, 0));
        s.finish(2);
        // 1 is still in flight (a queued lock, say): nothing may be forgotten yet.
        let c = s.begin();
        assert_eq!((c.seq, c.acked_seq), (3, 0));
        s.finish(1);
        s.finish(3);
        let d = s.begin();
        assert_eq!((d.seq, d.acked_seq), (4, 3));
        assert!(d.acked_seq < d.seq);
        assert_eq!(s.in_flight(), 1);
    }

    #[test]
    #[should_panic(expected = "finished twice")]
    fn finishing_twice_is_a_bug() {
        let mut s = Session::new(1);
        let h = s.begin();
        s.finish(h.seq);
        s.finish(h.seq);
    }
}
