//! `mem`: an in-process, deterministic fabric for the simulator and unit tests.
//!
//! Nodes attach to one [`MemNetwork`] (single-threaded, no clock, no randomness). A `send` copies
//! the frame out of the sender's pool buffer into the network, as a wire would, and the buffer goes
//! back to the sender's pool at once. The message then waits *in flight* until the network's owner
//! decides its fate: [`MemNetwork::deliver`], [`MemNetwork::drop_message`],
//! [`MemNetwork::duplicate`], or nothing yet (held / delayed). Delivering in another order than
//! the ids is reordering. A simulator drives all of that from its own seeded PRNG, so the same
//! seed gives the same schedule, and the same schedule gives the same event sequence at every
//! node. [`MemNetwork::deliver_all`] is the well-behaved network for simple tests.
//!
//! Links model connections: [`MemNetwork::cut`] takes one down (both ends see `PeerDown` and
//! messages in flight between them are lost, as on a dropped TCP connection) and
//! [`MemNetwork::restore`] brings it back (`PeerUp` at both ends). Dropping a [`MemTransport`]
//! is a crash: its peers see `PeerDown`; attaching the same node id again is a restart.

use super::{Buf, BufferPool, DownReason, Event, PeerId, Remote, SendError, SendErrorKind};
use super::{Transport, TransportError, TransportStats};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

/// Identifies one message in flight; ids grow in send order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

/// What the network's owner sees of a message in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub id: MessageId,
    pub from: PeerId,
    pub to: PeerId,
    pub len_bytes: usize,
}

/// Misuse of the in-process network by its owner (a bug in the simulator, reported, not panicked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("message {0:?} is not in flight (already delivered or dropped)")]
    UnknownMessage(MessageId),
    #[error("node {0} is already attached to this network; drop its transport first")]
    AlreadyAttached(PeerId),
}

enum Pending {
    Up(PeerId),
    Down(PeerId, DownReason),
    Sent(PeerId, usize),
    Message(PeerId, Vec<u8>),
}

struct Message {
    from: PeerId,
    to: PeerId,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Net {
    /// Each attached node's events, in the order they happened.
    nodes: BTreeMap<PeerId, VecDeque<Pending>>,
    in_flight: BTreeMap<MessageId, Message>,
    /// Cut links, as (smaller id, larger id).
    cut: BTreeSet<(PeerId, PeerId)>,
    next_id: u64,
}

fn link(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    (a.min(b), a.max(b))
}

impl Net {
    fn connected(&self, a: PeerId, b: PeerId) -> bool {
        a != b
            && self.nodes.contains_key(&a)
            && self.nodes.contains_key(&b)
            && !self.cut.contains(&link(a, b))
    }

    fn push(&mut self, node: PeerId, event: Pending) {
        if let Some(queue) = self.nodes.get_mut(&node) {
            queue.push_back(event);
        }
    }

    /// Drops everything in flight between `a` and `b` (either direction).
    fn lose_between(&mut self, a: PeerId, b: PeerId) {
        self.in_flight
            .retain(|_, m| link(m.from, m.to) != link(a, b));
    }
}

/// The in-process fabric. Cloning the handle shares the network.
#[derive(Clone, Default)]
pub struct MemNetwork {
    net: Rc<RefCell<Net>>,
}

impl MemNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches `node` with its own buffer pool. It and every reachable node get `PeerUp` for each
    /// other, in node-id order.
    pub fn attach(&self, node: PeerId, pool: BufferPool) -> Result<MemTransport, MemError> {
        let mut net = self.net.borrow_mut();
        if net.nodes.contains_key(&node) {
            return Err(MemError::AlreadyAttached(node));
        }
        net.nodes.insert(node, VecDeque::new());
        let others: Vec<PeerId> = net
            .nodes
            .keys()
            .copied()
            .filter(|n| net.connected(node, *n))
            .collect();
        for other in others {
            net.push(node, Pending::Up(other));
            net.push(other, Pending::Up(node));
        }
        Ok(MemTransport {
            node,
            pool,
            net: Rc::clone(&self.net),
            stats: TransportStats::default(),
        })
    }

