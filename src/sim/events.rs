//! The discrete-event queue: what happens next in virtual time.
//!
//! Events at the same instant run in the order they were scheduled (a sequence number breaks ties),
//! so the order never depends on anything but the seed. The queue is bounded: a run that schedules
//! more than its cap at once is failed with a clear reason instead of eating memory (a broken variant
//! of the protocol can flood messages).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::consensus::NodeId;

/// Something that happens to the simulated world at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A consensus frame arrives at `to`.
    Deliver {
        from: NodeId,
        to: NodeId,
        code: u8,
        bytes: Vec<u8>,
    },
    /// A one-sided write of an Append frame reaches `to`'s NIC, under `from`'s grant for `term`
    /// (`rkey`).
    RingWrite {
        from: NodeId,
        to: NodeId,
        term: u64,
        rkey: u32,
        code: u8,
        bytes: Vec<u8>,
    },
    /// `leader`'s write into `follower`'s ring under (`term`, `rkey`) completed in error.
    RingWriteFailed {
        leader: NodeId,
        follower: NodeId,
        term: u64,
        rkey: u32,
    },
    /// A follower's ring grant reaches the node it names (it travels like a message).
    RingGrant {
        from: NodeId,
        to: NodeId,
        term: u64,
        rkey: u32,
    },
    /// The node's timer fires: the host reads its clock and ticks the core.
    Tick { node: NodeId, incarnation: u32 },
    /// The disk of `node` finished writes up to `persist_id` (issued by that incarnation).
    DiskDone {
        node: NodeId,
        incarnation: u32,
        persist_id: u64,
    },
    /// A client request reaches a node.
    Request {
        node: NodeId,
        client: usize,
        op: u64,
    },
    /// A node's answer reaches a client.
    Response {
        client: usize,
        op: u64,
        reply: Reply,
    },
    /// A client's next step: issue an operation, or give up on one that timed out.
    Client { client: usize },
    /// The fault injector acts.
    Nemesis,
    /// A crashed node comes back.
    Restart { node: NodeId },
    /// A paused node resumes.
    Resume { node: NodeId },
}

/// What a node answered a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Put or CAS applied (`true` for a put; the CAS comparison result for a cas).
    Written(bool),
    /// Get served: the value read.
    Read(Option<u64>),
    /// Definitely not applied (refused before proposing, or lost to a leader change), with the
    /// leader the node knows of, if any.
    Refused(Option<NodeId>),
}

/// Bounded min-queue of events by (time, scheduling order).
#[derive(Debug)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Vec<Option<Event>>,
    free: Vec<usize>,
    next_seq: u64,
    cap: usize,
}

/// Why the queue refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub cap: usize,
}

impl EventQueue {
    pub fn new(cap: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at_ns`.
    pub fn push(&mut self, at_ns: u64, event: Event) -> Result<(), QueueFull> {
        if self.heap.len() >= self.cap {
            return Err(QueueFull { cap: self.cap });
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((at_ns, self.next_seq, slot)));
        self.next_seq += 1;
        Ok(())
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, Event)> {
        let Reverse((at_ns, _, slot)) = self.heap.pop()?;
        let event = self.slots[slot]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(slot);
        Some((at_ns, event))
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_schedule_order_and_respects_the_cap() {
        let mut q = EventQueue::new(3);
        q.push(20, Event::Nemesis).unwrap();
        q.push(10, Event::Client { client: 1 }).unwrap();
        q.push(10, Event::Client { client: 2 }).unwrap();
        assert_eq!(q.push(5, Event::Nemesis), Err(QueueFull { cap: 3 }));
        assert_eq!(q.pop(), Some((10, Event::Client { client: 1 })));
        assert_eq!(q.pop(), Some((10, Event::Client { client: 2 })));
        assert_eq!(q.pop(), Some((20, Event::Nemesis)));
        assert_eq!(q.pop(), None);
    }
}