    /// The messages in flight, in send order.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let net = self.net.borrow();
        net.in_flight
            .iter()
            .map(|(id, m)| InFlight {
                id: *id,
                from: m.from,
                to: m.to,
                len_bytes: m.bytes.len(),
            })
            .collect()
    }

    /// Hands a message to its receiver (queued for its next `poll`). A message whose link was cut
    /// or whose receiver crashed since it was sent is lost instead; the result says which.
    pub fn deliver(&self, id: MessageId) -> Result<bool, MemError> {
        let mut net = self.net.borrow_mut();
        let message = net
            .in_flight
            .remove(&id)
            .ok_or(MemError::UnknownMessage(id))?;
        if !net.connected(message.from, message.to) {
            return Ok(false);
        }
        net.push(message.to, Pending::Message(message.from, message.bytes));
        Ok(true)
    }

    /// Loses a message.
    pub fn drop_message(&self, id: MessageId) -> Result<(), MemError> {
        let mut net = self.net.borrow_mut();
        net.in_flight
            .remove(&id)
            .map(drop)
            .ok_or(MemError::UnknownMessage(id))
    }

    /// Puts a copy of a message in flight under a new id (the original stays in flight).
    pub fn duplicate(&self, id: MessageId) -> Result<MessageId, MemError> {
        let mut net = self.net.borrow_mut();
        let copy = {
            let m = net.in_flight.get(&id).ok_or(MemError::UnknownMessage(id))?;
            Message {
                from: m.from,
                to: m.to,
                bytes: m.bytes.clone(),
            }
        };
        let new_id = MessageId(net.next_id);
        net.next_id += 1;
        net.in_flight.insert(new_id, copy);
        Ok(new_id)
    }

    /// Delivers every message in flight, in send order; returns how many arrived.
    pub fn deliver_all(&self) -> usize {
        let ids: Vec<MessageId> = self.net.borrow().in_flight.keys().copied().collect();
        ids.into_iter()
            .filter(|id| {
                self.deliver(*id)
                    .expect("ids were just listed as in flight")
            })
            .count()
    }

    /// Takes the link between `a` and `b` down: both see `PeerDown`, in-flight messages between
    /// them are lost. No effect if it is already down.
    pub fn cut(&self, a: PeerId, b: PeerId) {
        let mut net = self.net.borrow_mut();
        if !net.connected(a, b) {
            return;
        }
        net.cut.insert(link(a, b));
        net.lose_between(a, b);
        net.push(a, Pending::Down(b, DownReason::Cut));
        net.push(b, Pending::Down(a, DownReason::Cut));
    }

    /// Brings the link between `a` and `b` back: both see `PeerUp` if both are attached.
    pub fn restore(&self, a: PeerId, b: PeerId) {
        let mut net = self.net.borrow_mut();
        if !net.cut.remove(&link(a, b)) || !net.connected(a, b) {
            return;
        }
        net.push(a, Pending::Up(b));
        net.push(b, Pending::Up(a));
    }
}

/// One node's end of a [`MemNetwork`].
pub struct MemTransport {
    node: PeerId,
    pool: BufferPool,
    net: Rc<RefCell<Net>>,
    stats: TransportStats,
}

impl MemTransport {
    /// This node's id.
    pub fn node(&self) -> PeerId {
        self.node
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        let mut net = self.net.borrow_mut();
        let peers: Vec<PeerId> = net
            .nodes
            .keys()
            .copied()
            .filter(|n| net.connected(self.node, *n))
            .collect();
        net.nodes.remove(&self.node);
        let node = self.node;
        net.in_flight.retain(|_, m| m.from != node && m.to != node);
        for peer in peers {
            net.push(peer, Pending::Down(node, DownReason::Cut));
        }
    }
}

impl Transport for MemTransport {
    fn buffers(&self) -> &BufferPool {
        &self.pool
    }

    fn send(&mut self, to: Remote, buf: Buf) -> Result<(), SendError> {
        if !self.pool.owns(&buf) {
            return Err(SendError {
                to,
                kind: SendErrorKind::ForeignBuffer,
                buf,
            });
        }
        let Remote::Peer(peer) = to else {
            return Err(SendError {
                to,
                kind: SendErrorKind::NotConnected,
                buf,
            });
        };
        let mut net = self.net.borrow_mut();
        if !net.connected(self.node, peer) {
            return Err(SendError {
                to,
                kind: SendErrorKind::NotConnected,
                buf,
            });
        }
        let id = MessageId(net.next_id);
        net.next_id += 1;
        let len_bytes = buf.len();
        net.in_flight.insert(
            id,
            Message {
                from: self.node,
                to: peer,
                bytes: buf.as_slice().to_vec(),
            },
        );
        net.push(self.node, Pending::Sent(peer, len_bytes));
        Ok(())
    }

    fn poll(&mut self, _now_ns: u64, events: &mut Vec<Event>) -> Result<usize, TransportError> {
        let mut net = self.net.borrow_mut();
        let queue = net
            .nodes
            .get_mut(&self.node)
            .expect("an attached transport has a queue until dropped");
        let mut appended = 0;
        while events.len() < events.capacity() {
            let Some(pending) = queue.pop_front() else {
                break;
            };
            let event = match pending {
                Pending::Up(peer) => {
                    self.stats.peers_up += 1;
                    Event::PeerUp {
                        remote: Remote::Peer(peer),
                    }
                }
                Pending::Down(peer, reason) => {
                    self.stats.peers_down += 1;
                    Event::PeerDown {
                        remote: Remote::Peer(peer),
                        reason,
                    }
                }
                Pending::Sent(peer, len_bytes) => {
                    self.stats.frames_sent += 1;
                    Event::SendComplete {
                        to: Remote::Peer(peer),
                        len_bytes,
                    }
                }
                Pending::Message(from, bytes) => {
                    let mut buf = match self.pool.take() {
                        Ok(buf) => buf,
                        Err(_) => {
                            // Backpressure: keep the message first in line until a slab is freed.
                            self.stats.receive_stalls += 1;
                            queue.push_front(Pending::Message(from, bytes));
                            break;
                        }
                    };
                    if !buf.fill_from(&bytes) {
                        // Larger than this node's slabs: a real fabric would reject it as
                        // oversize; count it and drop it.
                        self.stats.count_rejected(super::RejectReason::Oversize);
                        continue;
                    }
                    self.stats.frames_received += 1;
                    self.stats.bytes_received += bytes.len() as u64;
                    Event::Received {
                        from: Remote::Peer(from),
                        buf,
                    }
                }
            };
            events.push(event);
            appended += 1;
        }
        Ok(appended)
    }

    fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(net: &MemNetwork, id: PeerId) -> MemTransport {
        net.attach(id, BufferPool::new(256, 8).unwrap()).unwrap()
    }

    fn frame(t: &MemTransport, bytes: &[u8]) -> Buf {
        let mut buf = t.buffers().take().unwrap();
        assert!(buf.fill_from(bytes));
        buf
    }

    /// A compact, comparable transcript of events.
    fn transcript(t: &mut MemTransport) -> Vec<String> {
        let mut events = Vec::with_capacity(16);
        t.poll(0, &mut events).unwrap();
        events
            .into_iter()
            .map(|e| match e {
                Event::Received { from, buf } => format!("recv {from} {:?}", buf.as_slice()),
                Event::SendComplete { to, len_bytes } => format!("sent {to} {len_bytes}"),
                Event::PeerUp { remote } => format!("up {remote}"),
                Event::PeerDown { remote, reason } => format!("down {remote} {reason}"),
            })
            .collect()
    }

    #[test]
    fn message_round_trip() {
        let net = MemNetwork::new();
        let mut a = node(&net, 1);
        let mut b = node(&net, 2);
        assert_eq!(transcript(&mut a), ["up peer 2"]);
        assert_eq!(transcript(&mut b), ["up peer 1"]);

        let ping = frame(&a, b"ping");
        a.send(Remote::Peer(2), ping).unwrap();
        assert_eq!(
            a.buffers().free_count(),
            8,
            "the send copied out and released the slab"
        );
        assert_eq!(net.deliver_all(), 1);
        assert_eq!(transcript(&mut b), ["recv peer 1 [112, 105, 110, 103]"]);
        let pong = frame(&b, b"pong");
        b.send(Remote::Peer(1), pong).unwrap();
        net.deliver_all();
        assert_eq!(
            transcript(&mut a),
            ["sent peer 2 4", "recv peer 2 [112, 111, 110, 103]"]
        );
        assert_eq!(a.stats().frames_received, 1);
        assert_eq!(
            b.stats().frames_sent,
            0,
            "b has not polled its completion yet"
        );
    }

    /// Runs a fixed schedule of sends and simulator decisions; returns every node's transcript.
    fn run_schedule() -> Vec<Vec<String>> {
        let net = MemNetwork::new();
        let mut nodes: Vec<MemTransport> = (1..=3).map(|id| node(&net, id)).collect();
        let mut out = vec![Vec::new(); 3];
        for round in 0u8..4 {
            for (i, t) in nodes.iter_mut().enumerate() {
                let to = (i as PeerId + 1) % 3 + 1;
                let buf = frame(t, &[round, i as u8]);
                t.send(Remote::Peer(to), buf).unwrap();
            }
            let flight = net.in_flight();
            // Reverse order (reorder), duplicate the first, drop the second, hold the third.
            net.duplicate(flight[0].id).unwrap();
            net.drop_message(flight[1].id).unwrap();
            for m in net
                .in_flight()
                .iter()
                .rev()
                .filter(|m| m.id != flight[2].id)
            {
                net.deliver(m.id).unwrap();
            }
            if round == 3 {
                net.cut(1, 2);
            }
            for (t, log) in nodes.iter_mut().zip(out.iter_mut()) {
                log.extend(transcript(t));
            }
        }
        out
    }

    #[test]
    fn same_schedule_gives_same_event_sequence() {
        let first = run_schedule();
        assert_eq!(first, run_schedule());
        // The schedule really exercised duplication and loss: node 2 received round 0's frame
        // from node 1 twice.
        let dup = first[1]
            .iter()
            .filter(|l| *l == "recv peer 1 [0, 0]")
            .count();
        assert_eq!(dup, 2, "{:?}", first[1]);
        assert!(first[0].contains(&"down peer 2 link cut by the in-process fabric".to_string()));
    }

    #[test]
    fn cut_link_loses_in_flight_and_refuses_sends_until_restored() {
        let net = MemNetwork::new();
        let mut a = node(&net, 1);
        let mut b = node(&net, 2);
        transcript(&mut a);
        transcript(&mut b);
        let buf = frame(&a, b"lost");
        a.send(Remote::Peer(2), buf).unwrap();
        net.cut(1, 2);
        assert!(net.in_flight().is_empty());
        let err = a.send(Remote::Peer(2), frame(&a, b"x")).unwrap_err();
        assert_eq!(err.kind, SendErrorKind::NotConnected);
        assert_eq!(
            err.buf.as_slice(),
            b"x",
            "the buffer comes back to the caller"
        );
        net.restore(1, 2);
        assert_eq!(
            transcript(&mut b),
            ["down peer 1 link cut by the in-process fabric", "up peer 1"]
        );
    }

    #[test]
    fn crash_and_restart_are_peer_down_and_up() {
        let net = MemNetwork::new();
        let mut a = node(&net, 1);
        let b = node(&net, 2);
        transcript(&mut a);
        drop(b);
        let b = node(&net, 2);
        assert_eq!(
            transcript(&mut a),
            ["down peer 2 link cut by the in-process fabric", "up peer 2"]
        );
        assert!(matches!(
            net.attach(2, BufferPool::new(64, 1).unwrap()),
            Err(MemError::AlreadyAttached(2))
        ));
        drop(b);
    }

    #[test]
    fn poll_never_grows_the_event_vector_and_holds_on_pool_exhaustion() {
        let net = MemNetwork::new();
        let mut a = node(&net, 1);
        let mut b = net.attach(2, BufferPool::new(64, 1).unwrap()).unwrap();
        for i in 0..3u8 {
            let buf = frame(&a, &[i]);
            a.send(Remote::Peer(2), buf).unwrap();
        }
        net.deliver_all();
        let mut events = Vec::with_capacity(2);
        assert_eq!(b.poll(0, &mut events).unwrap(), 2);
        assert_eq!(events.capacity(), 2);
        events.clear(); // drops the received buffer: the one slab is free again
        let mut events = Vec::with_capacity(8);
        b.poll(0, &mut events).unwrap();
        let held = b.poll(0, &mut events).unwrap();
        assert_eq!(
            held, 0,
            "the one slab is still held by the first received frame"
        );
        assert!(b.stats().receive_stalls > 0);
        events.clear();
        b.poll(0, &mut events).unwrap();
        assert!(matches!(&events[0], Event::Received { buf, .. } if buf.as_slice() == [2]));
        drop(a);
    }
}
